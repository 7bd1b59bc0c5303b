"""Reads: what the views, the API and the runtime ask of the database."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from webapp.models import Activation, AllowedClassList, ModelVersion


def model_version_list(*, name: str | None = None) -> QuerySet[ModelVersion]:
    versions = ModelVersion.objects.annotate(predictions_served=Count("predictions"))
    if name and "\x00" in name:  # a name no row holds, which PostgreSQL refuses to compare (a 500)
        return versions.none()
    return versions.filter(name=name) if name else versions


def model_name_exists(*, name: str) -> bool:
    """Whether any version of `name` was ever registered."""
    return "\x00" not in name and ModelVersion.objects.filter(name=name).exists()


def model_version_list_active() -> list[ModelVersion]:
    return list(ModelVersion.objects.filter(is_active=True).order_by("name"))


def model_version_class_changes(*, version: ModelVersion, replacing: bool = False) -> str:
    """How the classes of `version` differ from those of its name's active version (else the newest before it),
    in one sentence; '' when they are the same, in the same order, or there is nothing to compare with."""
    others = ModelVersion.objects.filter(name=version.name).exclude(pk=version.pk)
    before = others.filter(is_active=True).first() or others.filter(version__lt=version.version).order_by("-version").first()
    if before is None:
        return ""
    ours, theirs = ([c["label"] for c in v.manifest["classes"]] for v in (version, before))
    if ours == theirs:
        return ""
    # Said as it is activated, the active version is the one it replaces: "(active)" would read wrong afterwards.
    role = ", which it replaces," if replacing else " (active)"
    which = f"v{before.version}" + (role if before.is_active else "")
    if sorted(ours) == sorted(theirs):
        return f"{version} has the classes of {which} in another order: class indices in lists and clients differ."
    ours_set, theirs_set = set(ours), set(theirs)
    new, gone = [c for c in ours if c not in theirs_set], [c for c in theirs if c not in ours_set]

    def some(labels: list[str]) -> str:
        return ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")

    parts = ([f"{len(new)} new ({some(new)})"] if new else []) + ([f"{len(gone)} gone ({some(gone)})"] if gone else [])
    return f"{version} has {len(ours)} classes where {which} has {len(theirs)}: {'; '.join(parts) or 'same labels, other ids'}."


def allowed_class_lists_enabled() -> dict[str, AllowedClassList]:
    """Model name -> its allowed-class list, for the lists in force."""
    return {a.model_name: a for a in AllowedClassList.objects.filter(enabled=True)}


def model_names_active() -> list[str]:
    return list(ModelVersion.objects.filter(is_active=True).order_by("name").values_list("name", flat=True))


def activation_last(*, name: str) -> Activation | None:
    return Activation.objects.filter(model_name=name).select_related("from_version", "to_version").first()


def rollback_target(*, name: str) -> ModelVersion | None:
    """The version a roll back of `name` returns to: the one active before the newest activation not yet undone.

    Each roll back undoes one activation, so rolling back twice after activating v2 then v3 goes to v2, then v1,
    instead of back to v3. None when nothing is left to undo (or the history that would say was pruned).
    """
    undone = 0
    for step in Activation.objects.filter(model_name=name).select_related("from_version").iterator():
        if step.kind == Activation.ROLLBACK:
            undone += 1
        elif undone:
            undone -= 1
        else:
            return step.from_version
    return None


def model_version_get(*, name: str, number: int | None = None) -> ModelVersion | None:
    """Version `number` of `name`, or its active version when no number is given."""
    versions = ModelVersion.objects.filter(name=name)
    return versions.filter(version=number).first() if number is not None else versions.filter(is_active=True).first()


def model_version_stale_reason(*, version: ModelVersion) -> str:
    """Why `version` should be compiled again, or "": its compiled copy no longer matches its artifact or the
    installed runtime, or the manifest beside its file names another engine than the version's (the same file
    registered in another database, a benchmark's for one, writes its own engine there, and workers would then look
    for that copy instead of the version's)."""
    from recognizer.errors import RecognizerError
    from recognizer.manifest import manifest_path, read_manifest
    from recognizer.optimized import unavailable_reason

    if version.engine != "keras":
        reason = unavailable_reason(version.artifact_path, version.engine)
        if reason:
            return reason
    try:
        named = read_manifest(manifest_path(version.artifact_path)).engine
    except (OSError, RecognizerError):  # a missing or unreadable manifest is the integrity check's to report
        return ""
    if named != version.engine:
        return f"its manifest names the engine {named}, but this version is served by {version.engine}."
    return ""


def model_version_engine(*, version: ModelVersion) -> str:
    """The engine answering for `version`: what really runs in this process when it is loaded here
    (a compiled copy that failed to load is served by Keras), else the engine it was registered for."""
    from webapp.runtime import runtime

    return runtime().serving_kind(version.id) or version.engine
