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
    """Groups in the lineage graph start collapsed: open each so every asset node is drawn. The graph
    is drawn first (on a loaded machine the page shows its title well before the graph: counting
    collapsed groups then found none, and nothing was opened)."""
    page.locator("svg foreignObject").first.wait_for(state="attached", timeout=60_000)
    for _ in range(rounds):
        collapsed = page.locator("svg foreignObject.group [aria-label=unfold_more]")
        if collapsed.count() == 0:
            return
        collapsed.first.click()


# The curated half of the graph, from the clean tables through the feature views and labels to
# the training sets and models: where ML users work (the raw layer mirrors clean one to one).
CURATED_GRAPH = (
    "clean_events",
    "clean_users",
    "clean_transactions",
    "clean_telemetry",
    "clean_maintenance",
    "clean_weather",
    "user_activity",
    "user_transactions",
    "device_health",
    "weather",
    "churn_label",
    "device_failure_label",
    "churn_training_set",
    "device_failure_training_set",
    "churn_model",
    "churn_leaky_model",
    "device_failure_model",
    "device_failure_leaky_model",
)


def expand_all_groups(page: Page) -> None:
    """Open every group of the lineage graph through the graph's settings menu (the gear beside
    the zoom controls). The menu offers "Collapse all groups" as soon as one group is open, so
    that comes first when it is there."""
    if _graph_menu(page, "Collapse all groups"):
        _graph_menu(page, "Expand all groups")
    else:
        # The menu was open on "Expand all groups".
        page.get_by_role("menuitem").filter(has_text="Expand all groups").first.click()
        page.wait_for_timeout(1000)


def _graph_menu(page: Page, item: str) -> bool:
    """Open the graph's settings menu and pick `item` if it offers it (else leave the menu open)."""
    for _ in range(3):  # a click right after another menu choice can close the menu instead
        page.locator("[aria-label=settings]").last.click()
        page.wait_for_timeout(400)
        if page.get_by_role("menuitem").count():
            break
    found = page.get_by_role("menuitem").filter(has_text=item)
    if not found.count():
        return False
    found.first.click()
    page.wait_for_timeout(1000)
    return True


def hide_sidebars(page: Page) -> None:
    """Hide Dagster's navigation and the lineage page's group list, so the graph gets the width."""
    page.get_by_text("Hide navigation", exact=True).click()
    page.locator("button:has([aria-label=panel_show_right])").first.click()


def graph_box(page: Page, margin: int = 0) -> dict:
    """The lineage graph's drawn extent on the page (every node and group box), plus `margin`."""
    box = page.evaluate(
        """() => {
          const rects = Array.from(document.querySelectorAll('svg foreignObject')).map(e => e.getBoundingClientRect());
          return {x: Math.min(...rects.map(r => r.left)), y: Math.min(...rects.map(r => r.top)),
                  right: Math.max(...rects.map(r => r.right)), bottom: Math.max(...rects.map(r => r.bottom))};
        }"""
    )
    x, y = max(box["x"] - margin, 0), max(box["y"] - margin, 0)
    return {"x": x, "y": y, "width": box["right"] + margin - x, "height": box["bottom"] + margin - y}
