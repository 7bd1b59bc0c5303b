"""A real gunicorn on loopback, prepared the way an operator would: its own VAR_DIR (SQLite there) and models
folder, `manage.py migrate` and `manage.py register_model`, then `gunicorn -c gunicorn.conf.py`.

Nothing here touches the pytest-django test database: every write goes through manage.py subprocesses or
HTTP. gunicorn does not say which worker answered a request, so `WorkerProbe` keeps one HTTP connection
open to each worker (found through /proc) and asks every worker, not a random one, what it serves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException
from pathlib import Path

import pytest
import requests

from tests.conftest import GOLDEN, REPO_ROOT, TINY_NAME

BIN = REPO_ROOT / ".venv" / "bin"
WORKERS = 2
READY_SECONDS = 60  # two workers importing TensorFlow on two (shared) cores
KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")  # nothing else leaks in (DATABASE_URL, WEB_*, ...)
ACTIVATE = (
    "import time; from webapp import services; from webapp.models import ModelVersion; "
    "services.model_version_activate(version=ModelVersion.objects.get(name={name!r}, version={version})); "
    "print(time.time())"
)

# Bypasses the service's checks: the database says v{version} is active whatever its file holds,
# as after a file damaged between activation and a worker's (re)load.
FORCE_ACTIVE = (
    "import time; from django.db import transaction; from webapp.models import ModelVersion; "
    "versions = ModelVersion.objects.filter(name={name!r}); "
    "transaction.atomic()(lambda: (versions.update(is_active=False), versions.filter(version={version}).update(is_active=True)))(); "
    "print(time.time())"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One prepared gunicorn: `manage(...)` runs manage.py with the server's environment."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root, self.port = root, free_port()
        self.var_dir, self.models_dir = root / "var", root / "models"
        self.log_path = root / "gunicorn.log"
        self.env = {key: os.environ[key] for key in KEEP_ENV if key in os.environ}
        self.env.update(
            DJANGO_SETTINGS_MODULE="webapp.settings.dev",
            VAR_DIR=str(self.var_dir),
            RECOGNIZER_MODELS_DIR=str(self.models_dir),
            DEFAULT_MODEL_NAME=TINY_NAME,
            MODEL_POLL_SECONDS="1",
            API_RATE_LIMIT="1000000/m",
            HOST="127.0.0.1",
            PORT=str(self.port),
            WEB_WORKERS=str(WORKERS),
            ACCESS_LOG=str(root / "access.log"),
            PYTHONUNBUFFERED="1",
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        self.env.update(env)
        self.process: subprocess.Popen | None = None
        self.probes: list[WorkerProbe] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def manage(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
        )
        if done.returncode != 0:
            pytest.fail(f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}")
        return done.stdout

    def add_artifact(self, source: Path, version: int) -> Path:
        """Copy an artifact (H5 + manifest) into this server's models folder, so the test may damage it."""
        target = self.models_dir / f"{TINY_NAME}-v{version}.h5"
        shutil.copyfile(source, target)
        shutil.copyfile(source.with_suffix(".json"), target.with_suffix(".json"))
        return target

    def activate(self, version: int) -> float:
        """Activate `version` from another process, as an operator would; returns the wall time of the commit."""
        out = self.manage("shell", "-c", ACTIVATE.format(name=TINY_NAME, version=version))
        return float(out.split()[-1])

    def force_active(self, version: int) -> float:
        out = self.manage("shell", "-c", FORCE_ACTIVE.format(name=TINY_NAME, version=version))
        return float(out.split()[-1])

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"],
                cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def wait_ready(self, seconds: float = READY_SECONDS) -> "WorkerProbe":
        """Wait until every worker answers /readyz with 200; fail with the server's output otherwise."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited ({self.process.returncode}) before it was ready:\n{self.output()}")
            if _status(self.url("/readyz")) == 200 and len(self.worker_pids()) == WORKERS:
                self.probes.append(WorkerProbe(self, deadline))
                return self.probes[-1]
            time.sleep(0.2)
        pytest.fail(f"gunicorn was not ready within {seconds}s:\n{self.output()}")

    def stop(self) -> None:
        """SIGTERM to the master, then SIGKILL to whatever is left of its process group (workers included)."""
        for probe in self.probes:
            probe.close()
        if self.process is None:
            return
        try:  # a worker spends seconds in TensorFlow's exit handlers; the tests do not wait for them
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=1)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def output(self, tail: int = 12000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-tail:]

    def worker_pids(self) -> set[int]:
        """The master's children, from /proc (no `ps` needed)."""
        pids: set[int] = set()
        for task in Path(f"/proc/{self.process.pid}/task").glob("*"):
            try:
                pids.update(int(pid) for pid in (task / "children").read_text().split())
            except OSError:
                continue
        return pids

    def worker_holding(self, client_port: int) -> int | None:
        """The worker whose end of our loopback connection from `client_port` is open."""
        inode = _tcp_inode(self.port, client_port)
        if inode is None:
            return None
        for pid in self.worker_pids():
            for fd in Path(f"/proc/{pid}/fd").glob("*"):
                try:
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return pid
                except OSError:
                    continue
        return None


def _status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None


def _tcp_inode(server_port: int, client_port: int) -> str | None:
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote and fields[9] != "0":
            return fields[9]
    return None


