"""The several-hosts topology on one machine, on loopback: what tests/multihost/ starts, and a way to try it.

Two app hosts (gunicorn, each with its own VAR_DIR and port) share Debian's
PostgreSQL (DATABASE_URL), a Redis (CACHE_URL) and one model store (a folder,
RECOGNIZER_MODELS_DIR), behind nginx with TLS (deploy/nginx/recognizer.conf,
rendered). Everything listens on 127.0.0.1 on ports free at start.

    python deploy/loopback.py --artifact models/x.h5    # up until Ctrl-C

Needs root (or the postgres user) for `su postgres -c psql`, and the Debian
packages postgresql, redis-server, nginx and openssl.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
GUNICORN = REPO / ".venv" / "bin" / "gunicorn"
SITE_TEMPLATE = REPO / "deploy" / "nginx" / "recognizer.conf"
PREFIX = "ops_"  # every PostgreSQL role and database made here
KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, seconds: float, what: str, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: exited with {process.returncode}\n{_tail(log)}")
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise RuntimeError(f"{what}: not ready within {seconds:.0f} s\n{_tail(log)}")


def _tail(log: Path | None, size: int = 6000) -> str:
    return log.read_text(errors="replace")[-size:] if log and log.exists() else ""


def _stop(process: subprocess.Popen | None, sig=signal.SIGTERM, wait: float = 10) -> None:
    """Signal the process group, then kill whatever is left of it."""
    if process is None or process.poll() is not None:
        return
    for current in (sig, signal.SIGKILL):
        try:
            os.killpg(process.pid, current)
            process.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


class Postgres:
    """A throw-away role and database in Debian's cluster (started when it is down)."""

    def __init__(self, name: str):
        self.role = self.database = f"{PREFIX}{name}"
        self.password = secrets.token_hex(12)
        self.port = 5432

    def start(self) -> None:
        clusters = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True).stdout.split()
        version, cluster, self.port = clusters[0], clusters[1], int(clusters[2])
        subprocess.run(["pg_ctlcluster", version, cluster, "start"], capture_output=True)  # fails harmlessly when up
        self.psql(f"DROP DATABASE IF EXISTS {self.database}")
        self.psql(f"DROP ROLE IF EXISTS {self.role}")
        self.psql(f"CREATE ROLE {self.role} LOGIN PASSWORD '{self.password}'")
        self.psql(f"CREATE DATABASE {self.database} OWNER {self.role}")

    def stop(self) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
        self.psql(f"DROP ROLE IF EXISTS {self.role}")

    @staticmethod
    def psql(sql: str) -> None:
        subprocess.run(["su", "postgres", "-c", f'psql -qX -v ON_ERROR_STOP=1 -c "{sql}"'], check=True, capture_output=True, cwd="/")

    @property
    def url(self) -> str:
        return f"postgres://{self.role}:{self.password}@127.0.0.1:{self.port}/{self.database}"


