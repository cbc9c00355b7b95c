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
    (see :func:`neurodyn.stepping.run_chunked`) and return the recorded :class:`xarray.Dataset`.
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
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import xarray as xr
from pydantic import BaseModel

# The scenario models' base and the variable attributes live in the leaf module :mod:`neurodyn.schema`;
# they are re-exported here for code written against this module.
from neurodyn.schema import INT_LIMIT, NoRecord, StrictModel, var_attrs  # noqa: F401

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from neurodyn.progress import Progress
    from neurodyn.rows import Row
    from neurodyn.scenario import Scenario


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