class WorkerProbe:
    """One kept-alive connection per gunicorn worker: `versions()` asks each worker's own /readyz."""

    def __init__(self, server: Server, deadline: float):
        self.server, self.conns = server, {}
        pids = server.worker_pids()
        for pid in pids:
            self.conns[pid] = self._connect(pid, deadline)

    def _connect(self, pid: int, deadline: float) -> HTTPConnection:
        # Which worker accepts a new connection is up to the kernel: retry until `pid` does.
        while time.monotonic() < deadline:
            conn = HTTPConnection("127.0.0.1", self.server.port, timeout=10)
            # When gunicorn answers "Connection: close", http.client would silently open a new connection on the
            # next request, which may land on the other worker and be counted as this one. Fail instead: the
            # caller reconnects to this worker.
            conn.auto_open = 0
            try:
                conn.connect()
                port = conn.sock.getsockname()[1]
                if self._get(conn, "/readyz")[0] == 200 and conn.sock and self.server.worker_holding(port) == pid:
                    return conn
            except (OSError, HTTPException):
                pass
            conn.close()
            time.sleep(0.02)
        pytest.fail(f"worker {pid} never answered /readyz with 200:\n{self.server.output()}")

    @staticmethod
    def _get(conn: HTTPConnection, path: str) -> tuple[int, dict]:
        conn.request("GET", path)
        reply = conn.getresponse()
        body = reply.read()
        return reply.status, (json.loads(body) if body else {})

    def readyz(self) -> dict[int, tuple[int, dict]]:
        """pid -> (status, body) of that worker's own /readyz."""
        found = {}
        for pid in list(self.conns):
            try:
                found[pid] = self._get(self.conns[pid], "/readyz")
            except (OSError, HTTPException):  # gunicorn closed the idle keep-alive: reconnect to the same worker
                self.conns[pid].close()
                self.conns[pid] = self._connect(pid, time.monotonic() + 20)
                found[pid] = self._get(self.conns[pid], "/readyz")
        return found

    def versions(self) -> dict[int, int | None]:
        """pid -> the version of the default model that worker serves (None when it is not ready)."""
        return {pid: body["model"]["version"] if status == 200 else None for pid, (status, body) in self.readyz().items()}

    def failures(self, label: str) -> dict[int, str | None]:
        """pid -> why that worker refused to load the version `label` ("name vN"); None when it has not."""
        return {pid: body.get("failed", {}).get(label) for pid, (_, body) in self.readyz().items()}

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()


# ---- clients --------------------------------------------------------------------------------

@dataclass
class Reply:
    started: float  # wall clock, comparable with the time printed by an activation subprocess
    finished: float
    status: int | None  # None: no HTTP reply at all (connection refused/reset, timeout)
    error: str = ""
    headers: dict = field(default_factory=dict)
    body: dict | None = None

    @property
    def version(self) -> int | None:
        return self.body["model"]["version"] if self.status == 200 else None

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def post_photo(server: Server, data: bytes, timeout: float = 10) -> Reply:
    """One predict request on a fresh connection, no retries."""
    started = time.time()
    try:
        reply = requests.post(server.url("/api/v1/predict"), files={"image": ("photo.jpg", data, "image/jpeg")}, timeout=timeout)
    except requests.RequestException as exc:
        return Reply(started, time.time(), None, error=f"{type(exc).__name__}: {exc}")
    is_json = reply.headers.get("Content-Type", "").startswith("application/json")
    return Reply(started, time.time(), reply.status_code, headers=dict(reply.headers), body=reply.json() if is_json else None)


class Load:
    """`clients` threads posting real photos, one request at a time each, until stopped or a budget runs out."""

    def __init__(self, server: Server, photos: list[bytes], *, clients: int, max_requests: int = 10_000, max_seconds: float = 60, timeout: float = 10):
        self.server, self.photos, self.clients, self.timeout = server, photos, clients, timeout
        self.max_requests, self.deadline = max_requests, time.monotonic() + max_seconds
        self.replies: list[Reply] = []
        self._sent, self._lock, self._stop = 0, threading.Lock(), threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.wait()

    def wait(self) -> None:
        for thread in self._threads:
            thread.join(timeout=max(0.0, self.deadline - time.monotonic()) + self.timeout + 5)

    def send(self, photo: bytes) -> Reply:
        return post_photo(self.server, photo, self.timeout)

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            with self._lock:
                if self._sent >= self.max_requests:
                    return
                self._sent += 1
                photo = self.photos[self._sent % len(self.photos)]
            reply = self.send(photo)
            with self._lock:
                self.replies.append(reply)


# ---- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def photo_bytes() -> list[bytes]:
    files = sorted(GOLDEN.rglob("*.jpg"))
    assert files, f"the real photos are expected at {GOLDEN}"
    return [path.read_bytes() for path in files]


@pytest.fixture
def make_server(tmp_path_factory):
    """make_server(v1_artifact, v2_artifact, ..., env={...}) -> (Server, WorkerProbe), ready.

    The first artifact is registered and activated as v1, the others registered as v2, v3... (inactive).
    The servers share one STATIC_ROOT (unless env names another): the first master collects it, the others
    find it current.
    """
    servers: list[Server] = []
    static_root = tmp_path_factory.getbasetemp() / "e2e-static"

    def make(*artifacts: Path, env: dict[str, str] | None = None):
        server = Server(tmp_path_factory.mktemp("e2e-server"), {"STATIC_ROOT": str(static_root), **(env or {})})
        server.var_dir.mkdir()
        server.models_dir.mkdir()
        server.manage("migrate", "--noinput")
        for number, artifact in enumerate(artifacts, start=1):
            flags = ["--activate"] if number == 1 else []
            server.manage("register_model", str(server.add_artifact(artifact, number)), *flags)
        servers.append(server)
        server.start()
        return server, server.wait_ready()

    yield make
    for server in servers:
        server.stop()


def static_paths(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
