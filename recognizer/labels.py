"""ImageNet-1k class labels in Keras' output order, read from the table shipped in recognizer/data."""

from __future__ import annotations

import csv
import functools
import io
from importlib import resources

from recognizer.manifest import ClassInfo


@functools.cache
def imagenet_classes() -> tuple[ClassInfo, ...]:
    """The 1000 ImageNet-1k classes, index 0 to 999, each with its WordNet id, label and domain."""
    table = resources.files("recognizer") / "data" / "imagenet1k.csv"
    rows = csv.DictReader(io.StringIO(table.read_text(encoding="utf-8"), newline=""))
    return tuple(
        ClassInfo(index=int(row["index"]), id=row["id"], label=row["label"], domain=row["domain"]) for row in rows
    )
