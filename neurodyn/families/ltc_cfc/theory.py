"""Theory beside simulation for ``ltc_cfc``: Theorems 1-2 of the LTC paper as bounds on every solver's
violations, Lemma 1 of the CfC paper as a bound on the closed form's error (and its exact value for a constant
input), the first-order error law of the fused solver and the published speed and XOR figures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.families.ltc_cfc.kernels import ROUNDING
from neurodyn.rows import Row
from neurodyn.schema import var_attrs

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.ltc_cfc.build import LTCBuilt

SRC_THM2 = (
    "Hasani et al. 2021 (LTC), Theorem 2: min(0, A_i^min) <= x_i(t) <= max(0, A_i^max) for f >= 0 and positive "
    "weights (here the hull of vl_i and the reversals E_ji); for the fused step it holds at any dt because the "
    "new state is a convex combination of x, vl and E (derived here); allowed: rounding (1e-12 of the box width) "
    "for the fixed-step solvers, 100 (rtol + atol) for the adaptive one"
)
SRC_THM1 = (
    "Hasani et al. 2021 (LTC), Theorem 1: tau_i/(1 + tau_i W_i) <= tau_sys,i <= tau_i for 0 <= f_i <= W_i "
    "(sigmoid synapses with nonnegative weights); it depends only on the range of f, so it holds at any state"
)
SRC_EULER = (
    "explicit Euler is a convex combination of x, vl and E while dt (gl + g)/cm <= 1, i.e. for sub-steps up to "
    "euler_convex_step (derived here; beyond it the box is not guaranteed)"
)
SRC_EULER_LARGE = "expected, not a theorem: explicit Euler beyond euler_convex_step leaves Theorem 2's box"
SRC_ORDER = (
    "Hasani et al. 2021 (LTC), Eq. 3: the fused step is a semi-implicit Euler step, first order (error ~ 1/L); "
    "fitted on the three largest L"
)
SRC_LEMMA = (
    "Hasani et al. 2022 (CfC), Lemma 1 (Eq. 8): |x(t) - x~(t)| <= |x0 - A| exp(-w_tau t), proved for the "
    "symmetrised drive A (w_tau + f)"
)
SRC_LEMMA_STATED = (
    "Hasani et al. 2022 (CfC), Lemma 1 as stated for Eq. 1 (drive A f); its proof assumes the drive "
    "A (w_tau + f), and with A f the ODE settles at A f/(w_tau + f), not at A: the bound is not expected to hold"
)
SRC_CONSTANT = (
    "exact for a constant input (derived here from CfC Eqs. 5 and 8): x - x~ = (x0 - A) exp(-(w_tau + f(I)) t) "
    "(1 - f(-I))"
)


def theory(built: LTCBuilt, ds: xr.Dataset) -> xr.Dataset:
    """Predictions of the run's experiment (see module docstring)."""
    exp = built.params.experiment
    if exp == "bounds":
        return bounds_theory(ds)
    if exp == "closed_form":
        return closed_form_theory(ds)
    from neurodyn.families.ltc_cfc import published as pub

    out = xr.Dataset()
    if exp == "speed":
        out["fused_order_theory"] = (
            (),
            1.0,
            var_attrs("1", "order of the fused solver's error law", source=SRC_ORDER, rel_tol=0.1),
        )
        out["published_speedup_fused"] = (
            (),
            pub.SPEEDUP_FUSED,
            var_attrs("1", "published speed-up over the fused LTC (lowest)", source=pub.SRC_SPEED_FUSED),
        )
        out["published_speedup_ode"] = (
            (),
            pub.SPEEDUP_ODE,
            var_attrs("1", "published speed-up over neural ODEs", source=pub.SRC_SPEED_ODE),
        )
    elif exp == "xor":
        models, encodings = list(ds["model"].values), list(ds["encoding"].values)
        table = np.full((len(models), len(encodings), 2), np.nan)
        for mi, m in enumerate(models):
            for ei, enc in enumerate(encodings):
                table[mi, ei] = pub.XOR_TABLE.get(m, {}).get(enc, (np.nan, np.nan))
        out["published_accuracy"] = (
            ("model", "encoding"),
            table[..., 0],
            var_attrs("%", "published final test accuracy (mean)", source=pub.SRC_XOR),
        )
        out["published_accuracy_std"] = (
            ("model", "encoding"),
            table[..., 1],
            var_attrs("%", "published final test accuracy (std over 5 runs)", source=pub.SRC_XOR),
        )
        out = out.assign_coords(model=ds["model"], encoding=ds["encoding"])
    return out


