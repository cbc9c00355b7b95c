"""The family protocol: how a model family plugs into the pipeline.

A family is a class with a registry ``name``, a pydantic ``Params`` model (validated, unit-resolved
parameters), an optional ``Record`` model (what to sample), and four methods:

``check(scenario)``
    Cross-field checks that need the run configuration (stability limits, memory estimates). Raise
    :class:`~neurodyn.errors.ScenarioError` or :class:`~neurodyn.errors.ResourceError` *before* anything
    big is allocated.
``simulate(scenario, progress)``
    Build the state from ``scenario.params`` and a seeded RNG, advance it with Numba kernels in chunks
    (see :func:`neurodyn.runner.run_chunked`) and return the recorded :class:`xarray.Dataset`.
``theory(scenario, ds)``
    Predictions as a Dataset of ``*_theory`` / ``*_bound`` variables, merged beside the simulated ones.
    Each carries ``units``, ``long_name``, ``source`` (formula and citation) and optionally ``rel_tol``.
``compare_rows(ds)`` and ``plot(ds, out_dir)``
    Optional extra rows for ``neurodyn compare`` (the generic rows come from the ``_theory`` and
    ``_bound`` variables) and the family's figures.

No stage outside the family knows a family by name.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import xarray as xr
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # pragma: no cover
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

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        """Write the family's figures into ``out_dir`` and return their paths."""
        return []

    def summary(self, ds: xr.Dataset) -> str:
        """A few human lines printed after ``neurodyn run``."""
        return ""


def var_attrs(units: str, long_name: str, **extra: Any) -> dict[str, Any]:
    """Attributes every stored variable carries."""
    return {"units": units, "long_name": long_name, **extra}
