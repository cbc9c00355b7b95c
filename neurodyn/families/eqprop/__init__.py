"""``eqprop``: layered Hopfield networks trained by equilibrium propagation.

Experiments (``params.experiment``): ``train`` (digits, EP beside a backprop baseline),
``gradient_theorem`` (EP gradient vs finite differences over beta) and ``bptt_match`` (discrete-time EP
updates vs truncated BPTT). Equations: :mod:`.kernels`; documentation: ``docs/eqprop.md``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr

from neurodyn.errors import ResourceError, ScenarioError
from neurodyn.families.base import Family
from neurodyn.families.eqprop.params import EqPropParams

#: refuse runs whose weights and persistent particles would need more than this many float64s
MAX_FLOATS = 200_000_000
#: largest network of the gradient-theorem experiment (two relaxations per parameter)
MAX_FD_PARAMS = 20_000


class EqProp(Family):
    """Equilibrium propagation in layered Hopfield networks (Scellier & Bengio 2017)."""

    name = "eqprop"
    description = "equilibrium propagation: Hopfield nets, EP gradient theorem, EP vs BPTT, digits vs backprop"
    Params = EqPropParams
    needs_time = False

    def check(self, scenario) -> None:
        p: EqPropParams = scenario.params
        if p.experiment != "train":
            sizes = np.asarray(p.layers, dtype=float)
            n_params = float((sizes[:-1] * sizes[1:]).sum() + sizes[1:].sum())
            if p.experiment == "gradient_theorem" and n_params > MAX_FD_PARAMS:
                raise ResourceError(
                    f"params.layers = {p.layers}: {n_params:.0f} parameters; finite "
                    f"differences need two relaxations each, so at most {MAX_FD_PARAMS}"
                )
            return
        from neurodyn.families.eqprop.train import N_CLASSES, N_DIGITS, N_FEATURES

        if p.layers[0] != N_FEATURES or p.layers[-1] != N_CLASSES:
            raise ScenarioError(
                "params.layers",
                p.layers,
                f"the digits data has {N_FEATURES} inputs and {N_CLASSES} classes: layers must "
                f"start with {N_FEATURES} and end with {N_CLASSES}, e.g. [64, 500, 10]",
            )
        t = p.training
        assert t is not None
        n_train = N_DIGITS - math.ceil(p.data.test_fraction * N_DIGITS)  # as train_test_split
        if t.batch_size > n_train:
            raise ScenarioError(
                "params.training.batch_size", t.batch_size, f"must not exceed the {n_train} training examples"
            )
        sizes = np.asarray(p.layers, dtype=float)
        n_floats = float((sizes[:-1] * sizes[1:]).sum() * 4 + sizes.sum() * n_train)
        if n_floats > MAX_FLOATS:
            raise ResourceError(
                f"params.layers = {p.layers}: weights and persistent states need "
                f"{n_floats * 8 / 1e9:.1f} GB; use smaller layers"
            )

    def simulate(self, scenario, progress) -> xr.Dataset:
        exp = scenario.params.experiment
        if exp == "train":
            from neurodyn.families.eqprop.train import simulate_training

            return simulate_training(scenario, progress)
        from neurodyn.families.eqprop import gradients

        if exp == "gradient_theorem":
            return gradients.simulate_theorem(scenario)
        return gradients.simulate_bptt(scenario)

    def theory(self, scenario, ds: xr.Dataset) -> xr.Dataset:
        from neurodyn.families.eqprop.theory import theory_dataset

        return theory_dataset(ds)

    def compare_rows(self, ds: xr.Dataset) -> list:
        from neurodyn.families.eqprop.theory import training_rows

        return training_rows(ds)

    def figures(self, ds: xr.Dataset) -> list:
        from neurodyn.families.eqprop.plots import figures

        return figures(ds)

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        from neurodyn.families.eqprop.plots import plot_run

        return plot_run(ds, out_dir, stem)

    def summary(self, ds: xr.Dataset) -> str:
        exp = ds.attrs.get("experiment")
        if exp == "gradient_theorem":
            return "\n".join(
                f"  {est}: rel. error {float(ds['grad_rel_error'].sel(estimator=est).max()):.2e} .. "
                f"{float(ds['grad_rel_error'].sel(estimator=est).min()):.2e}, fitted slope "
                f"{float(ds['error_slope'].sel(estimator=est)):.3f}"
                for est in ds["estimator"].values
            )
        if exp == "bptt_match":
            return "\n".join(
                f"  beta={b:g}: rel. RMSE {float(r):.2e} (neurons {float(rs):.2e}), signs agree {100 * float(s):.1f}%"
                for b, r, rs, s in zip(
                    ds["beta"].values,
                    ds["rel_rmse"].values,
                    ds["rel_rmse_state"].values,
                    ds["sign_share"].values,
                )
            )
        if exp == "train":
            lines = []
            final = ds["test_error"].isel(epoch=-1)
            for m in ds["rule"].values:
                v = 100 * (1 - final.sel(rule=m).values)
                sd = f" ± {v.std(ddof=1):.2f}" if v.size > 1 else ""
                lines.append(
                    f"  {m}: final test accuracy {v.mean():.2f}{sd} % over {v.size} seed(s), "
                    f"epoch time {float(ds['epoch_time'].sel(rule=m).median()):.3f} s"
                )
            last = ds.isel(epoch=-1)
            lines.append(
                f"  EP free phase (last epoch): {float(last['free_steps'].mean()):.1f} steps, "
                f"energy at the fixed point {float(last['energy'].mean()):.3f}"
            )
            return "\n".join(lines)
        return ""
