"""After an upgrade of the optimized runtime a version silently falls back to Keras: it is reported everywhere
an operator looks, and `manage.py recompile` brings the optimized engine back."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from recognizer.optimized import parity_record_path
from tests.conftest import TINY_NAME
from tests.webapp.test_metrics import scrape, value
from webapp import fleet, services
from webapp.runtime import runtime

pytestmark = pytest.mark.slow


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def upgraded(settings, db, fresh_runtime, artifact_copy):
    """A version compiled for ONNX Runtime whose parity record was written by another ONNX Runtime release."""
    settings.RECOGNIZER_ENGINE = "onnxruntime"
    settings.DEFAULT_MODEL_NAME = TINY_NAME
    path = artifact_copy()
    version = services.model_version_register(artifact_path=path, activate=True)
    assert version.engine == "onnxruntime", version.engine_note
    record = parity_record_path(path, "onnxruntime")
    older = {**json.loads(record.read_text()), "runtime": "1.0.0"}
    record.write_text(json.dumps(older))
    runtime().reload(TINY_NAME)  # what a worker started after the upgrade loads
    return version


def test_a_fallback_to_keras_is_reported_in_readyz_metrics_heartbeats_and_the_admin(upgraded, client, admin_client):
    assert runtime().get(TINY_NAME).engine.kind == "keras"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert "served by keras, not onnxruntime" in ready.json()["warnings"][0]
    metrics = scrape(client)
    assert value(metrics, "recognizer_engine_fallback", model=TINY_NAME, version="1", wanted="onnxruntime") == 1
    assert value(metrics, "recognizer_model_loaded", model=TINY_NAME, version="1", engine="keras") == 1
    fleet.worker_heartbeat_record()
    assert "checked with 1.0.0" in json.loads(run("models", "--json"))["versions"][0]["problem"]
    assert "warning:" in run("models")
    page = admin_client.get("/admin/webapp/modelversion/").content.decode()
    assert page.count(f"{TINY_NAME} v1 is served by keras, not onnxruntime") == 1


def test_the_fleet_banner_names_the_engine_each_worker_runs_and_shows_once_after_an_action(active_tiny, admin_client):
    from django.utils import timezone

    from webapp.models import WorkerHeartbeat

    now = timezone.now()
    for pid, engine in [(1, "onnxruntime"), (2, "onnxruntime"), (3, "keras"), (4, "onnxruntime-int8")]:
        WorkerHeartbeat.objects.create(instance="h1", pid=pid, model_name="m", version=2, engine=engine,
                                       wanted_engine="onnxruntime-int8", started_at=now, seen_at=now)
    assert fleet.engine_fallback_fleet_warnings() == [
        "m v2 is served by keras, not onnxruntime-int8, on h1:3 (slower): recompile it (action below, or manage.py recompile m).",
        "m v2 is served by onnxruntime, not onnxruntime-int8, on h1:1, h1:2 (slower): recompile it "
        "(action below, or manage.py recompile m).",
    ]
    reply = admin_client.post("/admin/webapp/modelversion/", {"action": "roll_back_selected", "_selected_action": [active_tiny.pk]}, follow=True)
    page = reply.content.decode()
    assert "has no previously active version" in page  # the action ran, then the list was shown once
    assert page.count("m v2 is served by onnxruntime, not") == 1


def test_recompile_restores_the_optimized_engine_in_running_workers(upgraded, client):
    get_user_model().objects.create_user("ops", is_staff=True)
    assert run("recompile", "--by", "ops").strip() == f"{TINY_NAME} v1: served by onnxruntime"
    fleet.worker_heartbeat_record()  # the next poll of each worker picks the new copy up
    assert runtime().get(TINY_NAME).engine.kind == "onnxruntime"
    assert client.get("/readyz").json()["warnings"] == []
    assert value(scrape(client), "recognizer_engine_fallback", model=TINY_NAME, version="1", wanted="onnxruntime") == 0
    assert run("recompile").startswith("nothing to recompile")


def test_the_admin_action_recompiles_with_the_same_service(upgraded, admin_client):
    reply = admin_client.post(
        "/admin/webapp/modelversion/", {"action": "recompile_selected", "_selected_action": [upgraded.pk]}, follow=True
    )
    shown = [str(m) for m in reply.context["messages"]]
    assert f"{TINY_NAME} v1 is served by onnxruntime." in shown, shown
    fleet.worker_heartbeat_record()
    assert runtime().get(TINY_NAME).engine.kind == "onnxruntime"


@pytest.mark.parametrize("damage", ["changed", "deleted"])
def test_recompile_says_an_artifact_changed_or_deleted_since_registration_instead_of_nothing_to_do(
    settings, db, fresh_runtime, artifact_copy, damage
):
    settings.RECOGNIZER_ENGINE = "onnxruntime"
    path = artifact_copy()
    services.model_version_register(artifact_path=path)
    if damage == "changed":
        with open(path, "ab") as handle:
            handle.write(b"\0")
    else:
        path.unlink()
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 versions could not be recompiled"):
        call_command("recompile", stdout=io.StringIO(), stderr=err)
    assert ("changed on disk" if damage == "changed" else "is missing") in err.getvalue()


def test_a_manifest_another_database_registered_the_file_with_is_repaired_by_recompile(settings, db, fresh_runtime, artifact_copy, client):
    # The same file registered in a second database (a benchmark's, a staging copy) on another engine: that
    # registration wrote its engine into the manifest beside the file, so this deployment's workers looked for a
    # copy its version does not have and /readyz told to run `recompile`, which found nothing to do.
    settings.RECOGNIZER_ENGINE = "onnxruntime"
    settings.DEFAULT_MODEL_NAME = TINY_NAME
    path = artifact_copy()
    version = services.model_version_register(artifact_path=path, activate=True)
    assert version.engine == "onnxruntime", version.engine_note
    manifest = path.with_suffix(".json")
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "engine": "onnxruntime-int8"}))
    runtime().reload(TINY_NAME)
    assert "not onnxruntime-int8" in client.get("/readyz").json()["warnings"][0]
    assert "names the engine onnxruntime-int8" in json.loads(run("models", "--json"))["versions"][0]["problem"]

    said = run("recompile", TINY_NAME)

    assert f"{TINY_NAME} v1: served by onnxruntime" in said
    assert json.loads(manifest.read_text())["engine"] == "onnxruntime"
    runtime().reload(TINY_NAME)
    assert client.get("/readyz").json()["warnings"] == []
    assert run("recompile", TINY_NAME).startswith("nothing to recompile")
