"""Pages in headless Chromium: Debian's /usr/bin/chromium driven by Playwright, never a
downloaded browser. The `chromium_path` and `browser` fixtures (tests/conftest.py) start it
once per module; `watched_page` opens a page that records script errors and every request
that leaves the page's origin, and fails the test on either.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, Page, Request

CHROMIUM = Path("/usr/bin/chromium")
# Chromium as this machine runs it: no sandbox (root), no GPU, and none of its background
# traffic to Google (the network is closed). Playwright gives every launch a fresh profile.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 90_000  # bounds a failing test only


def assert_self_contained(texts: Sequence[str]) -> None:
    """A page, its stylesheet and its script (in that order) load nothing from elsewhere,
    and the script writes no markup from strings."""
    for text in texts:
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+", text)) - {"http://www.w3.org"}
        assert not urls, f"external references: {urls}"
        assert "@import" not in text and "@font-face" not in text
    script = texts[2]
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "document.write" not in script and "eval(" not in script


@dataclass
class Screen:
    page: Page
    errors: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)


@asynccontextmanager
async def watched_page(browser: Browser, origin: str) -> AsyncIterator[Screen]:
    """A 1080p page that records script errors and any request not to `origin`."""
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    found = Screen(await context.new_page())

    def request(req: Request) -> None:
        if not req.url.startswith((origin + "/", "data:")):
            found.elsewhere.append(req.url)

    found.page.on("pageerror", lambda exc: found.errors.append(str(exc)))
    found.page.on("request", request)
    try:
        yield found
    finally:
        await context.close()
    assert not found.errors, f"script errors on the page: {found.errors}"
    assert not found.elsewhere, f"the page reached beyond the API: {found.elsewhere}"
