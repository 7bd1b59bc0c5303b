"""Settings shared by every environment; each value can be set from the environment."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from recognizer.backbones import DEFAULT as DEFAULT_BACKBONE
from recognizer.backbones import NAMES as BACKBONES

from webapp.settings.env import (
    env_bool, env_choice, env_float, env_image_formats, env_int, env_list, env_log_format, env_networks, env_path,
    env_rate, env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = env_path("VAR_DIR", BASE_DIR / "var")
try:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite does not create the folder of its database
except OSError as exc:
    raise ImproperlyConfigured(f"VAR_DIR {VAR_DIR} cannot be made ({exc.strerror}): it must be a folder this user can write.") from None

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "ninja",
    "webapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "webapp.middleware.PageSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "webapp.i18n.ApiLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "webapp.middleware.JsonErrorsMiddleware",
    "webapp.middleware.WorkerMemoryMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

try:
    DATABASES = {
        "default": dj_database_url.config(
            env="DATABASE_URL",
            default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
            conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0),
            # A kept connection that the server dropped (a restart, a failover) is replaced before use, not a 500.
            conn_health_checks=True,
        )
    }
except ValueError as exc:  # dj-database-url's unknown scheme or malformed URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL like postgres://user:password@host/name: {exc}") from None
SUPPORTED_DATABASES = {"django.db.backends.sqlite3", "django.db.backends.postgresql"}  # the drivers requirements.txt has
if DATABASES["default"]["ENGINE"] not in SUPPORTED_DATABASES:
    raise ImproperlyConfigured(
        f"DATABASE_URL must name PostgreSQL (postgres://) or SQLite (sqlite:///), not {DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}."
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn workers write prediction records: WAL and a busy timeout keep them from failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

def _redis_url(name: str) -> str:
    value = env_str(name, "")
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"{name} must be a Redis URL (redis://, rediss:// or unix://), not {value!r}.")
    return value


CACHE_URL = _redis_url("CACHE_URL")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
else:
    # Shared by the workers of one host, with exact counters (webapp/cache.py); hosts behind a balancer share
    # CACHE_URL=redis://...
    CACHES = {"default": {"BACKEND": "webapp.cache.HostCache", "LOCATION": str(VAR_DIR / "cache")}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
# The page and the admin speak these; the browser's Accept-Language picks one until the reader switches.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]  # compiled by `manage.py compilemessages` (make setup)
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_path("STATIC_ROOT", VAR_DIR / "staticfiles")
# Kept photos (and uploaded models) are people's and the service's: readable by its user and group, not by every
# user of the host (Django's FILE_UPLOAD_PERMISSIONS, 0644, is set whatever the umask). Static files keep theirs:
# a container collects them as root for its own user to serve.
PRIVATE_FILES = {"file_permissions_mode": 0o640, "directory_permissions_mode": 0o750}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": PRIVATE_FILES},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"  # never served by the app: uploads are private
MEDIA_URL = "/media/"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The product's own settings.
MODELS_DIR = env_path("RECOGNIZER_MODELS_DIR", BASE_DIR / "models")
# The engine each new version is compiled for at registration (keras | onnxruntime | openvino); a version that
# fails to compile or to match Keras' answers is served by Keras, and the reason is kept on the version.
RECOGNIZER_ENGINE = env_choice("RECOGNIZER_ENGINE", "onnxruntime", ("keras", "onnxruntime", "openvino"))
# fp32 | int8 | bf16 | auto: with int8 or auto an ONNX copy is also quantized at registration, with bf16 (OpenVINO on a
# CPU with bfloat16) the OpenVINO copy is also run in bfloat16; either serves only when its accuracy gate passes on
# the repository's golden photos; the version's engine note keeps the figures.
# Checked here so a bad value stops the start; recognizer.optimized.intra_threads reads it where the engine runs.
env_int("RECOGNIZER_INTRA_THREADS", 1, minimum=1)
RECOGNIZER_PRECISION = env_choice("RECOGNIZER_PRECISION", "fp32", ("fp32", "int8", "bf16", "auto"))
if RECOGNIZER_PRECISION == "bf16" and RECOGNIZER_ENGINE != "openvino":
    raise ImproperlyConfigured(
        f"RECOGNIZER_PRECISION=bf16 needs RECOGNIZER_ENGINE=openvino (bfloat16 copies run on OpenVINO only), not {RECOGNIZER_ENGINE}."
    )
# A file of the classes this deployment can meet (one label, WordNet id or index a line), applied to the
# default model's answers before ranking; empty: every class.
ALLOWED_CLASSES_FILE = env_str("ALLOWED_CLASSES_FILE", "")
# The default model's name follows the backbone `make run` builds (RECOGNIZER_DEFAULT_BACKBONE) unless set.
RECOGNIZER_DEFAULT_BACKBONE = env_choice("RECOGNIZER_DEFAULT_BACKBONE", DEFAULT_BACKBONE, BACKBONES)
DEFAULT_MODEL_NAME = env_str("DEFAULT_MODEL_NAME", f"imagenet-{RECOGNIZER_DEFAULT_BACKBONE}")
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 10_000_000, minimum=1)
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 40_000_000, minimum=1)

# ---- decoding budgets (see README "Security") ----
# JPEG decodes at a reduced scale (a 40 MP JPEG costs about 4 MB); every other format decodes whole, so its limit
# is lower: a 16 MP RGBA PNG takes 128 MB at its peak, a 16 MP WebP 320 MB (libwebp holds about five frames).
# For scale: one 40 MP RGBA image is 160 MB decoded.
MAX_FULL_DECODE_PIXELS = env_int("MAX_FULL_DECODE_PIXELS", 16_000_000, minimum=1)
# Peak decoding memory one request may need (its images together, estimated from their headers): 413 beyond.
DECODE_REQUEST_MAX_BYTES = env_int("DECODE_REQUEST_MAX_BYTES", 384 * 2**20, minimum=1)
# Decoding memory in flight per worker (each request holds its largest image's cost): a fast 503 beyond. With a
# worker at about 210-260 MB serving, 384 MB keeps its peak under the 700 MB per-worker target.
DECODE_WORKER_MAX_BYTES = env_int("DECODE_WORKER_MAX_BYTES", 384 * 2**20, minimum=1)
ALLOWED_IMAGE_FORMATS = env_image_formats("ALLOWED_IMAGE_FORMATS", ("JPEG", "PNG", "WEBP", "GIF", "BMP"))
BATCH_MAX_IMAGES = env_int("BATCH_MAX_IMAGES", 16, minimum=1)
STORE_UPLOADS = env_bool("STORE_UPLOADS", False)
API_ALLOW_ANONYMOUS = env_bool("API_ALLOW_ANONYMOUS", True)
API_RATE_LIMIT = env_rate("API_RATE_LIMIT", "120/m")
# ---- access (see README "Security") ----
# The page is a public demo: one photo at a time, its own budget per client address, stricter than the API's.
PAGE_RATE_LIMIT = env_rate("PAGE_RATE_LIMIT", "30/m")
# Password attempts at the admin's sign-in per client address.
LOGIN_RATE_LIMIT = env_rate("LOGIN_RATE_LIMIT", "10/m")
# Reverse proxies in front of gunicorn that append to X-Forwarded-For; 0 (gunicorn serves clients directly) means
# X-Forwarded-For and X-Forwarded-Proto are the client's own words and are ignored.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
MODEL_POLL_SECONDS = env_int("MODEL_POLL_SECONDS", 2, minimum=1)
# Requests per worker being decoded or classified; more get a fast 503. Half of WEB_THREADS (16), so that spare
# threads are there to say no quickly instead of queueing in gunicorn.
INFERENCE_QUEUE_MAX = env_int("INFERENCE_QUEUE_MAX", 8, minimum=1)

# A request body holds at most a batch of full-size uploads (plus base64 overhead); larger bodies are 413.
FILE_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", UPLOAD_MAX_BYTES * 4, minimum=UPLOAD_MAX_BYTES)  # a whole photo fits
# A JSON body (base64 images) may be as large as any other body: the limit above, checked before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BYTES
# Model uploads (H5 + manifest) in the admin's register form, for staff who may add versions: the one larger body.
ADMIN_UPLOAD_MAX_BYTES = env_int("ADMIN_UPLOAD_MAX_BYTES", 512_000_000, minimum=1)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
DATA_UPLOAD_MAX_NUMBER_FILES = BATCH_MAX_IMAGES + 4

# ---- operations: logs, metrics, several hosts ----
from webapp.logs import logging_config  # noqa: E402

# LOG_FORMAT: plain here (development); the production settings default to json (one object per line).
LOG_FORMAT = env_log_format("plain")
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)
# The request id and the request's metrics wrap everything else, error replies of other middleware included.
MIDDLEWARE = ["webapp.logs.RequestIdMiddleware", "webapp.metrics.MetricsMiddleware", *MIDDLEWARE]
# /metrics: open when both are empty (the embedded default); else a bearer token or an address in a network.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS", [])
# Names this host in the workers' heartbeats (manage.py models); the hostname when empty.
INSTANCE_NAME = env_str("INSTANCE_NAME", "")

# ---- the learning loop: feedback, kept photos ----
# While feedback is on, each upload is kept (metadata stripped) for FEEDBACK_RETENTION_DAYS, and longer only if
# feedback arrives for it; `manage.py purge_uploads` deletes the rest.
FEEDBACK_ENABLED = env_bool("FEEDBACK_ENABLED", True)
FEEDBACK_RETENTION_DAYS = env_int("FEEDBACK_RETENTION_DAYS", 7, minimum=1)
FEEDBACK_PHOTO_MAX_SIDE = env_int("FEEDBACK_PHOTO_MAX_SIDE", 1024, minimum=32)
# Kept photos live under MEDIA_ROOT/feedback: with several hosts, point it at storage they share.
MEDIA_ROOT = env_path("MEDIA_ROOT", MEDIA_ROOT)

# ---- the learning loop: training jobs on a job queue ----
# The database queue (django-tasks-db) by default, worked by `manage.py task_worker` beside gunicorn; RQ on Redis
# when TASKS_BROKER_URL is set (then run `manage.py task_worker` on any machine that should train).
TASKS_BROKER_URL = _redis_url("TASKS_BROKER_URL")
INSTALLED_APPS += ["django_tasks", "django_tasks_db"]
TRAINING_TIMEOUT_SECONDS = env_int("TRAINING_TIMEOUT_SECONDS", 6 * 3600, minimum=1)  # read (and checked) either way
if TASKS_BROKER_URL:
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    RQ_QUEUES = {"default": {"URL": TASKS_BROKER_URL, "DEFAULT_TIMEOUT": TRAINING_TIMEOUT_SECONDS}}
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
TRAINING_THREADS = env_int("TRAINING_THREADS", max(1, len(os.sched_getaffinity(0)) // 2), minimum=1)
TRAINING_NICE = env_int("TRAINING_NICE", 10, minimum=0, maximum=19)  # the kernel's lowest priority is 19
TRAINING_LOCK_FILE = env_str("TRAINING_LOCK_FILE", str(VAR_DIR / "training.lock"))

# ---- the learning loop: promotion gate ----
# Activation is refused when a candidate's golden-set top-1 accuracy is this many points below the active version's.
PROMOTION_MAX_DROP_POINTS = env_float("PROMOTION_MAX_DROP_POINTS", 1.0, minimum=0.0, maximum=100.0)
# Share of live requests that a version in shadow also classifies, in the background.
SHADOW_SAMPLE_RATE = env_float("SHADOW_SAMPLE_RATE", 0.1, minimum=0.0, maximum=1.0)
