"""What every worker of every host really serves: heartbeats in the database, gauges in the metrics.

A version compiled for ONNX Runtime or OpenVINO is served by Keras (several
times slower, same answers) when its parity record no longer matches the
installed runtime, e.g. after upgrading it. Each worker compares the engine it
runs with the one the version was compiled for and says so in /readyz, the
metrics and its heartbeat row, which `manage.py models` and the admin read.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from recognizer.optimized import parity_record_path, unavailable_reason
from webapp.errors import log_failure
from webapp.models import WorkerHeartbeat
from webapp.runtime import runtime

log = logging.getLogger(__name__)
FORGET_AFTER = timedelta(hours=1)  # rows of workers gone for this long are deleted
_published: set[tuple] = set()
_reload_attempts: set[tuple] = set()
_beats = 0
PRUNE_EVERY = 30
_started = timezone.now()
_thread: threading.Thread | None = None


def instance_name() -> str:
    return settings.INSTANCE_NAME or socket.gethostname()


def serving_local() -> list[dict]:
    """This process's loaded versions: model, version, the engine running it and the one it was compiled for.

    The compiled-for engine is the manifest's (registration and recompiling write it): /readyz asks this, and
    must not depend on the database.
    """
    return [
        {
            "model": item.name, "version": item.version, "engine": item.engine.kind,
            "wanted": item.engine.manifest.engine, "path": str(item.engine.artifact.path),
        }
        for item in runtime().loaded().values()
    ]


def engine_fallback_warnings() -> list[str]:
    """One sentence per version this process serves with Keras although it was compiled for a faster engine."""
    return [
        f"{s['model']} v{s['version']} is served by {s['engine']}, not {s['wanted']} (slower); run manage.py recompile {s['model']}."
        for s in serving_local() if s["engine"] != s["wanted"]
    ]


def worker_heartbeat_publish() -> list[dict]:
    """Refresh this process's gauges (what it serves, its memory and CPU); returns what it serves."""
    from webapp import metrics

    global _published
    serving = serving_local()
    _published = metrics.serving_set(serving, _published)
    metrics.worker_process_update()
    return serving


def worker_heartbeat_record() -> None:
    """Publish the gauges and update this worker's rows (one UPDATE per model when nothing changed)."""
    global _beats
    serving, now, me, pid = worker_heartbeat_publish(), timezone.now(), instance_name(), os.getpid()
    if _pick_up_recompiled(serving):
        serving = worker_heartbeat_publish()
    for s in serving:
        fields = {"version": s["version"], "engine": s["engine"], "wanted_engine": s["wanted"], "started_at": _started, "seen_at": now}
        mine = WorkerHeartbeat.objects.filter(instance=me, pid=pid, model_name=s["model"])
        if not mine.update(**fields):
            WorkerHeartbeat.objects.create(instance=me, pid=pid, model_name=s["model"], **fields)
    _beats += 1
    if _beats % PRUNE_EVERY == 1:  # the rarer writes: names this worker dropped, workers long gone
        WorkerHeartbeat.objects.filter(instance=me, pid=pid).exclude(model_name__in=[s["model"] for s in serving]).delete()
        WorkerHeartbeat.objects.filter(seen_at__lt=now - FORGET_AFTER).delete()


def _pick_up_recompiled(serving: list[dict]) -> bool:
    """Reload each version served by Keras whose optimized copy may now be served (manage.py recompile ran)."""
    reloaded = False
    for s in serving:
        if s["engine"] == s["wanted"] or s["wanted"] == "keras" or unavailable_reason(s["path"], s["wanted"]):
            continue
        record = parity_record_path(s["path"], s["wanted"])
        attempt = (s["model"], s["version"], record.stat().st_mtime_ns)
        if attempt in _reload_attempts:  # it did not load last time either: keep Keras, do not reload every poll
            continue
        _reload_attempts.add(attempt)
        log.info("%s v%s was recompiled for %s; loading it again", s["model"], s["version"], s["wanted"])
        runtime().reload(s["model"])
        reloaded = True
    return reloaded


def worker_heartbeat_forget() -> None:
    """Delete this worker's rows (it is exiting)."""
    close_old_connections()  # this thread's connection may be long dead (a database restart): check it first
    WorkerHeartbeat.objects.filter(instance=instance_name(), pid=os.getpid()).delete()


def worker_heartbeat_list(*, live_within: timedelta | None = None) -> list[WorkerHeartbeat]:
    """Every worker's last report, or only those seen within `live_within`."""
    rows = WorkerHeartbeat.objects.all()
    if live_within is not None:
        rows = rows.filter(seen_at__gte=timezone.now() - live_within)
    return list(rows)


def engine_fallback_fleet_warnings() -> list[str]:
    """One sentence per model version and engine that some live workers run instead of the version's compiled one."""
    slow: dict[tuple, list[str]] = {}
    for beat in worker_heartbeat_list(live_within=heartbeat_live_window()):
        if beat.engine != beat.wanted_engine:
            key = (beat.model_name, beat.version, beat.wanted_engine, beat.engine)
            slow.setdefault(key, []).append(f"{beat.instance}:{beat.pid}")
    return [
        f"{name} v{version} is served by {engine}, not {wanted}, on {', '.join(workers)} (slower): recompile it "
        f"(action below, or manage.py recompile {name})."
        for (name, version, wanted, engine), workers in sorted(slow.items())
    ]


def heartbeat_live_window() -> timedelta:
    """How recent a heartbeat must be for its worker to count as alive: a few missed polls."""
    return timedelta(seconds=3 * settings.MODEL_POLL_SECONDS + 5)


def heartbeat_start() -> None:
    """Report every MODEL_POLL_SECONDS from a daemon thread (once per process, after fork)."""
    global _thread
    if _thread is not None:
        return
    _thread = threading.Thread(target=_beat, name="heartbeat", daemon=True)
    _thread.start()


def _beat() -> None:
    stop = threading.Event()
    while True:
        try:
            worker_heartbeat_record()
        except Exception as exc:  # a database hiccup must not end the reports
            log_failure(log, "heartbeat failed", exc)
        finally:
            close_old_connections()
        stop.wait(settings.MODEL_POLL_SECONDS)
