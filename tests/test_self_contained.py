"""Nothing the project runs reaches outside the repository: no code, test, benchmark or build file names a path
beside the clone, such as the development datasets, and no test process opens or lists one (tests/conftest.py refuses
it while the tests run)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SKIP = {".git", ".venv", "var", "models", "staticfiles", "test-artifacts", "node_modules", "__pycache__"}
# A folder named shared or datasets as a path component (a parent's shared, / "shared", "shared" /, /datasets/), or the
# machine's work folder; a string that merely says "datasets" (a related_name) is no path.
FOLDER = r"(shared|datasets)"
OUTSIDE = re.compile(
    rf"""\.\./{FOLDER}|/\s*["']{FOLDER}["']|["']{FOLDER}["']\s*/|/{FOLDER}/|/work/"""
)


def checked_files() -> list[Path]:
    """Code, tests, benchmarks, scripts and build files (the README and other documents may name such folders)."""
    found = []
    for path in REPO_ROOT.rglob("*"):
        relative = path.relative_to(REPO_ROOT)
        if SKIP & set(relative.parts) or not path.is_file() or path == Path(__file__).resolve():
            continue
        if path.suffix in {".py", ".sh", ".cfg", ".ini", ".toml", ".yml", ".yaml"} or path.name in {
            "Makefile", "Dockerfile", "run", ".dockerignore"
        }:
            found.append(path)
    return found


def test_no_code_test_benchmark_or_build_file_reaches_beside_the_repository():
    hits = [
        f"{path.relative_to(REPO_ROOT)}:{n}: {line.strip()}"
        for path in checked_files()
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "\n".join(hits)


def test_the_check_covers_the_places_such_a_path_used_to_live():
    names = {p.relative_to(REPO_ROOT).as_posix() for p in checked_files()}
    assert {"Makefile", ".ci/run", "tests/conftest.py", "bench/domain_accuracy.py", "recognizer/optimized.py"} <= names
    beside = "shared"  # spelled apart, so that this file does not itself name the folder beside the clone
    assert OUTSIDE.search(f'DATA = REPO_ROOT.parent / "{beside}" / "datasets" / "wildlife-dev"')
    assert OUTSIDE.search('Path(__file__).resolve().parent.parent.parent / "shared"')
    assert not OUTSIDE.search('"""Settings shared by every environment."""')
    assert OUTSIDE.search(f"python bench/domain_accuracy.py --data ../{beside}/datasets/wildlife-dev")
    assert not OUTSIDE.search('feedback = models.ManyToManyField(Feedback, related_name="datasets")')


def test_a_test_that_opens_or_lists_the_development_data_beside_the_repository_fails():
    beside = REPO_ROOT.parent.joinpath("shared")  # where the development photos are on the machines that have them
    with pytest.raises(PermissionError, match="development data"):
        open(beside / "datasets" / "wildlife-dev" / "README.md", "rb")
    with pytest.raises(PermissionError, match="development data"):
        os.listdir(beside)
    with pytest.raises(PermissionError, match="development data"):
        os.scandir(REPO_ROOT / ".." / beside.name / "datasets")
    assert (REPO_ROOT / "README.md").read_text(encoding="utf-8")  # the clone itself stays readable
