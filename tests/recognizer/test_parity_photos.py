"""Which photos the compiled engines are compared on: the repository's parity set, or a folder that overrides it."""

from __future__ import annotations

import logging
import shutil

import pytest

from recognizer import errors, optimized, photos
from recognizer.engine import Engine
from recognizer.optimized import PHOTOS_ENV, optimize_artifact, parity_images
from tests.conftest import save_tiny


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv(PHOTOS_ENV, raising=False)


def test_without_an_override_it_compares_on_the_repositorys_parity_photos():
    found = parity_images()
    assert found == photos.photo_paths("parity")
    assert {p.parent.name for p in found} == {"animal", "bird", "plant", "other"}
    assert all(p.is_file() and photos.role_dir("parity") in p.parents for p in found)


def test_an_override_folder_with_photos_is_used_instead(tmp_path, monkeypatch):
    shutil.copy(photos.photo_paths("golden")[0], tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("not a photo")
    monkeypatch.setenv(PHOTOS_ENV, str(tmp_path))
    assert parity_images() == [tmp_path / "a.jpg"]


@pytest.mark.parametrize("make", [lambda tmp: tmp / "does-not-exist", lambda tmp: tmp])
def test_an_override_folder_that_is_missing_or_empty_falls_back_to_the_repository_with_a_warning(
    tmp_path, monkeypatch, caplog, make
):
    monkeypatch.setenv(PHOTOS_ENV, str(make(tmp_path)))
    with caplog.at_level(logging.WARNING, logger="recognizer.optimized"):
        found = parity_images()
    assert found == photos.photo_paths("parity")
    assert str(make(tmp_path)) in caplog.text


def test_missing_repository_photos_give_a_clear_error_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(photos, "SOURCES", tmp_path / "SOURCES.csv")
    with pytest.raises(errors.RecognizerError, match="parity photos cannot be read.*restore"):
        parity_images()
    (tmp_path / "SOURCES.csv").write_text("file,role,domain,description\nparity/bird/gone.jpg,parity,bird,gone\n")
    monkeypatch.setattr(photos, "PHOTOS_DIR", tmp_path)
    with pytest.raises(errors.RecognizerError, match="Parity photos are missing: .*gone.jpg"):
        parity_images()


def test_registration_compares_on_real_photos_when_the_override_folder_is_absent(tmp_path, monkeypatch):
    monkeypatch.setenv(PHOTOS_ENV, str(tmp_path / "nowhere"))
    keras_engine = Engine.from_path(save_tiny(tmp_path / "tiny-wildlife-v1.h5"))
    outcome = optimize_artifact(keras_engine, "onnxruntime")  # the images registration uses
    assert (outcome.engine, outcome.reason) == ("onnxruntime", "")
    assert outcome.parity.images == len(photos.photo_paths("parity"))
    assert optimized.parity_record_path(keras_engine.artifact.path, "onnxruntime").is_file()
