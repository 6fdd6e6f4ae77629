"""Metering in SQL, on SQLite and PostgreSQL: aggregations, filters, windows, skips."""

from decimal import Decimal

import pytest

from billing_core.periods import BillingPeriod
from tests.conftest import apply, catalog_with, ingest, measure_period, write_jsonl

OCT = BillingPeriod.parse("2026-10")
SUB = [{"id": "sub", "customer": "cus_acme", "product": "p", "start": "2026-01-01"}]


def meter(key, aggregation, prop=None, event_name="e", flt=None):
    m = {"key": key, "name": key, "event_name": event_name, "aggregation": aggregation}
    if prop:
        m["over_property"] = prop
    if flt:
        m["filter"] = flt
    return m


def setup(engine, tmp_path, meters, events, subscriptions=SUB):
    catalog = catalog_with(
        meters=meters,
        products=[{"key": "p", "name": "P", "charges": [
            {"meter": m["key"], "price_per_unit": "1"} for m in meters]}],
        subscriptions=subscriptions)
    apply(engine, catalog)
    lines = []
    for i, e in enumerate(events):
        e = dict(e)
        e.setdefault("event_id", f"e{i}")
        e.setdefault("customer_id", "cus_acme")
        e.setdefault("event_name", "e")
        e.setdefault("timestamp", "2026-10-10T00:00:00Z")
        lines.append(e)
    report = ingest(engine, [write_jsonl(tmp_path / "events.jsonl", lines)])
    assert report.total.rejected == 0, report.total.reasons
    return catalog


def usage(engine, catalog, period=OCT):
    result = measure_period(engine, catalog, period)
    return {k: u for s in result.usage.values() for k, u in s.items()}, result


def test_reference_count_sum_max(engine, tmp_path):
    """Counting 3 events -> 3; summing 1073741824 + 536870912 bytes -> 1610612736;
    max of 15, 23, 18 -> 23."""
    meters = [meter("calls", "count", event_name="call"),
              meter("bytes", "sum", "bytes", event_name="upload"),
              meter("peak", "max", "n", event_name="peak")]
    events = [{"event_name": "call"}] * 3 + [
        {"event_name": "upload", "metadata": {"bytes": 1073741824}},
        {"event_name": "upload", "metadata": {"bytes": 536870912}},
        {"event_name": "peak", "metadata": {"n": 15}},
        {"event_name": "peak", "metadata": {"n": 23}},
        {"event_name": "peak", "metadata": {"n": 18}}]
    catalog = setup(engine, tmp_path, meters, events)
    got, _ = usage(engine, catalog)
    assert got["calls"].quantity == 3
    assert got["bytes"].quantity == 1610612736
    assert got["peak"].quantity == 23


def write_exact(path, events):
    """JSON Lines with Decimals written as JSON numbers (json.dumps would need floats)."""
    from billing_core.db.types import dumps_exact

    path.write_text("".join(dumps_exact(e) + "\n" for e in events))
    return path


def sum_and_max_of(engine, tmp_path, values):
    """Usage of a sum meter and a max meter over one event per value of property v."""
    catalog = setup(engine, tmp_path, [meter("v", "sum", "v"), meter("m", "max", "v")], [])
    ingest(engine, [write_exact(tmp_path / "exact.jsonl", [
        {"event_id": f"x{i}", "customer_id": "cus_acme", "event_name": "e",
         "timestamp": "2026-10-02T00:00:00Z", "metadata": {"v": v}}
        for i, v in enumerate(values)])])
    got, _ = usage(engine, catalog)
    return got


def test_decimal_sums_are_exact(engine, tmp_path):
    values = [Decimal("0.1")] * 10 + [Decimal("0.000000000000000001"), 12345678901234567890]
    got = sum_and_max_of(engine, tmp_path, values)
    assert got["v"].quantity == Decimal("12345678901234567891.000000000000000001")
    assert got["m"].quantity == 12345678901234567890


def test_period_is_half_open_and_subscription_window_applies(engine, tmp_path):
    events = [{"timestamp": "2026-09-30T23:59:59.999999Z"},
              {"timestamp": "2026-10-01T00:00:00Z"},
              {"timestamp": "2026-10-31T23:59:59.999999Z"},
              {"timestamp": "2026-11-01T00:00:00Z"},
              {"timestamp": "2026-10-15T00:00:00+02:00"},   # 14th 22:00 UTC
              {"timestamp": "2026-10-15T00:00:00Z"}]
    subs = [{"id": "sub", "customer": "cus_acme", "product": "p", "start": "2026-10-01",
             "end": "2026-10-15"}]
    catalog = setup(engine, tmp_path, [meter("n", "count")], events, subs)
    got, _ = usage(engine, catalog)
    assert got["n"].quantity == 2   # Oct 1 00:00 and Oct 14 22:00; the 15th is past `end`


