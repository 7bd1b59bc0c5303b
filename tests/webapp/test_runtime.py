"""The per-process runtime: load once, swap on activation, never serve a broken version, bound the queue."""

from __future__ import annotations

import pytest

from recognizer.engine import Engine
from tests.conftest import TINY_NAME
from tests.webapp.helpers import BATCH, assert_error, predict, upload
from webapp import runtime as runtime_module
from webapp import services
from webapp.models import ModelVersion, Prediction
from webapp.runtime import ModelNotReady, runtime


def test_the_active_version_is_loaded_once_per_process(active_tiny, client, jpeg_bytes, monkeypatch):
    loads = []
    real = Engine.from_path.__func__

    def counting(cls, path):
        loads.append(path)
        return real(cls, path)

    monkeypatch.setattr(Engine, "from_path", classmethod(counting))
    first = runtime().get(TINY_NAME)
    for _ in range(3):
        assert predict(client, jpeg_bytes).status_code == 200
    again = runtime().get(TINY_NAME)
    assert runtime() is runtime()
    assert again is first and again.engine is first.engine
    assert (first.version_id, first.version) == (active_tiny.pk, 1)
    assert len(loads) == 1


def test_refresh_switches_to_a_newly_activated_version(active_tiny, tiny_artifact_v2, client, jpeg_bytes):
    v1_engine = runtime().get(TINY_NAME).engine
    v2 = services.model_version_register(artifact_path=tiny_artifact_v2)
    services.model_version_activate(version=v2)
    assert runtime().get(TINY_NAME).engine is v1_engine  # until the next refresh (the poller's job)
    runtime().refresh()
    loaded = runtime().get(TINY_NAME)
    assert (loaded.version_id, loaded.version) == (v2.pk, 2)
    assert loaded.engine is not v1_engine
    assert predict(client, jpeg_bytes).json()["model"] == {"name": TINY_NAME, "version": 2}
    assert Prediction.objects.get().model_version == v2


def _force_active(version: ModelVersion) -> None:
    """The database says `version` is active whatever its file holds (a file damaged after activation)."""
    ModelVersion.objects.filter(name=version.name).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)


def test_a_version_whose_file_changed_cannot_be_activated(active_tiny, artifact_copy, tiny_artifact_v2):
    path = artifact_copy(tiny_artifact_v2)
    changed = services.model_version_register(artifact_path=path)
    path.write_bytes(path.read_bytes()[:-64] + bytes(64))
    with pytest.raises(services.ActivationError, match="changed on disk"):
        services.model_version_activate(version=changed)
    path.unlink()
    with pytest.raises(services.ActivationError, match="missing"):
        services.model_version_activate(version=changed)
    assert ModelVersion.objects.get(is_active=True).pk == active_tiny.pk


def test_a_version_whose_manifest_names_a_domain_head_nobody_ships_cannot_be_activated(active_tiny, artifact_copy, tiny_artifact_v2):
    # As a copy registered under a release whose head was later rebuilt would be, without the head kept for it:
    # activation was accepted, and every worker then failed to load it and went on serving the version it replaced.
    from recognizer.manifest import manifest_path, read_manifest, write_manifest

    path = artifact_copy(tiny_artifact_v2)
    version = services.model_version_register(artifact_path=path)
    manifest = read_manifest(manifest_path(path))
    head = {"file": "domain_head-efficientnet_lite0.npz", "sha256": "0" * 64, "storage": "npz"}
    write_manifest(manifest.with_updates(extra={**(manifest.extra or {}), "domain_head": head}), manifest_path(path))
    with pytest.raises(services.ActivationError, match="cannot be served: The manifest names a domain head with sha256 000000000000"):
        services.model_version_activate(version=version)
    assert ModelVersion.objects.get(is_active=True).pk == active_tiny.pk


