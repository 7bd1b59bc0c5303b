"""Image-folder datasets: one subfolder per class, an optional classes.csv, checked before any training."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from recognizer import errors
from recognizer.manifest import DOMAINS, ClassInfo
from recognizer.preprocessing import open_image

MIN_IMAGES_PER_CLASS = 2


@dataclass
class Dataset:
    root: Path
    classes: tuple[ClassInfo, ...]
    items: list[tuple[Path, int]]  # (file, class index), in a stable order
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    labels: dict = field(default_factory=dict)  # other languages' labels, as the manifest keeps them

    def counts(self) -> list[int]:
        totals = [0] * len(self.classes)
        for _, index in self.items:
            totals[index] += 1
        return totals


def _read_classes_csv(path: Path) -> tuple[dict[str, tuple[str, str]], dict[str, str] | None]:
    """folder -> (display label, domain) from classes.csv (columns folder,label,domain), and
    folder -> Chinese label from its optional label_zh column (None without that column)."""
    try:  # utf-8-sig: spreadsheets write "CSV UTF-8" with a byte-order mark, which would rename the first column
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return _classes_table(path, csv.DictReader(handle))
    except UnicodeDecodeError:
        raise errors.DatasetError(f"{path.name} is not UTF-8 text; save it as CSV UTF-8.") from None


def _classes_table(path: Path, reader: csv.DictReader) -> tuple[dict[str, tuple[str, str]], dict[str, str] | None]:
    table, chinese = {}, None
    if "label_zh" in (reader.fieldnames or ()):
        chinese = {}
    for row in reader:
        try:
            folder, label, domain = row["folder"].strip(), row["label"].strip(), row["domain"].strip()
        except (KeyError, AttributeError):
            raise errors.DatasetError(f"{path.name} needs the columns folder,label,domain.") from None
        if domain not in DOMAINS:
            raise errors.DatasetError(f"{path.name}: class {folder!r} has domain {domain!r}; use one of {', '.join(DOMAINS)}.")
        table[folder] = (label or folder, domain)
        if chinese is not None and (row.get("label_zh") or "").strip():
            chinese[folder] = row["label_zh"].strip()
    return table, chinese


def class_folders(root: Path) -> list[Path]:
    """The class subfolders of a dataset, sorted; refuses a root that has none."""
    if not root.is_dir():
        raise errors.DatasetError(f"{root} is not a folder. Give a folder with one subfolder per class.")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise errors.DatasetError(f"{root} has no class subfolders. Put each class's images in a folder named after it.")
    return folders


def scan_dataset(root: str | Path, *, domain: str | None = None, classes: tuple[ClassInfo, ...] | None = None) -> Dataset:
    """List a class-per-folder dataset; unreadable files are skipped and reported, thin classes refused.

    With `classes` (evaluation), folders are matched to those classes by id and
    folders the model does not know keep index -1, so they count as errors.
    """
    root = Path(root)
    folders = class_folders(root)
    labels = {}
    if classes is None:
        classes, labels = _classes_for(root, folders, domain)
    by_id = {c.id: c.index for c in classes}
    items, skipped = [], []
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
            reason = _unreadable(path)
            if reason:
                skipped.append((path, reason))
            else:
                items.append((path, by_id.get(folder.name, -1)))
    dataset = Dataset(root, classes, items, skipped, labels)
    if not items:
        raise errors.DatasetError(f"{root} holds no readable images.")
    return dataset


def _classes_for(root: Path, folders: list[Path], domain: str | None) -> tuple[tuple[ClassInfo, ...], dict]:
    if domain is not None and domain not in DOMAINS:
        raise errors.DatasetError(f"Unknown domain {domain!r}; use one of {', '.join(DOMAINS)}.")
    table, chinese = _read_classes_csv(root / "classes.csv") if (root / "classes.csv").is_file() else ({}, None)
    classes = []
    for index, folder in enumerate(folders):
        # A folder named after a domain (animal/, bird/, plant/) is a class of that domain.
        fallback = domain or (folder.name if folder.name in DOMAINS else None)
        label, folder_domain = table.get(folder.name, (folder.name, fallback))
        if folder_domain is None:
            raise errors.DatasetError(
                f"No domain for class {folder.name!r}: give --domain (animal, bird or plant) "
                "or a classes.csv row folder,label,domain for it."
            )
        classes.append(ClassInfo(index, folder.name, label, folder_domain))
    # A class without a Chinese label keeps its English one, so the list always covers every class.
    labels = {"zh-hans": [chinese.get(c.id, c.label) for c in classes]} if chinese else {}
    return tuple(classes), labels


def _unreadable(path: Path) -> str:
    try:
        open_image(path)
    except errors.ImageError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read the file ({exc.strerror})"
    return ""


def check_trainable(dataset: Dataset) -> None:
    """Refuse classes with fewer than two images: they can be neither learned nor validated."""
    thin = [f"{c.id} ({n})" for c, n in zip(dataset.classes, dataset.counts()) if n < MIN_IMAGES_PER_CLASS]
    if thin:
        raise errors.DatasetError(
            f"Every class needs at least {MIN_IMAGES_PER_CLASS} readable images; too few in: {', '.join(thin)}."
        )
