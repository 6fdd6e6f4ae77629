"""Limits enforced at the gates (event validation, catalog validation).

Every value that passes these checks can be stored on both databases and carried through
metering and pricing exactly: the widest sum of quantities times the widest price stays
well inside the 120-digit exact context of `billing_core.money`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

# --- event records ---------------------------------------------------------------------
MAX_RECORD_BYTES = 64 * 1024          # one JSON line / CSV row / batch item, as text
MAX_ID_LENGTH = 256                   # event_id, customer_id, event_name
MAX_METADATA_KEYS = 64
MAX_METADATA_KEY_LENGTH = 128
MAX_METADATA_STRING = 4096            # one metadata string value
MAX_JSON_DEPTH = 32                   # nesting refused before it reaches validation

# Numbers in event metadata: |x| < 10**20, at most 18 digits after the point and 38
# significant digits (what NUMERIC(38, 18) holds). A month of 10**12 such events sums to
# less than 10**32.
QUANTITY_INTEGER_DIGITS = 20
QUANTITY_FRACTION_DIGITS = 18
QUANTITY_SIGNIFICANT_DIGITS = 38

# Timestamps after conversion to UTC.
MIN_TIMESTAMP = datetime(1970, 1, 1)
MAX_TIMESTAMP = datetime(2200, 1, 1)   # exclusive

# --- catalog ---------------------------------------------------------------------------
# Prices, fees, thresholds: |x| < 10**15, at most 18 digits after the point, 30 significant.
PRICE_INTEGER_DIGITS = 15
PRICE_FRACTION_DIGITS = 18
PRICE_SIGNIFICANT_DIGITS = 30
MAX_NAME_LENGTH = 200                  # customer, seller, product and meter names
MAX_ADDRESS_LENGTH = 500
MAX_ADDRESS_LINES = 8
MAX_DESCRIPTION_LENGTH = 1000
MAX_CATALOG_BYTES = 64 * 1024 * 1024
MAX_YAML_DEPTH = 64


def number_problem(value: Decimal, integer_digits: int, fraction_digits: int,
                   significant_digits: int) -> str | None:
    """Why a finite Decimal is outside the limits, or None when it fits."""
    if not value.is_finite():
        return "is not a finite number"
    if value == 0:
        return None
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    # Significant digits without trailing zeros (1000 has one, 1.500 has two).
    stripped = len(digits)
    while stripped > 1 and digits[stripped - 1] == 0:
        stripped -= 1
        exponent += 1
    adjusted = value.adjusted()  # position of the first significant digit
    if adjusted >= integer_digits:
        return f"is too large (at most {integer_digits} digits before the decimal point)"
    if exponent < -fraction_digits:
        return f"has too many decimal places (at most {fraction_digits})"
    if stripped > significant_digits:
        return f"has too many significant digits (at most {significant_digits})"
    return None


def quantity_problem(value: Decimal) -> str | None:
    return number_problem(value, QUANTITY_INTEGER_DIGITS, QUANTITY_FRACTION_DIGITS,
                          QUANTITY_SIGNIFICANT_DIGITS)


def price_problem(value: Decimal) -> str | None:
    return number_problem(value, PRICE_INTEGER_DIGITS, PRICE_FRACTION_DIGITS,
                          PRICE_SIGNIFICANT_DIGITS)
