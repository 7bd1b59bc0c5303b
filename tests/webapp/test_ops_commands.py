"""The operator commands: models, activate, rollback, tokens; the same services as the admin, audited the same way."""

from __future__ import annotations

import io
import json
import os

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from tests.conftest import TINY_NAME, random_photo
from tests.webapp.helpers import PREDICT, assert_error, encode, predict, upload
from webapp import fleet, services
from webapp.models import Activation, ApiToken, ModelVersion, WorkerHeartbeat
from webapp.runtime import runtime


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def two_versions(active_tiny, tiny_artifact_v2):
    return active_tiny, services.model_version_register(artifact_path=tiny_artifact_v2)


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("ops", password="x", is_staff=True)


def test_activate_switches_the_active_version_and_audits_who_did_it(two_versions, staff):
    out = run("activate", TINY_NAME, "2", "--by", "ops")
    assert out.startswith(f"{TINY_NAME} v2 is active")
    assert ModelVersion.objects.get(is_active=True).version == 2
    audit = Activation.objects.first()
    assert (audit.from_version.version, audit.to_version.version, audit.kind, audit.by) == (1, 2, "activate", staff)


def test_activate_without_a_golden_set_says_the_versions_were_not_compared_as_the_admin_does(two_versions):
    out, err = io.StringIO(), io.StringIO()
    call_command("activate", TINY_NAME, "2", stdout=out, stderr=err)
    assert out.getvalue().startswith(f"{TINY_NAME} v2 is active")
    assert f"warning: {TINY_NAME} has no golden set: its versions are not compared" in err.getvalue()


def test_activate_reads_version_option_as_the_version_to_activate_not_djangos(two_versions):
    out = run("activate", TINY_NAME, "--version", "2")
    assert out.startswith(f"{TINY_NAME} v2 is active")
    assert ModelVersion.objects.get(is_active=True).version == 2


@pytest.mark.parametrize("args", [(), ("1", "--version", "2")], ids=["none", "two"])
def test_activate_without_exactly_one_version_refuses_and_changes_nothing(two_versions, args):
    with pytest.raises(CommandError, match="name one version"):
        run("activate", TINY_NAME, *args)
    assert ModelVersion.objects.get(is_active=True).version == 1


@pytest.mark.parametrize("args, message", [(("9",), "no version 9"), (("2", "--by", "nobody"), "no active staff user")])
def test_activate_refuses_in_one_line_and_changes_nothing(two_versions, args, message):
    with pytest.raises(CommandError, match=message) as raised:
        run("activate", TINY_NAME, *args)
    assert "\n" not in str(raised.value)
    assert ModelVersion.objects.get(is_active=True).version == 1


def test_rollback_goes_back_to_the_previous_version_and_audits_it(two_versions, staff):
    run("activate", TINY_NAME, "2")
    assert run("rollback", TINY_NAME, "--by", "ops").startswith(f"rolled back to {TINY_NAME} v1")
    assert ModelVersion.objects.get(is_active=True).version == 1
    assert (Activation.objects.first().kind, Activation.objects.first().by) == ("rollback", staff)


def test_each_rollback_undoes_one_more_activation_instead_of_toggling_back(two_versions, tiny_artifact_v2, artifact_copy):
    services.model_version_register(artifact_path=artifact_copy(tiny_artifact_v2))  # v3
    run("activate", TINY_NAME, "2")
    run("activate", TINY_NAME, "3")
    active = lambda: ModelVersion.objects.get(is_active=True).version  # noqa: E731
    run("rollback", TINY_NAME)
    assert active() == 2
    run("rollback", TINY_NAME)
    assert active() == 1  # not back to v3, the version just rolled away from
    with pytest.raises(CommandError, match="no previously active version"):
        run("rollback", TINY_NAME)
    run("activate", TINY_NAME, "3")
    run("rollback", TINY_NAME)
    assert active() == 1  # a new activation is undone first


def test_rollback_without_a_previous_version_says_so(active_tiny):
    with pytest.raises(CommandError, match="no previously active version"):
        run("rollback", TINY_NAME)


