"""``sync_learners``: redundant noisy gradient learners coupled on a graph.

Schema: :mod:`.params`; what is built once (loss, graphs): :mod:`.build`; the loop: :mod:`.engine`; its
kernels: :mod:`.kernels`; the result: :mod:`.dataset`; theory: :mod:`.theory`; figures: :mod:`.plots`.
Extras: :mod:`.graphs` (topologies and Laplacian spectra), :mod:`.losses` (the loss catalogue),
:mod:`.rng` (the kernels' noise streams).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr

from neurodyn.families.base import Family
from neurodyn.families.sync_learners.params import SyncParams, SyncRecord

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from neurodyn.families.sync_learners.build import SyncBuilt
    from neurodyn.progress import Progress
    from neurodyn.scenario import Scenario


class SyncLearners(Family):
    """n noisy gradient learners in R^d, diffusively coupled on a graph, against Laplacian-spectrum theory."""

    name = "sync_learners"
    description = "redundant noisy learners coupled on graphs (EM / exact OU); lambda_2 bound, exact OU"
    Params = SyncParams
    Record = SyncRecord

    def prepare(self, scenario: Scenario) -> SyncBuilt:
        """Check and build in one pass: the checks read the graphs and loss the run then uses."""
        from neurodyn.families.sync_learners.build import prepare

        return prepare(scenario)

    def check(self, scenario: Scenario) -> None:
        from neurodyn.families.sync_learners.build import check

        check(scenario)

    def build(self, scenario: Scenario) -> SyncBuilt:
        from neurodyn.families.sync_learners.build import build

        return build(scenario)

    def simulate(self, built: SyncBuilt, progress: Progress) -> xr.Dataset:
        from neurodyn.families.sync_learners.engine import simulate

        return simulate(built, progress)

    def theory(self, built: SyncBuilt, ds: xr.Dataset) -> xr.Dataset:
        from neurodyn.families.sync_learners.theory import theory

        return theory(built, ds)

    def figures(self, ds: xr.Dataset) -> list[Figure]:
        from neurodyn.families.sync_learners.plots import figures

        return figures(ds)

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        from neurodyn.families.sync_learners.plots import plot_run

        return plot_run(ds, out_dir, stem)

    def summary(self, ds: xr.Dataset) -> str:
        from neurodyn.families.sync_learners.dataset import summary

        return summary(ds)
