"""The ``ltc_cfc`` experiments, dispatched on ``params.experiment`` through :data:`EXPERIMENTS`.

``bounds``
    Theorems 1-2 of the LTC paper: every random network is solved by the adaptive reference (scipy DOP853 at
    a tight tolerance, one solve per input sample, since the input is constant in between), by the fused
    solver and by explicit Euler at every ``L``; the box of each neuron is checked after every step.
``closed_form``
    Lemma 1 of the CfC paper: the closed form ``x~(t)`` against accurate solutions of the symmetrised ODE
    (drive ``A (w_tau + f)``) and of the stated Eq. 1 (drive ``A f``), for each input shape.
``speed``
    Wall time per sequence at equal accuracy (see :mod:`.speed`).
``xor``
    Bit-stream XOR trained by exact BPTT (see :mod:`.xor`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.families.ltc_cfc import kernels as K
from neurodyn.families.ltc_cfc.build import LTCBuilt
from neurodyn.families.ltc_cfc.dataset import bounds_dataset, closed_form_dataset
from neurodyn.families.ltc_cfc.solvers import adaptive, closed_form_x, input_of, ode_solution, unfolded

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.progress import Progress


def simulate(built: LTCBuilt, progress: Progress) -> xr.Dataset:
    """Run the scenario's experiment on what :func:`~.build.build` made."""
    return EXPERIMENTS[built.params.experiment](built, progress)


# --------------------------------------------------------------------------- bounds


def run_bounds(built: LTCBuilt, progress: Progress) -> xr.Dataset:
    """Theorems 1-2 under every solver for every network (see module docstring)."""
    b = built.params.bounds
    heads, Ls = list(b.heads), list(b.unfolds)
    schemes = list(K.SCHEME_CODES)
    step = np.full((len(heads), len(schemes), len(Ls), b.networks, len(K.STATS)), np.nan)
    adapt = np.full((len(heads), b.networks, len(K.STATS)), np.nan)
    T = b.inputs.samples
    traces = {name: np.full((len(heads), T), np.nan) for name in ("adaptive", "fused", "euler")}
    trace_box = np.full((len(heads), 2), np.nan)
    safe_step = np.full(len(heads), np.inf)
    max_elapsed = 0.0
    for h, head in enumerate(heads):
        for n in range(b.networks):
            pr = built.problems[(head, n)]
            max_elapsed = max(max_elapsed, float(pr.elapsed.max()))
            # explicit Euler's step is a convex combination of x, vl and the reversals while
            # dt (gl + g)/cm <= 1, which f <= W guarantees for dt <= 1 / max rate_hi
            safe_step[h] = min(safe_step[h], 1.0 / float(pr.bounds.rate_hi.max()))
            xs_a, adapt[h, n], _ = adaptive(pr, b.rtol, b.atol, b.blowup)
            for si, scheme in enumerate(schemes):
                for li, L in enumerate(Ls):
                    xs, step[h, si, li, n] = unfolded(pr, L, scheme, b.blowup, progress)
                    if n == 0 and li == 0:
                        traces[scheme][h] = xs[:, 0]
            if n == 0:
                traces["adaptive"][h] = xs_a[:, 0]
                trace_box[h] = pr.bounds.lo[0], pr.bounds.hi[0]
                trace_time = np.cumsum(pr.elapsed)
    return bounds_dataset(heads, schemes, Ls, step, adapt, traces, trace_box, trace_time, safe_step, max_elapsed, b)


def run_closed_form(built: LTCBuilt, progress: Progress) -> xr.Dataset:
    """Closed form against both ODEs for every input shape (see module docstring)."""
    cf = built.params.closed_form
    t = np.linspace(0.0, cf.duration, cf.points)
    kinds = [s.kind for s in cf.shapes]
    x_cf = np.empty((len(kinds), t.size))
    x_sym = np.empty_like(x_cf)
    x_stated = np.empty_like(x_cf)
    inputs = np.empty_like(x_cf)
    with progress.task(len(kinds), "closed form vs ODE", "input") as bar:
        for i, shape in enumerate(cf.shapes):
            inp = input_of(shape)
            inputs[i] = inp(t)
            x_cf[i] = closed_form_x(cf, inp, t)
            x_sym[i] = ode_solution(cf, shape, t, symmetrised=True)
            x_stated[i] = ode_solution(cf, shape, t, symmetrised=False)
            bar.update(1)
    return closed_form_dataset(kinds, t, inputs, x_cf, x_sym, x_stated, cf)


def _speed(built: LTCBuilt, progress: Progress) -> xr.Dataset:
    from neurodyn.families.ltc_cfc.speed import run_speed

    return run_speed(built, progress)


def _xor(built: LTCBuilt, progress: Progress) -> xr.Dataset:
    from neurodyn.families.ltc_cfc.xor import run_xor

    return run_xor(built, progress)


#: experiment -> its runner
EXPERIMENTS: dict[str, Callable[[LTCBuilt, Progress], xr.Dataset]] = {
    "bounds": run_bounds,
    "closed_form": run_closed_form,
    "speed": _speed,
    "xor": _xor,
}
