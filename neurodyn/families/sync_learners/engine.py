"""Simulation loop of the ``sync_learners`` family: every (topology, n, k) combination of a built run.

Each combination draws its initial state and noise streams from its own seed just before it runs (the
state of one combination at a time is what the memory estimate allows), advances all trials in chunks with
the kernel of the scenario's integrator (:data:`INTEGRATORS`), and leaves its time averages, traces and
sample trajectories in the arrays :func:`.dataset.make_dataset` turns into the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn import stepping
from neurodyn.families.sync_learners import kernels
from neurodyn.families.sync_learners.dataset import Recorded, make_dataset
from neurodyn.families.sync_learners.losses import DOUBLE_WELL
from neurodyn.families.sync_learners.params import vector
from neurodyn.families.sync_learners.rng import Streams, new_streams
from neurodyn.progress import QUIET, Progress
from neurodyn.stepping import Status, kernel_threads, run_chunked

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.sync_learners.build import Steps, SyncBuilt
    from neurodyn.families.sync_learners.graphs import Graph
    from neurodyn.scenario import RunConfig

#: state elements (trials x n x d) below which a step is too small to share between threads: a parallel
#: region costs a few microseconds (much more on an oversubscribed machine), a step ~3 ns per element
PARALLEL_MIN_ELEMENTS = 50_000

#: what one combination's integrator returns: time averages (trials, N_COLS + 2; the last two columns the
#: switch rates), traces (trials, n_rec, N_COLS) and the sample trajectories (n_rec, learners, coordinates)
Run = tuple[np.ndarray, np.ndarray, np.ndarray]


def simulate(built: SyncBuilt, progress: Progress = QUIET) -> xr.Dataset:
    """Run every (topology, n, k) combination of ``built`` and return the Dataset."""
    p, run, rec, st = built.params, built.run, built.record, built.steps
    nt, nn, nk = len(p.topology), len(p.n), len(p.k)
    ntraj = min(rec.trajectories, min(p.n))
    ndim = min(2, p.d)
    nb = min(rec.batches, p.trials)
    times = np.arange(st.n_rec) * st.rec_every * run.dt
    out = Recorded(
        times=times,
        acc=np.full((nt, nn, nk, p.trials, kernels.N_COLS + 2), np.nan),
        trace=np.full((nt, nn, nk, st.n_rec, kernels.N_COLS), np.nan),
        traj=np.full((nt, nn, nk, st.n_rec, ntraj, ndim), np.nan),
        rate=np.full((nt, nn, nk, nb), np.nan),
        eig=np.full((nt, nn, max(p.n)), np.nan),
        ncomp=np.zeros((nt, nn), dtype=np.int64),
    )
    integrate = INTEGRATORS[p.integrator]
    # one seed per (n, k), shared by all topologies: common random numbers make topology differences
    # less noisy, and with k = 0 every topology gives bitwise the same run
    seeds = np.random.SeedSequence(run.seed).spawn(nn * nk)
    for ti, label in enumerate(built.labels):
        for ni, n in enumerate(p.n):
            g = built.graphs[(ti, n)]
            out.eig[ti, ni, :n] = g.spectrum
            out.ncomp[ti, ni] = g.components
            for ki, k in enumerate(p.k):
                rng, streams = noise_streams(seeds[ni * nk + ki], p.trials, n, p.d)
                desc = f"{label} n={n} k={k:g}"
                acc, trace, traj = integrate(built, g, k, rng, streams, ntraj, ndim, progress, desc)
                out.acc[ti, ni, ki] = acc
                out.trace[ti, ni, ki] = trace.mean(axis=0)
                out.traj[ti, ni, ki] = traj
                if p.init_spread > 0:
                    out.rate[ti, ni, ki] = _batch_rates(trace[:, :, kernels.SPREAD], acc[:, kernels.SPREAD], times, nb)
    return make_dataset(built, out)


def noise_streams(
    seed: np.random.SeedSequence,
    trials: int,
    n: int,
    d: int,
) -> tuple[np.random.Generator, Streams]:
    """Generator for the initial state and the kernels' per-block noise streams of one run.

    Both are spawned from ``seed``; the number of streams depends on ``(trials, n, d)`` only
    (:func:`kernels.n_streams`), so the noise does not depend on the thread count.
    """
    # children derived without seed.spawn(), which would mutate ``seed`` (it is reused per topology)
    init_seed, noise_seed = (np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i)) for i in (0, 1))
    return np.random.default_rng(init_seed), new_streams(noise_seed, kernels.n_streams(trials, n, d))


def _initial_state(built: SyncBuilt, n: int, rng: np.random.Generator) -> np.ndarray:
    """``x_ref + init_offset + init_spread N(0, I)`` for every trial and learner, (trials, n, d)."""
    p = built.params
    ref = np.nan_to_num(built.loss.x_ref)
    offset = vector(p.init_offset, p.d)
    x = np.empty((p.trials, n, p.d))
    x[:] = ref + offset
    if p.init_spread > 0:
        x += p.init_spread * rng.standard_normal(x.shape)
    return x


def _threads(run: RunConfig, elements: int) -> int | None:
    """Threads asked of :func:`~neurodyn.stepping.kernel_threads`: ``run.threads``, 1 for small systems."""
    return run.threads if elements >= PARALLEL_MIN_ELEMENTS else 1


def _chunk_steps(run: RunConfig) -> int | None:
    """Steps per chunk from ``run.chunk`` (None: sized adaptively by :func:`~neurodyn.stepping.run_chunked`)."""
    return stepping.steps(run.chunk, run.dt, at_least=1) if run.chunk else None


def _recording(trials: int, st: Steps, ntraj: int, ndim: int) -> kernels.Recording:
    """Empty accumulators and traces of one combination."""
    return kernels.Recording(
        np.zeros((trials, kernels.N_COLS)),
        np.zeros(2, dtype=np.int64),
        np.full((trials, st.n_rec, kernels.N_COLS), np.nan),
        np.full((st.n_rec, ntraj, ndim), np.nan),
    )


def run_em(
    built: SyncBuilt,
    g: Graph,
    k: float,
    rng: np.random.Generator,
    streams: Streams,
    ntraj: int,
    ndim: int,
    progress: Progress,
    desc: str,
) -> Run:
    """One combination with the Euler-Maruyama kernel (:func:`kernels.em_chunk`), any loss."""
    p, run, st, loss = built.params, built.run, built.steps, built.loss
    n = g.n
    x = _initial_state(built, n, rng)
    xn = np.empty_like(x)
    rec = _recording(p.trials, st, ntraj, ndim)
    with_agree = loss.kind_id == DOUBLE_WELL
    measure = kernels.Measure(
        float(loss.lp[1]) if with_agree else 0.0,
        np.nan_to_num(loss.x_ref),
        with_agree,
        loss.z_test,
        loss.y_test,
    )
    tmp = np.empty(kernels.N_COLS)
    for t in range(p.trials):
        kernels.state_stats(x[t], tmp, measure, True)
        rec.trace[t, 0] = tmp
    rec.traj[0] = x[0, :ntraj, :ndim]
    complete_w = g.complete_weight if math.isfinite(g.complete_weight) else 0.0
    coupling = kernels.Coupling(complete_w, *g.csr(), g.degree)
    kloss = kernels.Loss(loss.kind_id, loss.hess, loss.hess_diagonal, loss.center, loss.lp, loss.z, loss.y)
    em = kernels.EMStep(run.dt, k, p.sigma, p.noise_correlation)
    schedule = st.schedule
    wells = kernels.Wells(np.zeros((p.trials, n + 1, p.d), dtype=np.int8), np.zeros((p.trials, 2)))
    nblk = kernels.n_blocks(n, p.d)

    def advance(start: int, count: int) -> tuple[Status, str]:
        status = kernels.em_chunk(
            x, xn, streams, nblk, start, count, em, kloss, coupling, measure, schedule, rec, wells
        )
        return status, (
            "" if status == Status.OK else f"{desc}: the state became non-finite; reduce run.dt or the coupling k"
        )

    with kernel_threads(_threads(run, x.size)):
        run_chunked(st.n_steps, advance, progress, desc=desc, chunk_steps=_chunk_steps(run))
    acc, nacc = rec.acc, rec.nacc
    acc[:, :4] /= max(nacc[0], 1)
    acc[:, 4:] = acc[:, 4:] / nacc[1] if nacc[1] else np.nan
    if not with_agree:
        acc[:, kernels.AGREEMENT] = np.nan
    # switch rates per learner coordinate and per centroid coordinate (1/s), stored in spare columns
    span = (st.n_steps - min(st.stat_start, st.n_steps)) * run.dt
    rates = np.full((p.trials, 2), np.nan)
    if with_agree and span > 0:
        rates[:, 0] = wells.switches[:, 0] / (n * p.d * span)
        rates[:, 1] = wells.switches[:, 1] / (p.d * span)
    return np.concatenate([acc, rates], axis=1), rec.trace, rec.traj


def ou_modes(
    g: Graph,
    hess: np.ndarray,
    k: float,
    sigma: float,
    rho: float,
    dt: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-mode decay factors and exact-step noise of the coupled OU system.

    Returns
    -------
    decay, noise : ndarray, shape (n, d)
        ``exp(-r dt)`` and ``s_j sqrt((1 - exp(-2 r dt)) / (2 r))`` with ``r_jm = h_m + k lambda_j``,
        ``s_0^2 = sigma^2 (1 - rho + rho n)`` (the centroid mode gets the shared noise) and
        ``s_j^2 = sigma^2 (1 - rho)`` otherwise.
    u, v : ndarray
        Laplacian eigenvectors (columns, ``u[:, 0] = 1/sqrt(n)``) and Hessian eigenvectors.
    """
    lam, u = g.eigenbasis
    h, v = np.linalg.eigh(hess)
    r = h[None, :] + k * lam[:, None]
    decay = np.exp(-r * dt)
    s2 = np.full(g.n, sigma**2 * (1.0 - rho))
    s2[0] = sigma**2 * (1.0 - rho + rho * g.n)
    noise = np.sqrt(s2[:, None] * -np.expm1(-2.0 * r * dt) / (2.0 * r))
    return decay, noise, u, v


