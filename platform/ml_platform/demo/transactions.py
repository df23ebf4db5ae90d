"""The demo's payments: deterministic rows of the `public.transactions` table the PostgreSQL source reads.

`make dev` loads them into a local PostgreSQL server (`ml_platform.demo.payments_db`) for the demo's
landing days, so `raw_transactions`, `clean_transactions` and the `user_transactions` view fill
like the file sources do. The same seed and days always give the same rows, and `expected` states
what the platform must make of them:

- every row is one transaction as the database holds it now (its latest version): the first
  extraction reads one version per row, so raw holds `rows`;
- `refunded` completed payments were refunded a few hours to two days after they were made
  (`updated_at` moved), `deleted` were soft-deleted within hours (`deleted_at` set);
- the clean table keeps every row but the soft-deleted ones: `clean`, per UTC creation day in
  `clean_by_day`. Every value is valid: the source quarantines nothing.

Users are the ids every users snapshot holds (U00001..U00050, as the drip uses), so each payment's
user is known to `clean_users` on its day.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from ml_platform.demo.dimensions import MIN_USERS, user_id

# The payments table the PostgreSQL source reads (as `ml_reader`), for the demo and the tests.
TRANSACTIONS_SCHEMA = """
DROP TABLE IF EXISTS public.transactions;
CREATE TABLE public.transactions (
  transaction_id text PRIMARY KEY,
  user_id text NOT NULL,
  amount numeric(12, 2) NOT NULL,
  currency text NOT NULL,
  status text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  deleted_at timestamptz
);
GRANT SELECT ON public.transactions TO ml_reader;
"""

PER_DAY = 40
CURRENCIES = ("EUR", "USD", "GBP")
# The state a payment is left in when it is made; some completed ones are refunded later.
STATUS_WEIGHTS = {"completed": 85, "pending": 8, "failed": 7}
REFUND_RATE = 0.06
DELETE_RATE = 0.03


@dataclass(frozen=True)
class Payment:
    transaction_id: str
    user_id: str
    amount: Decimal
    currency: str
    status: str
    created_at: dt.datetime  # UTC
    updated_at: dt.datetime  # UTC
    deleted_at: dt.datetime | None  # UTC


def demo_transactions(seed: int, first: dt.date, last: dt.date, per_day: int = PER_DAY) -> list[Payment]:
    """`per_day` payments created on each UTC day from `first` to `last`, ordered by id. No change
    happens after the end of `last`, so the rows are the same whenever they are made."""
    if last < first or per_day < 1:
        raise ValueError("need first <= last and per_day >= 1")
    # Its own stream, like each source of the generator: other sources' files never change with it.
    rng = random.Random(f"transactions:{seed}")
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC) - dt.timedelta(seconds=1)
    users = [user_id(i) for i in range(1, MIN_USERS + 1)]
    statuses, weights = zip(*STATUS_WEIGHTS.items(), strict=True)
    rows = []
    for offset in range((last - first).days + 1):
        day = first + dt.timedelta(days=offset)
        midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
        created = sorted(midnight + dt.timedelta(seconds=rng.randrange(86_400)) for _ in range(per_day))
        for n, created_at in enumerate(created, start=1):
            status = rng.choices(statuses, weights)[0]
            updated_at, deleted_at = created_at, None
            roll = rng.random()
            if status == "completed" and roll < REFUND_RATE:
                status = "refunded"
                updated_at = min(end, created_at + dt.timedelta(seconds=rng.randrange(3_600, 2 * 86_400)))
            elif roll > 1 - DELETE_RATE:
                updated_at = min(end, created_at + dt.timedelta(seconds=rng.randrange(600, 6 * 3_600)))
                deleted_at = updated_at
            rows.append(
                Payment(
                    transaction_id=f"T{day:%Y%m%d}-{n:04d}",
                    user_id=rng.choice(users),
                    amount=Decimal(rng.randrange(200, 40_000)) / 100,
                    currency=rng.choice(CURRENCIES),
                    status=status,
                    created_at=created_at,
                    updated_at=updated_at,
                    deleted_at=deleted_at,
                )
            )
    return rows


def expected(rows: list[Payment]) -> dict:
    """What the platform must make of `rows` (module docstring)."""
    live = [r for r in rows if r.deleted_at is None]
    by_day: dict[str, int] = {}
    for r in live:
        by_day[r.created_at.date().isoformat()] = by_day.get(r.created_at.date().isoformat(), 0) + 1
    return {
        "rows": len(rows),
        "deleted": len(rows) - len(live),
        "refunded": sum(r.status == "refunded" for r in live),
        "clean": len(live),
        "clean_by_day": dict(sorted(by_day.items())),
        "users": len({r.user_id for r in live}),
    }


def _timestamp(value: dt.datetime | None) -> str:
    return "NULL" if value is None else f"'{value.isoformat()}'"


def insert_sql(rows: list[Payment]) -> str:
    """One INSERT of every row. Every value is made here from fixed sets, digits and dates (ids,
    currencies, statuses, timestamps), never from input, so literals need no escaping."""
    if not rows:
        return ""
    values = ",\n  ".join(
        f"('{r.transaction_id}', '{r.user_id}', {r.amount}, '{r.currency}', '{r.status}', "
        f"{_timestamp(r.created_at)}, {_timestamp(r.updated_at)}, {_timestamp(r.deleted_at)})"
        for r in rows
    )
    return f"INSERT INTO public.transactions VALUES\n  {values};\n"