def test_no_events_means_zero(engine, tmp_path):
    catalog = setup(engine, tmp_path, [meter("n", "count"), meter("s", "sum", "v")], [])
    got, result = usage(engine, catalog)
    assert got["n"].quantity == 0 and got["s"].quantity == 0
    assert [s.id for s in result.subscriptions] == ["sub"]


def test_last_takes_the_latest_numeric_value_ties_by_event_id(engine, tmp_path):
    events = [{"event_id": "a", "timestamp": "2026-10-20T00:00:00Z", "metadata": {"gb": 5}},
              {"event_id": "c", "timestamp": "2026-10-25T00:00:00Z", "metadata": {"gb": 7}},
              {"event_id": "b", "timestamp": "2026-10-25T00:00:00Z", "metadata": {"gb": 9}},
              {"event_id": "d", "timestamp": "2026-10-30T00:00:00Z", "metadata": {"gb": "11"}},
              {"event_id": "e", "timestamp": "2026-11-02T00:00:00Z", "metadata": {"gb": 99}}]
    catalog = setup(engine, tmp_path, [meter("gb", "last", "gb")], events)
    got, _ = usage(engine, catalog)
    assert got["gb"].quantity == 7        # 'c' > 'b' at the same instant; "11" is a string
    assert got["gb"].skipped_not_number == 1


def test_unique_count(engine, tmp_path):
    events = [{"metadata": {"user": u}} for u in ["ann", "bob", "ann", "Ann"]] + [
        {"metadata": {"user": 1}}, {"metadata": {"user": "1"}}, {"metadata": {}}]
    catalog = setup(engine, tmp_path, [meter("users", "unique_count", "user")], events)
    got, _ = usage(engine, catalog)
    assert got["users"].quantity == 5      # ann, bob, Ann, 1, "1"
    assert got["users"].skipped_missing == 1


def test_non_numeric_and_missing_values_are_skipped_and_reported(engine, tmp_path):
    events = [{"metadata": {"tokens": 100}}, {"metadata": {"tokens": "150"}},
              {"metadata": {"tokens": True}}, {"metadata": {}},
              {"metadata": {"tokens": None}}, {"metadata": {"tokens": 50}}]
    catalog = setup(engine, tmp_path, [meter("t", "sum", "tokens"),
                                       meter("m", "max", "tokens")], events)
    got, result = usage(engine, catalog)
    assert got["t"].quantity == 150 and got["m"].quantity == 100
    assert (got["t"].skipped_not_number, got["t"].skipped_missing) == (2, 2)
    assert result.skipped_by_meter()["t"] == {"missing_property": 2, "not_a_number": 2}


API_FILTER = {"logic": "and",
              "conditions": [{"key": "method", "operator": "equals", "value": "POST"}],
              "groups": [{"logic": "or", "conditions": [
                  {"key": "endpoint", "operator": "contains", "value": "/v1/"},
                  {"key": "endpoint", "operator": "equals", "value": "/health"}]}]}


def test_issue_filter_counts_posts_to_v1(engine, tmp_path):
    events = [
        {"event_name": "api.call", "metadata": {"method": "POST", "endpoint": "/v1/chat"}},
        {"event_name": "api.call", "metadata": {"method": "POST", "endpoint": "/health"}},
        {"event_name": "api.call", "metadata": {"method": "post", "endpoint": "/v1/chat"}},
        {"event_name": "api.call", "metadata": {"method": "GET", "endpoint": "/v1/chat"}},
        {"event_name": "api.call", "metadata": {"method": "POST", "endpoint": "/v2/x"}},
        {"event_name": "api.call", "metadata": {"method": "POST"}},
        {"event_name": "API.call", "metadata": {"method": "POST", "endpoint": "/v1/chat"}},
    ]
    catalog = setup(engine, tmp_path, [meter("api", "count", event_name="api.call",
                                             flt=API_FILTER)], events)
    got, _ = usage(engine, catalog)
    assert got["api"].quantity == 2


