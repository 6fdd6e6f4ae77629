"""Flow: the upcoming-invoice preview — what a customer's open month would bill now."""

from __future__ import annotations

from datetime import datetime

from prefect import flow
from prefect.artifacts import create_table_artifact

from billing_core.clock import parse_moment
from billing_core.documents.model import to_json
from billing_core.services.usage import preview_invoices
from flows.common import clock, unit_of_work


@flow(name="preview-invoice")
def preview_invoice(customer: str, as_of: str | None = None) -> list[dict]:
    """Draft the customer's invoices for the month containing `as_of` with the usage up to
    then, without numbering or storing anything, and publish them as an artifact.

    Args:
        customer: The customer id.
        as_of: Count usage up to this time (ISO 8601, e.g. 2026-11-15T12:00:00Z). Empty
            means now.
    """
    moment: datetime | None = parse_moment(as_of) if as_of else None
    docs = preview_invoices(unit_of_work(), clock(), customer, moment)
    rows = [{"subscription": d.subscription_id, "period": d.period,
             "line": line.description, "quantity": format(line.quantity, "f"),
             "amount": format(line.amount, "f"), "currency": d.currency}
            for d in docs for line in d.lines]
    create_table_artifact(table=rows or [{"note": "no active subscription"}],
                          key=f"preview-{customer.lower().replace('_', '-')}"[:64],
                          description=f"Upcoming invoice of {customer} (not issued)")
    return [to_json(d) for d in docs]
