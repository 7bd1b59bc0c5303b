"""The engines this process serves: loaded once, after fork, and swapped when another version is activated.

A worker keeps answering with the engine it has until the newly activated
version is loaded and warmed up; a version that fails to load is never served.
A background thread polls the database so that every worker switches within
a few seconds, even one that receives no traffic.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, replace

from django.conf import settings
from django.db import close_old_connections

from recognizer.engine import Engine
from recognizer.optimized import load_engine
from recognizer.errors import Translatable, gettext_noop
from webapp.errors import log_failure

log = logging.getLogger(__name__)


class ModelNotReady(Translatable, Exception):
    """No active version of the model is loaded in this process (yet)."""


class ModelLoadFailed(ModelNotReady):
    """The active version could not be loaded here: waiting does not help until an admin repairs or replaces it."""


class Busy(Translatable, Exception):
    """More requests are waiting for inference than the queue allows."""


@dataclass(frozen=True)
class Allowed:
    """The classes an answer may name, and where the list came from ("admin" or "file")."""

    mask: object  # numpy bool array over the engine's classes
    source: str
    signature: tuple = ()

    @property
    def count(self) -> int:
        return int(self.mask.sum())


@dataclass(frozen=True)
class Loaded:
    version_id: int
    name: str
    version: int
    engine: Engine
    allowed: Allowed | None = None  # the admin's allowed-class list for this name, applied to this version
    registered: str = ""  # the version's engine when it was loaded: `recompile --precision` changes it in place


class Runtime:
    def __init__(self):
        self._engines: dict[str, Loaded] = {}
        # version id -> (why it could not be loaded, the file's size and mtime then, "name vN"): retried once
        # the file changes
        self._failed: dict[int, tuple[str, tuple | None, str]] = {}
        self._refresh_lock = threading.Lock()
        self._gate = threading.BoundedSemaphore(settings.INFERENCE_QUEUE_MAX)
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()

    def get(self, name: str) -> Loaded:
        """The loaded active version of `name`; loads on first use in this process."""
        loaded = self._engines.get(name)
        if loaded is None:
            self.refresh()
            loaded = self._engines.get(name)
        if loaded is None:
            why = next((why for label, why in self.failures_by_name().items() if label.rsplit(" v", 1)[0] == name), None)
            if why is not None:  # its active version failed to load here: say why, as /readyz does
                raise ModelLoadFailed(gettext_noop("The active version of the model %(name)r could not be loaded: %(why)s"),
                                    name=name, why=why)
            raise ModelNotReady(gettext_noop("No active version of the model %(name)r is loaded."), name=name)
        return loaded

    def loaded(self) -> dict[str, Loaded]:
        return dict(self._engines)

    def failures(self) -> dict[int, str]:
        return {version_id: why for version_id, (why, _, _) in self._failed.items()}

    def failures_by_name(self) -> dict[str, str]:
        """'name vN' -> why this process could not load that version (for /readyz)."""
        return {label: why for why, _, label in list(self._failed.values())}

    def refresh(self) -> None:
        """Load any newly activated version, or an active one recompiled for another engine (`recompile
        --precision`), warm it, then swap it in; drop deactivated names."""
        from webapp import selectors

        with self._refresh_lock:
            active = {v.name: v for v in selectors.model_version_list_active()}
            for name, version in active.items():
                current = self._engines.get(name)
                if current and current.version_id == version.id and current.registered == version.engine:
                    continue
                failed = self._failed.get(version.id)
                if failed and failed[1] == _file_signature(version.artifact_path):
                    continue
                self._load(version)
            for name in set(self._engines) - set(active):
                del self._engines[name]
            for version_id in set(self._failed) - {v.id for v in active.values()}:  # rolled away from: not a failure now
                del self._failed[version_id]
            self._apply_allowed()

    def reload(self, name: str) -> None:
        """Load the active version of `name` again (its compiled engine was rebuilt); swaps only once it is warm."""
        from webapp import selectors

        with self._refresh_lock:
            for version in selectors.model_version_list_active():
                if version.name == name:
                    self._load(version)
            self._apply_allowed()

    def _apply_allowed(self) -> None:
        """Give each loaded version its name's allowed-class list as it stands now (the admin may change it)."""
        from webapp import selectors

        lists = selectors.allowed_class_lists_enabled()
        for name, loaded in list(self._engines.items()):
            self._engines[name] = _with_allowed(loaded, lists.get(name))

    def _load(self, version) -> None:
        started = time.perf_counter()
        try:
            engine = engine_for(version)
        except Exception as exc:  # whatever breaks a load, the previous version keeps serving
            self._failed[version.id] = (str(exc) or type(exc).__name__, _file_signature(version.artifact_path), str(version))
            current = self._engines.get(version.name)
            serving = f"still serving v{current.version}" if current else "nothing of that name is served here until it loads"
            log.error("model %s v%s failed to load; %s: %s", version.name, version.version, serving, exc)
            return
        self._failed.pop(version.id, None)
        self._engines[version.name] = Loaded(version.id, version.name, version.version, engine, registered=version.engine)
        log.info("serving %s v%s on %s (loaded in %.1fs)", version.name, version.version, engine.kind, time.perf_counter() - started)

    def serving_kind(self, version_id: int) -> str | None:
        """The engine kind really answering for that version in this process; None when it is not loaded here."""
        for loaded in list(self._engines.values()):
            if loaded.version_id == version_id:
                return loaded.engine.kind
        return None

    def admit(self):
        """Context manager bounding the requests that wait for inference; raises Busy beyond the bound."""
        return _Admission(self._gate)

    def start_polling(self) -> None:
        """Start the background thread that follows activations (once per process, after fork)."""
        if self._poller is not None:
            return
        self._poller = threading.Thread(target=self._poll, name="model-poller", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.wait(settings.MODEL_POLL_SECONDS):
            try:
                self.refresh()
            except Exception as exc:  # the poller must outlive a database hiccup
                log_failure(log, "model refresh failed", exc)
            finally:
                close_old_connections()


def engine_for(version) -> Engine:
    """A version's engine as workers serve it: its registered file, on its registered engine (else Keras), warmed up."""
    from webapp import services

    services.model_version_verify(version=version)
    engine = load_engine(version.artifact_path, kind=version.engine)
    engine.warm_up()
    return engine


def _with_allowed(loaded: Loaded, listed) -> Loaded:
    """`loaded` with the mask of `listed` (an AllowedClassList or None), parsed only when the list or version changed."""
    from recognizer.allowed import parse_allowed
    from recognizer.labels import chinese_labels

    signature = None if listed is None else (listed.pk, listed.updated_at, loaded.version_id)
    if (loaded.allowed.signature if loaded.allowed else None) == signature:
        return loaded
    if listed is None:
        return replace(loaded, allowed=None)
    manifest = loaded.engine.manifest
    mask, unknown = parse_allowed(listed.lines, manifest.classes, chinese_labels(manifest))
    if unknown:  # saved against another version: the classes this one lacks cannot be answered anyway
        log.warning("the allowed-class list of %s names classes v%s does not have: %s",
                    loaded.name, loaded.version, ", ".join(unknown[:5]))
    return replace(loaded, allowed=Allowed(mask, "admin", signature))


def _file_signature(path: str) -> tuple | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns)


class _Admission:
    def __init__(self, gate: threading.BoundedSemaphore):
        self._gate = gate

    def __enter__(self):
        if not self._gate.acquire(blocking=False):
            raise Busy(gettext_noop("The service is busy; try again in a moment."))

    def __exit__(self, *exc):
        self._gate.release()


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    """This process's Runtime, created on first use (never in the gunicorn master)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime()
        return _runtime


def reset() -> None:
    """Forget every loaded engine (tests)."""
    global _runtime
    with _runtime_lock:
        _runtime = None
