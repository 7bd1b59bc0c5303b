"""Datasets from reviewed feedback: accepted photos written as an image folder that `manage.py train` reads.

DIR/<safe folder>/<sha256>.jpg per accepted photo, DIR/classes.csv (folder,label,domain), optionally merged
with an existing dataset; a Dataset record keeps the counts and the hashes of what went in.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from datetime import date
from pathlib import Path

from django.db import transaction
from django.utils.translation import gettext
from django.utils.text import slugify

from recognizer.datasets import MIN_IMAGES_PER_CLASS, scan_dataset
from recognizer.errors import RecognizerError
from webapp.models import Dataset, Feedback

CLASSES_CSV = "classes.csv"


class ExportError(Exception):
    """The export cannot be written as asked; nothing was recorded."""


class Classes:
    """folder <-> (label, domain, Chinese label or '') of a dataset being written; labels match case-insensitively."""

    def __init__(self):
        self.rows: dict[str, tuple[str, str, str]] = {}

    def add(self, folder: str, label: str, domain: str, chinese: str = "") -> None:
        known = self.rows.setdefault(folder, (label, domain, chinese))
        if chinese and not known[2]:
            self.rows[folder] = (*known[:2], chinese)

    def folder_for(self, label: str, domain: str, *, source: str = "", chinese: str = "") -> str:
        """The folder of the class with this label, or a new one whose name is made safe from the label.

        A label already there under another domain is refused: one folder cannot be both, and picking one
        would drop a reviewer's decision without a word.
        """
        for folder, (known, known_domain, _) in self.rows.items():
            if known.casefold() == label.casefold():
                if known_domain != domain:
                    raise ExportError(
                        f"{source or 'A photo'} is accepted as {label!r} in {domain}, but the dataset already has "
                        f"{known!r} in {known_domain}: review one of them again so that they agree."
                    )
                self.add(folder, known, known_domain, chinese)
                return folder
        folder = slugify(label, allow_unicode=True)[:80] or "label"
        if folder in self.rows:  # another label gave the same safe name ("Red fox" and "red-fox!")
            folder = f"{folder}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"
        self.add(folder, label, domain, chinese)
        return folder

    def write(self, out: Path) -> None:
        with open(out / CLASSES_CSV, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["folder", "label", "domain", "label_zh"])  # label_zh: what a trained version says in Chinese
            for folder in sorted(self.rows):
                writer.writerow([folder, *self.rows[folder]])


def _check_out(out: Path, append: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; give a folder.")
    if out.is_dir() and any(out.iterdir()) and not append:
        raise ExportError(f"{out} is not empty; give an empty folder, or --append to add to the dataset in it.")


def _existing(folder: Path, classes: Classes) -> list[tuple[Path, str]]:
    """Read a dataset (its classes.csv, or folders named after domains) into `classes`; its image files."""
    try:
        dataset = scan_dataset(folder)
    except RecognizerError as exc:
        raise ExportError(f"{folder}: {exc}") from None
    chinese = dataset.labels.get("zh-hans") or [""] * len(dataset.classes)
    for info, zh in zip(dataset.classes, chinese):
        classes.add(info.id, info.label, info.domain, zh if zh != info.label else "")
    return [(path, dataset.classes[index].id) for path, index in dataset.items]


def _chinese_labels(accepted: list[Feedback]) -> dict[int, str]:
    """Feedback id -> the Chinese label of the class it was accepted as, when the model that answered has one (a
    class of that model in any language is stored as its English label), so a version trained on it speaks Chinese."""
    from recognizer.labels import display_label
    from recognizer.manifest import Manifest

    per_version: dict[int, dict[str, str]] = {}
    found = {}
    for item in accepted:
        version = item.prediction.model_version
        if version.pk not in per_version:
            manifest = Manifest.from_dict(version.manifest)
            per_version[version.pk] = {c.label: display_label(manifest, c.index, "zh-hans") for c in manifest.classes}
        chinese = per_version[version.pk].get(item.final_label, "")
        found[item.pk] = chinese if chinese != item.final_label else ""
    return found


def _withdraw_taken_back(out: Path) -> None:
    """On --append: photos exported to `out` before whose feedback is no longer accepted (a reviewer rejected it since)
    leave the folder, and a class left without photos leaves classes.csv, so the dataset never keeps what was taken
    back. A photo erased since cannot be matched to its file (files are named by their content), so its file stays."""
    taken_back = Feedback.objects.filter(datasets__path=str(out)).exclude(status=Feedback.ACCEPTED).distinct()
    for item in taken_back.select_related("prediction__kept_photo"):
        photo = getattr(item.prediction, "kept_photo", None)
        if photo is None or not photo.image or not photo.image.storage.exists(photo.image.name):
            continue
        with photo.image.open("rb") as handle:
            name = f"{hashlib.sha256(handle.read()).hexdigest()}.jpg"
        for path in out.glob(f"*/{name}"):
            path.unlink()
    emptied = [folder for folder in out.iterdir() if folder.is_dir() and not any(folder.iterdir())]
    for folder in emptied:
        folder.rmdir()
    listed = out / CLASSES_CSV
    if emptied and listed.is_file():
        with open(listed, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle)]
        gone = {folder.name for folder in emptied}
        with open(listed, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(row for row in rows if not row or row[0] not in gone)


def _accepted(since: date | None):
    items = Feedback.objects.filter(status=Feedback.ACCEPTED, prediction__kept_photo__deleted_at__isnull=True)
    items = items.exclude(prediction__kept_photo__image="").select_related("prediction__kept_photo", "prediction__model_version")
    if since is not None:
        items = items.filter(created_at__date__gte=since)
    return list(items.order_by("pk"))


def _files(out: Path) -> list[list[str]]:
    found = []
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != CLASSES_CSV):
        found.append([str(path.relative_to(out)), hashlib.sha256(path.read_bytes()).hexdigest()])
    return found


def dataset_export(
    *, out: Path, since: date | None = None, include_base: Path | None = None, append: bool = False, by=None
) -> Dataset:
    """Write the accepted feedback photos (and the base dataset, if given) to `out`, and record what went in."""
    out = Path(out).resolve()
    _check_out(out, append)
    if include_base and Path(include_base).resolve() == out:
        raise ExportError(f"--include-base is the output folder {out}; with --append its photos are kept already.")
    classes = Classes()
    if append and out.is_dir() and any(out.iterdir()):
        _withdraw_taken_back(out)
        if any(path.is_dir() for path in out.iterdir()):  # every photo may have been taken back
            _existing(out, classes)
    base = _existing(Path(include_base), classes) if include_base else []
    accepted = _accepted(since)
    if not accepted and not base and not (out.is_dir() and any(out.iterdir())):
        if since is not None and _accepted(None):
            raise ExportError(f"No feedback accepted since {since.isoformat()}: nothing to export (leave out --since for all of it).")
        raise ExportError("There is no accepted feedback to export yet (accept some in the admin's review queue).")
    # Everything that could refuse is decided before the first file is written.
    chinese = _chinese_labels(accepted)
    targets = [
        (item, classes.folder_for(item.final_label, item.final_domain, source=f"Feedback {item.pk}", chinese=chinese[item.pk]))
        for item in accepted
    ]
    _check_one_class_per_photo(targets, classes)
    missing = [item for item in accepted if not item.prediction.kept_photo.image.storage.exists(item.prediction.kept_photo.image.name)]
    if missing:
        ids = ", ".join(str(item.pk) for item in missing[:10])
        raise ExportError(
            f"The photos of {len(missing)} accepted feedback item(s) are missing from storage (feedback {ids}): "
            "restore MEDIA_ROOT, or reject those items in the review queue."
        )
    created = not out.exists()
    try:
        _write(out, base, targets, classes)
    except OSError as exc:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise ExportError(f"Could not write the dataset to {out}: {exc.strerror or exc}.") from None
    return _record(out, since, include_base, accepted, by)


def _check_one_class_per_photo(targets: list, classes: Classes) -> None:
    """The same photo (kept once, whoever sent it) accepted under two labels would teach both: refused, as two domains are."""
    first: dict[str, tuple[Feedback, str]] = {}
    for item, folder in targets:
        seen = first.setdefault(item.prediction.kept_photo.image.name, (item, folder))
        if seen[1] != folder:
            raise ExportError(
                f"One photo is accepted as {classes.rows[seen[1]][0]!r} (feedback {seen[0].pk}) and as "
                f"{classes.rows[folder][0]!r} (feedback {item.pk}): review one of them again so that they agree."
            )


def _write(out: Path, base: list[tuple[Path, str]], targets: list, classes: Classes) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for path, folder in base:
        (out / folder).mkdir(exist_ok=True)
        shutil.copyfile(path, out / folder / path.name)
    for item, folder in targets:
        with item.prediction.kept_photo.image.open("rb") as handle:
            data = handle.read()
        (out / folder).mkdir(exist_ok=True)
        (out / folder / f"{hashlib.sha256(data).hexdigest()}.jpg").write_bytes(data)
    classes.write(out)
    _private(out)


def _private(out: Path) -> None:
    """The export holds kept photos: its user's and group's, as MEDIA_ROOT's, whatever the shell's umask."""
    out.chmod(0o750)
    for path in out.rglob("*"):
        path.chmod(0o750 if path.is_dir() else 0o640)


def _record(out: Path, since, include_base, accepted, by) -> Dataset:
    files = _files(out)
    counts: dict[str, int] = {}
    for relative, _ in files:
        counts[relative.split("/", 1)[0]] = counts.get(relative.split("/", 1)[0], 0) + 1
    digest = hashlib.sha256("\n".join(f"{p}\t{h}" for p, h in files).encode()).hexdigest()
    with transaction.atomic():
        dataset = Dataset.objects.create(
            path=str(out), created_by=by, since=since, base_path=str(Path(include_base).resolve()) if include_base else "",
            images=len(files), from_feedback=len(accepted), counts=counts, files=files, digest=digest,
            classes_sha256=_classes_sha256(out),
        )
        dataset.feedback.set(accepted)
    return dataset


def dataset_thin_classes(dataset: Dataset) -> list[str]:
    """The dataset's classes with too few photos to train on ('folder (count)'), as training would refuse them."""
    return [f"{folder} ({count})" for folder, count in sorted(dataset.counts.items()) if count < MIN_IMAGES_PER_CLASS]


