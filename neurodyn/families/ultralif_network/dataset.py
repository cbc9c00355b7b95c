"""The stored result of each ``ultralif_network`` experiment: the engine's arrays as an :class:`xarray.Dataset`.

Every variable and coordinate carries ``units`` and ``long_name``; ``attrs["experiment"]`` names the
experiment, which is how :mod:`.plots` reads a stored file.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from neurodyn.families.ultralif_network.params import SURROGATE_KINDS
from neurodyn.schema import var_attrs

#: per-epoch quantities recorded for every trained network: name -> (units, long_name)
EPOCH_ATTRS = {
    "train_loss": ("1", "training loss (CE + lambda * rate), mean over the epoch's minibatches"),
    "train_accuracy": ("1", "training accuracy during the epoch"),
    "test_loss": ("1", "test cross-entropy"),
    "test_accuracy": ("1", "test accuracy"),
    "spike_rate": ("1", "mean hidden spike value per neuron and step (test set)"),
    "synops": ("1", "synaptic operations per test sample (spike value x fan-out, summed over time)"),
}


def training_dataset(
    models: list[tuple[str, str, str]],
    sparsity: list[float],
    seeds: list[int],
    sizes: list[int],
    rec: dict[str, np.ndarray],
    eps_h: np.ndarray,
    tau_h: np.ndarray,
    wall: np.ndarray,
    ckpt: np.ndarray,
    offs: np.ndarray,
    dataset: str,
    T: int,
) -> xr.Dataset:
    """Per-epoch curves and trained parameters of every (model, sparsity, seed) run.

    Parameters
    ----------
    models : list of (label, kind, surrogate)
        The trained models, in the order of the ``model`` dimension.
    rec : dict
        One ``(model, sparsity, seed, epoch)`` array per name of :data:`EPOCH_ATTRS`.
    eps_h, tau_h : ndarray
        ``(model, sparsity, seed, epoch, layer)`` temperature and leak factor per hidden layer.
    wall : ndarray
        ``(model, sparsity, seed)`` wall time of each run.
    ckpt : ndarray
        ``(model, sparsity, seed, param)`` trained parameters; ``offs`` is their layout.
    """
    n_epochs = next(iter(rec.values())).shape[-1]
    L = len(sizes) - 2
    dims = ("model", "sparsity", "seed")
    data_vars = {k: ((*dims, "epoch"), v, var_attrs(*EPOCH_ATTRS[k])) for k, v in rec.items()}
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
            layout="per hidden layer l: W_l (row-major, n_l x n_{l-1}), b_l, log_eps_l, tau_param_l; then W_out, b_out",
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
            [m[2] if m[1] in SURROGATE_KINDS else "none" for m in models],
            var_attrs("1", "surrogate gradient (hard-threshold kinds only)"),
        ),
        "sparsity": (
            "sparsity",
            np.asarray(sparsity, dtype=np.float64),
            var_attrs("1", "sparsity weight lambda"),
        ),
        "seed": ("seed", np.asarray(seeds, dtype=np.int64), var_attrs("1", "training seed")),
        "epoch": ("epoch", np.arange(1, n_epochs + 1), var_attrs("1", "epoch")),
        "layer": ("layer", np.arange(1, L + 1), var_attrs("1", "hidden layer")),
    }
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update(experiment="train", dataset=dataset, T=T)
    return ds


def bounds_dataset(eps: np.ndarray, steps: int, cols: dict[str, list]) -> xr.Dataset:
    """The bounds experiment's measurements: one value (or one trajectory) per eps for every name.

    Names starting ``v_`` measure single UltraLIF neurons against the max-plus LIF, ``d_`` the UltraDLIF
    ring against max-plus diffusion; their descriptions are in :data:`DESCRIPTIONS`.
    """
    coords = {
        "eps": ("eps", eps, var_attrs("1", "temperature eps of the soft maximum")),
        "step": ("step", np.arange(1, steps + 1), var_attrs("1", "time step t")),
    }
    data = {}
    for k, vals in cols.items():
        arr = np.asarray(vals)
        dims = ("eps", "step") if arr.ndim == 2 else ("eps",)
        units, long_name = DESCRIPTIONS.get(k.split("_", 1)[1] if k[:2] in ("v_", "d_") else k, ("1", k))
        if k[:2] in ("v_", "d_"):
            who = "UltraLIF vs max-plus LIF" if k[0] == "v" else "UltraDLIF ring vs max-plus diffusion"
            long_name = f"{who}: {long_name}"
        data[k] = (dims, arr, var_attrs(units, long_name))
    ds = xr.Dataset(data, coords=coords)
    ds.attrs["experiment"] = "bounds"
    return ds


#: units and long names of the bounds experiment's measurements (without their ``v_``/``d_`` prefix)
DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "lse_excess_max": ("1", "max over samples of LSE_eps(x) - max(x)"),
    "lse_excess_min": ("1", "min over samples of LSE_eps(x) - max(x)"),
    "lse_gap_ratio_max": ("1", "max of (LSE_eps - max) / (eps (n-1) exp(-gap/eps))"),
    "sigmoid_ratio_max": ("1", "max over x of |sigmoid(x/eps) - H(x)| / exp(-|x|/eps)"),
    "dsdw_ratio_max": ("1", "max |ds/dW_ij| / (||x||_inf / (4 eps)), one UltraLIF step"),
    "noreset_ratio_max": ("1", "no reset: max over neurons and t of |P_eps(t) - p(t)| / (t eps log m)"),
    "ratio_all_max": ("1", "with reset: max over all steps of |P_eps(t) - p(t)| / (t eps log m)"),
    "ratio_margin_max": ("1", "with reset: max over margin-holding steps of |P_eps(t) - p(t)| / (t eps log m)"),
    "margin_fail_fraction": ("1", "fraction of (neuron, step) where |p(u) - theta| <= u eps log m for some u <= t"),
    "violation_fraction": ("1", "fraction of (neuron, step) with |P_eps(t) - p(t)| > t eps log m"),
    "violation_fraction_margin": ("1", "among margin-holding steps, fraction with error > t eps log m"),
    "error_final_mean": ("1", "mean over neurons of |P_eps - p| at the last step, with reset"),
    "error_max": ("1", "max over neurons and steps of |P_eps(t) - p(t)|, with reset"),
    "reset_slope_max": ("1", "max |dV(t+1)/dP(t)| of the soft reset map"),
    "spike_ratio_margin_max": ("1", "margin-holding steps: max |s_eps - s| / exp(-delta_t/eps) (paper's form)"),
    "spike_violation_fraction_margin": ("1", "margin-holding steps: fraction with |s_eps - s| > exp(-delta_t/eps)"),
    "spike_shifted_ratio_max": ("1", "max |s_eps - s| / exp(-(delta_t - |P_eps - p|)/eps), same side of theta"),
    "dsdv_max": ("1", "max along trajectories of ds/dP = s (1 - s) / eps"),
    "example_soft": ("1", "pre-spike potential P_eps(t) of neuron 0, soft model, with reset"),
    "example_hard": ("1", "pre-spike potential p(t) of neuron 0, max-plus model, with reset"),
}