def test_a_created_token_works_until_it_is_revoked(client, active_tiny, settings, staff):
    settings.API_ALLOW_ANONYMOUS = False
    out = run("tokens", "create", "batch-job", "--by", "ops")
    key = out.split(": ", 1)[1].strip()
    token = ApiToken.objects.get(name="batch-job")
    assert key not in run("tokens", "list") and f"{token.prefix}..." in run("tokens", "list")
    image = encode(random_photo(), "JPEG")
    assert client.post(PREDICT, {"image": upload(image)}, HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200

    assert "revoked token" in run("tokens", "revoke", token.prefix, "--by", "ops")
    assert_error(client.post(PREDICT, {"image": upload(image)}, HTTP_AUTHORIZATION=f"Bearer {key}"), 401, "unauthorized")
    assert "revoked" in run("tokens", "list") and run("tokens", "list", "--active") == ""
    assert [e.get_change_message() for e in LogEntry.objects.filter(object_id=str(token.pk)).order_by("pk")] == ["created", "revoked"]


def test_revoking_a_revoked_token_again_says_nothing_changed_and_audits_nothing(staff):
    run("tokens", "create", "twice", "--by", "ops")
    token = ApiToken.objects.get(name="twice")
    run("tokens", "revoke", str(token.pk), "--by", "ops")
    assert "already revoked; nothing changed" in run("tokens", "revoke", str(token.pk), "--by", "ops")
    assert [e.get_change_message() for e in LogEntry.objects.filter(object_id=str(token.pk)).order_by("pk")] == ["created", "revoked"]


def test_revoking_an_unknown_token_says_so(db):
    with pytest.raises(CommandError, match="no token matches"):
        run("tokens", "revoke", "nosuchprefix")


def test_revoking_an_unknown_id_does_not_speak_of_prefixes(db):
    with pytest.raises(CommandError) as refused:
        run("tokens", "revoke", "999")
    assert "no token matches '999'" in str(refused.value) and "prefix" not in str(refused.value)


def test_a_token_name_longer_than_the_admin_keeps_is_refused_before_it_is_stored(db):
    with pytest.raises(CommandError, match="The token's name has 101 characters; at most 100."):
        run("tokens", "create", "n" * 101)
    assert not ApiToken.objects.exists()
    run("tokens", "create", "n" * 100)
    assert ApiToken.objects.get().name == "n" * 100


def test_revoking_by_a_prefix_too_short_to_match_says_how_long_it_must_be(staff):
    run("tokens", "create", "short", "--by", "ops")
    prefix = ApiToken.objects.get(name="short").prefix
    with pytest.raises(CommandError, match=r"no token matches '.{3}' \(a prefix needs at least 4 characters\)"):
        run("tokens", "revoke", prefix[:3], "--by", "ops")
    assert ApiToken.objects.get(name="short").is_active


def test_models_lists_versions_and_what_each_live_worker_serves(two_versions, settings):
    settings.INSTANCE_NAME = "host-a"
    runtime().get(TINY_NAME)
    fleet.worker_heartbeat_record()
    report = json.loads(run("models", "--json"))
    assert [(v["version"], v["active"], v["engine"]) for v in report["versions"]] == [(2, False, "keras"), (1, True, "keras")]
    assert [(w["instance"], w["pid"], w["model"], w["version"], w["engine"]) for w in report["workers"]] == [
        ("host-a", os.getpid(), TINY_NAME, 1, "keras")
    ]
    table = run("models")
    assert "host-a" in table and str(os.getpid()) in table and "warning" not in table


def test_models_of_a_name_no_worker_serves_does_not_ask_whether_the_service_runs(active_tiny, tmp_path):
    from tests.imagenet_tiny import NAME as OTHER, save_imagenet_tiny

    services.model_version_register(artifact_path=save_imagenet_tiny(tmp_path))  # registered, never activated
    runtime().get(TINY_NAME)
    fleet.worker_heartbeat_record()  # the service runs, serving the other name
    said = run("models", OTHER)
    assert f"no live worker serves {OTHER}: it has no active version, or the workers failed to load it" in said
    assert "is the service running" not in said


def test_models_counts_each_versions_predictions_under_that_name(active_tiny, client):
    assert predict(client, encode(random_photo(), "JPEG")).status_code == 200
    versions = json.loads(run("models", "--json"))["versions"]
    assert [(v["version"], v["predictions"]) for v in versions] == [(1, 1)]
    assert run("models").splitlines()[0].split()[:5] == ["name", "version", "active", "engine", "predictions"]


@pytest.mark.parametrize("damage", ["changed", "deleted"])
def test_models_flags_a_version_whose_artifact_changed_or_disappeared_since_registration(db, artifact_copy, damage):
    path = artifact_copy()
    services.model_version_register(artifact_path=path)
    assert "put the registered file back" not in json.loads(run("models", "--json"))["versions"][0]["problem"]
    if damage == "changed":
        with open(path, "ab") as handle:
            handle.write(b"\0")
    else:
        path.unlink()
    problem = json.loads(run("models", "--json"))["versions"][0]["problem"]
    assert ("changed on disk" if damage == "changed" else "is missing") in problem
    # "register it again" was refused as "already registered": the way out is the file back, or a new version
    assert "put the registered file back" in problem and "as a new version" in problem
    assert "put the registered file back" in run("models")


def test_models_leaves_out_workers_that_stopped_reporting(active_tiny, settings):
    from django.utils import timezone

    runtime().get(TINY_NAME)
    fleet.worker_heartbeat_record()
    WorkerHeartbeat.objects.update(seen_at=timezone.now() - fleet.heartbeat_live_window() * 2)
    assert json.loads(run("models", "--json"))["workers"] == []
    assert "no worker has reported" in run("models")


def test_evaluate_refuses_version_zero_instead_of_evaluating_the_active_one(active_tiny, tmp_path):
    with pytest.raises(CommandError, match="has no version 0"):
        run("evaluate", "--data", str(tmp_path), "--model", TINY_NAME, "--model-version", "0")


def test_a_token_needs_a_name_and_rollback_names_an_unknown_model(db):
    with pytest.raises(CommandError, match="Give the token a name"):
        run("tokens", "create", "  ")
    assert not ApiToken.objects.exists()
    with pytest.raises(CommandError, match="There is no model named 'nosuch'"):
        run("rollback", "nosuch")


@pytest.mark.parametrize("env, message", [
    ({"WEB_WORKERS": "two"}, "WEB_WORKERS must be a whole number of at least 1, not 'two'."),
    ({"WEB_WORKERS": "0"}, "WEB_WORKERS must be a whole number of at least 1, not '0'."),
    ({"WEB_THREADS": "-3"}, "WEB_THREADS must be a whole number of at least 1, not '-3'."),
])
def test_gunicorn_settings_that_are_not_counts_stop_it_with_one_line(env, message):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    code = "import runpy; runpy.run_path('gunicorn.conf.py')"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})
    assert done.returncode == 1 and done.stderr.strip() == message


