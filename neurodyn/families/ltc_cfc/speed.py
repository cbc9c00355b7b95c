"""The ``speed`` experiment: wall time per sequence of a CfC cell, the fused LTC and an adaptive LTC, at equal
accuracy (``papers/ltc_cfc.md`` §7c).

The accuracy is measured against the reference solution of the same LTC (scipy DOP853, rtol 1e-12): the fused
solver's error is fitted to the first-order law ``err = C / L^p`` on ``params.speed.unfolds``, which gives the
``L`` that reaches ``target_error``; the adaptive solver (Dormand-Prince 5(4) in Numba, scipy RK45's scheme)
takes the loosest tolerance of ``rtols`` that reaches it. The CfC cell (``ncps`` defaults: backbone of 128
lecun-tanh units, hidden size N) has no accuracy knob: its distance to the LTC is fixed by Lemma 1, so its time
is set beside the others as it is. Every time is the fastest of ``repeats`` runs, after a warm-up call that
compiles the kernels. A module of its own: the experiment has a solver sweep, a fit and timing of its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.families.ltc_cfc import kernels as K
from neurodyn.families.ltc_cfc.build import TAG_CELL, LTCBuilt, stream
from neurodyn.families.ltc_cfc.solvers import adaptive
from neurodyn.schema import var_attrs

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.progress import Progress

#: the unfolds of the paper's LTC (ncps's and the authors' default)
PAPER_UNFOLDS = 6
#: tolerances of the reference solution
REF_RTOL, REF_ATOL = 1e-12, 1e-14


def xavier(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """Glorot-uniform weights ``(fan_in, fan_out)`` (ncps's initialisation)."""
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=(fan_in, fan_out))