@pytest.mark.parametrize(("condition", "expected"), [
    ({"operator": "greater_than", "value": 10}, {"int20", "dec10_5"}),
    ({"operator": "greater_than_or_equals", "value": 10}, {"int10", "int20", "dec10_5"}),
    ({"operator": "less_than", "value": Decimal("10.5")}, {"int10", "neg1_5"}),
    ({"operator": "less_than_or_equals", "value": Decimal("10.5")},
     {"int10", "dec10_5", "neg1_5"}),
    ({"operator": "equals", "value": 10}, {"int10"}),
    ({"operator": "not_equals", "value": 10},
     {"int20", "dec10_5", "str10", "strabc", "true", "strtrue", "neg1_5", "strneg1_5"}),
    ({"operator": "equals", "value": "10"}, {"str10"}),
    ({"operator": "equals", "value": "abc"}, {"strabc"}),
    ({"operator": "equals", "value": "true"}, {"strtrue"}),
    ({"operator": "equals", "value": True}, {"true"}),
    ({"operator": "equals", "value": "-1.5"}, {"strneg1_5"}),
    ({"operator": "equals", "value": Decimal("-1.5")}, {"neg1_5"}),
    ({"operator": "contains", "value": "b"}, {"strabc"}),
    ({"operator": "contains", "value": "ru"}, {"strtrue"}),
    ({"operator": "contains", "value": "1"}, {"str10", "strneg1_5"}),
    ({"operator": "contains", "value": ""}, {"str10", "strabc", "strtrue", "strneg1_5"}),
    ({"operator": "does_not_contain", "value": "b"}, {"str10", "strtrue", "strneg1_5"}),
])
def test_operators(engine, tmp_path, condition, expected):
    # strings that read like a number or a boolean must not match those (and back)
    values = {"int10": 10, "int20": 20, "dec10_5": Decimal("10.5"), "str10": "10",
              "strabc": "abc", "none": None, "true": True, "strtrue": "true",
              "neg1_5": Decimal("-1.5"), "strneg1_5": "-1.5"}
    flt = {"logic": "and", "conditions": [dict(condition, key="x")]}
    # each event carries one bit: the sum of the matching events' bits names exactly them
    bits = {k: 2 ** i for i, k in enumerate(values)}
    catalog = setup(engine, tmp_path, [meter("bits", "sum", "bit", flt=flt)], [])
    ingest(engine, [write_exact(tmp_path / "ops.jsonl", [
        {"event_id": k, "customer_id": "cus_acme", "event_name": "e",
         "timestamp": "2026-10-03T00:00:00Z",
         "metadata": {"bit": bits[k]} | ({"x": v} if v is not None else {})}
        for k, v in values.items()])])
    got, _ = usage(engine, catalog)
    assert got["bits"].quantity == sum(bits[k] for k in expected)


def test_nested_groups_three_levels(engine, tmp_path):
    flt = {"logic": "or", "conditions": [{"key": "a", "operator": "equals", "value": 1}],
           "groups": [{"logic": "and",
                       "conditions": [{"key": "b", "operator": "equals", "value": 1}],
                       "groups": [{"logic": "or", "conditions": [
                           {"key": "c", "operator": "equals", "value": 1},
                           {"key": "d", "operator": "equals", "value": 1}]}]}]}
    events = [{"metadata": m} for m in [
        {"a": 1}, {"b": 1}, {"b": 1, "c": 1}, {"b": 1, "d": 1}, {"c": 1}, {"a": 2, "b": 1}]]
    catalog = setup(engine, tmp_path, [meter("n", "count", flt=flt)], events)
    got, _ = usage(engine, catalog)
    assert got["n"].quantity == 3   # {"a":1}, {"b":1,"c":1}, {"b":1,"d":1}


def test_only_requested_customers_are_measured(engine, tmp_path):
    catalog = setup(engine, tmp_path, [meter("n", "count")], [{}])
    result = measure_period(engine, catalog, OCT, customers=["cus_other"])
    assert result.usage == {} and result.subscriptions == []


def test_integer_sums_past_64_bits_stay_exact(engine, tmp_path):
    """Sums that overflow a 64-bit integer, integers past 64 bits and decimals, exactly."""
    big = 9223372036854775807  # 2**63 - 1
    got = sum_and_max_of(engine, tmp_path, [big, big, 99999999999999999999, Decimal("0.5"), 7])
    assert got["v"].quantity == Decimal(2 * big + 99999999999999999999 + 7) + Decimal("0.5")
    assert got["m"].quantity == 99999999999999999999


