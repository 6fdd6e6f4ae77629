"""min, avg and weighted_sum meters, negated filter groups, and a percentage price's free
allowance, measured in SQL on SQLite and PostgreSQL against worked examples."""

from decimal import Decimal

import pytest

from billing_core.metering import Allowance, Window, measure
from billing_core.periods import BillingPeriod
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.metering.test_aggregate import meter, setup, usage

D = Decimal
AUG_2023 = BillingPeriod(2023, 8)
SUB_2023 = [{"id": "sub", "customer": "cus_acme", "product": "p", "start": "2023-01-01"}]


def test_min_and_avg(engine, tmp_path):
    meters = [meter("low", "min", "n"), meter("mean", "avg", "n")]
    events = [{"metadata": {"n": v}} for v in (15, 23, 18, 2.5, -1)] + [
        {"metadata": {"n": "x"}}, {"metadata": {}}]
    catalog = setup(engine, tmp_path, meters, events)
    found, _ = usage(engine, catalog)
    assert found["low"].quantity == D(-1)
    assert found["mean"].quantity == D("11.5")            # 57.5 / 5; "x" and {} skipped
    assert (found["mean"].skipped_not_number, found["mean"].skipped_missing) == (1, 1)


def test_avg_of_values_that_do_not_divide_evenly_is_rounded_to_18_places(engine, tmp_path):
    catalog = setup(engine, tmp_path, [meter("mean", "avg", "n")],
                    [{"metadata": {"n": v}} for v in (1, 1, 0)])
    assert usage(engine, catalog)[0]["mean"].quantity == D("0.666666666666666667")


def test_avg_of_large_values_keeps_its_18_places(engine, tmp_path):
    """A mean above 10^10 with 18 decimal places needs more than the 28 digits of
    Python's default decimal context; it used to be refused."""
    big = 10 ** 15
    catalog = setup(engine, tmp_path, [meter("mean", "avg", "n")],
                    [{"metadata": {"n": v}} for v in (big, big + 1, big + 1)])
    assert usage(engine, catalog)[0]["mean"].quantity == D("1000000000000000.666666666666666667")


def _lago(engine, tmp_path, events, meters=None):
    meters = meters or [meter("storage", "weighted_sum", "value")]
    rows = [{"timestamp": ts, "metadata": data} for ts, data in events]
    catalog = setup(engine, tmp_path, meters, rows, SUB_2023)
    return usage(engine, catalog, AUG_2023)[0]


def test_lago_weighted_sum_spec(engine, tmp_path):
    """Lago's WeightedSumService spec: seven changes on 1 August 2023 (+2, +3, +1, -4,
    -2, +10, -10) integrate to 16.5 unit-hours over the 744 hours of August: 0.02218."""
    changes = [("00:00", 2), ("01:00", 3), ("01:30", 1), ("02:00", -4), ("04:00", -2),
               ("05:00", 10), ("05:30", -10)]
    found = _lago(engine, tmp_path, [(f"2023-08-01T{t}:00Z", {"value": v})
                                     for t, v in changes])
    assert round(found["storage"].quantity, 5) == D("0.02218")
    assert found["storage"].quantity == D("0.022177419354838710")   # 16.5 / 744, exact to 18
    assert found["storage"].matched_events == 7


def test_lago_weighted_sum_single_and_simultaneous_events(engine, tmp_path):
    found = _lago(engine, tmp_path, [("2023-08-01T00:00:00Z", {"value": 3}),
                                     ("2023-08-01T00:00:00Z", {"value": 3})])
    assert found["storage"].quantity == 6


def test_lago_weighted_sum_by_region(engine, tmp_path):
    """The same spec, presented by region: eu +2 at 00:00 and -1 at 02:00 -> 1.00269;
    us +3 at 01:00 -> 2.99597. Here, one meter per region (a filter)."""
    meters = [meter(f"storage_{r}", "weighted_sum", "value",
                    flt={"conditions": [{"key": "region", "operator": "equals", "value": r}]})
              for r in ("eu", "us")]
    found = _lago(engine, tmp_path, [
        ("2023-08-01T00:00:00Z", {"value": 2, "region": "eu"}),
        ("2023-08-01T01:00:00Z", {"value": 3, "region": "us"}),
        ("2023-08-01T02:00:00Z", {"value": -1, "region": "eu"})], meters)
    assert round(found["storage_eu"].quantity, 5) == D("1.00269")
    assert round(found["storage_us"].quantity, 5) == D("2.99597")


