"""SQLite finds a window's events through the index by customer, name and month
(`billing_core.db.event_layout`): whatever the window's months, the times, carried-over
levels and allowances, metering gives exactly what it gives with every event of the
customer read, and the index is read with the months."""

import random
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from billing_core.db.event_layout import INDEX_NAME, event_month, last_instant
from billing_core.metering import Allowance, Window, aggregate, measure
from billing_core.metering.json_sql import Params, json_sql
from tests.conftest import apply, catalog_with, ingest, write_jsonl
from tests.metering.test_rollup import CUSTOMERS, meters, value

MONTH_STARTS = [datetime(2026, m, 1) for m in (9, 10, 11, 12)] + [datetime(2027, 1, 1)]


@pytest.fixture
def lite(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL finds events by time (and its roll-ups)")
    return engine


def moment(rng):
    """Anywhere from late August to early January, often on a month's first instant or
    the instant before it."""
    if rng.random() < 0.3:
        return rng.choice(MONTH_STARTS) - timedelta(microseconds=rng.choice([0, 1]))
    return datetime(2026, 8, 25) + timedelta(seconds=rng.randrange(135 * 86400),
                                             microseconds=rng.choice([0, 1, 999999]))


def month_events(rng, count):
    out = []
    for i in range(count):
        meta = {k: rng.choice(["eu", "us"]) if k == "region" else value(rng)
                for k in ("v", "w", "region") if rng.random() < 0.8}
        out.append({"event_id": f"m{i}", "customer_id": rng.choice(CUSTOMERS),
                    "event_name": rng.choice(["e", "e", "e", "f", "g"]),
                    "timestamp": moment(rng).isoformat() + "Z", "metadata": meta})
    return out


def month_windows(rng, catalog, count=40):
    """Windows inside a month, across two or four, ending on a month's first instant or a
    tick after it, empty and one microsecond long; carried-over levels from months
    before; some with allowances."""
    keys = tuple(m.key for m in catalog.meters)
    out = []
    for i in range(count):
        start = moment(rng)
        end = rng.choice([start, start + timedelta(microseconds=1),
                          start + timedelta(days=rng.choice([1, 20, 31, 75])),
                          min(m for m in [*MONTH_STARTS, datetime(2027, 2, 1)] if m > start)
                          + timedelta(microseconds=rng.choice([0, 1]))])
        carry = start - timedelta(days=rng.choice([0, 3, 40]))
        allowances = (Allowance("s", rng.choice([0, 3]), Decimal(rng.choice([0, 5]))),) \
            if i % 3 == 0 else ()
        out.append(Window(f"w{i}", rng.choice(CUSTOMERS), start, end, keys,
                          carry_from=carry, allowances=allowances))
    return out


def month_meters():
    """Every aggregation (test_rollup's meters), and a level carried over from the
    subscription's start."""
    return [*meters(), {"key": "carried", "name": "carried", "event_name": "e",
                        "aggregation": "weighted_sum", "over_property": "v",
                        "carry_over": True}]


def setup(engine, tmp_path, rng, count=700):
    catalog = catalog_with(
        meters=month_meters(),
        products=[{"key": "p", "name": "P", "charges": [
            {"meter": m["key"], "price_per_unit": "1"} for m in meters()[:10]]}],
        customers=[{"id": c, "name": c, "email": f"{c}@example.test"} for c in CUSTOMERS],
        subscriptions=[{"id": f"sub_{c}", "customer": c, "product": "p",
                        "start": "2026-01-01"} for c in CUSTOMERS])
    apply(engine, catalog)
    report = ingest(engine, [write_jsonl(tmp_path / "a.jsonl", month_events(rng, count))])
    assert report.total.ingested == count, report.total
    return catalog


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_windows_over_months_measure_what_reading_every_event_does(lite, tmp_path, seed,
                                                                    monkeypatch):
    rng = random.Random(seed)
    catalog = setup(lite, tmp_path, rng)
    found = month_windows(rng, catalog)
    with lite.connect() as conn:
        by_month = measure(conn, catalog.meters_by_key, found)
    monkeypatch.setattr(aggregate, "_months", lambda sql, since: "")
    with lite.connect() as conn:
        every_event = measure(conn, catalog.meters_by_key, found)
    assert by_month == every_event
    assert any(u.matched_events for w in every_event.values() for u in w.values())


def test_the_index_is_read_by_customer_name_and_month(lite, tmp_path):
    catalog = setup(lite, tmp_path, random.Random(4), count=50)
    chosen = list(catalog.meters)
    window = Window("w", CUSTOMERS[0], datetime(2026, 10, 3), datetime(2026, 11, 1),
                    tuple(m.key for m in chosen))
    params = Params()
    sql = json_sql("sqlite", params)
    with lite.connect() as conn:
        query = (f"SELECT COUNT(*) {aggregate._scope(conn, sql, [window], chosen)} "
                 f"GROUP BY w.i")
        plan = " ".join(row[3] for row in conn.execute(text("EXPLAIN QUERY PLAN " + query),
                                                       params.values))
        months = conn.exec_driver_sql(
            f"SELECT ms, mf, me FROM temp.{aggregate.WINDOW_TABLE}").one()
    assert (f"USING INDEX {INDEX_NAME} (customer_id=? AND event_name=? AND <expr>>? AND "
            f"<expr><?)") in plan, plan
    assert tuple(months) == ("2026-10", "2026-10", "2026-10")


def test_a_window_ends_in_the_month_of_its_last_instant():
    assert event_month(last_instant(datetime(2026, 11, 1))) == "2026-10"
    assert event_month(last_instant(datetime(2026, 11, 1, 0, 0, 0, 1))) == "2026-11"
    assert event_month(datetime(999, 1, 5)) == "0999-01"
    assert last_instant(datetime.min) == datetime.min


def test_upgrading_a_database_keeps_its_usage(db_url, tmp_path):
    """A database of revision 0007 (events by time) upgraded to the month index measures
    the same usage."""
    from billing_core.db.engine import get_engine
    from billing_core.db.migrate import upgrade

    db = get_engine(db_url)
    upgrade(db, "0007")
    rng = random.Random(5)
    catalog = setup(db, tmp_path, rng, count=300)
    found = month_windows(rng, catalog, count=20)
    with db.connect() as conn:
        before = measure(conn, catalog.meters_by_key, found)
    upgrade(db)
    with db.connect() as conn:
        after = measure(conn, catalog.meters_by_key, found)
        indexes = {name for (name,) in conn.execute(text(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'event'"
            if db.dialect.name == "postgresql" else
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event'"))}
    assert after == before
    if db.dialect.name == "sqlite":
        assert INDEX_NAME in indexes and "ix_event_customer_name_ts" not in indexes
    else:
        assert "ix_event_customer_name_ts" in indexes and INDEX_NAME not in indexes
    db.dispose()
