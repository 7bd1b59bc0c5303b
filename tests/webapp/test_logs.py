"""Logs: one JSON object per line with the request id, echoed to the client in the header and in error bodies."""

from __future__ import annotations

import io
import json
import logging

import pytest

from tests.conftest import TINY_NAME, random_photo
from tests.webapp.helpers import PREDICT, assert_error, encode, upload
from webapp import logs


@pytest.fixture
def json_lines():
    """Everything logged while the test runs, through the JSON formatter, as parsed lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def request_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "webapp.request"]


def test_a_prediction_is_logged_as_one_json_line_with_the_request_id_model_and_version(client, active_tiny, json_lines):
    reply = client.post(PREDICT, {"image": upload(encode(random_photo(), "JPEG"))}, HTTP_X_REQUEST_ID="trace-42.a")
    assert reply.status_code == 200 and reply["X-Request-ID"] == "trace-42.a"
    (line,) = request_lines(json_lines())
    assert {k: line[k] for k in ("level", "request_id", "method", "path", "status", "model", "version", "engine")} == {
        "level": "INFO", "request_id": "trace-42.a", "method": "POST", "path": "/api/v1/predict", "status": 200,
        "model": TINY_NAME, "version": 1, "engine": "keras",
    }
    assert line["latency_ms"] > 0 and line["process"] > 0 and line["time"].endswith("+00:00")


def test_the_request_line_names_the_client_the_trusted_proxy_vouches_for_not_the_proxy(client, db, json_lines, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    client.get("/healthz", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.9")
    settings.TRUSTED_PROXY_COUNT = 0
    client.get("/healthz", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert [line["client"] for line in request_lines(json_lines())] == ["203.0.113.9", "10.0.0.2"]


def test_a_request_without_a_usable_id_gets_a_new_one(client, db, json_lines):
    made = client.get("/healthz")["X-Request-ID"]
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\twith spaces " + "x" * 200)["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0
    assert len(replaced) == 32 and replaced != made
    assert [line["request_id"] for line in request_lines(json_lines())] == [made, replaced]


def test_every_error_body_carries_the_request_id(client, db, settings):
    settings.DEFAULT_MODEL_NAME = "nothing-registered"
    not_ready = client.get("/readyz", HTTP_X_REQUEST_ID="probe-1")
    assert assert_error(not_ready, 503, "model_not_ready")["request_id"] == "probe-1"
    assert_error(client.get("/api/v1/nowhere"), 404, "not_found")
    assert_error(client.post("/api/v1/predict", {}), 400)


def test_lines_logged_while_answering_a_request_carry_its_id(client, db, json_lines, settings):
    settings.DEFAULT_MODEL_NAME = "nothing-registered"
    client.get("/readyz", HTTP_X_REQUEST_ID="probe-2")
    assert {line["request_id"] for line in json_lines()} == {"probe-2"}


def test_gunicorn_access_lines_have_the_same_shape():
    atoms = {"h": "127.0.0.1", "m": "GET", "U": "/readyz", "q": "", "s": "200", "B": 57, "D": 1500, "a": "curl", "{x-request-id}o": "r-1"}
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(h)s", (atoms,), None)
    line = json.loads(logs.JsonFormatter().format(record))
    assert {k: line[k] for k in ("level", "request_id", "method", "path", "status", "latency_ms")} == {
        "level": "INFO", "request_id": "r-1", "method": "GET", "path": "/readyz", "status": 200, "latency_ms": 1.5,
    }


@pytest.mark.parametrize(
    "env, default, expected",
    [({}, "json", "json"), ({"LOG_FORMAT": "plain"}, "json", "plain"), ({}, "plain", "plain"),
     ({"DJANGO_SETTINGS_MODULE": "webapp.settings.production"}, None, "json"), ({"DJANGO_SETTINGS_MODULE": "webapp.settings.dev"}, None, "plain")],
)
def test_log_format_is_json_in_production_and_plain_in_development_unless_set(monkeypatch, env, default, expected):
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert logs.log_format(default) == expected


def test_a_misspelt_log_format_stops_the_boot(monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "jsonl")
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logs.log_format("json")


def test_a_path_with_a_newline_cannot_forge_a_line_in_the_plain_log(client, db):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.PlainFormatter())
    logging.getLogger("webapp.request").addHandler(handler)
    try:
        client.get("/api/v1/models/x%0A2026-12-01 00:00:00,000 INFO [1] webapp.request: FORGED%00")
    finally:
        logging.getLogger("webapp.request").removeHandler(handler)
    (line,) = stream.getvalue().splitlines()
    assert "\\x0a2026-12-01" in line and "\\x00" in line and "\x00" not in line


def test_a_librarys_progress_lines_on_the_root_logger_are_dropped_and_its_warnings_kept():
    # ONNX Runtime's quantizer writes "Increased scale[79] for weight ..." on the root logger, once per rescaled
    # weight: 74 lines on stderr for one `recompile --precision int8` of the default model.
    import io
    import logging

    import onnxruntime.quantization.qdq_quantizer as quantizer

    from webapp.logs import LibraryChatter, logging_config

    assert logging_config("plain", "INFO")["handlers"]["console"]["filters"] == ["library_chatter", "repeated_refusals"]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(LibraryChatter())

    def emit(name: str, level: int, path: str, message: str) -> None:
        handler.handle(logging.LogRecord(name, level, path, 1, message, None, None))

    emit("root", logging.INFO, quantizer.__file__, "Increased scale[79] for weight")
    emit("root", logging.WARNING, quantizer.__file__, "a library's warning")
    emit("webapp.audit", logging.INFO, "/srv/webapp/audit.py", "the service's own line")
    assert out.getvalue().splitlines() == ["a library's warning", "the service's own line"]


def test_refusals_the_service_logs_itself_are_not_logged_again_by_django_but_a_500_is(client, db):
    # A 503 `busy` was an ERROR line beside the request line, and a 403 in the admin came with a traceback.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RepeatedRefusals())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        assert_error(client.get("/api/v1/nowhere"), 404, "not_found")
        assert_error(client.get("/api/v1/models/nosuch"), 404)
        logging.getLogger("django.request").error("Service Unavailable: /x", extra={"status_code": 503})
        logging.getLogger("django.request").warning("Forbidden (Permission denied): /admin/", extra={"status_code": 403})
        logging.getLogger("django.request").error("Internal Server Error: /", extra={"status_code": 500})
    finally:
        root.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert [line for line in lines if "Not Found" in line or "Service Unavailable" in line or "Forbidden" in line] == []
    assert "Internal Server Error: /" in lines
    assert any("/api/v1/nowhere" in line for line in lines)  # the service's own request line


def test_a_foreign_host_is_one_warning_line_not_a_traceback(client, settings):
    settings.DEBUG = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(logs.RepeatedRefusals())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        assert client.get("/api/v1/models", HTTP_HOST="evil.example.com").status_code == 400
    finally:
        root.removeHandler(handler)
    said = [line for line in stream.getvalue().splitlines() if "django.security" in line]
    assert len(said) == 1 and said[0].startswith("WARNING django.security.DisallowedHost: Invalid HTTP_HOST header")
    assert "Traceback" not in stream.getvalue()
