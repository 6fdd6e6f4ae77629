"""Exact, bounded JSON: numbers as Decimal (never float), NaN/Infinity refused, a key given
twice refused, nesting capped before the parser recurses."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from billing_core.ingest.records import Reason
from billing_core.limits import MAX_JSON_DEPTH


class JsonProblem(ValueError):
    """Text that is not acceptable JSON, with the reason code to reject it under."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _DuplicateKey(ValueError):
    pass


class KeyedTwice(dict[str, Any]):
    """An object in which a key was given twice (read with strict_keys=False): the last
    value is kept and `duplicated` names the key, for the caller to refuse it."""

    duplicated: str


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _lenient_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        marked = KeyedTwice(result)
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                marked.duplicated = key
                break
            seen.add(key)
        return marked
    return result


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant,
                            object_pairs_hook=_object)
_LENIENT = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant,
                            object_pairs_hook=_lenient_object)


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in JSON text (brackets inside strings ignored)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, strict_keys: bool = True) -> Any:
    """Parse JSON exactly; raises JsonProblem (malformed_json, duplicate_key, too_deep,
    out_of_range) with a detail naming the problem. With strict_keys=False, an object with
    a key given twice is returned as a KeyedTwice instead of refused."""
    decoder = _DECODER if strict_keys else _LENIENT
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH and \
            nesting_depth(text) > MAX_JSON_DEPTH:
        raise JsonProblem(Reason.TOO_DEEP, f"nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        if not text or text[0].isspace():
            return decoder.decode(text)
        value, end = decoder.raw_decode(text)  # decode() minus its whitespace regexes
        if end != len(text):
            rest = text[end:]
            stripped = rest.lstrip(" \t\n\r")
            if stripped:
                raise json.JSONDecodeError("Extra data", text, end + len(rest) - len(stripped))
        return value
    except _DuplicateKey as exc:
        raise JsonProblem(Reason.DUPLICATE_KEY,
                          f"key {str(exc)!r} is given twice in one object") from None
    except RecursionError:
        raise JsonProblem(Reason.TOO_DEEP, "nested too deeply to read") from None
    except ValueError as exc:
        if "Exceeds the limit" in str(exc):
            raise JsonProblem(Reason.OUT_OF_RANGE,
                              "an integer with more than 4300 digits") from None
        raise JsonProblem(Reason.MALFORMED_JSON, str(exc)) from None