class Redis:
    def __init__(self, root: Path):
        self.root, self.port, self.process = root, free_port(), None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.root), "--save", "", "--appendonly", "no"]
        with open(self.root / "redis.log", "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._pong, 20, "redis-server", self.process, self.root / "redis.log")

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        _stop(self.process)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class Host:
    """One app host: gunicorn with its own VAR_DIR and port, and the shared settings."""

    def __init__(self, name: str, root: Path, shared_env: dict):
        self.name, self.root, self.port = name, root, free_port()
        self.var_dir, self.log_path = root / "var", root / "gunicorn.log"
        self.env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
        self.env.update(shared_env, INSTANCE_NAME=name, VAR_DIR=str(self.var_dir), PORT=str(self.port), HOST="127.0.0.1",
                        ACCESS_LOG=str(root / "access.log"), PYTHONUNBUFFERED="1")
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run([str(PYTHON), "manage.py", *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} on {self.name} exited {done.returncode}:\n{done.stderr[-4000:]}")
        return done.stdout

    def start(self, env: dict | None = None) -> None:
        """Start gunicorn; each start begins a fresh access log, so what a test reads is what this run served."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "access.log").unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(GUNICORN), "-c", "gunicorn.conf.py"], cwd=REPO, env={**self.env, **(env or {})},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def readyz(self) -> dict | None:
        """This host's /readyz body when it answers 200 (one worker per host: the host's answer)."""
        try:
            reply = requests.get(f"http://{self.address}/readyz", timeout=2)
        except requests.RequestException:
            return None
        return reply.json() if reply.status_code == 200 else None

    def wait_ready(self, seconds: float = 90) -> dict:
        return wait_until(self.readyz, seconds, f"host {self.name}", self.process, self.log_path)

    def stop(self) -> None:
        _stop(self.process)

    def kill(self) -> None:
        """A crash: SIGKILL to the master and its workers at once."""
        _stop(self.process, signal.SIGKILL)


class Balancer:
    """nginx with the deploy site file, rendered for these hosts, a self-signed certificate, and loopback ports."""

    def __init__(self, root: Path, hosts: list[Host]):
        self.root, self.hosts = root, hosts
        self.https_port, self.http_port = free_port(), free_port()
        self.cert, self.key = root / "tls.crt", root / "tls.key"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.cert.exists():
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                 "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(self.key), "-out", str(self.cert)],
                check=True, capture_output=True,
            )
        (self.root / "nginx.conf").write_text(self._main_config())
        args = ["nginx", "-p", str(self.root), "-c", str(self.root / "nginx.conf"), "-g", "daemon off;"]
        with open(self.root / "nginx.out", "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._answers, 20, "nginx", self.process, self.root / "error.log")

    def site_config(self) -> str:
        values = {
            "HOST_A": self.hosts[0].address, "HOST_B": self.hosts[1].address, "SERVER_NAME": "localhost",
            "HTTP_LISTEN": f"127.0.0.1:{self.http_port}", "HTTPS_LISTEN": f"127.0.0.1:{self.https_port}",
            "TLS_CERT": str(self.cert), "TLS_KEY": str(self.key), "ACCESS_LOG": str(self.root / "access.log"),
        }
        text = SITE_TEMPLATE.read_text()
        for key, value in values.items():
            text = text.replace(f"@@{key}@@", value)
        return text

    def _main_config(self) -> str:
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers read the temp files of large uploads
        temp = "".join(f"    {kind}_temp_path {self.root / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        return (
            f"{user}worker_processes 1;\npid {self.root / 'nginx.pid'};\nerror_log {self.root / 'error.log'} warn;\n"
            f"events {{ worker_connections 512; }}\n"
            f"http {{\n    access_log {self.root / 'access.log'};\n{temp}{self.site_config()}\n}}\n"
        )

    def _answers(self) -> bool:
        try:
            requests.get(self.url("/healthz"), verify=str(self.cert), timeout=2)
            return True
        except requests.RequestException:
            return False

    def url(self, path: str) -> str:
        return f"https://localhost:{self.https_port}{path}"

    def stop(self) -> None:
        _stop(self.process, signal.SIGQUIT)


class Topology:
    """Shared services (PostgreSQL, Redis, model store), two hosts, one balancer; `up()` then `down()`."""

    def __init__(self, root: Path, name: str = "loopback", env: dict | None = None):
        self.root = root
        self.models_dir = root / "models"
        self.postgres, self.redis = Postgres(name), Redis(root / "redis")
        self.env = {
            "DJANGO_SETTINGS_MODULE": "webapp.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
            "ALLOWED_HOSTS": "localhost,127.0.0.1",
            "RECOGNIZER_MODELS_DIR": str(self.models_dir),
            "MEDIA_ROOT": str(root / "media"),  # kept photos, shared like the model store
            "TRUSTED_PROXY_COUNT": "1",  # exactly one proxy, the balancer, in front of every host
            "MODEL_POLL_SECONDS": "1",
            "WEB_WORKERS": "1",  # one worker per host: a host's /readyz is its only worker's answer
            "WEB_THREADS": "8",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **(env or {}),
        }
        self.hosts: list[Host] = []
        self.balancer: Balancer | None = None

    def up_shared(self) -> None:
        """PostgreSQL, Redis and the model store, with the schema migrated."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.postgres.start()
        self.redis.start()
        self.env.update(DATABASE_URL=self.postgres.url, CACHE_URL=self.redis.url)
        self.hosts = [Host(name, self.root / name, self.env) for name in ("host-a", "host-b")]
        self.hosts[0].manage("migrate", "--noinput")

    def up_hosts(self, env: dict | None = None) -> None:
        """Both hosts (with `env` on top of the shared settings) and the balancer in front of them, all ready."""
        for host in self.hosts:
            host.start(env)
        for host in self.hosts:
            host.wait_ready()
        self.balancer = Balancer(self.root / "nginx", self.hosts)
        self.balancer.start()

    def down_hosts(self) -> None:
        if self.balancer:
            self.balancer.stop()
        for host in self.hosts:
            host.stop()

    def down(self) -> None:
        self.down_hosts()
        self.redis.stop()
        self.postgres.stop()


def main() -> None:
    import argparse
    import shutil
    import tempfile

    parser = argparse.ArgumentParser(description="Two hosts behind nginx on loopback, until Ctrl-C.")
    parser.add_argument("--artifact", required=True, type=Path, help="an .h5 with its manifest beside it")
    args = parser.parse_args()
    topology = Topology(Path(tempfile.mkdtemp(prefix="recognizer-loopback-")))
    try:
        topology.up_shared()
        target = topology.models_dir / args.artifact.name
        shutil.copyfile(args.artifact, target)
        shutil.copyfile(args.artifact.with_suffix(".json"), target.with_suffix(".json"))
        topology.hosts[0].manage("register_model", str(target), "--activate")
        name = topology.hosts[0].manage("shell", "-c", "from webapp.models import ModelVersion; print(ModelVersion.objects.get().name)")
        topology.up_hosts({"DEFAULT_MODEL_NAME": name.strip()})
        print(f"balancer {topology.balancer.url('/')} (certificate {topology.balancer.cert}); hosts "
              + ", ".join(f"{h.name} http://{h.address}" for h in topology.hosts) + "; Ctrl-C stops everything", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        topology.down()


if __name__ == "__main__":
    sys.exit(main())
