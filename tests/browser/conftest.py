"""Browser tests: Playwright driving Debian's Chromium (``/usr/bin/chromium``), headless.

Playwright's Python wheel brings its driver; its own browser downloads are never used (no
``playwright install``): the browser is the system Chromium, installed by ``.ci/run`` (Debian's
``chromium`` package). Without it, or without the ``playwright`` package, these tests skip with
the reason (and under ``QUANT_ARENA_CI=1`` a skip is a failure: tests/_ci_policy.py).
``QUANT_ARENA_CHROMIUM`` points at another Chromium binary.

Fixtures:

- ``browser_context``: ONE headless Chromium per test module (a fresh profile in a temporary
  folder, 1400 x 900 viewport, no background networking, requests to anything but 127.0.0.1 /
  localhost / files refused), closed after the module;
- ``page``: a new tab in it per test, closed after the test (default timeout 20 s);
- ``screenshot``: ``screenshot(page, "name.png")`` saves a PNG (< 500 KB, checked) into the test's
  temporary folder, or into ``docs/`` when ``QUANT_ARENA_SCREENSHOTS=docs`` (how the committed
  screenshots are refreshed: ``QUANT_ARENA_SCREENSHOTS=docs pytest tests/browser``).

Serving what the page shows: ``tests/browser/_serve.py`` (``serve_directory``, ``running_server``,
``wait_for_url``, ``free_port``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("QUANT_ARENA_CHROMIUM", "/usr/bin/chromium")
#: Chromium quiet on a closed network: no component updates, sync, QUIC or first-run calls.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1400, "height": 900}
DOCS = Path(__file__).resolve().parents[2] / "docs"
MAX_SCREENSHOT_BYTES = 500_000
TIMEOUT_MS = 20_000
_EXTERNAL = re.compile(r"^(https?|wss?)://(?!(127\.0\.0\.1|localhost)[:/])")


def chromium_or_skip() -> str:
    """The Chromium binary, or skip the test saying what is missing."""
    path = shutil.which(CHROMIUM) or (
        CHROMIUM if os.access(CHROMIUM, os.X_OK) else None
    )
    if path is None:
        pytest.skip(
            f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it; "
            "or set QUANT_ARENA_CHROMIUM)"
        )
    return path


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A headless Chromium (persistent context on a fresh profile) shared by the module's tests."""
    executable = chromium_or_skip()
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="the playwright package is not installed (pip install -e '.[test]')",
    )
    profile: Path = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
            timeout=TIMEOUT_MS * 2,
        )
        context.set_default_timeout(TIMEOUT_MS)
        # the closed network: anything not served from this machine is refused at once (kedro-viz
        # links web fonts), so a page never waits for the outside world
        context.route(_EXTERNAL, lambda route: route.abort())
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context) -> Iterator[object]:
    """A fresh tab (1400 x 900) in the module's Chromium."""
    tab = browser_context.new_page()
    try:
        yield tab
    finally:
        tab.close()


@pytest.fixture
def screenshot(tmp_path: Path):
    """``screenshot(page, name, **kwargs)``: save a PNG of ``page`` (Playwright's ``page.screenshot``
    keyword arguments) to ``docs/`` under ``QUANT_ARENA_SCREENSHOTS=docs``, else to the test's
    temporary folder; checks it is under 500 KB and returns its path."""

    def take(tab, name: str, **kwargs) -> Path:
        folder = (
            DOCS if os.environ.get("QUANT_ARENA_SCREENSHOTS") == "docs" else tmp_path
        )
        path = folder / name
        tab.screenshot(path=str(path), **kwargs)
        size = path.stat().st_size
        assert size < MAX_SCREENSHOT_BYTES, (
            f"{path} is {size} bytes (keep screenshots under 500 KB)"
        )
        return path

    return take
