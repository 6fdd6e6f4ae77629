"""Write a realistic month of usage events for the demo catalog.

    python examples/generate_events.py --period 2026-10 --events 300000 --out examples/data

Writes JSON Lines files (one gzipped), a CSV and a Parquet file. About 0.5% of the records
are exact re-sends (duplicates), and a few dozen are bad on purpose: broken JSON, unknown
customers, missing fields, bad timestamps, nested metadata, conflicting re-sends and
numbers sent as strings. The output is deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

CUSTOMERS = {  # relative activity: usage is skewed, as it is in real life
    "cus_acme": 1.0, "cus_globex": 6.0, "cus_initech": 0.4, "cus_umbrella": 0.8,
    "cus_hooli": 3.0, "cus_tyrell": 0.2,
}
ENDPOINTS = ["/v1/chat", "/v1/embeddings", "/v1/files", "/health", "/v2/beta", "/internal/ping"]
METHODS = ["POST"] * 7 + ["GET"] * 3
PROJECTS = [f"proj_{i}" for i in range(1, 9)]
PROJECT_COUNT = {"cus_acme": 2, "cus_globex": 7, "cus_initech": 3, "cus_umbrella": 4,
                 "cus_hooli": 8, "cus_tyrell": 2}


def _event(rng: random.Random, n: int, start: datetime, seconds: int) -> dict:
    customer = rng.choices(list(CUSTOMERS), weights=list(CUSTOMERS.values()))[0]
    ts = start + timedelta(seconds=rng.randrange(seconds), microseconds=rng.randrange(10**6))
    kind = rng.random()
    event = {"event_id": f"evt_{n:09d}", "customer_id": customer,
             "timestamp": ts.isoformat(timespec="milliseconds") + "Z"}
    if kind < 0.62:
        event["event_name"] = "api.call"
        event["metadata"] = {"method": rng.choice(METHODS), "endpoint": rng.choice(ENDPOINTS),
                             "project": rng.choice(PROJECTS[: PROJECT_COUNT[customer]]),
                             "latency_ms": rng.randint(3, 900)}
    elif kind < 0.94:
        event["event_name"] = "llm.completion"
        event["metadata"] = {"tokens": rng.randint(20, 4000),
                             "model": rng.choice(["small", "large"])}
    elif kind < 0.985:
        event["event_name"] = "concurrent.users"
        event["metadata"] = {"count": rng.randint(5, 400)}
    else:
        event["event_name"] = "storage.snapshot"
        event["metadata"] = {"gb": f"{rng.randint(10, 900)}.{rng.randint(0, 99):02d}"}
        event["metadata"]["gb"] = json.loads(event["metadata"]["gb"])  # a real number
    return event


BAD_LINES = [
    '{"event_id": "bad_1", "customer_id": "cus_acme", "event_name": "api.call"',  # broken JSON
    '{"event_id": "bad_2", "customer_id": "cus_nobody", "event_name": "api.call"}',
    '{"customer_id": "cus_acme", "event_name": "api.call"}',
    '{"event_id": "bad_4", "customer_id": "cus_acme", "event_name": "api.call", '
    '"timestamp": "yesterday"}',
    '{"event_id": "bad_5", "customer_id": "cus_acme", "event_name": "llm.completion", '
    '"metadata": {"tokens": {"in": 5}}}',
    '[1, 2, 3]',
    '{"event_id": "bad_7", "customer_id": "cus_acme", "event_name": "api.call", '
    '"metadata": {"tokens": NaN}}',
]


def generate(period: str, events: int, out: Path, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    year, month = map(int, period.split("-"))
    start = datetime(year, month, 1)
    end = datetime(year + (month == 12), month % 12 + 1, 1)
    seconds = int((end - start).total_seconds())
    out.mkdir(parents=True, exist_ok=True)
    all_events = [_event(rng, n, start, seconds) for n in range(events)]
    # Some numbers arrive as strings ("150"): stored, but not counted by sum/max/last.
    for e in rng.sample(all_events, max(1, events // 20000)):
        if e["event_name"] == "llm.completion":
            e["metadata"]["tokens"] = str(e["metadata"]["tokens"])
    parts = {"api-a.jsonl": [], "api-b.jsonl.gz": [], "batch.csv": [], "batch.parquet": []}
    names = list(parts)
    for e in all_events:
        parts[names[rng.choices(range(4), weights=[45, 35, 10, 10])[0]]].append(e)
    paths = []
    # JSON Lines, with duplicates (exact re-sends), conflicting re-sends and bad lines.
    for name in ("api-a.jsonl", "api-b.jsonl.gz"):
        lines = [json.dumps(e) for e in parts[name]]
        lines += [json.dumps(e) for e in rng.sample(parts[name], len(parts[name]) // 200)]
        for e in rng.sample(parts[name], 5):
            changed = json.loads(json.dumps(e))
            changed["customer_id"] = "cus_acme" if e["customer_id"] != "cus_acme" else "cus_hooli"
            lines.append(json.dumps(changed))
        lines += BAD_LINES
        rng.shuffle(lines)
        path = out / name
        data = ("\n".join(lines) + "\n").encode()
        # mtime=0: the gzip header would otherwise carry the time of writing
        path.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
        paths.append(path)
    # CSV with metadata.<key> columns.
    path = out / "batch.csv"
    keys = sorted({k for e in parts["batch.csv"] for k in e.get("metadata", {})})
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["event_id", "customer_id", "event_name", "timestamp",
                         *[f"metadata.{k}" for k in keys]])
        for e in parts["batch.csv"]:
            meta = e.get("metadata", {})
            writer.writerow([e["event_id"], e["customer_id"], e["event_name"], e["timestamp"],
                             *[meta.get(k, "") for k in keys]])
        writer.writerow(["bad_csv_1", "cus_acme", "api.call"])  # too few fields
    paths.append(path)
    # Parquet with a JSON metadata column.
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = parts["batch.parquet"]
    table = pa.table({
        "event_id": [e["event_id"] for e in rows],
        "customer_id": [e["customer_id"] for e in rows],
        "event_name": [e["event_name"] for e in rows],
        "timestamp": [e["timestamp"] for e in rows],
        "metadata": [json.dumps(e.get("metadata", {})) for e in rows],
    })
    path = out / "batch.parquet"
    pq.write_table(table, path)
    paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", default="2026-10")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--out", type=Path, default=Path("examples/data"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for path in generate(args.period, args.events, args.out, args.seed):
        print(path)


if __name__ == "__main__":
    main()
