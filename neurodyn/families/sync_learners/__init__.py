"""``sync_learners``: redundant noisy gradient learners coupled on a graph.

Model and schema: :mod:`.params`; theory: :mod:`.theory`; kernels: :mod:`.kernels`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from neurodyn.families.base import Family
from neurodyn.families.sync_learners.params import SyncParams, SyncRecord


class SyncLearners(Family):
    """n noisy gradient learners in R^d, diffusively coupled on a graph, against Laplacian-spectrum theory."""

    name = "sync_learners"
    description = "redundant noisy learners coupled on graphs (EM / exact OU); lambda_2 bound, exact OU"
    Params = SyncParams
    Record = SyncRecord

    def check(self, scenario) -> None:
        from neurodyn.families.sync_learners.engine import check_scenario

        check_scenario(scenario)

    def simulate(self, built, progress) -> xr.Dataset:
        scenario = built.scenario
        from neurodyn.families.sync_learners.engine import simulate

        return simulate(scenario, progress)

    def theory(self, built, ds: xr.Dataset) -> xr.Dataset:
        scenario = built.scenario
        from neurodyn.families.sync_learners.theory import theory_dataset

        return theory_dataset(scenario, ds)

    def figures(self, ds: xr.Dataset) -> list:
        from neurodyn.families.sync_learners.plots import figures

        return figures(ds)

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        from neurodyn.families.sync_learners.plots import plot_run

        return plot_run(ds, out_dir, stem)

    def summary(self, ds: xr.Dataset) -> str:
        lines = []
        for topo in ds["topology"].values:
            for n in ds["n"].values:
                for k in ds["k"].values:
                    sel = {"topology": topo, "n": n, "k": k}
                    sp = ds["spread"].sel(sel)
                    nt = sp.sizes["trial"]
                    se = float(sp.std("trial", ddof=1) / np.sqrt(nt)) if nt > 1 else float("nan")
                    line = f"  {topo} n={int(n)} k={float(k):g}: spread {float(sp.mean()):.4g} ± {se:.2g}"
                    if "spread_theory" in ds:
                        line += f" (exact {float(ds['spread_theory'].sel(sel)):.4g})"
                    if "spread_bound" in ds:
                        line += f", bound {float(ds['spread_bound'].sel(sel)):.4g}"
                    if "test_error_centroid" in ds:
                        line += (
                            f"; test error learner {float(ds['test_error_learner'].sel(sel).mean()):.4f}"
                            f", centroid {float(ds['test_error_centroid'].sel(sel).mean()):.4f}"
                        )
                    lines.append(line)
        if len(lines) > 30:
            lines = lines[:30] + [f"  ... ({len(lines) - 30} more; see neurodyn compare)"]
        return "\n".join(lines)
