"""Canonical exact JSON: the C-encoder fast path writes the same text as the general path."""

from decimal import Decimal

import pytest

from billing_core.db.types import _dumps_exact_slow, dumps_exact, loads_exact

PLAIN = [
    {"b": 1, "a": "x", "c": True, "d": None, "e": False},
    {"näme": "ünïcode ✓", "quote": 'a "b" \\ c', "ctl": "tab\there\nnl\x01", "emoji": "🧾"},
    {"big": 10**30, "neg": -5, "zero": 0},
    {},
    ["evt_1", "cus_1", "api.call", None],
    ("a", 1, None),
    [],
]


@pytest.mark.parametrize("value", PLAIN)
def test_fast_path_matches_the_general_path(value):
    assert dumps_exact(value) == _dumps_exact_slow(value)


@pytest.mark.parametrize("value", [
    {"gb": Decimal("12.50"), "n": 1},
    {"nested": {"z": 1, "a": [Decimal("1E+2"), "x"]}},
    [Decimal("0.1"), {"k": None}],
])
def test_decimals_and_nesting_stay_exact(value):
    text = dumps_exact(value)
    assert text == _dumps_exact_slow(value)
    assert loads_exact(text) == value
    assert "E" not in text and "e+" not in text  # plain decimal notation


@pytest.mark.parametrize("value", [{"x": 1.5}, [1.5], {"x": float("nan")}, {"x": {"y": 2.0}}])
def test_floats_are_refused_on_every_path(value):
    with pytest.raises(TypeError):
        dumps_exact(value)


def test_non_finite_decimals_are_refused():
    with pytest.raises(ValueError):
        dumps_exact({"x": Decimal("NaN")})
