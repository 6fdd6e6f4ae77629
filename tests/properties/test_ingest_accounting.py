"""The ingest invariant for any mix of records and any chunk size (Hypothesis): every
record ends ingested, duplicate or rejected, and nothing is counted twice."""

import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.conftest import apply, ingest

KINDS = ["good", "again", "conflict", "bad_json", "no_id", "nobody", "bad_time", "blank"]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=60),
       chunk_size=st.integers(min_value=1, max_value=25))
def test_records_equal_ingested_plus_duplicates_plus_rejected(engine, issue_catalog, tmp_path,
                                                             kinds, chunk_size):
    apply(engine, issue_catalog)   # the same catalog again changes nothing
    tag = uuid.uuid4().hex[:8]
    lines, ids = [], []
    for i, kind in enumerate(kinds):
        event = {"event_id": f"{tag}-{i}", "customer_id": "cus_acme", "event_name": "api.call",
                 "timestamp": "2026-10-05T00:00:00Z", "metadata": {"n": i}}
        if kind in ("again", "conflict") and ids:
            event = dict(ids[i % len(ids)])
            if kind == "conflict":
                event["metadata"] = {"n": -1}
        elif kind == "nobody":
            event["customer_id"] = "cus_nobody"
        elif kind == "bad_time":
            event["timestamp"] = "yesterday"
        elif kind == "no_id":
            del event["event_id"]
        if kind == "bad_json":
            lines.append('{"event_id": ')
        elif kind == "blank":
            lines.append("")
        else:
            lines.append(json.dumps(event))
            if kind == "good":
                ids.append(event)
    path = tmp_path / f"{tag}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with engine.connect() as conn:
        before = conn.execute(text("SELECT COUNT(*) FROM event")).scalar_one()
    total = ingest(engine, [path], chunk_size=chunk_size).total
    records = sum(1 for k in kinds if k != "blank")
    assert total.records == records
    assert total.records == total.ingested + total.duplicates + total.rejected
    assert total.rejected == sum(total.reasons.values())
    with engine.connect() as conn:
        after = conn.execute(text("SELECT COUNT(*) FROM event")).scalar_one()
    assert after - before == total.ingested
    # Ingesting the same file again stores nothing more and accounts for every record.
    again = ingest(engine, [path], chunk_size=chunk_size).total
    assert (again.records, again.ingested) == (records, 0)
    assert again.duplicates == total.ingested + total.duplicates
