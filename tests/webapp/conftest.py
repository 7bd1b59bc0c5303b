"""Fixtures of the web service tests: a clean rate-limit cache and private folders per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _clean_cache():
    """Rate-limit counters live in the cache: every test starts with a full budget."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    """MEDIA_ROOT in a folder of this test only."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def models_dir(settings, tmp_path) -> Path:
    """MODELS_DIR in a folder of this test only."""
    settings.MODELS_DIR = tmp_path / "models"
    settings.MODELS_DIR.mkdir()
    return settings.MODELS_DIR


@pytest.fixture
def artifact_copy(tmp_path, tiny_artifact):
    """Copy a (session-wide, read-only) artifact and its manifest into a folder of this test."""

    def copy(source: Path = tiny_artifact, folder: Path | None = None, stem: str | None = None) -> Path:
        folder = folder or tmp_path / "artifacts"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{stem or source.stem}.h5"
        shutil.copyfile(source, target)
        shutil.copyfile(source.with_suffix(".json"), target.with_suffix(".json"))
        return target

    return copy


@pytest.fixture(scope="session")
def default_artifact(tmp_path_factory) -> Path:
    """The real default model (ImageNet EfficientNet-Lite0), built once for the session; treat it as read-only."""
    from recognizer.default_model import build_default

    return build_default(out=tmp_path_factory.mktemp("default") / "imagenet-efficientnet_lite0-v1.h5")


@pytest.fixture
def default_served(settings, db, fresh_runtime, default_artifact):
    """The default model active and the service's default, compiled for ONNX Runtime."""
    from webapp import services

    settings.RECOGNIZER_ENGINE = "onnxruntime"
    settings.DEFAULT_MODEL_NAME = "imagenet-efficientnet_lite0"
    version = services.model_version_register(artifact_path=default_artifact, activate=True)
    assert version.engine == "onnxruntime", version.engine_note
    return version
