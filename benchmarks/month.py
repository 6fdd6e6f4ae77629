"""`--month`: the whole month the way operators run it, timed end to end.

Ingest every file, draft the month, finalize it (numbers, credits, e-mails queued),
render every document (a local pool of `workers` processes), then render again to show
that unchanged documents are never rendered twice. Reports the wall time, each stage's
share, the peak RSS of each stage, and the exact accounting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import stages
from benchmarks.measure import max_rss_mb, measured
from billing_core.periods import BillingPeriod
from billing_core.render.batch import LoggedRenderProgress, stream_in_processes, stream_in_steps
from billing_core.services.drafting import draft_period
from billing_core.services.finalizing import finalize_period
from billing_core.services.ingest import ingest_paths
from billing_core.services.rendering import render_documents
from billing_core.services.unit_of_work import SqlUnitOfWork


def run_month(engine: Any, paths: list[Path], period: BillingPeriod, out: Path,
              workers: int, log: Any) -> dict[str, Any]:
    from billing_core.ingest.progress import LoggedProgress

    timings: dict[str, dict[str, float]] = {}
    counts: dict[str, Any] = {}

    def renderer(jobs: Any) -> Any:
        progress = LoggedRenderProgress(log, every=30)
        return (stream_in_processes(jobs, workers, progress) if workers > 1
                else stream_in_steps(jobs, progress))

    with measured() as step:
        report = ingest_paths(SqlUnitOfWork(engine), list(paths), stages.CLOCK,
                              progress=LoggedProgress(log, every=30))
    timings["ingest"] = {"seconds": step.seconds, "peak_rss_mb": step.peak_rss_mb}
    counts["accounting"] = report.total.as_dict()
    log(f"ingested in {step.seconds:.1f} s; drafting")
    with measured() as step:
        drafted = draft_period(SqlUnitOfWork(engine), stages.CLOCK, period)
    timings["draft"] = {"seconds": step.seconds, "peak_rss_mb": step.peak_rss_mb}
    counts["drafts"] = drafted.created + drafted.updated
    log(f"drafted {counts['drafts']} in {step.seconds:.1f} s; finalizing")
    with measured() as step:
        finalized = finalize_period(SqlUnitOfWork(engine), stages.CLOCK, period)
    timings["finalize"] = {"seconds": step.seconds, "peak_rss_mb": step.peak_rss_mb}
    counts["invoices"] = len(finalized.invoices)
    log(f"finalized {counts['invoices']} in {step.seconds:.1f} s; rendering")
    with measured() as step:
        rendered = render_documents(SqlUnitOfWork(engine), stages.CLOCK, out, renderer,
                                    periods=[str(period)])
    timings["render"] = {"seconds": step.seconds, "peak_rss_mb": step.peak_rss_mb}
    counts["rendered"] = rendered.rendered
    log(f"rendered {rendered.rendered} in {step.seconds:.1f} s; rendering again")
    with measured() as step:
        again = render_documents(SqlUnitOfWork(engine), stages.CLOCK, out, renderer,
                                 periods=[str(period)])
    timings["render_again"] = {"seconds": step.seconds, "peak_rss_mb": step.peak_rss_mb}
    counts["rendered_again"] = again.rendered
    total = sum(t["seconds"] for t in timings.values())
    for t in timings.values():
        t["share"] = t["seconds"] / total if total else 0.0
    return {"wall_seconds": total, "stages": timings, "counts": counts,
            "peak_rss_mb": max_rss_mb(), "workers": workers}


def month_markdown(document: dict[str, Any]) -> str:
    params = document["params"]
    month = document["month"]
    lines = [f"# Whole month: {params['events']:,} events, {params['customers']:,} customers "
             f"({params['database']})", "",
             f"Wall time **{month['wall_seconds'] / 60:.1f} min**; peak RSS "
             f"{month['peak_rss_mb']:.0f} MB; {month['workers']} render process(es); "
             f"machine: {params['machine']}; event ids "
             f"{params.get('event_ids', 'counting up')}.", "",
             "| stage | seconds | share | peak RSS (MB) |", "|---|---:|---:|---:|"]
    for name, t in month["stages"].items():
        lines.append(f"| {name} | {t['seconds']:.1f} | {t['share']:.1%} | "
                     f"{t['peak_rss_mb']:.0f} |")
    counts = month["counts"]
    lines += ["", f"Accounting {counts['accounting']} (matches what was generated: "
                  f"{params['accounting_matches']}); {counts['drafts']} drafts, "
                  f"{counts['invoices']} invoices, {counts['rendered']} documents rendered, "
                  f"{counts['rendered_again']} rendered again."]
    return "\n".join(lines) + "\n"


def write_month(document: dict[str, Any], out: Path) -> list[Path]:
    paths = [out / "month.json", out / "month.md"]
    paths[0].write_text(json.dumps(document, indent=1, default=str))
    paths[1].write_text(month_markdown(document))
    return paths
