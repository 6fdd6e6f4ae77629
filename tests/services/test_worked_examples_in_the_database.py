"""The peers' worked examples once more, through the database on SQLite and PostgreSQL:
each example is a customer whose events are ingested, measured in SQL and drafted."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from billing_core.catalog import parse_catalog
from billing_core.clock import FixedClock
from billing_core.periods import BillingPeriod
from billing_core.services.drafting import draft_period
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import apply, ingest, write_jsonl
from tests.pricing.test_worked_examples import (
    OPENMETER_GRADUATED,
    OPENMETER_VOLUME,
    STRIPE_TIERS,
)

LAGO_VOLUME = [{"up_to": 10000, "unit_price": "0.0010", "flat_fee": "10"},
               {"up_to": 50000, "unit_price": "0.0008", "flat_fee": "10"},
               {"up_to": 100000, "unit_price": "0.0006", "flat_fee": "10"},
               {"up_to": None, "unit_price": "0.0004", "flat_fee": "10"}]
PACKAGE_100 = {"model": "package", "package_size": 100, "package_price": "5"}

# (name, charge, quantity, expected line amount): quantity is the sum of the events' units
EXAMPLES: list[tuple[str, dict[str, Any], str, str]] = [
    ("stripe_volume_6", {"price": {"model": "volume", "tiers": STRIPE_TIERS}}, "6", "39.00"),
    ("stripe_volume_25", {"price": {"model": "volume", "tiers": STRIPE_TIERS}}, "25",
     "150.00"),
    ("stripe_graduated_6", {"price": {"model": "graduated", "tiers": STRIPE_TIERS}}, "6",
     "41.50"),
    ("stripe_graduated_20", {"price": {"model": "graduated", "tiers": STRIPE_TIERS}}, "20",
     "127.50"),
    ("stripe_car_rental", {"price": {"model": "package", "package_size": 60,
                                     "package_price": "10"}}, "150", "30.00"),
    ("lago_package", {"price": PACKAGE_100, "free_threshold": 100}, "201", "10.00"),
    ("lago_volume", {"price": {"model": "volume", "tiers": LAGO_VOLUME}}, "65000", "49.00"),
    ("openmeter_graduated", {"price": {"model": "graduated", "tiers": OPENMETER_GRADUATED}},
     "22", "235.00"),
    ("openmeter_graduated_edge", {"price": {"model": "graduated",
                                            "tiers": OPENMETER_GRADUATED}}, "5.001", "150.00"),
    ("openmeter_volume", {"price": {"model": "volume", "tiers": OPENMETER_VOLUME}}, "16",
     "80.00"),
    ("openmeter_no_usage", {"price": {"model": "volume", "tiers": OPENMETER_VOLUME}}, "0",
     "100.00"),
    ("issue_tokens", {"price": {"model": "package", "package_size": 1000,
                                "package_price": "0.04"}}, "1234567", "49.40"),
]


def test_worked_examples_through_the_database(engine, tmp_path):
    document: dict[str, Any] = {
        "currency": "USD",
        "meters": [{"key": "units", "name": "Units", "event_name": "use",
                    "aggregation": "sum", "over_property": "n"}],
        "products": [{"key": name, "name": name, "charges": [{"meter": "units", **charge}]}
                     for name, charge, _, _ in EXAMPLES],
        "customers": [{"id": name, "name": name, "email": f"{name}@example.com"}
                      for name, *_ in EXAMPLES],
        "subscriptions": [{"id": name, "customer": name, "product": name,
                           "start": "2026-01-01"} for name, *_ in EXAMPLES],
    }
    apply(engine, parse_catalog(document))
    lines = []
    for name, _, quantity, _ in EXAMPLES:
        if Decimal(quantity):
            # two events per example, summing to the quantity (exact decimals as JSON text)
            half = Decimal(quantity) / 2
            for i, part in enumerate((half, Decimal(quantity) - half)):
                lines.append(f'{{"event_id": "{name}-{i}", "customer_id": "{name}", '
                             f'"event_name": "use", "timestamp": "2026-10-0{i + 1}T12:00:00Z", '
                             f'"metadata": {{"n": {part}}}}}')
    report = ingest(engine, [write_jsonl(tmp_path / "events.jsonl", lines)])
    assert report.total.rejected == 0, report.total.reasons
    result = draft_period(SqlUnitOfWork(engine), FixedClock(datetime(2026, 11, 10)),
                          BillingPeriod(2026, 10), store=False)
    got = {doc.subscription_id: (doc.lines[0].quantity, doc.lines[0].amount)
           for doc in result.documents}
    assert got == {name: (Decimal(quantity), Decimal(amount))
                   for name, _, quantity, amount in EXAMPLES}