def random_cell(M: int, N: int, B: int, mode: str, act: str, rng: np.random.Generator) -> K.Cell:
    """A CfC cell with Glorot-uniform weights and zero biases (ncps's initialisation; Cf-S: A = 1, w_tau = 0)."""
    return K.Cell(
        xavier(rng, M + N, B),
        np.zeros(B),
        xavier(rng, B, N),
        np.zeros(N),
        xavier(rng, B, N),
        np.zeros(N),
        xavier(rng, B, N),
        np.zeros(N),
        xavier(rng, B, N),
        np.zeros(N),
        np.ones(N),
        np.zeros(N),
        K.MODE_CODES[mode],
        K.ACT_CODES[act],
    )


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed calls of ``fn`` (after one untimed warm-up call)."""
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_speed(built: LTCBuilt, progress: Progress) -> xr.Dataset:
    """Times and errors of every solver, the L and tolerance that reach the target, CfC's time."""
    s = built.params.speed
    pr = built.problems[("sigmoid", 0)]
    T, N = pr.inputs.shape[0], pr.x0.shape[0]
    ref, _, _ = adaptive(pr, REF_RTOL, REF_ATOL, check=False)
    xs = np.empty((T, N))
    stats = np.zeros(len(K.STATS))
    stats[1] = stats[3] = np.inf
    Ls = list(s.unfolds)

    def fused(L: int) -> Callable[[], object]:
        def go() -> None:
            x = pr.x0.copy()
            K.unfold(pr.net, pr.bounds, x, pr.inputs, pr.elapsed, L, 0, 0, T, xs, stats, np.inf)

        return go

    def error() -> float:
        return float(np.max(np.abs(xs - ref)))

    n_tasks = len(Ls) + 1 + len(s.rtols) + 1
    with progress.task(n_tasks, "timing", "solver") as bar:
        f_time, f_err = [], []
        for L in Ls:
            f_time.append(best_time(fused(L), s.repeats))
            f_err.append(error())
            bar.update(1)
        # the law is asymptotic: fit it on the three largest L (all of them when fewer are given)
        logL, logE = np.log(np.asarray(Ls[-3:], dtype=float)), np.log(np.asarray(f_err[-3:]))
        slope, intercept = np.polyfit(logL, logE, 1) if len(Ls) > 1 else (0.0, 0.0)
        order = -float(slope)
        L_need = int(math.ceil(math.exp((intercept - math.log(s.target_error)) / order))) if order > 0 else -1
        if L_need > 0:
            L_time = best_time(fused(L_need), s.repeats)
            L_err = error()
        else:
            L_time = L_err = math.nan
        paper_time = best_time(fused(PAPER_UNFOLDS), s.repeats)
        paper_err = error()
        bar.update(1)
        r_time, r_err, r_nfev = [], [], []
        for rtol in s.rtols:

            def go(rtol: float = rtol) -> int:
                x = pr.x0.copy()
                return K.rk45_sequence(pr.net, x, pr.inputs, pr.elapsed, rtol, rtol * 1e-2, xs)

            r_time.append(best_time(go, s.repeats))
            r_nfev.append(go())
            r_err.append(error())
            bar.update(1)
        cell = random_cell(
            pr.inputs.shape[1], N, s.backbone, "default", "lecun_tanh", stream(built.scenario.run.seed, TAG_CELL)
        )

        def cfc() -> None:
            x = np.zeros(N)
            K.cfc_sequence(cell, x, pr.inputs, pr.elapsed, xs)

        c_time = best_time(cfc, s.repeats)
        bar.update(1)
    ok = np.flatnonzero(np.asarray(r_err) <= s.target_error)
    r_pick = int(ok[0]) if ok.size else -1
    rk_time = r_time[r_pick] if r_pick >= 0 else math.nan
    # the same adaptive scheme driven from Python (scipy's RK45, its step loop in the interpreter), as adaptive
    # ODE models are driven from Python by torchdiffeq: the per-step overhead the Numba solver does not pay
    if r_pick >= 0:
        rtol = s.rtols[r_pick]
        py_time = best_time(lambda: adaptive(pr, rtol, rtol * 1e-2, method="RK45", check=False), max(1, s.repeats // 2))
        py_err = float(np.max(np.abs(adaptive(pr, rtol, rtol * 1e-2, method="RK45", check=False)[0] - ref)))
    else:
        py_time = py_err = math.nan
    data = {
        "fused_time": (("unfolds",), np.asarray(f_time), var_attrs("s", "wall time per sequence, fused LTC")),
        "fused_error": (("unfolds",), np.asarray(f_err), var_attrs("1", "max |x - x_ref|, fused LTC")),
        "rk45_time": (("rtol",), np.asarray(r_time), var_attrs("s", "wall time per sequence, adaptive RK45 LTC")),
        "rk45_error": (("rtol",), np.asarray(r_err), var_attrs("1", "max |x - x_ref|, adaptive RK45 LTC")),
        "rk45_evaluations": (("rtol",), np.asarray(r_nfev), var_attrs("1", "right-hand-side evaluations, RK45")),
        "fused_order": ((), order, var_attrs("1", "fitted order p of the fused solver's error law err = C / L^p")),
        "unfolds_needed": ((), L_need, var_attrs("1", "L the fitted error law needs for the target error")),
        "fused_time_at_target": ((), L_time, var_attrs("s", "wall time per sequence, fused LTC at unfolds_needed")),
        "fused_error_at_target": ((), L_err, var_attrs("1", "max |x - x_ref|, fused LTC at unfolds_needed")),
        "rk45_time_at_target": (
            (),
            rk_time,
            var_attrs("s", "wall time per sequence, RK45 at the loosest rtol reaching the target"),
        ),
        "scipy_rk45_time_at_target": (
            (),
            py_time,
            var_attrs("s", "wall time per sequence, scipy RK45 (Python step loop) at the same rtol"),
        ),
        "scipy_rk45_error_at_target": ((), py_err, var_attrs("1", "max |x - x_ref|, scipy RK45 at the same rtol")),
        "speedup_scipy_rk45": ((), py_time / c_time, var_attrs("1", "scipy RK45 LTC time / CfC time")),
        "cfc_time": ((), c_time, var_attrs("s", "wall time per sequence, CfC cell (backbone + 4 heads)")),
        "fused_time_paper_unfolds": (
            (),
            paper_time,
            var_attrs("s", f"wall time per sequence, fused LTC at L = {PAPER_UNFOLDS}"),
        ),
        "fused_error_paper_unfolds": (
            (),
            paper_err,
            var_attrs("1", f"max |x - x_ref|, fused LTC at L = {PAPER_UNFOLDS}"),
        ),
        "speedup_fused_paper_unfolds": (
            (),
            paper_time / c_time,
            var_attrs("1", f"fused LTC time at L = {PAPER_UNFOLDS} / CfC time"),
        ),
        "speedup_fused": ((), L_time / c_time, var_attrs("1", "fused LTC time / CfC time at the target error")),
        "speedup_rk45": ((), rk_time / c_time, var_attrs("1", "adaptive RK45 LTC time / CfC time at the target error")),
    }
    coords = {
        "unfolds": ("unfolds", np.asarray(Ls), var_attrs("1", "fused solver sub-steps L per sample")),
        "rtol": ("rtol", np.asarray(s.rtols), var_attrs("1", "RK45 relative tolerance (atol = rtol / 100)")),
    }
    lines = [
        f"fused LTC: error ~ L^-{order:.3f}; L = {L_need} reaches {s.target_error:g} "
        f"(error {L_err:.3g}) in {L_time * 1e3:.3g} ms per sequence",
        f"RK45 LTC: rtol {s.rtols[r_pick] if r_pick >= 0 else float('nan'):g} reaches it in {rk_time * 1e3:.3g} ms "
        f"(Numba), {py_time * 1e3:.3g} ms (scipy, error {py_err:.3g})",
        f"CfC: {c_time * 1e3:.3g} ms per sequence: {L_time / c_time:.3g}x faster than the fused LTC, "
        f"{rk_time / c_time:.3g}x faster than RK45 in Numba, {py_time / c_time:.3g}x than scipy's",
        f"at the paper's L = {PAPER_UNFOLDS} (error {paper_err:.3g}) CfC is {paper_time / c_time:.3g}x faster "
        "than the fused LTC",
    ]
    attrs = {
        "experiment": "speed",
        "target_error": s.target_error,
        "neurons": N,
        "samples": T,
        "backbone": s.backbone,
        "summary_lines": "\n".join(lines),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)
