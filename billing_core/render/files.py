"""Writing an invoice's .html, .pdf and .json files, atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from billing_core.invoice import Invoice, invoice_to_dict
from billing_core.render.html import render_html
from billing_core.render.pdf import PdfRenderer


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def invoice_paths(invoice: Invoice, out_dir: Path) -> dict[str, Path]:
    base = Path(out_dir) / str(invoice.period) / invoice.invoice_number
    return {kind: base.with_suffix(f".{kind}") for kind in ("html", "pdf", "json")}


def write_invoice_files(invoice: Invoice, out_dir: Path, renderer: PdfRenderer) -> dict[str, Path]:
    """DIR/<period>/<invoice_number>.html, .pdf and .json."""
    paths = invoice_paths(invoice, out_dir)
    document = json.dumps(invoice_to_dict(invoice), indent=2, ensure_ascii=False) + "\n"
    _write_atomic(paths["json"], document.encode())
    _write_atomic(paths["html"], render_html(invoice, inline_css=True).encode())
    _write_atomic(paths["pdf"], renderer.render(render_html(invoice, inline_css=False)))
    return paths
