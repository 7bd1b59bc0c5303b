"""A real gunicorn (two workers) on loopback: predictions, the page, static files, and switching versions under load."""

from __future__ import annotations

import re
import subprocess
import time

import pytest
import requests

from tests.conftest import GOLDEN, REPO_ROOT, TINY_CLASSES, TINY_NAME
from tests.e2e.conftest import Load, static_paths

pytestmark = pytest.mark.e2e

PLAN = (2, 1, 2, 1, 2)  # five activations while eight clients send requests
SWITCH_SECONDS = 5.0


def test_it_serves_a_prediction_the_page_and_static_files(make_server, tiny_artifact):
    server, _ = make_server(tiny_artifact)

    photo = (GOLDEN / "bird" / "turkey.jpg").read_bytes()
    reply = requests.post(server.url("/api/v1/predict"), files={"image": ("turkey.jpg", photo, "image/jpeg")}, timeout=10)

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == {"name": TINY_NAME, "version": 1}
    probabilities = [p["probability"] for p in body["predictions"]]
    assert len(probabilities) == min(5, len(TINY_CLASSES))
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
    assert {p["label"] for p in body["predictions"]} == {c.label for c in TINY_CLASSES}

    page = requests.get(server.url("/"), timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    paths = static_paths(page.text)
    assert {p.rsplit(".", 1)[-1] for p in paths} >= {"css", "js"}, paths
    for path in paths:
        asset = requests.get(server.url(path), timeout=10)
        assert asset.status_code == 200, path
        assert asset.content
        assert "immutable" in asset.headers.get("Cache-Control", ""), (path, asset.headers)  # whitenoise, hashed name

    # HEAD, as uptime checkers send it: no body, so gunicorn has nothing to warn about ("sent body bytes on a
    # no-body response", once per probe)
    for path in ("/healthz", "/readyz", "/", "/api/v1/models"):
        head = requests.head(server.url(path), timeout=10)
        assert head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) > 0, path
    assert "no-body response" not in server.log_path.read_text()



def test_a_client_on_loopback_cannot_claim_https_or_move_the_scripts_root(make_server, tiny_artifact):
    # gunicorn alone believes X-Forwarded-Proto (and SCRIPT_NAME) from 127.0.0.1; without a trusted proxy
    # (TRUSTED_PROXY_COUNT=0, the default) the service must not: the links it builds say what the client really used.
    server, _ = make_server(tiny_artifact)
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-Protocol": "ssl", "X-Forwarded-Ssl": "on"}
    for claimed in (https, {"SCRIPT_NAME": "/elsewhere"}):
        reply = requests.get(server.url("/api/v1/"), headers=claimed, timeout=10)
        assert reply.status_code == 200, (claimed, reply.status_code, reply.text[:200])
        links = reply.json()
        assert links and all(link.startswith(server.url("/api/v1/")) for link in links.values()), (claimed, links)


def test_a_gunicorn_started_without_collectstatic_collects_first_and_serves_the_page(make_server, tiny_artifact, tmp_path):
    # Started by hand, with a STATIC_ROOT nothing was ever collected into: every page used to be a 500.
    static_root = tmp_path / "never-collected"
    server, _ = make_server(tiny_artifact, env={"STATIC_ROOT": str(static_root)})

    page = requests.get(server.url("/"), timeout=10)
    assert page.status_code == 200, page.text[:500]
    assert (static_root / "staticfiles.json").is_file()
    for path in static_paths(page.text):
        asset = requests.get(server.url(path), timeout=10)
        assert asset.status_code == 200 and "immutable" in asset.headers.get("Cache-Control", ""), path
    assert requests.get(server.url("/api/v1/docs"), timeout=10).status_code == 200


