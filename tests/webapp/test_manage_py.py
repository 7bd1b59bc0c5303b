"""manage.py as people run it: a new process, quiet about TensorFlow unless --verbose, failing when a file fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recognizer.native_logs import NATIVE_LINE
from tests.conftest import REPO_ROOT, TINY_NAME


@pytest.fixture(scope="module")
def manage(tmp_path_factory, tiny_artifact):
    """Run manage.py in a fresh process on a database and models folder of this module only."""
    var = tmp_path_factory.mktemp("manage-var")
    models = var / "models"
    models.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}  # SQLite under var
    env.update(DJANGO_SETTINGS_MODULE="webapp.settings.dev", VAR_DIR=str(var), RECOGNIZER_MODELS_DIR=str(models))
    env["DEFAULT_MODEL_NAME"] = TINY_NAME

    def run(*args: str, **extra) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env={**env, **extra},
            capture_output=True, text=True, timeout=300,
        )

    assert run("migrate", "--noinput", "-v0").returncode == 0
    shutil.copy(tiny_artifact, models)
    shutil.copy(tiny_artifact.with_suffix(".json"), models)
    run.registered = run("register_model", str(models / tiny_artifact.name), "--activate")
    return run


def native_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if NATIVE_LINE.match(line.encode())]


def test_register_model_loads_tensorflow_without_printing_its_log_lines(manage):
    assert manage.registered.returncode == 0, manage.registered.stderr
    assert native_lines(manage.registered.stderr) == []
    assert "registered" in manage.registered.stdout


def test_classify_with_one_bad_file_among_good_ones_prints_the_good_and_exits_non_zero(manage, photos, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    done = manage("classify", str(photos / "bird/turkey.jpg"), str(bad), str(photos / "plant/rose.jpg"))
    assert done.returncode != 0
    assert [line.split(": ")[0] for line in done.stdout.splitlines()] == [
        str(photos / "bird/turkey.jpg"), str(photos / "plant/rose.jpg")
    ]
    assert "CommandError: 1 of 3 files could not be classified" in done.stderr
    assert native_lines(done.stderr) == [] and "Traceback" not in done.stderr


def test_verbose_shows_tensorflows_log_lines_again(manage, tiny_artifact_v2):
    done = manage("register_model", "--verbose", str(tiny_artifact_v2))
    assert done.returncode == 0, done.stderr
    assert native_lines(done.stderr), done.stderr


@pytest.mark.parametrize("where", ["missing folder", "a folder"])
def test_classify_to_a_csv_that_cannot_be_written_fails_in_one_line_before_classifying(manage, photos, tmp_path, where):
    target = tmp_path / "no" / "such" / "out.csv" if where == "missing folder" else tmp_path
    done = manage("classify", str(photos / "bird/turkey.jpg"), "--csv", str(target))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--csv" in done.stderr.strip().splitlines()[-1]
    assert done.stdout == ""


def test_a_command_on_a_database_that_cannot_be_reached_says_so_in_one_line(manage):
    done = manage("models", DATABASE_URL="postgres://nobody:pw@127.0.0.1:9/none")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "manage.py: the database cannot be used (connection failed: connection to server at \"127.0.0.1\", port 9 "
        "failed: Connection refused); is it running, reachable and migrated?"
    ], done.stderr


@pytest.mark.parametrize("args", [["evaluate", "--data", "x", "--version", "1"], ["recompile", TINY_NAME, "--version", "1"]])
def test_a_projects_command_refuses_djangos_version_option_instead_of_printing_it_and_exiting_0(manage, args):
    # It printed Django's version and exited 0: nothing was evaluated or recompiled, and it looked like success.
    done = manage(*args)
    assert done.returncode == 2 and "unrecognized arguments: --version 1" in done.stderr, (done.returncode, done.stderr)
