"""Regenerates README's picture: the platform's global asset lineage after the demo data flowed.

Run by `make screenshot`: starts `dagster dev` on a temporary copy of two demo days, waits until
the sensors and automation have carried them to the features, and photographs the lineage.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import urllib.parse
from pathlib import Path

from browser import CURATED_GRAPH, chromium, expand_all_groups, graph_box, hide_sidebars
from ml_platform.demo import generate
from platform_server import running_platform


def main(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        today = dt.datetime.now(dt.UTC).date()
        generate(
            root / "data",
            days=2,
            events_per_day=200,
            seed=7,
            end_date=today - dt.timedelta(days=1),
            telemetry_hours_per_day=2,
        )
        with running_platform(root, sensor_interval=3, name="screenshot") as platform:
            platform.wait_for(
                lambda: platform.materialized_partitions("user_activity") and platform.idle(),
                600,
                interval=3,
                what="the demo data to reach the features",
            )
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
