"""Faults on a real gunicorn: a corrupt model version, more requests than the inference queue takes, a killed worker."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from tests.e2e.conftest import Load

pytestmark = pytest.mark.e2e


def test_a_corrupt_version_is_never_served_and_no_request_fails(make_server, tiny_artifact, tiny_artifact_v2, photo_bytes):
    server, probe = make_server(tiny_artifact, tiny_artifact_v2)
    h5 = server.models_dir / "tiny-wildlife-v2.h5"
    h5.write_bytes(os.urandom(h5.stat().st_size))  # registered while good, broken on disk afterwards

    with Load(server, photo_bytes, clients=4, max_seconds=60) as load:
        time.sleep(0.5)
        committed = server.force_active(2)  # the service itself refuses a changed file (tests/webapp)
        deadline = time.monotonic() + 20
        while None in probe.failures("tiny-wildlife v2").values() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.5)  # two more poll rounds: a version that failed must not be served later either
    replies = load.replies

    refused = probe.failures("tiny-wildlife v2")  # each worker's own word, on its own connection
    assert len(refused) == len(probe.conns) and all(why and "sha256" in why for why in refused.values()), refused
    failed = [r for r in replies if r.status != 200]
    assert not failed, f"{len(failed)} of {len(replies)} requests failed, e.g. {failed[:3]}"
    assert {r.version for r in replies} == {1}
    assert [r for r in replies if r.started > committed], "no request was sent after the activation"
    assert set(probe.versions().values()) == {1}
    active = requests.get(server.url("/api/v1/models/tiny-wildlife"), timeout=10).json()
    assert active["version"] == 2  # the database says v2; every worker keeps v1


def test_overload_gets_fast_503s_with_retry_after_and_no_timeouts(make_server, tiny_artifact, photo_bytes):
    server, _ = make_server(tiny_artifact, env={"INFERENCE_QUEUE_MAX": "2", "WEB_THREADS": "8"})

    with Load(server, photo_bytes, clients=40, max_requests=400, max_seconds=60, timeout=10) as load:
        load.wait()
    replies = load.replies

    assert len(replies) == 400
    assert not [r for r in replies if r.status is None], [r.error for r in replies if r.status is None][:3]
    assert {r.status for r in replies} == {200, 503}, {r.status for r in replies}
    busy = [r for r in replies if r.status == 503]
    for reply in busy:
        assert int(reply.headers["Retry-After"]) >= 1
        assert reply.body["error"]["code"] == "busy"
        assert reply.body["error"]["message"]
    ok = [r for r in replies if r.status == 200]
    assert all(r.version == 1 and len(r.body["predictions"]) == 4 for r in ok)
    slowest_busy = max(r.seconds for r in busy)
    assert slowest_busy < 5, f"a 503 took {slowest_busy:.1f}s; shedding load should be fast"
    print(
        f"{len(busy)}/{len(replies)} shed with 503 ({len(busy) / len(replies):.0%}); slowest 503 {slowest_busy:.2f}s, "
        f"slowest 200 {max(r.seconds for r in ok):.2f}s"
    )


def test_gunicorn_replaces_a_killed_worker_and_only_its_in_flight_requests_fail(make_server, tiny_artifact, photo_bytes):
    # One worker must carry all 8 clients while the other is replaced: a queue that takes them all, so that
    # load shedding (tested above) does not mix with the failures under test.
    server, probe = make_server(tiny_artifact, env={"INFERENCE_QUEUE_MAX": "8"})
    before = server.worker_pids()
    victim = min(before)
    probe.close()

    with Load(server, photo_bytes, clients=8, max_seconds=60) as load:
        time.sleep(1.0)
        killed = time.time()
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not server.worker_pids() - before and time.monotonic() < deadline:
            time.sleep(0.05)
        replacement = server.worker_pids() - before
        assert replacement, f"gunicorn did not replace worker {victim}:\n{server.output()}"
        probe = server.wait_ready()  # every worker, the new one included, answers /readyz with 200
        ready = time.time()
        time.sleep(1.5)
    replies = load.replies

    assert victim not in server.worker_pids()
    assert set(probe.versions()) == (before - {victim}) | replacement
    assert set(probe.versions().values()) == {1}
    failed = [r for r in replies if r.status != 200]
    assert all(r.status is None for r in failed), [(r.status, r.body) for r in failed]  # dropped, never an HTTP error
    assert len(failed) <= load.clients
    assert all(r.started < killed < r.finished for r in failed), "only requests in flight at the kill may fail"
    after = [r for r in replies if r.started > ready]
    assert after and all(r.status == 200 for r in after)
    print(f"worker {victim} killed; {replacement} ready after {ready - killed:.1f}s; {len(failed)} of {len(replies)} dropped")
