"""``ultralif_network``: UltraLIF / UltraDLIF spiking networks trained by exact BPTT in Numba.

Equations: :mod:`.kernels` (neurons, network, backward pass), :mod:`.bounds` and :mod:`.theory` (the
eps -> 0 limit against the paper's bounds); documentation: docs/ultralif.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import xarray as xr

from neurodyn.families.base import Family
from neurodyn.families.ultralif_network.params import UltraLIFParams
from neurodyn.resources import require_memory
from neurodyn.schema import var_attrs

_EPOCH_ATTRS = {
    "train_loss": ("1", "training loss (CE + lambda * rate), mean over the epoch's minibatches"),
    "train_accuracy": ("1", "training accuracy during the epoch"),
    "test_loss": ("1", "test cross-entropy"),
    "test_accuracy": ("1", "test accuracy"),
    "spike_rate": ("1", "mean hidden spike value per neuron and step (test set)"),
    "synops": ("1", "synaptic operations per test sample (spike value x fan-out, summed over time)"),
}


class UltraLIFNetwork(Family):
    """Classical, max-plus, UltraLIF and UltraDLIF (+P) networks: training and eps -> 0 bounds."""

    name = "ultralif_network"
    description = "UltraLIF/UltraDLIF max-plus spiking networks, exact BPTT, LSE bounds (arXiv:2602.11206)"
    Params = UltraLIFParams
    needs_time = False

    # ------------------------------------------------------------------ checks

    def check(self, scenario) -> None:
        p: UltraLIFParams = scenario.params
        if p.experiment == "bounds":
            b = p.bounds
            nbytes = 8 * 6 * b.steps * b.n_neurons + 8 * b.n_samples * (b.lse_terms + 1) * 3
            detail = (
                f"6 x {b.steps} steps x {b.n_neurons} neurons x 8 B, {b.n_samples} samples x {b.lse_terms + 1} terms"
            )
        else:
            if p.dataset == "digits":
                n_in, n_out = 64, 10
            else:
                n_in, n_out = p.events.n_groups * p.events.channels_per_group, p.events.n_classes
            sizes = [n_in, *p.hidden, n_out]
            n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
            # workspaces: 5 (B, L, T, H) arrays and one (B, L, T, 4, H); per layer ~3 (B*T, H) temporaries
            # (input, current, dI); one gradient vector
            nbytes = 8 * (p.batch_size * (9 * len(p.hidden) + 3) * p.T * max(p.hidden) + n_params)
            detail = (
                f"workspaces of batch_size {p.batch_size} x {9 * len(p.hidden) + 3} per layer x T {p.T} x hidden "
                f"{max(p.hidden)} x 8 B"
            )
            if p.dataset == "events":
                nbytes += 8 * (p.events.n_train + p.events.n_test) * p.T * n_in
                detail += f", event data {p.events.n_train + p.events.n_test} samples x T x {n_in} inputs x 8 B"
            # the per-epoch records of every (model, sparsity, seed) run
            runs = len(p.model_labels()) * len(p.sparsity) * len(p.seeds if p.seeds is not None else [0])
            epochs = scenario.run.epochs or p.epochs
            nbytes += 8 * runs * epochs * (len(_EPOCH_ATTRS) + 2 * len(p.hidden))
            detail += f", epoch records {runs} runs x {epochs} epochs"
        what = "params.bounds" if p.experiment == "bounds" else "params.batch_size, params.T, params.hidden, epochs"
        require_memory(nbytes, detail, what=what, hint="reduce batch_size, T, hidden or bounds sizes")

    # ------------------------------------------------------------------ simulate

    def simulate(self, built, progress) -> xr.Dataset:
        scenario = built.scenario
        p: UltraLIFParams = scenario.params
        from neurodyn.stepping import kernel_threads

        # Samples of a minibatch can run in parallel (results do not depend on the thread count), but a
        # minibatch is only milliseconds of work: on a loaded machine or inside a pool of sweep processes
        # the threads' synchronisation costs far more than it saves (measured: a T=1 digits run took
        # >25 min with 2 threads on an oversubscribed machine, 1 min with 1). So one thread unless
        # run.threads asks for more.
        with kernel_threads(scenario.run.threads, default=1):
            if p.experiment == "bounds":
                from neurodyn.families.ultralif_network.bounds import run_bounds

                ds = run_bounds(p, scenario.run.seed, progress)
                ds.attrs["experiment"] = "bounds"
                return ds
            return self._train_all(scenario, progress)

    def _train_all(self, scenario, progress) -> xr.Dataset:
        from neurodyn.families.ultralif_network.data import load_digits_split, load_events
        from neurodyn.families.ultralif_network.network import NetSpec
        from neurodyn.families.ultralif_network.train import EPOCH_VARS, TrainConfig, train

        p: UltraLIFParams = scenario.params
        epochs = scenario.run.epochs or p.epochs
        seeds = p.seeds if p.seeds is not None else [scenario.run.seed]
        if p.dataset == "digits":
            data = load_digits_split(p.test_fraction)
        else:
            e = p.events
            data = load_events(
                p.T,
                e.n_train,
                e.n_test,
                e.n_groups,
                e.channels_per_group,
                e.n_classes,
                e.events_per_channel,
                e.burst_width,
                e.jitter,
                e.noise_events,
                e.data_seed,
            )
        sizes = [data.n_in, *p.hidden, data.n_classes]
        models = p.model_labels()
        L = len(p.hidden)
        shape = (len(models), len(p.sparsity), len(seeds))
        rec = {k: np.full((*shape, epochs), np.nan) for k in EPOCH_VARS}
        eps_h = np.full((*shape, epochs, L), np.nan)
        tau_h = np.full((*shape, epochs, L), np.nan)
        wall = np.zeros(shape)
        ckpt = None
        for mi, (label, kind, sur) in enumerate(models):
            spec = NetSpec(
                sizes,
                kind,
                surrogate=sur,
                surrogate_k=p.sigmoid_sharpness if sur == "sigmoid" else p.atan_alpha,
                theta=p.theta,
                v_reset=p.v_reset,
                eps_lo=p.eps_min,
                eps_hi=p.eps_max,
            )
            if ckpt is None:
                ckpt = np.zeros((*shape, spec.n_params))
                offs = spec.offs
            for li, lam in enumerate(p.sparsity):
                for si, seed in enumerate(seeds):
                    cfg = TrainConfig(
                        T=p.T,
                        epochs=epochs,
                        batch_size=p.batch_size,
                        lr=p.lr,
                        lam=lam,
                        learn_eps=p.learn_eps,
                        eps0=p.eps,
                        tau0=p.tau0,
                        input_gain=p.input_gain,
                        test_repeats=p.test_repeats,
                    )
                    t0 = time.perf_counter()
                    res = train(spec, data, cfg, seed, progress, desc=f"{label} lambda={lam:g} seed={seed}")
                    wall[mi, li, si] = time.perf_counter() - t0
                    for k in EPOCH_VARS:
                        rec[k][mi, li, si] = res.records[k]
                    eps_h[mi, li, si] = res.eps
                    tau_h[mi, li, si] = res.tau0
                    ckpt[mi, li, si] = res.params
        dims = ("model", "sparsity", "seed")
        data_vars = {k: ((*dims, "epoch"), v, var_attrs(*_EPOCH_ATTRS[k])) for k, v in rec.items()}
        data_vars["eps"] = (
            (*dims, "epoch", "layer"),
            eps_h,
            var_attrs("1", "temperature eps per hidden layer at the end of the epoch"),
        )
        data_vars["tau0"] = (
            (*dims, "epoch", "layer"),
            tau_h,
            var_attrs("1", "leak factor tau0 = sigmoid(tau_param) per hidden layer"),
        )
        data_vars["final_test_accuracy"] = (
            dims,
            rec["test_accuracy"][..., -1],
            var_attrs("1", "test accuracy after the last epoch"),
        )
        data_vars["train_time"] = (dims, wall, var_attrs("s", "wall time of the training run"))
        data_vars["params"] = (
            (*dims, "param"),
            ckpt,
            var_attrs(
                "1",
                "trained parameters (flat vector; layout in param_offsets)",
                layout="per hidden layer l: W_l (row-major, n_l x n_{l-1}), b_l, log_eps_l, tau_param_l; "
                "then W_out, b_out",
            ),
        )
        data_vars["param_offsets"] = (
            ("layer_slot", "field"),
            offs,
            var_attrs("1", "start of (W, b, log_eps, tau_param) per hidden layer; last row (W_out, b_out, -1, -1)"),
        )
        data_vars["layer_sizes"] = (
            ("size_index",),
            np.asarray(sizes, dtype=np.int64),
            var_attrs("1", "[n_in, hidden..., n_out]"),
        )
        coords = {
            "model": ("model", [m[0] for m in models], var_attrs("1", "neuron model (kind[surrogate])")),
            "kind": ("model", [m[1] for m in models], var_attrs("1", "neuron kind")),
            "surrogate": (
                "model",
                [m[2] if m[1] in ("lif", "maxplus_lif") else "none" for m in models],
                var_attrs("1", "surrogate gradient (hard-threshold kinds only)"),
            ),
            "sparsity": (
                "sparsity",
                np.asarray(p.sparsity, dtype=np.float64),
                var_attrs("1", "sparsity weight lambda"),
            ),
            "seed": ("seed", np.asarray(seeds, dtype=np.int64), var_attrs("1", "training seed")),
            "epoch": ("epoch", np.arange(1, epochs + 1), var_attrs("1", "epoch")),
            "layer": ("layer", np.arange(1, L + 1), var_attrs("1", "hidden layer")),
        }
        ds = xr.Dataset(data_vars, coords=coords)
        ds.attrs.update(experiment="train", dataset=p.dataset, T=p.T)
        return ds

    # ------------------------------------------------------------------ theory, plots, summary

    def theory(self, built, ds: xr.Dataset) -> xr.Dataset:
        scenario = built.scenario
        if scenario.params.experiment != "bounds":
            return xr.Dataset()
        from neurodyn.families.ultralif_network.theory import bounds_theory

        return bounds_theory(scenario.params, ds)

    def figures(self, ds: xr.Dataset) -> list:
        from neurodyn.families.ultralif_network import plots

        if ds.attrs.get("experiment") == "bounds":
            return plots.figures_bounds(ds)
        return plots.figures_training(ds)

    def plot(self, ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
        from neurodyn.families.ultralif_network import plots

        if ds.attrs.get("experiment") == "bounds":
            return plots.plot_bounds(ds, out_dir, stem)
        return plots.plot_training(ds, out_dir, stem)

    def summary(self, ds: xr.Dataset) -> str:
        if ds.attrs.get("experiment") == "bounds":
            lines = [
                "max error / (t eps log m), all and margin-holding steps; fractions of (neuron, step)",
                "eps       UltraLIF all  margin  margin-fails  violated   UltraDLIF all  margin",
            ]
            for i, e in enumerate(ds["eps"].values):
                keys = (
                    "v_ratio_all_max",
                    "v_ratio_margin_max",
                    "v_margin_fail_fraction",
                    "v_violation_fraction",
                    "d_ratio_all_max",
                    "d_ratio_margin_max",
                )
                v = {k: float(ds[k][i]) for k in keys}
                lines.append(
                    f"{e:<8.3g} {v['v_ratio_all_max']:13.3f} {v['v_ratio_margin_max']:7.3f} "
                    f"{v['v_margin_fail_fraction']:13.3f} {v['v_violation_fraction']:9.3f} "
                    f"{v['d_ratio_all_max']:14.3f} {v['d_ratio_margin_max']:7.3f}"
                )
            return "\n".join(lines)
        acc = ds["final_test_accuracy"]
        lines = [
            f"final test accuracy ({ds.attrs.get('dataset')}, T={ds.attrs.get('T')}, "
            f"{ds.sizes['seed']} seed(s), mean ± std):"
        ]
        for lam in ds["sparsity"].values:
            for m in ds["model"].values:
                a = acc.sel(model=m, sparsity=lam).values
                rate = float(ds["spike_rate"].sel(model=m, sparsity=lam).isel(epoch=-1).mean())
                sd = f" ± {a.std(ddof=1):.4f}" if a.size > 1 else ""
                lines.append(f"  {m:22s} lambda={lam:<5g} {a.mean():.4f}{sd}   spike rate {rate:.3f}")
        return "\n".join(lines)
