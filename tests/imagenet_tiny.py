"""A tiny real Keras model whose four classes are real ImageNet-1k classes, so the shipped Chinese table names them."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from recognizer.labels import imagenet_classes
from recognizer.manifest import Manifest
from tests.conftest import TINY_SPEC, build_tiny_model, random_photo

NAME = "tiny-imagenet"
# index in ImageNet-1k -> (English, Chinese); the manifest carries no labels of its own.
CLASSES = {282: ("tiger cat", "虎斑猫"), 258: ("Samoyed", "萨摩耶"), 985: ("daisy", "雏菊"), 849: ("teapot", "茶壶")}


def save_imagenet_tiny(folder: Path) -> Path:
    """Write the artifact (H5 + manifest) into `folder`; returns the H5 path."""
    from recognizer.artifacts import save_artifact

    classes = tuple(dataclasses.replace(imagenet_classes()[i], index=k) for k, i in enumerate(CLASSES))
    path = folder / f"{NAME}.h5"
    save_artifact(build_tiny_model(), Manifest(name=NAME, backbone="tiny", input=TINY_SPEC, classes=classes), path)
    return path


def jpeg_photo(size=(96, 80), seed: int = 3) -> bytes:
    out = io.BytesIO()
    random_photo(size, seed=seed).save(out, "JPEG")
    return out.getvalue()
