"""Allowed classes: the species a deployment (a reserve, a farm) can meet, as a list of lines.

The list comes from a plain text file or from the admin. One class per line,
by label ("red fox", or for an ImageNet class its Chinese label "赤狐"), WordNet
id ("n02119022") or index ("277"); blank lines and lines starting with '#' are
ignored. The answer is then computed over those classes only: probabilities
renormalized over them before ranking and before the verdict chooses a class
(its domain is judged on every class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from recognizer import errors
from recognizer.manifest import ClassInfo


def parse_allowed(
    lines: Sequence[str], classes: Sequence[ClassInfo], chinese: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """A boolean mask over `classes` from the listed lines, and the lines that name no class of them.

    `chinese`: the Chinese label the replies give each class (recognizer.labels.chinese_labels of the manifest);
    without it, those of the classes that are ImageNet classes."""
    from recognizer.labels import imagenet_chinese_label

    if chinese is None:
        chinese = [imagenet_chinese_label(c) for c in classes]
    keys = {}
    for c, zh in zip(classes, chinese):
        keys.update({c.label.lower(): c.index, c.id.lower(): c.index, str(c.index): c.index})
        if zh:
            keys[zh.lower()] = c.index
    wanted = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    mask = np.zeros(len(classes), dtype=bool)
    mask[[keys[w.lower()] for w in wanted if w.lower() in keys]] = True
    return mask, [w for w in wanted if w.lower() not in keys]


def checked_allowed(
    lines: Sequence[str], classes: Sequence[ClassInfo], source: str, chinese: Sequence[str] | None = None
) -> np.ndarray:
    """The mask of parse_allowed; a DatasetError names the lines that are no class, or says nothing is listed."""
    mask, unknown = parse_allowed(lines, classes, chinese)
    if unknown:
        raise errors.DatasetError(f"{source} names classes the model does not have: {', '.join(unknown[:5])}.")
    if not mask.any():
        raise errors.DatasetError(f"{source} lists no classes.")
    return mask


def read_allowed(path: str | Path, classes: Sequence[ClassInfo], chinese: Sequence[str] | None = None) -> np.ndarray:
    """The mask from the file at `path` (see checked_allowed)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.DatasetError(f"Cannot read the allowed-classes file {path}: {exc}") from None
    return checked_allowed(lines, classes, path.name, chinese)


def restrict(probabilities: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows renormalized over the allowed classes only (zero elsewhere)."""
    kept = np.where(mask, probabilities, 0.0)
    totals = kept.sum(axis=1, keepdims=True)
    return np.divide(kept, totals, out=np.zeros_like(kept), where=totals > 0)
