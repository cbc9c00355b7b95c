"""``lif_network``: networks of leaky integrate-and-fire neurons (see :mod:`.params` for the equations)."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from neurodyn.families.base import Family
from neurodyn.families.lif_network.params import LIFParams, LIFRecord


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

    def check(self, scenario) -> None:
        from neurodyn.families.lif_network.network import check_resources

        check_resources(scenario)
        if scenario.run.backend.partition(":")[0] == "brian2":  # then what only Brian2 would refuse
            from neurodyn.families.lif_network.brian2_backend import check_brian2

            check_brian2(scenario)
        elif scenario.run.backend == "nest":
            from neurodyn.families.lif_network.nest_backend import check_nest

            check_nest(scenario)

    def simulate(self, built, progress) -> xr.Dataset:
        scenario = built.scenario
        if scenario.run.backend.partition(":")[0] == "brian2":
            from neurodyn.families.lif_network.brian2_backend import simulate_brian2

            return simulate_brian2(scenario, progress)
        if scenario.run.backend == "nest":
            from neurodyn.families.lif_network.nest_backend import simulate_nest

            return simulate_nest(scenario, progress)
        from neurodyn.families.lif_network.engine import simulate_numba

        return simulate_numba(scenario, progress)

    def export(self, scenario, to: str) -> str:
        from neurodyn import __version__
        from neurodyn.families.lif_network.nest_backend import check_nest_rules
        from neurodyn.families.lif_network.nest_export import export_script

        if scenario.run.backend != "nest":
            scenario = scenario.with_values({"run.backend": "nest"})  # what the script's result will say
        check_nest_rules(scenario)
        return export_script(scenario, __version__)

    def import_run(self, scenario, source: str, folder: Path) -> xr.Dataset:
        from neurodyn.families.lif_network.nest_export import read_nest_output

        return read_nest_output(scenario, folder)

    def theory(self, built, ds: xr.Dataset) -> xr.Dataset:
        scenario = built.scenario
        from neurodyn.families.lif_network.theory import theory_dataset

        return theory_dataset(scenario, ds)

    def figures(self, ds: xr.Dataset) -> list:
        from neurodyn.families.lif_network.plots import figures

        return figures(ds)

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        from neurodyn.families.lif_network.plots import plot_run

        return plot_run(ds, out_dir, stem)

    def summary(self, ds: xr.Dataset) -> str:
        lines = []
        if "rate" in ds:
            for pop in ds["population"].values:
                r = float(ds["rate"].sel(population=pop))
                cv = float(ds["cv_isi"].sel(population=pop)) if "cv_isi" in ds else float("nan")
                th = f", theory {float(ds['rate_theory'].sel(population=pop)):.2f} Hz" if "rate_theory" in ds else ""
                lines.append(f"  {pop}: {r:.2f} Hz{th}, ISI CV {cv:.2f}")
        if "spike_time" in ds:
            lines.insert(
                0,
                f"  {ds.sizes.get('spike', 0)} spikes from {ds.attrs.get('n_neurons', '?')} neurons "
                f"in {ds.attrs.get('duration', float('nan')):g} s",
            )
        return "\n".join(lines)
