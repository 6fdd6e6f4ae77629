"""SQL metering against a plain-Python reference of the documented rules, on generated
demo data (skewed customers, filters, numbers sent as strings, subscription windows)."""

import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import text

from billing_core.catalog import Filter
from billing_core.periods import BillingPeriod
from tests.conftest import EXAMPLES, apply, ingest, measure_period

NUMBER = (int, Decimal)


def is_number(v):
    return isinstance(v, NUMBER) and not isinstance(v, bool)


def matches(f: Filter | None, meta: dict) -> bool:
    if f is None:
        return True
    results = [condition(c, meta) for c in f.conditions] + [matches(g, meta) for g in f.groups]
    found = all(results) if f.logic == "and" else any(results)
    return not found if f.negate else found


def condition(c, meta) -> bool:
    if meta.get(c.key) is None:
        return False
    v = meta[c.key]
    if c.operator in ("contains", "does_not_contain"):
        return isinstance(v, str) and ((c.value in v) == (c.operator == "contains"))
    if c.operator in ("greater_than", "greater_than_or_equals", "less_than",
                      "less_than_or_equals"):
        if not is_number(v):
            return False
        a, b = Decimal(v), Decimal(c.value)
        return {"greater_than": a > b, "greater_than_or_equals": a >= b, "less_than": a < b,
                "less_than_or_equals": a <= b}[c.operator]
    same = (type(v) is bool and v == c.value) if isinstance(c.value, bool) else \
        (is_number(v) and Decimal(v) == Decimal(c.value)) if is_number(c.value) else \
        (isinstance(v, str) and v == c.value)
    return same if c.operator == "equals" else not same


def utc_midnight(day, tz: str) -> datetime:
    """The start of a local day, as naive UTC (computed here without billing_core)."""
    local = datetime.combine(day, datetime.min.time()).replace(tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC).replace(tzinfo=None)


def reference(events, catalog, period):
    """Calendar cycles in each customer's time zone."""
    expected = {}
    for sub in catalog.subscriptions:
        if not (sub.start < period.end_date and (sub.end is None or sub.end > period.start_date)):
            continue
        assert sub.billing_anchor == "calendar"
        tz = catalog.customer(sub.customer).timezone or catalog.settings.timezone
        lo = utc_midnight(max(period.start_date, sub.start), tz)
        hi = utc_midnight(min(period.end_date, sub.end) if sub.end else period.end_date, tz)
        mine = [e for e in events if e["customer_id"] == sub.customer and lo <= e["ts"] < hi]
        for charge in catalog.product(sub.product).charges:
            m = catalog.meter(charge.meter)
            hits = [e for e in mine if e["event_name"] == m.event_name
                    and matches(m.filter, e["meta"])]
            values = [e["meta"].get(m.over_property) for e in hits]
            numbers = [(e["ts"], e["event_id"], Decimal(v)) for e, v in zip(hits, values,
                                                                          strict=True)
                       if is_number(v)]
            if m.aggregation == "count":
                q = Decimal(len(hits))
            elif m.aggregation == "sum":
                q = sum((n for *_, n in numbers), Decimal(0))
            elif m.aggregation == "max":
                q = max((n for *_, n in numbers), default=Decimal(0))
            elif m.aggregation == "min":
                q = min((n for *_, n in numbers), default=Decimal(0))
            elif m.aggregation == "last":
                q = max(numbers)[2] if numbers else Decimal(0)
            else:
                q = Decimal(len({json.dumps(v) for v in values if v is not None}))
            expected[(sub.id, m.key)] = q
    return expected


def test_sql_metering_equals_the_reference(engine, demo_catalog, tmp_path):
    subprocess.run([sys.executable, str(EXAMPLES / "generate_events.py"), "--events", "6000",
                    "--out", str(tmp_path / "data")], check=True, capture_output=True)
    apply(engine, demo_catalog)
    ingest(engine, [tmp_path / "data"])
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT event_id, customer_id, event_name, ts, metadata "
                                 "FROM event")).all()
    events = [{"event_id": r[0], "customer_id": r[1], "event_name": r[2],
               "ts": r[3] if isinstance(r[3], datetime) else datetime.fromisoformat(r[3]),
               "meta": json.loads(r[4], parse_float=Decimal) if isinstance(r[4], str)
               else r[4]} for r in rows]
    period = BillingPeriod.parse("2026-10")
    measured = measure_period(engine, demo_catalog, period)
    got = {(s, k): u.quantity for s, meters in measured.usage.items()
           for k, u in meters.items()}
    expected = reference(events, demo_catalog, period)
    assert got == expected
    assert len(got) >= 15 and sum(1 for q in got.values() if q) >= 12
