"""Production settings: secrets from the environment, `check --deploy` clean, anonymous API use off."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from tests.conftest import REPO_ROOT


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALLOWED_HOSTS", "API_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={**base, "DJANGO_SETTINGS_MODULE": "webapp.settings.production", **env},
    )


def test_check_deploy_passes_with_no_warning():
    done = manage("check", "--deploy", "--fail-level", "WARNING",
                  DJANGO_SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="recognizer.example.org")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_it_refuses_to_start_without_a_secret_key():
    done = manage("check", ALLOWED_HOSTS="recognizer.example.org")
    assert done.returncode != 0
    assert "Set the environment variable DJANGO_SECRET_KEY" in done.stderr


def test_anonymous_api_use_and_debug_are_off_unless_asked_for():
    show = "from django.conf import settings as s; print(s.DEBUG, s.API_ALLOW_ANONYMOUS, s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)"
    done = manage("shell", "-c", show, DJANGO_SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="recognizer.example.org")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-4:] == ["False", "False", "True", "True"]


def test_probes_see_the_real_status_while_everything_else_is_redirected_to_https(tmp_path):
    # The Django test client under production settings, on an empty database: no model is loaded.
    probe = (
        "from django.core.management import call_command; call_command('migrate', verbosity=0); "
        "from django.test import Client; c = Client(); "
        "print(*(c.get(p).status_code for p in ('/healthz', '/readyz', '/api/v1/models', '/')))"
    )
    done = manage("shell", "-c", probe, DJANGO_SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="testserver",
                  VAR_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")  # its own empty database
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-4:] == ["200", "503", "301", "301"]
