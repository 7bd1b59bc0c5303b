"""Prometheus metrics at /metrics (prometheus-client; multiprocess mode under gunicorn).

gunicorn runs several worker processes and a scrape reaches only one of them,
so under gunicorn every worker writes its samples to files in
PROMETHEUS_MULTIPROC_DIR (set, emptied at start and pruned of dead workers in
gunicorn.conf.py) and the answering worker adds them all up. Without that
variable (tests, runserver) the process's own registry is served, with the
client library's process and platform collectors.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from contextlib import contextmanager

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.process_collector import ProcessCollector

from webapp import logs
from webapp.errors import error_response, to_api_error

SECONDS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
VERSION = ("model", "version", "engine")

PREDICTIONS = Counter("recognizer_predictions", "Images classified, by outcome (ok, or the error code).", [*VERSION, "status"])
INFERENCE = Histogram("recognizer_inference_seconds", "Forward pass of one request's batch.", VERSION, buckets=SECONDS)
DECODE = Histogram("recognizer_decode_seconds", "Decoding and preprocessing one request's images.", ["model"], buckets=SECONDS)
QUEUE = Gauge("recognizer_queue_depth", "Requests being decoded or classified now.", multiprocess_mode="livesum")
REJECTED = Counter("recognizer_rejected", "Requests answered with an error, by error code.", ["reason", "status"])
LOADED = Gauge("recognizer_model_loaded", "1 while this worker serves the version with this engine.", VERSION, multiprocess_mode="liveall")
FALLBACK = Gauge(
    "recognizer_engine_fallback", "1 while a version compiled for `wanted` is served by Keras (slower); run manage.py recompile.",
    ["model", "version", "wanted"], multiprocess_mode="livemax",
)
HTTP_REQUESTS = Counter("http_requests", "HTTP requests answered by the application.", ["method", "view", "status"])
HTTP_SECONDS = Histogram("http_request_duration_seconds", "Time from the request reaching Django to its response.", ["method", "view"], buckets=SECONDS)
# Under gunicorn the library's process collector would describe only the worker that is scraped: each worker
# publishes its own numbers instead (labelled by pid), refreshed at every heartbeat.
WORKER = {
    name: Gauge(f"recognizer_worker_{name}", f"The worker's {name.replace('_', ' ')} (as process_{name}).", multiprocess_mode="liveall")
    for name in ("resident_memory_bytes", "virtual_memory_bytes", "cpu_seconds", "open_fds", "start_time_seconds")
}
_PROCESS = ProcessCollector(registry=None)


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class PredictionWatch:
    """Counts one request's images by outcome and times its phases; wraps the admission to inference."""

    def __init__(self, loaded, images: int):
        self.labels = (loaded.name, str(loaded.version), loaded.engine.kind)
        self.images = images
        self.outcomes: list[str] = []  # one status per image, once the engine has answered

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is not None:  # the whole request failed: every image shares its reason
            self.outcomes = [_error_code(exc)] * self.images
        for status in set(self.outcomes):
            PREDICTIONS.labels(*self.labels, status).inc(self.outcomes.count(status))

    def answered(self, errors: list, timing_ms: dict) -> None:
        """The engine's per-image outcome (None or the image's error) and the batch's phases."""
        self.outcomes = ["ok" if error is None else _error_code(error) for error in errors]
        if "ok" in self.outcomes:  # nothing was inferred when no image decoded
            self.timed(timing_ms)

    @contextmanager
    def working(self):
        QUEUE.inc()
        try:
            yield
        finally:
            QUEUE.dec()

    def timed(self, timing_ms: dict) -> None:
        """Record the phases (from the reply's timing_ms) and name the model in the request's log line."""
        DECODE.labels(self.labels[0]).observe(timing_ms["decode"] / 1000)
        INFERENCE.labels(*self.labels).observe(timing_ms["inference"] / 1000)
        logs.annotate(model=self.labels[0], version=int(self.labels[1]), engine=self.labels[2])


def _error_code(exc: BaseException) -> str:
    """The code the client is answered with (busy, image_too_large...), or the exception's name if unexpected."""
    try:
        return to_api_error(exc).code
    except TypeError:
        return type(exc).__name__


def serving_set(serving: list[dict], previous: set[tuple]) -> set[tuple]:
    """Publish what this worker serves now (1) and no longer serves (0); returns the label sets now at 1."""
    now = {(s["model"], str(s["version"]), s["engine"]) for s in serving}
    for labels in previous - now:
        LOADED.labels(*labels).set(0)
    for labels in now:
        LOADED.labels(*labels).set(1)
    for s in serving:
        if s["wanted"] != "keras":
            FALLBACK.labels(s["model"], str(s["version"]), s["wanted"]).set(int(s["engine"] != s["wanted"]))
    return now


def worker_process_update() -> None:
    for family in _PROCESS.collect():
        for sample in family.samples:
            gauge = WORKER.get(sample.name.removeprefix("process_").removesuffix("_total"))
            if gauge is not None:
                gauge.set(sample.value)


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """HTTP request counts and latencies by view, and every error reply counted by its code."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match else "unmatched"  # never the raw path: scanners would explode the labels
        method = request.method if request.method in METHODS else "other"  # nor a method a client made up
        HTTP_REQUESTS.labels(method, view, str(response.status_code)).inc()
        HTTP_SECONDS.labels(method, view).observe(time.perf_counter() - started)
        if response.status_code >= 400:
            REJECTED.labels(getattr(response, "error_code", "") or str(response.status_code), str(response.status_code)).inc()
        return response


def _allowed(request: HttpRequest) -> bool:
    """Open when neither METRICS_TOKEN nor METRICS_ALLOWED_NETWORKS is set; else either one lets a scraper in."""
    token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return True
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if token and offered and hmac.compare_digest(offered.encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


def metrics_view(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return error_response(405, "method_not_allowed", "Use GET.", {"Allow": "GET, HEAD"})
    if not _allowed(request):
        return error_response(403, "forbidden", "Metrics need METRICS_TOKEN as a bearer token or an allowed address.")
    from webapp import fleet

    fleet.worker_heartbeat_publish()  # this worker's own gauges are fresh even between heartbeats
    registry = REGISTRY
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
