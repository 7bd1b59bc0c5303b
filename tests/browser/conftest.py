"""A real browser (Debian's chromium, driven by Playwright) against pytest-django's live server."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, TINY_NAME

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
ARTIFACTS = REPO_ROOT / "test-artifacts"
WAIT_MS = 20_000  # for an element or an answer: each test's first answer loads its model in the live server, which
# on a busy 2-core machine can take longer than Playwright's 5 s default for assertions


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`."
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, and Django refuses
    # database calls next to a running loop; the fixtures' ORM calls are plain synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def live_tiny(transactional_db, settings, tiny_artifact):
    """The tiny model active for the live server, which runs in another thread and so needs committed rows."""
    from webapp import runtime, services

    runtime.reset()
    settings.DEFAULT_MODEL_NAME = TINY_NAME
    version = services.model_version_register(artifact_path=tiny_artifact, activate=True)
    yield version
    runtime.reset()


@contextmanager
def page_opener(browser, url: str):
    """open_(**context_options) -> a new page showing `url`; every context is closed on exit."""
    contexts = []

    def open_(**options):
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        context = browser.new_context(**{**DESKTOP, **options})
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        pending: dict[int, str] = {}  # requests of the first load not answered yet, to name them if it times out
        page.on("request", lambda request: pending.__setitem__(id(request), request.url))
        page.on("requestfinished", lambda request: pending.pop(id(request), None))
        page.on("requestfailed", lambda request: pending.pop(id(request), None))
        try:  # a new context starts a renderer, slow on a busy 2-core machine; `pending` names what a stuck load waits for
            page.goto(url, timeout=60_000)
        except PlaywrightTimeout as exc:
            pytest.fail(f"{url} did not load ({exc.message.splitlines()[0]}); unanswered: {sorted(pending.values()) or 'none'}")
        return page

    try:
        yield open_
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def open_page(browser, live_server, live_tiny):
    """open_page(**context_options) -> a page showing the recognizer, closed after the test."""
    with page_opener(browser, live_server.url + "/") as open_:
        yield open_


@pytest.fixture
def page(open_page):
    return open_page()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
