"""One markdown table from several runs' report.json (for README.md).

    python -m benchmarks.summarize results/1m-sqlite results/1m-postgres ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _label(report: dict[str, Any]) -> str:
    p = report["params"]
    events = p["events"]
    size = f"{events // 1_000_000}M" if events % 1_000_000 == 0 else f"{events:,}"
    database = "PostgreSQL" if p["database"].startswith("postgresql") else "SQLite"
    return f"{size} {database}"


def _cell(stage: dict[str, Any]) -> str:
    rate = stage["per_second"]
    base = stage["baseline_per_second"]
    flag = "" if stage["met"] in (True, None) else " ✗"
    return f"{stage['ratio']:.2f}{flag} ({rate:,.0f} vs {base:,.0f}/s)" if rate >= 100 else \
        f"{stage['ratio']:.2f}{flag} ({rate:,.1f} vs {base:,.1f}/s)"


def table(reports: list[dict[str, Any]]) -> str:
    labels = [_label(r) for r in reports]
    lines = ["| stage | target | " + " | ".join(labels) + " |",
             "|---|---|" + "---|" * len(reports)]
    for name in reports[0]["stages"]:
        target = reports[0]["stages"][name]["target"] or ""
        cells = [_cell(r["stages"][name]) if name in r["stages"] else "" for r in reports]
        lines.append(f"| {name} | {target} | " + " | ".join(cells) + " |")
    seconds = [f"{sum(s['seconds'] for n, s in r['stages'].items() if n in ('ingest',)):.0f} s"
               for r in reports]
    lines.append("| ingest time (ours) | | " + " | ".join(seconds) + " |")
    rss = [f"{r['stages']['ingest']['peak_rss_mb']:.0f} MB" for r in reports]
    lines.append("| peak RSS during ingest | flat | " + " | ".join(rss) + " |")
    overhead = [f"{100 * r['stages']['end_to_end']['extra']['overhead_share']:.1f} %"
                for r in reports]
    lines.append("| orchestration overhead | < 10 % | " + " | ".join(overhead) + " |")
    agrees = ["yes" if r["stages"]["peer"]["extra"]["agrees"] else "**no**" for r in reports]
    lines.append("| DuckDB's usage equals ours | | " + " | ".join(agrees) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    folders = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    if not folders:
        print(__doc__, file=sys.stderr)
        return 2
    reports = [json.loads((f / "report.json").read_text()) for f in folders]
    print(table(reports), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
