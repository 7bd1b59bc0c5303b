"""The reads: which version a name and number mean, and which engine really answers for a version."""

from __future__ import annotations

import pytest

from recognizer.optimized import compiled_path
from tests.conftest import TINY_NAME
from tests.webapp.helpers import predict
from webapp import selectors, services
from webapp.runtime import runtime


def test_get_finds_the_active_version_or_the_numbered_one(db, fresh_runtime, tiny_artifact, tiny_artifact_v2):
    assert selectors.model_version_get(name=TINY_NAME) is None
    v1 = services.model_version_register(artifact_path=tiny_artifact, activate=True)
    v2 = services.model_version_register(artifact_path=tiny_artifact_v2)
    assert selectors.model_version_get(name=TINY_NAME) == v1
    assert selectors.model_version_get(name=TINY_NAME, number=2) == v2
    assert selectors.model_version_get(name=TINY_NAME, number=3) is None
    assert selectors.model_version_get(name="another") is None


def test_the_list_counts_the_predictions_each_version_served(active_tiny, tiny_artifact_v2, client, jpeg_bytes):
    v2 = services.model_version_register(artifact_path=tiny_artifact_v2)
    for _ in range(2):
        assert predict(client, jpeg_bytes).status_code == 200
    served = {v.version: v.predictions_served for v in selectors.model_version_list(name=TINY_NAME)}
    assert served == {1: 2, v2.version: 0}
    assert selectors.model_names_active() == [TINY_NAME]


def test_the_engine_of_a_version_not_loaded_here_is_the_registered_one(active_tiny):
    assert TINY_NAME not in runtime().loaded()
    assert selectors.model_version_engine(version=active_tiny) == "keras"


@pytest.mark.slow
def test_the_engine_of_a_loaded_version_is_the_one_that_really_runs(db, fresh_runtime, settings, artifact_copy):
    settings.RECOGNIZER_ENGINE = "onnxruntime"
    served = services.model_version_register(artifact_path=artifact_copy(stem="served"), activate=True)
    runtime().get(TINY_NAME)
    assert selectors.model_version_engine(version=served) == "onnxruntime"

    fallback = services.model_version_register(artifact_path=artifact_copy(stem="fallback"))
    compiled_path(fallback.artifact_path, "onnxruntime").unlink()  # the worker will have to fall back to Keras
    services.model_version_activate(version=fallback)
    runtime().refresh()
    assert fallback.engine == "onnxruntime"
    assert selectors.model_version_engine(version=fallback) == "keras"
    assert selectors.model_version_engine(version=served) == "onnxruntime"  # not loaded here any more: as registered


def test_a_name_exists_once_any_version_of_it_is_registered(db, fresh_runtime, tiny_artifact):
    assert not selectors.model_name_exists(name=TINY_NAME)
    services.model_version_register(artifact_path=tiny_artifact)  # never activated
    assert selectors.model_name_exists(name=TINY_NAME)
    assert not selectors.model_name_exists(name="tiny")
