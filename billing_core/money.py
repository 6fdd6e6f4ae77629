"""Exact money arithmetic: Decimal only, rounded half-up to the currency's minor units."""

from __future__ import annotations

import decimal
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel.numbers import get_currency_precision, is_currency

# A wide context that refuses to round silently: every product of a quantity and a unit
# price is exact, and an operation that would lose digits raises instead.
# 120 digits hold any sum of in-limit quantities times any in-limit price exactly
# (billing_core.limits), with room to spare.
EXACT = decimal.Context(prec=120, rounding=ROUND_HALF_UP, traps=[decimal.Inexact,
                        decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero])
# Rounding to minor units is inexact by design; it must not trap Inexact.
EXACT_QUANTIZE = decimal.Context(prec=120, rounding=ROUND_HALF_UP,
                                 traps=[decimal.InvalidOperation, decimal.Overflow])
# ISO 4217 codes that are not money one can invoice in: test, "no currency", precious
# metals, SDR and the bond-market units (Babel knows them all as currencies).
NOT_INVOICEABLE = frozenset({"XXX", "XTS", "XAU", "XAG", "XPD", "XPT", "XDR", "XBA", "XBB",
                             "XBC", "XBD", "XSU", "XUA", "XFU", "XFO", "XRE", "XEU"})


class UnknownCurrency(ValueError):
    """The currency code is not an ISO 4217 code known to Babel."""


@lru_cache(maxsize=64)
def minor_units(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (USD 2, JPY 0, KWD 3)."""
    if not isinstance(currency, str) or not is_currency(currency):
        raise UnknownCurrency(f"unknown currency {currency!r}")
    return get_currency_precision(currency)


def check_invoiceable(currency: str) -> None:
    """Raise UnknownCurrency unless `currency` is an ISO 4217 code one can bill in."""
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper() \
            or not is_currency(currency):
        raise UnknownCurrency(f"unknown ISO 4217 currency {currency!r}")
    if currency in NOT_INVOICEABLE:
        raise UnknownCurrency(f"{currency!r} is an ISO 4217 code but not a currency one can "
                              f"invoice in")


def to_decimal(value: object) -> Decimal:
    """Convert an int, a Decimal or a decimal string to Decimal. Floats are refused."""
    if isinstance(value, bool | float):
        raise TypeError(f"refusing {type(value).__name__} {value!r}: use a decimal string")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    else:
        raise TypeError(f"cannot read {type(value).__name__} {value!r} as a decimal")
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor units (2.345 USD -> 2.35)."""
    exponent = Decimal(1).scaleb(-minor_units(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP, context=EXACT_QUANTIZE)


def normalize_quantity(value: Decimal) -> Decimal:
    """Drop trailing fractional zeros but never switch to exponent form (1.500 -> 1.5)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1), context=EXACT_QUANTIZE)
    return value.normalize(context=EXACT_QUANTIZE)


# Division is the one operation that cannot be exact (a tax contained in a price, a share
# of days): computed to 120 digits, then rounded once to the currency's minor units.
DIVISION = decimal.Context(prec=120, rounding=ROUND_HALF_UP,
                           traps=[decimal.InvalidOperation, decimal.Overflow,
                                  decimal.DivisionByZero])


def ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal:
    """numerator / denominator to 120 significant digits (round it once afterwards)."""
    return DIVISION.divide(Decimal(numerator), Decimal(denominator))


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    """amount x percent / 100, exactly."""
    return EXACT.multiply(amount, percent).scaleb(-2, context=EXACT)
