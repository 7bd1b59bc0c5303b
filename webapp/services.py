"""Writes and decisions: registering and activating model versions, serving predictions, API tokens.

The page, the API, the admin and the management commands all call these;
none of them holds logic of its own.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone
from PIL import Image

from recognizer import errors as core
from recognizer.artifacts import verify_sha256
from recognizer.engine import Engine, Prediction as Ranked
from recognizer.errors import Translatable, gettext_noop
from recognizer.labels import display_label
from recognizer.manifest import MODEL_NAME_PATTERN, MODEL_NAME_RULE, Manifest, manifest_path, write_manifest
from recognizer.optimized import base_kind, optimize_artifact, precision_of
from recognizer.preprocessing import seen_share
from recognizer.verdict import Verdict, crop_note
from webapp import admission, answering, audit, metrics, selectors
from webapp.models import Activation, AllowedClassList, ApiToken, ModelVersion, Prediction, Shadow, history_maintenance
from webapp.runtime import ModelNotReady, runtime
from webapp.verdicts import said, verdict_reply


log = logging.getLogger(__name__)


class RegistrationError(Exception):
    """An artifact failed validation; nothing was stored."""


class ActivationError(Translatable, Exception):
    """The requested activation or roll-back is not possible; `version` is the one that stays inactive. Its message
    is a marked template (said in the admin's language, in English by the commands)."""

    def __init__(self, message: str, version: ModelVersion | None = None, **params):
        super().__init__(message, **params)
        self.version = version


class AlreadyActive(ActivationError):
    """The version asked for is the active one: nothing was changed, checked or audited."""


class UnknownModel(Translatable, Exception):
    """No version of that model name was ever registered."""


class NoActiveVersion(Translatable, Exception):
    """The model name is registered, but none of its versions is active: an admin must activate one."""


# ---- model versions -------------------------------------------------------------------------

def model_version_validate(*, artifact_path: Path) -> Engine:
    """Every check of the recognizer plus a smoke prediction; raises RegistrationError."""
    try:
        engine = Engine.from_path(artifact_path)
        engine.smoke_test()
    except core.RecognizerError as exc:
        raise RegistrationError(str(exc)) from None
    except ImportError as exc:  # the serving image leaves TensorFlow out: it serves, it does not register
        raise RegistrationError(
            f"Registering needs TensorFlow, which this installation does not have ({exc.name or exc}). "
            "Register versions from the full image or a checkout with requirements.txt installed."
        ) from None
    return engine


def model_version_next_number(*, name: str) -> int:
    """The number the next registered version of `name` gets (the unique constraint settles races)."""
    return (ModelVersion.objects.filter(name=name).aggregate(Max("version"))["version__max"] or 0) + 1


def model_version_register(
    *, artifact_path: Path, notes: str = "", by=None, activate: bool = False, number: int | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ModelVersion:
    """Validate the artifact and record it as version `number` (default: the next) of its model name.

    `cancelled` is asked once more after compiling (the slow step), before anything is recorded: true, the run that
    trained the artifact was stopped, and core.TrainingCancelled is raised.

    With activate, the registered version is then activated; if that fails, ActivationError
    says so and carries the version, which stays registered and inactive.
    """
    artifact_path = Path(artifact_path).resolve()
    if artifact_path.suffix != ".h5":  # the manifest, say: it was checked as a model file and failed its checksum
        raise RegistrationError(f"{artifact_path.name} is not an .h5 file: give the model's .h5 (its manifest is the .json "
                                "of the same name beside it).")
    registered = ModelVersion.objects.filter(artifact_path=str(artifact_path)).first()
    if registered is not None:  # one version per file: the manifest and compiled copies beside it are that version's
        state = "the active version" if registered.is_active else "inactive: activate it to serve it"
        raise RegistrationError(
            f"{artifact_path} is already registered as {registered} ({state}); to compile it again, run "
            f"manage.py recompile {registered.name} --all (a copy of the file elsewhere can be a version of its own)."
        )
    engine = model_version_validate(artifact_path=artifact_path)
    if not MODEL_NAME_PATTERN.match(engine.manifest.name):
        raise RegistrationError(f"The model name {engine.manifest.name!r} in its manifest must be {MODEL_NAME_RULE}.")
    optimization = optimize_artifact(engine, kind=settings.RECOGNIZER_ENGINE, precision=settings.RECOGNIZER_PRECISION)
    if cancelled is not None and cancelled():
        raise core.TrainingCancelled("Training was cancelled.")
    manifest = engine.manifest.with_updates(engine=optimization.engine)
    write_manifest(manifest, manifest_path(artifact_path))  # the artifact says which engine serves it
    try:
        version = _record_version(manifest, artifact_path, optimization.note, notes=notes, by=by, number=number)
    except IntegrityError as exc:
        if number is not None and not ModelVersion.objects.filter(name=manifest.name, version=number).exists():
            raise RegistrationError(f"{manifest.name} v{number} could not be recorded: {exc}") from None  # not a race
        raise RegistrationError(f"Another version of {manifest.name} was registered at the same moment; try again.") from None
    if activate:
        try:
            return model_version_activate(version=version, by=by)  # the promotion gate scores it on the way
        except ActivationError:  # refused, perhaps before the gate scored it (an allowed-class list): scored here
            _score_on_golden_set(version)
            raise
    _score_on_golden_set(version)
    return version


def _score_on_golden_set(version: ModelVersion) -> None:
    """Where its model has a golden set, a new version is scored against the active one when it is registered."""
    from webapp import promotion

    try:
        promotion.gate_check_run(candidate=version)
    except promotion.GateRefused as exc:  # registration stands; the figures are asked for again at activation
        log.warning("%s registered, but not scored on the golden set: %s", version, exc)


def _record_version(manifest, artifact_path: Path, engine_note: str, *, notes: str, by, number: int | None) -> ModelVersion:
    with transaction.atomic():
        return ModelVersion.objects.create(
            name=manifest.name,
            version=number or model_version_next_number(name=manifest.name),
            artifact_path=str(artifact_path),
            sha256=manifest.sha256,
            backbone=manifest.backbone,
            manifest=manifest.to_dict(),
            engine=manifest.engine,
            engine_note=engine_note,
            notes=notes,
            created_by=by,
        )


def model_version_register_upload(*, h5_file, manifest_file, notes: str = "", by=None, activate: bool = False) -> ModelVersion:
    """Store an uploaded H5 + manifest under MODELS_DIR/uploads/, then register; if that fails, keep nothing."""
    folder = Path(settings.MODELS_DIR) / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    h5_path = folder / "model.h5"
    try:
        _write_upload(h5_file, h5_path)
        _write_upload(manifest_file, manifest_path(h5_path))
        return model_version_register(artifact_path=h5_path, notes=notes, by=by, activate=activate)
    except ActivationError:
        raise  # registered: its files are the version's now
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _write_upload(upload, path: Path) -> None:
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)


def model_version_verify(*, version: ModelVersion) -> None:
    """The artifact on disk is the one registered (same sha256); raises core.ArtifactError otherwise."""
    verify_sha256(version.artifact_path, version.sha256, expected_by=f"the registration of {version}")


def model_version_activate(
    *, version: ModelVersion, by=None, kind: str = Activation.ACTIVATE, force_reason: str = ""
) -> ModelVersion:
    """Make `version` the one active version of its name, and audit who did it; the promotion gate may refuse.

    AlreadyActive if it is the active version already (then nothing is gated or audited).
    """
    if ModelVersion.objects.filter(pk=version.pk, is_active=True).exists():
        raise AlreadyActive(gettext_noop("%(which)s is already the active version; nothing changed."), version, which=str(version))
    model_version_check_unchanged(version=version)
    _check_allowed_classes_fit(version)
    judged_against = ModelVersion.objects.filter(name=version.name, is_active=True).values_list("pk", flat=True).first()
    if kind == Activation.ACTIVATE:  # rolling back restores a version that served before: no gate
        from webapp.promotion import GateRefused, gate_enforce

        try:
            gate_enforce(candidate=version, by=by, force_reason=force_reason)
        except GateRefused as exc:
            raise ActivationError(str(exc), version) from None  # the gate's figures: English, as the README says
    with transaction.atomic():
        current = ModelVersion.objects.select_for_update().filter(name=version.name, is_active=True).first()
        if current and current.pk == version.pk:  # activated by someone else since the check above
            raise AlreadyActive(gettext_noop("%(which)s is already the active version; nothing changed."), version, which=str(version))
        if (current.pk if current else None) != judged_against:  # the gate compared it with a version no longer active
            raise ActivationError(gettext_noop(
                "%(current)s became the active version of %(name)s while %(which)s was being checked; activate it again "
                "to check it against that one."), version, current=str(current or "-"), name=version.name, which=str(version))
        if current:
            ModelVersion.objects.filter(pk=current.pk).update(is_active=False)
        try:
            ModelVersion.objects.filter(pk=version.pk).update(is_active=True, activated_at=timezone.now())
        except IntegrityError:
            raise ActivationError(gettext_noop("Another activation of %(name)s happened at the same time; try again."),
                                  version, name=version.name) from None
        Activation.objects.create(model_name=version.name, from_version=current, to_version=version, kind=kind, by=by)
        # A version in shadow that becomes active would only be compared with itself: its shadow ends here.
        Shadow.objects.filter(version=version, stopped_at__isnull=True).update(stopped_at=timezone.now())
    version.refresh_from_db()
    return version


def _check_allowed_classes_fit(version: ModelVersion) -> None:
    """Refuse a version the allowed classes of its name do not fit (as saving the list refuses such a list): served,
    it would answer among fewer classes than listed, or refuse every answer when none is left."""
    from recognizer.allowed import checked_allowed, read_allowed
    from recognizer.labels import chinese_labels

    manifest = Manifest.from_dict(version.manifest)
    classes, chinese = manifest.classes, chinese_labels(manifest)
    listed = selectors.allowed_class_lists_enabled().get(version.name)
    try:
        if listed is not None:
            checked_allowed(listed.lines, classes, f"The allowed-class list of {version.name}", chinese)
        elif settings.ALLOWED_CLASSES_FILE and version.name == settings.DEFAULT_MODEL_NAME:
            read_allowed(settings.ALLOWED_CLASSES_FILE, classes, chinese)
    except core.DatasetError as exc:
        if listed is not None:
            raise ActivationError(gettext_noop("%(reason)s To serve %(which)s, change or untick the list in the admin first."),
                                  version, reason=str(exc), which=str(version)) from None
        raise ActivationError(gettext_noop("%(reason)s To serve %(which)s, change ALLOWED_CLASSES_FILE first."),
                              version, reason=str(exc), which=str(version)) from None


def model_version_check_unchanged(*, version: ModelVersion) -> None:
    """Refuse to activate an artifact that is missing or changed since it was registered, or whose manifest names a
    domain head the workers could not load (they would go on serving the version it replaces)."""
    from recognizer.manifest import read_manifest
    from recognizer.verdict import Judge

    try:
        Judge.for_manifest(read_manifest(manifest_path(version.artifact_path)))
    except core.ChecksumMismatch as exc:
        raise ActivationError(gettext_noop("%(which)s cannot be served: %(reason)s"), version, which=str(version), reason=str(exc)) from None
    except core.ArtifactError:
        pass  # a missing file: said below
    try:
        model_version_verify(version=version)
    except core.ChecksumMismatch:
        raise ActivationError(gettext_noop(
            "The artifact of %(which)s changed on disk since it was registered: put the registered file back, or export "
            "the changed model (H5 and manifest) under a new file name and register that as a new version."),
                              version, which=str(version)) from None
    except core.ArtifactError:
        raise ActivationError(gettext_noop(
            "The artifact of %(which)s is missing (%(path)s): put the registered file back there, or register the "
            "model's file as a new version."),
                              version, which=str(version), path=version.artifact_path) from None


def model_version_rollback(*, name: str, by=None) -> ModelVersion:
    """Undo the newest activation of `name` not yet undone: re-activate the version it replaced."""
    if not selectors.model_name_exists(name=name):
        raise ActivationError(gettext_noop("There is no model named %(name)r; manage.py models lists them."), name=name)
    target = selectors.rollback_target(name=name)
    if target is None:
        raise ActivationError(gettext_noop("%(name)s has no previously active version to roll back to."), name=name)
    return model_version_activate(version=target, by=by, kind=Activation.ROLLBACK)


def model_version_recompile(*, version: ModelVersion, by=None, precision: str | None = None) -> ModelVersion:
    """Compile the version again for its optimized engine and check parity (after upgrading that runtime).

    The precision is the one the version is served in (its engine says it: `onnxruntime-int8` is INT8), never the
    shell's RECOGNIZER_PRECISION, unless `precision` asks for another. Workers serving it with Keras in the
    meantime switch back within MODEL_POLL_SECONDS (webapp/fleet.py).
    """
    model_version_check_unchanged(version=version)
    engine = model_version_validate(artifact_path=Path(version.artifact_path))
    kind = version.engine if version.engine != "keras" else settings.RECOGNIZER_ENGINE
    precision = precision or precision_of(version.engine)
    if precision == "bf16" and base_kind(kind) != "openvino":
        raise RegistrationError(f"bfloat16 copies run on OpenVINO only, and this version is compiled for {base_kind(kind)}.")
    optimization = optimize_artifact(engine, kind=kind, precision=precision, recompile=True)
    write_manifest(engine.manifest.with_updates(engine=optimization.engine), manifest_path(Path(version.artifact_path)))
    ModelVersion.objects.filter(pk=version.pk).update(engine=optimization.engine, engine_note=optimization.note)
    version.refresh_from_db()
    audit.record(by=by, obj=version, message=f"recompiled for {base_kind(kind)} in {precision}: {optimization.engine} serves it. {optimization.note}".strip())
    return version


# ---- predictions ----------------------------------------------------------------------------

@dataclass
class Upload:
    data: bytes
    filename: str = ""
    on_decoded: Callable[[Image.Image], None] | None = None  # sees the one decoded image (the page's preview)
    refused: core.ImageError | None = None  # refused as it was read (a batch item that is not base64): its own error


@dataclass
class PredictionResult:
    model_name: str
    model_version: int
    predictions: list[Ranked]
    timing_ms: dict = field(default_factory=dict)
    id: int | None = None  # the Prediction row: feedback on this answer names it
    verdict: Verdict | None = None  # said in the reply's language by to_dict
    domain_note: str = ""
    crop_note: str = ""  # when the model was shown only the middle of a wide or tall photo
    heatmap_png_base64: str | None = None
    allowed_classes: dict | None = None
    manifest: Manifest | None = None  # for the labels in other languages
    picture: Image.Image | None = field(default=None, repr=False)  # the decoded upload, kept for feedback if on
    input_sha256: str = ""  # the upload's, as its Prediction row has it (hashed once: 3 ms for a 4 MB photo)

    def to_dict(self, lang: str = "en") -> dict:
        """The reply; `label` in `lang` ('en' or 'zh-hans'), `label_en` always English."""
        return {
            "id": self.id,
            "model": {"name": self.model_name, "version": self.model_version},
            "verdict": verdict_reply(self.verdict, self.manifest, lang) if self.verdict is not None else None,
            "predictions": [self._prediction(p, lang) for p in self.predictions],
            "timing_ms": self.timing_ms,
            "domain_note": said(self.domain_note, lang) or None,
            "crop_note": said(self.crop_note, lang) or None,
            "heatmap_png_base64": self.heatmap_png_base64,
            "allowed_classes": self.allowed_classes,
        }

    def _prediction(self, ranked: Ranked, lang: str) -> dict:
        label = display_label(self.manifest, ranked.index, lang) if self.manifest else ranked.label
        return {**ranked.to_dict(), "label": label, "label_en": ranked.label}


@dataclass
class BatchResult:
    """One entry per upload, in order: its PredictionResult, or the image error that stopped it alone."""

    model_name: str
    model_version: int
    items: list[PredictionResult | core.ImageError]


def prediction_create_batch(
    *, uploads: list[Upload], model_name: str | None = None, top_k: int = 5, domain: str | None = None,
    explain: bool = False, source: str = "api",
) -> BatchResult:
    """Classify the uploads with the active version of the model, in one batch, and record each one answered."""
    loaded = model_loaded(name=model_name)
    # Decoding costs CPU too: the bound covers it, so load beyond capacity is shed before any work.
    spec = loaded.engine.manifest.input
    watch = metrics.PredictionWatch(loaded, images=len(uploads))
    with watch, runtime().admit(), watch.working():
        started = time.perf_counter()
        sources = admission.decoded_uploads(uploads=uploads, spec=spec)  # within the memory budgets, each once
        decoding_ms = (time.perf_counter() - started) * 1000
        allowed = answering.allowed_classes(loaded)
        answers = loaded.engine.predict(sources, top_k=top_k, domain=domain, allowed=allowed.mask if allowed else None)
        timing = {**answers.timing_ms, "decode": round(answers.timing_ms["decode"] + decoding_ms, 2),
                  "total": round(answers.timing_ms["total"] + decoding_ms, 2)}
        watch.answered([a.error for a in answers.items], timing)
    answered = [(u, a) for u, a in zip(uploads, answers.items) if a.error is None]
    rows = iter(_record(loaded, answered, domain, timing["total"] / len(answered), source) if answered else [])
    items = [
        a.error if a.error is not None else _result(loaded, source, a, timing, next(rows), explain=explain, allowed=allowed)
        for source, a in zip(sources, answers.items)
    ]
    return BatchResult(loaded.name, loaded.version, items)


def _result(loaded, image, answer, timing_ms: dict, row: Prediction, *, explain: bool, allowed) -> PredictionResult:
    heatmap = answering.heatmap_base64(loaded.engine, image, answer) if explain else None
    applied = None if allowed is None else {"applied": True, "count": allowed.count, "source": allowed.source}
    return PredictionResult(
        loaded.name, loaded.version, answer.predictions, timing_ms, row.pk, answer.verdict, answer.note,
        crop_note(seen_share(image.size, loaded.engine.manifest.input)), heatmap, applied,
        manifest=loaded.engine.manifest, picture=image, input_sha256=row.input_sha256,
    )


def model_loaded(*, name: str | None):
    """The loaded model `name` asks for (the default model when None). A name never registered is the caller's
    mistake (400); the default model not there yet, a service not ready (503), as /readyz says."""
    try:
        return runtime().get(name or settings.DEFAULT_MODEL_NAME)
    except ModelNotReady:
        if name and not selectors.model_name_exists(name=name):
            raise UnknownModel(gettext_noop("There is no model named %(name)r; GET /api/v1/models lists them."), name=name) from None
        if name and name not in {v.name for v in selectors.model_version_list_active()}:  # waiting will not help
            raise NoActiveVersion(gettext_noop("No active version of a model named %(name)r."), name=name) from None
        raise


def prediction_create(
    *, upload: Upload, model_name: str | None = None, top_k: int = 5, domain: str | None = None,
    explain: bool = False, source: str = "api",
) -> PredictionResult:
    """Classify one upload (see prediction_create_batch); a bad image raises its error."""
    (item,) = prediction_create_batch(
        uploads=[upload], model_name=model_name, top_k=top_k, domain=domain, explain=explain, source=source
    ).items
    if isinstance(item, core.ImageError):
        raise item
    return item


def _record(loaded, answered, domain, latency_ms, source) -> list[Prediction]:
    rows = []
    for upload, answer in answered:
        digest = hashlib.sha256(upload.data).hexdigest()
        row = Prediction(
            model_version_id=loaded.version_id,
            top=[p.to_dict() for p in answer.predictions[:5]],
            verdict=_verdict_record(answer.verdict),
            domain=domain or "",
            input_sha256=digest,
            input_bytes=len(upload.data),
            latency_ms=latency_ms,
            source=source,
        )
        if settings.STORE_UPLOADS:
            # Named by content, never by the client's file name; a photo already kept is not stored again.
            name = row.image.field.generate_filename(row, f"{digest}.img")
            if row.image.storage.exists(name):
                row.image.name = name
            else:
                row.image.save(f"{digest}.img", ContentFile(upload.data), save=False)
        rows.append(row)
    return Prediction.objects.bulk_create(rows)


def _verdict_record(verdict) -> dict | None:
    """What a prediction record keeps of its verdict: the answer, not the sentence that said it."""
    if verdict is None:
        return None
    kept = verdict.to_dict()
    del kept["explanation"]
    return kept


# ---- API tokens -----------------------------------------------------------------------------

class AllowedListError(Exception):
    """An allowed-class list that cannot be applied to the model it is for."""


def allowed_class_list_save(*, model_name: str, classes: str, enabled: bool = True, by=None) -> AllowedClassList:
    """Keep the allowed-class list of `model_name` once every line names a class of its active version;
    this process applies it at once, the other workers within MODEL_POLL_SECONDS."""
    allowed_class_list_check(model_name=model_name, classes=classes)
    listed, _ = AllowedClassList.objects.update_or_create(
        model_name=model_name, defaults={"classes": classes, "enabled": enabled, "updated_by": by}
    )
    runtime().refresh()
    return listed


def allowed_class_list_delete(*, listed: AllowedClassList) -> None:
    """Drop a list: its model answers over all classes again."""
    listed.delete()
    runtime().refresh()


def allowed_class_list_check(*, model_name: str, classes: str) -> None:
    """Raise AllowedListError naming the lines that are no class of the active version, or when none is listed."""
    from recognizer.allowed import checked_allowed
    from recognizer.labels import chinese_labels

    version = selectors.model_version_get(name=model_name)
    if version is None:
        raise AllowedListError(f"{model_name} has no active version to check the list against; activate one first.")
    manifest = Manifest.from_dict(version.manifest)
    try:
        checked_allowed(classes.splitlines(), manifest.classes, f"The list for {version}", chinese_labels(manifest))
    except core.DatasetError as exc:
        raise AllowedListError(str(exc)) from None


def api_token_create(*, name: str, user=None, is_active: bool = True) -> tuple[ApiToken, str]:
    """A new token; the clear key is returned once and never stored."""
    key = secrets.token_urlsafe(32)
    while key.startswith("-"):  # its prefix names it on the command line (`tokens revoke PREFIX`), where a dash is an option
        key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name, user=user, is_active=is_active, prefix=key[:8], key_sha256=ApiToken.hash_key(key)
    )
    return token, key


