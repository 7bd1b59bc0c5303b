"""Registration compiles a version for the optimized engine, checks parity, and the service serves from it."""

from __future__ import annotations

import io
import json

import pytest

from recognizer.manifest import manifest_path
from recognizer.optimized import compiled_path
from tests.conftest import TINY_NAME
from tests.webapp.helpers import predict
from webapp import services
from webapp.runtime import runtime

pytestmark = pytest.mark.slow


@pytest.fixture
def onnx_settings(settings, db, fresh_runtime):
    settings.RECOGNIZER_ENGINE = "onnxruntime"
    settings.DEFAULT_MODEL_NAME = TINY_NAME
    return settings


def test_a_registered_version_is_served_by_onnxruntime_with_the_same_answers(onnx_settings, artifact_copy, client, jpeg_bytes, tmp_path):
    path = artifact_copy()
    version = services.model_version_register(artifact_path=path, activate=True)
    assert version.engine == "onnxruntime", version.engine_note
    assert version.engine_note == ""
    assert json.loads(manifest_path(path).read_text())["engine"] == "onnxruntime"
    assert runtime().get(TINY_NAME).engine.kind == "onnxruntime"
    served = predict(client, jpeg_bytes).json()["predictions"]

    onnx_settings.RECOGNIZER_ENGINE = "keras"
    keras_version = services.model_version_register(artifact_path=artifact_copy(folder=tmp_path / "keras"), activate=True)
    runtime().refresh()
    assert runtime().get(TINY_NAME).version_id == keras_version.pk
    keras_answer = predict(client, jpeg_bytes).json()["predictions"]
    assert [p["label"] for p in served] == [p["label"] for p in keras_answer]
    assert max(abs(a["probability"] - b["probability"]) for a, b in zip(served, keras_answer)) < 1e-3


