"""Contender 3, the seeds' way: the same pipeline in pandas, whole tables in memory.

    python benchmarks/pipeline_pandas.py DATA_DIR OUT.parquet FIRST_DAY LAST_DAY

The same reading (values as text, null markers as NULL, `device` as device_type's alias), UTC
conversion, ownership, contract rules, dedup (latest file's copy of an event id per day), users
history and user-day aggregation as pipeline_script.py, written the way a notebook would: read
every file into a DataFrame, concatenate, filter with boolean masks, group by. This is the
deliberate pandas contender: it holds every table in memory on purpose.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

NULL_MARKERS = [""]  # the events source declares no other null marker
EVENT_COLUMNS = ["event_id", "user_id", "event_type", "event_time", "product_id", "amount", "device_type", "session_id"]
EVENT_TYPES = ["page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "purchase"]
DEVICES = ["mobile", "desktop", "tablet"]


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    elif path.suffix == ".jsonl":
        df = pd.read_json(path, lines=True, dtype=False)
    else:
        df = pd.read_parquet(path)
    if "device" in df.columns:
        df = df.rename(columns={"device": "device_type"})
    # Values as text; JSON null, missing columns and the null markers all become missing.
    df = df.reindex(columns=EVENT_COLUMNS)
    df = df.where(df.notna() & ~df.isin(NULL_MARKERS))
    df["source_file"] = str(path)
    df["landing_date"] = pd.Timestamp(path.parent.name)
    return df


def main(data_dir: Path, out: Path, first: str, last: str) -> None:
    started = time.perf_counter()
    files = sorted(p for p in (data_dir / "landing" / "events").glob("*/*") if not p.name.startswith((".", "_")))
    raw = pd.concat([_read(p) for p in files], ignore_index=True)
    ts = pd.to_datetime(raw["event_time"], utc=True, format="ISO8601", errors="coerce").dt.tz_localize(None)
    amount = pd.to_numeric(raw["amount"], errors="coerce")
    event_date = ts.dt.normalize()
    landing = raw["landing_date"]
    in_tolerance = (event_date >= landing - pd.Timedelta(days=3)) & (event_date <= landing + pd.Timedelta(days=1))
    day = event_date.where(ts.notna() & in_tolerance, landing)
    valid = (
        raw["event_id"].notna()
        & ~raw["event_id"].fillna("").str.contains(r"[\x00-\x1f\x7f]", regex=True)
        & raw["user_id"].notna()
        & ts.notna()
        & in_tolerance
        & raw["event_type"].isin(EVENT_TYPES)
        & (raw["amount"].isna() | amount.between(0.0, 10000.0))
        & (raw["device_type"].isna() | raw["device_type"].isin(DEVICES))
    )
    window = (day >= pd.Timestamp(first)) & (day <= pd.Timestamp(last))
    clean = raw[valid & window].assign(event_time=ts, event_date=event_date, amount=amount, day=day)
    clean = clean.sort_values(["source_file"]).drop_duplicates(["day", "event_id"], keep="last")
    del raw

    features = _features(clean, _users_history(data_dir))
    features.to_parquet(out, index=False)
    print(f"pandas: {time.perf_counter() - started:.2f} s, {len(clean):,} clean events", file=sys.stderr)


def _users_history(data_dir: Path) -> pd.DataFrame:
    frames = []
    for path in sorted((data_dir / "landing" / "users").glob("*/*.csv")):
        df = pd.read_csv(path, dtype=str, keep_default_na=False).replace(NULL_MARKERS, None)
        df["day"] = pd.Timestamp(path.parent.name)
        frames.append(df)
    snap = pd.concat(frames, ignore_index=True)
    days = [pd.Timestamp(d) for d in sorted(snap["day"].unique())]
    snap["idx"] = snap["day"].rank(method="dense").astype("int64") - 1
    snap["signup_date"] = pd.to_datetime(snap["signup_date"], format="%Y-%m-%d", errors="coerce")
    ok = (
        snap["user_id"].notna()
        & snap["signup_date"].notna()
        & (snap["country"].isna() | snap["country"].fillna("").str.fullmatch(r"[A-Z]{2}"))
        & (snap["plan"].isna() | snap["plan"].isin(["free", "plus", "pro"]))
    )
    snap = snap[ok].drop_duplicates(["day", "user_id"], keep="last").sort_values(["user_id", "idx"])
    attrs = snap[["signup_date", "country", "plan"]].astype(str).agg("|".join, axis=1)
    prev_same = (snap["user_id"] == snap["user_id"].shift()) & (snap["idx"] - snap["idx"].shift() == 1)
    snap["version"] = (~(prev_same & (attrs == attrs.shift()))).cumsum()
    spans = snap.groupby("version").agg(
        user_id=("user_id", "first"),
        signup_date=("signup_date", "first"),
        valid_from=("day", "min"),
        last=("idx", "max"),
    )
    ends = dict(enumerate(days[1:]))
    spans["valid_to"] = spans["last"].map(ends)
    return spans.drop(columns="last")


def _features(clean: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    clean = clean.sort_values("event_id")
    purchase = clean["event_type"] == "purchase"
    clean = clean.assign(
        purchase_amount=clean["amount"].where(purchase),
        is_purchase=purchase,
        is_cart=clean["event_type"] == "add_to_cart",
    )
    g = clean.groupby(["user_id", "event_date"], sort=False)
    daily = g.agg(
        event_count=("event_id", "size"),
        transaction_count=("is_purchase", "sum"),
        unique_products=("product_id", "nunique"),
        daily_spend=("purchase_amount", "sum"),
        avg_transaction_value=("purchase_amount", "mean"),
        max_transaction_value=("purchase_amount", "max"),
        cart_adds=("is_cart", "sum"),
    ).reset_index()
    devices = (
        clean[clean["device_type"].notna()]
        .groupby(["user_id", "event_date", "device_type"])
        .size()
        .rename("uses")
        .reset_index()
        .sort_values(["user_id", "event_date", "uses", "device_type"], ascending=[True, True, False, True])
        .drop_duplicates(["user_id", "event_date"])
        .rename(columns={"device_type": "primary_device"})
        .drop(columns="uses")
    )
    daily = daily.merge(devices, on=["user_id", "event_date"], how="left")
    joined = daily.merge(users, on="user_id", how="left")
    valid_to = joined["valid_to"].fillna(pd.Timestamp("2262-01-01"))
    hit = (joined["event_date"] >= joined["valid_from"]) & (joined["event_date"] < valid_to)
    joined["days_since_signup"] = np.where(hit, (joined["event_date"] - joined["signup_date"]).dt.days, np.nan)
    # One version of a user holds a day at most: keep that one, or one row without a match.
    joined = joined.sort_values("days_since_signup", na_position="last").drop_duplicates(["user_id", "event_date"])
    joined["days_since_signup"] = joined["days_since_signup"].astype("Int64")
    for c in ("transaction_count", "cart_adds", "event_count", "unique_products"):
        joined[c] = joined[c].astype("int64")
    joined["feature_date"] = joined["event_date"].dt.date
    return joined[
        [
            "user_id",
            "feature_date",
            "event_count",
            "transaction_count",
            "unique_products",
            "daily_spend",
            "avg_transaction_value",
            "max_transaction_value",
            "cart_adds",
            "primary_device",
            "days_since_signup",
        ]
    ]


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4])
