"""Allowed classes: the species a deployment (a reserve, a farm) can meet, read from a plain text file.

One class per line, by label ("red fox"), WordNet id ("n02119022") or index
("277"); blank lines and lines starting with '#' are ignored. The answer is
then computed over those classes only: probabilities renormalized over them
before ranking and before the verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from recognizer import errors
from recognizer.manifest import ClassInfo


def read_allowed(path: str | Path, classes: Sequence[ClassInfo]) -> np.ndarray:
    """A boolean mask over `classes` from the file at `path`; a DatasetError names any line that is no class."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.DatasetError(f"Cannot read the allowed-classes file {path}: {exc}") from None
    keys = {}
    for c in classes:
        keys.update({c.label.lower(): c.index, c.id.lower(): c.index, str(c.index): c.index})
    wanted = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    unknown = [w for w in wanted if w.lower() not in keys]
    if unknown:
        raise errors.DatasetError(f"{path.name} names classes the model does not have: {', '.join(unknown[:5])}.")
    if not wanted:
        raise errors.DatasetError(f"{path.name} lists no classes.")
    mask = np.zeros(len(classes), dtype=bool)
    mask[[keys[w.lower()] for w in wanted]] = True
    return mask


def restrict(probabilities: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows renormalized over the allowed classes only (zero elsewhere)."""
    kept = np.where(mask, probabilities, 0.0)
    totals = kept.sum(axis=1, keepdims=True)
    return np.divide(kept, totals, out=np.zeros_like(kept), where=totals > 0)
