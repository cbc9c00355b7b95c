"""Unit strings resolve to SI floats; wrong kinds are refused."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neurodyn.quantities import QuantityError, parse_quantity


@pytest.mark.parametrize(
    ("text", "dim", "expected"),
    [
        ("20 ms", "time", 0.02),
        ("0.1 ms", "time", 1e-4),
        ("1 s", "time", 1.0),
        ("-65 mV", "voltage", -0.065),
        ("5 Hz", "frequency", 5.0),
        ("0.1 nS", "conductance", 1e-10),
        ("200 pF", "capacitance", 2e-10),
        ("0.5 nA", "current", 5e-10),
        ("1 mm", "length", 1e-3),
        ("2.5e-3 s", "time", 2.5e-3),
        ("3 us", "time", 3e-6),
        ("100 Mohm", "resistance", 1e8),
        ("7", "time", 7.0),
        (0.25, "voltage", 0.25),
        (3, "frequency", 3.0),
    ],
)
def test_parse(text, dim, expected):
    assert math.isclose(parse_quantity(text, dim), expected, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("text", "dim", "needle"),
    [
        ("5 mV", "time", "'mV' is a voltage"),
        ("5 parsecs", "time", "unknown unit"),
        ("__import__('os')", "time", "cannot read"),
        ("1 ms + 2 ms", "time", "cannot read"),
        (True, "time", "expected a time"),
        ([1, 2], "voltage", "expected a voltage"),
        ("nan", "time", "cannot read"),
        (float("inf"), "time", "finite"),
    ],
)
def test_refuse(text, dim, needle):
    with pytest.raises(QuantityError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_quantity(text, dim)


@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.sampled_from([("ms", 1e-3), ("us", 1e-6), ("s", 1.0), ("ns", 1e-9)]),
)
def test_roundtrip_time(x, unit):
    sym, scale = unit
    assert math.isclose(parse_quantity(f"{x!r} {sym}", "time"), x * scale, rel_tol=1e-12, abs_tol=1e-300)
