"""Writes and decisions: registering and activating model versions, serving predictions, API tokens.

The page, the API, the admin and the management commands all call these;
none of them holds logic of its own.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from recognizer import errors as core
from recognizer.errors import Translatable, gettext_noop
from recognizer.engine import Engine, Prediction as Ranked
from recognizer.labels import display_label
from recognizer.manifest import Manifest, file_sha256, manifest_path, write_manifest
from recognizer.optimized import optimize_artifact
from recognizer.preprocessing import open_image
from webapp import selectors
from webapp.models import Activation, ApiToken, ModelVersion, Prediction
from webapp.runtime import ModelNotReady, runtime


class RegistrationError(Exception):
    """An artifact failed validation; nothing was stored."""


class ActivationError(Exception):
    """The requested activation or roll-back is not possible."""


class UnknownModel(Translatable, Exception):
    """No version of that model name was ever registered."""


# ---- model versions -------------------------------------------------------------------------

def model_version_validate(*, artifact_path: Path) -> Engine:
    """Every check of the recognizer plus a smoke prediction; raises RegistrationError."""
    try:
        engine = Engine.from_path(artifact_path)
        engine.smoke_test()
    except core.RecognizerError as exc:
        raise RegistrationError(str(exc)) from None
    return engine


def model_version_register(
    *, artifact_path: Path, notes: str = "", by=None, activate: bool = False
) -> ModelVersion:
    """Validate the artifact and record it as the next version of its model name."""
    artifact_path = Path(artifact_path).resolve()
    engine = model_version_validate(artifact_path=artifact_path)
    optimization = optimize_artifact(engine, kind=settings.RECOGNIZER_ENGINE)
    manifest = engine.manifest.with_updates(engine=optimization.engine)
    write_manifest(manifest, manifest_path(artifact_path))  # the artifact says which engine serves it
    try:
        return _record_version(manifest, artifact_path, optimization.reason, notes=notes, by=by, activate=activate)
    except IntegrityError:
        raise RegistrationError(f"Another version of {manifest.name} was registered at the same moment; try again.") from None


def _record_version(manifest, artifact_path: Path, engine_note: str, *, notes: str, by, activate: bool) -> ModelVersion:
    with transaction.atomic():
        last = ModelVersion.objects.filter(name=manifest.name).aggregate(Max("version"))["version__max"] or 0
        version = ModelVersion.objects.create(
            name=manifest.name,
            version=last + 1,
            artifact_path=str(artifact_path),
            sha256=manifest.sha256,
            backbone=manifest.backbone,
            manifest=manifest.to_dict(),
            engine=manifest.engine,
            engine_note=engine_note,
            notes=notes,
            created_by=by,
        )
        if activate:
            model_version_activate(version=version, by=by)
    return version


def model_version_register_upload(*, h5_file, manifest_file, notes: str = "", by=None) -> ModelVersion:
    """Store an uploaded H5 + manifest under MODELS_DIR/uploads/, then register; on failure, keep nothing."""
    folder = Path(settings.MODELS_DIR) / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    h5_path = folder / "model.h5"
    try:
        _write_upload(h5_file, h5_path)
        _write_upload(manifest_file, manifest_path(h5_path))
        return model_version_register(artifact_path=h5_path, notes=notes, by=by)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _write_upload(upload, path: Path) -> None:
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)


def model_version_activate(*, version: ModelVersion, by=None, kind: str = Activation.ACTIVATE) -> ModelVersion:
    """Make `version` the one active version of its name, and audit who did it."""
    _check_unchanged(version)
    with transaction.atomic():
        current = ModelVersion.objects.select_for_update().filter(name=version.name, is_active=True).first()
        if current and current.pk == version.pk:
            return version
        if current:
            ModelVersion.objects.filter(pk=current.pk).update(is_active=False)
        try:
            ModelVersion.objects.filter(pk=version.pk).update(is_active=True, activated_at=timezone.now())
        except IntegrityError:
            raise ActivationError(f"Another activation of {version.name} happened at the same time; try again.") from None
        Activation.objects.create(model_name=version.name, from_version=current, to_version=version, kind=kind, by=by)
    version.refresh_from_db()
    return version


def _check_unchanged(version: ModelVersion) -> None:
    """Refuse to activate an artifact that is missing or changed since it was registered."""
    path = Path(version.artifact_path)
    if not path.is_file():
        raise ActivationError(f"The artifact of {version} is missing ({path}); register it again.")
    if file_sha256(path) != version.sha256:
        raise ActivationError(f"The artifact of {version} changed on disk since it was registered; register it again.")


def model_version_rollback(*, name: str, by=None) -> ModelVersion:
    """Re-activate the version that was active before the last activation of `name`."""
    last = selectors.activation_last(name=name)
    if last is None or last.from_version is None:
        raise ActivationError(f"{name} has no previously active version to roll back to.")
    return model_version_activate(version=last.from_version, by=by, kind=Activation.ROLLBACK)


# ---- predictions ----------------------------------------------------------------------------

@dataclass
class Upload:
    data: bytes
    filename: str = ""


@dataclass
class PredictionResult:
    model_name: str
    model_version: int
    predictions: list[Ranked]
    timing_ms: dict = field(default_factory=dict)
    manifest: Manifest | None = None  # for the labels in other languages

    def to_dict(self, lang: str = "en") -> dict:
        """The reply; `label` in `lang` ('en' or 'zh-hans'), `label_en` always English."""
        return {
            "model": {"name": self.model_name, "version": self.model_version},
            "predictions": [self._prediction(p, lang) for p in self.predictions],
            "timing_ms": self.timing_ms,
        }

    def _prediction(self, ranked: Ranked, lang: str) -> dict:
        label = display_label(self.manifest, ranked.index, lang) if self.manifest else ranked.label
        return {**ranked.to_dict(), "label": label, "label_en": ranked.label}


def _check_upload(upload: Upload):
    if len(upload.data) > settings.UPLOAD_MAX_BYTES:
        raise core.ImageTooLarge(
            gettext_noop("The file is %(size).1f MB; the limit is %(limit).0f MB."),
            size=len(upload.data) / 1e6, limit=settings.UPLOAD_MAX_BYTES / 1e6,
        )
    return open_image(upload.data, max_pixels=settings.MAX_IMAGE_PIXELS, formats=settings.ALLOWED_IMAGE_FORMATS)


def prediction_create_batch(
    *, uploads: list[Upload], model_name: str | None = None, top_k: int = 5, domain: str | None = None, source: str = "api"
) -> list[PredictionResult]:
    """Classify the uploads with the active version of the model, in one batch, and record each one."""
    import numpy as np

    started = time.perf_counter()
    loaded = _loaded(model_name or settings.DEFAULT_MODEL_NAME)
    engine = loaded.engine
    # Decoding costs CPU too: the bound covers it, so load beyond capacity is shed before any work.
    with runtime().admit():
        batch = np.concatenate([engine.prepare(_check_upload(u)) for u in uploads])
        decoded = time.perf_counter()
        probabilities = engine.probabilities(batch)
    inferred = time.perf_counter()
    ranked = engine.rank(probabilities, top_k=top_k, domain=domain)
    timing = {
        "decode": round((decoded - started) * 1000, 2),
        "inference": round((inferred - decoded) * 1000, 2),
        "total": round((time.perf_counter() - started) * 1000, 2),
    }
    _record(loaded, uploads, ranked, domain, timing["total"] / len(uploads), source)
    return [PredictionResult(loaded.name, loaded.version, r, timing, engine.manifest) for r in ranked]


def _loaded(name: str):
    try:
        return runtime().get(name)
    except ModelNotReady:
        if not ModelVersion.objects.filter(name=name).exists():
            raise UnknownModel(gettext_noop("There is no model named %(name)r; GET /api/v1/models lists them."), name=name) from None
        raise


def prediction_create(*, upload: Upload, model_name: str | None = None, top_k: int = 5, domain: str | None = None, source: str = "api") -> PredictionResult:
    """Classify one upload; see prediction_create_batch."""
    return prediction_create_batch(uploads=[upload], model_name=model_name, top_k=top_k, domain=domain, source=source)[0]


def _record(loaded, uploads, ranked, domain, latency_ms, source) -> None:
    rows = []
    for upload, predictions in zip(uploads, ranked):
        digest = hashlib.sha256(upload.data).hexdigest()
        row = Prediction(
            model_version_id=loaded.version_id,
            top=[p.to_dict() for p in predictions[:5]],
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
    Prediction.objects.bulk_create(rows)


# ---- API tokens -----------------------------------------------------------------------------

def api_token_create(*, name: str, user=None, is_active: bool = True) -> tuple[ApiToken, str]:
    """A new token; the clear key is returned once and never stored."""
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name, user=user, is_active=is_active, prefix=key[:8], key_sha256=ApiToken.hash_key(key)
    )
    return token, key


def api_token_authenticate(*, key: str) -> ApiToken | None:
    token = ApiToken.objects.filter(key_sha256=ApiToken.hash_key(key), is_active=True).first()
    if token is not None:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token
