"""Unit strings resolve to SI floats; wrong kinds and plain numbers (other than 0) are refused."""

import math
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neurodyn import quantities
from neurodyn.quantities import MissingUnitError, QuantityError, parse_quantity, si_text, stored_text

#: every dimension a field can have, with the unit a plain number is suggested in
DIMENSIONS = sorted(quantities.SUGGESTED_UNIT.items())


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
        ("8mV", "voltage", 8e-3),
        (0, "voltage", 0.0),
        (0.0, "time", 0.0),
        ("0", "frequency", 0.0),
        (3, "dimensionless", 3.0),
        ("0.25", "dimensionless", 0.25),
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


@pytest.mark.parametrize(("dimension", "unit"), DIMENSIONS)
@pytest.mark.parametrize(("value", "written"), [(8, "8"), (0.5, "0.5"), ("8", "8"), (-65, "-65"), (2.5e-3, "0.0025")])
def test_plain_number_of_every_dimension_is_refused_with_a_suggested_unit(dimension, unit, value, written):
    with pytest.raises(MissingUnitError) as info:
        parse_quantity(value, dimension)
    assert str(info.value) == f"a {dimension} needs a unit, e.g. '{written} {unit}'"


@pytest.mark.parametrize(("dimension", "unit"), DIMENSIONS)
@pytest.mark.parametrize("zero", [0, 0.0, -0.0, "0", "0.0", " 0 "])
def test_zero_needs_no_unit(dimension, unit, zero):
    assert parse_quantity(zero, dimension) == 0.0


def test_stored_text_reads_plain_numbers_as_si_in_its_own_context_only():
    with stored_text():
        assert parse_quantity(0.02, "time") == 0.02 and parse_quantity("-0.065", "voltage") == -0.065
        assert parse_quantity("20 ms", "time") == 0.02  # text with units reads as always
        # another thread is not inside the block: user input read there is refused as everywhere
        seen = []
        worker = threading.Thread(target=lambda: seen.append(_refused(0.02, "time")))
        worker.start()
        worker.join(timeout=60)
        assert seen == [True]
    assert _refused(0.02, "time")


def _refused(value, dimension) -> bool:
    try:
        parse_quantity(value, dimension)
    except MissingUnitError:
        return True
    return False


@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([d for d, _ in DIMENSIONS]),
)
def test_si_text_reads_back_bit_for_bit(x, dimension):
    text = si_text(x, dimension)
    assert text.endswith(" " + quantities.SI_UNITS[dimension])
    back = parse_quantity(text, dimension)
    assert back == x and math.copysign(1.0, back) == math.copysign(1.0, x)


def test_unit_table_agrees_with_brian2():
    """Every prefixed unit read here has the scale of Brian2's unit of that name (``mV`` -> ``mvolt``)."""
    allunits = pytest.importorskip("brian2.units.allunits")
    from brian2.units.fundamentalunits import Quantity

    #: dimension -> (symbols of its base unit here, Brian2's name of that unit)
    base = {
        "time": (("s", "second"), "second"),
        "voltage": (("V", "volt"), "volt"),
        "frequency": (("Hz", "hertz"), "hertz"),
        "conductance": (("S", "siemens"), "siemens"),
        "current": (("A", "amp"), "amp"),
        "capacitance": (("F", "farad"), "farad"),
        "resistance": (("ohm", "Ohm"), "ohm"),
        "length": (("m", "metre", "meter"), "metre"),
    }
    checked = set()
    for symbol, (dimension, scale) in quantities.UNITS.items():
        if dimension == "dimensionless" or symbol in ("min", "h"):
            continue
        symbols, name = base[dimension]
        prefix = next(symbol[: -len(b)] for b in sorted(symbols, key=len, reverse=True) if symbol.endswith(b))
        theirs = getattr(allunits, prefix.replace("µ", "u").replace("μ", "u") + name)
        assert isinstance(theirs, Quantity) and theirs.dim is getattr(allunits, name).dim, symbol
        assert math.isclose(float(theirs), scale, rel_tol=1e-15), (symbol, float(theirs), scale)
        checked.add(symbol)
    assert {"ms", "mV", "Hz", "nS", "pA", "nA", "pF", "Mohm", "mm", "um"} <= checked
    assert quantities.UNITS["min"] == ("time", 60.0) and quantities.UNITS["h"] == ("time", 3600.0)
