"""Writing a document's .json, .html and .pdf files, atomically, readable by all (0644).

The files are rendered from the stored JSON document alone. Their SHA-256 hashes are
returned so that issued documents can be recorded by what was written.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from billing_core.documents.model import from_json
from billing_core.einvoice.facturx import cii_xml
from billing_core.render.html import render_html
from billing_core.render.pdf import PdfRenderer

SUFFIXES = ("json", "html", "pdf")


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_leftovers(folder: Path) -> int:
    """Remove temporary files that a killed writer left in `folder`; returns how many."""
    removed = 0
    if folder.is_dir():
        for kind in (*SUFFIXES, "xml"):
            for path in folder.glob(f".*.{kind}.*"):
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def document_paths(base: Path) -> dict[str, Path]:
    """base = DIR/<period>/<number> (or DIR/<period>/drafts/<reference>)."""
    return {kind: base.with_name(f"{base.name}.{kind}") for kind in SUFFIXES}


def document_files(content: str, renderer: PdfRenderer) -> dict[str, bytes]:
    """The files' bytes for a stored JSON document: .json, .html, .pdf, and for an issued
    e-invoice (`einvoice: factur-x`) the Factur-X .xml, also embedded in the PDF/A-3."""
    data = json.loads(content)
    doc = from_json(data)
    xml = cii_xml(doc) if doc.einvoice == "factur-x" and not doc.is_draft else None
    files = {
        "json": (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode(),
        "html": render_html(doc, inline_css=True).encode(),
        "pdf": renderer.render(render_html(doc, inline_css=False), xml, doc.issue_date),
    }
    if xml is not None:
        files["xml"] = xml
    return files


def write_document_files(content: str, base: Path, renderer: PdfRenderer) -> dict[str, str]:
    """Render and write the files; returns their SHA-256 hashes by suffix."""
    hashes = {}
    for kind, data in document_files(content, renderer).items():
        write_atomic(base.with_name(f"{base.name}.{kind}"), data)
        hashes[kind] = hashlib.sha256(data).hexdigest()
    return hashes
