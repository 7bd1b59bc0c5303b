"""Logs as one JSON object per line (LOG_FORMAT=json) or plain text (LOG_FORMAT=plain), with a request id.

The request id comes from the client's or the proxy's X-Request-ID when it is
a sane token, or is made here; it is echoed in the response header and in
every error body (webapp/errors.py reads it from `request_id()`). Django's log
lines and gunicorn's (errors and access) share one formatter, so every line a
host writes has the same shape. Only the standard library is imported here:
gunicorn's master loads this module without Django.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone

from gunicorn import glogging

FORMATS = ("json", "plain")
HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_request_id: ContextVar[str] = ContextVar("request_id", default="")
_fields: ContextVar[dict | None] = ContextVar("request_log_fields", default=None)
# Attributes every LogRecord has: anything else on a record was passed with `extra=` and goes into the JSON.
# django.request's `request` is shown by its id only.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id", "request"}
request_log = logging.getLogger("webapp.request")


def log_format(default: str | None = None) -> str:
    """LOG_FORMAT, else `default`, else json under the production settings and plain elsewhere; fails on a typo."""
    production = os.environ.get("DJANGO_SETTINGS_MODULE", "").endswith(".production")
    fmt = os.environ.get("LOG_FORMAT", "").strip().lower() or default or ("json" if production else "plain")
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    return fmt


def request_id() -> str:
    """The id of the request this thread is answering ('' outside a request)."""
    return _request_id.get()


def annotate(**fields) -> None:
    """Add fields (model, version, engine...) to the log line of the current request."""
    current = _fields.get()
    if current is not None:
        current.update(fields)


def _record_request_id(record: logging.LogRecord) -> str:
    """The record's own request id, its request's (django.request logs after the middleware ran), or the thread's."""
    return getattr(record, "request_id", "") or getattr(getattr(record, "request", None), "id", "") or request_id()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
        }
        rid = _record_request_id(record)
        if rid:
            payload["request_id"] = rid
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            payload.update(_access_fields(record.args))
        else:
            payload["message"] = record.getMessage()
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """Readable lines for development: time, level, process, request id, message, then the extra fields."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        rid = _record_request_id(record)
        if rid:
            extra = {"request_id": rid, **extra}
        return line + "".join(f" {k}={printable(v) if isinstance(v, str) else v}" for k, v in extra.items())


def printable(text: str) -> str:
    """Text from a client, with its control characters escaped: a path cannot start a forged line in a plain log."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else PlainFormatter()


class LibraryChatter(logging.Filter):
    """Drops the progress lines installed libraries write on the root logger below WARNING (ONNX Runtime's quantizer
    writes one per weight it rescales: 74 for the default model); their warnings and errors stay. The service's own
    code logs on named loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "root" and record.levelno < logging.WARNING and "-packages" in record.pathname)


REFUSALS_LOGGED = frozenset(range(400, 500)) | {503}


class RepeatedRefusals(logging.Filter):
    """Drops django.request's lines for the 4xx and 503 answers the service gives on purpose (a 403 came with a
    traceback, every 503 `busy` as an ERROR): its own request line already has each, with the request id. Django's
    500 for an unhandled error, with its traceback, stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("django.security.") and record.exc_info:
            # A request Django found suspicious (a foreign Host, too many fields) is answered 400 and logged with a
            # traceback, so each cost a screenful: one line says it, as a warning (the request line has the rest).
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        return not (record.name == "django.request" and getattr(record, "status_code", 500) in REFUSALS_LOGGED)


def logging_config(fmt: str, level: str) -> dict:
    """Django's LOGGING: everything to stderr in the chosen format, without libraries' progress chatter."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": formatter, "fmt": fmt}},
        "filters": {"library_chatter": {"()": LibraryChatter}, "repeated_refusals": {"()": RepeatedRefusals}},
        "handlers": {"console": {
            "class": "logging.StreamHandler", "formatter": "line", "filters": ["library_chatter", "repeated_refusals"],
        }},
        "root": {"handlers": ["console"], "level": level},
    }


def _access_fields(atoms: dict) -> dict:
    """gunicorn's access-log atoms as named fields."""
    return {
        "message": f"{atoms.get('m')} {atoms.get('U')} {atoms.get('s')}",
        "request_id": atoms.get("{x-request-id}o") or "",
        "remote": atoms.get("h"),
        "method": atoms.get("m"),
        "path": atoms.get("U"),
        "query": atoms.get("q") or "",
        "status": int(atoms.get("s") or 0),
        "bytes": atoms.get("B"),
        "latency_ms": round(int(atoms.get("D") or 0) / 1000, 2),
        "user_agent": atoms.get("a"),
    }


class _Atoms(dict):
    """gunicorn's access-log atoms, '-' when absent, and not escaped: JSON escapes the values itself."""

    def __missing__(self, key: str):
        return self[key.lower()] if key.startswith("{") and key != key.lower() else "-"


class GunicornLogger(glogging.Logger):
    """gunicorn's logger with the service's formatter on its error and access handlers."""

    atoms_wrapper_class = _Atoms

    def setup(self, cfg):
        super().setup(cfg)
        line = formatter(log_format())
        for handler in self.error_log.handlers + self.access_log.handlers:
            handler.setFormatter(line)


class RequestIdMiddleware:
    """Outermost middleware: gives each request an id, echoes it, and logs one line per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        offered = request.headers.get(HEADER, "")
        rid = offered if _VALID_ID.match(offered) else uuid.uuid4().hex
        request.id = rid
        id_token, fields_token = _request_id.set(rid), _fields.set({})
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[HEADER] = rid
            self._log(request, response.status_code, started)
            return response
        finally:
            _request_id.reset(id_token)
            _fields.reset(fields_token)

    @staticmethod
    def _log(request, status: int, started: float) -> None:
        from webapp.clients import client_address

        fields = {
            "method": request.method,
            "path": request.path,
            "status": status,
            "client": client_address(request),  # behind the balancer: the address it vouches for, not its own
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            **(_fields.get() or {}),
        }
        level = logging.WARNING if status >= 500 else logging.INFO  # 4xx are the clients' business, not ours
        request_log.log(level, "%s %s %s", request.method, printable(request.path), status, extra=fields)
