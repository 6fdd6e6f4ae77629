"""Batched rendering and the local process pool: same files, byte for byte."""

from dataclasses import replace

import pytest

from billing_core.render.batch import render_batch, render_in_processes, split_batches
from tests.render.test_render import make_invoice


@pytest.mark.parametrize(("items", "workers"), [(1, 1), (7, 2), (100, 2), (1000, 2), (5, 8)])
def test_batches_cover_every_item_once_in_order(items, workers):
    batches = split_batches(list(range(items)), workers)
    assert [i for batch in batches for i in batch] == list(range(items))
    assert all(0 < len(batch) <= 50 for batch in batches)
    # enough batches to keep every worker busy, when there are enough items
    assert len(batches) >= min(items, workers * 4) or len(batches[0]) == 50


def test_no_items_no_batches():
    assert split_batches([], 4) == []


def invoices(catalog, count):
    base = make_invoice(catalog)
    return [replace(base, invoice_number=f"INV-202610-{i:05d}") for i in range(1, count + 1)]


def test_a_process_pool_writes_the_same_bytes_as_this_process(issue_catalog, tmp_path):
    batch = invoices(issue_catalog, 6)
    here, pool = tmp_path / "here", tmp_path / "pool"
    assert render_batch(batch, here) == [i.invoice_number for i in batch]
    assert render_in_processes(batch, pool, workers=2) == [i.invoice_number for i in batch]
    written = sorted(p.relative_to(here) for p in here.rglob("*") if p.is_file())
    assert len(written) == 18
    assert written == sorted(p.relative_to(pool) for p in pool.rglob("*") if p.is_file())
    for path in written:
        assert (here / path).read_bytes() == (pool / path).read_bytes(), path