def test_lago_weighted_sum_documentation_example(engine, tmp_path):
    """Lago docs: +20 GB on 16 March, +10 GB on 17 March 2022: 20 x 1/31 + 30 x 15/31 =
    0.64516129032 + 14.5161290323 = 15.1612903226."""
    rows = [{"timestamp": "2022-03-16T00:00:00Z", "metadata": {"gb": 20}},
            {"timestamp": "2022-03-17T00:00:00Z", "metadata": {"gb": 10}}]
    catalog = setup(engine, tmp_path, [meter("gb", "weighted_sum", "gb")], rows,
                    [{"id": "sub", "customer": "cus_acme", "product": "p",
                      "start": "2022-01-01"}])
    found = usage(engine, catalog, BillingPeriod(2022, 3))[0]
    assert round(found["gb"].quantity, 10) == D("15.1612903226")


@pytest.mark.parametrize("carry", [True, False])
def test_weighted_sum_carries_the_level_over_when_asked(engine, tmp_path, carry):
    """Lago's recurring weighted sum: 1000 units added in July are still there all of
    August (and count as August's level)."""
    m = meter("seats", "weighted_sum", "value")
    if carry:
        m["carry_over"] = True
    found = _lago(engine, tmp_path, [("2023-07-20T00:00:00Z", {"value": 1000}),
                                     ("2023-08-16T00:00:00Z", {"value": -500})], [m])
    # August has 31 days: with carry-over 1000 for 15 days then 500 for 16 days
    expected = D("741.935483870967741935") if carry else D("-258.064516129032258065")
    assert found["seats"].quantity == expected


def test_negated_filter_group_matches_events_lacking_the_property(engine, tmp_path):
    flt = {"groups": [{"negate": True, "conditions": [
        {"key": "tier", "operator": "equals", "value": "internal"}]}]}
    catalog = setup(engine, tmp_path, [meter("external", "count", flt=flt)], [
        {"metadata": {"tier": "internal"}}, {"metadata": {"tier": "paid"}},
        {"metadata": {}}, {"metadata": {"tier": None}}, {"metadata": {"tier": 5}}])
    assert usage(engine, catalog)[0]["external"].quantity == 4


def test_a_negated_group_with_or(engine, tmp_path):
    flt = {"negate": True, "logic": "or", "conditions": [
        {"key": "n", "operator": "greater_than", "value": 10},
        {"key": "kind", "operator": "equals", "value": "test"}]}
    catalog = setup(engine, tmp_path, [meter("small", "count", flt=flt)], [
        {"metadata": {"n": 11}}, {"metadata": {"n": 5}}, {"metadata": {"kind": "test"}},
        {"metadata": {"n": "12"}}, {"metadata": {}}])
    assert usage(engine, catalog)[0]["small"].quantity == 3


@pytest.mark.parametrize(("events", "amount", "free_amount", "free_events"), [
    (3, "250", "250", 2),       # Lago spec: 3 free events or 250 -> 250 free, 2 free events
    (3, "0", "400", 3),         # only 3 free events: their 400 is free too
    (0, "250", "250", 2),       # only 250: the events that stay below it are free
    (3, "500", "400", 3),
    (5, "0", "800", 4),         # more free events than events: everything is free
    (0, "10", "10", 0),         # the first event already crosses 10
])
def test_percentage_free_allowance_in_event_order(engine, tmp_path, events, amount,
                                                   free_amount, free_events):
    """Lago's PercentageService spec: four transactions of 50, 100, 250, 400 (running
    totals 50, 150, 400, 800)."""
    rows = [{"timestamp": f"2026-10-0{i + 1}T00:00:00Z", "metadata": {"amount": v}}
            for i, v in enumerate((50, 100, 250, 400))]
    catalog = setup(engine, tmp_path, [meter("volume", "sum", "amount")], rows)
    sub = catalog.subscriptions[0]
    window = Window("w", sub.customer, BillingPeriod(2026, 10).start,
                    BillingPeriod(2026, 10).end, ("volume",),
                    allowances=(Allowance("volume", events, D(amount)),))
    uow = SqlUnitOfWork(engine)
    with uow.read():
        found = measure(uow.connection, catalog.meters_by_key, [window])["w"]["volume"]
    assert (found.quantity, found.counted_events) == (800, 4)
    assert (found.free_amount, found.free_events) == (D(free_amount), free_events)
