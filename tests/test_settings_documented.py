"""The README's Settings table names every environment variable the service reads."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

# Set by the code for its libraries, not settings of the service.
INTERNAL = {"KERAS_BACKEND", "KERAS_HOME", "TF_CPP_MIN_LOG_LEVEL", "PROMETHEUS_MULTIPROC_DIR"}
READERS = re.compile(
    r"""(?:env_\w+|os\.environ\.get|os\.environ\.setdefault|os\.getenv|_count)\(\s*f?["']([A-Z][A-Z0-9_]+)["']"""
    r"""|^\w*_ENV = ["']([A-Z][A-Z0-9_]+)["']""",
    re.M,
)


def variables_read() -> set[str]:
    files = [*(REPO_ROOT / "webapp").rglob("*.py"), *(REPO_ROOT / "recognizer").rglob("*.py"),
             REPO_ROOT / "gunicorn.conf.py", REPO_ROOT / "manage.py"]
    found = set()
    for path in files:
        for a, b in READERS.findall(path.read_text(encoding="utf-8")):
            found.add(a or b)
    return found - INTERNAL


def settings_table() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Settings (environment variables)")
    return text[start:text.index("\n\n", text.index("| variable |", start))]


def test_the_settings_table_names_every_variable_the_service_reads():
    read, table = variables_read(), settings_table()
    assert {"UPLOAD_MAX_BYTES", "WEB_TIMEOUT", "RECOGNIZER_PRECISION", "LOG_LEVEL"} <= read  # the scan finds them
    missing = sorted(name for name in read if f"`{name}`" not in table)
    assert not missing, f"read by the code but not in the README's Settings table: {missing}"