def test_a_static_root_that_cannot_be_written_stops_the_start_with_one_line(tmp_path):
    from tests.e2e.conftest import BIN, Server

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    server = Server(tmp_path / "server", {"STATIC_ROOT": str(blocker / "static")})
    server.var_dir.mkdir(parents=True)
    server.manage("migrate", "--noinput")
    done = subprocess.run([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"], cwd=REPO_ROOT, env=server.env,
                          capture_output=True, text=True, timeout=120)

    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Cannot collect the static files into STATIC_ROOT {blocker / 'static'} (")
    assert last.endswith("it must be a folder this user can write, or one `manage.py collectstatic` already filled "
                         "(as the Dockerfile does).")
    assert "Traceback" not in done.stderr


def test_a_database_never_migrated_stops_the_start_with_one_line_naming_the_command(tmp_path):
    # Started by hand on a fresh VAR_DIR: the workers came up and every page was a 500 (no such table).
    from tests.e2e.conftest import BIN, Server

    server = Server(tmp_path / "server", {})
    server.var_dir.mkdir(parents=True)
    done = subprocess.run([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"], cwd=REPO_ROOT, env=server.env,
                          capture_output=True, text=True, timeout=120)

    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"The database lacks \d+ of the project's migrations: run `python manage.py migrate` first "
                        r"\(`make run` does\)\.", last), last
    assert "Booting worker" not in done.stderr and "Traceback" not in done.stderr


def _wait_until_every_worker_serves(probe, version: int, since: float, seconds: float) -> dict[int, float]:
    """pid -> seconds after `since` at which that worker's /readyz first reported `version`."""
    switched: dict[int, float] = {}
    while len(switched) < len(probe.conns) and time.time() < since + seconds:
        for pid, serving in probe.versions().items():
            if serving == version and pid not in switched:
                switched[pid] = time.time() - since
        time.sleep(0.05)
    return switched


def test_every_worker_switches_within_5s_and_no_request_fails(make_server, tiny_artifact, tiny_artifact_v2, photo_bytes):
    # 8 clients may all land on one worker: a queue that takes them, so no request is shed as busy.
    server, probe = make_server(tiny_artifact, tiny_artifact_v2, env={"INFERENCE_QUEUE_MAX": "8"})
    assert set(probe.versions().values()) == {1}

    switches = []  # (version, committed at, every worker serving it at, seconds per worker, activation asked at)
    with Load(server, photo_bytes, clients=8, max_seconds=90) as load:
        time.sleep(1.0)
        for version in PLAN:
            asked = time.time()
            committed = server.activate(version)
            latency = _wait_until_every_worker_serves(probe, version, committed, SWITCH_SECONDS * 3)
            assert len(latency) == len(probe.conns), f"v{version}: only {latency} switched\n{server.output()}"
            switches.append((version, committed, committed + max(latency.values()), latency, asked))
            time.sleep(1.0)  # requests sent while every worker serves it, before the next activation is asked for
    replies = load.replies
    # A window ends when the next activation is ASKED for: its commit comes before the time the shell prints,
    # and a worker may already serve the next version in between.
    ends = [s[4] for s in switches[1:]] + [float("inf")]

    failed = [r for r in replies if r.status != 200]
    assert not failed, f"{len(failed)} of {len(replies)} requests failed, e.g. {failed[:3]}"
    # Before the first activation was asked for, only v1 answered (its commit precedes the printed time, and under
    # load a worker may poll it before the shell prints).
    assert all(r.version == 1 for r in replies if r.finished < switches[0][4])
    for (version, committed, everywhere, latency, _), end in zip(switches, ends):
        print(f"v{version}: workers switched after {sorted(round(s, 2) for s in latency.values())} s")
        assert max(latency.values()) <= SWITCH_SECONDS, (version, latency)
        # Once every worker has switched, no reply may carry another version (until the next activation).
        window = [r for r in replies if everywhere <= r.started < end]
        assert window, f"no request was sent between the switch to v{version} and the next activation"
        assert {r.version for r in window} == {version}, (version, [r.version for r in window])
        stale = [r.started - committed for r in replies if committed <= r.started < end and r.version != version]
        print(f"    last stale reply started {max(stale, default=0):.2f} s after the commit; {len(window)} checked")
    print(f"{len(replies)} requests, all 200")
