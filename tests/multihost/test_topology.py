"""Several hosts behind one balancer: activations reach every host, a dead host is routed around, limits are shared."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from deploy.loopback import REPO, wait_until
from tests.conftest import TINY_NAME
from tests.multihost.conftest import ACTIVATE_AT, Load, photos, token_for

pytestmark = [pytest.mark.multihost, pytest.mark.e2e]  # e2e too: "not e2e" quick runs leave it out
SWITCH_SECONDS = 5.0
CLIENTS = 3  # a load well below capacity: each host admits 8 requests at once (INFERENCE_QUEUE_MAX)


def test_an_activation_on_host_a_is_served_by_both_hosts_within_5s_and_no_request_fails(running):
    topology = running(API_RATE_LIMIT="100000/m")
    host_a, host_b = topology.hosts
    with Load(topology, token_for(topology, "switch"), clients=CLIENTS, max_requests=2000, max_seconds=40) as load:
        load.wait_for(10)
        asked = time.time()  # the commit precedes the printed time, and a host may switch in between
        committed = float(host_a.manage("shell", "-c", ACTIVATE_AT.format(name=TINY_NAME, version=2)).split()[-1])
        switched = {}
        while len(switched) < 2 and time.time() < committed + 3 * SWITCH_SECONDS:
            for host in (host_a, host_b):
                body = host.readyz()
                if host.name not in switched and body and body["model"]["version"] == 2:
                    switched[host.name] = time.time() - committed
            time.sleep(0.05)
        settled = load.count_ok()
        load.wait_for(settled + 10)
    assert set(switched) == {"host-a", "host-b"}, switched
    assert max(switched.values()) <= SWITCH_SECONDS, switched
    failed = [r for r in load.replies if r.status != 200]
    assert failed == [], failed[:5]
    both_switched = committed + max(switched.values())
    assert {r.version for r in load.replies if r.started > both_switched} == {2}
    assert {r.version for r in load.replies if r.finished < asked} == {1}


def test_a_host_that_dies_under_load_costs_only_its_in_flight_requests(running):
    topology = running(API_RATE_LIMIT="100000/m")
    host_a, host_b = topology.hosts
    with Load(topology, token_for(topology, "crash"), clients=CLIENTS, max_requests=2000, max_seconds=40) as load:
        load.wait_for(20)
        host_b.kill()
        gone = refused_since(host_b)  # a dying process still accepts connections until its last socket closes
        after = load.count_ok()
        load.wait_for(after + 30)
    failed = [r for r in load.replies if r.status != 200]
    # Each client has one request in flight at most, so at most CLIENTS were on host B when it died.
    assert len(failed) <= CLIENTS, failed
    assert all(r.started <= gone for r in failed), failed
    assert all(r.status == 502 for r in failed), failed  # the balancer answered; no client connection broke
    assert host_a.readyz() is not None and host_b.readyz() is None
    assert predictions_logged(host_b) > 0, "host B served nothing before it died: the test proved nothing"


def test_a_database_that_drops_every_connection_costs_no_request(running):
    """As a PostgreSQL restart or failover does: every kept connection is gone; each is replaced before use."""
    topology = running(API_RATE_LIMIT="100000/m")
    role = topology.postgres.role
    with Load(topology, token_for(topology, "dropped"), clients=CLIENTS, max_requests=2000, max_seconds=40) as load:
        load.wait_for(20)
        topology.postgres.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
        dropped = time.time()
        after = load.count_ok()
        load.wait_for(after + 40)
    failed = [r for r in load.replies if r.status != 200]
    # A request whose query was running when its connection went down fails (at most one per client); every
    # request after that finds its thread's dead connection replaced instead of failing on it.
    assert len(failed) <= CLIENTS and all(r.started <= dropped for r in failed), failed[:5]
    assert sum(r.status == 200 for r in load.replies if r.started > dropped) >= 40


def test_a_database_or_cache_that_goes_down_is_a_503_naming_it_in_answers_and_readyz(running):
    """With the model loaded, /readyz said ready while PostgreSQL was down, and predictions were 500s with tracebacks."""
    topology = running(API_RATE_LIMIT="100000/m")
    host, role = topology.hosts[0], topology.postgres.role
    headers = {"Authorization": f"Bearer {token_for(topology, 'outage')}"}
    predict = lambda: requests.post(topology.balancer.url("/api/v1/predict"), headers=headers, timeout=30,  # noqa: E731
                                    files={"image": ("p.jpg", photos()[0], "image/jpeg")}, verify=str(topology.balancer.cert))
    readyz = lambda: requests.get(f"http://{host.address}/readyz", timeout=10)  # noqa: E731
    assert predict().status_code == 200 and readyz().status_code == 200

    topology.postgres.psql(f"ALTER ROLE {role} NOLOGIN")  # refuses new connections; then the kept ones are dropped
    topology.postgres.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
    try:
        answers = [predict(), readyz()]
        time.sleep(3)  # the poller and the heartbeat meet the outage too (MODEL_POLL_SECONDS is 1 here)
    finally:
        topology.postgres.psql(f"ALTER ROLE {role} LOGIN")
    for reply in answers:
        assert (reply.status_code, reply.json()["error"]["code"], reply.headers.get("Retry-After")) == (503, "database_unavailable", "5")
    wait_until(lambda: predict().status_code == 200, 30, "a prediction once the database is back")

    topology.redis.stop()
    try:
        answers = [predict(), readyz()]
    finally:
        topology.redis.start()
    for reply in answers:
        assert (reply.status_code, reply.json()["error"]["code"], reply.headers.get("Retry-After")) == (503, "cache_unavailable", "5")
    wait_until(lambda: predict().status_code == 200, 30, "a prediction once the cache is back")
    logs = "".join(h.log_path.read_text() for h in topology.hosts)
    assert "the database cannot be reached" in logs and "Traceback" not in logs, logs[-3000:]


def refused_since(host, seconds: float = 10) -> float:
    """The time from which the host's port refuses connections."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", host.port), timeout=1).close()
        except ConnectionRefusedError:
            return time.time()
        time.sleep(0.01)
    raise AssertionError(f"{host.name} still accepts connections {seconds} s after it was killed")


