"""Physical quantities written as strings ("20 ms", "-65 mV", "5 Hz", "0.1 nS").

Every value of a dimensioned field (a time, a voltage, ...) carries its unit: a plain number is refused
with one line that suggests one (``params.synapses.0.weight = 8: a voltage needs a unit, e.g. '8 mV'``),
because a number read as SI would silently mean 8 V where a NEST or Brian2 user meant 8 mV. Two
exceptions: zero may be written without a unit (it is zero in every unit, as Brian2 also lets ``0`` stand
for any quantity), and plain numbers stay fine for dimensionless fields (sizes, probabilities, ratios).

Everything is resolved once, at load time, to a float in SI units, so kernels never see units. Parsing is
a regular expression and a table lookup: nothing is ever evaluated. Scenarios are written back (the
``scenario`` attribute of a result file, :meth:`neurodyn.Scenario.to_yaml`) in SI units with their symbol
(``tau_m: 0.02 s``): exact, since an SI unit scales by 1.0, and read again under the same rule. Result files
of earlier versions stored SI numbers without units; :func:`stored_text` reads such stored text, never
what a user writes.

Use the annotated types (:data:`Time`, :data:`Voltage`, ...) as pydantic field types; they accept a string
with a unit of the right kind (or 0) and reject everything else with a message naming what is allowed.

Why not pint or Brian2's units: measured on this project's 2-core machine (Python 3.11), this module adds
about 14 ms to start-up on top of pydantic (which loading a scenario imports anyway) and parses a value in
about 3 us; ``import pint`` plus its ``UnitRegistry()`` take about 1.1 s and ``Quantity("20 ms").to("s")``
about 330 us per value; ``import brian2.units`` takes about 3.9 s (it imports all of Brian2, SymPy
included) and Brian2 parses strings only by evaluating them as expressions. Both would slow every command
several-fold for a table of eight dimensions; the table's scales are checked against Brian2's units in the
tests instead.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer
from pydantic_core import PydanticCustomError

# Dimension -> base unit symbol -> scale to SI.
_BASE_UNITS: dict[str, dict[str, float]] = {
    "time": {"s": 1.0, "second": 1.0, "min": 60.0, "h": 3600.0},
    "voltage": {"V": 1.0, "volt": 1.0},
    "frequency": {"Hz": 1.0, "hertz": 1.0},
    "conductance": {"S": 1.0, "siemens": 1.0},
    "current": {"A": 1.0, "amp": 1.0},
    "capacitance": {"F": 1.0, "farad": 1.0},
    "resistance": {"ohm": 1.0, "Ohm": 1.0},
    "length": {"m": 1.0, "metre": 1.0, "meter": 1.0},
    "dimensionless": {"1": 1.0},
}
_PREFIXES = {
    "": 1.0,
    "G": 1e9,
    "M": 1e6,
    "k": 1e3,
    "c": 1e-2,
    "m": 1e-3,
    "u": 1e-6,
    "µ": 1e-6,
    "μ": 1e-6,
    "n": 1e-9,
    "p": 1e-12,
    "f": 1e-15,
}
_DIM_EXAMPLE = {
    "time": "'20 ms'",
    "voltage": "'-65 mV'",
    "frequency": "'5 Hz'",
    "conductance": "'0.1 nS'",
    "current": "'0.5 nA'",
    "capacitance": "'200 pF'",
    "resistance": "'100 Mohm'",
    "length": "'1 mm'",
    "dimensionless": "0.5",
}
#: the unit suggested for a plain number of each dimension: the one NEST and Brian2 users write it in
SUGGESTED_UNIT = {
    "time": "ms",
    "voltage": "mV",
    "frequency": "Hz",
    "conductance": "nS",
    "current": "pA",
    "capacitance": "pF",
    "resistance": "Mohm",
    "length": "mm",
}
#: the SI unit symbol of each dimension: what a resolved value, a stored variable's ``units`` and a stored
#: scenario's values are in (its scale is exactly 1.0, so a value written with it reads back bit for bit)
SI_UNITS: dict[str, str] = {
    "time": "s",
    "voltage": "V",
    "frequency": "Hz",
    "conductance": "S",
    "current": "A",
    "capacitance": "F",
    "resistance": "ohm",
    "length": "m",
    "dimensionless": "1",
}
_NO_PREFIX = {"min", "h", "second", "volt", "hertz", "siemens", "amp", "farad", "metre", "meter", "1"}


def _build_table() -> dict[str, tuple[str, float]]:
    table: dict[str, tuple[str, float]] = {}
    for dim, units in _BASE_UNITS.items():
        for sym, scale in units.items():
            if sym in _NO_PREFIX:
                table.setdefault(sym, (dim, scale))
                continue
            for pre, pscale in _PREFIXES.items():
                table.setdefault(pre + sym, (dim, scale * pscale))
    # "m" alone is metre, "ms" is millisecond, "mm" millimetre: setdefault order keeps the base unit.
    table["m"] = ("length", 1.0)
    return table


UNITS: dict[str, tuple[str, float]] = _build_table()
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_QUANTITY_RE = re.compile(rf"^\s*({_NUMBER})\s*\*?\s*([A-Za-zµμ]+\d?)?\s*$")
#: a number and an optional unit symbol (groups 1 and 2), as quantities are written
QUANTITY_RE = _QUANTITY_RE


class QuantityError(ValueError):
    """A value is not a quantity of the expected dimension (message lists what is allowed)."""


class QuantityTypeError(QuantityError):
    """The value is neither a number nor a string, so it cannot be a quantity at all."""


class MissingUnitError(QuantityError):
    """A plain number (other than 0) given where a quantity with a unit is required."""


#: whether plain numbers are read as SI: only while reading a scenario stored by an earlier version
_PLAIN_IS_SI: ContextVar[bool] = ContextVar("neurodyn_plain_numbers_are_si", default=False)


@contextlib.contextmanager
def stored_text() -> Iterator[None]:
    """Read plain numbers as SI values while the block runs: for scenario text a result file stores.

    Result files written before units were required store their scenario with SI numbers without units
    (``tau_m: 0.02``); this is how they still open. It applies to the current thread (or task) only and
    is never used for what a user writes: scenario files, ``--set`` values, mappings built in Python.

    Examples
    --------
    >>> with stored_text():
    ...     parse_quantity(0.02, "time")
    0.02
    """
    token = _PLAIN_IS_SI.set(True)
    try:
        yield
    finally:
        _PLAIN_IS_SI.reset(token)


def si_text(value: float, dimension: str) -> str:
    """``value`` (SI) written with its SI unit, exactly: ``si_text(0.02, "time") == "0.02 s"``.

    ``repr`` is the shortest text that reads back to the same float, and the SI unit scales by 1.0, so
    :func:`parse_quantity` of the result is ``value`` bit for bit.
    """
    return f"{float(value)!r} {SI_UNITS[dimension]}"


def _plain(value: float | int, written: str, dimension: str) -> float:
    """A plain number for ``dimension``: accepted if dimensionless, zero, or stored text; else refused."""
    out = float(value)
    if dimension == "dimensionless" or out == 0 or _PLAIN_IS_SI.get() or not math.isfinite(out):
        return out
    raise MissingUnitError(f"a {dimension} needs a unit, e.g. '{written} {SUGGESTED_UNIT[dimension]}'")


def parse_quantity(value: object, dimension: str) -> float:
    """Resolve ``value`` to a float in SI units of ``dimension``.

    Parameters
    ----------
    value : str, float or int
        A string ``"<number> <unit>"`` such as ``"20 ms"``; a plain number only if it is 0 or the
        dimension is ``dimensionless`` (or inside :func:`stored_text`, where plain numbers are SI).
    dimension : str
        One of ``time``, ``voltage``, ``frequency``, ``conductance``, ``current``, ``capacitance``,
        ``resistance``, ``length``, ``dimensionless``.

    Returns
    -------
    float
        The value in SI units.

    Raises
    ------
    MissingUnitError
        If a plain number other than 0 is given for a dimensioned value (the message suggests a unit).
    QuantityError
        If the string cannot be parsed or its unit has another dimension.

    Examples
    --------
    >>> parse_quantity("20 ms", "time")
    0.02
    >>> parse_quantity(0, "voltage")
    0.0
    >>> parse_quantity(8, "voltage")
    Traceback (most recent call last):
    ...
    neurodyn.quantities.MissingUnitError: a voltage needs a unit, e.g. '8 mV'
    """
    allowed = f"expected a {dimension} such as {_DIM_EXAMPLE[dimension]}"
    if isinstance(value, bool):
        raise QuantityTypeError(allowed)
    if isinstance(value, int | float):
        out = _plain(value, _number_text(value), dimension)
    elif isinstance(value, str):
        m = _QUANTITY_RE.match(value)
        if not m:
            raise QuantityError(f"cannot read this as a number with a unit; {allowed}")
        number, unit = float(m.group(1)), m.group(2)
        if unit is None:
            out = _plain(number, m.group(1), dimension)
        else:
            if unit not in UNITS:
                raise QuantityError(f"unknown unit {unit!r}; {allowed}")
            dim, scale = UNITS[unit]
            if dim != dimension:
                raise QuantityError(f"{unit!r} is a {dim}, {allowed}")
            out = number * scale
    else:
        raise QuantityTypeError(allowed)
    if not math.isfinite(out):  # also a finite number times its unit's scale that overflows ('1e400 ms')
        raise QuantityError("must be a finite number")
    return out


def _number_text(value: float | int) -> str:
    """A plain number as the user wrote it, for the suggestion: ``8``, ``0.5``, ``1e-05``."""
    text = repr(value)
    return text if len(text) <= 12 else f"{value:.10g}"


def _validator(dimension: str):
    def check(value: object) -> float:
        try:
            return parse_quantity(value, dimension)
        except QuantityTypeError as exc:
            # A type error, like pydantic's own ``float_type``: when the field is a union (a voltage or a
            # {uniform: [lo, hi]} mapping), the scenario loader then reports the member that fits the input.
            raise PydanticCustomError("quantity_type", str(exc)) from None
        except QuantityError as exc:  # pydantic turns ValueError into a field error
            raise ValueError(str(exc)) from None

    return check


def _serializer(dimension: str):
    def text(value: float) -> str:
        return si_text(value, dimension)

    return text


def _quantity_type(dimension: str):
    # In JSON mode (what Scenario.to_yaml writes) a quantity is its SI value with the SI unit, so the text
    # reads back under the rule that plain numbers need a unit; in Python mode it stays a float.
    return Annotated[
        float,
        BeforeValidator(_validator(dimension)),
        PlainSerializer(_serializer(dimension), return_type=str, when_used="json"),
    ]


Time = _quantity_type("time")
Voltage = _quantity_type("voltage")
Frequency = _quantity_type("frequency")
Conductance = _quantity_type("conductance")
Current = _quantity_type("current")
Capacitance = _quantity_type("capacitance")
Resistance = _quantity_type("resistance")
Length = _quantity_type("length")


# --------------------------------------------------------------------------- sign constraints
# One home for the "must be positive" checks every family needs; the message names what is allowed.


def _sign_check(strict: bool, example: str):
    def check(value: float) -> float:
        if not (value > 0 if strict else value >= 0):
            raise ValueError(f"must be {'positive' if strict else 'non-negative (>= 0)'}{example}")
        return value

    return check


Positive = Annotated[float, AfterValidator(_sign_check(True, ""))]
NonNegative = Annotated[float, AfterValidator(_sign_check(False, ""))]
PositiveTime = Annotated[Time, AfterValidator(_sign_check(True, ", a time such as '20 ms'"))]
NonNegativeTime = Annotated[Time, AfterValidator(_sign_check(False, ", a time such as '2 ms'"))]
PositiveLength = Annotated[Length, AfterValidator(_sign_check(True, ", a length such as '1 mm'"))]
PositiveConductance = Annotated[Conductance, AfterValidator(_sign_check(True, ", a conductance such as '10 nS'"))]


# --------------------------------------------------------------------------- what a field type is, for people
# The parameter reference, the sweep planner and every table of numbers read units from here: the field
# types above are recognised by their validators (the same objects in every field that uses the type).


def _marks() -> tuple[dict[int, str], dict[int, str]]:
    """``id(validator function) -> dimension`` of the quantity types, ``-> constraint`` of the sign checks."""
    dims: dict[int, str] = {}
    for dim in _BASE_UNITS:
        tp = globals().get(dim.capitalize())
        if tp is not None:
            dims[id(tp.__metadata__[0].func)] = dim
    signs: dict[int, str] = {}
    for tp, text in (
        (Positive, "> 0"),
        (NonNegative, ">= 0"),
        (PositiveTime, "> 0"),
        (NonNegativeTime, ">= 0"),
        (PositiveLength, "> 0"),
        (PositiveConductance, "> 0"),
    ):
        signs[id(tp.__metadata__[-1].func)] = text
    return dims, signs


_DIMENSION_OF, _CONSTRAINT_OF = _marks()


def dimension_of(metadata: list[object] | tuple[object, ...]) -> str | None:
    """The dimension (``"time"``, ``"voltage"``, ...) of a field whose pydantic metadata is ``metadata``.

    Parameters
    ----------
    metadata : sequence
        A pydantic ``FieldInfo.metadata`` or the ``__metadata__`` of an ``Annotated`` type.

    Returns
    -------
    str or None
        None when the field is no quantity type of this module.
    """
    for meta in metadata:
        found = _DIMENSION_OF.get(id(getattr(meta, "func", None)))
        if found is not None:
            return found
    return None


def constraint_of(metadata: list[object] | tuple[object, ...]) -> str | None:
    """The sign constraint (``"> 0"``, ``">= 0"``) a type of this module (:data:`PositiveTime`, ...) adds."""
    for meta in metadata:
        found = _CONSTRAINT_OF.get(id(getattr(meta, "func", None)))
        if found is not None:
            return found
    return None


#: SI prefixes used to show a value, largest first (the symbols :func:`parse_quantity` reads back)
_SHOW_PREFIXES = (("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0), ("m", 1e-3), ("µ", 1e-6), ("n", 1e-9), ("p", 1e-12))
#: units shown with an SI prefix; seconds go no higher than the second itself (no "ks")
_PREFIXABLE = {"V", "Hz", "S", "A", "F", "ohm", "m", "s"}


def format_quantity(value: float, units: str = "", digits: int = 4) -> str:
    """A number as people read it: ``digits`` significant digits, an SI prefix where the unit takes one.

    ``format_quantity(0.0123, "V")`` is ``'12.3 mV'``, ``format_quantity(2.257e20)`` is ``'2.257e+20'``,
    ``format_quantity(1.1446, "s", 3)`` is ``'1.14 s'``. Dimensionless units (``"1"`` or ``""``) are not
    shown; other units (``"rad/s"``) follow the number unchanged. The text reads back with
    :func:`parse_quantity` when the unit is one of its symbols.

    Parameters
    ----------
    value : float
        The value, in ``units``.
    units : str
        The unit the value is in (a stored variable's ``units`` attribute).
    digits : int
        Significant digits.
    """
    value = float(value)
    shown = "" if units in ("", "1") else units
    if not math.isfinite(value):
        return f"{value} {shown}".rstrip()
    if shown in _PREFIXABLE and value != 0:
        top = 1.0 if shown == "s" else 1e9
        for prefix, scale in _SHOW_PREFIXES:
            if scale <= top and abs(value) >= scale * (1 - 0.5 * 10.0 ** (1 - digits)):
                if abs(value) / scale < 1000:
                    return f"{value / scale:.{digits}g} {prefix}{shown}"
                break
    return f"{value:.{digits}g} {shown}".rstrip()


def unit_scale(symbol: str) -> tuple[str, float] | None:
    """``(dimension, scale to SI)`` of a unit symbol such as ``"mV"``, None if it is not one."""
    return UNITS.get(symbol)


def in_unit(value: float, symbol: str) -> float:
    """An SI ``value`` expressed in the unit ``symbol`` (``in_unit(0.0005, "mV")`` is ``0.5``).

    The result is rounded to 12 significant digits, so a value written as ``0.5 mV`` comes back as 0.5
    (not 0.49999999999999994). Raises KeyError for a symbol that is no unit.
    """
    return float(f"{value / UNITS[symbol][1]:.12g}")
