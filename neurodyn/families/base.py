"""The family protocol: how a model family plugs into the pipeline.

A family is a class with a registry ``name``, a pydantic ``Params`` model (validated, unit-resolved
parameters), an optional ``Record`` model (what to sample), and four methods:

``check(scenario)``
    Every refusal the run would make, decided from the validated scenario alone: cross-field checks that
    need the run configuration (stability limits, rules against population sizes, sampling intervals) and
    the memory estimate (:func:`neurodyn.resources.require_memory`). Raise
    :class:`~neurodyn.errors.ScenarioError` or :class:`~neurodyn.errors.ResourceError` *before* anything
    big is allocated. ``neurodyn validate``, ``neurodyn run`` and the sweep planner (once per point,
    before any point runs) all call it, so what ``validate`` accepts a run does not refuse.
``simulate(scenario, progress)``
    Build the state from ``scenario.params`` and a seeded RNG, advance it with Numba kernels in chunks
    (see :func:`neurodyn.runner.run_chunked`) and return the recorded :class:`xarray.Dataset`.
``theory(scenario, ds)``
    Predictions as a Dataset of ``*_theory`` / ``*_bound`` variables, merged beside the simulated ones.
    Each carries ``units``, ``long_name``, ``source`` (formula and citation) and optionally ``rel_tol``.
``compare_rows(ds)``, ``figures(ds)`` and ``plot(ds, out_dir, stem)``
    Optional extra rows for ``neurodyn compare`` (the generic rows come from the ``_theory`` and
    ``_bound`` variables), the family's figures as matplotlib Figures, and the same figures written to
    files (see :mod:`neurodyn.plotting`).

No stage outside the family knows a family by name.
"""

from __future__ import annotations

import abc
import functools
import math
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import xarray as xr
from pydantic import BaseModel, ConfigDict, model_validator

from neurodyn.errors import FieldIssue

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from neurodyn.compare import Row
    from neurodyn.progress import Progress
    from neurodyn.scenario import Scenario


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


class Family(abc.ABC):
    """Base class of a model family (see module docstring)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]]
    Record: ClassVar[type[BaseModel]] = NoRecord
    #: backends accepted in ``run.backend``
    backends: ClassVar[tuple[str, ...]] = ("numba",)
    #: whether ``run.duration`` and ``run.dt`` are required
    needs_time: ClassVar[bool] = True

    def check(self, scenario: Scenario) -> None:  # noqa: B027 - optional hook
        """Validate what needs both params and run settings; raise a UserError to refuse."""

    @abc.abstractmethod
    def simulate(self, scenario: Scenario, progress: Progress) -> xr.Dataset:
        """Run the scenario and return the recorded Dataset."""

    def theory(self, scenario: Scenario, ds: xr.Dataset) -> xr.Dataset:
        """Return theory predictions (``*_theory``/``*_bound`` variables) for this run."""
        return xr.Dataset()

    def compare_rows(self, ds: xr.Dataset) -> list[Row]:
        """Extra rows for ``neurodyn compare`` beyond the generic ``_theory``/``_bound`` pairs."""
        return []

    def figures(self, ds: xr.Dataset) -> list[Figure]:
        """The family's figures as (pyplot) matplotlib Figures, left open, for :func:`neurodyn.plot`.

        Each is labelled (:meth:`~matplotlib.figure.Figure.set_label`) with the suffix of the file
        :meth:`plot` writes it to; :meth:`plot` draws them with this same method.
        """
        return []

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        """Write the family's figures into ``out_dir`` and return their paths."""
        return []

    def summary(self, ds: xr.Dataset) -> str:
        """A few human lines printed after ``neurodyn run``."""
        return ""


def var_attrs(units: str, long_name: str, **extra: Any) -> dict[str, Any]:
    """Attributes every stored variable carries."""
    return {"units": units, "long_name": long_name, **extra}
