"""``ultralif_network``: UltraLIF / UltraDLIF spiking networks trained by exact BPTT in Numba.

Experiments (``params.experiment``): ``train`` (every neuron kind on digits or a generated event task)
and ``bounds`` (the eps -> 0 limit against the paper's bounds). Documentation: docs/ultralif.md.

The package has the house layout: :mod:`.params` (the scenario schema and the kinds' codes), :mod:`.build`
(checks and what is built once: task, networks, the bounds experiment's random inputs), :mod:`.kernels`
(Numba), :mod:`.engine` (the experiments, dispatched through ``EXPERIMENTS``), :mod:`.dataset` (the
stored result), :mod:`.theory` (the paper's bounds), :mod:`.plots` (figures and the summary). Three
extras: :mod:`.data` (the digits split and the generated event-stream task), :mod:`.fastmath`
(vectorisable exp/log1p/logistic the kernels need to vectorise) and :mod:`.reference` (an independent
NumPy implementation the tests and the benchmark compare the kernels with; the run never imports it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr

from neurodyn.families import base
from neurodyn.families.ultralif_network import build as _build
from neurodyn.families.ultralif_network.build import UltraLIFBuilt
from neurodyn.families.ultralif_network.params import UltraLIFParams

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from neurodyn.progress import Progress
    from neurodyn.scenario import Scenario


class UltraLIFNetwork(base.Family):
    """Classical, max-plus, UltraLIF and UltraDLIF (+P) networks: training and eps -> 0 bounds."""

    name = "ultralif_network"
    description = "UltraLIF/UltraDLIF max-plus spiking networks, exact BPTT, LSE bounds (arXiv:2602.11206)"
    Params = UltraLIFParams
    needs_time = False

    def check(self, scenario: Scenario) -> None:
        _build.check(scenario)

    def build(self, scenario: Scenario) -> UltraLIFBuilt:
        return _build.build(scenario)

    def simulate(self, built: UltraLIFBuilt, progress: Progress) -> xr.Dataset:
        from neurodyn.families.ultralif_network.engine import simulate

        return simulate(built, progress)

    def theory(self, built: UltraLIFBuilt, ds: xr.Dataset) -> xr.Dataset:
        from neurodyn.families.ultralif_network.theory import theory

        return theory(built, ds)

    def figures(self, ds: xr.Dataset) -> list[Figure]:
        from neurodyn.families.ultralif_network.plots import figures

        return figures(ds)

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        from neurodyn.families.ultralif_network.plots import plot_run

        return plot_run(ds, out_dir, stem)

    def summary(self, ds: xr.Dataset) -> str:
        from neurodyn.families.ultralif_network.plots import summary

        return summary(ds)
