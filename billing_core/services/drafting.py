"""Use case: draft a period's invoices, and find late usage of finalized periods.

Drafting measures every active subscription's usage for the period and creates or
updates its draft invoice (a draft reference, no number). A subscription whose invoice
for the period is already issued gets no draft: an issued invoice never changes.

Late usage: the finalized periods within the look-back (`late_usage_lookback_periods`)
are measured again and compared with what their issued documents billed, per
subscription and meter. A difference is handled by the catalog's `late_usage` policy:
- `next_invoice`: adjustment lines on this period's draft (priced with the rules of the
  period the usage belongs to), less any adjustment another draft already carries;
- `credit_note_and_reissue`: a replacement draft for that period (generation + 1);
  finalizing it credits the original in full and issues the replacement.
Older differences (events that arrived since the last run for periods before the
look-back) are reported, not billed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from billing_core.catalog.models import Catalog, Subscription
from billing_core.clock import Clock
from billing_core.credits.wallet import Wallet
from billing_core.cycles import local_midnight, period_state
from billing_core.db.repositories.documents import BilledKey, DocumentHead
from billing_core.documents.model import (
    Document,
    document_hash,
    facts_hash,
    to_json,
)
from billing_core.documents.numbering import draft_reference
from billing_core.errors import describe
from billing_core.failpoints import failpoint
from billing_core.invoicing import (
    allowances,
    charge_usage,
    differs,
    invoice_document,
    late_usage_lines,
    product_for,
    window_of,
)
from billing_core.metering import MeterUsage, Usage, Window, measure_each, skipped_by_meter
from billing_core.money import EXACT
from billing_core.periods import BillingPeriod
from billing_core.pricing.usage import Billed, ChargeUsage
from billing_core.services.catalog import current_catalog
from billing_core.services.credits import (
    covered_in,
    entitlement_history,
    rollover_into,
    wallets,
)
from billing_core.services.unit_of_work import SqlUnitOfWork

ISSUED = ("finalized", "paid", "void")


PAGE = 500   # new drafts per batch of inserts
USAGE_COLUMNS = ("customer", "draft", "period", "line", "meter", "events", "consumed", "free",
                 "billable", "amount", "invoice_total", "currency")


class PeriodNotStarted(ValueError):
    """A period in the future cannot be drafted."""


@dataclass(frozen=True)
class LateUsage:
    """A difference between what was billed for a finalized period and its usage now."""

    subscription_id: str
    customer_id: str
    period: str
    meter: str
    billed: Decimal
    current: Decimal
    action: str            # next_invoice | reissue | reported
    target: str | None     # the draft that bills it

    def as_dict(self) -> dict[str, Any]:
        return {"subscription": self.subscription_id, "customer": self.customer_id,
                "period": self.period, "meter": self.meter, "billed": str(self.billed),
                "current": str(self.current), "difference": str(self.current - self.billed),
                "action": self.action, "target": self.target}


@dataclass
class PlannedDraft:
    document: Document
    period: str
    generation: int
    reissue_of_id: int | None = None


@dataclass
class DraftResult:
    period: str
    subscriptions: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    issued: int = 0
    document_ids: list[int] = field(default_factory=list)
    totals: dict[str, Decimal] = field(default_factory=dict)
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    late: list[LateUsage] = field(default_factory=list)
    older_late: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    usage_lines: list[tuple[Any, ...]] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)   # store=False only

    @property
    def usage_rows(self) -> list[dict[str, Any]]:
        """Per draft line: its customer, usage, free and billable units and amount."""
        return [dict(zip(USAGE_COLUMNS, row, strict=True)) for row in self.usage_lines]

    @property
    def drafts(self) -> int:
        return self.created + self.updated + self.unchanged

    def late_report(self) -> dict[str, Any] | None:
        if not self.late and not self.older_late:
            return None
        return {"differences": [item.as_dict() for item in self.late],
                "older_than_lookback": self.older_late}


def _key(subscription_id: str, period: str) -> str:
    return f"{subscription_id}\x1f{period}"


def _active(catalog: Catalog, period: BillingPeriod, customers: set[str] | None
            ) -> list[Subscription]:
    return [s for s in catalog.subscriptions
            if (customers is None or s.customer in customers)
            and window_of(catalog, s, period) is not None]


def window(catalog: Catalog, sub: Subscription, period: BillingPeriod, key: str,
           bounds: tuple[datetime, datetime]) -> Window:
    """The metering window of a subscription's cycle: its product version's meters,
    allowances, and where a carried-over level starts."""
    product = product_for(catalog, sub, period)
    return Window(key, sub.customer, *bounds, tuple(c.meter for c in product.charges),
                  carry_from=local_midnight(sub.start, catalog.timezone(sub.customer)),
                  allowances=allowances(product))


def _latest_issued(rows: list[DocumentHead]) -> dict[tuple[str, str], DocumentHead]:
    """The issued, not superseded invoice of each (subscription, period)."""
    issued: dict[tuple[str, str], DocumentHead] = {}
    for row in rows:
        if row.kind == "invoice" and row.status in ISSUED and row.superseded_by_id is None:
            key = (row.subscription_id, row.period)
            if key not in issued or row.generation > issued[key].generation:
                issued[key] = row
    return issued


def _pending_elsewhere(uow: SqlUnitOfWork, exclude_period: str
                       ) -> dict[tuple[str, str, str], Billed]:
    """Adjustments (quantity, events, amount) that drafts of other periods already
    carry."""
    pending: dict[tuple[str, str, str], Billed] = {}
    others = [h for h in uow.documents.draft_heads() if h.period != exclude_period]
    contents = uow.documents.contents(h.id for h in others)
    for row in others:
        content = contents[row.id]
        if '"adjustment"' not in content:
            continue
        for line in json.loads(content)["lines"]:
            if line["kind"] == "adjustment":
                key = (row.subscription_id, line["usage_period"], line["meter"])
                events = int((line.get("detail") or {}).get("events", 0))
                pending[key] = pending.get(key, Billed(Decimal(0), 0, Decimal(0))).plus(
                    Billed(Decimal(line["quantity"]), events, Decimal(line["amount"])))
    return pending


def _usage_of(usage: Usage, subscription_id: str, period: str) -> dict[str, ChargeUsage]:
    return {k: charge_usage(u) for k, u in usage.get(_key(subscription_id, period),
                                                     {}).items()}


def draft_period(uow: SqlUnitOfWork, clock: Clock, period: BillingPeriod,
                 customers: list[str] | None = None, run_id: int | None = None, *,
                 until: datetime | None = None, store: bool = True) -> DraftResult:
    """Create or update the period's drafts; find and place late usage.

    With `store=False` nothing is written: the result's documents are the invoices as they
    would be (the upcoming-invoice preview), with usage counted up to `until`."""
    now = clock.now()
    label = str(period)
    chosen = set(customers) if customers else None
    with uow.read():
        catalog = current_catalog(uow)
        settings = catalog.settings
        if period_state(catalog, period, now) == "future":
            raise PeriodNotStarted(f"period {label} has not started yet (it starts "
                                   f"{period.start_date.isoformat()}); nothing to draft")
        lookback = [period.shift(-k) for k in range(settings.late_usage_lookback_periods + 1)]
        in_scope = [s for s in catalog.subscriptions
                    if chosen is None or s.customer in chosen]
        rows = uow.documents.invoice_heads([str(p) for p in lookback],
                                           [s.id for s in in_scope] if chosen else None)
        issued = _latest_issued(rows)
        active = _active(catalog, period, chosen)
        to_draft = [s for s in active if (s.id, label) not in issued]
        windows: list[Window] = []
        for sub in to_draft:
            bounds = window_of(catalog, sub, period, until)
            if bounds is None:  # a preview before the subscription's first moment
                bounds = (period.start, period.start)
            windows.append(window(catalog, sub, period, _key(sub.id, label), bounds))
        late_pairs = []
        for sub in in_scope:
            for late in lookback:
                if (sub.id, str(late)) in issued and (
                        bounds := window_of(catalog, sub, late)):
                    late_pairs.append((sub, late))
                    windows.append(window(catalog, sub, late, _key(sub.id, str(late)),
                                          bounds))
        recorded, to_measure = entitlement_history(
            uow, catalog, [*to_draft, *(s for s, _ in late_pairs)], period)
        keys = {w.key for w in windows}
        for sub, earlier in to_measure:
            key = _key(sub.id, str(earlier))
            if key not in keys and (bounds := window_of(catalog, sub, earlier)):
                keys.add(key)
                windows.append(window(catalog, sub, earlier, key, bounds))
        usage, unmeasured = measure_each(uow.connection, catalog.meters_by_key, windows)
        billed = uow.billed.billed([s.id for s, _ in late_pairs],
                                   [str(p) for _, p in late_pairs])
        wallet_of = wallets(uow, catalog, [(s, period) for s in to_draft], now)
        pending = _pending_elsewhere(uow, label)
        previous = uow.runs.last_started(("draft", "finalize"), run_id)
        older = (uow.events.late_arrivals(previous.started_at, lookback[-1].start)
                 if previous is not None else [])

    result = DraftResult(period=label, subscriptions=len(active),
                         issued=len(active) - len(to_draft))
    subscriptions = {s.id: s for s in catalog.subscriptions}
    for key, reason in sorted(unmeasured.items()):
        sub_id, late_label = key.split("\x1f")
        sub = subscriptions[sub_id]
        result.failures.append({"subscription": sub_id, "customer": sub.customer,
                                "period": late_label,
                                "reason": f"usage could not be measured: {reason}"})
    failed_subs = {key.split("\x1f")[0] for key in unmeasured}
    to_draft = [s for s in to_draft if s.id not in failed_subs]
    late_pairs = [(s, p) for s, p in late_pairs if s.id not in failed_subs]
    result.skipped = skipped_by_meter(usage[_key(s.id, label)] for s in to_draft)
    result.older_late = [{"customer": c, "period": p, "events": n} for c, p, n in older
                         if chosen is None or c in chosen]
    entitled = Entitled(recorded, {
        s.id: rollover_into(s, period, recorded, _measured(usage, s, to_measure))
        for s in to_draft if s.entitlements})
    plans, failed = _plan(catalog, period, to_draft, late_pairs, usage, billed, pending,
                          issued, result, until, entitled)
    failed |= failed_subs
    _apply_credits(plans, wallet_of)
    if not store:
        result.documents = [plan.document for plan in plans]
        result.totals = {}
        for doc in result.documents:
            result.totals[doc.currency] = EXACT.add(result.totals.get(doc.currency,
                                                                      Decimal(0)), doc.total)
        _usage_rows(plans, usage, result)
        return result
    _store(uow, clock, label, [str(p) for p in lookback], plans, failed, chosen, run_id,
           result)
    _usage_rows(plans, usage, result)
    return result


@dataclass
class Entitled:
    """Entitlements of the period being drafted: the recorded unit grants of recent
    cycles, and the units rolling into this period per subscription and meter."""

    recorded: dict[tuple[str, str], dict[str, dict[str, Decimal]]]
    rollover: dict[str, dict[str, Decimal]]


def _measured(usage: Usage, sub: Subscription,
              to_measure: list[tuple[Subscription, BillingPeriod]]
              ) -> dict[str, dict[str, Decimal]]:
    """The measured usage of a subscription's earlier cycles, per period and meter."""
    return {str(p): {k: u.quantity for k, u in usage.get(_key(sub.id, str(p)), {}).items()}
            for s, p in to_measure if s.id == sub.id and _key(sub.id, str(p)) in usage}


