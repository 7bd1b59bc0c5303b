"""Two app hosts behind nginx on loopback, sharing PostgreSQL, Redis and a model store (deploy/loopback.py).

The shared services start once per module; each test starts its own hosts and balancer (so a test may kill
one) and stops them after. Clients talk to the balancer over TLS with its self-signed certificate.
"""

from __future__ import annotations

import shutil
import time

import pytest
import requests

from deploy.loopback import Topology
from tests.e2e import conftest as e2e
from tests.conftest import TINY_NAME, random_photo
from tests.webapp.helpers import encode

ACTIVATE_AT = (
    "import time; from django.core.management import call_command; "
    "call_command('activate', {name!r}, '{version}'); print(time.time())"
)


NEEDED = {"nginx": "nginx", "redis-server": "redis-server", "pg_ctlcluster": "postgresql", "openssl": "openssl"}


@pytest.fixture(scope="module")
def topology(tmp_path_factory, tiny_artifact, tiny_artifact_v2):
    """Shared services up, the tiny model registered as v1 (active) and v2, an API token; hosts not started."""
    missing = sorted({package for tool, package in NEEDED.items() if shutil.which(tool) is None})
    if missing:  # a developer's machine without them; .ci/run installs them, so CI always runs these
        pytest.skip(f"needs Debian's {', '.join(missing)} (apt-get install {' '.join(missing)}; .ci/run installs them)")
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


class Load(e2e.Load):
    """e2e's load (clients posting one photo at a time each, within budgets), through the balancer with a token."""

    def __init__(self, topology: Topology, token: str, *, clients: int, max_requests: int, max_seconds: float):
        super().__init__(None, photos(), clients=clients, max_requests=max_requests, max_seconds=max_seconds)
        self.url, self.cert = topology.balancer.url("/api/v1/predict"), str(topology.balancer.cert)
        self.headers = {"Authorization": f"Bearer {token}"}

    def send(self, photo: bytes) -> e2e.Reply:
        started = time.time()
        try:
            got = requests.post(self.url, files={"image": ("p.jpg", photo, "image/jpeg")}, headers=self.headers, verify=self.cert, timeout=self.timeout)
        except requests.RequestException as exc:
            return e2e.Reply(started, time.time(), None, error=f"{type(exc).__name__}: {exc}")
        body = got.json() if got.headers.get("Content-Type", "").startswith("application/json") else None
        return e2e.Reply(started, time.time(), got.status_code, headers=dict(got.headers), body=body)

    def count_ok(self) -> int:
        with self._lock:
            return sum(1 for r in self.replies if r.status == 200)

    def wait_for(self, ok: int, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while self.count_ok() < ok and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.count_ok() >= ok, f"only {self.count_ok()} successful replies: {self.replies[-3:]}"
