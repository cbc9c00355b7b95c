"""The solvers every ``ltc_cfc`` experiment shares: the LTC network unfolded by the fused solver or explicit
Euler (the Numba kernel :func:`.kernels.unfold` in chunks), the adaptive reference solution (scipy
``solve_ivp``), and the scalar ODEs and closed form of the CfC paper's Lemma 1. A module of its own so that
the experiments (:mod:`.engine`, :mod:`.speed`, :mod:`.xor`) and the tests use one definition of each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from neurodyn.families.ltc_cfc import kernels as K
from neurodyn.families.ltc_cfc.build import Problem
from neurodyn.families.ltc_cfc.params import ClosedForm, InputShape
from neurodyn.stepping import Status, run_chunked

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.progress import Progress


# --------------------------------------------------------------------------- solvers of one network


def new_stats() -> np.ndarray:
    """A fresh statistics row of :func:`kernels.unfold` (margins start at +inf)."""
    stats = np.zeros(len(K.STATS))
    stats[1] = stats[3] = np.inf
    return stats


def unfolded(
    pr: Problem, L: int, scheme: str, blowup: float = np.inf, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The state after every input sample under the fused solver or explicit Euler with ``L`` sub-steps.

    Returns the states ``(T, N)`` (NaN after a blow-up) and the statistics row (:data:`kernels.STATS`).
    """
    T = pr.inputs.shape[0]
    x = pr.x0.copy()
    xs = np.full((T, x.shape[0]), np.nan)
    stats = new_stats()
    stopped = [False]

    def advance(first: int, n: int) -> tuple[Status, str]:
        if not stopped[0]:
            code = K.unfold(
                pr.net, pr.bounds, x, pr.inputs, pr.elapsed, L, K.SCHEME_CODES[scheme], first, n, xs, stats, blowup
            )
            stopped[0] = code != 0
        return Status.OK, ""

    run_chunked(T, advance, progress, desc=f"{scheme} L={L}", unit="sample")
    return xs, stats


def adaptive(
    pr: Problem, rtol: float, atol: float, blowup: float = np.inf, method: str = "DOP853", check: bool = True
) -> tuple[np.ndarray, np.ndarray, int]:
    """The adaptive solution: one ``solve_ivp`` per input sample (the input is constant in between).

    The box is checked at every accepted step of the solver (``check``). Returns the states after every sample
    ``(T, N)`` (NaN after a blow-up: a state beyond ``blowup`` ends the solve), the statistics row and the
    number of right-hand-side evaluations.
    """
    from scipy.integrate import solve_ivp

    T, N = pr.inputs.shape[0], pr.x0.shape[0]
    xs = np.full((T, N), np.nan)
    stats = new_stats()
    g, d = np.empty(N), np.empty(N)
    x = pr.x0.copy()
    nfev = 0

    def escape(t: float, y: np.ndarray) -> float:
        return blowup - np.max(np.abs(y))

    escape.terminal = True
    for s in range(T):
        inp = pr.inputs[s]

        def fun(t: float, y: np.ndarray, inp: np.ndarray = inp) -> np.ndarray:
            out = np.empty(N)
            K.rhs(pr.net, y, inp, out)
            return out

        sol = solve_ivp(
            fun,
            (0.0, float(pr.elapsed[s])),
            x,
            method=method,
            rtol=rtol,
            atol=atol,
            events=escape if np.isfinite(blowup) else None,
        )
        nfev += sol.nfev
        if check:
            for c in range(sol.y.shape[1]):
                y = sol.y[:, c]
                K.conductance(pr.net, y, inp, g, d)
                K.check_rate(pr.net, pr.bounds, g, stats)
                K.check_state(pr.bounds, y, stats)
                stats[4] += N
        if sol.status != 0 or not np.all(np.isfinite(sol.y[:, -1])):
            stats[5] = 1.0
            break
        x = sol.y[:, -1].copy()
        xs[s] = x
    return xs, stats, nfev


# --------------------------------------------------------------------------- closed form (Lemma 1)


def logistic(u: np.ndarray | float) -> np.ndarray:
    """The logistic sigmoid, elementwise."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(u, dtype=float)))


def input_of(shape: InputShape) -> Callable[[np.ndarray], np.ndarray]:
    """``I(t)`` of a scalar input shape, vectorised over ``t``."""
    if shape.kind == "constant":
        return lambda t: np.full_like(np.asarray(t, dtype=float), shape.level)
    if shape.kind == "sine":
        return lambda t: shape.level + shape.amplitude * np.sin(shape.omega * np.asarray(t, dtype=float))
    return lambda t: np.where(np.asarray(t, dtype=float) < shape.at, shape.level, shape.after)


def closed_form_x(cf: ClosedForm, inp: Callable[[np.ndarray], np.ndarray], t: np.ndarray) -> np.ndarray:
    """Lemma 1's closed form ``x~(t) = (x0 - A) exp(-(w_tau + f(I(t))) t) f(-I(t)) + A`` (CfC Eq. 8)."""
    I = inp(t)
    f = logistic(cf.gain * I + cf.bias)
    f_neg = logistic(-cf.gain * I + cf.bias)
    return (cf.x0 - cf.A) * np.exp(-(cf.w_tau + f) * t) * f_neg + cf.A


def ode_solution(cf: ClosedForm, shape: InputShape, t: np.ndarray, symmetrised: bool) -> np.ndarray:
    """The accurate solution of ``dx/dt = -(w_tau + f(I)) x + A (w_tau + f(I))`` (symmetrised, the drive of the
    lemma's proof) or ``+ A f(I)`` (the stated Eq. 1), on the times ``t``; a step input is solved in two pieces."""
    from scipy.integrate import solve_ivp

    inp = input_of(shape)

    def fun(s: float, x: np.ndarray) -> np.ndarray:
        f = float(logistic(cf.gain * float(inp(s)) + cf.bias))
        drive = cf.A * (cf.w_tau + f) if symmetrised else cf.A * f
        return np.array([-(cf.w_tau + f) * x[0] + drive])

    cuts = [0.0, float(t[-1])]
    if shape.kind == "step" and 0.0 < shape.at < t[-1]:
        cuts = [0.0, shape.at, float(t[-1])]
    out = np.empty_like(t)
    x = np.array([cf.x0])
    for a, b in zip(cuts[:-1], cuts[1:]):
        last = b == cuts[-1]
        sel = (t >= a) & ((t <= b) if last else (t < b))
        sol = solve_ivp(fun, (a, b), x, method="DOP853", rtol=cf.rtol, atol=cf.atol, t_eval=t[sel], dense_output=True)
        out[sel] = sol.y[0]
        x = sol.sol(b)
    return out
