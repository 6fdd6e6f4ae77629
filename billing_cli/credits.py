"""`billing credits` (prepaid grants, entitlement balances, the ledger) and `billing alerts`."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

import typer
from rich.table import Table

from billing_cli.main import (
    Failed,
    _clock,
    _day,
    _echo_json,
    _uow,
    app,
    console,
    handled,
)
from billing_cli.output import safe

credits_app = typer.Typer(help="Credits: prepaid grants, included units per cycle, and the "
                               "ledger every balance is summed from.", no_args_is_help=True)
alerts_app = typer.Typer(help="Usage, spend and credit-balance alerts that fired.",
                         no_args_is_help=True)
app.add_typer(credits_app, name="credits")
app.add_typer(alerts_app, name="alerts")

AMOUNT = re.compile(r"\d{1,15}(\.\d{1,18})?")


def _amount(text: str) -> Decimal:
    if not AMOUNT.fullmatch(text.strip()):
        raise Failed(f"--amount must be a positive decimal like 500.00, got {text!r}")
    return Decimal(text.strip())


def _plain(value: Decimal) -> str:
    return format(value, "f")


@credits_app.command("grant")
@handled
def credits_grant(
    customer: Annotated[str, typer.Option(help="Customer id")],
    amount: Annotated[str, typer.Option(help="Amount, e.g. 500.00 (in the currency's "
                                             "minor units at most)")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code, e.g. USD")],
    priority: Annotated[int, typer.Option(help="0-100; lower numbers are used first")] = 50,
    expires: Annotated[str | None, typer.Option(
        help="Last day it can pay for, YYYY-MM-DD (default: never)")] = None,
    starts: Annotated[str | None, typer.Option(
        help="First day of usage it can pay for, YYYY-MM-DD (default: any period "
             "invoiced from now on)")] = None,
    applies_to: Annotated[str | None, typer.Option(
        help="Only these charges: meter keys and/or base_fee, comma-separated")] = None,
    reason: Annotated[str, typer.Option(help="Shown on invoices and in the ledger")] = "",
    reference: Annotated[str | None, typer.Option(
        help="Your reference: granting again with it does nothing")] = None,
) -> None:
    """Grant a prepaid monetary balance. It pays for eligible charges of invoices issued
    from now on (after discounts, before tax), lower priority first, then the earliest
    expiry, then the oldest."""
    from billing_core.services.credits import grant_credit

    targets = [t.strip() for t in (applies_to or "").split(",") if t.strip()]
    grant, created = grant_credit(
        _uow(), _clock(), customer, _amount(amount), currency, priority=priority,
        expires=_day(expires, "--expires"), effective_from=_day(starts, "--starts"),
        applies_to=targets, reason=reason, reference=reference)
    what = "granted" if created else "was already granted under this reference"
    typer.echo(f"credit grant #{grant.id} {what}: {_plain(grant.amount)} {grant.currency} to "
               f"{safe(customer)} (priority {grant.priority}"
               + (f", expires after {grant.expires}" if grant.expires else "") + ")")


@credits_app.command("void")
@handled
def credits_void(
    grant_id: Annotated[int, typer.Argument(help="Grant number (#) from `credits balance`")],
    reason: Annotated[str, typer.Option(help="Why it is taken away")],
) -> None:
    """Take away what is left of a monetary grant (a ledger entry; history stays)."""
    from billing_core.services.credits import void_grant

    left = void_grant(_uow(), _clock(), grant_id, reason)
    typer.echo(f"grant #{grant_id} voided: {_plain(left)} taken away")


@credits_app.command("balance")
@handled
def credits_balance(
    customer: Annotated[str, typer.Option(help="Customer id")],
    as_of: Annotated[str | None, typer.Option(
        help="Balances at the end of this day, YYYY-MM-DD (default today)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Each grant of a customer (money and included units) with what it holds: the sum of
    its ledger entries."""
    from billing_core.services.credits import credit_balances

    views = credit_balances(_uow(), _clock(), customer, _day(as_of, "--as-of"))
    if as_json:
        _echo_json([{"grant": v.grant.id, "name": v.grant.name, "kind": v.grant.kind,
                     "unit": v.unit, "granted": _plain(v.grant.amount),
                     "balance": _plain(v.balance), "status": v.status,
                     "priority": v.grant.priority, "starts": v.grant.effective_from,
                     "expires": v.grant.expires, "applies_to": v.grant.applies_to or [],
                     "source": v.grant.source, "period": v.grant.period} for v in views])
        return
    table = Table("#", "name", "kind", "granted", "balance", "status", "priority", "valid",
                  "applies to", title=f"Credits of {safe(customer)}")
    totals: dict[str, Decimal] = {}
    for v in views:
        g = v.grant
        if v.status == "active" and g.kind == "money":
            totals[v.unit] = totals.get(v.unit, Decimal(0)) + v.balance
        table.add_row(str(g.id), safe(g.name), g.kind, f"{_plain(g.amount)} {safe(v.unit)}",
                      _plain(v.balance), v.status, str(g.priority),
                      f"{g.effective_from or 'any period'} - {g.expires or 'no expiry'}",
                      safe(", ".join(g.applies_to or [])) or "all")
    console.print(table)
    for unit, total in sorted(totals.items()):
        typer.echo(f"available: {_plain(total)} {unit}")


