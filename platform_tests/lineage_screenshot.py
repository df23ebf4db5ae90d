"""Regenerates README's picture: the platform's global asset lineage after the demo data flowed.

Run by `make screenshot`: runs `make dev` itself on its demo (make_dev.py) in a temporary folder,
waits until the demo has settled (every run ended, every expected partition materialized: what a
user sees after `make dev` has caught up, partitions from the demo's first day), and photographs
the lineage.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import urllib.parse
from pathlib import Path

from browser import CURATED_GRAPH, chromium, expand_all_groups, graph_box, hide_sidebars
from make_dev import MAKE_DEV_DEMO, expected_partitions, running_make_dev, wait_until_settled
from ml_platform.demo.manifest import read_manifest

# Seconds for make dev's demo to settle: minutes on a quiet 2-core machine, more on a busy one.
SETTLE_TIMEOUT = 1500.0


def main(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with running_make_dev(root, name="screenshot", demo=MAKE_DEV_DEMO) as platform:
            expected = expected_partitions(read_manifest(platform.data_dir), dt.datetime.now(dt.UTC))
            wait_until_settled(platform, expected, SETTLE_TIMEOUT)
            with chromium(root / "profile") as context:
                page = context.new_page()
                # Tall enough for the six clean tables stacked in one column at a readable zoom.
                page.set_viewport_size({"width": 1800, "height": 1700})
                selection = " or ".join(f"key:{asset}" for asset in CURATED_GRAPH)
                url = f"{platform.base_url}/asset-groups~{urllib.parse.quote(selection)}/"
                page.goto(url)
                page.wait_for_load_state("networkidle")
                expand_all_groups(page)
                # The graph is zoomed to fit when the page loads, not when groups open (they stay
                # open across loads): load it again so the expanded graph fills the frame.
                page.goto(url)
                page.wait_for_load_state("networkidle")
                hide_sidebars(page)
                page.wait_for_timeout(2000)  # the layout animates
                target.parent.mkdir(parents=True, exist_ok=True)
                # Cropped to the graph (and a margin), so the graph fills the picture.
                page.screenshot(path=target, clip=graph_box(page, margin=24))
    print(f"wrote {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/lineage.png").resolve())