def test_a_version_that_cannot_be_compiled_is_served_by_keras_and_says_why(onnx_settings, artifact_copy, monkeypatch):
    import recognizer.optimized as optimized

    def broken(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(optimized, "compile_optimized", broken)
    version = services.model_version_register(artifact_path=artifact_copy(), activate=True)
    assert version.engine == "keras"
    assert "converter crashed" in version.engine_note
    assert runtime().get(TINY_NAME).engine.kind == "keras"


def test_the_api_and_readyz_report_keras_when_the_compiled_copy_fails_to_load(onnx_settings, artifact_copy, client):
    path = artifact_copy()
    version = services.model_version_register(artifact_path=path, activate=True)
    assert version.engine == "onnxruntime", version.engine_note
    compiled_path(path, "onnxruntime").unlink()  # gone after registration: the worker falls back to Keras

    assert client.get("/readyz").json()["engine"] == "keras"
    (listed,) = client.get("/api/v1/models").json()
    assert (listed["version"], listed["engine"]) == (1, "keras")
    assert client.get(f"/api/v1/models/{TINY_NAME}").json()["engine"] == "keras"
    version.refresh_from_db()
    assert version.engine == "onnxruntime"  # what registration chose; the replies say what really serves


def test_a_version_whose_int8_copy_passed_is_reported_as_int8_everywhere(onnx_settings, client, jpeg_bytes, tmp_path):
    from tests.conftest import save_tiny

    onnx_settings.RECOGNIZER_PRECISION = "int8"
    path = save_tiny(tmp_path / "int8" / f"{TINY_NAME}-v1.h5", seed=1)  # a tiny model whose INT8 copy keeps its answers
    version = services.model_version_register(artifact_path=path, activate=True)
    assert version.engine == "onnxruntime-int8", version.engine_note
    assert version.engine_note.startswith("INT8 passed its accuracy gate (49 golden photos")
    assert json.loads(manifest_path(path).read_text())["engine"] == "onnxruntime-int8"
    assert predict(client, jpeg_bytes).status_code == 200
    assert client.get("/readyz").json()["engine"] == "onnxruntime-int8"
    assert client.get(f"/api/v1/models/{TINY_NAME}").json()["engine"] == "onnxruntime-int8"
    assert 'engine="onnxruntime-int8"' in client.get("/metrics").content.decode()


def test_recompiling_keeps_the_precision_a_version_is_served_in_whatever_the_shell_says(onnx_settings, tmp_path, monkeypatch, caplog):
    from django.core.management import call_command

    from tests.conftest import save_tiny

    onnx_settings.RECOGNIZER_PRECISION = "int8"
    path = save_tiny(tmp_path / "int8" / f"{TINY_NAME}-v1.h5", seed=1)  # its INT8 copy passes the gate
    version = services.model_version_register(artifact_path=path, activate=True)
    assert version.engine == "onnxruntime-int8", version.engine_note
    onnx_settings.RECOGNIZER_PRECISION = "fp32"  # a plain shell
    monkeypatch.setenv("RECOGNIZER_PRECISION", "fp32")
    done = services.model_version_recompile(version=version)
    assert done.engine == "onnxruntime-int8", done.engine_note
    int8_note = done.engine_note
    assert json.loads(manifest_path(path).read_text())["engine"] == "onnxruntime-int8"
    call_command("recompile", TINY_NAME, "--precision", "fp32", stdout=io.StringIO())  # asked for: FP32 from now on
    version.refresh_from_db()
    assert version.engine == "onnxruntime"
    audited = [r.action for r in caplog.records if r.name == "webapp.audit"]
    assert audited == ["recompiled for onnxruntime in int8: onnxruntime-int8 serves it. " + int8_note,
                       "recompiled for onnxruntime in fp32: onnxruntime serves it."]


def test_recompile_to_bf16_on_onnxruntime_is_refused_in_one_line_and_changes_nothing(onnx_settings, artifact_copy):
    from django.core.management import CommandError, call_command

    version = services.model_version_register(artifact_path=artifact_copy(), activate=True)
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 versions could not be recompiled"):
        call_command("recompile", TINY_NAME, "--precision", "bf16", stdout=io.StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        f"{version}: not recompiled: bfloat16 copies run on OpenVINO only, and this version is compiled for onnxruntime."
    ]
    before = (version.engine, version.engine_note)
    version.refresh_from_db()
    assert (version.engine, version.engine_note) == before


def test_a_precision_changed_by_recompile_reaches_the_running_workers_at_their_next_poll(onnx_settings, tmp_path, client):
    from django.core.management import call_command

    from tests.conftest import save_tiny

    onnx_settings.RECOGNIZER_PRECISION = "int8"
    path = save_tiny(tmp_path / "int8" / f"{TINY_NAME}-v1.h5", seed=1)  # its INT8 copy passes the gate
    services.model_version_register(artifact_path=path, activate=True)
    runtime().refresh()  # a worker serving it
    assert client.get("/readyz").json()["engine"] == "onnxruntime-int8"

    call_command("recompile", TINY_NAME, "--precision", "fp32", stdout=io.StringIO())  # from another process
    runtime().refresh()  # the worker's next poll: same version, another engine

    assert runtime().get(TINY_NAME).engine.kind == "onnxruntime"
    assert client.get("/readyz").json()["engine"] == "onnxruntime"
    call_command("recompile", TINY_NAME, "--precision", "int8", stdout=io.StringIO())
    runtime().refresh()
    assert runtime().get(TINY_NAME).engine.kind == "onnxruntime-int8"


def test_the_same_file_is_registered_once_so_its_manifest_stays_that_versions(onnx_settings, artifact_copy, settings):
    path = artifact_copy()
    first = services.model_version_register(artifact_path=path)
    assert first.engine == "onnxruntime"
    settings.RECOGNIZER_ENGINE = "keras"
    with pytest.raises(services.RegistrationError, match=rf"already registered as {TINY_NAME} v1 \(inactive: activate it to serve it\)"):
        services.model_version_register(artifact_path=path)
    assert json.loads(manifest_path(path).read_text())["engine"] == "onnxruntime"  # not rewritten for keras
    assert services.model_version_register(artifact_path=artifact_copy(stem="copy")).version == 2  # a copy is its own
