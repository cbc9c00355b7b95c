"""The time loop of a ``cortical_field`` run: every built variant, one after the other, in chunks.

Each variant runs its scheme (:data:`SCHEMES`: Störmer–Verlet, BAOAB or RK4, see :mod:`.kernels`): the
scheme's entry allocates its working arrays from the built variant and returns a :class:`Stepper`, which
:func:`neurodyn.stepping.run_chunked` advances to the end. The recordings go to :mod:`.dataset`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np
import xarray as xr

from neurodyn.families.cortical_field import kernels as K
from neurodyn.families.cortical_field.build import CorticalBuilt, Setup, Variant
from neurodyn.families.cortical_field.dataset import Raw, make_dataset
from neurodyn.stepping import Status, kernel_threads, run_chunked, steps

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.progress import Progress

#: lattices smaller than this run the serial kernels (a parallel region per step would cost more)
PARALLEL_MIN_SITES = 256 * 256


def use_parallel(setup: Setup) -> bool:
    """Row-parallel kernels when more than one thread is available and the lattice is large."""
    return numba.get_num_threads() > 1 and setup.nx * setup.ny >= PARALLEL_MIN_SITES


@dataclass
class Stepper:
    """A scheme ready to run: ``advance(start, n)`` for :func:`~neurodyn.stepping.run_chunked`, and the field."""

    #: run steps ``start .. start+n-1``; returns the kernel's ``(status, step, f, j, i)``
    advance: Callable[[int, int], tuple[int, int, int, int, int]]
    #: the interior field ``(F, ny, nx)`` now
    field: Callable[[], np.ndarray]
    #: name of component ``f`` in the kernel's report of a non-finite value
    component: Callable[[int], str]


def _padded(a: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0], a.shape[1] + 2, a.shape[2] + 2))
    out[:, 1:-1, 1:-1] = a
    return out


def _initial_acceleration(u: np.ndarray, v: Variant, lat: K.Consts) -> np.ndarray:
    """Acceleration ``kappa lap u - M u + J(x, 0)`` of the padded field ``u`` (fills its ghosts)."""
    st = v.setup
    acc = np.zeros_like(u)
    K.baoab_force(u, acc, lat, np.zeros((st.n_fields, st.ny + 2)))
    K.add_sources(acc, st.src, 0.0, np.ones_like(u), 0)
    return acc


def _stormer(v: Variant, lat: K.Consts, rec: K.Recording, rng: np.random.Generator) -> Stepper:
    """Störmer–Verlet (deterministic leapfrog) from rest at ``u0``."""
    st = v.setup
    dt = st.dt
    U = np.zeros((3, st.n_fields, st.ny + 2, st.nx + 2))
    U[1] = _padded(v.u0)
    K.fill_ghosts(U[1], st.periodic)
    acc = _initial_acceleration(U[1], v, lat)
    U[0] = U[1] + 0.5 * dt * dt * acc  # u_{-1} with v_0 = 0
    U[0][:, 0, :] = U[0][:, -1, :] = 0.0
    U[0][:, :, 0] = U[0][:, :, -1] = 0.0
    g = 0.5 * (st.gamma[:, None, None] + v.sponge[None]) * dt
    state = K.StormerState(U, np.ones(1, dtype=np.int64), np.zeros_like(U[1]), _rowsum(st))
    co = K.StormerCoeffs(st.gamma, v.sponge, bool(v.sponge.any()), dt * dt / (1.0 + g))
    return Stepper(
        advance=lambda start, n: K.stormer_run(state, start, n, lat, co, rec),
        field=lambda: U[state.level[0]][:, 1:-1, 1:-1].copy(),
        component=lambda f: st.names[f],
    )


def _baoab(v: Variant, lat: K.Consts, rec: K.Recording, rng: np.random.Generator) -> Stepper:
    """BAOAB (Langevin leapfrog) from rest at ``u0``."""
    st = v.setup
    dt = st.dt
    u = _padded(v.u0)
    a = _initial_acceleration(u, v, lat)
    w = -0.5 * dt * a
    gtot = st.gamma[:, None, None] + v.sponge[None] + np.zeros_like(u)
    decay = np.exp(-gtot * dt)
    with np.errstate(divide="ignore", invalid="ignore"):
        amp = np.where(
            gtot > 0,
            st.sigma * np.sqrt((1 - decay**2) / (2 * np.where(gtot > 0, gtot, 1))),
            st.sigma * math.sqrt(dt),
        )
    xi = np.zeros((st.n_fields, st.ny, st.nx))
    state = K.BaoabState(u, w, a, xi, np.zeros_like(u), _rowsum(st))
    co = K.BaoabCoeffs(decay, amp, st.sigma > 0, np.ones_like(u))
    return Stepper(
        advance=lambda start, n: K.baoab_run(state, start, n, lat, co, rng, rec),
        field=lambda: u[:, 1:-1, 1:-1].copy(),
        component=lambda f: st.names[f],
    )


def _rk4(v: Variant, lat: K.Consts, rec: K.Recording, rng: np.random.Generator) -> Stepper:
    """RK4 over the two-component site state, starting at ``(u0, 0)``."""
    st = v.setup
    plane = (st.ny + 2, st.nx + 2)
    X = np.zeros((2, *plane))
    X[0, 1:-1, 1:-1] = v.u0[0]
    code, pvec, vel, gain = rk4_site(st)
    site = K.SiteModel(code, pvec, vel, st.sigma, gain, np.ones((1, *plane)))
    state = K.Rk4State(
        X, np.zeros((5, 2, *plane)), np.zeros((2, *plane)), np.zeros((1, *plane)), np.zeros((1, *plane)), _rowsum(st)
    )
    return Stepper(
        advance=lambda start, n: K.rk4_run(state, start, n, lat, site, rng, rec),
        field=lambda: X[0:1, 1:-1, 1:-1].copy(),
        component=lambda f: "u" if f == 0 else "second component",
    )


#: the time-stepping schemes, by the name :func:`~.build.scheme_of` gives a variant
SCHEMES: dict[str, Callable[[Variant, K.Consts, K.Recording, np.random.Generator], Stepper]] = {
    "stormer": _stormer,
    "baoab": _baoab,
    "rk4": _rk4,
}


def _rowsum(st: Setup) -> np.ndarray:
    """Per-row finiteness flags of every field (at least two: RK4 flags both components)."""
    return np.zeros((max(st.n_fields, 2), st.ny + 2))


def rk4_site(setup: Setup) -> tuple[int, np.ndarray, np.ndarray, float]:
    """Site-model code, parameter vector, velocity map and noise gain for :func:`.kernels.rk4_run`."""
    kap = float(setup.kappa[0])
    if setup.model == "harmonic":
        return K.HARMONIC, np.array([setup.mass[0, 0], kap, setup.gamma[0]]), np.array([0.0, 1.0]), 1.0
    lin = setup.lin
    vel = np.array([lin.a, -lin.b])
    if setup.model == "ei_linear":
        return K.EI_LINEAR, np.array([lin.a, lin.b, lin.c, lin.d, kap]), vel, -1.0 / lin.b
    wc = setup.wc
    G = wc.tau_i / (lin.b * lin.slopes[1])
    p = np.array(
        [
            wc.tau_e,
            wc.tau_i,
            wc.w_ee,
            wc.w_ei,
            wc.w_ie,
            wc.w_ii,
            wc.p_e,
            wc.p_i,
            wc.a_e,
            wc.theta_e,
            wc.a_i,
            wc.theta_i,
            lin.fixed_point[0],
            lin.fixed_point[1],
            G,
            kap,
        ]
    )
    return K.WILSON_COWAN, p, vel, -1.0 / lin.b


def run_variant(v: Variant, chunk: float | None, progress: Progress) -> Raw:
    """Run one built variant in chunks (of ``chunk`` seconds, default auto) and return its recordings."""
    st, plan = v.setup, v.plan
    snaps = np.zeros((plan.n_snap, st.n_fields, st.ny, st.nx))
    probe_out = np.zeros((plan.n_probe, len(plan.probes)))
    energy = np.zeros((plan.n_energy, 4))
    rec = K.Recording(
        snaps,
        plan.k_snap,
        plan.probes,
        probe_out,
        plan.k_probe,
        energy,
        plan.k_energy,
        np.zeros((st.n_fields, st.ny + 2, 3)),
    )
    t_start = time.perf_counter()
    lat = K.Consts(st.dt, st.kappa, st.mass, st.periodic, st.src, use_parallel(st))
    stepper = SCHEMES[st.scheme](v, lat, rec, np.random.default_rng(v.noise_seed))

    def advance(start: int, n: int) -> tuple[Status, str]:
        """``(status, detail)`` for :func:`~neurodyn.stepping.run_chunked` from the kernel's report."""
        status, step, f, j, i = stepper.advance(start, n)
        if status == Status.OK:
            return Status.OK, ""
        return Status(status), (
            f"non-finite value at step {step} (t = {step * st.dt:.6g} s), field {stepper.component(f)}, site "
            f"(x={i - 1}, y={j - 1}); the dynamics diverged (unstable mass matrix, drive or model)"
        )

    timing: dict = {}
    chunk_steps = steps(chunk, st.dt, at_least=1) if chunk else None
    desc = f"{st.label} ({st.nx}x{st.ny}, {st.scheme})"
    run_chunked(st.n_steps, _timed(advance, timing), progress, desc=desc, chunk_steps=chunk_steps)
    return Raw(
        variant=v,
        snaps=snaps,
        probe_out=probe_out,
        energy=energy,
        u_final=stepper.field(),
        wall=time.perf_counter() - t_start,
        rate=timing.get("rate", math.nan) * st.nx * st.ny * st.n_fields,
    )


def _timed(advance: Callable[[int, int], tuple[Status, str]], timing: dict) -> Callable[[int, int], tuple[Status, str]]:
    """Wrap ``advance`` to measure steps/s after the first chunk (which includes loading compiled code)."""

    def inner(start: int, n: int) -> tuple[Status, str]:
        t0 = time.perf_counter()
        out = advance(start, n)
        if start > 0:
            timing["steps"] = timing.get("steps", 0) + n
            timing["wall"] = timing.get("wall", 0.0) + time.perf_counter() - t0
            timing["rate"] = timing["steps"] / max(timing["wall"], 1e-12)
        return out

    return inner


def simulate(built: CorticalBuilt, progress: Progress) -> xr.Dataset:
    """Run every variant (same initial field, independent noise streams) and return the Dataset."""
    with kernel_threads(built.run.threads):  # run.threads, else what the process has (all cores)
        raws = [run_variant(v, built.run.chunk, progress) for v in built.variants]
    return make_dataset(built, raws)