@credits_app.command("ledger")
@handled
def credits_ledger(
    customer: Annotated[str, typer.Option(help="Customer id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every ledger entry of a customer: grants, applications (with the invoice), restores
    by credit notes, rollovers, expiries and voids."""
    from billing_core.services.credits import credit_ledger

    rows = credit_ledger(_uow(), customer)
    if as_json:
        _echo_json([{"entry": e.id, "grant": e.grant_id, "grant_name": g.name,
                     "kind": e.kind, "amount": _plain(e.amount),
                     "unit": g.currency or g.meter, "document": e.reference,
                     "period": e.period, "note": e.note, "at": e.created_at}
                    for e, g in rows])
        return
    table = Table("entry", "at (UTC)", "grant", "kind", "amount", "document", "period",
                  "note", title=f"Credit ledger of {safe(customer)}")
    for e, g in rows:
        table.add_row(str(e.id), f"{e.created_at:%Y-%m-%d %H:%M}", f"#{g.id} {safe(g.name)}",
                      e.kind, f"{_plain(e.amount)} {safe(g.currency or g.meter or '')}",
                      safe(e.reference or ""), e.period or "", safe(e.note or ""))
    console.print(table)


@alerts_app.command("list")
@handled
def alerts_list(
    customer: Annotated[str | None, typer.Option(help="Only this customer")] = None,
    period: Annotated[str | None, typer.Option(help="Only this cycle, YYYY-MM")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Alerts that fired (each rule at most once per cycle per customer), newest first."""
    from billing_core.services.alerts import list_alerts

    rows = list_alerts(_uow(), customer, period)
    if as_json:
        _echo_json([{"rule": r.rule_id, "kind": r.kind, "customer": r.customer_id,
                     "subject": r.subject, "period": r.period,
                     "threshold": _plain(r.threshold), "value": _plain(r.value),
                     "message": r.message, "fired_at": r.fired_at} for r in rows])
        return
    table = Table("fired (UTC)", "rule", "customer", "cycle", "subject", "threshold", "value",
                  "message", title="Alerts")
    for r in rows:
        table.add_row(f"{r.fired_at:%Y-%m-%d %H:%M}", safe(r.rule_id), safe(r.customer_id),
                      r.period, safe(r.subject), _plain(r.threshold), _plain(r.value),
                      safe(r.message))
    console.print(table)


@alerts_app.command("check")
@handled
def alerts_check() -> None:
    """Evaluate every alert rule now (ingest does this after every file batch)."""
    from billing_core.services.alerts import evaluate_alerts

    fired = evaluate_alerts(_uow(), _clock())
    typer.echo(f"{len(fired)} alert(s) fired" + "".join(
        f"\n  {safe(a.customer_id)}: {safe(a.message)}" for a in fired))
