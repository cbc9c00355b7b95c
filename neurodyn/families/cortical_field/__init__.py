"""``cortical_field``: neural masses on a 2D lattice and their Klein–Gordon continuum limit.

The construction (documented in ``docs/cortical_field.md``) is a standard-physics reading of Cooray,
Cooray & Friston, "Canonical Cortical Field Theories" (arXiv:2308.10645, 2023), whose body was not
available: see :mod:`.params` for the equations and :mod:`.theory` for the predictions and their sources.

Modules: :mod:`.params` (the scenario schema), :mod:`.build` (checks and the variants built once),
:mod:`.kernels` (Numba), :mod:`.engine` (the time loop), :mod:`.dataset` (recordings and measurements),
:mod:`.modes` (the lattice's normal modes, shared by measurement and theory), :mod:`.theory`,
:mod:`.plots`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr

from neurodyn.families.base import Family
from neurodyn.families.cortical_field.params import CorticalParams, CorticalRecord

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from neurodyn.families.cortical_field.build import CorticalBuilt
    from neurodyn.progress import Progress
    from neurodyn.rows import Row
    from neurodyn.scenario import Scenario


class CorticalField(Family):
    """Klein–Gordon fields of neural masses on a lattice: dispersion, energy, pulses, noise spectra."""

    name = "cortical_field"
    description = "neural masses on a 2D lattice / Klein-Gordon continuum (leapfrog, BAOAB, RK4)"
    Params = CorticalParams
    Record = CorticalRecord

    def prepare(self, scenario: Scenario) -> CorticalBuilt:
        # the variants check() describes are the ones build() builds on: described once
        from neurodyn.families.cortical_field.build import build, check

        return build(scenario, check(scenario))

    def check(self, scenario: Scenario) -> None:
        from neurodyn.families.cortical_field.build import check

        check(scenario)

    def build(self, scenario: Scenario) -> CorticalBuilt:
        from neurodyn.families.cortical_field.build import build

        return build(scenario)

    def simulate(self, built: CorticalBuilt, progress: Progress) -> xr.Dataset:
        from neurodyn.families.cortical_field.engine import simulate

        return simulate(built, progress)

    def theory(self, built: CorticalBuilt, ds: xr.Dataset) -> xr.Dataset:
        from neurodyn.families.cortical_field.theory import theory

        return theory(built, ds)

    def compare_rows(self, ds: xr.Dataset) -> list[Row]:
        from neurodyn.families.cortical_field.theory import compare_rows

        return compare_rows(ds)

    def figures(self, ds: xr.Dataset) -> list[Figure]:
        from neurodyn.families.cortical_field.plots import figures

        return figures(ds)

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        from neurodyn.families.cortical_field.plots import plot_run

        return plot_run(ds, out_dir, stem)

    def summary(self, ds: xr.Dataset) -> str:
        from neurodyn.families.cortical_field.plots import summary

        return summary(ds)