def _classes_sha256(out: Path) -> str:
    listed = out / CLASSES_CSV
    return hashlib.sha256(listed.read_bytes()).hexdigest() if listed.is_file() else ""


def dataset_changes(dataset: Dataset) -> str:
    """'' when the folder still holds exactly what was exported (its classes.csv too), else what differs, in the
    active language."""
    out = Path(dataset.path)
    if not out.is_dir():
        return gettext("%(path)s is gone") % {"path": out}
    now = {path: digest for path, digest in _files(out)}
    then = {path: digest for path, digest in dataset.files}
    added, removed = sorted(set(now) - set(then)), sorted(set(then) - set(now))
    changed = sorted(p for p in set(now) & set(then) if now[p] != then[p])
    said = {
        "added": gettext("%(count)d added (e.g. %(path)s)"), "removed": gettext("%(count)d removed (e.g. %(path)s)"),
        "changed": gettext("%(count)d changed (e.g. %(path)s)"),
    }
    parts = [said[kind] % {"count": len(paths), "path": paths[0]}
             for kind, paths in (("added", added), ("removed", removed), ("changed", changed)) if paths]
    if dataset.classes_sha256 and _classes_sha256(out) != dataset.classes_sha256:  # other labels or domains
        parts.append(gettext("%(file)s changed") % {"file": CLASSES_CSV})
    return "; ".join(parts)
