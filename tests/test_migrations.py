from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import billing_core.db.models  # noqa: F401
from billing_core.db.migrate import current_revision, ensure_schema, head_revision


def test_migrations_match_the_models(engine):
    def on_this_database(obj, name, type_, reflected, compare_to):
        """An index made for one database only (`ddl_if`) is not expected on another."""
        only = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return only is None or only == engine.dialect.name

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": on_this_database})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_commands_bring_an_empty_database_up_to_date(db_url):
    from billing_core.db.engine import get_engine

    db = get_engine(db_url)
    assert current_revision(db) is None
    ensure_schema(db)
    assert current_revision(db) == head_revision()
    ensure_schema(db)  # idempotent


def test_a_revision_0001_database_keeps_its_catalog_and_invoices(db_url):
    """Upgrading a database from the first schema: the catalog becomes a catalog version,
    and its invoices (numbered drafts in 0001) become drafts."""
    from sqlalchemy import text

    from billing_core.db.engine import get_engine
    from billing_core.db.migrate import upgrade
    from tests.conftest import load_catalog

    db = get_engine(db_url)
    upgrade(db, "0001")
    with db.begin() as conn:
        conn.execute(text(
            "INSERT INTO catalog_setting VALUES ('currency', 'USD'), "
            "('seller', '{\"name\": \"S\", \"email\": \"\", \"address\": \"\"}')"))
        conn.execute(text("INSERT INTO meter VALUES ('calls', 'Calls', '', 'api.call', "
                          "'count', NULL, 'calls', NULL)"))
        conn.execute(text("INSERT INTO product VALUES ('pro', 'Pro', '', '49.00')"))
        conn.execute(text("INSERT INTO charge (product_key, meter_key, position, "
                          "price_per_unit, free_threshold) VALUES ('pro', 'calls', 0, "
                          "'0.02', '1000')"))
        conn.execute(text("INSERT INTO customer VALUES ('c1', 'C1', 'c1@x.test', '')"))
        conn.execute(text("INSERT INTO subscription VALUES ('s1', 'c1', 'pro', '2026-01-01', "
                          "NULL)"))
        conn.execute(text(
            "INSERT INTO invoice (invoice_number, subscription_id, customer_id, period, "
            "sequence, currency, subtotal, total, issue_date, content_hash, document, "
            "revision, created_at, updated_at) VALUES ('INV-202610-00001', 's1', 'c1', "
            "'2026-10', 1, 'USD', '49.00', '49.00', '2026-11-01', 'abc', '{}', 1, "
            "'2026-11-01 00:00:00', '2026-11-01 00:00:00')"))
    upgrade(db)
    catalog = load_catalog(db)
    assert str(catalog.product("pro").charges[0].price_per_unit) == "0.02"
    assert [s.id for s in catalog.subscriptions] == ["s1"]
    with db.connect() as conn:
        rows = conn.execute(text("SELECT draft_ref, status, number FROM document")).all()
    assert [tuple(r) for r in rows] == [("DRAFT-INV-202610-00001", "draft", None)]


def test_revision_0004_records_what_issued_invoices_billed_per_charge(db_url, tmp_path):
    """Billed amounts are read back from the issued documents when upgrading to 0004 (late
    usage is billed against them)."""
    from datetime import datetime

    from alembic import command
    from sqlalchemy import text

    from billing_core.clock import FixedClock
    from billing_core.db.engine import get_engine
    from billing_core.db.migrate import _config, upgrade
    from billing_core.periods import BillingPeriod
    from billing_core.services.finalizing import finalize_period
    from billing_core.services.unit_of_work import SqlUnitOfWork
    from tests.conftest import DATA, apply, ingest, load_catalog_file, write_jsonl

    db = get_engine(db_url)
    upgrade(db)
    apply(db, load_catalog_file(DATA / "issue_catalog.yaml"))
    ingest(db, [write_jsonl(tmp_path / "e.jsonl", [
        {"event_id": f"e{i}", "customer_id": "cus_acme", "event_name": "api.call",
         "timestamp": "2026-10-05T00:00:00Z",
         "metadata": {"method": "POST", "endpoint": "/v1/chat"}} for i in range(2500)])])
    finalize_period(SqlUnitOfWork(db), FixedClock(datetime(2026, 11, 10)),
                    BillingPeriod(2026, 10))
    with db.connect() as conn:
        before = conn.execute(text("SELECT meter, amount FROM billed_usage ORDER BY id")).all()
    from decimal import Decimal

    assert ("api_calls", Decimal("30.00")) in [(m, Decimal(str(a))) for m, a in before]
    command.downgrade(_config(db), "0003")
    upgrade(db)
    with db.connect() as conn:
        after = conn.execute(text("SELECT meter, amount FROM billed_usage ORDER BY id")).all()
    assert [(m, str(a)) for m, a in after] == [(m, str(a)) for m, a in before]
