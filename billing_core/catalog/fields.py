"""Field types for the catalog models, each with the message a person should read.

A validator raises ValueError with the text shown after the field's place, e.g.
`products[0].charges[1].price_per_unit: must be a decimal number, got 'abc'`.
`CatalogProblem` reports a model-level check at one of the model's fields.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from billing_core.limits import (
    MAX_ADDRESS_LENGTH,
    MAX_ADDRESS_LINES,
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    price_problem,
)
from billing_core.money import UnknownCurrency, check_invoiceable, to_decimal

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
PROPERTY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,127}$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                      r"[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TAX_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./\-]{1,31}$")


def shown(value: Any, limit: int = 60) -> str:
    """A value as it may appear in a message: repr, control characters escaped, cut."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def problem(field: str, message: str) -> PydanticCustomError:
    """A model-level problem reported at `field` (the place gets `.field` appended)."""
    return PydanticCustomError("catalog", message, {"field": field})


def _has_control(text: str, allow_newlines: bool = False) -> bool:
    for ch in text:
        if ch in "\n\t" and allow_newlines:
            continue
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in "\u2028\u2029":
            return True
    return False


def _text(max_length: int, *, multiline: bool = False, allow_empty: bool = False
          ) -> BeforeValidator:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be text, got {shown(value)}")
        if not value.strip() and not allow_empty:
            raise ValueError("must not be empty")
        if "\x00" in value:
            raise ValueError("contains a NUL character")
        if _has_control(value, allow_newlines=multiline):
            raise ValueError("contains a control character")
        if len(value) > max_length:
            raise ValueError(f"is {len(value)} characters long (at most {max_length})")
        if multiline and value.count("\n") >= MAX_ADDRESS_LINES:
            raise ValueError(f"has more than {MAX_ADDRESS_LINES} lines")
        return value
    return BeforeValidator(check)


def _pattern(regex: re.Pattern[str], what: str) -> BeforeValidator:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be text, got {shown(value)}")
        if not regex.match(value):
            raise ValueError(f"{shown(value)} is not a valid {what}")
        return value
    return BeforeValidator(check)


def _decimal(*, allow_negative: bool = False) -> BeforeValidator:
    def check(value: Any) -> Decimal:
        if isinstance(value, bool) or value is None:
            raise ValueError(f"must be a decimal number, got {shown(value)}")
        try:
            number = to_decimal(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be a decimal number, got {shown(value)}") from None
        if number < 0 and not allow_negative:
            raise ValueError(f"must not be negative, got {shown(value)}")
        why = price_problem(number)
        if why:
            raise ValueError(f"{why}, got {shown(value)}")
        return number
    return BeforeValidator(check)


def _whole(minimum: int, maximum: int) -> BeforeValidator:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, Decimal) and value == value.to_integral_value():
                value = int(value)
            else:
                raise ValueError(f"must be a whole number, got {shown(value)}")
        if not minimum <= value <= maximum:
            raise ValueError(f"must be from {minimum} to {maximum}, got {value}")
        return value
    return BeforeValidator(check)


def whole(minimum: int, maximum: int) -> BeforeValidator:
    """Use as Annotated[int, whole(0, 365)]: a whole number in a range."""
    return _whole(minimum, maximum)


def _date(value: Any) -> date:
    if isinstance(value, date) and type(value) is date:
        return value
    if isinstance(value, str) and DATE_RE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"must be a date YYYY-MM-DD, got {shown(value)}: {exc}") from None
    raise ValueError(f"must be a date YYYY-MM-DD, got {shown(value)}")


def _currency(value: Any) -> str:
    try:
        check_invoiceable(value)
    except UnknownCurrency as exc:
        raise ValueError(str(exc)) from None
    return str(value)


def _email(value: Any) -> str:
    if not isinstance(value, str) or not EMAIL_RE.match(value) or len(value) > 254:
        raise ValueError(f"{shown(value)} is not a valid email address")
    return value


