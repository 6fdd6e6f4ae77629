"""Factur-X (EN 16931 profile) XML, built from an issued document's own facts.

The XML is generated and checked against the official XML schema by the factur-x library
(which holds the CII schemas). The document is the frozen JSON of an issued invoice or
credit note, so the XML, like the PDF, never changes once issued.

Mapping: BT-1 number, BT-2 issue date, BT-3 type 380 (invoice) or 381 (credit note,
with BG-3 naming the invoice it credits), BT-9 due date and BT-20 payment terms, BT-73/74
the service period, BG-4/BG-7 seller and buyer (name, tax id, country, city, postal code,
first address line), one BG-25 line per document line, the totals BT-106..BT-115. A line
whose amount is its chargeable units times its unit price (to the cent) carries them as
BT-129/BT-146; any other (a tiered price, a minimum, a discount) carries quantity 1 (or
-1) at its amount. Each line carries its tax's VAT category and rate (BT-151/152: S
standard, Z zero rate, AE reverse charge with VATEX-EU-AE, E exempt) and the breakdown
BG-23 sums the lines per category and rate. Line amounts are net: with inclusive prices
the line's tax is taken out. Without taxes in the catalog every line is category E (not
subject to VAT), 0 %. Billflow rounds tax per line (the invoice says so); EN 16931's
BR-CO-17 rounds it per category, so in rare cases the two differ by a minor unit (the
schematron is not run; the XML schema is).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from billing_core.documents.model import Document, Line, Party, money_text, number_text
from billing_core.money import EXACT, minor_units

FILENAME = "factur-x.xml"
UNIT = "C62"           # UN/ECE recommendation 20: "one" (a unit of anything)
NOT_SUBJECT = "Not subject to VAT: no tax is charged on this invoice"


class EInvoiceError(ValueError):
    """The document lacks what an EN 16931 e-invoice needs."""


def _party(party: Party, role: str) -> dict[str, Any]:
    if not party.country:
        raise EInvoiceError(f"the {role} has no country (catalog: {role}.country)")
    data: dict[str, Any] = {"name": party.name, "country_code": party.country}
    if party.city:
        data["city"] = party.city
    if party.postal_code:
        data["postcode"] = party.postal_code
    first_line = party.address.splitlines()[0].strip() if party.address.strip() else ""
    if first_line:
        data["addr_l1"] = first_line
    if party.tax_id:
        data["vat_identifier"] = party.tax_id
    if party.email:
        data["contacts"] = [{"email": party.email}]
    return data


EXEMPTIONS = {"AE": ("Reverse charge", "VATEX-EU-AE"), "E": ("Exempt from tax", None)}


def _vat(line: Line) -> tuple[str, Decimal]:
    """The line's VAT category and rate (one per line in EN 16931)."""
    if not line.taxes:
        return "E", Decimal(0)
    return line.taxes[0].category, line.taxes[0].rate


def _net(doc: Document, line: Line) -> Decimal:
    return EXACT.subtract(line.amount, line.tax) if doc.tax_mode == "inclusive" \
        else line.amount


def _line(number: int, line: Line, doc: Document) -> dict[str, Any]:
    currency = doc.currency
    minor = Decimal(1).scaleb(-minor_units(currency))
    net = _net(doc, line)
    product = EXACT.multiply(line.chargeable_units, line.unit_price)
    if line.meter is not None and line.kind in ("usage", "adjustment") and \
            line.unit_price >= 0 and \
            abs(product - net) < minor and not line.detail:
        quantity, price = line.chargeable_units, line.unit_price
    else:
        quantity = Decimal(-1) if net < 0 else Decimal(1)
        price = abs(net)
    category, rate = _vat(line)
    return {"BT-126": str(number), "BT-153": line.description[:200],
            "BT-129": number_text(quantity), "BT-130": UNIT,
            "BT-146": format(price, "f"), "BT-131": money_text(net, currency),
            "BT-151": category, "BT-152": number_text(rate)}


def _breakdown(doc: Document) -> list[dict[str, Any]]:
    """BG-23: per VAT category and rate, the net amount and the tax of the lines."""
    groups: dict[tuple[str, Decimal], list[Decimal]] = {}
    for line in doc.lines:
        key = _vat(line)
        base, tax = groups.get(key, [Decimal(0), Decimal(0)])
        groups[key] = [EXACT.add(base, _net(doc, line)), EXACT.add(tax, line.tax)]
    if not groups:
        groups[("E", Decimal(0))] = [Decimal(0), Decimal(0)]
    result = []
    for (category, rate), (base, tax) in groups.items():
        entry: dict[str, Any] = {"BT-116": money_text(base, doc.currency),
                                 "BT-117": money_text(tax, doc.currency),
                                 "BT-118": category, "BT-119": number_text(rate)}
        if category == "E" and not doc.tax_summary():
            entry["BT-120"] = NOT_SUBJECT
        elif category in EXEMPTIONS:
            reason, code = EXEMPTIONS[category]
            entry["BT-120"] = reason
            if code:
                entry["BT-121"] = code
        result.append(entry)
    return result


def facts(doc: Document) -> dict[str, Any]:
    """The EN 16931 business terms of an issued document (the factur-x library's input)."""
    if doc.number is None or doc.issue_date is None:
        raise EInvoiceError("only issued documents are e-invoices")
    if not doc.seller.tax_id:
        raise EInvoiceError("the seller has no tax id (catalog: seller.tax_id)")
    c = doc.currency
    total = money_text(doc.total, c)
    net = money_text(doc.net_total, c)
    last_day: date = doc.service_end - timedelta(days=1)
    data: dict[str, Any] = {
        "BT-1": doc.number, "BT-2": doc.issue_date,
        "BT-3": "380" if doc.document_type == "invoice" else "381", "BT-5": c,
        "BT-72": last_day, "BT-73": doc.service_start, "BT-74": last_day,
        "BG-4": _party(doc.seller, "seller"), "BG-7": _party(doc.customer, "customer"),
        "BG-25": [_line(i, line, doc) for i, line in enumerate(doc.lines, start=1)],
        "BG-23": _breakdown(doc),
        "BT-106": net, "BT-109": net,
        "BT-110": money_text(doc.tax_total, c), "BT-112": total,
        "BT-115": money_text(doc.amount_due if doc.document_type == "invoice"
                             else doc.total, c),
    }
    if doc.due_date is not None:
        data["BT-9"] = doc.due_date
        data["BT-20"] = (f"Payment due within {(doc.due_date - doc.issue_date).days} days "
                         f"of the issue date, by {doc.due_date.isoformat()}")
    if doc.document_type == "credit_note" and doc.credits_number:
        preceding: dict[str, Any] = {"BT-25": doc.credits_number}
        if doc.credits_issue_date:
            preceding["BT-26"] = doc.credits_issue_date
        data["BG-3"] = [preceding]
    notes = [n for n in (doc.tax_note, *doc.notes, doc.reason) if n]
    if notes:
        data["BG-1"] = [{"BT-22": note[:1000]} for note in notes]
    return data


def cii_xml(doc: Document) -> bytes:
    """The Factur-X XML of an issued document; raises EInvoiceError, or the library's
    error if the XML would not be valid against the EN 16931 schema."""
    import facturx

    xml = facturx.generate_cii_xml(facts(doc), level="en16931", check_xsd=True,
                                   check_schematron=False)
    return xml if isinstance(xml, bytes) else bytes(xml)
