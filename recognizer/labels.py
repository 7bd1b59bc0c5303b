"""ImageNet-1k class labels in Keras' output order, and display labels per language, from the tables in recognizer/data."""

from __future__ import annotations

import csv
import functools
import io
from importlib import resources

from recognizer.manifest import ClassInfo, Manifest


@functools.cache
def imagenet_classes() -> tuple[ClassInfo, ...]:
    """The 1000 ImageNet-1k classes, index 0 to 999, each with its WordNet id, label and domain."""
    table = resources.files("recognizer") / "data" / "imagenet1k.csv"
    rows = csv.DictReader(io.StringIO(table.read_text(encoding="utf-8"), newline=""))
    return tuple(
        ClassInfo(index=int(row["index"]), id=row["id"], label=row["label"], domain=row["domain"]) for row in rows
    )


@functools.cache
def imagenet_chinese() -> dict[str, tuple[str, str]]:
    """WordNet id -> (English label, Chinese label) for the 1000 ImageNet-1k classes (imagenet1k_zh.csv)."""
    table = resources.files("recognizer") / "data" / "imagenet1k_zh.csv"
    rows = csv.DictReader(io.StringIO(table.read_text(encoding="utf-8"), newline=""))
    return {row["id"]: (row["label"], row["label_zh"]) for row in rows}


def imagenet_chinese_label(info) -> str:
    """The shipped Chinese label of a class that is an ImageNet-1k class (same WordNet id and English label), else ''."""
    english, chinese = imagenet_chinese().get(info.id, ("", ""))
    return chinese if english == info.label else ""


def chinese_labels(manifest: Manifest) -> tuple[str, ...]:
    """The Chinese label the replies give each class, in output order."""
    return tuple(display_label(manifest, c.index, "zh-hans") for c in manifest.classes)


def display_label(manifest: Manifest, index: int, lang: str) -> str:
    """The label of class `index` for readers of `lang`.

    The manifest's own labels for that language first; then, for a class that is an
    ImageNet-1k class (same WordNet id and English label), the shipped table, so every
    ImageNet model speaks Chinese without re-exporting; else the English label.
    """
    info = manifest.classes[index]
    names = manifest.labels.get(lang)
    if names:
        return names[index]
    if lang == "zh-hans":
        return imagenet_chinese_label(info) or info.label
    return info.label
