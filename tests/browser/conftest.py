"""Fixtures for the real-browser tests: a JupyterLab server and Debian's chromium on loopback only.

Without chromium (or playwright) the tests skip with the reason, except under CI (env CI set), where that fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from browser.chromium import Guard, in_ci, launch, missing_chromium
from browser.lab_server import LabServer

ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots, gitignored


@pytest.fixture(scope="session")
def chromium_ready() -> None:
    reason = missing_chromium()
    if reason is not None:
        if in_ci():
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def lab(chromium_ready, tmp_path_factory):
    server = LabServer(tmp_path_factory.mktemp("lab-root"), tmp_path_factory.mktemp("lab-home"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium_ready):
    """Chromium for one test module: Playwright's sync API holds an event loop on the main thread while it runs,
    which the async tests after the browser modules need free."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def guarded(browser):
    """A fresh browser context with its Guard, and a page in it."""
    context = browser.new_context(viewport={"width": 1400, "height": 1900})
    guard = Guard(context)
    page = context.new_page()
    guard.watch(page)
    try:
        yield page, guard
    finally:
        context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
