"""The committed Chinese catalogs translate every user-facing string of the sources: nothing new is left in English."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.conftest import REPO_ROOT

SOURCES = ("recognizer", "webapp", "templates", "static/js")
CATALOGS = REPO_ROOT / "locale" / "zh_Hans" / "LC_MESSAGES"


@pytest.fixture
def extracted(tmp_path, settings, monkeypatch) -> Path:
    """The catalogs makemessages would write today, extracted from a copy of the sources."""
    if shutil.which("xgettext") is None:
        pytest.skip("GNU gettext is missing: apt-get install gettext")
    for source in SOURCES:
        shutil.copytree(REPO_ROOT / source, tmp_path / source, ignore=shutil.ignore_patterns("__pycache__"))
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    (tmp_path / "locale").mkdir()
    monkeypatch.chdir(tmp_path)
    for domain in ("django", "djangojs"):
        call_command("makemessages", locale=["zh_Hans"], domain=domain, verbosity=0)
    return tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES"


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_message_of_the_sources_has_a_chinese_translation(extracted, domain):
    # msgcmp fails for each msgid of the fresh extraction that the committed catalog lacks or leaves untranslated/fuzzy.
    result = subprocess.run(
        ["msgcmp", str(CATALOGS / f"{domain}.po"), str(extracted / f"{domain}.po")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_catalogs_compile_without_errors(tmp_path):
    if shutil.which("msgfmt") is None:
        pytest.skip("GNU gettext is missing: apt-get install gettext")
    for domain in ("django", "djangojs"):
        result = subprocess.run(
            ["msgfmt", "--check", "-o", str(tmp_path / f"{domain}.mo"), str(CATALOGS / f"{domain}.po")],
            capture_output=True, text=True,
        )
        assert result.returncode == 0, result.stderr
