"""The image's HEALTHCHECK script against a real HTTP server on loopback: only a 200 from /readyz is healthy."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading

import pytest

from scripts.healthcheck import probe_address, probe_host
from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "healthcheck.py"


@pytest.fixture
def server():
    """A loopback server answering every GET with `server.status`, recording the paths and Host headers it saw."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            httpd.seen.append((self.path, self.headers["Host"]))
            self.send_response(httpd.status)
            if httpd.status == 301:
                self.send_header("Location", f"http://127.0.0.1:{httpd.server_port}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.status, httpd.seen = 200, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def check(port: int, allowed_hosts: str = "recognizer.example.org") -> int:
    env = {**os.environ, "PORT": str(port), "HOST": "0.0.0.0", "ALLOWED_HOSTS": allowed_hosts}
    return subprocess.run([sys.executable, str(SCRIPT)], env=env, timeout=30).returncode


def test_it_is_healthy_on_200_from_readyz_asked_with_an_allowed_host(server):
    assert check(server.server_port, ".example.org,localhost") == 0
    assert server.seen == [("/readyz", "example.org")]


@pytest.mark.parametrize("status", [503, 301, 400])
def test_it_is_unhealthy_on_anything_but_200_and_follows_no_redirect(server, status):
    server.status = status
    assert check(server.server_port) == 1
    assert server.seen == [("/readyz", "recognizer.example.org")]


def test_it_is_unhealthy_when_nothing_listens():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert check(port) == 1


def test_it_asks_where_gunicorn_listens_with_a_host_django_accepts():
    assert probe_host("*") == probe_host("") == "localhost"
    assert probe_host(" api.example.org , other") == "api.example.org"
    assert probe_address("0.0.0.0") == probe_address("") == "127.0.0.1"
    assert probe_address("[::]") == "::1"
    assert probe_address("10.0.0.5") == "10.0.0.5"
