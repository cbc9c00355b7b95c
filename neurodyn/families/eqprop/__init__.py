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
from neurodyn.resources import require_memory

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
        sizes = np.asarray(p.layers, dtype=float)
        n_weights = float((sizes[:-1] * sizes[1:]).sum())
        n_params = n_weights + float(sizes[1:].sum())
        n_units = float(sizes.sum())
        if p.experiment != "train":
            if p.experiment == "gradient_theorem" and n_params > MAX_FD_PARAMS:
                raise ResourceError(
                    f"params.layers = {p.layers}: {n_params:.0f} parameters; finite "
                    f"differences need two relaxations each, so at most {MAX_FD_PARAMS}"
                )
            if p.experiment == "gradient_theorem":
                th = p.theorem
                need = 8.0 * (2 * len(th.betas) * n_params + 4 * n_units * th.n_examples + 4 * n_params)
                detail = f"{n_params:.0f} parameters x {len(th.betas)} betas x 2 estimators x 8 B"
            else:
                bp = p.bptt
                n_rel = n_units - sizes[0]
                per_step = n_rel * bp.n_examples + n_params + n_units
                need = 8.0 * bp.steps * (per_step + len(bp.betas) * (n_params + n_rel * bp.n_examples))
                detail = f"{bp.steps} steps x {len(bp.betas)} betas x ({n_params:.0f} parameters + states) x 8 B"
            require_memory(need, detail, what=f"params.layers = {p.layers}", hint="use smaller layers or fewer steps")
            return
        from neurodyn.families.eqprop.train import CURVES, N_CLASSES, N_DIGITS, N_FEATURES, rule_names

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
        n_rules = len(rule_names(p))
        n_seeds = len(t.seeds) if t.seeds is not None else 1
        epochs = int(scenario.run.epochs or t.epochs)
        # weights, gradients and optimiser copies; persistent particles of every train and test example;
        # the stored final weights of every (rule, seed); the learning curves of every (rule, seed, epoch)
        parts = {
            "weights": 4.0 * n_weights,
            "particles": n_units * N_DIGITS,
            "stored weights": n_rules * n_seeds * n_params,
            "curves": (len(CURVES) + 4) * n_rules * n_seeds * epochs,
        }
        detail = ", ".join(f"{k} {v:.3g} x 8 B" for k, v in parts.items())
        require_memory(8.0 * sum(parts.values()), detail, what=f"params.layers = {p.layers}", hint="use smaller layers")

    def simulate(self, built, progress) -> xr.Dataset:
        scenario = built.scenario
        exp = scenario.params.experiment
        if exp == "train":
            from neurodyn.families.eqprop.train import simulate_training

            return simulate_training(scenario, progress)
        from neurodyn.families.eqprop import gradients

        if exp == "gradient_theorem":
            return gradients.simulate_theorem(scenario)
        return gradients.simulate_bptt(scenario)

    def theory(self, built, ds: xr.Dataset) -> xr.Dataset:
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
