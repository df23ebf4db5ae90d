"""Chromium through Playwright, as this platform's browser tests and screenshots need it.

Playwright cannot download a browser here, so it drives Debian's /usr/bin/chromium with the
flags a closed network and a root user require.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium(profile_dir: Path, timeout_ms: int = 30_000) -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile (`--user-data-dir`)."""
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1920, "height": 1200},
        )
        context.set_default_timeout(timeout_ms)
        try:
            yield context
        finally:
            context.close()


def expand_lineage_groups(page: Page, rounds: int = 10) -> None:
    """Groups in the lineage graph start collapsed: open each so every asset node is drawn."""
    for _ in range(rounds):
        collapsed = page.locator("svg foreignObject.group [aria-label=unfold_more]")
        if collapsed.count() == 0:
            return
        collapsed.first.click()
