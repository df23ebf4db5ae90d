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

from browser import chromium, expand_lineage_groups
from ml_platform.demo import generate
from platform_server import running_platform

PICTURED = ("raw_events", "clean_events", "raw_users", "clean_users", "user_daily_features")


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
                lambda: platform.materialized_partitions("user_daily_features") and platform.idle(),
                600,
                interval=3,
                what="the demo data to reach the features",
            )
            with chromium(root / "profile") as context:
                page = context.new_page()
                # The clickstream pipeline and its users dimension: the whole graph of every source
                # is too wide to read in one picture.
                selection = " or ".join(f"key:{asset}" for asset in PICTURED)
                page.goto(f"{platform.base_url}/asset-groups~{urllib.parse.quote(selection)}/")
                page.wait_for_load_state("networkidle")
                expand_lineage_groups(page)
                page.wait_for_timeout(1500)  # the layout animates after expanding
                target.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/lineage.png").resolve())