def test_integers_and_decimals_combine(engine, tmp_path):
    got = sum_and_max_of(engine, tmp_path, [3, Decimal("2.75"), 4, Decimal("4.25"), -1])
    assert got["v"].quantity == Decimal("13.00")
    assert got["m"].quantity == Decimal("4.25")


def test_events_stay_in_the_database(engine, tmp_path):
    """Aggregation returns one row per subscription (plus one per `last` value, and on
    PostgreSQL one per distinct count, which runs apart, and one per meter test read from
    the roll-ups), however many events there are: no event is pulled into Python. (The
    roll-ups' own bookkeeping, their state and list of tests, is not counted.)"""
    from sqlalchemy import event as sa_event

    meters = [meter("n", "count"), meter("s", "sum", "v"), meter("m", "max", "v"),
              meter("u", "unique_count", "v"), meter("l", "last", "v")]
    events = [{"metadata": {"v": i % 7}} for i in range(2000)]
    catalog = setup(engine, tmp_path, meters, events)
    fetched = []

    @sa_event.listens_for(engine, "after_cursor_execute")
    def count_rows(conn, cursor, statement, parameters, context, executemany):
        if "usage_rollup_state" in statement or "FROM usage_rollup_meter" in statement:
            return
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            fetched.append(len(cursor.fetchall()) if cursor.description else 0)
            cursor.execute(statement, parameters)  # leave the result for the caller

    try:
        got, _ = usage(engine, catalog)
    finally:
        sa_event.remove(engine, "after_cursor_execute", count_rows)
    assert got["n"].quantity == 2000 and got["u"].quantity == 7
    # PostgreSQL reads four meter tests from the roll-ups: n's, s's, m's, and u and l's
    tests = 4 if engine.dialect.name == "postgresql" else 1
    assert fetched and sum(fetched) <= 2 + tests, fetched
    assert all(rows <= tests for rows in fetched), fetched


def test_meter_stats_counts_and_folds_exactly():
    """The SQLite aggregate behind numeric meters: counts by type, exact value."""
    from billing_core.db.engine import _MeterStats

    for op, expected in (("sum", "0.30000000000000000001"), ("max", "0.2"),
                         ("min", "0"), ("none", "-")):
        stats = _MeterStats()
        for kind, raw in (("real", "0.1"), (None, None), ("null", None), ("text", '"x"'),
                          ("real", "0.2"), ("integer", "0"),
                          ("real", "0.00000000000000000001")):
            stats.step(op, kind, raw)
        matched, present, numbers, value = stats.finalize().split(" ")
        assert (matched, present, numbers) == ("7", "5", "4")
        assert value == expected


def test_many_windows_scan_once_and_restore_the_planner_setting(engine):
    """PostgreSQL: a period's many windows are read with a scan and a hash join (no
    nested loop, no merge join) and aggregated with more work_mem, and the settings found
    before are back afterwards; SQLite is untouched."""
    from datetime import datetime

    from sqlalchemy import event
    from sqlalchemy import text as sql_text

    from billing_core.catalog.models import Meter
    from billing_core.metering.aggregate import SCAN_FROM_WINDOWS, Window, measure

    meter = Meter(key="calls", name="Calls", event_name="api.call", aggregation="count")
    windows = [Window(f"w{i}", f"cus_{i}", datetime(2026, 10, 1), datetime(2026, 11, 1),
                      ("calls",)) for i in range(SCAN_FROM_WINDOWS)]
    with engine.connect() as conn, conn.begin():
        if conn.dialect.name != "postgresql":
            pytest.skip("the planner setting is PostgreSQL's")
        seen = []
        names = "current_setting('enable_nestloop'), current_setting('enable_mergejoin'), " \
                "current_setting('work_mem')"
        conn.execute(sql_text("SET LOCAL work_mem = '5MB'"))

        def watch(c, cursor, statement, parameters, context, executemany):
            if "COUNT(" in statement:
                cursor.execute(f"SELECT {names}")
                seen.append(tuple(cursor.fetchone()))

        event.listen(engine, "before_cursor_execute", watch)
        try:
            usage = measure(conn, {"calls": meter}, windows)
        finally:
            event.remove(engine, "before_cursor_execute", watch)
        assert seen == [("off", "off", "64MB")]
        assert all(u["calls"].quantity == 0 for u in usage.values())
        assert tuple(conn.execute(sql_text(f"SELECT {names}")).one()) == ("on", "on", "5MB")
