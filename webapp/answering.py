"""What an answer carries beyond its labels: the heat map when asked, and the deployment's allowed classes."""

from __future__ import annotations

import base64
import functools
from pathlib import Path

from django.conf import settings

from recognizer import errors as core
from recognizer.engine import Engine
from recognizer.labels import chinese_labels
from webapp.runtime import Allowed


class ExplainUnavailable(core.Translatable, Exception):
    """A heat map was asked of a version whose engine gives no feature map."""


def heatmap_base64(engine: Engine, image, answer) -> str:
    """The base64 PNG heat map of the top prediction; ExplainUnavailable when the engine gives no feature map."""
    from recognizer.heatmap import kernel_of, overlay_png

    if answer.feature_map is None:
        raise ExplainUnavailable(core.gettext_noop(
            "This model version was compiled without its feature map, so it cannot show where it looked; "
            "an admin can compile it again (manage.py recompile)."
        ))
    index = answer.predictions[0].index
    png = overlay_png(image, engine.manifest.input, answer.feature_map, kernel_of(engine.artifact.path), index)
    return base64.b64encode(png).decode("ascii")


class AllowedClassesUnusable(Exception):
    """The deployment's allowed-class list cannot be applied: the service is misconfigured, not the request."""


def allowed_classes(loaded) -> Allowed | None:
    """The classes answers may name: the admin's list for this model name, else ALLOWED_CLASSES_FILE for the
    default model (read again when the file changes), else None (all classes)."""
    allowed = loaded.allowed if loaded.allowed is not None else _allowed_from_file(loaded)
    if allowed is not None and not allowed.mask.any():
        raise AllowedClassesUnusable(
            f"The allowed-class list of {loaded.name} names no class that v{loaded.version} has; "
            "an admin must change the list or untick it."
        )
    return allowed


def _allowed_from_file(loaded) -> Allowed | None:
    path = settings.ALLOWED_CLASSES_FILE
    if not path or loaded.name != settings.DEFAULT_MODEL_NAME:
        return None
    try:
        mtime = Path(path).stat().st_mtime_ns
    except OSError as exc:
        raise AllowedClassesUnusable(f"ALLOWED_CLASSES_FILE names {path}, which cannot be read: {exc.strerror}.") from None
    try:
        return Allowed(_allowed_mask(path, mtime, loaded.engine), "file")
    except core.DatasetError as exc:
        raise AllowedClassesUnusable(f"ALLOWED_CLASSES_FILE: {exc}") from None


@functools.lru_cache(maxsize=1)  # the default model's engine only: a version swapped out is not kept alive here
def _allowed_mask(path: str, mtime_ns: int, engine: Engine):
    """Read again when the file changes or another engine (version) serves."""
    from recognizer.allowed import read_allowed

    return read_allowed(path, engine.manifest.classes, chinese_labels(engine.manifest))