def test_a_version_that_fails_to_load_is_never_served(active_tiny, artifact_copy, tiny_artifact_v2, client, jpeg_bytes):
    served = runtime().get(TINY_NAME)
    path = artifact_copy(tiny_artifact_v2)
    broken = services.model_version_register(artifact_path=path)
    good = path.read_bytes()
    path.write_bytes(good[:-64] + bytes(64))  # damaged on disk after it was validated
    _force_active(broken)
    runtime().refresh()
    assert runtime().get(TINY_NAME) is served
    failures = runtime().failures()
    assert list(failures) == [broken.pk]
    assert "sha256" in failures[broken.pk]
    reply = predict(client, jpeg_bytes)
    assert reply.status_code == 200
    assert reply.json()["model"] == {"name": TINY_NAME, "version": 1}
    assert client.get("/readyz").json()["model"] == {"name": TINY_NAME, "version": 1}
    _force_active(active_tiny)  # rolled back: readiness no longer names the failure of a version nobody asks for
    runtime().refresh()
    assert runtime().failures() == {} and client.get("/readyz").json()["failed"] == {}
    _force_active(broken)
    runtime().refresh()
    runtime().refresh()  # a known failure is not retried on every poll...
    assert runtime().get(TINY_NAME) is served
    path.write_bytes(good)  # ...but it is once the file changes
    runtime().refresh()
    assert runtime().get(TINY_NAME).version_id == broken.pk
    assert runtime().failures() == {}


def test_an_unexpected_load_error_is_recorded_and_the_old_version_kept(active_tiny, tiny_artifact_v2, monkeypatch):
    served = runtime().get(TINY_NAME)
    v2 = services.model_version_register(artifact_path=tiny_artifact_v2)
    services.model_version_activate(version=v2)

    def explode(cls, path):
        raise MemoryError("out of memory while loading")

    monkeypatch.setattr(Engine, "from_path", classmethod(explode))
    runtime().refresh()
    assert runtime().get(TINY_NAME) is served
    assert "out of memory" in runtime().failures()[v2.pk]


def test_a_broken_first_version_leaves_the_service_not_ready(db, fresh_runtime, settings, artifact_copy, client, jpeg_bytes):
    settings.DEFAULT_MODEL_NAME = TINY_NAME
    path = artifact_copy()
    version = services.model_version_register(artifact_path=path, activate=True)
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ModelNotReady):
        runtime().get(TINY_NAME)
    assert version.pk in runtime().failures()
    reply = predict(client, jpeg_bytes)
    error = assert_error(reply, 503, "model_not_ready")
    assert error["message"].startswith(f"The active version of the model '{TINY_NAME}' could not be loaded: ")  # and why
    # Waiting does not repair a file: no Retry-After, and no "try again in a few seconds"
    assert "Retry-After" not in reply and error["message"].endswith("once an admin repairs that version or activates another.")
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()["error"]["code"], ready.has_header("Retry-After")) == (503, "model_not_ready", False)
    assert list(ready.json()["failed"]) == [f"{TINY_NAME} v1"]  # which version failed here, as the README says


def test_a_name_without_an_active_version_is_dropped_on_refresh(active_tiny, client, jpeg_bytes):
    runtime().get(TINY_NAME)
    ModelVersion.objects.filter(pk=active_tiny.pk).update(is_active=False)
    runtime().refresh()
    assert TINY_NAME not in runtime().loaded()
    reply = predict(client, jpeg_bytes)
    assert_error(reply, 503, "model_not_ready")
    assert reply["Retry-After"]


def test_a_request_over_the_inference_queue_bound_is_503_with_retry_after(active_tiny, client, jpeg_bytes, settings):
    settings.INFERENCE_QUEUE_MAX = 1
    runtime_module.reset()  # the gate is sized when the runtime is made
    gate = runtime()
    with gate.admit():  # one request is already inferring
        reply = predict(client, jpeg_bytes)
        assert_error(reply, 503, "busy")
        assert int(reply["Retry-After"]) >= 1
        batch = client.post(BATCH, {"images": [upload(jpeg_bytes)]})
        assert_error(batch, 503, "busy")
    assert not Prediction.objects.exists()
    assert predict(client, jpeg_bytes).status_code == 200  # the gate is released after each request
    assert predict(client, jpeg_bytes).status_code == 200


def test_the_gate_is_released_when_inference_fails(active_tiny, settings, client, jpeg_bytes, monkeypatch):
    settings.INFERENCE_QUEUE_MAX = 1
    runtime_module.reset()
    engine = runtime().get(TINY_NAME).engine

    def broken(batch):
        raise RuntimeError("inference blew up")

    monkeypatch.setattr(engine, "_forward", broken)  # the model itself fails, inside the gate
    assert_error(predict(client, jpeg_bytes), 500, "internal_error")
    monkeypatch.undo()
    assert predict(client, jpeg_bytes).status_code == 200  # a gate of one: it was given back
    assert Prediction.objects.count() == 1

