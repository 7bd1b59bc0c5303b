"""Every error code the API can answer is in the README's table of codes, with the status it is answered with."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT


def readme_codes() -> set[tuple[str, str]]:
    """(status, code) pairs from the README's table of error codes."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| status | `code` | when |"):]
    table = table[:table.index("\n\n")]
    pairs = set()
    for status, codes in re.findall(r"^\| (\w+) \| ([^|]+) \|", table, flags=re.M):
        pairs |= {(status, code) for code in re.findall(r"`(\w+)`", codes)}
    return pairs


def raised_codes() -> set[tuple[str, str]]:
    """(status, code) pairs the web service's code answers with, read from its source and its image errors."""
    import webapp.admission  # noqa: F401  (defines image errors of its own)
    import webapp.parsing  # noqa: F401
    from recognizer import errors as core
    from webapp.errors import to_api_error

    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO_ROOT / "webapp").glob("*.py"))
    found = set(re.findall(r'(?:ApiError|error_response)\(\s*(\d{3}),\s*"(\w+)"', source))
    found |= set(re.findall(r'status, code = (\d{3}), "(\w+)"', source))

    def image_errors(kind):
        for sub in kind.__subclasses__():
            yield sub
            yield from image_errors(sub)

    for kind in {core.ImageError, *image_errors(core.ImageError)}:
        error = to_api_error(kind("x"))
        found.add((str(error.status), error.code))
    return found


def test_every_error_code_the_api_answers_is_in_the_readme_with_its_status():
    documented = readme_codes()
    assert len(documented) > 30
    missing = {(status, code) for status, code in raised_codes() if (status, code) not in documented}
    assert not missing, f"not in the README's table of error codes: {sorted(missing)}"
