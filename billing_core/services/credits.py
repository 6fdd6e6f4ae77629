"""Use cases: grant, void, list credits; and the credits side of drafting, finalizing and
crediting invoices.

The ledger (`credit_ledger`) is the source of truth: every grant, application (tied to
an invoice), restore (a credit note gave it back), rollover, expiry and void is an
entry, and what a grant holds is the sum of its entries. Applying credits is part of the
transaction that issues the invoice, with the customer's grants locked: a crash leaves
neither, a concurrent run waits, so no balance is spent twice. Drafts and previews
compute the credits that would apply and write nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from billing_core.catalog.credits import MAX_PRIORITY
from billing_core.catalog.models import BASE_FEE, Catalog, Subscription
from billing_core.clock import Clock
from billing_core.credits.entitlements import entitlement_cycle
from billing_core.credits.wallet import GrantBalance, Wallet, without_credits
from billing_core.cycles import cycle
from billing_core.db.models import CreditEntryRow, CreditGrantRow, DocumentRow
from billing_core.db.repositories.credits import GrantWithBalance
from billing_core.documents.model import Document, Line
from billing_core.money import EXACT, check_invoiceable, minor_units, round_money
from billing_core.periods import BillingPeriod
from billing_core.services.catalog import current_catalog
from billing_core.services.unit_of_work import SqlUnitOfWork

ZERO = Decimal(0)


class CreditError(ValueError):
    """A credit operation that cannot be done as asked."""


# --- granting and listing ----------------------------------------------------------------

def grant_credit(uow: SqlUnitOfWork, clock: Clock, customer: str, amount: Decimal,
                 currency: str, *, priority: int = 50, expires: date | None = None,
                 effective_from: date | None = None, applies_to: Iterable[str] = (),
                 reason: str = "", reference: str | None = None
                 ) -> tuple[CreditGrantRow, bool]:
    """Grant a customer a prepaid monetary balance. It pays for invoices issued from now
    on; `effective_from` and `expires` (its last day) limit it to usage periods that
    overlap them (a period it covers in part: that share of the charges).
    With a `reference`, granting again is
    a no-op (and a different grant under the same reference is refused). Returns (grant,
    newly created)."""
    currency = currency.strip().upper()
    try:
        check_invoiceable(currency)
    except ValueError as exc:
        raise CreditError(str(exc)) from None
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise CreditError(f"the amount must be a positive decimal, got {amount}")
    if round_money(amount, currency) != amount:
        raise CreditError(f"{format(amount, 'f')} is not an amount in {currency} (it has "
                          f"{minor_units(currency)} decimal places)")
    if amount >= Decimal(10) ** 15:
        raise CreditError("the amount is too large (at most 15 digits before the point)")
    if not 0 <= priority <= MAX_PRIORITY:
        raise CreditError(f"the priority must be from 0 to {MAX_PRIORITY}, got {priority}")
    today, now = clock.today(), clock.now()
    targets = sorted(set(applies_to))
    key = f"cli:{reference}" if reference else None
    with uow:
        catalog = current_catalog(uow)
        if customer not in {c.id for c in catalog.customers}:
            raise CreditError(f"unknown customer {customer!r}")
        start = effective_from
        if expires is not None and start is not None and expires < start:
            raise CreditError(f"it would expire ({expires}) before it starts ({start})")
        if expires is not None and expires < today:
            raise CreditError(f"it would have expired already ({expires} is before today, "
                              f"{today})")
        known = {m.key for m in catalog.meters} | {BASE_FEE}
        unknown = [t for t in targets if t not in known]
        if unknown:
            raise CreditError(f"unknown meter {unknown[0]!r} in --applies-to (meter keys, or "
                              f"base_fee)")
        values = {"customer_id": customer, "kind": "money", "currency": currency,
                  "amount": amount, "priority": priority, "effective_from": start,
                  "expires": expires, "applies_to": targets or None,
                  "name": reason.strip() or "Prepaid credit", "source": "cli", "key": key,
                  "created_at": now}
        if key is not None:
            existing = uow.credits.grant_by_key(key)
            if existing is not None:
                same = (existing.customer_id, existing.currency, existing.amount,
                        existing.priority, existing.expires, existing.applies_to or None) == \
                    (customer, currency, amount, priority, expires, targets or None)
                if not same:
                    raise CreditError(f"reference {reference!r} was used for another grant "
                                      f"(#{existing.id}); choose another reference")
                return existing, False
        grant_id = uow.credits.add_grant(values, note=reason.strip())
        uow.commit()
        created = uow.credits.grant(grant_id)
    assert created is not None
    return created, True


def void_grant(uow: SqlUnitOfWork, clock: Clock, grant_id: int, reason: str) -> Decimal:
    """Take away what is left of a monetary grant (an entry, the grant stays)."""
    if not reason.strip():
        raise CreditError("a reason is required to void a grant")
    with uow:
        grant = uow.credits.grant(grant_id)
        if grant is None or grant.kind != "money":
            raise CreditError(f"no monetary credit grant #{grant_id}")
        uow.credits.lock_customers([grant.customer_id])
        left = uow.credits.balance(grant_id)
        if left <= 0:
            raise CreditError(f"grant #{grant_id} holds nothing to void")
        uow.credits.add_entries([{"grant_id": grant_id, "customer_id": grant.customer_id,
                                  "kind": "void", "amount": -left, "note": reason.strip(),
                                  "created_at": clock.now()}])
        uow.commit()
    return left


@dataclass(frozen=True)
class GrantView:
    grant: CreditGrantRow
    balance: Decimal
    status: str          # active | used | expired | void | future

    @property
    def unit(self) -> str:
        return self.grant.currency or self.grant.meter or ""


def _status(grant: CreditGrantRow, balance: Decimal, entries: list[CreditEntryRow],
            on: date) -> str:
    if any(e.kind == "void" for e in entries) and balance == 0:
        return "void"
    if grant.effective_from is not None and grant.effective_from > on:
        return "future"
    if grant.expires is not None and grant.expires < on:
        return "expired"
    if balance <= 0:
        return "used"
    return "active"


def credit_balances(uow: SqlUnitOfWork, clock: Clock, customer: str,
                    as_of: date | None = None) -> list[GrantView]:
    """Every grant of a customer and what it held at the end of `as_of` (default today):
    the sum of its entries up to then."""
    on = as_of or clock.today()
    end = datetime.combine(on + timedelta(days=1), time())
    with uow.read():
        catalog = current_catalog(uow)
        if customer not in {c.id for c in catalog.customers}:
            raise CreditError(f"unknown customer {customer!r}")
        grants = [g.grant for g in uow.credits.grants([customer])]
        entries = uow.credits.entries(customer)
    by_grant: dict[int, list[CreditEntryRow]] = {}
    for entry in entries:
        if entry.created_at < end:
            by_grant.setdefault(entry.grant_id, []).append(entry)
    views = []
    for grant in grants:
        if grant.created_at >= end:
            continue
        mine = by_grant.get(grant.id or 0, [])
        balance = ZERO
        for entry in mine:
            balance = EXACT.add(balance, entry.amount)
        views.append(GrantView(grant, balance, _status(grant, balance, mine, on)))
    return views


def credit_ledger(uow: SqlUnitOfWork, customer: str
                  ) -> list[tuple[CreditEntryRow, CreditGrantRow]]:
    with uow.read():
        catalog = current_catalog(uow)
        if customer not in {c.id for c in catalog.customers}:
            raise CreditError(f"unknown customer {customer!r}")
        grants = {g.grant.id: g.grant for g in uow.credits.grants([customer])}
        return [(e, grants[e.grant_id]) for e in uow.credits.entries(customer)]


# --- drafting: what would apply -----------------------------------------------------------

def recurring_key(subscription_id: str, index: int, period: str) -> str:
    return f"recurring:{subscription_id}:{index}:{period}"


def entitlement_key(subscription_id: str, meter: str, period: str) -> str:
    return f"entitlement:{subscription_id}:{meter}:{period}"


def recurring_grants(catalog: Catalog, sub: Subscription, period: BillingPeriod,
                     now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """(key, grant values) of the subscription's recurring credits for its cycle of
    `period` (valid from the cycle's first day for `expires_after_cycles` cycles)."""
    if not sub.credits:
        return []
    tz = catalog.timezone(sub.customer)
    here = cycle(sub, period, tz)
    currency = catalog.currency_of(catalog.product(sub.product, on=here.start))
    found = []
    for i, credit in enumerate(sub.credits):
        expires = None
        if credit.expires_after_cycles is not None:
            last = cycle(sub, period.shift(credit.expires_after_cycles - 1), tz)
            expires = last.end - timedelta(days=1)
        found.append((recurring_key(sub.id, i, str(period)), {
            "customer_id": sub.customer, "kind": "money", "currency": currency,
            "subscription_id": sub.id, "period": str(period), "amount": credit.amount,
            "priority": credit.priority, "effective_from": here.start, "expires": expires,
            "applies_to": list(credit.applies_to) or None, "name": credit.name,
            "source": "recurring", "created_at": now}))
    return found


def _balance_of(found: GrantWithBalance) -> GrantBalance:
    g = found.grant
    return GrantBalance(g.id, g.key, g.name, g.currency or "", g.priority, g.effective_from,
                        g.expires, g.created_at, tuple(g.applies_to or ()), found.balance)


def wallets(uow: SqlUnitOfWork, catalog: Catalog,
            cycles: Iterable[tuple[Subscription, BillingPeriod]], now: datetime
            ) -> dict[str, Wallet]:
    """Each customer's wallet: its monetary grants as they stand, and the recurring
    grants of these cycles that are not written yet (inside the caller's transaction)."""
    chosen = list(cycles)
    customers = {sub.customer for sub, _ in chosen}
    grants: dict[str, list[GrantBalance]] = {c: [] for c in customers}
    existing_keys = set()
    for found in uow.credits.grants(customers, "money"):
        if found.grant.key:
            existing_keys.add(found.grant.key)
        if found.balance > 0:
            grants[found.grant.customer_id].append(_balance_of(found))
    for sub, period in chosen:
        for key, values in recurring_grants(catalog, sub, period, now):
            if key not in existing_keys:
                existing_keys.add(key)
                grants[sub.customer].append(GrantBalance(
                    None, key, values["name"], values["currency"], values["priority"],
                    values["effective_from"], values["expires"], values["created_at"],
                    tuple(values["applies_to"] or ()), values["amount"]))
    return {customer: Wallet(found) for customer, found in grants.items()}


MAX_SIMULATED = 24


def entitlement_history(uow: SqlUnitOfWork, catalog: Catalog,
                        subs: Iterable[Subscription], period: BillingPeriod
                        ) -> tuple[dict[tuple[str, str], dict[str, dict[str, Decimal]]],
                                   list[tuple[Subscription, BillingPeriod]]]:
    """The recorded unit grants of the subscriptions' recent cycles, and the earlier
    cycles (not issued) whose usage must be measured to know what rolls into `period`."""
    from billing_core.invoicing import window_of

    chosen = [s for s in subs if s.entitlements]
    if not chosen:
        return {}, []
    periods = [str(period.shift(-k)) for k in range(MAX_SIMULATED + 1)]
    recorded: dict[tuple[str, str], dict[str, dict[str, Decimal]]] = {}
    for (sub_id, label, meter), kinds in uow.credits.entitlement_totals(
            [s.id for s in chosen], periods).items():
        recorded.setdefault((sub_id, label), {})[meter] = kinds
    to_measure = []
    for sub in chosen:
        for k in range(1, MAX_SIMULATED + 1):
            earlier = period.shift(-k)
            if (sub.id, str(earlier)) in recorded or window_of(catalog, sub, earlier) is None:
                break
            to_measure.append((sub, earlier))
    return recorded, to_measure


def rollover_into(sub: Subscription, period: BillingPeriod,
                  recorded: Mapping[tuple[str, str], Mapping[str, Mapping[str, Decimal]]],
                  measured: Mapping[str, Mapping[str, Decimal]]) -> dict[str, Decimal]:
    """What each entitlement brings into `period` from the cycle before: the rollover
    recorded when that cycle was issued, or, for cycles not issued yet, as it would be
    (their measured usage, `measured[period][meter]`)."""
    chain = []
    earlier = period.shift(-1)
    start: dict[str, Decimal] = {e.meter: ZERO for e in sub.entitlements}
    for _ in range(MAX_SIMULATED):
        kinds = recorded.get((sub.id, str(earlier)))
        if kinds is not None:
            start = {e.meter: -kinds.get(e.meter, {}).get("rollover", ZERO)
                     for e in sub.entitlements}
            break
        if str(earlier) not in measured:
            break
        chain.append(earlier)
        earlier = earlier.shift(-1)
    rollover = start
    for past in reversed(chain):
        usage = measured[str(past)]
        rollover = {e.meter: entitlement_cycle(e, rollover.get(e.meter, ZERO),
                                               usage.get(e.meter, ZERO)).rollover_out
                    for e in sub.entitlements}
    return rollover


def covered_in(recorded: Mapping[tuple[str, str], Mapping[str, Mapping[str, Decimal]]],
               sub_id: str, period: str) -> dict[str, Decimal] | None:
    """For an issued cycle: the units its invoice's entitlements cover now (applied less
    restored), per meter; None when the cycle has no unit grant."""
    kinds = recorded.get((sub_id, period))
    if kinds is None:
        return None
    return {meter: -EXACT.add(k.get("apply", ZERO), k.get("restore", ZERO))
            for meter, k in kinds.items()}


# --- finalizing: what applies ------------------------------------------------------------

class CreditsChanged(RuntimeError):
    """The entitlement balances changed between drafting and issuing: run again."""


def prepare_issue(uow: SqlUnitOfWork, catalog: Catalog,
                  cycles: Iterable[tuple[Subscription, BillingPeriod]], now: datetime
                  ) -> None:
    """Inside the issuing transaction, before any invoice: lock the customers' grants and
    write the recurring grants of the cycles being issued (once: they have keys)."""
    chosen = list(cycles)
    uow.credits.lock_customers({sub.customer for sub, _ in chosen})
    for sub, period in chosen:
        for key, values in recurring_grants(catalog, sub, period, now):
            if uow.credits.grant_by_key(key) is None:
                uow.credits.add_grant({**values, "key": key},
                                      note=f"recurring credit of {sub.id}")


def apply_on_issue(uow: SqlUnitOfWork, sub: Subscription, doc: Document, document_id: int,
                   now: datetime, wallets: dict[str, Wallet]) -> Document:
    """Inside the issuing transaction: write the invoice's entitlement entries, apply
    the customer's monetary credits (its wallet from `load_wallets`, spent invoice after
    invoice) and return the invoice with its credit lines."""
    _entitlements_on_issue(uow, sub, doc, document_id, now)
    issued, used = wallets[sub.customer].apply(without_credits(doc))
    uow.credits.add_entries([
        {"grant_id": grant.id, "customer_id": sub.customer, "kind": "apply",
         "amount": -amount, "document_id": document_id, "reference": doc.number,
         "period": doc.period, "note": "", "created_at": now}
        for grant, amount in used])
    return issued


def load_wallets(uow: SqlUnitOfWork, customers: Iterable[str],
                 wallets: dict[str, Wallet]) -> None:
    """Fill `wallets` for these customers from one read of their monetary grants, inside
    the issuing transaction (after recurring grants and restores are written)."""
    wanted = set(customers) - set(wallets)
    held: dict[str, list[GrantWithBalance]] = {c: [] for c in wanted}
    for found in uow.credits.grants(wanted, "money"):
        held[found.grant.customer_id].append(found)
    for customer, grants in held.items():
        wallets[customer] = Wallet([_balance_of(g) for g in grants if g.balance > 0])


def _entitlements_on_issue(uow: SqlUnitOfWork, sub: Subscription, doc: Document,
                           document_id: int, now: datetime) -> None:
    for line in doc.lines:
        detail = (line.detail or {}).get("entitlement") if line.kind == "usage" else None
        if detail is None or line.meter is None or line.usage_period != doc.period:
            continue
        key = entitlement_key(sub.id, line.meter, doc.period)
        covered = Decimal(detail["covered"])
        grant = uow.credits.grant_by_key(key)
        entries: list[dict[str, Any]] = []
        base = {"customer_id": sub.customer, "period": doc.period, "created_at": now}
        if grant is None:
            balance = Decimal(detail["balance"])
            grant_id = uow.credits.add_grant({
                "customer_id": sub.customer, "kind": "units", "meter": line.meter,
                "subscription_id": sub.id, "period": doc.period, "amount": balance,
                "priority": 0, "effective_from": doc.period_start,
                "expires": doc.period_end - timedelta(days=1), "name": line.description,
                "source": "entitlement", "key": key, "created_at": now},
                note=f"{detail['units']} units + {detail['rollover_in']} rolled over")
            rolled, expired = Decimal(detail["rollover_out"]), EXACT.subtract(
                EXACT.subtract(balance, covered), Decimal(detail["rollover_out"]))
            entries.append({**base, "grant_id": grant_id, "kind": "apply", "amount": -covered,
                            "document_id": document_id, "reference": doc.number,
                            "note": ""})
            if rolled > 0:
                entries.append({**base, "grant_id": grant_id, "kind": "rollover",
                                "amount": -rolled, "note": "to the next cycle"})
            if expired > 0:
                entries.append({**base, "grant_id": grant_id, "kind": "expire",
                                "amount": -expired, "note": "unused at the end of the cycle"})
        else:   # a replacement invoice of an issued cycle: the units it covered, again
            assert grant.id is not None
            left = uow.credits.balance(grant.id)
            if covered > left:
                raise CreditsChanged(f"the included {line.description} of {sub.id} for "
                                     f"{doc.period} changed while issuing; run again")
            entries.append({**base, "grant_id": grant.id, "kind": "apply", "amount": -covered,
                            "document_id": document_id, "reference": doc.number, "note": ""})
            if left > covered:
                entries.append({**base, "grant_id": grant.id, "kind": "expire",
                                "amount": -(left - covered), "document_id": document_id,
                                "note": "not used again by the replacement invoice"})
        uow.credits.add_entries(entries)


def restore_for(uow: SqlUnitOfWork, invoice: DocumentRow, credited: Iterable[Line],
                reference: str, today: date, now: datetime, final: bool) -> None:
    """Give back what the credited lines of `invoice` took from grants (one restore per
    grant and invoice). With `final` (a void or a credit note, no replacement), what
    cannot be used any more (units of a closed cycle, an expired grant) expires at once."""
    assert invoice.id is not None
    applied = [e for e in uow.credits.entries(document_id=invoice.id) if e.kind == "apply"]
    if not applied:
        return
    restored = {e.grant_id for e in uow.credits.entries(document_id=invoice.id)
                if e.kind == "restore"}
    lines = list(credited)
    money = {line.detail.get("grant") for line in lines
             if line.kind == "credit" and line.detail}
    units = {line.meter for line in lines
             if line.kind == "usage" and line.detail and "entitlement" in line.detail}
    entries = []
    for entry in applied:
        if entry.grant_id in restored:
            continue
        grant = uow.credits.grant(entry.grant_id)
        assert grant is not None
        if not ((grant.kind == "money" and grant.id in money) or
                (grant.kind == "units" and grant.meter in units)):
            continue
        base = {"grant_id": entry.grant_id, "customer_id": entry.customer_id,
                "document_id": invoice.id, "period": entry.period, "created_at": now}
        entries.append({**base, "kind": "restore", "amount": -entry.amount,
                        "reference": reference, "note": f"{reference} credits {invoice.number}"})
        lapsed = grant.kind == "units" or (grant.expires is not None and grant.expires < today)
        if final and lapsed:
            entries.append({**base, "kind": "expire", "amount": entry.amount,
                            "reference": reference,
                            "note": "given back after its cycle or expiry: not usable"})
    uow.credits.add_entries(entries)


def expire_lapsed(uow: SqlUnitOfWork, catalog: Catalog, customers: Iterable[str],
                  period: BillingPeriod, now: datetime) -> int:
    """Write off what is left of monetary grants that no cycle after `period` can use."""
    chosen = set(customers)
    subs = [s for s in catalog.subscriptions if s.customer in chosen]
    next_start: dict[str, date] = {}
    for sub in subs:
        start = cycle(sub, period.shift(1), catalog.timezone(sub.customer)).start
        next_start[sub.customer] = min(next_start.get(sub.customer, start), start)
    entries = []
    for found in sorted(uow.credits.grants(chosen, "money"),
                        key=lambda g: (g.grant.customer_id, g.grant.id or 0)):
        customer = found.grant.customer_id
        before = next_start.get(customer, period.end_date)
        if found.grant.expires is not None and found.grant.expires < before \
                and found.balance > 0:
            entries.append({"grant_id": found.grant.id, "customer_id": customer,
                            "kind": "expire", "amount": -found.balance,
                            "period": str(period), "note": "expired unused",
                            "created_at": now})
    uow.credits.add_entries(entries)
    return len(entries)
