"""scripts/serve_check.py, which the bare-clone check runs against `make run`: it fails, with its reason, on a server
that is not ready, answers the wrong label, or serves with another engine than asked for."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import GOLDEN, REPO_ROOT


def serve_check():
    spec = importlib.util.spec_from_file_location("serve_check", REPO_ROOT / "scripts" / "serve_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_service():
    """A stand-in service on loopback: what it answers is set per test."""
    answers = {"ready": 200, "label": "tiger", "engine": "onnxruntime"}

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status: int, body) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/readyz":
                self.reply(answers["ready"], {})
            else:
                self.reply(200, [{"name": "m", "version": 1, "engine": answers["engine"]}])

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            prediction = {"label": answers["label"], "probability": 0.9}
            self.reply(200, {"model": {"name": "m", "version": 1}, "predictions": [prediction]})

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", answers
    server.shutdown()
    server.server_close()


def run(url: str, *extra: str) -> int:
    photo = GOLDEN / "animal" / "tiger.jpg"
    args = ["--url", url, "--photo", str(photo), "--label", "tiger", "--engine", "onnxruntime", *extra]
    return serve_check().main(args)


def test_it_passes_a_ready_service_that_answers_as_asked(fake_service, capsys):
    url, _ = fake_service
    assert run(url) == 0
    assert "engine: onnxruntime" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"label": "tabby cat"}, "the top label is 'tabby cat', not 'tiger'"),
        ({"engine": "keras"}, "served by keras, not onnxruntime"),
    ],
)
def test_it_fails_with_the_reason(fake_service, capsys, change, reason):
    url, answers = fake_service
    answers.update(change)
    assert run(url) == 1
    assert reason in capsys.readouterr().err


def test_it_stops_waiting_when_the_server_process_has_ended(fake_service, capsys):
    url, answers = fake_service
    answers["ready"] = 503
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert run(url, "--pid", str(gone.pid), "--wait", "600") == 1
    assert f"the server process {gone.pid} ended before /readyz answered 200" in capsys.readouterr().err
