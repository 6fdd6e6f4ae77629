"""Taxes: which rates apply to a customer, and the tax of each line.

Rates come from the catalog's `taxes.rates` by the customer's country (and region: a
country-wide rate and a regional one both apply, as GST and QST do in Quebec). Tax is
computed on each line and rounded half-up to minor units per line, then summed per rate
(the invoice says so). With `prices: inclusive` the line amount contains the tax:
tax = amount x rate / (100 + sum of the rates).

Reverse charge: a business customer (with a tax id) in another EU member state than an
EU seller pays no VAT, whether or not the catalog has a rate for its country (with
`taxes.reverse_charge`, on by default); the invoice shows VAT 0 % (category AE) and the
legal mention.
A `tax_exempt` customer pays none either (category E). Without a matching rate there is
no tax at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing_core.catalog.models import Catalog, Customer
from billing_core.documents.model import LineTax
from billing_core.money import EXACT, percent_of, ratio, round_money

EU_MEMBER_STATES = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"})
REVERSE_CHARGE_NOTE = ("Reverse charge: VAT to be accounted for by the recipient "
                       "(Article 196, Council Directive 2006/112/EC).")
EXEMPT_NOTE = "Exempt from tax: the customer is registered as tax exempt."


@dataclass(frozen=True)
class Rate:
    name: str
    rate: Decimal
    category: str


@dataclass(frozen=True)
class TaxTreatment:
    """How one customer's invoices are taxed."""

    mode: str                         # exclusive | inclusive
    rates: tuple[Rate, ...] = ()
    note: str = ""

    @property
    def combined(self) -> Decimal:
        total = Decimal(0)
        for rate in self.rates:
            total = EXACT.add(total, rate.rate)
        return total


def reverse_charge(catalog: Catalog, customer: Customer) -> bool:
    seller = catalog.seller.country
    return (catalog.taxes.reverse_charge and bool(customer.tax_id)
            and seller in EU_MEMBER_STATES and customer.country in EU_MEMBER_STATES
            and customer.country != seller)


def treatment(catalog: Catalog, customer: Customer) -> TaxTreatment:
    """The rates that apply to `customer` (none when no rate matches)."""
    taxes = catalog.taxes
    if reverse_charge(catalog, customer):
        own = [r.name for r in taxes.rates if r.country == catalog.seller.country]
        return TaxTreatment("exclusive", (Rate(own[0] if own else "VAT", Decimal(0), "AE"),),
                            REVERSE_CHARGE_NOTE)
    matching = [r for r in taxes.rates
                if r.country == customer.country and r.region in (None, customer.region)]
    if not matching:
        return TaxTreatment(taxes.prices)
    if customer.tax_exempt:
        return TaxTreatment(taxes.prices, (Rate(matching[0].name, Decimal(0), "E"),),
                            EXEMPT_NOTE)
    return TaxTreatment(taxes.prices, tuple(
        Rate(r.name, r.rate, "S" if r.rate > 0 else "Z") for r in matching))


def line_taxes(amount: Decimal, how: TaxTreatment, currency: str) -> tuple[LineTax, ...]:
    """The taxes of one line of `amount` (rounded per line and per rate)."""
    taxes = []
    for rate in how.rates:
        if how.mode == "inclusive":
            exact = ratio(EXACT.multiply(amount, rate.rate), EXACT.add(Decimal(100),
                                                                         how.combined))
        else:
            exact = percent_of(amount, rate.rate)
        taxes.append(LineTax(rate.name, rate.rate, round_money(exact, currency),
                             rate.category))
    return tuple(taxes)
