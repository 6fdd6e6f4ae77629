"""A synthetic billing month for the benchmarks: a catalog of M customers and N events.

Realistic mix: five meters (count with a filter, two filtered sums, max, unique count) and a
`last` meter; customers' activity follows a Zipf-like curve (a few big ones, a long tail);
about 1% of lines are exact re-sends and 0.1% are bad (broken JSON, unknown customer,
missing id, bad timestamp). Deterministic for a seed.
"""

from __future__ import annotations

import random
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from billing_core.catalog import Catalog, parse_catalog
from billing_core.periods import BillingPeriod

DUPLICATE_RATE = 0.01
BAD_RATE = 0.001
ENDPOINTS = ("/v1/chat", "/v1/embeddings", "/v1/files", "/health", "/v2/beta")
METHODS = ("POST", "POST", "POST", "GET")
MODELS = ("small", "large")


def customer_id(index: int) -> str:
    return f"cus_{index:06d}"


def catalog_document(customers: int, period: BillingPeriod) -> dict[str, Any]:
    """The benchmark catalog: three products, every customer subscribed from before the
    period (so per-customer and per-subscription usage coincide)."""
    start = f"{period.start_date.year - 1}-01-01"
    return {
        "currency": "USD",
        "seller": {"name": "Benchmark Seller", "email": "billing@bench.test"},
        "meters": [
            {"key": "api_calls", "name": "API calls", "event_name": "api.call",
             "aggregation": "count",
             "filter": {"logic": "and",
                        "conditions": [{"key": "method", "operator": "equals", "value": "POST"},
                                       {"key": "endpoint", "operator": "contains",
                                        "value": "/v1/"}]}},
            {"key": "tokens_large", "name": "Large-model tokens", "event_name": "llm.completion",
             "aggregation": "sum", "over_property": "tokens",
             "filter": {"conditions": [{"key": "model", "operator": "equals",
                                        "value": "large"}]}},
            {"key": "tokens_small", "name": "Small-model tokens", "event_name": "llm.completion",
             "aggregation": "sum", "over_property": "tokens",
             "filter": {"conditions": [{"key": "model", "operator": "equals",
                                        "value": "small"}]}},
            {"key": "peak_users", "name": "Peak users", "event_name": "concurrent.users",
             "aggregation": "max", "over_property": "count"},
            {"key": "projects", "name": "Active projects", "event_name": "api.call",
             "aggregation": "unique_count", "over_property": "project"},
            {"key": "storage_gb", "name": "Storage", "event_name": "storage.snapshot",
             "aggregation": "last", "over_property": "gb"},
        ],
        "products": [
            {"key": "pro", "name": "Pro", "base_price": "49.00", "charges": [
                {"meter": "api_calls", "price_per_unit": "0.002", "free_threshold": 1000},
                {"meter": "tokens_large", "price_per_unit": "0.00004"},
                {"meter": "tokens_small", "price_per_unit": "0.000005"},
                {"meter": "peak_users", "price_per_unit": "0.50", "free_threshold": 10}]},
            {"key": "scale", "name": "Scale", "base_price": "499.00", "charges": [
                {"meter": "api_calls", "price_per_unit": "0.0015", "free_threshold": 50000},
                {"meter": "tokens_large", "price_per_unit": "0.000035",
                 "free_threshold": 1000000},
                {"meter": "tokens_small", "price_per_unit": "0.000004"},
                {"meter": "peak_users", "price_per_unit": "0.40", "free_threshold": 25},
                {"meter": "projects", "price_per_unit": "5.00", "free_threshold": 3},
                {"meter": "storage_gb", "price_per_unit": "0.023", "free_threshold": 100}]},
            {"key": "payg", "name": "Pay as you go", "charges": [
                {"meter": "api_calls", "price_per_unit": "0.0025"},
                {"meter": "tokens_large", "price_per_unit": "0.00005"}]},
        ],
        "customers": [{"id": customer_id(i), "name": f"Customer {i}",
                       "email": f"billing@c{i}.test"} for i in range(1, customers + 1)],
        "subscriptions": [{"id": f"sub_{i:06d}", "customer": customer_id(i),
                           "product": ("pro", "scale", "payg")[i % 3], "start": start}
                          for i in range(1, customers + 1)],
    }


def bench_catalog(customers: int, period: BillingPeriod) -> Catalog:
    return parse_catalog(catalog_document(customers, period), source="benchmark catalog")


