"""gunicorn settings. The model is loaded in each worker after fork, never in the master."""

import os
import subprocess
import sys
from pathlib import Path


def _count(name: str, default: str) -> int:
    """A whole number of at least 1 from the environment, or a one-line refusal naming the variable."""
    raw = os.environ.get(name, default)
    if not raw.isdigit() or int(raw) < 1:
        sys.exit(f"{name} must be a whole number of at least 1, not {raw!r}.")
    return int(raw)


def _check_settings() -> None:
    """Read the Django settings here, in the master: a bad one stops the start with its one line, not a worker's
    traceback."""
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.dev")
    module = os.environ["DJANGO_SETTINGS_MODULE"]
    try:
        importlib.import_module(module)
    except ImproperlyConfigured as exc:
        sys.exit(str(exc))
    except ModuleNotFoundError as exc:
        from webapp.settings.env import settings_module_missing

        said = settings_module_missing(exc, module)
        if said is None:
            raise
        sys.exit(said)


_check_settings()
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{_count('PORT', '8000')}"
wsgi_app = "webapp.wsgi:application"
# Two cores: two workers with one intra-op thread each keep workers x threads within the cores.
workers = _count("WEB_WORKERS", "2")
worker_class = "gthread"
threads = _count("WEB_THREADS", "16")
timeout = _count("WEB_TIMEOUT", "60")
graceful_timeout = 20
preload_app = False  # TensorFlow is not fork-safe
accesslog = os.environ.get("ACCESS_LOG", "-")
limit_request_line = 8190
# Which proxy headers to believe is the Django settings' to say (TRUSTED_PROXY_COUNT): gunicorn on its own trusts any
# client on loopback to claim HTTPS with X-Forwarded-Proto, and to set SCRIPT_NAME and PATH_INFO.
secure_scheme_headers = {}
forwarder_headers = ""
# One control socket (gunicornc) per instance, beside its other state. gunicorn's default is one path per user,
# which a second instance on the host silently takes over (and deletes when it stops).
control_socket = os.path.join(os.environ.get("VAR_DIR", "var"), "gunicorn.ctl")


# Workers x intra-op threads within the cores, for TensorFlow and ONNX Runtime alike (read by recognizer/).
os.environ.setdefault("RECOGNIZER_INTRA_THREADS", str(max(1, len(os.sched_getaffinity(0)) // workers)))


def post_worker_init(worker):
    """Load and warm the active models, then follow activations in the background."""
    from webapp.runtime import runtime

    current = runtime()
    try:
        current.refresh()
    except Exception as exc:  # the worker still answers /healthz and 503s until the model loads
        from webapp.errors import log_failure

        log_failure(worker.log, "initial model load failed", exc)
    current.start_polling()
    from webapp.fleet import heartbeat_start

    heartbeat_start()


# ---- operations: JSON logs, metrics across workers, heartbeats ----
logger_class = "webapp.logs.GunicornLogger"  # LOG_FORMAT json|plain for gunicorn's own lines and the access log
# Every worker writes its metrics here; the scraped worker adds them up (prometheus-client's multiprocess mode).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(os.environ.get("VAR_DIR", "var"), "prometheus"))


def on_starting(server):
    """Start without metric files: counters of a previous run must not be added to this one's."""
    import glob

    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        sys.exit(f"Cannot write the metrics folder {folder} ({exc.strerror}): VAR_DIR must be writable.")
    for kind in ("counter", "gauge", "histogram", "summary"):  # only prometheus-client's files, whatever the folder
        for path in glob.glob(os.path.join(glob.escape(folder), f"{kind}_*.db")):
            os.remove(path)
    _check_migrations()
    _collect_static()
    _compile_messages()


def _check_migrations() -> None:
    """Workers on a database without the project's tables answer every page with a 500: stop the start in one line
    instead. Asked of `manage.py showmigrations` (Django is not set up in the master); a database it cannot reach does
    not stop the start, since readiness names it until it can be reached."""
    here = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run([sys.executable, "manage.py", "showmigrations", "--plan"], cwd=here, capture_output=True, text=True)
    pending = done.stdout.count("[ ]") if done.returncode == 0 else 0
    if pending:
        sys.exit(f"The database lacks {pending} of the project's migrations: run `python manage.py migrate` first "
                 "(`make run` does).")


def _collect_static() -> None:
    """Pages name their static files through the manifest `collectstatic` writes: without it, or with one older than
    the project's files, every page is a 500. Collect here, once, before any worker starts (`make run`, the Dockerfile
    and the systemd unit collect first, so this finds the manifest current and does nothing)."""
    from django.conf import settings

    if "Manifest" not in settings.STORAGES["staticfiles"]["BACKEND"]:
        return
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    ours = [path for folder in settings.STATICFILES_DIRS for path in Path(folder).rglob("*") if path.is_file()]
    try:
        collected = manifest.stat().st_mtime
    except OSError:
        collected = None
    if collected is not None and all(path.stat().st_mtime <= collected for path in ours):
        return
    here = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
                          cwd=here, capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"Cannot collect the static files into STATIC_ROOT {settings.STATIC_ROOT} ({said}): it must be a "
                 "folder this user can write, or one `manage.py collectstatic` already filled (as the Dockerfile does).")


def _compile_messages(locale_dirs=None) -> None:
    """The Chinese page, replies and admin read compiled catalogs (.mo), which are built, not committed: without them a
    service started by hand answers in English under `lang="zh-hans"`. Compile those missing or older than their .po
    here, before any worker starts, with the script `make run` and the Dockerfile run first (it skips current ones)."""
    import runpy

    from django.conf import settings

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "compile_messages.py")
    compile_catalogs = runpy.run_path(script)["compile_catalogs"]
    for folder in locale_dirs or settings.LOCALE_PATHS:
        try:
            compile_catalogs(Path(folder))
        except Exception as exc:  # unwritable, or a catalog Babel cannot read: say it in one line
            sys.exit(f"Cannot compile the translations in {folder} ({type(exc).__name__}: {exc}): it must be writable "
                     "by this user, or compiled before the start with `python scripts/compile_messages.py` (as `make "
                     "run` does).")


def child_exit(server, worker):
    """A dead worker's gauges leave the live sums; its counters stay counted."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    """An orderly exit removes the worker's heartbeat rows; a killed worker's rows age out."""
    try:
        from webapp.fleet import worker_heartbeat_forget

        worker_heartbeat_forget()
    except Exception as exc:  # the database may be gone already; the rows then age out
        worker.log.warning("could not remove this worker's heartbeat rows (they age out): %s", exc)
