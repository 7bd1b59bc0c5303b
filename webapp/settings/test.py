"""Test settings: everything under a throw-away folder, no rate limit surprises."""

import tempfile
from pathlib import Path

from webapp.settings.base import *  # noqa: F401,F403

VAR_DIR = Path(tempfile.mkdtemp(prefix="recognizer-test-"))
MEDIA_ROOT = VAR_DIR / "media"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": PRIVATE_FILES},  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
API_RATE_LIMIT = "10000/m"
PAGE_RATE_LIMIT = "10000/m"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Compiling every tiny test model for ONNX Runtime would cost seconds per registration; the tests that
# exercise the optimized engine turn it on themselves.
RECOGNIZER_ENGINE = "keras"
# Most tests are about serving; the feedback tests turn keeping photos on themselves.
FEEDBACK_ENABLED = False
TRAINING_LOCK_FILE = str(VAR_DIR / "training.lock")
