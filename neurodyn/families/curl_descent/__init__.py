"""``curl_descent``: non-gradient learning with sign-diverse (rule-flipped) plasticity.

Experiments (``params.experiment``): ``stability``, ``chain``, ``chaos``, ``saddle_escape``.
Documentation: ``docs/curl_descent.md``. The house layout: :mod:`.params`, :mod:`.build`, :mod:`.kernels`,
:mod:`.engine` (``EXPERIMENTS``), :mod:`.dataset`, :mod:`.theory`, :mod:`.plots`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr

from neurodyn.families import base
from neurodyn.families.curl_descent import build as _build
from neurodyn.families.curl_descent.build import CurlBuilt
from neurodyn.families.curl_descent.params import CurlParams

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from neurodyn.progress import Progress
    from neurodyn.rows import Row
    from neurodyn.scenario import Scenario


class CurlDescent(base.Family):
    """Two-layer student-teacher learning with rule-flipped neurons (Ninou, Kadmon & Cayco-Gajic 2025)."""

    name = "curl_descent"
    description = "curl descent: rule-flipped plasticity, Jacobian/phase boundary, 1-1-1 chain, chaos, saddles"
    Params = CurlParams
    needs_time = False

    def check(self, scenario: Scenario) -> None:
        _build.check(scenario)

    def build(self, scenario: Scenario) -> CurlBuilt:
        return _build.build(scenario)

    def simulate(self, built: CurlBuilt, progress: Progress) -> xr.Dataset:
        from neurodyn.families.curl_descent.engine import simulate

        return simulate(built, progress)

    def theory(self, built: CurlBuilt, ds: xr.Dataset) -> xr.Dataset:
        from neurodyn.families.curl_descent.theory import theory

        return theory(built, ds)

    def compare_rows(self, ds: xr.Dataset) -> list[Row]:
        from neurodyn.families.curl_descent.theory import compare_rows

        return compare_rows(ds)

    def figures(self, ds: xr.Dataset) -> list[Figure]:
        from neurodyn.families.curl_descent.plots import figures

        return figures(ds)

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        from neurodyn.families.curl_descent.plots import plot_run

        return plot_run(ds, out_dir, stem)

    def summary(self, ds: xr.Dataset) -> str:
        from neurodyn.families.curl_descent.dataset import summary

        return summary(ds)
