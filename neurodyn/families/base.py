"""The family protocol: how a model family plugs into the pipeline.

A family is a class with a registry ``name``, a pydantic ``Params`` model (validated, unit-resolved
parameters), an optional ``Record`` model (what to sample), and a small explicit contract:

``prepare(scenario) -> Built``
    Everything decided before the run, in two halves. :meth:`~Family.check` makes every refusal the run
    would make from the validated scenario alone (cross-field rules, stability limits, the memory
    estimate through :func:`neurodyn.resources.require_memory`) and raises
    :class:`~neurodyn.errors.ScenarioError` or :class:`~neurodyn.errors.ResourceError` *before* anything
    big is allocated; :meth:`~Family.build` then builds what the run needs (network, lattice, graphs,
    data) once, into a :class:`Built`. ``neurodyn validate`` and the sweep planner (once per point) call
    the checking half, so validity has one definition: what ``validate`` accepts, a run does not refuse.
``simulate(built, progress) -> Dataset``
    Advance the built state with Numba kernels in chunks (:func:`neurodyn.stepping.run_chunked`) and
    return the recorded :class:`xarray.Dataset`.
``theory(built, ds) -> Dataset``
    Predictions as ``*_theory`` / ``*_bound`` variables, merged beside the simulated ones. Each carries
    ``units``, ``long_name``, ``source`` (formula and citation) and optionally ``rel_tol``.
``compare_rows(ds)``, ``figures(ds)``, ``plot(ds, out_dir, stem)``, ``summary(ds)``
    Optional: extra rows for ``neurodyn compare`` (the generic rows come from the ``_theory`` and
    ``_bound`` variables), the family's figures as matplotlib Figures, the same figures written to files
    (see :mod:`neurodyn.plotting`), and a few lines printed after a run. These read the result alone, so
    they work on any stored file.

No stage outside the family knows a family by name.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

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


@dataclass
class Built:
    """What :meth:`Family.build` made for one run: the scenario, and (in a family's subclass) its state.

    A family subclasses it with the objects it builds once (a network's connectivity, a lattice, graphs,
    a data split) and narrows ``params`` to its own model, so the family's code is typed end to end.
    """

    scenario: Scenario

    @property
    def params(self) -> Any:
        """The scenario's validated parameters (a family's subclass narrows the type)."""
        return self.scenario.params

    @property
    def record(self) -> Any:
        """What the scenario asks to record."""
        return self.scenario.record

    @property
    def run(self) -> Any:
        """The scenario's run settings (:class:`neurodyn.scenario.RunConfig`)."""
        return self.scenario.run


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
    #: other simulators ``neurodyn export --to`` writes a program for (see :meth:`export`, :meth:`import_run`)
    exports: ClassVar[tuple[str, ...]] = ()

    def prepare(self, scenario: Scenario) -> Built:
        """Check ``scenario`` (:meth:`check`), then build what its run needs (:meth:`build`)."""
        self.check(scenario)
        return self.build(scenario)

    def check(self, scenario: Scenario) -> None:  # noqa: B027 - optional hook
        """Refuse, with a :class:`~neurodyn.errors.UserError`, what the run would refuse; allocate nothing."""

    def recording_estimate(self, scenario: Scenario) -> str:
        """One line for ``neurodyn validate`` on the size of what the run records ("" when not estimated)."""
        return ""

    def build(self, scenario: Scenario) -> Built:
        """Build what the run needs, once, from a checked scenario (the default builds nothing)."""
        return Built(scenario)

    @abc.abstractmethod
    def simulate(self, built: Built, progress: Progress) -> xr.Dataset:
        """Run the built scenario and return the recorded Dataset."""

    def theory(self, built: Built, ds: xr.Dataset) -> xr.Dataset:
        """Return theory predictions (``*_theory``/``*_bound`` variables) for this run."""
        return xr.Dataset()

    def export(self, scenario: Scenario, to: str) -> str:
        """The source of a standalone program that runs ``scenario`` in the simulator ``to`` (one of :attr:`exports`).

        Raises the family's refusals (:class:`~neurodyn.errors.ScenarioError`) of what ``to`` cannot express.
        """
        raise NotImplementedError(f"{self.name} exports to no other simulator")

    def import_run(self, scenario: Scenario, source: str, folder: Path) -> xr.Dataset:
        """What the program :meth:`export` wrote for ``source`` recorded in ``folder``, as this family's Dataset.

        Theory and provenance are added by the caller, as for :meth:`simulate`.
        """
        raise NotImplementedError(f"{self.name} imports from no other simulator")

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
