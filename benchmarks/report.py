"""report.json, report.md and ratios.png from the stage results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.stages import StageResult

# stage: (lowest acceptable ratio of our throughput to the baseline's, the target as stated)
TARGETS: dict[str, tuple[float, str]] = {
    "ingest": (0.7, "≥ 0.7 × the same-schema load's throughput"),
    "aggregate": (1 / 1.5, "time ≤ 1.5 × the single GROUP BY"),
    "peer": (0.25, "ingest + aggregate ≥ 0.25 × DuckDB's throughput"),
    "render": (1 / 1.15, "≤ 1.15 × bare WeasyPrint's time on the same page"),
    "render_parallel": (1.8, "≥ 1.8 × speed-up with two processes over one"),
    "end_to_end": (0.9, "orchestration overhead < 10 % (at 1M events, 1,000 customers)"),
}


def report_document(stages: list[StageResult], peak_rss_mb: float,
                    params: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {"stages": {}, "peak_rss_mb": round(peak_rss_mb, 1),
                                "params": params}
    for stage in stages:
        target = TARGETS.get(stage.name)
        document["stages"][stage.name] = {
            "seconds": round(stage.seconds, 4),
            "per_second": round(stage.per_second, 2),
            "baseline_seconds": round(stage.baseline_seconds, 4),
            "baseline_per_second": round(stage.baseline_per_second, 2),
            "ratio": round(stage.ratio, 4),
            "unit": stage.unit,
            "ours": stage.ours,
            "baseline": stage.baseline,
            "target_ratio": round(target[0], 4) if target else None,
            "target": target[1] if target else None,
            "met": stage.ratio >= target[0] if target else None,
            "peak_rss_mb": round(stage.peak_rss_mb, 1) if stage.peak_rss_mb else None,
            **({"extra": stage.extra} if stage.extra else {}),
        }
    return document


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def markdown(document: dict[str, Any]) -> str:
    p = document["params"]
    lines = [
        f"# Billflow benchmark: {p['events']:,} events, {p['customers']:,} customers, "
        f"{p['database']}",
        "",
        f"Machine: {p['machine']}. Peak RSS of the whole run: {document['peak_rss_mb']} MB. "
        f"Event ids: {p.get('event_ids', 'counting up')}.",
        "",
        "ratio = our throughput / the baseline's (1.0 = as fast as the baseline; for "
        "render_parallel it is the speed-up of 2 processes over 1; for end_to_end, "
        "1 − ratio is the orchestration overhead).",
        "",
        "| stage | ours (s) | ours /s | baseline (s) | baseline /s | ratio | target | met |",
        "|---|---:|---:|---:|---:|---:|---|:-:|",
    ]
    for name, s in document["stages"].items():
        met = "—" if s["met"] is None else ("yes" if s["met"] else "**no**")
        lines.append(f"| {name} | {s['seconds']:.2f} | {_rate(s['per_second'])} {s['unit']} "
                     f"| {s['baseline_seconds']:.2f} | {_rate(s['baseline_per_second'])} "
                     f"| {s['ratio']:.2f} | {s['target'] or ''} | {met} |")
    lines += ["", "## What each side does", ""]
    for name, s in document["stages"].items():
        lines.append(f"- **{name}**: ours = {s['ours']}; baseline = {s['baseline']}.")
    lines += ["", "## Checks", ""]
    ingest = p.get("ingest_accounting", {})
    lines.append(f"- Ingest accounting: {json.dumps(ingest)}; generated "
                 f"{json.dumps(p.get('generated', {}))}; matches: "
                 f"{p.get('accounting_matches')}.")
    if "ingest" in document["stages"]:
        lines.append(f"- Peak RSS during our ingest: "
                     f"{document['stages']['ingest']['peak_rss_mb']} MB.")
    peer = document["stages"].get("peer", {}).get("extra", {})
    if peer:
        lines.append(f"- DuckDB's per-customer usage equals ours: {peer.get('agrees')}"
                     + ("" if peer.get("agrees") else f" ({peer.get('differences')})"))
        if peer.get("floors_ratio") is not None:
            lines.append(f"- The two floors (the same-schema load and the hand GROUP BY, "
                         f"{peer['floors_seconds']:.2f} s) against DuckDB: "
                         f"{peer['floors_ratio']:.2f} (the most any path that stores every "
                         f"event in this database could reach; ours "
                         f"{document['stages']['peer']['ratio']:.2f}).")
    render = document["stages"].get("render", {}).get("extra", {})
    if "same_page_weasyprint_seconds_per_invoice" in render:
        lines.append(f"- Render, per invoice: ours "
                     f"{1000 * render['ours_seconds_per_invoice']:.1f} ms; bare WeasyPrint "
                     f"on the same invoice page "
                     f"{1000 * render['same_page_weasyprint_seconds_per_invoice']:.1f} ms; "
                     f"the minimal page "
                     f"{1000 * render['minimal_page_seconds_per_invoice']:.1f} ms.")
    parallel = document["stages"].get("render_parallel", {}).get("extra", {})
    if "machine_two_process_speedup" in parallel:
        lines.append(f"- Two processes on this machine: a pure CPU loop ran "
                     f"{parallel['machine_two_process_speedup']:.2f} × as fast in two "
                     f"started processes as in one (2.00 on two free cores; context for "
                     f"render_parallel, itself noisy).")
    if "pool_server_start_seconds" in parallel:
        lines.append(f"- The fork server the render pools' workers come from started in "
                     f"{parallel['pool_server_start_seconds']:.2f} s (once per process, "
                     f"before either side of render_parallel).")
    e2e = document["stages"].get("end_to_end", {}).get("extra", {})
    if e2e:
        steps = e2e["steps"]
        lines.append(f"- End to end: steps called directly took draft (measure, price, "
                     f"record) {steps['draft']:.2f} s, render all "
                     f"{steps['render_all']:.2f} s ({steps['invoices']} invoices); the flow "
                     f"added {e2e['overhead_seconds']:.2f} s "
                     f"({100 * e2e['overhead_share']:.1f} %)"
                     + (f"; means of 2 each, in the order {e2e['order']} (direct "
                        + ", ".join(f"{s:.1f}" for s in e2e["direct_seconds"]) + " s; flow "
                        + ", ".join(f"{s:.1f}" for s in e2e["flow_seconds"]) + " s)"
                        if "order" in e2e else "") + ".")
    return "\n".join(lines) + "\n"


def chart(document: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(document["stages"])
    ratios = [document["stages"][n]["ratio"] for n in names]
    targets = [document["stages"][n]["target_ratio"] for n in names]
    colors = ["#2f855a" if document["stages"][n]["met"] else "#c05621" for n in names]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(names) + 1.5))
    ax.barh(names, ratios, color=colors)
    for i, target in enumerate(targets):
        if target is not None:
            ax.plot([target, target], [i - 0.4, i + 0.4], color="black", linewidth=2)
    for i, ratio in enumerate(ratios):
        ax.text(ratio, i, f" {ratio:.2f}", va="center")
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("our throughput / baseline throughput (log scale; black mark = target)")
    p = document["params"]
    ax.set_title(f"Billflow: {p['events']:,} events, {p['customers']:,} customers, "
                 f"{p['database']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(document: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json", out / "report.md", out / "ratios.png"]
    paths[0].write_text(json.dumps(document, indent=2, default=str) + "\n")
    paths[1].write_text(markdown(document))
    chart(document, paths[2])
    return paths
