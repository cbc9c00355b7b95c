"""What scenario models and stored variables are made of: the leaf every family's schema builds on.

:class:`StrictModel` is the base of every scenario model (unknown keys refused, every float finite, every
integer within int64); :data:`PositiveInt` is the field type families share for counts; :func:`var_attrs`
gives a stored variable the attributes every one carries. Dimensioned field types (times, voltages, ...)
are in :mod:`neurodyn.quantities`.
"""

from __future__ import annotations

import functools
import math
import typing
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from neurodyn.errors import FieldIssue

#: a count of one or more (neurons, samples, epochs, ...)
PositiveInt = Annotated[int, Field(ge=1)]


class StrictModel(BaseModel):
    """Base for every scenario model: unknown keys are errors, values are validated on assignment.

    Every float a scenario supplies must be finite: ``allow_inf_nan=False`` makes pydantic refuse NaN and
    infinity in every float of every model built on this base, including floats inside lists, tuples,
    mappings and union members, so no field can forget it. A field whose meaning allows a non-finite
    value says so in its docstring and opts out with ``Field(allow_inf_nan=True)``. Quantities with units
    (:mod:`neurodyn.quantities`) are finite too, including ones that overflow such as ``'1e400 ms'``.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)

    @model_validator(mode="after")
    def _values_in_range(self) -> StrictModel:
        # Free-form fields (typed ``Any``, such as a graph generator's ``args``) get no float validation
        # from pydantic, so their values are searched here: the same rule, with the same message.
        for name in _free_fields(type(self)):
            found = _first_nonfinite(getattr(self, name))
            if found is not None:
                subpath, value = found
                raise FieldIssue(".".join([name, *subpath]), value, "must be a finite number")
        # Python integers are unbounded, kernels' are 64-bit: an integer that does not fit would wrap
        # around or fail deep inside NumPy, so every integer a scenario supplies must fit in int64.
        for name in type(self).model_fields:
            found = _first_huge_int(getattr(self, name))
            if found is not None:
                subpath, value = found
                raise FieldIssue(".".join([name, *subpath]), value, f"must be an integer below 2**63 ({INT_LIMIT:.3g})")
        return self


#: bound on the magnitude of every integer a scenario supplies (int64, what the kernels use)
INT_LIMIT = 2**63 - 1


@functools.cache
def _free_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """Names of the fields of ``model`` whose type contains ``Any`` (values pydantic does not check)."""
    return tuple(name for name, info in model.model_fields.items() if _contains_any(info.annotation))


def _contains_any(tp: Any) -> bool:
    stack = [tp]
    while stack:
        t = stack.pop()
        if t is Any:
            return True
        stack.extend(typing.get_args(t))
    return False


def _first_nonfinite(value: Any) -> tuple[list[str], float] | None:
    """The path (components) and value of the first NaN or infinity in plain data, else None."""
    return _first_leaf(value, lambda x: isinstance(x, float) and not math.isfinite(x))


def _first_leaf(value: Any, bad: typing.Callable[[Any], bool]) -> tuple[list[str], Any] | None:
    """The path (components) and value of the first element of plain data (dicts, lists, tuples; nested
    models are not entered: they check their own fields) for which ``bad`` is true, else None."""
    stack: list[tuple[Any, list[str]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if bad(node):
            return path, node
        if isinstance(node, dict):
            stack.extend((v, [*path, str(k)]) for k, v in reversed(node.items()))
        elif isinstance(node, list | tuple):
            stack.extend((v, [*path, str(i)]) for i, v in reversed(list(enumerate(node))))
    return None


def _first_huge_int(value: Any) -> tuple[list[str], int] | None:
    """The path and value of the first integer beyond :data:`INT_LIMIT` in plain data, else None."""
    return _first_leaf(value, lambda x: isinstance(x, int) and not isinstance(x, bool) and abs(x) > INT_LIMIT)


class NoRecord(StrictModel):
    """A family without configurable recording."""


def var_attrs(units: str, long_name: str, **extra: Any) -> dict[str, Any]:
    """Attributes every stored variable carries."""
    return {"units": units, "long_name": long_name, **extra}
