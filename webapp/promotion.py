"""The promotion gate: a candidate version is scored on its model's golden set against the active version, and
its activation is refused when it is worse by more than PROMOTION_MAX_DROP_POINTS, unless a superuser forces
it with a reason (audited). Without a golden set the gate says so and lets the activation through.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext

from recognizer import errors as core
from webapp.models import GateCheck, GateOverride, GoldenSet, ModelVersion, TrainingJob


class GateRefused(Exception):
    """The candidate scores too far below the active version on the golden set."""


def _golden_files(folder: Path) -> list[list[str]]:
    """[relative path, sha256] of every readable image in the folder's class subfolders, as evaluation reads them."""
    from recognizer.datasets import scan_dataset

    try:
        dataset = scan_dataset(folder, classes=())  # no class list: every folder counts, named or not
    except core.DatasetError:
        return []
    return [[str(path.relative_to(folder)), hashlib.sha256(path.read_bytes()).hexdigest()] for path, _ in dataset.items]


def golden_folder_problem(folder: Path, model_name: str | None = None) -> str | None:
    """Why `folder` cannot serve as the golden set of `model_name` (in the reader's language), or None: it must hold
    photos in one subfolder per class, and those subfolders must name classes of the model (its active version, else
    its newest) or be domains; otherwise every version scores 0% on it and the gate compares nothing."""
    if not folder.is_dir():
        return gettext("There is no folder at %(folder)s.") % {"folder": folder}
    if not _golden_files(folder):
        return gettext("%(folder)s holds no photos in class subfolders.") % {"folder": folder}
    versions = ModelVersion.objects.filter(name=model_name or "")
    version = versions.filter(is_active=True).first() or versions.order_by("-version").first()
    if version is not None and _scored_as(version, folder) is None:
        examples = ", ".join(c["id"] for c in version.manifest.get("classes", [])[:3])
        return gettext(
            "None of the subfolders of %(folder)s names a class of %(name)s (such as %(examples)s) or a domain "
            "(animal, bird, plant, other): every version would score 0%% on it."
        ) % {"folder": folder, "name": model_name, "examples": examples}
    return None


def _scored_as(version: ModelVersion, folder: Path) -> str | None:
    """'class' or 'domain', as model_version_evaluate scores `version` on the folder; None when it names none of its
    classes and is not a set of domains."""
    from recognizer.evaluation import scoring_classes
    from recognizer.manifest import Manifest

    try:
        _, by_domain = scoring_classes([p.name for p in folder.iterdir() if p.is_dir()], Manifest.from_dict(version.manifest).classes)
    except core.DatasetError:
        return None
    return "domain" if by_domain else "class"


def _trained_on(candidate: ModelVersion) -> set[str]:
    """sha256 of every photo the candidate was trained on, when a training job of this service made it: each file of
    its dataset, and the upload each feedback photo was kept from (kept photos are re-encoded, so a golden photo
    someone uploaded has its own digest only there)."""
    job = TrainingJob.objects.filter(version=candidate).select_related("dataset").first()
    if job is None:
        return set()
    uploads = job.dataset.feedback.values_list("prediction__kept_photo__sha256", flat=True)
    return {digest for _, digest in job.dataset.files} | {digest for digest in uploads if digest}


def _top1(version: ModelVersion, folder: Path) -> float:
    from webapp.runs import model_version_evaluate

    if _scored_as(version, folder) is None:
        return 0.0  # it knows none of the golden set's classes, so it names none of its photos right
    out = Path(settings.VAR_DIR) / "gate" / f"{version.name}-v{version.version}"
    return float(model_version_evaluate(version=version, data=folder, out=out).metrics["top1_accuracy"])


def gate_check_run(*, candidate: ModelVersion) -> GateCheck | None:
    """Score the candidate and the active version on the golden set (once per pair and golden content)."""
    golden = GoldenSet.objects.filter(model_name=candidate.name).select_related("dataset").first()
    if golden is None:
        return None
    if not golden.folder:  # its exported dataset was deleted, and no folder was given
        raise GateRefused(f"The golden set of {candidate.name} lost its dataset (deleted); give it a folder or another dataset, or remove it.")
    folder = Path(golden.folder)
    files = _golden_files(folder) if folder.is_dir() else []
    if not files:
        raise GateRefused(f"The golden set of {candidate.name} at {folder} holds no photos; fix it or remove it.")
    digest = hashlib.sha256("\n".join(f"{p}\t{h}" for p, h in files).encode()).hexdigest()
    active = ModelVersion.objects.filter(name=candidate.name, is_active=True).exclude(pk=candidate.pk).first()
    # Which photos trained it is read each time: a training job names its version only once it is registered.
    overlap = len({h for _, h in files} & _trained_on(candidate))
    found = GateCheck.objects.filter(candidate=candidate, active=active, golden_digest=digest).first()
    if found:
        if found.trained_on_golden != overlap:
            GateCheck.objects.filter(pk=found.pk).update(trained_on_golden=overlap)
            found.refresh_from_db()
        return found
    try:
        scores = {v.pk: _top1(v, folder) for v in (candidate, active) if v is not None}
    except core.RecognizerError as exc:
        raise GateRefused(f"The golden set could not be scored: {exc}") from None
    return GateCheck.objects.create(
        candidate=candidate, active=active, golden_path=str(folder), golden_digest=digest, images=len(files),
        candidate_top1=scores[candidate.pk], active_top1=scores.get(active.pk) if active else None, trained_on_golden=overlap,
    )


def gate_message(check: GateCheck | None, *, name: str) -> str:
    """The figures in one sentence, for the admin and for a refusal."""
    if check is None:  # no figures: said in the reader's language
        return gettext("%(name)s has no golden set: its versions are not compared with the active one before "
                       "activation.") % {"name": name}
    photos = f"{check.images} photo{'' if check.images == 1 else 's'}"
    role = "active" if check.candidate.is_active and check.active is None else "candidate"
    said = f"Golden set ({photos}): {role} v{check.candidate.version} top-1 {check.candidate_top1:.1%}"
    if check.active_top1 is not None:
        said += f", active v{check.active.version} top-1 {check.active_top1:.1%}"
    if check.trained_on_golden:
        count = check.trained_on_golden
        said += f"; warning: {count} golden photo{' was' if count == 1 else 's were'} in its training data"
    return said + "."


def gate_override_last(*, candidate: ModelVersion, by) -> GateOverride | None:
    """The override `by` gave on the candidate's newest gate check: set when their last activation of it was forced."""
    check = candidate.gate_checks.first()
    return check.overrides.filter(by=by).first() if check is not None and by is not None else None


def gate_enforce(*, candidate: ModelVersion, by=None, force_reason: str = "") -> str:
    """Allow the activation (returning what the gate says) or raise GateRefused with the figures."""
    check = gate_check_run(candidate=candidate)
    message = gate_message(check, name=candidate.name)
    if check is None or check.active_top1 is None:
        return message
    drop = (check.active_top1 - check.candidate_top1) * 100
    if drop <= settings.PROMOTION_MAX_DROP_POINTS:
        return message
    if force_reason.strip() and by is not None and by.is_superuser:
        GateOverride.objects.create(check_run=check, reason=force_reason.strip(), by=by)
        return f"{message} Forced by {by} ({drop:.1f} points lower): {force_reason.strip()}"
    raise GateRefused(
        f"{message} The candidate is {drop:.1f} points lower (at most {settings.PROMOTION_MAX_DROP_POINTS:g} allowed); "
        "a superuser may force the activation with a reason (on the version's admin page, or "
        "manage.py activate NAME VERSION --force REASON --by SUPERUSER)."
    )