def predictions_logged(host) -> int:
    return (host.root / "access.log").read_text().count('"path": "/api/v1/predict"')


def test_a_rate_limit_holds_for_both_hosts_together(running):
    limit = 12
    topology = running(API_RATE_LIMIT=f"{limit}/m")
    token = token_for(topology, "limited")
    photo = photos()[0]
    statuses = []
    with requests.Session() as session:
        for _ in range(2 * limit):
            reply = session.post(
                topology.balancer.url("/api/v1/predict"), files={"image": ("p.jpg", photo, "image/jpeg")},
                headers={"Authorization": f"Bearer {token}"}, verify=str(topology.balancer.cert), timeout=10,
            )
            statuses.append(reply.status_code)
    assert statuses == [200] * limit + [429] * limit, statuses
    for host in topology.hosts:  # the balancer spread them: each host counted the other's requests too
        assert predictions_logged(host) >= limit // 2, (host.name, predictions_logged(host))


def test_request_ids_cross_the_balancer_and_each_host_is_scraped_directly(running):
    topology = running(API_RATE_LIMIT="100000/m")
    cert, headers = str(topology.balancer.cert), {"Authorization": f"Bearer {token_for(topology, 'ids')}"}
    files = {"image": ("p.jpg", photos()[0], "image/jpeg")}
    given = requests.post(topology.balancer.url("/api/v1/predict"), files=files, headers={**headers, "X-Request-ID": "client-7"}, verify=cert)
    made = requests.post(topology.balancer.url("/api/v1/predict"), files=files, headers=headers, verify=cert)
    # An id the hosts would not keep is replaced at the balancer, so both sides log the one the client gets back.
    unusable = requests.post(topology.balancer.url("/api/v1/predict"), files=files, verify=cert,
                             headers={**headers, "X-Request-ID": "bad id with spaces"})
    assert (given.status_code, given.headers["X-Request-ID"]) == (200, "client-7")
    assert given.headers["Server"] == "nginx"  # server_tokens off: no version for scanners
    for reply in (made, unusable):
        assert reply.status_code == 200 and len(reply.headers["X-Request-ID"]) == 32  # nginx's $request_id
    ids = ("client-7", made.headers["X-Request-ID"], unusable.headers["X-Request-ID"])

    def both_sides_logged() -> bool:  # each side writes its line after replying, the hosts' and nginx's in their own time
        logged = "".join((host.root / "access.log").read_text() for host in topology.hosts)
        balancer = (topology.balancer.root / "access.log").read_text()
        return all(f'"request_id": "{rid}"' in logged and f"request_id={rid} " in balancer for rid in ids)

    wait_until(both_sides_logged, 30, f"the request ids {ids} in the hosts' and the balancer's access logs", log=topology.balancer.root / "access.log")
    assert sum(predictions_logged(h) for h in topology.hosts) == 3

    assert requests.get(topology.balancer.url("/metrics"), verify=cert).status_code == 404
    served = 0
    for host in topology.hosts:  # production settings: loopback may scrape; each host counts only its own
        text = requests.get(f"http://{host.address}/metrics", timeout=10).text
        served += sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                      if s.name == "recognizer_predictions_total" and s.labels["status"] == "ok")
    assert served == 3


def test_backup_and_restore_bring_back_the_database_and_the_model_store(topology, tmp_path):
    host = topology.hosts[0]
    host.manage("activate", TINY_NAME, "1")
    before = json.loads(host.manage("models", "--json"))["versions"]
    kept = Path(host.env["MEDIA_ROOT"]) / "feedback" / "ab" / "kept.jpg"  # a feedback photo, as the service keeps them
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(b"photo")
    paths = run_script("backup.sh", str(tmp_path / "backups"), env=host.env).split()
    assert all(os.stat(path).st_mode & 0o077 == 0 for path in paths)  # password and token hashes: the owner's only

    host.manage("activate", TINY_NAME, "2")  # changes after the backup: each must be undone
    (topology.models_dir / f"{TINY_NAME}-v1.h5").unlink()
    kept.unlink()
    run_script("restore.sh", *paths, env=host.env)
    assert kept.read_bytes() == b"photo"

    after = json.loads(host.manage("models", "--json"))["versions"]
    assert [(v["version"], v["active"], v["engine"], v["problem"]) for v in after] == [
        (v["version"], v["active"], v["engine"], v["problem"]) for v in before
    ]
    assert [v["active"] for v in after] == [False, True] and after[1]["problem"] == ""
    host.manage("activate", TINY_NAME, "1")  # refuses an artifact that is missing or differs from its record


def run_script(name: str, *args: str, env: dict) -> str:
    done = subprocess.run([str(REPO / "deploy" / name), *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout
