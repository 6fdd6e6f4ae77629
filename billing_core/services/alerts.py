"""Use case: evaluate the catalog's alert rules and record the ones that fire.

Rules are evaluated for the cycles that still take usage: each subscription's cycle that
holds now, and the cycle before while it is in its grace period. The usage and the amount
to date come from the same batched SQL metering and pricing as a preview
(`draft_period(store=False)`: one query per meter over all customers, nothing written);
a grant's remaining balance is its ledger sum less what the open cycles would take from
it. A rule fires at most once per customer, subject (meter, currency or grant) and cycle:
the alerts table's unique key decides, so two evaluations at once record it once. Each
new alert queues, in the same transaction, an e-mail to the customer's billing addresses
and, when the rule has a `webhook`, an HTTP POST, both sent by the delivery outbox.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from billing_core.catalog.credits import AlertRule
from billing_core.catalog.models import Catalog, Subscription
from billing_core.clock import Clock
from billing_core.cycles import cycle_containing, period_state
from billing_core.db.models import AlertRow
from billing_core.documents.model import Document, money_text
from billing_core.money import EXACT
from billing_core.periods import BillingPeriod
from billing_core.services.catalog import current_catalog
from billing_core.services.drafting import draft_period
from billing_core.services.unit_of_work import SqlUnitOfWork

ZERO = Decimal(0)


@dataclass(frozen=True)
class Reading:
    """What one customer's open cycle shows: usage per meter, the amount to date per
    currency (after discounts, before credits and tax), what each grant would hold."""

    customer: str
    period: str
    usage: dict[str, Decimal]
    spend: dict[str, Decimal]
    grants: dict[int, tuple[str, str, Decimal]]      # id -> (name, currency, balance)


def open_periods(catalog: Catalog, subs: Iterable[Subscription], now: datetime
                 ) -> dict[str, list[BillingPeriod]]:
    """Per subscription: the cycles that still take usage at `now`."""
    found: dict[str, list[BillingPeriod]] = {}
    for sub in subs:
        current = cycle_containing(sub, now, catalog.timezone(sub.customer))
        periods = [current.period]
        before = current.period.shift(-1)
        if period_state(catalog, before, now) == "grace":
            periods.insert(0, before)
        found[sub.id] = periods
    return found


def _readings(uow: SqlUnitOfWork, clock: Clock, catalog: Catalog, customers: set[str],
              now: datetime) -> list[Reading]:
    subs = [s for s in catalog.subscriptions if s.customer in customers]
    wanted = open_periods(catalog, subs, now)
    by_period: dict[BillingPeriod, set[str]] = defaultdict(set)
    for sub in subs:
        for period in wanted.get(sub.id, []):
            by_period[period].add(sub.customer)
    docs: dict[tuple[str, str], list[Document]] = defaultdict(list)
    for period, chosen in sorted(by_period.items()):
        result = draft_period(uow, clock, period, sorted(chosen), until=now, store=False)
        for doc in result.documents:
            if period in wanted.get(doc.subscription_id or "", []):
                docs[(doc.customer_id, str(period))].append(doc)
    with uow.read():
        balances = {g.grant.id: g for g in uow.credits.grants(customers, "money")}
    today = clock.today()
    readings = []
    for (customer, label), found in sorted(docs.items()):
        usage: dict[str, Decimal] = {}
        spend: dict[str, Decimal] = {}
        projected: dict[int, Decimal] = {}
        for doc in found:
            for line in doc.lines:
                if line.kind == "usage" and line.meter and line.usage_period == label:
                    usage[line.meter] = EXACT.add(usage.get(line.meter, ZERO), line.quantity)
                if line.kind == "credit":
                    grant_id = (line.detail or {}).get("grant")
                    if grant_id is not None:
                        projected[grant_id] = Decimal((line.detail or {})["balance_after"])
                    continue
                spend[doc.currency] = EXACT.add(spend.get(doc.currency, ZERO), line.amount)
        grants = {}
        for grant_id, found_grant in balances.items():
            g = found_grant.grant
            if g.customer_id != customer or grant_id is None or found_grant.balance <= 0:
                continue
            started = g.effective_from is None or g.effective_from <= today
            if not started or (g.expires is not None and g.expires < today):
                continue
            grants[grant_id] = (g.name, g.currency or "",
                                min(projected.get(grant_id, found_grant.balance),
                                    found_grant.balance))
        readings.append(Reading(customer, label, usage, spend, grants))
    return readings


def _plain(value: Decimal) -> str:
    return format(value.normalize() if value == value.to_integral() else value, "f")


def _candidates(rule: AlertRule, reading: Reading, catalog: Catalog
                ) -> list[tuple[str, Decimal, str]]:
    """(subject, value, message) for each thing the rule fires on in this reading."""
    name = rule.name or rule.id
    threshold = _plain(rule.threshold)
    found = []
    if rule.kind == "usage" and rule.meter is not None:
        value = reading.usage.get(rule.meter)
        meter = catalog.meters_by_key.get(rule.meter)
        if value is not None and value >= rule.threshold:
            label = meter.name if meter else rule.meter
            unit = f" {meter.unit}" if meter and meter.unit else ""
            found.append((rule.meter, value,
                          f"{name}: {label} reached {_plain(value)}{unit} in {reading.period} "
                          f"(alert at {threshold}{unit})"))
    elif rule.kind == "spend":
        for currency, value in sorted(reading.spend.items()):
            if (rule.currency is None or rule.currency == currency) and \
                    value >= rule.threshold:
                found.append((currency, value,
                              f"{name}: charges of {reading.period} to date are "
                              f"{money_text(value, currency)} {currency} before tax "
                              f"(alert at {threshold} {currency})"))
    elif rule.kind == "balance":
        for grant_id, (grant_name, currency, value) in sorted(reading.grants.items()):
            if (rule.currency is None or rule.currency == currency) and \
                    value < rule.threshold:
                found.append((f"grant:{grant_id}", value,
                              f"{name}: credit {grant_name!r} (#{grant_id}) has "
                              f"{money_text(value, currency)} {currency} left after the "
                              f"charges of {reading.period} to date (alert below "
                              f"{threshold} {currency})"))
    return found


def evaluate_alerts(uow: SqlUnitOfWork, clock: Clock,
                    customers: Iterable[str] | None = None) -> list[AlertRow]:
    """Evaluate the alert rules (for these customers, or all) and record and queue the
    alerts that fire now for the first time in their cycle. Returns the new alerts."""
    with uow.read():
        catalog = current_catalog(uow)
    if not catalog.alerts:
        return []
    known = {c.id for c in catalog.customers}
    scope = known if customers is None else known & set(customers)
    wanted = {c for c in scope if any(not r.customers or c in r.customers
                                      for r in catalog.alerts)}
    if not wanted:
        return []
    now = clock.now()
    readings = _readings(uow, clock, catalog, wanted, now)
    rows = []
    for reading in readings:
        for rule in catalog.alerts:
            if rule.customers and reading.customer not in rule.customers:
                continue
            for subject, value, message in _candidates(rule, reading, catalog):
                rows.append({"rule_id": rule.id, "kind": rule.kind,
                             "customer_id": reading.customer, "subject": subject,
                             "period": reading.period, "threshold": rule.threshold,
                             "value": value, "message": message, "fired_at": now})
    if not rows:
        return []
    rules = {r.id: r for r in catalog.alerts}
    with uow:
        fired = uow.alerts.fire(rows)
        for alert in fired:
            _queue(uow, catalog, rules[alert.rule_id], alert, now)
        uow.commit()
    return fired


def alert_payload(alert: AlertRow) -> dict[str, Any]:
    return {"type": "billing.alert", "alert": {
        "id": alert.id, "rule": alert.rule_id, "kind": alert.kind,
        "customer": alert.customer_id, "subject": alert.subject, "period": alert.period,
        "threshold": format(alert.threshold, "f"), "value": format(alert.value, "f"),
        "message": alert.message, "fired_at": alert.fired_at.isoformat() + "Z"}}


def _queue(uow: SqlUnitOfWork, catalog: Catalog, rule: AlertRule, alert: AlertRow,
           now: datetime) -> None:
    customer = catalog.customer(alert.customer_id)
    seller = catalog.seller
    reference = f"ALERT-{alert.id}"
    base = {"document_id": None, "sequence": 1, "sender": seller.email or "",
            "reply_to": seller.reply_to or None, "payload": alert_payload(alert),
            "status": "queued", "attempts": 0, "last_error": None, "next_attempt_at": now,
            "created_at": now, "updated_at": now, "billing_run_id": None}
    digest = hashlib.sha256(f"{alert.rule_id}\x00{alert.customer_id}\x00{alert.subject}"
                            f"\x00{alert.period}".encode()).hexdigest()[:12]
    domain = (seller.email or "").rpartition("@")[2] or "billflow.invalid"
    if rule.email:
        uow.outbox.add({**base, "kind": "alert", "reference": reference,
                        "recipients": {"to": list(customer.recipients()),
                                       "cc": [a for a in customer.cc
                                              if a not in customer.recipients()],
                                       "sender_name": seller.name,
                                       "locale": catalog.locale(customer.id),
                                       "customer_name": customer.name},
                        "subject": alert.message[:250],
                        "message_id": f"<alert.{alert.id}.{digest}@{domain}>"})
    if rule.webhook:
        uow.outbox.add({**base, "kind": "webhook", "reference": f"{reference}-webhook",
                        "recipients": {"url": rule.webhook, "to": [rule.webhook]},
                        "subject": alert.message[:250],
                        "message_id": f"alert-{alert.id}-{digest}"})


def list_alerts(uow: SqlUnitOfWork, customer: str | None = None, period: str | None = None,
                limit: int | None = None) -> list[AlertRow]:
    with uow.read():
        return uow.alerts.listing(customer, period, limit)
