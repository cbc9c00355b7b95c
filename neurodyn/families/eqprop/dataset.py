"""The stored result of each ``eqprop`` experiment: the engine's arrays as an :class:`xarray.Dataset`.

Every variable and coordinate carries ``units`` and ``long_name``; ``attrs["experiment"]`` names the
experiment, which is how :mod:`.theory` and :mod:`.plots` read a stored file.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from neurodyn.schema import var_attrs

#: per-epoch curves of the training experiment: name -> (units, long_name); EP-only ones are NaN for backprop
CURVES = {
    "train_error": ("1", "training error (free-phase / forward prediction during the epoch)"),
    "test_error": ("1", "test error at the end of the epoch"),
    "cost": ("1", "mean cost C at the free state (EP) or after the forward pass (backprop)"),
    "epoch_time": ("s", "wall time of the epoch's training (evaluation excluded)"),
    "energy": ("1", "mean energy E at the free fixed point (EP only)"),
    "free_steps": ("1", "mean free-phase relaxation steps per minibatch (EP only)"),
    "free_residual": ("1", "mean largest projected force |dF/ds| after the free phase (EP only)"),
    "eval_steps": ("1", "relaxation steps of the test-set free phase (EP only; start: training.eval_start)"),
}


def training_dataset(
    layers: list[int],
    rules: list[str],
    seeds: list[int],
    curves: dict[str, np.ndarray],
    W_out: list[np.ndarray],
    b_out: list[np.ndarray],
    n_train: int,
    n_test: int,
) -> xr.Dataset:
    """Learning curves ``(rule, seed, epoch)`` and the trained weights and biases of every (rule, seed).

    Parameters
    ----------
    curves : dict
        One ``(rule, seed, epoch)`` array per name of :data:`CURVES`.
    W_out, b_out : list of ndarray
        ``W_k`` as ``(rule, seed, unit_k, unit_{k+1})`` and ``b_{k+1}`` as ``(rule, seed, unit_{k+1})``.
    """
    n_epochs = next(iter(curves.values())).shape[-1]
    dims3 = ("rule", "seed", "epoch")
    data_vars = {
        name: (dims3, curves[name], var_attrs(units, long_name)) for name, (units, long_name) in CURVES.items()
    }
    for k, W in enumerate(W_out):
        data_vars[f"W_{k}"] = (
            ("rule", "seed", f"unit_{k}", f"unit_{k + 1}"),
            W,
            var_attrs("1", f"trained weights between layers {k} and {k + 1}"),
        )
    for k, b in enumerate(b_out):
        data_vars[f"b_{k + 1}"] = (
            ("rule", "seed", f"unit_{k + 1}"),
            b,
            var_attrs("1", f"trained biases of layer {k + 1}"),
        )
    coords = {"rule": rules, "seed": np.asarray(seeds, dtype=np.int64), "epoch": np.arange(1, n_epochs + 1)}
    ds = xr.Dataset(data_vars, coords=coords)
    ds["rule"].attrs = var_attrs("1", "learning rule: ep_one_sided, ep_symmetric (EP estimators), bp")
    ds["seed"].attrs = var_attrs("1", "seed of the run")
    ds["epoch"].attrs = var_attrs("1", "epoch")
    ds.attrs.update(experiment="train", layers=list(layers), n_train=int(n_train), n_test=int(n_test))
    return ds


def _free_phase_vars(free_steps: int, free_res: float) -> dict[str, tuple]:
    """Stored variables of the free phase, common to both gradient experiments."""
    return {
        "free_steps": ((), free_steps, var_attrs("1", "relaxation steps of the free phase from zero")),
        "free_residual": ((), free_res, var_attrs("1", "largest |dF/ds| at the free fixed point")),
    }


def _label_beta_and_params(ds: xr.Dataset) -> None:
    """Units and long names of the ``beta``, ``param`` and ``param_group`` coordinates."""
    ds["beta"].attrs = var_attrs("1", "nudging strength beta")
    ds["param"].attrs = var_attrs("1", "parameter index: weights W_0, W_1, ... then non-input biases")
    ds["param_group"].attrs = var_attrs("1", "weight matrix or bias vector of the parameter")


def theorem_dataset(
    layers: list[int],
    betas: np.ndarray,
    param_groups: np.ndarray,
    err: np.ndarray,
    est: np.ndarray,
    g_fd: np.ndarray,
    slopes: np.ndarray,
    nudged_steps: np.ndarray,
    free_steps: int,
    free_res: float,
    J: float,
) -> xr.Dataset:
    """The gradient theorem's result: EP estimates ``(estimator, beta, param)`` against finite differences.

    ``err``, ``nudged_steps`` are ``(estimator, beta)``; ``est`` is ``(estimator, beta, param)``; ``g_fd``
    is ``(param,)``; ``slopes`` is ``(estimator,)``; the estimators are one-sided then symmetric.
    """
    ds = xr.Dataset(
        {
            "grad_rel_error": (
                ("estimator", "beta"),
                err,
                var_attrs("1", "relative error ||g_EP - g_FD|| / ||g_FD|| of the EP gradient"),
            ),
            "grad_ep": (("estimator", "beta", "param"), est, var_attrs("1", "EP estimate of dJ/dtheta")),
            "grad_fd": (("param",), g_fd, var_attrs("1", "central finite differences of J = C(s0)")),
            "error_slope": (
                ("estimator",),
                slopes,
                var_attrs("1", "fitted slope of log grad_rel_error against log beta"),
            ),
            "slope_one_sided": ((), slopes[0], var_attrs("1", "fitted error slope, one-sided nudging")),
            "slope_symmetric": ((), slopes[1], var_attrs("1", "fitted error slope, symmetric nudging")),
            "nudged_steps": (
                ("estimator", "beta"),
                nudged_steps,
                var_attrs("1", "relaxation steps of the nudged phase (+beta; -beta)"),
            ),
            **_free_phase_vars(free_steps, free_res),
            "J": ((), J, var_attrs("1", "J = C(s0), mean over the batch")),
        },
        coords={
            "estimator": ["one_sided", "symmetric"],
            "beta": betas,
            "param": np.arange(g_fd.size),
            "param_group": ("param", param_groups),
        },
    )
    _label_beta_and_params(ds)
    ds["estimator"].attrs = var_attrs("1", "one_sided: (s_beta, s_0); symmetric: (s_+beta, s_-beta)")
    ds.attrs.update(experiment="gradient_theorem", layers=list(layers))
    return ds


def bptt_dataset(
    layers: list[int],
    estimator: str,
    betas: np.ndarray,
    param_groups: np.ndarray,
    ep_theta: np.ndarray,
    neg_bptt_theta: np.ndarray,
    ep_s: np.ndarray,
    neg_bptt_s: np.ndarray,
    rmse_theta: np.ndarray,
    rmse_s: np.ndarray,
    sign_share: np.ndarray,
    slope_theta: float,
    slope_s: float,
    free_steps: int,
    free_res: float,
) -> xr.Dataset:
    """EP updates against minus the truncated-BPTT gradients, step by step, and their agreement per beta.

    ``ep_theta`` is ``(beta, step, param)``, ``neg_bptt_theta`` ``(step, param)``, ``ep_s``
    ``(beta, step, unit, example)``, ``neg_bptt_s`` ``(step, unit, example)``; the rest are per beta or
    scalars.
    """
    n_steps, n_params = neg_bptt_theta.shape
    _, n_rel, n_examples = neg_bptt_s.shape
    unit_layer = np.concatenate([np.full(n, k) for k, n in enumerate(layers) if k > 0])
    ds = xr.Dataset(
        {
            "ep_update": (
                ("beta", "step", "param"),
                ep_theta,
                var_attrs("1", "EP parameter update Delta theta^EP_t (one step of the nudged phase)"),
            ),
            "bptt_update": (
                ("step", "param"),
                neg_bptt_theta,
                var_attrs("1", "minus the truncated-BPTT gradient dL/dtheta_{T-t}"),
            ),
            "ep_state_update": (
                ("beta", "step", "unit", "example"),
                ep_s,
                var_attrs("1", "EP neuron update Delta s^EP_t = (s_{t+1} - s_t)/(eps beta)"),
            ),
            "bptt_state_update": (
                ("step", "unit", "example"),
                neg_bptt_s,
                var_attrs("1", "minus the truncated-BPTT gradient dL/ds_{T-t}"),
            ),
            "rel_rmse": (
                ("beta",),
                rmse_theta,
                var_attrs("1", "relative RMSE of EP parameter updates vs BPTT over all steps"),
            ),
            "rel_rmse_state": (
                ("beta",),
                rmse_s,
                var_attrs("1", "relative RMSE of EP neuron updates vs BPTT over all steps"),
            ),
            "sign_share": (
                ("beta",),
                sign_share,
                var_attrs("1", "share of (step, parameter) entries whose EP and BPTT signs agree"),
            ),
            "rmse_slope": ((), slope_theta, var_attrs("1", "fitted slope of log rel_rmse against log beta")),
            "rmse_state_slope": (
                (),
                slope_s,
                var_attrs("1", "fitted slope of log rel_rmse_state against log beta"),
            ),
            **_free_phase_vars(free_steps, free_res),
            "unit_layer": (("unit",), unit_layer, var_attrs("1", "layer of each relaxed unit")),
        },
        coords={
            "beta": betas,
            "step": np.arange(n_steps),
            "param": np.arange(n_params),
            "param_group": ("param", param_groups),
            "unit": np.arange(n_rel),
            "example": np.arange(n_examples),
        },
    )
    _label_beta_and_params(ds)
    ds["step"].attrs = var_attrs("1", "t: steps into the nudged phase = steps back from the end for BPTT")
    ds["unit"].attrs = var_attrs("1", "relaxed unit index (hidden layers, then output)")
    ds["example"].attrs = var_attrs("1", "example in the batch")
    ds.attrs.update(experiment="bptt_match", layers=list(layers), estimator=estimator)
    return ds
