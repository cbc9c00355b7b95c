"""``eqprop``: layered Hopfield networks trained by equilibrium propagation.

Experiments (``params.experiment``): ``train`` (digits, EP beside a backprop baseline),
``gradient_theorem`` (EP gradient vs finite differences over beta) and ``bptt_match`` (discrete-time EP
updates vs truncated BPTT). Documentation: ``docs/eqprop.md``.

The package has the house layout: :mod:`.params` (the scenario schema), :mod:`.build` (checks and what is
built once: layout, digits split, starting weights, the gradient experiments' network and batch),
:mod:`.kernels` (Numba), :mod:`.engine` (the experiments, dispatched through ``EXPERIMENTS``),
:mod:`.dataset` (the stored result), :mod:`.theory` (predictions and compare rows), :mod:`.plots`
(figures and the summary).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr

from neurodyn.families import base
from neurodyn.families.eqprop import build as _build
from neurodyn.families.eqprop.build import EqPropBuilt
from neurodyn.families.eqprop.params import EqPropParams

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from neurodyn.progress import Progress
    from neurodyn.rows import Row
    from neurodyn.scenario import Scenario


class EqProp(base.Family):
    """Equilibrium propagation in layered Hopfield networks (Scellier & Bengio 2017)."""

    name = "eqprop"
    description = "equilibrium propagation: Hopfield nets, EP gradient theorem, EP vs BPTT, digits vs backprop"
    Params = EqPropParams
    needs_time = False

    def check(self, scenario: Scenario) -> None:
        _build.check(scenario)

    def build(self, scenario: Scenario) -> EqPropBuilt:
        return _build.build(scenario)

    def simulate(self, built: EqPropBuilt, progress: Progress) -> xr.Dataset:
        from neurodyn.families.eqprop.engine import simulate

        return simulate(built, progress)

    def theory(self, built: EqPropBuilt, ds: xr.Dataset) -> xr.Dataset:
        from neurodyn.families.eqprop.theory import theory

        return theory(built, ds)

    def compare_rows(self, ds: xr.Dataset) -> list[Row]:
        from neurodyn.families.eqprop.theory import compare_rows

        return compare_rows(ds)

    def figures(self, ds: xr.Dataset) -> list[Figure]:
        from neurodyn.families.eqprop.plots import figures

        return figures(ds)

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        from neurodyn.families.eqprop.plots import plot_run

        return plot_run(ds, out_dir, stem)

    def summary(self, ds: xr.Dataset) -> str:
        from neurodyn.families.eqprop.plots import summary

        return summary(ds)
