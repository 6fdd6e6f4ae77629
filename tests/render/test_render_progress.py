"""Render progress: throttled log lines, every report to a watcher (a terminal's bar), and
`billing invoices render` telling how many documents are done."""

from typer.testing import CliRunner

from billing_cli.main import app
from billing_core.db.engine import get_engine
from billing_core.periods import BillingPeriod
from billing_core.render.batch import LoggedRenderProgress, watching_renders
from billing_core.services.drafting import draft_period
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import CLOCK, DATA, write_jsonl


def test_watchers_see_every_report_while_lines_are_throttled():
    now, lines, seen = [100.0], [], []
    progress = LoggedRenderProgress(lines.append, every=10, clock=lambda: now[0])
    with watching_renders(lambda done, total: seen.append((done, total))):
        progress(50, 200)
        now[0] = 110.0
        progress(100, 200)
        progress(200, 200)
    progress(200, 200)                      # after the block: no watcher any more
    assert seen == [(50, 200), (100, 200), (200, 200)]
    assert lines == ["rendered 100 of 200 documents (10.0/s)",
                     "rendered 200 of 200 documents (20.0/s)",
                     "rendered 200 of 200 documents (20.0/s)"]


def test_invoices_render_reports_documents_done(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("BILLING_DATABASE_URL", url)
    monkeypatch.setenv("BILLING_NOW", CLOCK.now().isoformat())
    runner = CliRunner()
    assert runner.invoke(app, ["catalog", "apply", str(DATA / "issue_catalog.yaml")]
                         ).exit_code == 0
    events = write_jsonl(tmp_path / "e.jsonl", [
        {"event_id": "a", "customer_id": "cus_acme", "event_name": "api.call",
         "timestamp": "2026-10-05T10:00:00Z"}])
    assert runner.invoke(app, ["ingest", str(events)]).exit_code == 0
    draft_period(SqlUnitOfWork(get_engine(url)), CLOCK, BillingPeriod.parse("2026-10"))
    result = runner.invoke(app, ["invoices", "render", "--period", "2026-10",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "rendered 1 of 1 documents" in result.stderr
    assert "rendered 1 document(s); 0 up to date" in result.stdout