def _optional_email(value: Any) -> str:
    return "" if value == "" else _email(value)


def _country(value: Any) -> str:
    from babel import Locale

    if not isinstance(value, str) or len(value) != 2 or not value.isupper() \
            or value not in Locale("en").territories:
        raise ValueError(f"{shown(value)} is not an ISO 3166 country code (two capital "
                         f"letters, e.g. DE, FR, US)")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {shown(value)}")
    return value


Key = Annotated[str, _pattern(KEY_RE, "key (lowercase letters, digits, _; starts with a "
                                      "letter; at most 63 characters)")]
Id = Annotated[str, _pattern(ID_RE, "id (letters, digits, _ . : -; at most 128 characters)")]
PropertyKey = Annotated[str, _pattern(PROPERTY_RE, "property key")]
Name = Annotated[str, _text(MAX_NAME_LENGTH)]
Description = Annotated[str, _text(MAX_DESCRIPTION_LENGTH, multiline=True, allow_empty=True)]
Address = Annotated[str, _text(MAX_ADDRESS_LENGTH, multiline=True, allow_empty=True)]
ShortText = Annotated[str, _text(64, allow_empty=True)]
EventName = Annotated[str, _text(256)]
Amount = Annotated[Decimal, _decimal()]
SignedAmount = Annotated[Decimal, _decimal(allow_negative=True)]
Day = Annotated[date, BeforeValidator(_date)]
Currency = Annotated[str, BeforeValidator(_currency)]
Email = Annotated[str, BeforeValidator(_email)]
OptionalEmail = Annotated[str, BeforeValidator(_optional_email)]
Flag = Annotated[bool, BeforeValidator(_bool)]
Country = Annotated[str, BeforeValidator(_country)]


def non_empty_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


NonEmptyShortText = Annotated[ShortText, AfterValidator(non_empty_text)]


def _timezone(value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(value, str) or not value or len(value) > 64 or value != value.strip() \
            or ".." in value or value.startswith("/"):
        raise ValueError(f"{shown(value)} is not an IANA time zone name (e.g. Europe/Berlin)")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{shown(value)} is not an IANA time zone name (e.g. Europe/Berlin, "
                         f"America/New_York, UTC)") from None
    return value


def _locale(value: Any) -> str:
    from babel import Locale, UnknownLocaleError

    if not isinstance(value, str) or not re.match(r"^[a-z]{2,3}([_-][A-Z]{2})?$", value):
        raise ValueError(f"{shown(value)} is not a locale such as en_US, de_DE, fr_FR, ja_JP")
    try:
        Locale.parse(value.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        raise ValueError(f"{shown(value)} is not a locale Babel knows (e.g. en_US, de_DE, "
                         f"fr_FR, ja_JP)") from None
    return value.replace("-", "_")


def _region(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^[A-Z0-9]{1,3}$", value):
        raise ValueError(f"{shown(value)} is not a region code (the ISO 3166-2 part after "
                         f"the country, 1-3 capital letters or digits, e.g. NY, QC, BY)")
    return value


def _percent(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"must be a percentage (a decimal number), got {shown(value)}")
    try:
        number = to_decimal(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a percentage (a decimal number), got {shown(value)}") \
            from None
    if not 0 <= number <= 100:
        raise ValueError(f"must be a percentage from 0 to 100, got {shown(value)}")
    why = price_problem(number)
    if why:
        raise ValueError(f"{why}, got {shown(value)}")
    return number


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {format(value, 'f')}")
    return value


Timezone = Annotated[str, BeforeValidator(_timezone)]
LocaleName = Annotated[str, BeforeValidator(_locale)]
Region = Annotated[str, BeforeValidator(_region)]
Percent = Annotated[Decimal, BeforeValidator(_percent)]
PositiveAmount = Annotated[Amount, AfterValidator(_positive)]
