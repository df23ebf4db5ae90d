"""Deterministic daily snapshots of the users and products dimensions, with counted changes.

Every landing date gets a full export (`landing/<source>/<YYYY-MM-DD>/<source>.csv`). Between
consecutive snapshots a known number of rows change, appear or disappear, so the manifest can
state exactly how many SCD type 2 versions the platform must build from the files.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

from ml_platform.demo.files import count, write_csv

# The drip and every generated event use only the first MIN_USERS ids, so these users are
# never removed from (or re-added to) any snapshot.
MIN_USERS = 50
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "JP", "BR", "CA", "AU", "ES")
PLAN_WEIGHTS = {"free": 70, "plus": 20, "pro": 10}
USER_COLUMNS = ["user_id", "signup_date", "country", "plan"]
USER_PLAN_CHANGE_RATE = 0.03
USER_COUNTRY_CHANGE_RATE = 0.01
USER_REMOVE_RATE = 0.01
USER_ADDED_PER_DAY = (1, 3)

N_PRODUCTS = 250
CATEGORIES = ("electronics", "home", "fashion", "sports", "books", "toys")
PRODUCT_COLUMNS = ["product_id", "category", "price", "active"]
PRICE_CHANGE_RATE = 0.02
ACTIVE_FLIP_RATE = 0.005
INITIAL_ACTIVE_RATE = 0.9
MIN_PRICE, MAX_PRICE = 1.0, 500.0


def user_id(i: int) -> str:
    return f"U{i:05d}"


def product_id(i: int) -> str:
    return f"P{i:04d}"


def write_user_snapshots(
    data_dir: Path, seed: int, landing_dates: list[date], n_initial: int
) -> tuple[list[str], dict]:
    """Write one users snapshot per landing date; return the stable user ids and the manifest part.

    Stable users are in the first snapshot and never removed, so they are in every snapshot:
    events may reference them whatever their landing date.
    """
    rng = random.Random(f"users:{seed}")
    first = landing_dates[0]
    n_initial = max(n_initial, MIN_USERS)
    # user_id -> (signup_date, country, plan); new ids are larger, so insertion order is id order.
    users: dict[str, tuple[str, str, str]] = {}
    for i in range(1, n_initial + 1):
        signup = first - timedelta(days=rng.randint(1, 400))
        users[user_id(i)] = (signup.isoformat(), rng.choice(COUNTRIES), _pick_plan(rng))
    initial_ids = list(users)
    protected = set(initial_ids[:MIN_USERS])
    removed: set[str] = set()
    versions = len(users)
    stats = {"plan_changes": 0, "country_changes": 0, "added": 0, "removed": 0}
    next_id = n_initial + 1

    for day_index, landing in enumerate(landing_dates):
        if day_index > 0:
            removable = [u for u in users if u not in protected]
            for u in rng.sample(removable, min(len(removable), count(len(users), USER_REMOVE_RATE))):
                del users[u]
                removed.add(u)
                stats["removed"] += 1
            present = list(users)
            changed = set()
            for u in rng.sample(present, count(len(present), USER_PLAN_CHANGE_RATE)):
                signup, country, plan = users[u]
                users[u] = (signup, country, _next_plan(rng, plan))
                changed.add(u)
                stats["plan_changes"] += 1
            for u in rng.sample(present, count(len(present), USER_COUNTRY_CHANGE_RATE)):
                signup, country, plan = users[u]
                users[u] = (signup, rng.choice([c for c in COUNTRIES if c != country]), plan)
                changed.add(u)
                stats["country_changes"] += 1
            # A user changed twice on one day still gets one new version.
            versions += len(changed)
            for _ in range(rng.randint(*USER_ADDED_PER_DAY)):
                users[user_id(next_id)] = (landing.isoformat(), rng.choice(COUNTRIES), _pick_plan(rng))
                next_id += 1
                versions += 1
                stats["added"] += 1
        path = data_dir / "landing" / "users" / landing.isoformat() / "users.csv"
        write_csv(path, USER_COLUMNS, [[u, *attrs] for u, attrs in users.items()])

    stable = [u for u in initial_ids if u not in removed]
    section = {
        "snapshots": len(landing_dates),
        "initial": n_initial,
        **stats,
        "expected_versions": versions,
        "current": len(users),
    }
    return stable, section


def write_product_snapshots(data_dir: Path, seed: int, landing_dates: list[date]) -> dict:
    """Write one products snapshot per landing date (all N_PRODUCTS every day); return the manifest part."""
    rng = random.Random(f"products:{seed}")
    # product_id -> [category, price, active]
    products: dict[str, list] = {}
    for i in range(1, N_PRODUCTS + 1):
        price = round(min(MAX_PRICE, max(MIN_PRICE, rng.lognormvariate(3.5, 0.9))), 2)
        products[product_id(i)] = [rng.choice(CATEGORIES), price, rng.random() < INITIAL_ACTIVE_RATE]
    versions = len(products)
    stats = {"price_changes": 0, "active_changes": 0}

    for day_index, landing in enumerate(landing_dates):
        if day_index > 0:
            ids = list(products)
            changed = set()
            for p in rng.sample(ids, count(len(ids), PRICE_CHANGE_RATE)):
                products[p][1] = _new_price(rng, products[p][1])
                changed.add(p)
                stats["price_changes"] += 1
            for p in rng.sample(ids, count(len(ids), ACTIVE_FLIP_RATE)):
                products[p][2] = not products[p][2]
                changed.add(p)
                stats["active_changes"] += 1
            versions += len(changed)
        path = data_dir / "landing" / "products" / landing.isoformat() / "products.csv"
        write_csv(
            path,
            PRODUCT_COLUMNS,
            [
                [p, category, f"{price:.2f}", "true" if active else "false"]
                for p, (category, price, active) in products.items()
            ],
        )

    return {
        "snapshots": len(landing_dates),
        "initial": N_PRODUCTS,
        **stats,
        "expected_versions": versions,
        "current": len(products),
    }


def _pick_plan(rng: random.Random) -> str:
    return rng.choices(list(PLAN_WEIGHTS), weights=list(PLAN_WEIGHTS.values()))[0]


def _next_plan(rng: random.Random, plan: str) -> str:
    """One step up or down the ladder free -> plus -> pro; upgrades are a bit more common."""
    if plan == "free":
        return "plus"
    if plan == "pro":
        return "plus"
    return "pro" if rng.random() < 0.6 else "free"


def _new_price(rng: random.Random, price: float) -> float:
    """A different price, within [MIN_PRICE, MAX_PRICE] at cent precision."""
    new = round(min(MAX_PRICE, max(MIN_PRICE, price * rng.uniform(0.8, 1.25))), 2)
    if new == price:
        new = round(price - 0.01, 2) if price > MIN_PRICE else round(price + 0.01, 2)
    return new
