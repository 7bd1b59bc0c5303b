"""Shared fixtures: tiny REAL Keras models saved as artifacts, real photos, a registered active version."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from recognizer.manifest import ClassInfo, Manifest
from recognizer.photos import role_dir
from recognizer.preprocessing import InputSpec

REPO_ROOT = Path(__file__).resolve().parent.parent
# The development photos live in a folder beside the clone on the machines that have them; a clone with nothing beside
# it must pass these tests, so no test process may open or list anything there: it fails with PermissionError.
# (The folder's name is passed as an argument, not written as a path: tests/test_self_contained.py scans for those.)
_DEVELOPMENT_DATA = os.path.join(str(REPO_ROOT.parent), "shared")


def _refuse_the_development_data(event: str, args: tuple) -> None:
    if event not in ("open", "os.listdir", "os.scandir") or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    if path == _DEVELOPMENT_DATA or path.startswith(_DEVELOPMENT_DATA + os.sep):
        raise PermissionError(f"tests may not use the development data beside the repository: {path}")


sys.addaudithook(_refuse_the_development_data)
GOLDEN = role_dir("golden")  # <domain>/<name>.jpg: real photos carried by the repository
TINY_NAME = "tiny-wildlife"
TINY_CLASSES = (
    ClassInfo(0, "cat", "cat", "animal"),
    ClassInfo(1, "owl", "owl", "bird"),
    ClassInfo(2, "fern", "fern", "plant"),
    ClassInfo(3, "teapot", "teapot", "other"),
)
TINY_SPEC = InputSpec(height=32, width=32, resize="bilinear", crop="center", crop_fraction=0.875, normalization="caffe")


def build_tiny_model(num_classes: int = len(TINY_CLASSES), size: int = 32, seed: int = 0):
    """A small real convolutional classifier with explicit layer names (deterministic H5 bytes)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1 / 128.0, name="scale")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="tiny")


def tiny_manifest(name: str = TINY_NAME, classes=TINY_CLASSES, spec: InputSpec = TINY_SPEC) -> Manifest:
    return Manifest(name=name, backbone="tiny", input=spec, classes=tuple(classes))


def save_tiny(path: Path, *, name: str = TINY_NAME, seed: int = 0) -> Path:
    from recognizer.artifacts import save_artifact

    save_artifact(build_tiny_model(seed=seed), tiny_manifest(name), path)
    return path


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory) -> Path:
    """Path of a valid tiny artifact (.h5 with its manifest beside it); treat it as read-only."""
    return save_tiny(tmp_path_factory.mktemp("tiny") / "tiny-wildlife-v1.h5")


@pytest.fixture(scope="session")
def tiny_artifact_v2(tmp_path_factory) -> Path:
    """A second, different version of the same model name."""
    return save_tiny(tmp_path_factory.mktemp("tiny2") / "tiny-wildlife-v2.h5", seed=1)


@pytest.fixture
def photos() -> Path:
    """The repository's golden photos, as <domain>/<name>.jpg under this folder."""
    return GOLDEN


@pytest.fixture
def jpeg_bytes(photos) -> bytes:
    return (photos / "bird" / "turkey.jpg").read_bytes()


@pytest.fixture
def fresh_runtime():
    """No engine loaded before or after the test."""
    from webapp import runtime

    runtime.reset()
    yield
    runtime.reset()


@pytest.fixture
def active_tiny(db, settings, tiny_artifact, fresh_runtime):
    """The tiny model registered, active, and the service's default model."""
    from webapp import services

    settings.DEFAULT_MODEL_NAME = TINY_NAME
    return services.model_version_register(artifact_path=tiny_artifact, activate=True)


def random_photo(size=(64, 48), seed=0):
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)
