"""Numba kernels of the ``sync_learners`` family.

Two integrators advance ``trials`` independent copies of the n-learner system in one call:

* :func:`em_chunk` - Euler-Maruyama for any loss,
  ``x_i <- x_i + dt (-grad f(x_i) + k c_i) + sigma sqrt(dt) (sqrt(1-rho) xi_i + sqrt(rho) eta)``,
  with the coupling ``c_i = sum_j A_ij (x_j - x_i)`` computed from the CSR adjacency (``O(edges d)``) or,
  for a complete graph with one weight ``w``, as ``w n (xbar - x_i)`` (``O(n d)``, never the dense
  Laplacian). Two state buffers alternate, so the sparse product always reads the previous step.
* :func:`ou_chunk` - the exact Ornstein-Uhlenbeck step for a quadratic loss. In the basis
  ``Y = U^T (X - 1 c^T) V`` (``U``: Laplacian eigenvectors with ``U[:, 0] = 1/sqrt(n)``, ``V``: Hessian
  eigenvectors) every entry is an independent scalar OU process with rate ``r_jm = h_m + k lambda_j``, so
  ``y <- e^{-r dt} y + s_j sqrt((1 - e^{-2 r dt}) / (2 r)) xi`` is exact for any ``dt``.

Noise: each trial's learners (modes) are split into a fixed number of blocks (:func:`n_blocks`, a
function of n and d only), each with its own xoshiro256++/ziggurat stream (:mod:`.rng`), and the blocks
of a step run in parallel with ``prange``; partial sums are reduced in block order, so a seed gives
bitwise-identical results whatever the chunking and whatever ``NUMBA_NUM_THREADS``.

Both kernels accumulate the time averages (spread ``V = sum_i ||x_i - xbar||^2``, centroid error, mean
learner error) from ``stat_start`` every ``stat_every`` steps, and record traces every ``rec_every`` steps.
Both return a :class:`~neurodyn.stepping.Status`: ``OK``, or ``NAN`` when the state became non-finite.

Arguments come bundled in named tuples (Numba passes them whole): :class:`Loss`, :class:`Coupling`,
:class:`EMStep`, :class:`Measure`, :class:`Schedule`, :class:`Recording`, :class:`Wells`, :class:`Modes` and
the noise :class:`~.rng.Streams`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from neurodyn.families.sync_learners.losses import DOUBLE_WELL, LOGCOSH, QUADRATIC
from neurodyn.families.sync_learners.rng import BATCH, take_normals
from neurodyn.stepping import Status

# trace / accumulator columns
SPREAD, CENTROID_ERR, LEARNER_ERR, AGREEMENT, TEST_ERR_LEARNER, TEST_ERR_CENTROID = 0, 1, 2, 3, 4, 5
N_COLS = 6


class Loss(NamedTuple):
    """A loss as the kernels evaluate its gradient (the arrays of a :class:`.losses.LossSetup`)."""

    #: :data:`.losses.QUADRATIC`, ``LOGCOSH``, ``DOUBLE_WELL`` or ``LOGISTIC``
    kind: int
    #: Hessian of the quadratic loss, (d, d) (zeros otherwise)
    hess: np.ndarray
    #: ``hess`` is diagonal (the matrix product is skipped)
    hess_diagonal: bool
    #: centre ``c`` of the quadratic and log-cosh losses, (d,)
    center: np.ndarray
    #: scalar parameters: log-cosh ``[s, mu]``, double well ``[B, w]``, logistic ``[reg]``
    lp: np.ndarray
    #: logistic training features (m, d) and labels (m,) (empty otherwise)
    z: np.ndarray
    y: np.ndarray


class Coupling(NamedTuple):
    """The coupling graph as the Euler-Maruyama kernel reads it."""

    #: > 0: a complete graph with this one edge weight, coupled through the mean; 0: use the CSR adjacency
    complete_weight: float
    #: CSR adjacency (int64, int64, float64) and weighted degrees
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    degree: np.ndarray


class EMStep(NamedTuple):
    """Constants of an Euler-Maruyama step."""

    dt: float
    #: coupling strength (1/s)
    k: float
    #: noise amplitude and correlation between learners
    sigma: float
    rho: float


class Measure(NamedTuple):
    """How the statistics of a state are measured (:func:`state_stats`)."""

    #: > 0: double well of this half-width (errors to the nearest minimum); 0: errors to ``x_ref``
    err_well: float
    #: the minimiser errors are measured from, (d,)
    x_ref: np.ndarray
    #: measure the agreement (fraction of coordinates in the centroid's well; double well)
    with_agreement: bool
    #: logistic test set (m, d) and labels (m,); empty: no test errors
    z_test: np.ndarray
    y_test: np.ndarray


class Schedule(NamedTuple):
    """When statistics are accumulated and traces recorded (in steps)."""

    #: time averages start after this step ...
    stat_start: int
    #: ... and take a sample every this many steps
    stat_every: int
    #: traces take a sample every this many steps
    rec_every: int


class Recording(NamedTuple):
    """What the kernels accumulate and record (advanced in place across chunks)."""

    #: (trials, N_COLS) sums of the statistics over the sampled steps
    acc: np.ndarray
    #: [time-average samples, trace samples after the burn-in] accumulated in ``acc``
    nacc: np.ndarray
    #: (trials, n_rec, N_COLS) statistics at the trace times
    trace: np.ndarray
    #: (n_rec, learners, coordinates) sample trajectories of trial 0
    traj: np.ndarray


class Wells(NamedTuple):
    """Double-well switch counting (advanced in place across chunks)."""

    #: (trials, n + 1, d) int8: the last minimum (+1 / -1, 0: none yet) each coordinate reached; row n: centroid
    last: np.ndarray
    #: (trials, 2) arrivals at the opposite minimum from ``stat_start`` on: learners, centroid
    switches: np.ndarray


class Modes(NamedTuple):
    """The exact Ornstein-Uhlenbeck step in the mode basis (:func:`ou_chunk`)."""

    #: (n, d) ``exp(-r_jm dt)``
    decay: np.ndarray
    #: (n, d) standard deviation of the exact step's noise
    noise: np.ndarray
    #: (recorded learners, n) rows of the Laplacian eigenvectors ``U`` of the learners whose trajectories are kept
    u_rows: np.ndarray
    #: (recorded coordinates, d) rows of the Hessian eigenvectors ``V``
    v_rows: np.ndarray
    #: centre ``c`` of the quadratic loss, (d,)
    center: np.ndarray


@njit(cache=True, inline="always")
def _grad(kind, xi, g, hess, hess_diagonal, center, lp, z, y):
    """Gradient of the loss (the fields of a :class:`Loss`) at one learner's state ``xi`` into ``g``.

    Called per learner and step, so it takes the loss's fields, unpacked once before the step loop, not
    the tuple: taking the arrays out of the tuple per call made a quadratic-loss step 20% slower.
    """
    d = xi.shape[0]
    if kind == QUADRATIC:
        if hess_diagonal:
            for m in range(d):
                g[m] = hess[m, m] * (xi[m] - center[m])
        else:
            for m in range(d):
                acc = 0.0
                for q in range(d):
                    acc += hess[m, q] * (xi[q] - center[q])
                g[m] = acc
    elif kind == LOGCOSH:  # log-cosh plus quadratic
        s = lp[0]
        mu = lp[1]
        for m in range(d):
            u = xi[m] - center[m]
            g[m] = s * math.tanh(u / s) + mu * u
    elif kind == DOUBLE_WELL:
        b = lp[0]
        w2 = lp[1] * lp[1]
        for m in range(d):
            g[m] = 4.0 * b * xi[m] * (xi[m] * xi[m] / w2 - 1.0) / w2
    else:  # regularised logistic regression, full batch
        reg = lp[0]
        nsamp = z.shape[0]
        for m in range(d):
            g[m] = reg * xi[m]
        for a in range(nsamp):
            margin = 0.0
            for m in range(d):
                margin += z[a, m] * xi[m]
            margin *= y[a]
            # sigma(-margin), written to avoid overflow for large |margin|
            if margin >= 0:
                e = math.exp(-margin)
                s = e / (1.0 + e)
            else:
                s = 1.0 / (1.0 + math.exp(margin))
            coef = -y[a] * s / nsamp
            for m in range(d):
                g[m] += coef * z[a, m]


@njit(cache=True, inline="always")
def _error(err_well, xi, xref):
    """Squared distance to the minimiser (double well: to the nearest minimum, coordinate-wise)."""
    acc = 0.0
    if err_well > 0.0:
        for m in range(xi.shape[0]):
            u = abs(xi[m]) - err_well
            acc += u * u
    else:
        for m in range(xi.shape[0]):
            u = xi[m] - xref[m]
            acc += u * u
    return acc


@njit(cache=True)
def _misclassified(w, zt, yt):
    wrong = 0
    for a in range(zt.shape[0]):
        s = 0.0
        for m in range(w.shape[0]):
            s += zt[a, m] * w[m]
        if (s > 0.0 and yt[a] < 0.0) or (s <= 0.0 and yt[a] > 0.0):
            wrong += 1
    return wrong / zt.shape[0]


@njit(cache=True)
def state_stats(x, out, measure, with_test):
    """Statistics of one trial's state ``x`` (n, d) into ``out`` (length :data:`N_COLS`), as ``measure`` says.

    Columns: spread, centroid error, mean learner error, agreement (fraction of coordinates on the
    centroid's side of 0; double well), mean learner and centroid test error (if ``with_test`` and the
    measure has a test set; else NaN).
    """
    err_well = measure.err_well
    xref = measure.x_ref
    with_agreement = measure.with_agreement
    zt = measure.z_test
    yt = measure.y_test
    n, d = x.shape
    xbar = np.zeros(d)
    for i in range(n):
        for m in range(d):
            xbar[m] += x[i, m]
    for m in range(d):
        xbar[m] /= n
    spread = 0.0
    lerr = 0.0
    agree = 0.0
    for i in range(n):
        for m in range(d):
            u = x[i, m] - xbar[m]
            spread += u * u
            if with_agreement and (x[i, m] > 0.0) == (xbar[m] > 0.0):
                agree += 1.0
        lerr += _error(err_well, x[i], xref)
    out[0] = spread
    out[1] = _error(err_well, xbar, xref)
    out[2] = lerr / n
    out[3] = agree / (n * d) if with_agreement else np.nan
    if with_test and zt.shape[0] > 0:
        te = 0.0
        for i in range(n):
            te += _misclassified(x[i], zt, yt)
        out[4] = te / n
        out[5] = _misclassified(xbar, zt, yt)
    else:
        out[4] = np.nan
        out[5] = np.nan


@njit(cache=True)
def _record(x, step, schedule, rec, measure, tmp):
    """Accumulate time averages and record traces after ``step`` (state at time (step + 1) dt)."""
    stat_start = schedule.stat_start
    trace = rec.trace
    s1 = step + 1
    do_stat = s1 >= stat_start and (s1 - stat_start) % schedule.stat_every == 0
    r = s1 // schedule.rec_every
    do_rec = s1 % schedule.rec_every == 0 and r < trace.shape[1]
    if not (do_stat or do_rec):
        return
    acc = rec.acc
    nacc = rec.nacc
    traj = rec.traj
    trials = x.shape[0]
    for t in range(trials):
        # test errors are costly (test set x learners): only at trace times
        state_stats(x[t], tmp, measure, do_rec)
        if do_stat:
            for c in range(4):
                acc[t, c] += tmp[c]
        if do_rec:
            for c in range(trace.shape[2]):
                trace[t, r, c] = tmp[c]
            if s1 >= stat_start:
                acc[t, 4] += tmp[4]
                acc[t, 5] += tmp[5]
    if do_stat:
        nacc[0] += 1
    if do_rec:
        if s1 >= stat_start:
            nacc[1] += 1
        for a in range(traj.shape[1]):
            for m in range(traj.shape[2]):
                traj[r, a, m] = x[0, a, m]


@njit(cache=True)
def _count_switches(x, w, wells, counting):
    """Well-to-well transitions: a coordinate switches when it reaches the minimum opposite its last one."""
    last = wells.last
    switches = wells.switches
    trials, n, d = x.shape
    for t in range(trials):
        for m in range(d):
            mean = 0.0
            for i in range(n + 1):
                if i < n:
                    v = x[t, i, m]
                    mean += v
                else:
                    v = mean / n
                side = 1 if v >= w else (-1 if v <= -w else 0)
                if side != 0 and side != last[t, i, m]:
                    if counting and last[t, i, m] != 0:
                        switches[t, 0 if i < n else 1] += 1.0
                    last[t, i, m] = side


#: most learner blocks per trial; the block count depends on n and d only, never on the thread count
MAX_BLOCKS = 16
#: elements (learners x coordinates) per block below which a trial is not split further
MIN_BLOCK_ELEMENTS = 4096


def n_blocks(n: int, d: int) -> int:
    """Learner blocks per trial (each with its own noise stream) for ``n`` learners in R^d."""
    return int(max(1, min(MAX_BLOCKS, n, (n * d) // MIN_BLOCK_ELEMENTS)))


def n_streams(trials: int, n: int, d: int) -> int:
    """Noise streams a kernel needs: one per (trial, block), then one per trial for the common noise."""
    return trials * n_blocks(n, d) + trials


@njit(cache=True, inline="always")
def _block_rows(b, nblk, n):
    return b * n // nblk, (b + 1) * n // nblk


@njit(cache=True)
def _block_mean(part, xbar, nblk, n):
    """Per-trial means from per-block sums, added in block order (deterministic for any thread count)."""
    trials, d = xbar.shape
    for t in range(trials):
        for m in range(d):
            a = 0.0
            for b in range(nblk):
                a += part[t * nblk + b, m]
            xbar[t, m] = a / n


# One definition per kernel, compiled with parallel=True: a small system runs it on one thread
# (stepping.kernel_threads(1), see engine.PARALLEL_MIN_ELEMENTS) instead of through a serial twin. Twins
# generated by a factory, njit(cache=True, parallel=flag)(body), would share one on-disk cache entry: Numba
# keys it by the function's qualified name, source line and argument types, not by the parallel flag, so
# whichever twin compiled first is loaded for the other (checked with Numba 0.68 and a fresh
# NUMBA_CACHE_DIR: the "serial" twin then ran on two threads, and loading the entry into the parallel twin
# crashed).
@njit(cache=True, parallel=True)
def em_chunk(x, xn, streams, nblk, start, nsteps, em, loss, coupling, measure, schedule, rec, wells):
    """Advance ``x`` (trials, n, d) by ``nsteps`` Euler-Maruyama steps; see the module docstring.

    The learners of each trial are split into ``nblk`` contiguous blocks (:func:`n_blocks`); block ``b``
    of trial ``t`` draws its noise from stream ``t * nblk + b`` of ``streams`` (:class:`~.rng.Streams`)
    and the common noise of trial ``t`` (if ``em.rho`` > 0) comes from stream ``trials * nblk + t``. The
    (trial, block) jobs of a step run in parallel (``prange``); each writes only its own rows and its own
    partial sums, which are reduced in a fixed order, so the result is bitwise the same for any number of
    threads. ``coupling.complete_weight`` > 0 selects the mean-field coupling of a complete graph with that
    edge weight; otherwise the CSR adjacency with its degrees is used. ``xn`` is a scratch buffer of the
    same shape. The statistics (``measure``, :class:`Measure`) go into ``rec`` (:class:`Recording`) on the
    steps of ``schedule`` (:class:`Schedule`). For the double well (``measure.err_well`` = w > 0),
    ``wells`` (:class:`Wells`) remembers the last minimum +-w each coordinate reached and counts, from
    ``schedule.stat_start`` on, arrivals at the other minimum (learners, centroid). Returns
    :attr:`~neurodyn.stepping.Status.OK`, or ``NAN`` if the state became non-finite.
    """
    dt = em.dt
    k = em.k
    rho = em.rho
    complete_w = coupling.complete_weight
    indptr = coupling.indptr
    indices = coupling.indices
    weights = coupling.weights
    deg = coupling.degree
    err_well = measure.err_well
    # the loss's fields taken out once, outside the step loop (see _grad)
    kind = loss.kind
    hess = loss.hess
    hess_diagonal = loss.hess_diagonal
    center = loss.center
    lp = loss.lp
    lz = loss.z
    ly = loss.y
    trials, n, d = x.shape
    jobs = trials * nblk
    g = np.empty((jobs, d))
    rows_max = (n + nblk - 1) // nblk
    nz = np.empty((jobs, rows_max * d))  # a block's noise for one step, drawn in one call
    bits = np.empty((jobs + trials, BATCH), dtype=np.uint64)
    part = np.zeros((jobs, d))  # per-block sums of the new state (complete graph: next step's mean)
    xbar = np.zeros((trials, d))
    eta = np.zeros((trials, d))
    tmp = np.empty(N_COLS)
    sq = em.sigma * math.sqrt(dt)
    a_ind = sq * math.sqrt(1.0 - rho)
    a_com = sq * math.sqrt(rho)
    complete = complete_w > 0.0
    kc = k * complete_w * n
    if complete:
        # the same block-ordered sum as after each step, so results do not depend on the chunking
        for job in range(jobs):
            i0, i1 = _block_rows(job % nblk, nblk, n)
            for i in range(i0, i1):
                for m in range(d):
                    part[job, m] += x[job // nblk, i, m]
        _block_mean(part, xbar, nblk, n)
    src = x
    dst = xn
    swaps = 0
    for step in range(start, start + nsteps):
        if rho > 0.0:
            for t in range(trials):
                take_normals(streams, jobs + t, eta[t], 0, d, bits[jobs + t])
                for m in range(d):
                    eta[t, m] *= a_com
        for job in prange(jobs):
            t = job // nblk
            i0, i1 = _block_rows(job % nblk, nblk, n)
            xs = src[t]
            xd = dst[t]
            gj = g[job]
            pj = part[job]
            et = eta[t]
            xb = xbar[t]
            for m in range(d):
                pj[m] = 0.0
            nj = nz[job]
            take_normals(streams, job, nj, 0, (i1 - i0) * d, bits[job])
            for i in range(i0, i1):
                _grad(kind, xs[i], gj, hess, hess_diagonal, center, lp, lz, ly)
                off = (i - i0) * d
                xi = xs[i]
                yi = xd[i]
                if complete:
                    # sum_j w (x_j - x_i) = w n (xbar - x_i): O(n d), never the dense Laplacian
                    for m in range(d):
                        v = xi[m]
                        u = v + dt * (kc * (xb[m] - v) - gj[m]) + a_ind * nj[off + m] + et[m]
                        yi[m] = u
                        pj[m] += u
                else:
                    kd = k * deg[i]
                    for m in range(d):
                        v = xi[m]
                        yi[m] = v + dt * (-gj[m] - kd * v) + a_ind * nj[off + m] + et[m]
                    if k != 0.0:
                        for p in range(indptr[i], indptr[i + 1]):
                            xj = xs[indices[p]]
                            kw = dt * k * weights[p]
                            for m in range(d):
                                yi[m] += kw * xj[m]
        if complete:
            _block_mean(part, xbar, nblk, n)
        src, dst = dst, src
        swaps += 1
        _record(src, step, schedule, rec, measure, tmp)
        if err_well > 0.0:
            _count_switches(src, err_well, wells, step + 1 >= schedule.stat_start)
        if not np.isfinite(src[0, 0, 0]):
            break
    if swaps % 2 == 1:
        x[:] = xn
    for t in range(trials):
        for i in range(n):
            for m in range(d):
                if not np.isfinite(x[t, i, m]):
                    return Status.NAN
    return Status.OK


@njit(cache=True, parallel=True)
def ou_chunk(yy, streams, nblk, start, nsteps, modes, schedule, rec):
    """Advance the mode coordinates ``yy`` (trials, n, d) by ``nsteps`` exact OU steps.

    ``modes`` (:class:`Modes`) holds ``decay[j, m] = exp(-r_jm dt)`` and the exact step's noise standard
    deviation ``noise[j, m]``. Modes are split into ``nblk`` blocks per trial with their own noise streams
    and run in parallel, as in :func:`em_chunk` (bitwise independent of the thread count). ``modes.u_rows``
    holds the rows of ``U`` of the learners whose trajectories are recorded and ``modes.v_rows`` the rows of
    the Hessian eigenvectors, so ``x_a = c + V^T``-rotated ``sum_j U[a, j] y_j``. Statistics go into ``rec``
    on the steps of ``schedule``. Returns :attr:`~neurodyn.stepping.Status.OK`.
    """
    decay = modes.decay
    noise = modes.noise
    u_rows = modes.u_rows
    v = modes.v_rows
    center = modes.center
    stat_start = schedule.stat_start
    stat_every = schedule.stat_every
    rec_every = schedule.rec_every
    acc = rec.acc
    nacc = rec.nacc
    trace = rec.trace
    traj = rec.traj
    trials, n, d = yy.shape
    jobs = trials * nblk
    ntraj = traj.shape[1]
    ndim = traj.shape[2]
    rows_max = (n + nblk - 1) // nblk
    nz = np.empty((jobs, rows_max * d))  # a block's noise for one step, drawn in one call
    bits = np.empty((jobs, BATCH), dtype=np.uint64)
    part = np.zeros((jobs, 2))  # per block: sum of y^2 over modes j >= 1, and over mode 0
    for step in range(start, start + nsteps):
        for job in prange(jobs):
            t = job // nblk
            j0, j1 = _block_rows(job % nblk, nblk, n)
            yt = yy[t]
            s_rest = 0.0
            s_zero = 0.0
            nj = nz[job]
            take_normals(streams, job, nj, 0, (j1 - j0) * d, bits[job])
            for j in range(j0, j1):
                off = (j - j0) * d
                sq = 0.0
                # plain 2-D indexing: row views would cost a reference count each, per mode and step
                for m in range(d):
                    u = decay[j, m] * yt[j, m] + noise[j, m] * nj[off + m]
                    yt[j, m] = u
                    sq += u * u
                if j == 0:
                    s_zero += sq
                else:
                    s_rest += sq
            part[job, 0] = s_rest
            part[job, 1] = s_zero
        s1 = step + 1
        do_stat = s1 >= stat_start and (s1 - stat_start) % stat_every == 0
        r = s1 // rec_every
        do_rec = s1 % rec_every == 0 and r < trace.shape[1]
        if do_stat or do_rec:
            for t in range(trials):
                spread = 0.0
                cerr = 0.0
                for b in range(nblk):
                    spread += part[t * nblk + b, 0]
                    cerr += part[t * nblk + b, 1]
                cerr /= n
                lerr = spread / n + cerr
                if do_stat:
                    acc[t, 0] += spread
                    acc[t, 1] += cerr
                    acc[t, 2] += lerr
                if do_rec:
                    trace[t, r, 0] = spread
                    trace[t, r, 1] = cerr
                    trace[t, r, 2] = lerr
            if do_stat:
                nacc[0] += 1
            if do_rec:
                y0 = yy[0]
                for a in range(ntraj):
                    for q in range(ndim):
                        val = center[q]
                        for m in range(d):
                            w = 0.0
                            for j in range(n):
                                w += u_rows[a, j] * y0[j, m]
                            val += v[q, m] * w
                        traj[r, a, q] = val
    return Status.OK
