import hashlib
import os
import subprocess
import sys
from pathlib import Path

from billing_core.catalog import load_catalog_file
from tests.conftest import EXAMPLES


def test_demo_catalog_is_valid_and_covers_the_aggregations():
    catalog = load_catalog_file(EXAMPLES / "catalog.yaml")
    assert len(catalog.customers) >= 5
    kinds = {m.aggregation for m in catalog.meters}
    assert {"count", "sum", "max"} <= kinds
    assert any(m.aggregation == "count" and m.filter for m in catalog.meters)


def _generate(out: Path, hash_seed: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    subprocess.run([sys.executable, str(EXAMPLES / "generate_events.py"), "--events", "3000",
                    "--out", str(out)], check=True, env=env, capture_output=True)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}


def test_generator_is_deterministic_for_a_seed(tmp_path):
    first = _generate(tmp_path / "a", "1")
    assert first == _generate(tmp_path / "b", "2")
    assert set(first) == {"api-a.jsonl", "api-b.jsonl.gz", "batch.csv", "batch.parquet"}
