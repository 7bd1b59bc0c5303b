"""The translation catalogs compile without GNU gettext, into the catalogs msgfmt would make."""

from __future__ import annotations

import gettext
import shutil
import subprocess

import pytest
from babel.messages.pofile import read_po

from scripts.compile_messages import compile_catalogs
from tests.conftest import REPO_ROOT


@pytest.fixture
def locale(tmp_path):
    shutil.copytree(REPO_ROOT / "locale", tmp_path / "locale", ignore=shutil.ignore_patterns("*.mo"))
    return tmp_path / "locale"


def test_every_translated_entry_is_in_the_compiled_catalog(locale):
    written = compile_catalogs(locale)
    assert {p.name for p in written} == {"django.mo", "djangojs.mo"}
    for mo in written:
        with open(mo.with_suffix(".po"), "rb") as source:
            catalog = read_po(source)
        compiled = gettext.GNUTranslations(open(mo, "rb"))
        singles = [m for m in catalog if m.id and m.string and not m.fuzzy and isinstance(m.id, str) and not m.context]
        assert singles and all(compiled.gettext(m.id) == m.string for m in singles)


def test_an_up_to_date_catalog_is_not_compiled_again(locale):
    assert compile_catalogs(locale)
    assert compile_catalogs(locale) == []


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext is not installed")
def test_the_catalogs_are_those_msgfmt_makes(locale, tmp_path):
    for mo in compile_catalogs(locale):
        gnu = tmp_path / f"{mo.stem}.gnu.mo"
        subprocess.run(["msgfmt", "-o", str(gnu), str(mo.with_suffix(".po"))], check=True)
        theirs, ours = (gettext.GNUTranslations(open(path, "rb")) for path in (gnu, mo))
        assert theirs.plural(2) == ours.plural(2)
        theirs._catalog.pop(""), ours._catalog.pop("")  # the header: each tool writes its own name and dates
        assert theirs._catalog == ours._catalog