def test_a_token_key_never_starts_with_a_dash_so_revoke_prefix_is_not_read_as_an_option(staff, monkeypatch):
    keys = iter(["-" + "a" * 42, "b" * 43])
    monkeypatch.setattr(services.secrets, "token_urlsafe", lambda n: next(keys))
    out = run("tokens", "create", "dashed", "--by", "ops")
    token = ApiToken.objects.get(name="dashed")
    assert token.prefix == "b" * 8 and out.split(": ", 1)[1].strip() == "b" * 43
    assert "revoked token" in run("tokens", "revoke", token.prefix, "--by", "ops")


def _gunicorn_compile_messages(folder) -> "subprocess.CompletedProcess":
    """gunicorn.conf.py's _compile_messages, as its master runs it before the workers start, on `folder`."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    code = "import runpy, sys; runpy.run_path('gunicorn.conf.py')['_compile_messages']([sys.argv[1]])"
    return subprocess.run([sys.executable, "-c", code, str(folder)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings.dev"})


def test_gunicorns_master_compiles_the_translations_a_hand_started_service_would_lack(tmp_path):
    # Started by hand, without `make run`: no .mo files, and the Chinese pages and replies came out in English.
    import gettext
    import shutil

    from tests.conftest import REPO_ROOT

    locale = tmp_path / "locale"
    shutil.copytree(REPO_ROOT / "locale", locale, ignore=shutil.ignore_patterns("*.mo"))
    done = _gunicorn_compile_messages(locale)
    assert done.returncode == 0, done.stderr
    with open(locale / "zh_Hans" / "LC_MESSAGES" / "django.mo", "rb") as mo:
        assert gettext.GNUTranslations(mo).gettext("Very likely %(label)s.") == "很可能是%(label)s。"
    assert (locale / "zh_Hans" / "LC_MESSAGES" / "djangojs.mo").is_file()


def test_translations_that_cannot_be_compiled_stop_the_start_with_one_line(tmp_path):
    import shutil

    from tests.conftest import REPO_ROOT

    locale = tmp_path / "locale"
    shutil.copytree(REPO_ROOT / "locale", locale, ignore=shutil.ignore_patterns("*.mo"))
    (locale / "zh_Hans" / "LC_MESSAGES" / "django.mo").mkdir()  # in the way of the compiled file
    os.utime(locale / "zh_Hans" / "LC_MESSAGES" / "django.mo", (0, 0))
    done = _gunicorn_compile_messages(locale)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith(f"Cannot compile the translations in {locale} (")
    assert done.stderr.strip().endswith("compiled before the start with `python scripts/compile_messages.py` (as `make run` does).")
