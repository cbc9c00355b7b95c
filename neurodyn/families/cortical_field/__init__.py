"""``cortical_field``: neural masses on a 2D lattice and their Klein–Gordon continuum limit.

The construction (documented in ``docs/cortical_field.md``) is a standard-physics reading of Cooray,
Cooray & Friston, "Canonical Cortical Field Theories" (arXiv:2308.10645, 2023), whose body was not
available: see :mod:`.params` for the equations and :mod:`.theory` for the predictions and their sources.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr

from neurodyn.families.base import Family
from neurodyn.families.cortical_field.params import CorticalParams, CorticalRecord

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.rows import Row


class CorticalField(Family):
    """Klein–Gordon fields of neural masses on a lattice: dispersion, energy, pulses, noise spectra."""

    name = "cortical_field"
    description = "neural masses on a 2D lattice / Klein-Gordon continuum (leapfrog, BAOAB, RK4)"
    Params = CorticalParams
    Record = CorticalRecord

    def check(self, scenario) -> None:
        from neurodyn.families.cortical_field.engine import check_resources

        check_resources(scenario)

    def simulate(self, built, progress) -> xr.Dataset:
        scenario = built.scenario
        from neurodyn.families.cortical_field.dataset import build_dataset
        from neurodyn.families.cortical_field.engine import run_all

        return build_dataset(scenario, run_all(scenario, progress))

    def theory(self, built, ds: xr.Dataset) -> xr.Dataset:
        scenario = built.scenario
        from neurodyn.families.cortical_field.theory import theory_dataset

        return theory_dataset(scenario, ds)

    def compare_rows(self, ds: xr.Dataset) -> list[Row]:
        from neurodyn.families.cortical_field.theory import compare_rows

        return compare_rows(ds)

    def figures(self, ds: xr.Dataset) -> list:
        from neurodyn.families.cortical_field.plots import figures

        return figures(ds)

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        from neurodyn.families.cortical_field.plots import plot_run

        return plot_run(ds, out_dir, stem)

    def summary(self, ds: xr.Dataset) -> str:
        lines = [
            f"variants: {', '.join(map(str, ds.attrs.get('variants', [])))}; schemes: "
            f"{', '.join(ds.attrs.get('schemes', []))}; "
            + ", ".join(f"{r:.3g}" for r in ds.attrs.get("site_updates_per_s", []))
            + " site-updates/s (after the first chunk)"
        ]
        for name in ("energy_error_max", "spectrum_slope"):
            if name in ds:
                lines.append(f"{name}: {float(ds[name]):.4g}")
        if "pulse_speed" in ds:
            lines.append(
                "pulse_speed (x, y, diagonal): " + ", ".join(f"{v:.4g}" for v in ds["pulse_speed"].values) + " m/s"
            )
        if "convergence_order" in ds:
            lines.append("convergence_order: " + ", ".join(f"{v:.3f}" for v in ds["convergence_order"].values))
        lines.append("compare with theory: neurodyn compare <result>")
        return "\n".join(lines)
