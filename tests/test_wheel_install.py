"""A regular (not editable) install of the wheel renders invoices and migrates a database:
templates, stylesheet, fonts and migrations ship inside the package."""

import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import io, json, sys
    from datetime import date
    from decimal import Decimal
    from pathlib import Path
    import billing_core
    from billing_core.catalog import parse_catalog
    from billing_core.db.engine import get_engine
    from billing_core.db.migrate import current_revision, head_revision, upgrade
    from billing_core.documents.model import to_json
    from billing_core.invoicing import invoice_document
    from billing_core.periods import BillingPeriod
    from billing_core.render.files import write_document_files
    from billing_core.render.html import TEMPLATES_DIR
    from billing_core.render.pdf import PdfRenderer
    from pypdf import PdfReader

    catalog = parse_catalog({
        "currency": "EUR",
        "meters": [{"key": "calls", "name": "API calls", "event_name": "call",
                    "aggregation": "count"}],
        "products": [{"key": "p", "name": "Plan", "base_price": "10",
                      "charges": [{"meter": "calls", "price_per_unit": "0.5"}]}],
        "customers": [{"id": "c", "name": "Wheel Customer", "email": "c@x.test"}],
        "subscriptions": [{"id": "s", "customer": "c", "product": "p",
                           "start": "2026-01-01"}]})
    doc = invoice_document(catalog, catalog.subscriptions[0], BillingPeriod.parse("2026-10"),
                           {"calls": Decimal(7)}, [], "D").issued(
                               "INV-2026-000001", date(2026, 11, 4), date(2026, 12, 4))
    out = Path(sys.argv[1])
    write_document_files(json.dumps(to_json(doc)), out / "INV-2026-000001", PdfRenderer())
    text = PdfReader(out / "INV-2026-000001.pdf").pages[0].extract_text()
    engine = get_engine(f"sqlite:///{out / 'w.db'}")
    upgrade(engine)
    print(json.dumps({"package": billing_core.__file__, "templates": str(TEMPLATES_DIR),
                      "text": text, "migrated": current_revision(engine) == head_revision()}))
""")


def test_a_regular_install_renders_and_migrates(tmp_path):
    source = tmp_path / "source"   # built from a copy: the build leaves nothing in the tree
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("billing_core", "billing_cli", "flows", "benchmarks"):
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(source)], check=True,
                   capture_output=True)
    wheel = next(wheels.glob("billflow-*.whl"))
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    # The new environment sees this one's dependencies, but not its editable billflow.
    site = Path(sysconfig.get_paths()["purelib"])
    new_site = next((target / "lib").glob("python*/site-packages"))
    (new_site / "deps.pth").write_text(f"{site}\n")
    python = target / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True)
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run([str(python), "-c", SCRIPT, str(out)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["package"].startswith(str(new_site)), result["package"]
    assert result["templates"].startswith(str(new_site)), result["templates"]
    assert "Wheel Customer" in result["text"] and "€13.50" in result["text"]
    assert result["migrated"]
