"""The default model: an ImageNet classifier built offline from the best pretrained weights at hand."""

from __future__ import annotations

import os
from pathlib import Path

import json

from recognizer.artifacts import save_artifact
from recognizer.backbones import DEFAULT as DEFAULT_BACKBONE
from recognizer.backbones import NAMES, get_backbone
from recognizer.errors import RecognizerError
from recognizer.manifest import Manifest, manifest_path, read_manifest, write_manifest

REPO_ROOT = Path(__file__).resolve().parent.parent
# A fixed timestamp keeps the manifest of a rebuilt default model byte-identical too.
DEFAULT_CREATED_AT = "2026-01-01T00:00:00+00:00"
DATA = Path(__file__).resolve().parent / "data"
HEAD_STORAGE = (
    "A separate file, not an output of the H5: a numpy softmax regression over the pooled output of the H5's "
    "last GlobalAveragePooling2D layer (the features its ImageNet head reads, so one backbone pass serves both), "
    "whose logits are added to mass_weight x the log ImageNet probability mass per domain, divided by its "
    "temperature. Loaded with recognizer.domain_head.DomainHead.load, which checks this sha256."
)


def models_dir() -> Path:
    """Where artifacts live: RECOGNIZER_MODELS_DIR, else models/ at the project root."""
    return Path(os.environ.get("RECOGNIZER_MODELS_DIR", REPO_ROOT / "models"))


def default_backbone() -> str:
    name = os.environ.get("RECOGNIZER_DEFAULT_BACKBONE") or DEFAULT_BACKBONE
    if name not in NAMES:
        raise RecognizerError(f"RECOGNIZER_DEFAULT_BACKBONE must be one of {', '.join(NAMES)}, not {name!r}.")
    return name


def default_model_name(backbone: str | None = None) -> str:
    return f"imagenet-{backbone or default_backbone()}"


def default_artifact_path(backbone: str | None = None) -> Path:
    return models_dir() / f"{default_model_name(backbone)}-v1.h5"


def default_extra(backbone: str) -> dict:
    """The domain head and calibration the repository ships for `backbone` (see recognizer/data/README.md); {} if none."""
    report_path = DATA / f"domain_head-{backbone}.json"
    if not report_path.is_file():
        return {}
    report = json.loads(report_path.read_text(encoding="utf-8"))
    domain, classes = report["calibration"], report["class_calibration"]
    return {
        "domain_head": {"file": report["file"], "sha256": report["sha256"], "storage": HEAD_STORAGE},
        "calibration": {
            "class_temperature": classes["temperature"],
            "domain_temperature": domain["temperature"],
            "thresholds": {
                "domain": domain["confident_threshold"], "label": classes["label_threshold"],
                "group": classes["group_threshold"],
            },
            "expected_calibration_error": {
                "class_before": classes["ece_before"], "class_after": classes["ece_after"],
                "domain_before": domain["ece_before"], "domain_after": domain["ece_after"],
            },
            "fitted_on": (
                "domain: out-of-fold answers of a 5-fold cross-validation on the development photos; classes: the "
                "development photos mapped by hand to ImageNet classes, which the ImageNet head never saw; "
                "see recognizer/data/README.md"
            ),
        },
    }


EARLIER_HEADS = DATA / "earlier_heads"  # every head an earlier release shipped, named by its sha256


def head_path(manifest: Manifest) -> Path | None:
    """Where the domain head named by a manifest lives, or None: the one this release ships, or the one an earlier
    release shipped when the manifest names that (a copy of the default model registered then keeps working)."""
    head = (manifest.extra or {}).get("domain_head")
    if not head:
        return None
    earlier = EARLIER_HEADS / f"{head['sha256']}.npz"
    return earlier if earlier.is_file() else DATA / head["file"]


def _refresh_extra(path: Path, extra: dict) -> None:
    # Only the manifest names the head: a rebuilt head must not need the slow H5 build again.
    manifest = read_manifest(manifest_path(path))
    if manifest.extra != extra:
        write_manifest(manifest.with_updates(extra=extra), manifest_path(path))


def build_default(backbone: str | None = None, *, out: Path | None = None, force: bool = False) -> Path:
    """Write the ImageNet artifact for `backbone` (skipped when it exists unless force); returns its path."""
    from recognizer.labels import imagenet_classes

    backbone = backbone or default_backbone()
    path = out or default_artifact_path(backbone)
    if path.exists() and path.with_suffix(".json").exists() and not force:
        _refresh_extra(path, default_extra(backbone))
        return path
    spec = get_backbone(backbone)
    import keras

    keras.backend.clear_session()  # auto-generated layer names must not depend on what was built before
    model = spec.build(include_top=True, weights="imagenet")
    manifest = Manifest(
        name=default_model_name(backbone),
        backbone=backbone,
        input=spec.input_spec,
        classes=imagenet_classes(),
        created_at=DEFAULT_CREATED_AT,
        training={"source": "ImageNet-1k pretrained weights", "trained_here": False},
        extra=default_extra(backbone),
    )
    save_artifact(model, manifest, path)
    return path
