"""The default model: an ImageNet classifier built offline from the best pretrained weights at hand."""

from __future__ import annotations

import os
from pathlib import Path

from recognizer.artifacts import save_artifact
from recognizer.backbones import get_backbone
from recognizer.manifest import Manifest

DEFAULT_BACKBONE = "efficientnet_lite0"
REPO_ROOT = Path(__file__).resolve().parent.parent
# A fixed timestamp keeps the manifest of a rebuilt default model byte-identical too.
DEFAULT_CREATED_AT = "2026-01-01T00:00:00+00:00"


def models_dir() -> Path:
    """Where artifacts live: RECOGNIZER_MODELS_DIR, else models/ at the project root."""
    return Path(os.environ.get("RECOGNIZER_MODELS_DIR", REPO_ROOT / "models"))


def default_backbone() -> str:
    return os.environ.get("RECOGNIZER_DEFAULT_BACKBONE", DEFAULT_BACKBONE)


def default_model_name(backbone: str | None = None) -> str:
    return f"imagenet-{backbone or default_backbone()}"


def default_artifact_path(backbone: str | None = None) -> Path:
    return models_dir() / f"{default_model_name(backbone)}-v1.h5"


def build_default(backbone: str | None = None, *, out: Path | None = None, force: bool = False) -> Path:
    """Write the ImageNet artifact for `backbone` (skipped when it exists unless force); returns its path."""
    from recognizer.labels import imagenet_classes

    backbone = backbone or default_backbone()
    path = out or default_artifact_path(backbone)
    if path.exists() and path.with_suffix(".json").exists() and not force:
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
    )
    save_artifact(model, manifest, path)
    return path
