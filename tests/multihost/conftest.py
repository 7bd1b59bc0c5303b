"""Two app hosts behind nginx on loopback, sharing PostgreSQL, Redis and a model store (deploy/loopback.py).

The shared services start once per module; each test starts its own hosts and balancer (so a test may kill
one) and stops them after. Clients talk to the balancer over TLS with its self-signed certificate.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass

import pytest
import requests

from deploy.loopback import Topology
from tests.conftest import TINY_NAME, random_photo
from tests.webapp.helpers import encode

ACTIVATE_AT = (
    "import time; from django.core.management import call_command; "
    "call_command('activate', {name!r}, '{version}'); print(time.time())"
)


@pytest.fixture(scope="module")
def topology(tmp_path_factory, tiny_artifact, tiny_artifact_v2):
    """Shared services up, the tiny model registered as v1 (active) and v2, an API token; hosts not started."""
    topo = Topology(tmp_path_factory.mktemp("multihost"), name="multihost", env={"DEFAULT_MODEL_NAME": TINY_NAME})
    try:
        topo.up_shared()
        for number, source in enumerate((tiny_artifact, tiny_artifact_v2), start=1):
            target = topo.models_dir / f"{TINY_NAME}-v{number}.h5"
            shutil.copyfile(source, target)
            shutil.copyfile(source.with_suffix(".json"), target.with_suffix(".json"))
            topo.hosts[0].manage("register_model", str(target), *(["--activate"] if number == 1 else []))
        yield topo
    finally:
        topo.down()


@pytest.fixture
def running(topology):
    """Both hosts and the balancer, started for this test with v1 active, and stopped after it."""
    topology.hosts[0].manage("activate", TINY_NAME, "1")
    started: list[dict] = []

    def start(**env) -> Topology:
        topology.up_hosts({k: str(v) for k, v in env.items()})
        started.append(env)
        return topology

    yield start
    topology.down_hosts()


def token_for(topology: Topology, name: str) -> str:
    out = topology.hosts[0].manage("tokens", "create", name)
    return out.rsplit(": ", 1)[1].strip()


def photos() -> list[bytes]:
    return [encode(random_photo((160, 120), seed=n), "JPEG") for n in range(4)]


@dataclass
class Reply:
    started: float
    finished: float
    status: int | None  # None: no HTTP reply (refused, reset, timed out)
    version: int | None = None
    error: str = ""


class Load:
    """`clients` threads posting photos through the balancer one at a time each, within a request and time budget."""

    def __init__(self, topology: Topology, token: str, *, clients: int, max_requests: int, max_seconds: float):
        self.url, self.cert = topology.balancer.url("/api/v1/predict"), str(topology.balancer.cert)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.photos = photos()
        self.max_requests, self.deadline = max_requests, time.monotonic() + max_seconds
        self.replies: list[Reply] = []
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=max(0.0, self.deadline - time.monotonic()) + 15)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set() and time.monotonic() < self.deadline:
                with self._lock:
                    if len(self.replies) + 1 > self.max_requests:
                        return
                reply = self._post(session, self.photos[len(self.replies) % len(self.photos)])
                with self._lock:
                    self.replies.append(reply)

    def _post(self, session: requests.Session, photo: bytes) -> Reply:
        started = time.time()
        try:
            got = session.post(self.url, files={"image": ("p.jpg", photo, "image/jpeg")}, headers=self.headers, verify=self.cert, timeout=10)
        except requests.RequestException as exc:
            return Reply(started, time.time(), None, error=f"{type(exc).__name__}: {exc}")
        version = got.json()["model"]["version"] if got.status_code == 200 else None
        return Reply(started, time.time(), got.status_code, version, "" if got.status_code == 200 else got.text[:300])

    def count_ok(self) -> int:
        with self._lock:
            return sum(1 for r in self.replies if r.status == 200)

    def wait_for(self, ok: int, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while self.count_ok() < ok and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.count_ok() >= ok, f"only {self.count_ok()} successful replies: {self.replies[-3:]}"
