"""Simulation driver of the ``sync_learners`` family: every (topology, n, k) combination of one scenario.

For each combination the graph is built, the state of all trials is advanced in chunks by one of the
kernels in :mod:`.kernels` and the time averages, traces and sample trajectories are collected into one
:class:`xarray.Dataset` with dimensions ``topology``, ``n``, ``k``, ``trial`` (and ``time``, ``mode``,
``batch``, ``learner``, ``coordinate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from neurodyn import stepping
from neurodyn.errors import ResourceError, ScenarioError
from neurodyn.families.sync_learners import kernels
from neurodyn.families.sync_learners.graphs import Graph, build_graph, eigenbasis, n_components, spectrum
from neurodyn.families.sync_learners.losses import DOUBLE_WELL, LOGISTIC, LossSetup, make_loss
from neurodyn.families.sync_learners.params import vector
from neurodyn.families.sync_learners.rng import Streams
from neurodyn.progress import QUIET, Progress
from neurodyn.resources import require_memory
from neurodyn.schema import var_attrs
from neurodyn.stepping import Status, kernel_threads, run_chunked

#: the spectrum is a dense eigendecomposition; beyond this it would take minutes and gigabytes
MAX_N_SPECTRUM = 4000


@dataclass
class Steps:
    """Step counts derived from the run configuration."""

    n_steps: int
    stat_start: int
    stat_every: int
    rec_every: int
    n_rec: int


def steps(scenario) -> Steps:
    """Step counts (total, burn-in, statistics interval, trace interval, trace length) of a scenario."""
    run, p, rec = scenario.run, scenario.params, scenario.record
    n_steps = run.n_steps
    burn = p.burn_in if p.burn_in is not None else 0.2 * run.duration
    stat_start = int(math.ceil(burn / run.dt - 1e-9))
    stat_every = stepping.steps(rec.stats_every, run.dt, at_least=1) if rec.stats_every else 1
    every = rec.every if rec.every is not None else run.duration / 200
    rec_every = stepping.steps(every, run.dt, at_least=1)
    return Steps(n_steps, stat_start, stat_every, rec_every, n_steps // rec_every + 1)


def graph_seed(seed: int, topo_index: int, n: int) -> int:
    """Seed of a random topology (independent of the learners' noise streams)."""
    return int(np.random.SeedSequence([seed, 0x5EED, topo_index, n]).generate_state(1)[0])


def build_graphs(scenario) -> dict[tuple[int, int], Graph]:
    """All graphs of a scenario keyed by ``(topology index, n)``; raises ScenarioError on a bad spec."""
    p = scenario.params
    out = {}
    for ti, topo in enumerate(p.topology):
        for n in p.n:
            if n > MAX_N_SPECTRUM:
                raise ResourceError(
                    f"params.n = {n}: the Laplacian spectrum is computed densely; at most {MAX_N_SPECTRUM} learners"
                )
            out[(ti, n)] = build_graph(topo, n, graph_seed(scenario.run.seed, ti, n), f"params.topology.{ti}")
    return out


def check_scenario(scenario) -> None:
    """Cross-field checks before anything large is allocated (see :meth:`SyncLearners.check`)."""
    p, run = scenario.params, scenario.run
    st = steps(scenario)
    if st.stat_start >= st.n_steps:
        raise ScenarioError("params.burn_in", p.burn_in, f"must be shorter than run.duration ({run.duration:g} s)")
    rec = scenario.record
    for key in ("every", "stats_every"):
        value = getattr(rec, key)
        if value is not None and stepping.steps(value, run.dt) < 1:
            raise ScenarioError(
                f"record.{key}", f"{value:g} s", f"at least one step (run.dt = {run.dt:g} s); omit it for the default"
            )
    # two state buffers and one step of noise, the traces, the loss's d x d matrices
    state = 3 * p.trials * max(p.n) * p.d * 8 + p.trials * st.n_rec * kernels.N_COLS * 8 + 4 * 8 * p.d * p.d
    require_memory(
        state,
        f"{p.trials} trials x {max(p.n)} learners x d = {p.d} x 3 buffers x 8 B, {st.n_rec} trace samples",
        what="params.trials, params.n, params.d",
        hint="reduce trials, n or d",
    )
    loss = make_loss(p.loss, p.d)
    graphs = build_graphs(scenario)
    for (ti, n), g in graphs.items():
        if loss.lam_f <= 0 and n_components(g) > 1 and not p.allow_disconnected:
            raise ScenarioError(
                f"params.topology.{ti}",
                g.label,
                f"graph is disconnected for n = {n} ({n_components(g)} components, lambda_2 = 0); the "
                f"spread bound needs lambda_f + k lambda_2 > 0 and the {loss.kind} loss has lambda_f = "
                f"{loss.lam_f:g}; connect the graph or set params.allow_disconnected: true "
                "(the bound is then stored as undefined)",
            )
        if p.integrator == "euler_maruyama" and math.isfinite(loss.lip):
            lam_max = float(spectrum(g)[-1]) if max(p.k) > 0 else 0.0
            for k in p.k:
                limit = 2.0 / (loss.lip + k * lam_max)
                if run.dt >= limit:
                    raise ScenarioError(
                        "run.dt",
                        run.dt,
                        "Euler-Maruyama is unstable for dt >= 2/(L + k lambda_max) = "
                        f"{limit:.3g} s "
                        f"(topology {g.label}, n = {n}, k = {k:g}); use a smaller dt"
                        + (" or integrator: exact" if loss.is_quadratic else ""),
                    )


def _chunk_steps(run) -> int | None:
    """Steps per chunk from ``run.chunk`` (None: sized adaptively by the runner)."""
    return stepping.steps(run.chunk, run.dt, at_least=1) if run.chunk else None


def _initial_state(p, loss: LossSetup, n: int, rng: np.random.Generator) -> np.ndarray:
    ref = np.nan_to_num(loss.x_ref)
    offset = vector(p.init_offset, p.d)
    x = np.empty((p.trials, n, p.d))
    x[:] = ref + offset
    if p.init_spread > 0:
        x += p.init_spread * rng.standard_normal(x.shape)
    return x


def simulate(scenario, progress: Progress = QUIET) -> xr.Dataset:
    """Run every (topology, n, k) combination of ``scenario`` and return the Dataset."""
    p, run, rec = scenario.params, scenario.run, scenario.record
    loss = make_loss(p.loss, p.d)
    graphs = build_graphs(scenario)
    st = steps(scenario)
    nt, nn, nk = len(p.topology), len(p.n), len(p.k)
    labels = [t.label_or_name for t in p.topology]
    ntraj = min(rec.trajectories, min(p.n))
    ndim = min(2, p.d)
    nmax = max(p.n)
    nb = min(rec.batches, p.trials)

    acc_all = np.full((nt, nn, nk, p.trials, kernels.N_COLS + 2), np.nan)
    trace_all = np.full((nt, nn, nk, st.n_rec, kernels.N_COLS), np.nan)
    traj_all = np.full((nt, nn, nk, st.n_rec, ntraj, ndim), np.nan)
    rate_all = np.full((nt, nn, nk, nb), np.nan)
    eig_all = np.full((nt, nn, nmax), np.nan)
    ncomp = np.zeros((nt, nn), dtype=np.int64)

    # one seed per (n, k), shared by all topologies: common random numbers make topology differences
    # less noisy, and with k = 0 every topology gives bitwise the same run
    seeds = np.random.SeedSequence(run.seed).spawn(nn * nk)
    times = np.arange(st.n_rec) * st.rec_every * run.dt
    for ti in range(nt):
        for ni, n in enumerate(p.n):
            g = graphs[(ti, n)]
            eig_all[ti, ni, :n] = spectrum(g)
            ncomp[ti, ni] = n_components(g)
            for ki, k in enumerate(p.k):
                rng, streams = noise_streams(seeds[ni * nk + ki], p.trials, n, p.d)
                desc = f"{labels[ti]} n={n} k={k:g}"
                run_fn = _run_exact if p.integrator == "exact" else _run_em
                acc, trace, traj = run_fn(p, run, st, loss, g, k, rng, streams, ntraj, ndim, progress, desc)
                acc_all[ti, ni, ki] = acc
                trace_all[ti, ni, ki] = trace.mean(axis=0)
                traj_all[ti, ni, ki] = traj
                if p.init_spread > 0:
                    rate_all[ti, ni, ki] = _batch_rates(trace[:, :, kernels.SPREAD], acc[:, kernels.SPREAD], times, nb)
    return _dataset(
        scenario, loss, labels, st, times, acc_all, trace_all, traj_all, rate_all, eig_all, ncomp, ntraj, ndim, nb
    )


#: state elements (trials x n x d) below which a step is too small to share between threads: a parallel
#: region costs a few microseconds (much more on an oversubscribed machine), a step ~3 ns per element
PARALLEL_MIN_ELEMENTS = 50_000


def _threads(run, elements: int) -> int | None:
    """Threads asked of :func:`~neurodyn.stepping.kernel_threads`: ``run.threads``, 1 for small systems."""
    return run.threads if elements >= PARALLEL_MIN_ELEMENTS else 1


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
    return np.random.default_rng(init_seed), Streams(noise_seed, kernels.n_streams(trials, n, d))


def _run_em(p, run, st: Steps, loss: LossSetup, g: Graph, k: float, rng, streams: Streams, ntraj, ndim, progress, desc):
    n = g.n
    x = _initial_state(p, loss, n, rng)
    xn = np.empty_like(x)
    acc = np.zeros((p.trials, kernels.N_COLS))
    nacc = np.zeros(2, dtype=np.int64)
    trace = np.full((p.trials, st.n_rec, kernels.N_COLS), np.nan)
    traj = np.full((st.n_rec, ntraj, ndim), np.nan)
    err_well = float(loss.lp[1]) if loss.kind_id == DOUBLE_WELL else 0.0
    with_agree = loss.kind_id == DOUBLE_WELL
    zt, yt = (loss.z_test, loss.y_test) if loss.kind_id == LOGISTIC else (np.zeros((0, p.d)), np.zeros(0))
    tmp = np.empty(kernels.N_COLS)
    for t in range(p.trials):
        kernels.state_stats(x[t], tmp, err_well, loss.x_ref, with_agree, zt, yt)
        trace[t, 0] = tmp
    traj[0] = x[0, :ntraj, :ndim]
    indptr, indices, weights = g.csr()
    deg = g.degree
    complete_w = g.complete_weight if math.isfinite(g.complete_weight) else 0.0
    z = loss.z if loss.kind_id == LOGISTIC else np.zeros((0, p.d))
    y = loss.y if loss.kind_id == LOGISTIC else np.zeros(0)
    x_ref = np.nan_to_num(loss.x_ref)

    nblk = kernels.n_blocks(n, p.d)
    wells = np.zeros((p.trials, n + 1, p.d), dtype=np.int8)
    switches = np.zeros((p.trials, 2))

    def advance(start: int, count: int) -> tuple[Status, str]:
        status = kernels.em_chunk(
            x,
            xn,
            *streams.arrays,
            nblk,
            start,
            count,
            run.dt,
            k,
            p.sigma,
            p.noise_correlation,
            loss.kind_id,
            loss.hess,
            loss.hess_diagonal,
            loss.center,
            loss.lp,
            z,
            y,
            complete_w,
            indptr,
            indices,
            weights,
            deg,
            err_well,
            x_ref,
            with_agree,
            zt,
            yt,
            st.stat_start,
            st.stat_every,
            st.rec_every,
            acc,
            nacc,
            trace,
            traj,
            wells,
            switches,
        )
        return status, (
            "" if status == Status.OK else f"{desc}: the state became non-finite; reduce run.dt or the coupling k"
        )

    with kernel_threads(_threads(run, x.size)):
        run_chunked(st.n_steps, advance, progress, desc=desc, chunk_steps=_chunk_steps(run))
    acc[:, :4] /= max(nacc[0], 1)
    acc[:, 4:] = acc[:, 4:] / nacc[1] if nacc[1] else np.nan
    if not with_agree:
        acc[:, kernels.AGREEMENT] = np.nan
    # switch rates per learner coordinate and per centroid coordinate (1/s), stored in spare columns
    span = (st.n_steps - min(st.stat_start, st.n_steps)) * run.dt
    rates = np.full((p.trials, 2), np.nan)
    if with_agree and span > 0:
        rates[:, 0] = switches[:, 0] / (n * p.d * span)
        rates[:, 1] = switches[:, 1] / (p.d * span)
    return np.concatenate([acc, rates], axis=1), trace, traj


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
    lam, u = eigenbasis(g)
    h, v = np.linalg.eigh(hess)
    r = h[None, :] + k * lam[:, None]
    decay = np.exp(-r * dt)
    s2 = np.full(g.n, sigma**2 * (1.0 - rho))
    s2[0] = sigma**2 * (1.0 - rho + rho * g.n)
    noise = np.sqrt(s2[:, None] * -np.expm1(-2.0 * r * dt) / (2.0 * r))
    return decay, noise, u, v


def _run_exact(
    p, run, st: Steps, loss: LossSetup, g: Graph, k: float, rng, streams: Streams, ntraj, ndim, progress, desc
):
    n = g.n
    decay, noise, u, v = ou_modes(g, loss.hess, k, p.sigma, p.noise_correlation, run.dt)
    x = _initial_state(p, loss, n, rng)
    # optimize=True: two matrix products instead of one (n d)^2-term loop
    yy = np.ascontiguousarray(np.einsum("ji,tjm,mq->tiq", u, x - loss.center, v, optimize=True))
    acc = np.zeros((p.trials, kernels.N_COLS))
    nacc = np.zeros(2, dtype=np.int64)
    trace = np.full((p.trials, st.n_rec, kernels.N_COLS), np.nan)
    traj = np.full((st.n_rec, ntraj, ndim), np.nan)
    spread0 = (yy[:, 1:] ** 2).sum(axis=(1, 2))
    cerr0 = (yy[:, 0] ** 2).sum(axis=1) / n
    trace[:, 0, 0], trace[:, 0, 1], trace[:, 0, 2] = spread0, cerr0, spread0 / n + cerr0
    traj[0] = x[0, :ntraj, :ndim]
    u_rows = np.ascontiguousarray(u[:ntraj])
    nblk = kernels.n_blocks(n, p.d)
    v_rows = np.ascontiguousarray(v[:ndim])

    def advance(start: int, count: int) -> tuple[Status, str]:
        return kernels.ou_chunk(
            yy,
            *streams.arrays,
            nblk,
            start,
            count,
            decay,
            noise,
            u_rows,
            v_rows,
            loss.center,
            st.stat_start,
            st.stat_every,
            st.rec_every,
            acc,
            nacc,
            trace,
            traj,
        ), ""

    with kernel_threads(_threads(run, yy.size)):
        run_chunked(st.n_steps, advance, progress, desc=desc, chunk_steps=_chunk_steps(run))
    acc[:, :3] /= max(nacc[0], 1)
    acc[:, 3:] = np.nan
    return np.concatenate([acc, np.full((p.trials, 2), np.nan)], axis=1), trace, traj


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


def _dataset(
    scenario, loss: LossSetup, labels, st: Steps, times, acc, trace, traj, rate, eig, ncomp, ntraj, ndim, nb
) -> xr.Dataset:
    p = scenario.params
    coords = {
        "topology": labels,
        "n": np.asarray(p.n, dtype=np.int64),
        "k": np.asarray(p.k, dtype=float),
        "trial": np.arange(p.trials),
        "time": times,
        "mode": np.arange(max(p.n)),
        "learner": np.arange(ntraj),
        "coordinate": np.arange(ndim),
        "batch": np.arange(nb),
    }
    cube = ("topology", "n", "k")
    err_name = (
        "squared distance to the nearest minimum"
        if loss.kind_id == DOUBLE_WELL
        else "squared distance to the minimiser"
    )
    data = {
        "spread": (
            cube + ("trial",),
            acc[..., kernels.SPREAD],
            var_attrs("1", "steady-state spread sum_i ||x_i - xbar||^2, time average per trial"),
        ),
        "centroid_error": (
            cube + ("trial",),
            acc[..., kernels.CENTROID_ERR],
            var_attrs("1", f"centroid {err_name}, time average per trial"),
        ),
        "learner_error": (
            cube + ("trial",),
            acc[..., kernels.LEARNER_ERR],
            var_attrs("1", f"mean learner {err_name}, time average per trial"),
        ),
        "spread_t": (
            cube + ("time",),
            trace[..., kernels.SPREAD],
            var_attrs("1", "spread sum_i ||x_i - xbar||^2, mean over trials"),
        ),
        "centroid_error_t": (
            cube + ("time",),
            trace[..., kernels.CENTROID_ERR],
            var_attrs("1", f"centroid {err_name}, mean over trials"),
        ),
        "learner_error_t": (
            cube + ("time",),
            trace[..., kernels.LEARNER_ERR],
            var_attrs("1", f"mean learner {err_name}, mean over trials"),
        ),
        "trajectory": (
            cube + ("time", "learner", "coordinate"),
            traj,
            var_attrs("1", "sample learner trajectories (trial 0)"),
        ),
        "laplacian_eigenvalues": (
            ("topology", "n", "mode"),
            eig,
            var_attrs("1", "graph Laplacian eigenvalues, ascending (NaN beyond n)"),
        ),
        "lambda_2": (("topology", "n"), eig[..., 1], var_attrs("1", "algebraic connectivity lambda_2")),
        "lambda_max": (
            ("topology", "n"),
            np.array([[eig[t, i, n - 1] for i, n in enumerate(p.n)] for t in range(len(labels))]),
            var_attrs("1", "largest Laplacian eigenvalue"),
        ),
        "n_components": (("topology", "n"), ncomp, var_attrs("1", "connected components of the graph")),
    }
    if p.init_spread > 0:
        data["transient_rate"] = (
            cube + ("batch",),
            rate,
            var_attrs("s-1", "decay rate of the mean spread's excess (log-linear fit, 90%..10% of the initial excess)"),
        )
    if loss.kind_id == DOUBLE_WELL:
        data["agreement"] = (
            cube + ("trial",),
            acc[..., kernels.AGREEMENT],
            var_attrs("1", "fraction of learner coordinates in the centroid's well, time average"),
        )
        data["switch_rate"] = (
            cube + ("trial",),
            acc[..., kernels.N_COLS],
            var_attrs("s-1", "well-to-well transitions per learner coordinate (arrival at the opposite minimum)"),
        )
        data["centroid_switch_rate"] = (
            cube + ("trial",),
            acc[..., kernels.N_COLS + 1],
            var_attrs("s-1", "well-to-well transitions of the centroid per coordinate"),
        )
    if loss.kind_id == LOGISTIC:
        data["test_error_learner"] = (
            cube + ("trial",),
            acc[..., kernels.TEST_ERR_LEARNER],
            var_attrs("1", "test error of single learners (mean over learners), time average"),
        )
        data["test_error_centroid"] = (
            cube + ("trial",),
            acc[..., kernels.TEST_ERR_CENTROID],
            var_attrs("1", "test error of the centroid's decision function, time average"),
        )
        data["test_error_learner_t"] = (
            cube + ("time",),
            trace[..., kernels.TEST_ERR_LEARNER],
            var_attrs("1", "test error of single learners, mean over trials"),
        )
        data["test_error_centroid_t"] = (
            cube + ("time",),
            trace[..., kernels.TEST_ERR_CENTROID],
            var_attrs("1", "test error of the centroid, mean over trials"),
        )
        data["test_error_optimum"] = (
            (),
            loss.optimum_test_error,
            var_attrs("1", "test error of the training-loss minimiser w*"),
        )
    ds = xr.Dataset({k: xr.Variable(*v) for k, v in data.items()}, coords=coords)
    ds["time"].attrs = var_attrs("s", "time")
    ds["k"].attrs = var_attrs("s-1", "coupling strength")
    ds["n"].attrs = var_attrs("1", "number of learners")
    ds["topology"].attrs = var_attrs("1", "coupling graph")
    for name in ("trial", "mode", "learner", "coordinate", "batch"):
        ds[name].attrs = var_attrs("1", name)
    ds.attrs.update(
        {
            "loss": loss.kind,
            "lambda_f": float(loss.lam_f),
            "lipschitz": float(loss.lip),
            "sigma": float(p.sigma),
            "noise_correlation": float(p.noise_correlation),
            "d": int(p.d),
            "dt": float(scenario.run.dt),
            "hessian_eigenvalues": (np.linalg.eigvalsh(loss.hess).tolist() if loss.is_quadratic else []),
            "integrator": p.integrator,
            "burn_in_s": st.stat_start * scenario.run.dt,
            "stat_samples": int((st.n_steps - st.stat_start) // st.stat_every),
        }
    )
    return ds
