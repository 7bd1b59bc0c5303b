"""Production settings: secrets from the environment, `check --deploy` clean, anonymous API use off."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

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


GOOD = {"DJANGO_SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "recognizer.example.org"}


@pytest.mark.parametrize("env, message", [
    ({"DJANGO_SECRET_KEY": ""}, "Set the environment variable DJANGO_SECRET_KEY"),
    ({"ALLOWED_HOSTS": ""}, "Set ALLOWED_HOSTS"),
    ({"RECOGNIZER_ENGINE": "tensorrt"}, "RECOGNIZER_ENGINE must be one of keras, onnxruntime, openvino"),
    ({"RECOGNIZER_PRECISION": "int4"}, "RECOGNIZER_PRECISION must be one of fp32, int8, bf16, auto"),
    ({"RECOGNIZER_PRECISION": "bf16", "RECOGNIZER_ENGINE": "onnxruntime"}, "RECOGNIZER_PRECISION=bf16 needs RECOGNIZER_ENGINE=openvino"),
    ({"CACHE_URL": "memcached://127.0.0.1:11211"}, "CACHE_URL must be a Redis URL"),
    ({"TASKS_BROKER_URL": "amqp://127.0.0.1"}, "TASKS_BROKER_URL must be a Redis URL"),
    ({"RECOGNIZER_DEFAULT_BACKBONE": "vgg16"}, "RECOGNIZER_DEFAULT_BACKBONE must be one of resnet50, efficientnet_lite0"),
    ({"DATABASE_URL": "garbage"}, "DATABASE_URL is not a database URL"),
    ({"METRICS_ALLOWED_NETWORKS": "notanet"}, "METRICS_ALLOWED_NETWORKS: 'notanet' is not an IP network"),
    ({"API_RATE_LIMIT": "lots"}, "API_RATE_LIMIT must be a rate of at least 1 like 120/m"),
    ({"API_RATE_LIMIT": "0/m"}, "API_RATE_LIMIT must be a rate of at least 1 like 120/m (per s, m, h or d), not '0/m'"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be one of json, plain, not 'xml'"),
    ({"RECOGNIZER_INTRA_THREADS": "0"}, "RECOGNIZER_INTRA_THREADS must be at least 1, not 0"),
    ({"TRAINING_TIMEOUT_SECONDS": "0"}, "TRAINING_TIMEOUT_SECONDS must be at least 1, not 0"),
    ({"TRAINING_NICE": "50"}, "TRAINING_NICE must be at most 19, not 50"),
    ({"MODEL_POLL_SECONDS": "0"}, "MODEL_POLL_SECONDS must be at least 1"),
    ({"TRUSTED_PROXY_COUNT": "-1"}, "TRUSTED_PROXY_COUNT must be at least 0"),
    ({"SHADOW_SAMPLE_RATE": "abc"}, "SHADOW_SAMPLE_RATE must be a number"),
    ({"PROMOTION_MAX_DROP_POINTS": "500"}, "PROMOTION_MAX_DROP_POINTS must be a number from 0.0 to 100.0"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of DEBUG"),
    ({"BATCH_MAX_IMAGES": "0"}, "BATCH_MAX_IMAGES must be at least 1, not 0"),
    ({"UPLOAD_MAX_BYTES": "-5"}, "UPLOAD_MAX_BYTES must be at least 1, not -5"),
    ({"MAX_IMAGE_PIXELS": "0"}, "MAX_IMAGE_PIXELS must be at least 1"),
    ({"REQUEST_MAX_BYTES": "100"}, "REQUEST_MAX_BYTES must be at least 10000000, not 100"),
    ({"FEEDBACK_RETENTION_DAYS": "0"}, "FEEDBACK_RETENTION_DAYS must be at least 1"),
    ({"SECURE_HSTS_SECONDS": "-1"}, "SECURE_HSTS_SECONDS must be at least 0"),
    ({"ALLOWED_IMAGE_FORMATS": "jpeg,JPG"}, "ALLOWED_IMAGE_FORMATS must list image formats Pillow opens, like JPEG,PNG,WEBP,GIF,BMP; not JPG."),
])
def test_a_missing_or_malformed_setting_stops_the_start_with_one_line_naming_it(env, message):
    done = subprocess.run(
        [sys.executable, "-c", "import webapp.settings.production"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALLOWED_HOSTS"))}, **GOOD, **env},
    )
    assert done.returncode != 0 and message in done.stderr.splitlines()[-1], done.stderr[-2000:]


@pytest.mark.parametrize("env, code", [
    ({"DATABASE_URL": "postgres://nobody:pw@127.0.0.1:9/none"}, "database_unavailable"),
    ({"CACHE_URL": "redis://127.0.0.1:9/0"}, "cache_unavailable"),
])
def test_readyz_is_a_json_503_naming_the_dependency_that_cannot_be_reached(tmp_path, env, code):
    probe = (
        "from django.core.management import call_command; import json\n"
        "if 'CACHE_URL' in __import__('os').environ: call_command('migrate', verbosity=0)\n"
        "from django.test import Client; r = Client().get('/readyz')\n"
        "print(r.status_code, r['Retry-After'], json.loads(r.content)['error']['code'])"
    )
    own = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", **env}  # never the suite's database
    done = manage("shell", "-c", probe, VAR_DIR=str(tmp_path), ALLOWED_HOSTS="testserver", DJANGO_SECRET_KEY="k" * 50,
                  SECURE_SSL_REDIRECT="false", **own)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-3:] == ["503", "5", code]



def settings_of(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", f"import webapp.settings.production as s; print({code})"], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=60,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALLOWED_HOSTS", "RECOGNIZER_DEFAULT"))}, **GOOD, **env},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_metrics_networks_set_to_nothing_stay_loopback_instead_of_opening_metrics_to_everyone():
    assert settings_of("s.METRICS_ALLOWED_NETWORKS", METRICS_ALLOWED_NETWORKS="", METRICS_TOKEN="") == "['127.0.0.0/8', '::1/128']"
    assert settings_of("s.METRICS_ALLOWED_NETWORKS", METRICS_ALLOWED_NETWORKS="10.0.0.0/24") == "['10.0.0.0/24']"


def test_image_formats_are_read_in_any_case():
    assert settings_of("s.ALLOWED_IMAGE_FORMATS", ALLOWED_IMAGE_FORMATS="jpeg, Png,webp") == "('JPEG', 'PNG', 'WEBP')"


def test_the_default_model_name_follows_the_default_backbone_unless_set():
    assert settings_of("s.DEFAULT_MODEL_NAME") == "imagenet-efficientnet_lite0"
    assert settings_of("s.DEFAULT_MODEL_NAME", RECOGNIZER_DEFAULT_BACKBONE="efficientnet_lite2") == "imagenet-efficientnet_lite2"
    assert settings_of("s.DEFAULT_MODEL_NAME", RECOGNIZER_DEFAULT_BACKBONE="efficientnet_lite2", DEFAULT_MODEL_NAME="mine") == "mine"


def test_a_json_body_may_be_as_large_as_any_body():
    assert settings_of("s.DATA_UPLOAD_MAX_MEMORY_SIZE == s.REQUEST_MAX_BYTES", REQUEST_MAX_BYTES="90000000") == "True"


@pytest.mark.parametrize("bad, line", [
    ({"BATCH_MAX_IMAGES": "0"}, "BATCH_MAX_IMAGES must be at least 1, not 0."),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be one of json, plain, not 'xml'."),  # read by the logging module
    ({"VAR_DIR": "/proc/nope"}, "VAR_DIR /proc/nope cannot be made (No such file or directory): it must be a folder this user can write."),
    ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL must name PostgreSQL (postgres://) or SQLite (sqlite:///), not mysql."),
    ({"DJANGO_SETTINGS_MODULE": "webapp.settings.prod"},
     "DJANGO_SETTINGS_MODULE=webapp.settings.prod names no module; use webapp.settings.production or webapp.settings.dev."),
])
@pytest.mark.parametrize("command", [["manage.py", "check"], ["-m", "gunicorn", "-c", "gunicorn.conf.py"]])
def test_manage_py_and_gunicorn_stop_on_a_bad_setting_with_its_one_line_alone(command, bad, line):
    done = subprocess.run(
        [sys.executable, *command], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALLOWED_HOSTS"))}, **GOOD,
             "DJANGO_SETTINGS_MODULE": "webapp.settings.production", **bad},
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [("manage.py: " if "manage.py" in command else "") + line], done.stderr


@pytest.mark.parametrize("name, default", [("STATIC_ROOT", "staticfiles"), ("MEDIA_ROOT", "media")])
def test_a_folder_set_to_nothing_is_its_default_not_the_folder_the_service_was_started_in(name, default, tmp_path):
    # STATIC_ROOT= used to collect the static files into the repository's own folder.
    probe = f"from django.conf import settings; print(settings.{name})"
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings.dev", "VAR_DIR": str(tmp_path), name: ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(tmp_path / default)


def test_every_service_unit_keeps_the_files_it_writes_from_other_users():
    # The SQLite database holds password and token hashes, and kept photos are people's: 0644 let any local user read them.
    units = sorted((REPO_ROOT / "deploy" / "systemd").glob("*.service"))
    assert len(units) == 3
    for unit in units:
        assert "\nUMask=0027\n" in unit.read_text(), unit.name


def test_static_files_stay_readable_by_other_users_while_kept_photos_are_private():
    # A container collects static files as root for its own user to serve: private modes there broke every start.
    from django.core.files.storage import storages

    assert storages["staticfiles"].file_permissions_mode == 0o644
    assert (storages["default"].file_permissions_mode, storages["default"].directory_permissions_mode) == (0o640, 0o750)