def api_token_authenticate(*, key: str) -> ApiToken | None:
    # A token made for a user dies with the user's account: deactivating the user is enough to cut it off.
    token = (
        ApiToken.objects.filter(key_sha256=ApiToken.hash_key(key), is_active=True)
        .filter(Q(user__isnull=True) | Q(user__is_active=True))
        .first()
    )
    if token is not None:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


def api_token_revoke(*, token: ApiToken, by=None) -> bool:
    """Turn the token off for good; it stays listed for the record. False (and nothing audited) if it already was."""
    changed = ApiToken.objects.filter(pk=token.pk, is_active=True).update(is_active=False) == 1
    token.refresh_from_db()
    if changed:
        audit.record(by=by, obj=token, message="revoked")
    return changed


# ---- history maintenance --------------------------------------------------------------------

class NotASuperuser(Exception):
    """History may be pruned only in the name of an active superuser."""


def history_prune(*, before, by) -> tuple[int, int]:
    """Delete predictions and activations older than `before`; superusers only. Returns how many of each went.

    Kept: each model's last activation, and every prediction someone gave feedback on (with its photo, that
    feedback and its reviews are training data and their audit). The photo files of the deleted predictions go too.
    """
    from webapp.feedback import photos_forget

    if by is None or not (by.is_active and by.is_superuser):
        raise NotASuperuser("Only an active superuser may prune the history.")
    keep = {selectors.activation_last(name=name).pk for name in Activation.objects.values_list("model_name", flat=True).distinct()}
    old = Prediction.objects.filter(created_at__lt=before, feedback__isnull=True)
    with history_maintenance(), transaction.atomic():
        photos_forget(predictions=old)
        _, deleted = old.delete()
        _, gone = Activation.objects.filter(at__lt=before).exclude(pk__in=keep).delete()
    return deleted.get(Prediction._meta.label, 0), gone.get(Activation._meta.label, 0)