@dataclass
class EventFiles:
    paths: list[Path]
    lines: int = 0
    events: int = 0
    duplicates: int = 0
    bad: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def _event_line(rng: random.Random, event_id: str, customer: str, ts: str) -> tuple[str, str]:
    kind = rng.random()
    head = f'{{"event_id": "{event_id}", "customer_id": "{customer}", "timestamp": "{ts}", '
    if kind < 0.60:
        return "api.call", (
            f'{head}"event_name": "api.call", "metadata": {{"method": '
            f'"{rng.choice(METHODS)}", "endpoint": "{rng.choice(ENDPOINTS)}", '
            f'"project": "p{rng.randrange(12)}", "latency_ms": {rng.randrange(3, 900)}}}}}')
    if kind < 0.93:
        return "llm.completion", (
            f'{head}"event_name": "llm.completion", "metadata": {{"tokens": '
            f'{rng.randrange(20, 4000)}, "model": "{rng.choice(MODELS)}"}}}}')
    if kind < 0.99:
        return "concurrent.users", (
            f'{head}"event_name": "concurrent.users", "metadata": {{"count": '
            f'{rng.randrange(1, 400)}}}}}')
    return "storage.snapshot", (
        f'{head}"event_name": "storage.snapshot", "metadata": {{"gb": '
        f'{rng.randrange(1, 900)}.{rng.randrange(100):02d}}}}}')


def _bad_line(rng: random.Random, n: int, customer: str) -> str:
    return rng.choice([
        f'{{"event_id": "bad_{n}", "customer_id": "{customer}", "event_name": "api.call"',
        f'{{"event_id": "bad_{n}", "customer_id": "cus_unknown", "event_name": "api.call", '
        f'"timestamp": "2000-01-01T00:00:00Z"}}',
        f'{{"customer_id": "{customer}", "event_name": "api.call"}}',
        f'{{"event_id": "bad_{n}", "customer_id": "{customer}", "event_name": "api.call", '
        f'"timestamp": "yesterday"}}',
    ])


def write_events(out: Path, events: int, customers: int, period: BillingPeriod,
                 seed: int = 1, files: int = 4, random_ids: bool = False) -> EventFiles:
    """Write `events` distinct events (plus re-sends and bad lines) as JSONL files. Event
    ids count up (`evt_0000000001`, as time-ordered ids such as ULIDs or UUIDv7 do), or
    with `random_ids` are random UUIDv4s; the rest of the month is the same either way."""
    rng = random.Random(seed)
    id_rng = random.Random(seed + 1_000_003)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jsonl"):
        old.unlink()
    weights = [1 / (rank ** 1.1) for rank in range(1, customers + 1)]
    cumulative, running = [], 0.0
    for w in weights:
        running += w
        cumulative.append(running)
    ids = [customer_id(i) for i in range(1, customers + 1)]
    rng.shuffle(ids)  # the big customers are not simply the first ids
    start = datetime(period.start_date.year, period.start_date.month, 1)
    seconds = int((period.end - period.start).total_seconds())
    result = EventFiles(paths=[out / f"events-{i + 1}.jsonl" for i in range(files)])
    recent: list[str] = []
    with ExitStack() as stack:
        handles = [stack.enter_context(open(p, "w", encoding="utf-8")) for p in result.paths]
        batch = 10_000
        for first in range(0, events, batch):
            count = min(batch, events - first)
            chosen = rng.choices(ids, cum_weights=cumulative, k=count)
            for offset, customer in enumerate(chosen):
                n = first + offset
                moment = start + timedelta(seconds=rng.randrange(seconds))
                ts = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{rng.randrange(1000):03d}Z"
                event_id = (str(uuid.UUID(int=id_rng.getrandbits(128), version=4))
                            if random_ids else f"evt_{n:010d}")
                kind, line = _event_line(rng, event_id, customer, ts)
                result.by_kind[kind] = result.by_kind.get(kind, 0) + 1
                handle = handles[n % files]
                handle.write(line + "\n")
                result.events += 1
                if len(recent) < 1000:
                    recent.append(line)
                else:
                    recent[rng.randrange(1000)] = line
                if rng.random() < DUPLICATE_RATE:
                    handle.write(rng.choice(recent) + "\n")
                    result.duplicates += 1
                if rng.random() < BAD_RATE:
                    handle.write(_bad_line(rng, n, customer) + "\n")
                    result.bad += 1
    result.lines = result.events + result.duplicates + result.bad
    return result