def _apply_credits(plans: list[PlannedDraft], wallet_of: dict[str, Wallet]) -> None:
    """Each customer's credits over its invoices, in the order finalizing issues them."""
    for plan in sorted(plans, key=lambda p: (p.period, p.document.customer_id,
                                             p.document.subscription_id, p.generation)):
        wallet = wallet_of.get(plan.document.customer_id)
        if wallet is not None:
            plan.document = wallet.apply(plan.document)[0]


def _plan(catalog: Catalog, period: BillingPeriod, to_draft: list[Subscription],
          late_pairs: list[tuple[Subscription, BillingPeriod]], usage: Usage,
          billed: Any, pending: dict[tuple[str, str, str], Billed],
          issued: dict[tuple[str, str], DocumentHead],
          result: DraftResult, until: datetime | None = None,
          entitled: Entitled | None = None) -> tuple[list[PlannedDraft], set[str]]:
    label = str(period)
    policy = catalog.settings.late_usage
    adjustments: dict[str, list[Any]] = defaultdict(list)
    plans: list[PlannedDraft] = []
    failed: set[str] = set()
    drafting = {s.id for s in to_draft}

    for sub, late in sorted(late_pairs, key=lambda pair: (pair[1], pair[0].id)):
        late_label = str(late)
        try:
            current = _usage_of(usage, sub.id, late_label)
            product = product_for(catalog, sub, late)
            before = {c.meter: billed.get(BilledKey(sub.id, late_label, c.meter), Billed())
                      for c in product.charges}
            nothing = ChargeUsage(Decimal(0))

            def now(meter: str, current: dict[str, ChargeUsage] = current) -> Decimal:
                return current.get(meter, ChargeUsage(Decimal(0))).quantity

            differing = [m for m in before
                         if differs(product, m, current.get(m, nothing), before[m])]
            if policy == "credit_note_and_reissue":
                if not differing:
                    continue
                original = issued[(sub.id, late_label)]
                generation = original.generation + 1
                reference = draft_reference(late_label, sub.id, generation)
                doc = invoice_document(catalog, sub, late, current, [], reference,
                                       rollover=_fixed(entitled, sub, late))
                doc = _with_note(doc, f"Replaces invoice {original.number}, which is credited "
                                      f"in full by a credit note.")
                plans.append(PlannedDraft(doc, late_label, generation, original.id))
                result.late.extend(
                    LateUsage(sub.id, sub.customer, late_label, m, before[m].quantity,
                              now(m), "reissue", reference)
                    for m in differing)
                continue
            shown_before = {m: before[m].plus(pending[(sub.id, late_label, m)])
                            if (sub.id, late_label, m) in pending else before[m]
                            for m in before}
            if late_label == label or (sub.id not in drafting and (sub.id, label) in issued):
                result.late.extend(
                    LateUsage(sub.id, sub.customer, late_label, m, before[m].quantity,
                              now(m), "reported", None)
                    for m in differing
                    if differs(product, m, current.get(m, nothing), shown_before[m]))
                continue
            lines = late_usage_lines(catalog, sub, late, current, shown_before,
                                     _covered(entitled, sub, late))
            if lines:
                adjustments[sub.id].extend(lines)
                reference = draft_reference(label, sub.id, 1)
                result.late.extend(
                    LateUsage(sub.id, sub.customer, late_label, line.meter or "",
                              before[line.meter or ""].quantity, now(line.meter or ""),
                              "next_invoice", reference) for line in lines)
        except Exception as exc:  # one subscription's failure never blocks the others
            failed.add(sub.id)
            result.failures.append({"subscription": sub.id, "customer": sub.customer,
                                    "period": late_label, "reason": describe(exc)})

    subs_by_id = {s.id: s for s in catalog.subscriptions}
    with_adjustments_only = [subs_by_id[s] for s in adjustments if s not in drafting]
    for sub in [*to_draft, *with_adjustments_only]:
        if sub.id in failed:
            continue
        try:
            measured = (_usage_of(usage, sub.id, label) if sub.id in drafting else None)
            doc = invoice_document(catalog, sub, period, measured, adjustments[sub.id],
                                   draft_reference(label, sub.id, 1), until=until,
                                   rollover=(entitled.rollover.get(sub.id) if entitled
                                             else None))
            plans.append(PlannedDraft(doc, label, 1))
        except Exception as exc:
            failed.add(sub.id)
            result.failures.append({"subscription": sub.id, "customer": sub.customer,
                                    "period": label, "reason": describe(exc)})
    return plans, failed


