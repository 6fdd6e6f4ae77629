"""The fast lane for one JSON Lines record: a compiled decode (msgspec) and the checks of
`validate`, for the record that is plainly good.

It either returns exactly the ValidEvent the exact lane (parse_json, then validate) would
return for the same text, or None: then the exact lane reads the record and gives the
reason. It returns None for anything unusual — a backslash anywhere (escapes, lone
surrogates, NUL), a key given twice, a value of another type, a value at or over a limit,
an unknown customer, a timestamp it cannot parse, text the decoder refuses. Its checks use
the same limits (billing_core.limits) and the same timestamp and number checks as
`validate`, but it never words a rejection: reasons and details come from one place only.
tests/ingest/test_fastlane.py holds the two lanes to the same result.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from msgspec import UNSET

from billing_core.db.types import dumps_exact
from billing_core.ingest.records import ValidEvent
from billing_core.ingest.validate import (
    QUANTITY_INT_BOUND,
    Rejected,
    check_number,
    parse_timestamp,
    payload_hash,
)
from billing_core.limits import (
    MAX_ID_LENGTH,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_KEYS,
    MAX_METADATA_STRING,
)


class _Event(msgspec.Struct, forbid_unknown_fields=True):
    """The five fields an event may have; UNSET tells a missing key from a null."""

    event_id: Any = UNSET
    customer_id: Any = UNSET
    event_name: Any = UNSET
    timestamp: Any = UNSET
    metadata: Any = UNSET


_DECODER = msgspec.json.Decoder(_Event, float_hook=Decimal)
_ENCODER = msgspec.json.Encoder(order="sorted")


def _identifier(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()


def _metadata_strings(metadata: dict[str, Any]) -> tuple[int, bool] | None:
    """How many JSON strings the plainly good metadata holds (keys and values), and whether
    every value is plain (str, int, bool, null); None if it is not plainly good."""
    if len(metadata) > MAX_METADATA_KEYS:
        return None
    strings, plain = len(metadata), True
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY_LENGTH:
            return None
        kind = type(value)
        if kind is str:
            if len(value) > MAX_METADATA_STRING:
                return None
            strings += 1
        elif kind is int:
            if not -QUANTITY_INT_BOUND < value < QUANTITY_INT_BOUND:
                return None
        elif kind is Decimal:
            try:
                check_number(key, value)
            except Rejected:
                return None
            plain = False
        elif kind is not bool and value is not None:
            return None
    return strings, plain


def fast_event(text: str, customers: set[str] | frozenset[str],
               ingested_at: datetime) -> ValidEvent | None:
    """The record's ValidEvent if it is plainly good, else None (read it the slow way)."""
    if "\\" in text:
        return None
    try:
        record = _DECODER.decode(text)
    except Exception:   # malformed, too deep, unknown field...: the slow lane says which
        return None
    event_id, customer_id, event_name = record.event_id, record.customer_id, record.event_name
    if not (_identifier(event_id) and _identifier(customer_id) and _identifier(event_name)
            and customer_id in customers):
        return None
    strings = 6                     # three keys and three identifiers
    raw_ts = record.timestamp
    ts_key: str | None = None
    if raw_ts is UNSET or raw_ts is None or raw_ts == "":
        ts = ingested_at
        strings += (raw_ts is not UNSET) + (raw_ts == "")
    elif type(raw_ts) is str:
        try:
            ts = parse_timestamp(raw_ts)
        except Rejected:
            return None
        ts_key = ts.isoformat()
        strings += 2
    else:
        return None
    metadata = record.metadata
    plain = True
    if metadata is UNSET or metadata is None:
        strings += metadata is None
        metadata = {}
    elif type(metadata) is dict:
        counted = _metadata_strings(metadata)
        if counted is None:
            return None
        strings += 1 + counted[0]
        plain = counted[1]
    else:
        return None
    # With no backslash, every quote in the text opens or closes a string: a key given
    # twice (which the decoder would silently overwrite) leaves more quotes than strings.
    if text.count('"') != 2 * strings:
        return None
    metadata_json = _ENCODER.encode(metadata).decode() if plain else dumps_exact(metadata)
    # dumps_plain's text, written directly: these strings hold nothing it would escape
    ts_text = "null" if ts_key is None else f'"{ts_key}"'
    fields_json = f'["{event_id}","{customer_id}","{event_name}",{ts_text}]'
    return ValidEvent(event_id=event_id, customer_id=customer_id, event_name=event_name,
                      ts=ts, metadata=metadata, metadata_json=metadata_json,
                      payload_hash=payload_hash(fields_json, metadata_json))
