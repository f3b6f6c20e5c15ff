"""Fixtures that drive Debian's Chromium with Playwright against the live server.

``browser``: one headless Chromium for the whole run, started by the first test that asks for
it and closed right after the last one (launching one per module cost seconds each).
``page``: a fresh browser context per test, logged in as a staff user. Screenshots go to
``SHOTS``. Without Chromium the browser tests skip and say why.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(settings.VAR_DIR) / "screenshots"


class _Chromium:
    """The run's one Chromium. Playwright's sync API keeps an event loop running in this thread
    while it is open, so Django's async-unsafe guard is lifted for that time only."""

    def __init__(self) -> None:
        self._playwright_cm = None
        self._browser = None
        self._previous_env: str | None = None

    def get(self):
        if self._browser is None:
            self._previous_env = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
            from playwright.sync_api import sync_playwright

            self._playwright_cm = sync_playwright()
            playwright = self._playwright_cm.__enter__()
            self._browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                ],
            )
        return self._browser

    def close(self) -> None:
        if self._browser is None:
            return
        try:
            self._browser.close()
        finally:
            self._browser = None
            self._playwright_cm.__exit__(None, None, None)
            self._playwright_cm = None
            if self._previous_env is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = self._previous_env


_chromium = _Chromium()
_last_browser_test: list[str] = []  # node id of the last test (in run order) using the browser


def pytest_collection_finish(session: pytest.Session) -> None:
    users = [
        item.nodeid for item in session.items if "browser" in getattr(item, "fixturenames", ())
    ]
    _last_browser_test[:] = users[-1:]


@pytest.hookimpl(trylast=True)  # after the test's own fixtures (its page) are torn down
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if item.nodeid in _last_browser_test:
        _chromium.close()


def switch_language(page, language: str) -> None:
    """Choose ``language`` in the header and wait until the page it sends us back to has loaded:
    a ``goto`` started earlier could overtake the form's answer and its language cookie."""
    if language == "en":
        return
    page.select_option("#language", language)
    with page.expect_navigation():
        page.click("header .lang button")


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):  # `make test` installs it; elsewhere say why we skip
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    yield _chromium.get()
    _chromium.close()


@pytest.fixture
def page(browser, live_server) -> Iterator:
    get_user_model().objects.create_user(
        username="ops", password="ops-password", is_staff=True, is_superuser=True
    )
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/batch-import/runs")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "ops-password")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/batch-import/runs")
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield page
    context.close()