def _covered(entitled: Entitled | None, sub: Subscription, late: BillingPeriod
             ) -> dict[str, Decimal]:
    found = covered_in(entitled.recorded, sub.id, str(late)) if entitled else None
    return found or {}


def _fixed(entitled: Entitled | None, sub: Subscription, late: BillingPeriod
           ) -> dict[str, Decimal] | None:
    """A replacement invoice of an issued cycle covers what the original covered: its
    entitlement is the units then covered, nothing more rolls in."""
    return _covered(entitled, sub, late) if entitled else None


def _with_note(doc: Document, note: str) -> Document:
    return replace(doc, notes=(*doc.notes, note))


def serialize(doc: Document) -> tuple[str, str, str]:
    """(content, facts hash, document hash) of a document as it is stored."""
    data = to_json(doc)
    return json.dumps(data, ensure_ascii=False), facts_hash(doc), document_hash(data)


def _store(uow: SqlUnitOfWork, clock: Clock, label: str, lookback: list[str],
           plans: list[PlannedDraft], failed: set[str], chosen: set[str] | None,
           run_id: int | None, result: DraftResult) -> None:
    now = clock.now()
    periods = sorted({label, *lookback, *(p.period for p in plans)})
    with uow:
        existing = {(r.subscription_id, r.period, r.generation): r
                    for r in uow.documents.invoice_heads(periods)}
        planned_keys = set()
        new_rows = []
        for plan in plans:
            doc = plan.document
            key = (doc.subscription_id, plan.period, plan.generation)
            planned_keys.add(key)
            content, facts, digest = serialize(doc)
            row = existing.get(key)
            total = doc.total
            result.totals[doc.currency] = EXACT.add(result.totals.get(doc.currency, Decimal(0)),
                                                    total)
            if row is None:
                new_rows.append({
                    "kind": "invoice", "status": "draft",
                    "draft_ref": doc.draft_reference, "subscription_id": doc.subscription_id,
                    "customer_id": doc.customer_id, "period": plan.period,
                    "generation": plan.generation, "reissue_of_id": plan.reissue_of_id,
                    "currency": doc.currency, "subtotal": doc.subtotal, "total": total,
                    "amount_due": doc.amount_due, "facts_hash": facts,
                    "document_hash": digest, "revision": 1, "content": content,
                    "billing_run_id": run_id, "created_at": now, "updated_at": now})
                result.created += 1
                if len(new_rows) >= PAGE:   # written as they come: memory stays flat
                    uow.documents.add_many(new_rows)
                    new_rows.clear()
            elif row.status != "draft":
                continue  # issued meanwhile: an issued invoice never changes
            elif row.facts_hash == facts:
                if row.document_hash != digest:  # only names or texts changed
                    uow.documents.change(row.id, content=content, document_hash=digest,
                                         updated_at=now)
                result.unchanged += 1
            else:
                uow.documents.change(
                    row.id, content=content, facts_hash=facts, document_hash=digest,
                    subtotal=doc.subtotal, total=total, amount_due=doc.amount_due,
                    currency=doc.currency, revision=row.revision + 1, billing_run_id=run_id,
                    reissue_of_id=plan.reissue_of_id, updated_at=now)
                result.updated += 1
        uow.documents.add_many(new_rows)
        stale = [r.id for key, r in existing.items()
                 if r.status == "draft" and key not in planned_keys
                 and (chosen is None or r.customer_id in chosen)
                 and r.subscription_id not in failed
                 and (r.period == label or r.reissue_of_id is not None)]
        uow.documents.delete_drafts(stale)
        result.removed = len(stale)
        failpoint("draft.before_commit")
        uow.commit()
    with uow.read():
        refs = {p.document.draft_reference for p in plans}
        result.document_ids = [r.id for r in uow.documents.draft_heads(periods)
                               if r.draft_ref in refs]


def _usage_rows(plans: list[PlannedDraft], usage: Usage, result: DraftResult) -> None:
    for plan in plans:
        doc = plan.document
        for line in doc.lines:
            meter_usage: MeterUsage | None = None
            if line.meter is not None and line.kind == "usage":
                meter_usage = usage.get(_key(doc.subscription_id, plan.period), {}).get(
                    line.meter)
            result.usage_lines.append((
                doc.customer_id, doc.draft_reference, plan.period, line.kind,
                line.meter or "(base fee)",
                meter_usage.matched_events if meter_usage else "",
                format(line.quantity, "f"), format(line.free_units, "f"),
                format(line.chargeable_units, "f"), format(line.amount, "f"),
                format(doc.total, "f"), doc.currency))