def run_exact(
    built: SyncBuilt,
    g: Graph,
    k: float,
    rng: np.random.Generator,
    streams: Streams,
    ntraj: int,
    ndim: int,
    progress: Progress,
    desc: str,
) -> Run:
    """One combination with the exact Ornstein-Uhlenbeck kernel (:func:`kernels.ou_chunk`), quadratic loss."""
    p, run, st, loss = built.params, built.run, built.steps, built.loss
    n = g.n
    decay, noise, u, v = ou_modes(g, loss.hess, k, p.sigma, p.noise_correlation, run.dt)
    x = _initial_state(built, n, rng)
    # optimize=True: two matrix products instead of one (n d)^2-term loop
    yy = np.ascontiguousarray(np.einsum("ji,tjm,mq->tiq", u, x - loss.center, v, optimize=True))
    rec = _recording(p.trials, st, ntraj, ndim)
    spread0 = (yy[:, 1:] ** 2).sum(axis=(1, 2))
    cerr0 = (yy[:, 0] ** 2).sum(axis=1) / n
    rec.trace[:, 0, 0], rec.trace[:, 0, 1], rec.trace[:, 0, 2] = spread0, cerr0, spread0 / n + cerr0
    rec.traj[0] = x[0, :ntraj, :ndim]
    modes = kernels.Modes(decay, noise, np.ascontiguousarray(u[:ntraj]), np.ascontiguousarray(v[:ndim]), loss.center)
    schedule = st.schedule
    nblk = kernels.n_blocks(n, p.d)

    def advance(start: int, count: int) -> tuple[Status, str]:
        return kernels.ou_chunk(yy, streams, nblk, start, count, modes, schedule, rec), ""

    with kernel_threads(_threads(run, yy.size)):
        run_chunked(st.n_steps, advance, progress, desc=desc, chunk_steps=_chunk_steps(run))
    acc = rec.acc
    acc[:, :3] /= max(rec.nacc[0], 1)
    acc[:, 3:] = np.nan
    return np.concatenate([acc, np.full((p.trials, 2), np.nan)], axis=1), rec.trace, rec.traj


