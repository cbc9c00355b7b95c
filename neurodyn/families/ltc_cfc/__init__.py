"""``ltc_cfc``: liquid time-constant (LTC) and closed-form continuous-time (CfC) networks.

Experiments (``params.experiment``): ``bounds`` (Theorems 1-2 of the LTC paper under the adaptive, fused and
explicit-Euler solutions), ``closed_form`` (Lemma 1 of the CfC paper), ``speed`` (time per sequence at equal
accuracy) and ``xor`` (bit-stream XOR trained by exact BPTT). Documentation: ``docs/ltc_cfc.md``.

The package has the house layout: :mod:`.params`, :mod:`.build`, :mod:`.kernels` (Numba), :mod:`.engine` (the
experiments, dispatched through ``EXPERIMENTS``), :mod:`.dataset`, :mod:`.theory`, :mod:`.plots`. Extras:
:mod:`.solvers` (the solvers every experiment and test shares), :mod:`.speed` and :mod:`.xor` (the two larger
experiments), :mod:`.published` (the papers' published figures, set beside ours).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr

from neurodyn.families import base
from neurodyn.families.ltc_cfc.params import LTCParams

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from neurodyn.families.ltc_cfc.build import LTCBuilt
    from neurodyn.progress import Progress
    from neurodyn.rows import Row
    from neurodyn.scenario import Scenario


class LTCCfC(base.Family):
    """Liquid time-constant networks and their closed-form approximation (Hasani et al. 2021, 2022)."""

    name = "ltc_cfc"
    description = "liquid time-constant and closed-form continuous-time networks: bounds, Lemma 1, speed, XOR"
    Params = LTCParams
    needs_time = False

    def check(self, scenario: Scenario) -> None:
        from neurodyn.families.ltc_cfc.build import check

        check(scenario)

    def build(self, scenario: Scenario) -> LTCBuilt:
        from neurodyn.families.ltc_cfc.build import build

        return build(scenario)

    def simulate(self, built: LTCBuilt, progress: Progress) -> xr.Dataset:
        from neurodyn.families.ltc_cfc.engine import simulate

        return simulate(built, progress)

    def theory(self, built: LTCBuilt, ds: xr.Dataset) -> xr.Dataset:
        from neurodyn.families.ltc_cfc.theory import theory

        return theory(built, ds)

    def compare_rows(self, ds: xr.Dataset) -> list[Row]:
        from neurodyn.families.ltc_cfc.theory import compare_rows

        return compare_rows(ds)

    def figures(self, ds: xr.Dataset) -> list[Figure]:
        from neurodyn.families.ltc_cfc.plots import figures

        return figures(ds)

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        from neurodyn.families.ltc_cfc.plots import plot_run

        return plot_run(ds, out_dir, stem)

    def summary(self, ds: xr.Dataset) -> str:
        from neurodyn.families.ltc_cfc.dataset import summary

        return summary(ds)
