"""The JSON manifest saved beside every H5: what the model expects and what its outputs mean."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from recognizer import errors
from recognizer.preprocessing import InputSpec

FORMAT_VERSION = 1
DOMAINS = ("animal", "bird", "plant", "other")
# The domains a person can ask for: "other" holds the classes that are none of the three.
QUERY_DOMAINS = tuple(d for d in DOMAINS if d != "other")
# A model's name: part of URLs, admin lists and folder names under VAR_DIR, so nothing that could leave a folder.
MODEL_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
MODEL_NAME_RULE = errors.gettext_noop("lowercase letters, digits, '-', '_' or '.', starting with a letter or digit, at most 100 characters")


@dataclass(frozen=True)
class ClassInfo:
    """One output unit of the model: its index, a stable id, a label for people, and a domain."""

    index: int
    id: str
    label: str
    domain: str

    def __post_init__(self):
        if self.domain not in DOMAINS:
            raise errors.ManifestError(
                f"class {self.index} ({self.label!r}) has domain {self.domain!r}; use one of {', '.join(DOMAINS)}."
            )


@dataclass(frozen=True)
class Manifest:
    name: str
    backbone: str
    input: InputSpec
    classes: tuple[ClassInfo, ...]
    sha256: str = ""
    created_at: str = ""
    metrics: dict | None = None
    training: dict | None = None
    engine: str = "keras"
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)
    # Display labels in other languages, e.g. {"zh-hans": [one per class, in output order]}; optional.
    labels: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["input"] = self.input.to_dict()
        data["classes"] = [asdict(c) for c in self.classes]
        return data

    def with_updates(self, **changes) -> "Manifest":
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict) -> "Manifest":
        if not isinstance(data, dict):
            raise errors.ManifestError("The manifest must be a JSON object.")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise errors.ManifestError(
                f"Manifest format_version is {version!r}; this service reads version {FORMAT_VERSION}. "
                "Re-export the model with this version of the recognizer."
            )
        try:
            classes = tuple(ClassInfo(**c) for c in data["classes"])
            spec = InputSpec.from_dict(data["input"])
            fields = {k: data[k] for k in ("name", "backbone") }
            optional = {k: data[k] for k in ("sha256", "created_at", "metrics", "training", "engine", "extra", "labels") if k in data}
        except errors.ManifestError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise errors.ManifestError(f"The manifest is missing or has a malformed field: {exc}.") from None
        if [c.index for c in classes] != list(range(len(classes))):
            raise errors.ManifestError("Manifest classes must be listed in output order with indexes 0, 1, 2, ...")
        if not classes:
            raise errors.ManifestError("The manifest lists no classes.")
        repeated = sorted(id_ for id_, count in Counter(c.id for c in classes).items() if count > 1)
        if repeated:  # answers, feedback and allowed-class lists name a class by its id
            raise errors.ManifestError(f"Manifest class ids must differ; listed more than once: {', '.join(repeated[:5])}.")
        _check_labels(optional.get("labels", {}), len(classes))
        return cls(input=spec, classes=classes, **fields, **optional)


def _check_labels(labels, count: int) -> None:
    """Each language's labels: one non-empty string per class."""
    if not isinstance(labels, dict):
        raise errors.ManifestError("Manifest 'labels' must map a language code to a list of labels.")
    for lang, names in labels.items():
        if not isinstance(names, list) or len(names) != count:
            raise errors.ManifestError(f"Manifest labels[{lang!r}] must list {count} labels, one per class.")
        if not all(isinstance(name, str) and name.strip() for name in names):
            raise errors.ManifestError(f"Manifest labels[{lang!r}] has an empty or non-text label.")


def manifest_path(h5_path: str | Path) -> Path:
    """The manifest that belongs to an H5: same folder, same stem, '.json'."""
    return Path(h5_path).with_suffix(".json")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest JSON file."""
    path = Path(path)
    if not path.is_file():
        raise errors.ManifestError(f"No manifest at {path}. Every .h5 needs a .json manifest beside it.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: also numbers of 4300+ digits
        raise errors.ManifestError(f"The manifest {path.name} is not valid JSON ({exc}).") from None
    return Manifest.from_dict(data)


def write_manifest(manifest: Manifest, path: str | Path) -> None:
    Path(path).write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
