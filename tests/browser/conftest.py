"""Real-browser fixtures: Playwright's async API driving the system's chromium (Debian's `chromium` package).

Playwright never downloads a browser here: chromium is launched by its executable path, headless, with the flags
a root user in a container needs. It is launched once per session (`browser`); each test gets a fresh
`browser_context` and `page`. Without chromium the tests are skipped with the reason, unless
HANDOFF_REQUIRE_BROWSER=1 (CI), which makes them fail instead.

Every async test in this folder runs on pytest-asyncio's session event loop (see `pytest_collection_modifyitems`),
the loop the session-wide browser lives on. Async fixtures such a test uses must run on that loop too: declare
them with `@pytest_asyncio.fixture(loop_scope="session")` (any `scope`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

REQUIRE_BROWSER_ENV = "HANDOFF_REQUIRE_BROWSER"
CHROMIUM_PATH_ENV = "HANDOFF_CHROMIUM_PATH"  # an explicit chromium binary, instead of looking on PATH

# Headless as root in a container: no user namespaces for the sandbox, and /dev/shm is often tiny.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu")
DEFAULT_TIMEOUT_MS = 10_000  # Playwright's own default is 30 s; a loopback page that needs more is a failure

HERE = Path(__file__).resolve().parent


def find_chromium() -> Path | None:
    """The chromium binary: $HANDOFF_CHROMIUM_PATH, /usr/bin/chromium, or chromium / chromium-browser on PATH."""
    explicit = os.environ.get(CHROMIUM_PATH_ENV)
    if explicit:
        return Path(explicit)
    candidates = ["/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this folder's async tests on the session event loop, where the session-wide browser lives."""
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if item.path.is_relative_to(HERE) and pytest_asyncio.is_async_test(item):
            item.add_marker(session_loop, append=False)


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    """Chromium's executable; skips (or fails, with HANDOFF_REQUIRE_BROWSER=1) when this machine has none."""
    path = find_chromium()
    if path is None or not os.access(path, os.X_OK):
        reason = (
            f"no chromium here ({path or '/usr/bin/chromium, chromium, chromium-browser'}): "
            "install Debian's `chromium` (`bash scripts/bootstrap.sh test` does) or set HANDOFF_CHROMIUM_PATH"
        )
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{REQUIRE_BROWSER_ENV}=1 and {reason}")
        pytest.skip(reason)
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium_executable: Path) -> AsyncIterator[Browser]:
    """Headless chromium, launched once per session through Playwright (never a Playwright-downloaded browser)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh context for each test: its own cookies, storage and cache; 10 s default timeouts."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser_context: BrowserContext) -> Page:
    """A fresh page in the test's own context (closed with the context)."""
    return await browser_context.new_page()
