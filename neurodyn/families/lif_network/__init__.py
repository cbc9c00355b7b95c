"""``lif_network``: networks of leaky integrate-and-fire neurons (see :mod:`.params` for the equations).

The modules: :mod:`.params` (the scenario schema), :mod:`.build` (checks, then the network built once),
:mod:`.kernels` (Numba), :mod:`.engine` (the Numba time loop), :mod:`.brian2_backend` (the same network
in Brian2), :mod:`.dataset` (the result's layout), :mod:`.theory` (predicted rates), :mod:`.plots`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr

from neurodyn.families.base import Family
from neurodyn.families.lif_network.params import LIFParams, LIFRecord

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from neurodyn.families.lif_network.build import LIFBuilt
    from neurodyn.progress import Progress
    from neurodyn.scenario import Scenario


class LIFNetwork(Family):
    """LIF spiking networks: CUBA/COBA exponential synapses, delays, refractoriness, external input."""

    name = "lif_network"
    description = "LIF spiking networks (CUBA/COBA, delays, Poisson/noise input); Brian2 and NEST backends"
    Params = LIFParams
    Record = LIFRecord
    #: ``brian2`` picks Brian2's code generation target itself; ``brian2:<target>`` names it
    backends = ("numba", "brian2", "brian2:numpy", "brian2:cython", "nest")
    #: ``neurodyn export --to nest`` writes a standalone PyNEST script; ``neurodyn import-nest`` reads its output
    exports = ("nest",)

    def check(self, scenario: Scenario) -> None:
        from neurodyn.families.lif_network import build

        build.check(scenario)
        if scenario.run.backend.partition(":")[0] == "brian2":  # then what only Brian2 would refuse
            from neurodyn.families.lif_network.brian2_backend import check_brian2

            check_brian2(scenario.params, scenario.run)
        elif scenario.run.backend == "nest":  # what only NEST would refuse
            from neurodyn.families.lif_network.nest_backend import check_nest

            check_nest(scenario)

    def recording_estimate(self, scenario: Scenario) -> str:
        from neurodyn.families.lif_network import build

        return build.recording_estimate(scenario)

    def build(self, scenario: Scenario) -> LIFBuilt:
        from neurodyn.families.lif_network import build

        return build.build(scenario)

    def simulate(self, built: LIFBuilt, progress: Progress) -> xr.Dataset:
        if built.backend == "brian2":
            from neurodyn.families.lif_network import brian2_backend as backend
        elif built.backend == "nest":
            from neurodyn.families.lif_network import nest_backend as backend
        else:
            from neurodyn.families.lif_network import engine as backend
        return backend.simulate(built, progress)

    def export(self, scenario: Scenario, to: str) -> str:
        from neurodyn import __version__
        from neurodyn.families.lif_network.nest_backend import check_nest_rules
        from neurodyn.families.lif_network.nest_export import export_script

        if scenario.run.backend != "nest":
            scenario = scenario.with_values({"run.backend": "nest"})  # what the script's result will say
        check_nest_rules(scenario)
        return export_script(scenario, __version__)

    def import_run(self, scenario: Scenario, source: str, folder: Path) -> xr.Dataset:
        from neurodyn.families.lif_network.nest_export import read_nest_output

        return read_nest_output(self.build(scenario), folder)

    def theory(self, built: LIFBuilt, ds: xr.Dataset) -> xr.Dataset:
        from neurodyn.families.lif_network import theory

        return theory.theory(built, ds)

    def figures(self, ds: xr.Dataset) -> list[Figure]:
        from neurodyn.families.lif_network import plots

        return plots.figures(ds)

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        from neurodyn.families.lif_network import plots

        return plots.plot_run(ds, out_dir, stem)

    def summary(self, ds: xr.Dataset) -> str:
        from neurodyn.families.lif_network import dataset

        return dataset.summary(ds)
