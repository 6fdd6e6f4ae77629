"""Rendering reads contents and records outcomes a page at a time: a run stopped part-way
keeps what it recorded, and a draft changed while it rendered is rendered again."""

from contextlib import suppress

from sqlalchemy import text

from billing_core.render.batch import stream_in_steps
from billing_core.services.rendering import render_documents
from tests.services import test_lifecycle
from tests.services.test_lifecycle import NOV_10, OCT, draft, uow

billed = test_lifecycle.billed      # October drafted for two customers


class Stopped(RuntimeError):
    pass


def test_a_run_stopped_after_a_page_keeps_it_and_renders_only_the_rest(billed, tmp_path):
    draft(billed, OCT)
    out = tmp_path / "out"
    pulled: list[int] = []

    def stops_after_one(jobs):
        for item in stream_in_steps(jobs):
            pulled.append(item.document_id)
            yield item
            raise Stopped("killed after the first document")

    with suppress(Stopped):
        render_documents(uow(billed), NOV_10, out, stops_after_one, periods=["2026-10"],
                         page=1)
    assert len(pulled) == 1
    with billed.connect() as conn:
        keyed = conn.execute(text("SELECT id FROM document WHERE rendered_key IS NOT NULL"
                                  )).scalars().all()
    assert keyed == pulled                     # the first page was recorded
    again = render_documents(uow(billed), NOV_10, out, stream_in_steps, periods=["2026-10"])
    assert (again.rendered, again.skipped) == (1, 1)
    assert render_documents(uow(billed), NOV_10, out, stream_in_steps,
                            periods=["2026-10"]).rendered == 0


def test_contents_are_read_a_page_at_a_time(billed, tmp_path):
    draft(billed, OCT)
    seen: list[str] = []

    def second_changes_before_it_is_read(jobs):
        for job in jobs:
            seen.append(job.content)
            with billed.begin() as conn:   # the other draft's content changes meanwhile
                conn.execute(text("UPDATE document SET content = replace(replace(content, "
                                  "'Acme Corp', 'Acme Corporation'), 'Beta LLC', 'Beta Ltd')"))
        return stream_in_steps([])

    render_documents(uow(billed), NOV_10, tmp_path / "out", second_changes_before_it_is_read,
                     periods=["2026-10"], page=1)
    assert len(seen) == 2
    assert "Acme Corporation" not in seen[0] and "Beta Ltd" not in seen[0]
    assert "Acme Corporation" in seen[1] or "Beta Ltd" in seen[1]   # read after the update


def test_a_draft_changed_while_it_renders_keeps_its_old_key(billed, tmp_path):
    draft(billed, OCT)
    out = tmp_path / "out"
    changed: list[int] = []

    def redrafted_meanwhile(jobs):
        for item in stream_in_steps(jobs):
            if not changed:               # a concurrent draft run revises this one
                changed.append(item.document_id)
                with billed.begin() as conn:
                    conn.execute(text("UPDATE document SET document_hash = :h WHERE id = :i"),
                                 {"h": "f" * 64, "i": item.document_id})
            yield item

    first = render_documents(uow(billed), NOV_10, out, redrafted_meanwhile,
                             periods=["2026-10"], page=1)
    assert first.rendered == 2
    again = render_documents(uow(billed), NOV_10, out, stream_in_steps, periods=["2026-10"])
    assert (again.rendered, again.skipped) == (1, 1)   # the changed one, written again
    with billed.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM document WHERE rendered_key IS NULL"
                                 )).scalar_one() == 0


def test_a_draft_issued_while_it_renders_gets_no_files_recorded(billed, tmp_path):
    from billing_core.services.finalizing import finalize_period

    draft(billed, OCT)
    out = tmp_path / "out"
    issued: list[bool] = []

    def finalized_meanwhile(jobs):
        for item in stream_in_steps(jobs):
            if not issued:               # another run issues the month meanwhile
                issued.append(True)
                finalize_period(uow(billed), NOV_10, OCT)
            yield item

    render_documents(uow(billed), NOV_10, out, finalized_meanwhile, periods=["2026-10"],
                     page=1)
    with billed.connect() as conn:   # the draft's files are not the issued invoice's
        assert conn.execute(text("SELECT COUNT(*) FROM document WHERE number IS NOT NULL "
                                 "AND files_dir IS NOT NULL")).scalar_one() == 0
    again = render_documents(uow(billed), NOV_10, out, stream_in_steps, periods=["2026-10"])
    assert again.rendered == 2
    assert sorted(p.name for p in (out / "2026-10").glob("*.pdf")) == [
        "INV-2026-000001.pdf", "INV-2026-000002.pdf"]
    assert not list((out / "2026-10" / "drafts").glob("*"))
