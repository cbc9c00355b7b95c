"""The stored result of a ``curl_descent`` run: variables, coordinates, units and long names.

Learning time is dimensionless (flow time in units of ``1/eta``, or epochs), so most units are ``"1"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.schema import var_attrs

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.curl_descent.build import CurlBuilt

#: a flow run whose final loss is below this has returned to the zero-loss set (roundoff: ~1e-30)
CONVERGED_LOSS = 1e-12
REFERENCE = (
    "Ninou, Kadmon & Cayco-Gajic, Curl Descent: Non-Gradient Learning Dynamics with Sign-Diverse Plasticity "
    "(NeurIPS 2025, arXiv:2510.02765); update rule as in the authors' code (github.com/caycogajiclab/Curl_Descent)"
)


def _attrs(built: CurlBuilt) -> dict:
    p = built.params
    return {
        "experiment": p.experiment,
        "inputs": p.inputs,
        "hidden": p.hidden,
        "compression_ratio": p.inputs / p.hidden,
        "activation": p.activation,
        "input_variance": p.input_variance,
        "eta": p.eta,
        "projection": int(p.flow.projection),
        "reference": REFERENCE,
    }


def _flow_coords(built: CurlBuilt) -> dict:
    grid = built.grid
    assert grid is not None
    t = np.arange(grid.n_samples) * grid.every * built.params.flow.dt
    return {"t": ("t", t, var_attrs("1", "flow time (units of 1/eta)"))}


def _sweep_coords(layers: list[str], alpha: list[float], seeds: int) -> dict:
    return {
        "layer": ("layer", np.array(layers), var_attrs("1", "layer whose neurons are rule-flipped")),
        "alpha": ("alpha", np.array(alpha, dtype=float), var_attrs("1", "fraction of rule-flipped neurons")),
        "seed": ("seed", np.arange(seeds), var_attrs("1", "teacher index")),
    }


def stability_dataset(built: CurlBuilt, out: dict[str, np.ndarray], bound: np.ndarray) -> xr.Dataset:
    """Dataset of the ``stability`` experiment."""
    p = built.params
    s = p.stability
    dims = ("layer", "alpha", "seed")
    coords = {
        **_sweep_coords(s.layers, s.alpha, p.seeds),
        **_flow_coords(built),
        "mode": ("mode", np.arange(p.inputs), var_attrs("1", "eigenvalue index (ascending)")),
        "c": ("c", np.array(s.boundary_c, dtype=float), var_attrs("1", "compression ratio M/N of the large networks")),
        "boundary_seed": ("boundary_seed", np.arange(s.boundary_seeds), var_attrs("1", "large-network teacher index")),
    }
    jerr = np.abs(out["jacobian_eig"] - np.sort(-p.eta * p.input_variance * out["k_eig"], axis=-1)).max(axis=-1)
    scale = np.abs(p.eta * p.input_variance * out["k_eig"]).max(axis=-1)
    grows = np.where(np.isfinite(out["growth_rate"]), (out["growth_rate"] > 0).astype(float), np.nan)
    ds = xr.Dataset(
        {
            "lambda_min": (dims, out["lambda_min"], var_attrs("1", "smallest eigenvalue of K at the teacher point")),
            "k_eig": (dims + ("mode",), out["k_eig"], var_attrs("1", "eigenvalues of K = |w2|^2 D1 + W1^T D2 W1")),
            "jacobian_eig": (
                dims + ("mode",),
                out["jacobian_eig"],
                var_attrs("1", "the M largest-modulus eigenvalues of the finite-difference Jacobian (real part)"),
            ),
            "jacobian_eig_error": (
                (),
                np.nanmax(jerr / scale),
                var_attrs("1", "max over the sweep of max |eig J - (-eta s^2 eig K)| / max |eta s^2 eig K|"),
            ),
            "jacobian_zero_max": (
                (),
                np.nanmax(out["jacobian_zero_max"] / scale),
                var_attrs(
                    "1", "largest modulus of the remaining NM + N - M Jacobian eigenvalues / max |eta s^2 eig K|"
                ),
            ),
            "growth_rate": (dims, out["growth_rate"], var_attrs("1", "fitted d log L / dt after a small kick")),
            "growth_rate_ci": (dims, out["growth_rate_ci"], var_attrs("1", "95% half-width of the fitted slope")),
            "perturbation_grows": (dims, grows, var_attrs("1", "1 if the kicked loss grows (fitted rate > 0)")),
            "perturbation_grows_other_projection": (
                dims,
                np.where(np.isfinite(out["growth_rate_other"]), (out["growth_rate_other"] > 0).astype(float), np.nan),
                var_attrs(
                    "1",
                    f"1 if the kicked loss grows with the norm projection {'off' if p.flow.projection else 'on'}",
                ),
            ),
            "growth_rate_other_projection": (
                dims,
                out["growth_rate_other"],
                var_attrs("1", f"fitted d log L / dt with the projection {'off' if p.flow.projection else 'on'}"),
            ),
            "signed_norm_drift": (
                dims,
                out["signed_norm_drift"],
                var_attrs("1", "max |C(t) - C(0)|, C = sum_m d1_m |W1[:,m]|^2 - sum_n d2_n w2_n^2"),
            ),
            "matrix_drift": (
                dims,
                out["matrix_drift"],
                var_attrs("1", "max |W1 D1 W1^T - w2 w2^T - (at t = 0)|_F (defined when D2 = I)"),
            ),
            "signed_norm_drift_max": (
                (),
                np.nanmax(out["signed_norm_drift"]),
                var_attrs("1", "max of signed_norm_drift"),
            ),
            "matrix_drift_max": (
                (),
                np.nanmax(out["matrix_drift"]) if np.isfinite(out["matrix_drift"]).any() else np.nan,
                var_attrs("1", "max of matrix_drift over the runs with D2 = I"),
            ),
            "final_loss": (dims, out["final_loss"], var_attrs("1", "population loss at the end of the flow")),
            "diverged_at": (dims, out["diverged_at"], var_attrs("1", "flow time the blow-up guard fired (NaN: never)")),
            "loss": (dims + ("t",), out["loss"], var_attrs("1", "population loss L = s^2/2 |v - v*|^2")),
            "critical_alpha": (
                ("layer", "c", "boundary_seed"),
                bound,
                var_attrs("1", f"smallest flip fraction with lambda_min(K) < 0 at M = {s.boundary_inputs}"),
            ),
        },
        coords=coords,
        attrs=_attrs(built),
    )
    return ds


def chain_dataset(
    built: CurlBuilt, weights: np.ndarray, loss: np.ndarray, eig_curl: np.ndarray, eig_gd: np.ndarray
) -> xr.Dataset:
    """Dataset of the ``chain`` experiment."""
    p = built.params
    ch = p.chain
    r2_t = (weights**2).sum(axis=-1)
    angle = np.unwrap(np.arctan2(weights[..., 1], weights[..., 0]), axis=-1)
    t = _flow_coords(built)["t"][1]
    period = np.array([_period(t, a) for a in angle])
    w1, w2 = weights[:, -1, 0], weights[:, -1, 1]
    converges = np.array(ch.r2) >= 2 * ch.v_star
    eig_c = np.sort_complex(eig_curl)
    eig_g = np.sort(eig_gd.real)
    return xr.Dataset(
        {
            "w": (("r2", "t", "component"), weights, var_attrs("1", "weights (w1, w2) of the chain")),
            "loss": (("r2", "t"), loss, var_attrs("1", "population loss s^2/2 (w1 w2 - v*)^2")),
            "angle": (("r2", "t"), angle, var_attrs("rad", "angle a of w = r (cos a, sin a), unwrapped")),
            "r2_drift": (("r2",), np.abs(r2_t - r2_t[:, :1]).max(axis=1), var_attrs("1", "max |r^2(t) - r^2(0)|")),
            "period": (
                ("r2_below",),
                period[~converges],
                var_attrs("1", "time for the angle to advance by 2 pi (the weights' period)"),
            ),
            "final_product": (
                ("r2_above",),
                (w1 * w2)[converges],
                var_attrs("1", "w1 w2 at the end (runs with r^2 >= 2 v*)"),
            ),
            "branch_ratio": (
                ("r2_above",),
                (np.abs(w1) / np.abs(w2))[converges],
                var_attrs("1", "|w1| / |w2| at the end (runs with r^2 >= 2 v*)"),
            ),
            "origin_eig_imag": (("eig",), eig_c.imag, var_attrs("1", "imaginary parts of the Jacobian at the origin")),
            "origin_eig_real": (("eig",), np.abs(eig_c.real), var_attrs("1", "|real parts| of the Jacobian at 0")),
            "origin_eig_gd": (("eig",), eig_g, var_attrs("1", "eigenvalues of the GD Jacobian at the origin")),
        },
        coords={
            "r2": ("r2", np.array(ch.r2, dtype=float), var_attrs("1", "squared radius r^2 = w1^2 + w2^2 at the start")),
            "r2_below": (
                "r2_below",
                np.array(ch.r2, dtype=float)[~converges],
                var_attrs("1", "starting r^2 below 2 v* (no zero-loss point on the circle: oscillation)"),
            ),
            "r2_above": (
                "r2_above",
                np.array(ch.r2, dtype=float)[converges],
                var_attrs("1", "starting r^2 of at least 2 v* (the circle meets the zero-loss set)"),
            ),
            "t": ("t", t, var_attrs("1", "flow time (units of 1/eta)")),
            "component": ("component", np.array(["w1", "w2"]), var_attrs("1", "weight")),
            "eig": ("eig", np.arange(2), var_attrs("1", "eigenvalue index (ascending)")),
        },
        attrs={**_attrs(built), "v_star": ch.v_star, "start_angle": ch.angle},
    )


def _period(t: np.ndarray, a: np.ndarray) -> float:
    """Mean time for the unwrapped angle ``a`` to advance by 2 pi (NaN if it advances less than 2 pi)."""
    ok = np.isfinite(a)
    t, a = t[ok], a[ok]
    if len(a) < 2 or a[-1] - a[0] < 2 * np.pi or np.any(np.diff(a) <= 0):
        return np.nan
    k = np.arange(1, int((a[-1] - a[0]) // (2 * np.pi)) + 1)
    crossings = np.interp(a[0] + 2 * np.pi * k, a, t)
    return float((crossings[-1] - t[0]) / k[-1])


def chaos_dataset(built: CurlBuilt, out: dict[str, np.ndarray]) -> xr.Dataset:
    """Dataset of the ``chaos`` experiment."""
    p = built.params
    ch = p.chaos
    dims = ("layer", "alpha", "seed")
    chaotic = np.where(np.isfinite(out["lyapunov"]), (out["lyapunov"] > ch.lyapunov_threshold).astype(float), np.nan)
    return xr.Dataset(
        {
            "lyapunov": (
                dims,
                out["lyapunov"],
                var_attrs("1", "largest Lyapunov exponent (Benettin, per unit flow time)"),
            ),
            "q": (dims, out["q"], var_attrs("1", "q = mean_i Var_t[w_i] / Var_i[mean_t w_i] over the last window")),
            "chaotic": (dims, chaotic, var_attrs("1", f"1 if the exponent exceeds {ch.lyapunov_threshold}")),
            "lambda_min": (dims, out["lambda_min"], var_attrs("1", "smallest eigenvalue of K at the teacher point")),
            "final_loss": (dims, out["final_loss"], var_attrs("1", "population loss at the end")),
            "converged": (
                dims,
                (out["final_loss"] < CONVERGED_LOSS).astype(float),
                var_attrs("1", f"1 if the final loss is below {CONVERGED_LOSS:g} (back on the zero-loss set)"),
            ),
            "diverged_at": (dims, out["diverged_at"], var_attrs("1", "flow time the blow-up guard fired (NaN: never)")),
            "loss": (dims + ("t",), out["loss"], var_attrs("1", "population loss L = s^2/2 |v - v*|^2")),
        },
        coords={**_sweep_coords(ch.layers, ch.alpha, p.seeds), **_flow_coords(built)},
        attrs={**_attrs(built), "window": ch.window, "lyapunov_threshold": ch.lyapunov_threshold},
    )


def epochs_to_learn(err: np.ndarray, threshold: float) -> np.ndarray:
    """First epoch with ``log10(err) < threshold`` along the last axis (NaN where never)."""
    below = np.log10(np.where(err > 0, err, np.finfo(float).tiny)) < threshold
    first = np.argmax(below, axis=-1).astype(float)
    return np.where(below.any(axis=-1), first, np.nan)


def saddle_dataset(built: CurlBuilt, train: np.ndarray, test: np.ndarray) -> xr.Dataset:
    """Dataset of the ``saddle_escape`` experiment."""
    p = built.params
    t = p.training
    dims = ("samples", "flipped", "seed")
    return xr.Dataset(
        {
            "train_error": (dims + ("epoch",), train, var_attrs("1", "1/2 mean squared error on the training set")),
            "test_error": (dims + ("epoch",), test, var_attrs("1", "1/2 mean squared error on the test set")),
            "epochs_to_learn": (
                dims,
                epochs_to_learn(train, t.threshold),
                var_attrs("1", f"first epoch with log10(training error) < {t.threshold} (NaN: not within the run)"),
            ),
        },
        coords={
            "samples": ("samples", np.array(t.samples), var_attrs("1", "training-set size P")),
            "flipped": ("flipped", np.array(t.flipped_readout), var_attrs("1", "rule-flipped readout neurons (0: GD)")),
            "seed": ("seed", np.arange(p.seeds), var_attrs("1", "teacher, student and data index")),
            "epoch": ("epoch", np.arange(train.shape[-1]), var_attrs("1", "epoch (0: before training)")),
        },
        attrs={
            **_attrs(built),
            "batch": t.batch,
            "lr": t.lr,
            "init_gain": t.init_gain,
            "threshold": t.threshold,
            "projection": int(t.projection),
        },
    )


def summary(ds: xr.Dataset) -> str:
    """A few lines after ``neurodyn run``."""
    exp = ds.attrs.get("experiment")
    if exp == "stability":
        match = ds["perturbation_grows"] == (ds["lambda_min"] < 0)
        return (
            f"curl_descent stability: M={ds.attrs['inputs']} N={ds.attrs['hidden']}; "
            f"{int(match.sum())}/{match.size} kicked runs grow or decay as sign lambda_min(K) predicts"
        )
    if exp == "chain":
        return f"curl_descent chain: max r^2 drift {float(ds['r2_drift'].max()):.2e}; periods {ds['period'].values}"
    if exp == "chaos":
        lam = ds["lyapunov"].mean("seed")
        return "curl_descent chaos: mean Lyapunov exponent per (layer, alpha):\n" + str(lam.to_pandas())
    if exp == "saddle_escape":
        e = ds["epochs_to_learn"].mean("seed")
        return "curl_descent saddle escape: mean epochs to learn per (P, flipped):\n" + str(e.to_pandas())
    return ""
