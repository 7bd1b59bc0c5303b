"""Metrics, logs and heartbeats from a real gunicorn with 2 workers: every worker's numbers in one scrape."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TINY_NAME, random_photo
from tests.e2e.conftest import WORKERS
from tests.webapp.helpers import encode

pytestmark = pytest.mark.e2e
PER_WORKER = 3


def post_on(conn, server, data: bytes, request_id: str):
    """POST one photo on a kept-alive connection to one particular worker."""
    prepared = requests.Request("POST", server.url("/api/v1/predict"), files={"image": ("p.jpg", data, "image/jpeg")}).prepare()
    conn.request("POST", "/api/v1/predict", prepared.body, {**prepared.headers, "X-Request-ID": request_id})
    reply = conn.getresponse()
    reply.read()
    return reply


def samples(server, name: str) -> list:
    text = requests.get(server.url("/metrics"), timeout=10).text
    return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]


def test_one_scrape_adds_up_every_worker_and_logs_are_json_with_request_ids(make_server, tiny_artifact):
    server, probe = make_server(tiny_artifact, env={"LOG_FORMAT": "json"})
    photo = encode(random_photo((120, 90)), "JPEG")
    for pid, conn in probe.conns.items():
        for n in range(PER_WORKER):
            reply = post_on(conn, server, photo, f"req-{pid}-{n}")
            assert (reply.status, reply.getheader("X-Request-ID")) == (200, f"req-{pid}-{n}")

    for _ in range(4):  # whichever worker answers the scrape, it reports the sum over both
        ok = [s for s in samples(server, "recognizer_predictions_total") if s.labels["status"] == "ok"]
        assert [(s.labels["model"], s.labels["version"], s.value) for s in ok] == [(TINY_NAME, "1", WORKERS * PER_WORKER)]
    loaded = samples(server, "recognizer_model_loaded")
    assert {s.labels["pid"] for s in loaded if s.value == 1} == {str(pid) for pid in probe.conns}
    assert {s.labels["pid"] for s in samples(server, "recognizer_worker_resident_memory_bytes")} >= {str(p) for p in probe.conns}

    access = [json.loads(line) for line in (server.root / "access.log").read_text().splitlines()]
    predicted = [line for line in access if line["path"] == "/api/v1/predict"]
    assert sorted(line["request_id"] for line in predicted) == sorted(f"req-{p}-{n}" for p in probe.conns for n in range(PER_WORKER))
    assert {(line["status"], line["method"]) for line in predicted} == {(200, "POST")}
    app = [json.loads(line) for line in server.output(tail=10**9).splitlines() if line.startswith("{")]
    requests_logged = [line for line in app if line.get("logger") == "webapp.request" and line["path"] == "/api/v1/predict"]
    assert {(line["model"], line["version"], line["process"] in probe.conns) for line in requests_logged} == {(TINY_NAME, 1, True)}
    assert len(requests_logged) == WORKERS * PER_WORKER


def test_a_killed_workers_gauges_leave_the_scrape_and_its_counts_stay(make_server, tiny_artifact):
    server, probe = make_server(tiny_artifact)
    photo = encode(random_photo((120, 90)), "JPEG")
    before = server.worker_pids()
    victim, conn = next(iter(probe.conns.items()))
    assert post_on(conn, server, photo, "before-kill").status == 200
    probe.close()
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while not server.worker_pids() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    replaced = server.wait_ready()  # gunicorn started another worker; its child_exit hook marked the dead one
    assert victim not in replaced.conns and len(replaced.conns) == WORKERS
    loaded = {s.labels["pid"] for s in samples(server, "recognizer_model_loaded") if s.value == 1}
    assert loaded == {str(pid) for pid in replaced.conns}
    ok = [s.value for s in samples(server, "recognizer_predictions_total") if s.labels["status"] == "ok"]
    assert ok == [1.0]


def test_each_worker_reports_what_it_serves_to_manage_py_models(make_server, tiny_artifact):
    server, probe = make_server(tiny_artifact, env={"INSTANCE_NAME": "host-a"})
    for _ in range(20):  # each manage.py run takes seconds: the heartbeats (every second here) land meanwhile
        report = json.loads(server.manage("models", "--json"))
        if len(report["workers"]) == WORKERS:
            break
    (version,) = report["versions"]
    assert sorted((w["instance"], w["pid"], w["version"], w["engine"]) for w in report["workers"]) == sorted(
        ("host-a", pid, 1, version["engine"]) for pid in probe.conns
    )
    assert version["engine"] == "onnxruntime" and version["problem"] == ""


def _maps_tensorflow(pid: int) -> bool:
    try:
        return "tensorflow" in open(f"/proc/{pid}/maps").read()
    except OSError:  # the worker is gone
        return False


def test_a_worker_that_registered_a_version_in_the_admin_hands_its_place_to_one_without_tensorflow(
        make_server, tiny_artifact, tiny_artifact_v2):
    from tests.e2e.test_learning_loop import admin_session

    server, probe = make_server(tiny_artifact)
    before = server.worker_pids()
    assert not any(_maps_tensorflow(pid) for pid in before)  # serving on ONNX Runtime needs none
    session = admin_session(server)
    with open(tiny_artifact_v2, "rb") as h5, open(tiny_artifact_v2.with_suffix(".json"), "rb") as manifest:
        reply = session.post(server.url("/admin/webapp/modelversion/register/"), timeout=120, data={
            "notes": "", "csrfmiddlewaretoken": session.cookies["csrftoken"]},
            files={"h5_file": ("model.h5", h5), "manifest_file": ("model.json", manifest)})
    assert reply.status_code == 200 and f"Registered {TINY_NAME} v2" in reply.text, reply.text[-3000:]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # one worker retires gracefully; the master starts another
        now = server.worker_pids()
        if len(now) == WORKERS and now != before and requests.get(server.url("/readyz"), timeout=10).status_code == 200:
            break
        time.sleep(0.2)
    now = server.worker_pids()
    assert len(now) == WORKERS and len(now - before) == 1, (before, now, server.output())
    assert not any(_maps_tensorflow(pid) for pid in now)
    assert "loaded TensorFlow for POST /admin/webapp/modelversion/register/" in server.output()
    assert sorted(v["version"] for v in requests.get(server.url("/api/v1/models"), timeout=10).json()) == [1, 2]
