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
