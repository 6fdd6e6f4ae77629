"""PostgreSQL's usage roll-ups: metering through them gives exactly what raw events give,
for every aggregation, filter and window shape, and they stay exact through re-runs,
late events, catalog changes, failures and a concurrent roll-up."""

import random
import threading
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from billing_core.catalog.models import AGGREGATIONS
from billing_core.clock import FixedClock
from billing_core.metering import Allowance, Window, measure, rollup
from billing_core.services.metering import roll_up_usage
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import apply, catalog_with, ingest, write_jsonl

CUSTOMERS = ["cus_a", "cus_b", "cus_c"]
START = datetime(2026, 10, 1)


@pytest.fixture
def pg(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("roll-ups are kept on PostgreSQL only")
    return engine


def meters():
    """Every aggregation, over properties that hold numbers, strings, booleans, nulls or
    nothing, with and without filters (two meters share one test: s and s2, a sum and an
    average of one property; a max of it, m, is a test of its own)."""
    flt = {"conditions": [{"key": "region", "operator": "equals", "value": "eu"}]}
    big = {"conditions": [{"key": "v", "operator": "greater_than", "value": 2}]}
    out = [{"key": "n", "name": "n", "event_name": "e", "aggregation": "count"},
           {"key": "nf", "name": "nf", "event_name": "e", "aggregation": "count",
            "filter": flt},
           {"key": "s", "name": "s", "event_name": "e", "aggregation": "sum",
            "over_property": "v"},
           {"key": "m", "name": "m", "event_name": "e", "aggregation": "max",
            "over_property": "v"},
           {"key": "s2", "name": "s2", "event_name": "e", "aggregation": "avg",
            "over_property": "v"},
           {"key": "big", "name": "big", "event_name": "e", "aggregation": "sum",
            "over_property": "v", "filter": big},
           {"key": "other", "name": "other", "event_name": "f", "aggregation": "min",
            "over_property": "v"}]
    for agg in AGGREGATIONS:
        if agg != "count":
            out.append({"key": f"a_{agg}", "name": agg, "event_name": "e",
                        "aggregation": agg, "over_property": "w"})
    return out


def value(rng):
    return rng.choice([1, 1.0, 2, 3, -4, "7", "x", True, None, "2.5", 10 ** 15, 0.125,
                       "1e400", 1234.5678901234])


def events(rng, count, prefix="e", first=START, days=40):
    out = []
    for i in range(count):
        ts = first + timedelta(seconds=rng.randrange(days * 86400), microseconds=rng.choice(
            [0, 1, 999999]))
        if rng.random() < 0.15:   # on a day's edge, and a tick before one
            ts = datetime.combine(ts.date(), datetime.min.time()) - timedelta(
                microseconds=rng.choice([0, 1]))
        meta = {}
        for key in ("v", "w", "region"):
            if rng.random() < 0.8:
                meta[key] = rng.choice(["eu", "us"]) if key == "region" else value(rng)
        out.append({"event_id": f"{prefix}{i}", "customer_id": rng.choice(CUSTOMERS),
                    "event_name": rng.choice(["e", "e", "e", "f", "g"]),
                    "timestamp": ts.isoformat() + "Z", "metadata": meta})
    return out


def setup(engine, tmp_path, rng, count=600, meter_list=None):
    catalog = catalog_with(
        meters=meter_list or meters(),
        products=[{"key": "p", "name": "P", "charges": [
            {"meter": m["key"], "price_per_unit": "1"} for m in (meter_list or meters())[:10]]}],
        customers=[{"id": c, "name": c, "email": f"{c}@example.test"}
                   for c in CUSTOMERS],
        subscriptions=[{"id": f"sub_{c}", "customer": c, "product": "p",
                        "start": "2026-01-01"} for c in CUSTOMERS])
    apply(engine, catalog)
    report = ingest(engine, [write_jsonl(tmp_path / "a.jsonl", events(rng, count))])
    assert report.total.ingested == count and not report.notes, report.notes
    return catalog


def windows(rng, catalog, count=30):
    """Whole-day windows, windows cut inside days (a local-midnight cycle), windows inside
    one day, empty ones; some with allowances."""
    keys = tuple(m.key for m in catalog.meters)
    out = []
    for i in range(count):
        start = START + timedelta(days=rng.randrange(-3, 35), hours=rng.choice(
            [0, 0, 5, 23]), microseconds=rng.choice([0, 0, 1]))
        end = start + timedelta(days=rng.choice([0, 1, 2, 30]), hours=rng.choice([0, 7]),
                                microseconds=rng.choice([0, 0, 999999]))
        allowances = (Allowance("s", rng.choice([0, 3]), Decimal(rng.choice([0, 5]))),) \
            if i % 3 == 0 else ()
        out.append(Window(f"w{i}", rng.choice(CUSTOMERS), start, end, keys,
                          carry_from=START - timedelta(days=5), allowances=allowances))
    return out


def both(engine, catalog, found):
    """(through the roll-ups, from raw events): the second with the roll-ups set aside
    (a watermark of 0 makes every event pending), in one transaction rolled back."""
    with engine.connect() as conn:
        state = rollup.state(conn)
        assert state is not None and state.current and state.fingerprints
        rolled = measure(conn, catalog.meters_by_key, found)
        conn.execute(text("UPDATE usage_rollup_state SET watermark = 0"))
        assert not rollup.state(conn).current
        raw = measure(conn, catalog.meters_by_key, found)
        conn.rollback()
    return rolled, raw


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_roll_ups_measure_exactly_what_raw_events_do(pg, tmp_path, seed):
    rng = random.Random(seed)
    catalog = setup(pg, tmp_path, rng)
    found = windows(rng, catalog)
    rolled, raw = both(pg, catalog, found)
    assert rolled == raw
    assert any(u.matched_events for w in raw.values() for u in w.values())


def test_each_test_is_one_roll_up_and_a_day_is_one_row(pg, tmp_path):
    rng = random.Random(4)
    catalog = setup(pg, tmp_path, rng, count=300)
    prints = set(rollup.wanted_tests(catalog.meters))
    counts = {rollup.fingerprint(m) for m in catalog.meters}
    assert rollup.fingerprint(catalog.meter("s")) == rollup.fingerprint(catalog.meter("s2"))
    assert rollup.fingerprint(catalog.meter("s")) != rollup.fingerprint(catalog.meter("m"))
    assert len(counts) < len(catalog.meters)
    assert prints == counts | {rollup.value_fingerprint(catalog.meter("a_unique_count"))}
    with pg.connect() as conn:
        held = rollup.state(conn).fingerprints
        total = conn.execute(text(
            "SELECT SUM(matched) FROM usage_rollup WHERE fingerprint = :f"),
            {"f": rollup.fingerprint(catalog.meter("n"))}).scalar_one()
        stored = conn.execute(text(
            "SELECT COUNT(*) FROM event WHERE event_name = 'e'")).scalar_one()
    assert held == prints
    assert total == stored


def test_re_ingesting_late_events_and_direct_inserts_stay_exact(pg, tmp_path):
    rng = random.Random(5)
    catalog = setup(pg, tmp_path, rng)
    found = windows(rng, catalog)
    before, _ = both(pg, catalog, found)
    again = ingest(pg, [tmp_path / "a.jsonl"])     # the same file: all duplicates
    assert again.total.duplicates == again.total.records
    assert both(pg, catalog, found)[0] == before
    late = events(rng, 200, prefix="late")
    ingest(pg, [write_jsonl(tmp_path / "b.jsonl", late)])
    rolled, raw = both(pg, catalog, found)
    assert rolled == raw and rolled != before
    # an event stored by hand (no roll-up after it) is pending: metering reads raw events
    with pg.begin() as conn:
        conn.execute(text(
            "INSERT INTO event (event_id, customer_id, event_name, ts, metadata, "
            "payload_hash, ingested_at, source) VALUES ('hand', 'cus_a', 'e', "
            "'2026-10-05 12:00', '{\"v\": 5}', 'x', '2026-10-05', 'hand')"))
    with pg.connect() as conn:
        assert not rollup.state(conn).current
        by_hand = measure(conn, catalog.meters_by_key, found)
    counted = [w.key for w in found if w.customer_id == "cus_a"
               and w.start <= datetime(2026, 10, 5, 12) < w.end]
    assert counted
    for key in counted:
        assert by_hand[key]["n"].matched_events == raw[key]["n"].matched_events + 1
    roll_up_usage(SqlUnitOfWork(pg), FixedClock(datetime(2026, 11, 1)))
    rolled, raw = both(pg, catalog, found)
    assert rolled == raw == by_hand


def test_a_new_meter_is_backfilled_and_an_unused_test_dropped(pg, tmp_path):
    rng = random.Random(6)
    all_meters = meters()
    catalog = setup(pg, tmp_path, rng, meter_list=all_meters[:3])
    first = set(rollup.wanted_tests(catalog.meters))
    changed = catalog_with(
        meters=all_meters[2:],
        products=[{"key": "p", "name": "P", "charges": [
            {"meter": m["key"], "price_per_unit": "1"} for m in all_meters[2:12]]}],
        customers=[{"id": c, "name": c, "email": f"{c}@example.test"}
                   for c in CUSTOMERS],
        subscriptions=[{"id": f"sub_{c}", "customer": c, "product": "p",
                        "start": "2026-01-01"} for c in CUSTOMERS])
    apply(pg, changed, prune=True)
    report = roll_up_usage(SqlUnitOfWork(pg), FixedClock(datetime(2026, 11, 1)))
    now = set(rollup.wanted_tests(changed.meters))
    assert set(report.backfilled) == now - first
    assert set(report.dropped) == first - now
    with pg.connect() as conn:
        assert rollup.state(conn).fingerprints == now
        left = conn.execute(text("SELECT COUNT(*) FROM usage_rollup WHERE fingerprint = "
                                 "ANY(:f)"), {"f": sorted(first - now)}).scalar_one()
    assert left == 0
    found = windows(rng, changed)
    rolled, raw = both(pg, changed, found)
    assert rolled == raw


def test_a_roll_up_that_fails_leaves_its_meters_to_raw_events(pg, tmp_path, monkeypatch):
    rng = random.Random(7)
    catalog = setup(pg, tmp_path, rng, count=0)

    def refuse(*args, **kwargs):
        raise ValueError("refused")

    monkeypatch.setattr(rollup, "_add", refuse)
    monkeypatch.setattr(rollup, "_add_values", refuse)
    report = ingest(pg, [write_jsonl(tmp_path / "b.jsonl", events(rng, 300))])
    assert report.total.ingested == 300
    assert any("could not be built" in note for note in report.notes), report.notes
    with pg.connect() as conn:
        state = rollup.state(conn)
        assert state.current and not state.fingerprints
        raw_only = measure(conn, catalog.meters_by_key, windows(random.Random(8), catalog))
    monkeypatch.undo()
    roll_up_usage(SqlUnitOfWork(pg), FixedClock(datetime(2026, 11, 1)))
    rolled, raw = both(pg, catalog, windows(random.Random(8), catalog))
    assert rolled == raw == raw_only


def test_a_roll_up_waits_for_a_chunk_being_stored(pg, tmp_path):
    """A chunk holds the roll-up lock shared until it commits; the roll-up, which reads
    the sequence, waits for it, so it never moves the watermark past an event it missed."""
    rng = random.Random(9)
    catalog = setup(pg, tmp_path, rng, count=50)
    done = threading.Event()
    with pg.connect() as conn:
        transaction = conn.begin()
        rollup.hold_for_storing(conn)
        conn.execute(text(
            "INSERT INTO event (event_id, customer_id, event_name, ts, metadata, "
            "payload_hash, ingested_at, source) VALUES ('slow', 'cus_b', 'e', "
            "'2026-10-07 08:00', '{\"v\": 2}', 'x', '2026-10-07', 'slow')"))
        worker = threading.Thread(target=lambda: (roll_up_usage(
            SqlUnitOfWork(pg), FixedClock(datetime(2026, 11, 1))), done.set()))
        worker.start()
        assert not done.wait(1.5)   # held back by the chunk's transaction
        transaction.commit()
    worker.join(30)
    assert done.is_set()
    with pg.connect() as conn:
        assert rollup.state(conn).current
    found = [Window("all", "cus_b", START, START + timedelta(days=30),
                    tuple(m.key for m in catalog.meters))]
    rolled, raw = both(pg, catalog, found)
    assert rolled == raw
    assert rolled["all"]["n"].matched_events == sum(
        1 for e in events(random.Random(9), 50) if e["customer_id"] == "cus_b"
        and e["event_name"] == "e" and e["timestamp"] < "2026-10-31") + 1


def test_split_keeps_whole_days_and_edges():
    day = datetime(2026, 10, 1)
    assert rollup.split(day, day + timedelta(days=2)) == rollup.Split(
        day.date(), (day + timedelta(days=2)).date(), ())
    cut = rollup.split(day + timedelta(hours=5), day + timedelta(days=2, hours=5))
    assert cut.first == (day + timedelta(days=1)).date()
    assert cut.last == (day + timedelta(days=2)).date()
    assert cut.edges == ((day + timedelta(hours=5), day + timedelta(days=1)),
                         (day + timedelta(days=2), day + timedelta(days=2, hours=5)))
    assert rollup.split(day + timedelta(hours=1), day + timedelta(days=1, hours=1)) is None
    assert rollup.split(day, day) is None


def test_two_roll_ups_at_once_add_each_event_once(pg, tmp_path):
    rng = random.Random(11)
    catalog = setup(pg, tmp_path, rng, count=100)
    with pg.begin() as conn:   # stored by hand: pending until a roll-up
        for i in range(40):
            conn.execute(text(
                "INSERT INTO event (event_id, customer_id, event_name, ts, metadata, "
                "payload_hash, ingested_at, source) VALUES (:i, 'cus_c', 'e', :ts, "
                "'{\"v\": 3, \"w\": 2}', 'x', '2026-10-09', 'hand')"),
                {"i": f"hand{i}", "ts": START + timedelta(days=i % 20, hours=3)})
    start = threading.Barrier(2)
    errors = []

    def roll():
        try:
            start.wait()
            roll_up_usage(SqlUnitOfWork(pg), FixedClock(datetime(2026, 11, 1)))
        except Exception as exc:   # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=roll) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    rolled, raw = both(pg, catalog, windows(rng, catalog))
    assert rolled == raw
    whole = [Window("c", "cus_c", START, START + timedelta(days=30),
                    tuple(m.key for m in catalog.meters))]
    rolled, raw = both(pg, catalog, whole)
    assert rolled == raw and rolled["c"]["n"].matched_events >= 40