#: the kernel of each integrator (``params.integrator``), as scipy's ``METHODS``
INTEGRATORS: dict[str, Callable[..., Run]] = {"euler_maruyama": run_em, "exact": run_exact}


def _batch_rates(spread_trace: np.ndarray, spread_mean: np.ndarray, times: np.ndarray, nb: int) -> np.ndarray:
    """Decay rate of the mean spread's excess over its steady value, fitted per batch of trials.

    The fit uses the trace points whose excess lies between 90% and 10% of the initial excess (the
    contraction-dominated part of the transient), ``log excess = a - rate t`` by least squares.
    """
    out = np.full(nb, np.nan)
    for b, idx in enumerate(np.array_split(np.arange(spread_trace.shape[0]), nb)):
        mean_t = spread_trace[idx].mean(axis=0)
        excess = mean_t - spread_mean[idx].mean()
        e0 = excess[0]
        if not e0 > 0:
            continue
        below = np.nonzero(excess < 0.1 * e0)[0]
        stop = below[0] if below.size else len(excess)
        sel = np.arange(stop)
        sel = sel[(excess[sel] <= 0.9 * e0) & (excess[sel] > 0)]
        if sel.size >= 3:
            out[b] = -np.polyfit(times[sel], np.log(excess[sel]), 1)[0]
    return out