def bounds_theory(ds: xr.Dataset) -> xr.Dataset:
    """Lower bound 0 on every tightest margin where a theorem (or the convex-step argument) applies, else NaN."""
    sigmoid = (ds["head"] == "sigmoid").values
    fused = (ds["scheme"] == "fused").values
    convex = ds["max_substep"].values[None, :] <= ds["euler_convex_step"].values[:, None] * (1 + 1e-12)
    state = np.full(ds["state_margin"].shape, np.nan)
    for h in range(state.shape[0]):
        if not sigmoid[h]:
            continue
        for s in range(state.shape[1]):
            state[h, s] = np.where(fused[s] | convex[h], -ROUNDING, np.nan)
    rate = np.where(sigmoid[:, None, None], -ROUNDING, np.nan) * np.ones(ds["rate_margin"].shape)
    lower = {"bound": "lower"}
    out = xr.Dataset()
    out["state_margin_bound"] = (
        ds["state_margin"].dims,
        state,
        var_attrs("1", "Theorem 2: states stay in the box (margin >= 0)", source=f"{SRC_THM2}; {SRC_EULER}", **lower),
    )
    out["rate_margin_bound"] = (
        ds["rate_margin"].dims,
        rate,
        var_attrs("1", "Theorem 1: 1/tau_sys stays in its range (margin >= 0)", source=SRC_THM1, **lower),
    )
    # the adaptive solution is exact only to its tolerance: a state converging on a reversal may cross it by that
    adapt = np.where(sigmoid, -100.0 * (ds.attrs["adaptive_rtol"] + ds.attrs.get("adaptive_atol", 0.0)), np.nan)
    out["adaptive_state_margin_bound"] = (
        ("head",),
        adapt,
        var_attrs("1", "Theorem 2 under the adaptive solution", source=SRC_THM2, **lower),
    )
    out["adaptive_rate_margin_bound"] = (
        ("head",),
        np.where(sigmoid, -ROUNDING, np.nan),
        var_attrs("1", "Theorem 1 under the adaptive solution", source=SRC_THM1, **lower),
    )
    return out.assign_coords(head=ds["head"], scheme=ds["scheme"], unfolds=ds["unfolds"])


def closed_form_theory(ds: xr.Dataset) -> xr.Dataset:
    """Lemma 1's bound on the largest error ratio (1) and the exact constant-input error curve."""
    out = xr.Dataset()
    n = ds.sizes["input"]
    out["ratio_symmetrised_bound"] = (
        ("input",),
        np.ones(n),
        var_attrs("1", "Lemma 1: error / bound <= 1", source=SRC_LEMMA),
    )
    out["ratio_stated_bound"] = (
        ("input",),
        np.ones(n),
        var_attrs("1", "Lemma 1 as stated: error / bound <= 1", source=SRC_LEMMA_STATED),
    )
    if "constant_error" in ds:
        a = ds.attrs
        t = ds["time"].values
        level = float(ds["drive"].sel(input="constant").values[0])
        f = _logistic(a["gain"] * level + a["bias"])
        f_neg = _logistic(-a["gain"] * level + a["bias"])
        exact = (a["x0"] - a["A"]) * np.exp(-(a["w_tau"] + f) * t) * (1.0 - f_neg)
        out["constant_error_exact"] = (
            ("time",),
            exact,
            var_attrs("1", "exact x - x~ for the constant input", source=SRC_CONSTANT),
        )
    return out.assign_coords(input=ds["input"])


def _logistic(u: float) -> float:
    return float(0.5 * (1.0 + np.tanh(0.5 * u)))


def solver_precision(ds: xr.Dataset) -> float:
    """What "to solver precision" allows for the constant-input curve: 100 (atol + rtol max(|x0|, |A|))."""
    a = ds.attrs
    return 100.0 * (a["atol"] + a["rtol"] * max(abs(a["x0"]), abs(a["A"])))


def compare_rows(ds: xr.Dataset) -> list[Row]:
    """The experiment's rows beyond the generic ``_theory``/``_bound`` pairs."""
    exp = ds.attrs.get("experiment")
    rows: list[Row] = []
    if exp == "closed_form" and "constant_error_exact" in ds:
        dev = float(np.max(np.abs(ds["constant_error"].values - ds["constant_error_exact"].values)))
        rows.append(
            Row(
                quantity="max |error - exact error|, constant input",
                simulated=dev,
                predicted=solver_precision(ds),
                kind="upper_bound",
                source=SRC_CONSTANT + "; allowed: 100 (atol + rtol max(|x0|, |A|)) of the DOP853 solution",
                where="input=constant",
            )
        )
    elif exp == "bounds":
        large = ds["max_substep"].values[None, :] > ds["euler_convex_step"].values[:, None]
        for h, head in enumerate(ds["head"].values):
            if head != "sigmoid":
                continue
            for li, L in enumerate(ds["unfolds"].values):
                if large[h, li]:
                    rows.append(
                        Row(
                            quantity="state_violations",
                            simulated=float(ds["state_violations"].sel(head=head, scheme="euler").values[li]),
                            predicted=1.0,
                            kind="lower_bound",
                            source=SRC_EULER_LARGE,
                            where=f"head={head}, scheme=euler, unfolds={int(L)}",
                        )
                    )
    elif exp in ("speed", "xor"):
        from neurodyn.families.ltc_cfc.published import published_rows

        rows += published_rows(ds)
    return rows
