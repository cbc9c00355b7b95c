"""The stored result of each ``ltc_cfc`` experiment as an :class:`xarray.Dataset`.

Every variable and coordinate carries ``units`` and ``long_name``; ``attrs["experiment"]`` names the experiment,
which is how :mod:`.theory` and :mod:`.plots` read a stored file. Time is dimensionless (units ``1``: the units
the input intervals are written in).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from neurodyn.families.ltc_cfc.params import Bounds, ClosedForm
from neurodyn.schema import var_attrs

#: the statistics of a solver's bound check: column of :data:`kernels.STATS` -> (name, long_name)
CHECKS = {
    0: ("state_violations", "states outside Theorem 2's box [min(vl, E), max(vl, E)] (summed over networks)"),
    1: ("state_margin", "tightest relative distance of a state to its box edge (negative: outside)"),
    2: ("rate_violations", "1/tau_sys outside Theorem 1's range [1/tau, 1/tau + W] (summed over networks)"),
    3: ("rate_margin", "tightest relative distance of 1/tau_sys to its range edge (negative: outside)"),
    5: ("diverged", "networks whose state left [-blowup, blowup] or became non-finite"),
}


def _reduce(stats: np.ndarray, col: int) -> np.ndarray:
    """Sum counts, take the minimum of margins, over the last (network) axis."""
    v = stats[..., col]
    return np.min(v, axis=-1) if col in (1, 3) else np.sum(v, axis=-1)


def bounds_dataset(
    heads: list[str],
    schemes: list[str],
    unfolds: list[int],
    step: np.ndarray,
    adapt: np.ndarray,
    traces: dict[str, np.ndarray],
    trace_box: np.ndarray,
    trace_time: np.ndarray,
    safe_step: np.ndarray,
    max_elapsed: float,
    b: Bounds,
) -> xr.Dataset:
    """Bound checks ``(head, scheme, unfolds)`` of the fixed-step solvers, ``(head)`` of the adaptive one, traces."""
    data = {}
    for col, (name, long_name) in CHECKS.items():
        data[name] = (("head", "scheme", "unfolds"), _reduce(step, col), var_attrs("1", long_name + ", fixed step"))
        data[f"adaptive_{name}"] = (("head",), _reduce(adapt, col), var_attrs("1", long_name + ", adaptive DOP853"))
    data["checks"] = (("head", "scheme", "unfolds"), _reduce(step, 4), var_attrs("1", "neuron-states checked"))
    data["max_substep"] = (
        ("unfolds",),
        max_elapsed / np.asarray(unfolds, dtype=float),
        var_attrs("1", "largest sub-step: longest input interval / L"),
    )
    data["euler_convex_step"] = (
        ("head",),
        safe_step,
        var_attrs("1", "sub-step below which an explicit Euler step is a convex combination: 1 / max(1/tau + W)"),
    )
    for name in ("adaptive", "fused", "euler"):
        label = {"adaptive": "adaptive DOP853", "fused": "fused solver", "euler": "explicit Euler"}[name]
        extra = "" if name == "adaptive" else f", L = {unfolds[0]}"
        data[f"trace_{name}"] = (
            ("head", "sample"),
            traces[name],
            var_attrs("1", f"state of neuron 0 of network 0 after each sample, {label}{extra}"),
        )
    data["trace_lo"] = (("head",), trace_box[:, 0], var_attrs("1", "lower edge of neuron 0's box (network 0)"))
    data["trace_hi"] = (("head",), trace_box[:, 1], var_attrs("1", "upper edge of neuron 0's box (network 0)"))
    coords = {
        "head": ("head", heads, var_attrs("1", "head f: sigmoid synapses (f >= 0) or the tanh example")),
        "scheme": ("scheme", schemes, var_attrs("1", "fixed-step solver: fused (Eq. 3) or explicit Euler")),
        "unfolds": ("unfolds", np.asarray(unfolds), var_attrs("1", "sub-steps L per input sample")),
        "sample_time": ("sample", trace_time, var_attrs("1", "time at the end of each input sample (network 0)")),
    }
    return xr.Dataset(
        data,
        coords=coords,
        attrs={
            "experiment": "bounds",
            "networks": b.networks,
            "neurons": b.network.neurons,
            "form": b.network.form,
            "adaptive_rtol": b.rtol,
            "adaptive_atol": b.atol,
        },
    )


def closed_form_dataset(
    kinds: list[str],
    t: np.ndarray,
    inputs: np.ndarray,
    x_cf: np.ndarray,
    x_sym: np.ndarray,
    x_stated: np.ndarray,
    cf: ClosedForm,
) -> xr.Dataset:
    """Trajectories ``(input, time)`` of the closed form and both ODEs, their errors, and the largest error ratios."""
    bound = np.abs(cf.x0 - cf.A) * np.exp(-cf.w_tau * t)
    err_sym = np.abs(x_sym - x_cf)
    err_stated = np.abs(x_stated - x_cf)
    dims = ("input", "time")
    data = {
        "drive": (dims, inputs, var_attrs("1", "input I(t)")),
        "x_closed_form": (dims, x_cf, var_attrs("1", "closed form x~(t) of Lemma 1 (CfC Eq. 8)")),
        "x_symmetrised": (dims, x_sym, var_attrs("1", "ODE solution with drive A (w_tau + f) (the lemma's proof)")),
        "x_stated": (dims, x_stated, var_attrs("1", "ODE solution with drive A f (CfC Eq. 1 as stated)")),
        "error_symmetrised": (dims, err_sym, var_attrs("1", "|x - x~|, symmetrised ODE")),
        "error_stated": (dims, err_stated, var_attrs("1", "|x - x~|, stated ODE")),
        "lemma_bound": (("time",), bound, var_attrs("1", "Lemma 1's bound |x0 - A| exp(-w_tau t)")),
        "ratio_symmetrised": (
            ("input",),
            np.max(err_sym / bound, axis=1),
            var_attrs("1", "largest |x - x~| / bound over time, symmetrised ODE"),
        ),
        "ratio_stated": (
            ("input",),
            np.max(err_stated / bound, axis=1),
            var_attrs("1", "largest |x - x~| / bound over time, stated ODE"),
        ),
    }
    if "constant" in kinds:
        i = kinds.index("constant")
        data["constant_error"] = (
            ("time",),
            x_sym[i] - x_cf[i],
            var_attrs("1", "x - x~ for the constant input, symmetrised ODE"),
        )
    coords = {
        "input": ("input", kinds, var_attrs("1", "input shape")),
        "time": ("time", t, var_attrs("1", "time")),
    }
    attrs = {
        "experiment": "closed_form",
        **{k: getattr(cf, k) for k in ("x0", "A", "w_tau", "gain", "bias", "rtol", "atol")},
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def summary(ds: xr.Dataset) -> str:
    """A few lines on the run's outcome."""
    exp = ds.attrs.get("experiment")
    lines = []
    if exp == "bounds":
        for head in ds["head"].values:
            sel = ds.sel(head=head)
            lines.append(
                f"{head}: adaptive {int(sel['adaptive_state_violations'])} state violations "
                f"(margin {float(sel['adaptive_state_margin']):.3g}); fused "
                f"{int(sel['state_violations'].sel(scheme='fused').sum())} "
                f"(margin {float(sel['state_margin'].sel(scheme='fused').min()):.3g}); Euler "
                f"{int(sel['state_violations'].sel(scheme='euler').sum())} over all L; "
                f"rate violations {int(sel['rate_violations'].sum() + sel['adaptive_rate_violations'])}"
            )
    elif exp == "closed_form":
        for k in ds["input"].values:
            lines.append(
                f"{k}: largest error / Lemma 1 bound {float(ds['ratio_symmetrised'].sel(input=k)):.3g} "
                f"(symmetrised), {float(ds['ratio_stated'].sel(input=k)):.3g} (stated drive)"
            )
    elif exp in ("speed", "xor"):
        lines += [str(line) for line in ds.attrs.get("summary_lines", "").split("\n") if line]
    return "\n".join(lines)
