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

Both kernels accumulate the time averages (spread ``V = sum_i ||x_i - xbar||^2``, centroid error, mean
learner error) from ``stat_start`` every ``stat_every`` steps, and record traces every ``rec_every`` steps.
Randomness comes from the ``np.random.Generator`` passed in, so a seed gives bitwise-identical results
whatever the chunking. The status is 0 (ok) or 1 (a non-finite state).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# trace / accumulator columns
SPREAD, CENTROID_ERR, LEARNER_ERR, AGREEMENT, TEST_ERR_LEARNER, TEST_ERR_CENTROID = 0, 1, 2, 3, 4, 5
N_COLS = 6


@njit(cache=True, inline="always")
def _grad(loss_id, xi, g, hess, hess_diag, center, lp, z, y):
    """Gradient of the loss at one learner's state ``xi`` into ``g``."""
    d = xi.shape[0]
    if loss_id == 0:  # quadratic
        if hess_diag:
            for m in range(d):
                g[m] = hess[m, m] * (xi[m] - center[m])
        else:
            for m in range(d):
                acc = 0.0
                for q in range(d):
                    acc += hess[m, q] * (xi[q] - center[q])
                g[m] = acc
    elif loss_id == 1:  # log-cosh plus quadratic
        s = lp[0]
        mu = lp[1]
        for m in range(d):
            u = xi[m] - center[m]
            g[m] = s * math.tanh(u / s) + mu * u
    elif loss_id == 2:  # double well
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
def state_stats(x, out, err_well, xref, with_agreement, zt, yt):
    """Statistics of one trial's state ``x`` (n, d) into ``out`` (length :data:`N_COLS`).

    Columns: spread, centroid error, mean learner error, agreement (fraction of coordinates on the
    centroid's side of 0; double well), mean learner and centroid test error (logistic; else NaN).
    """
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
    if zt.shape[0] > 0:
        te = 0.0
        for i in range(n):
            te += _misclassified(x[i], zt, yt)
        out[4] = te / n
        out[5] = _misclassified(xbar, zt, yt)
    else:
        out[4] = np.nan
        out[5] = np.nan


@njit(cache=True)
def _record(x, step, stat_start, stat_every, rec_every, acc, nacc, trace, traj, err_well, xref,
            with_agreement, zt, yt, tmp):
    """Accumulate time averages and record traces after ``step`` (state at time (step + 1) dt)."""
    s1 = step + 1
    do_stat = s1 >= stat_start and (s1 - stat_start) % stat_every == 0
    r = s1 // rec_every
    do_rec = s1 % rec_every == 0 and r < trace.shape[1]
    if not (do_stat or do_rec):
        return
    trials = x.shape[0]
    empty = zt[:0]
    for t in range(trials):
        # test errors are costly (test set x learners): only at trace times
        if do_rec:
            state_stats(x[t], tmp, err_well, xref, with_agreement, zt, yt)
        else:
            state_stats(x[t], tmp, err_well, xref, with_agreement, empty, yt[:0])
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
def _count_switches(x, w, wells, switches, counting):
    """Well-to-well transitions: a coordinate switches when it reaches the minimum opposite its last one."""
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
                if side != 0 and side != wells[t, i, m]:
                    if counting and wells[t, i, m] != 0:
                        switches[t, 0 if i < n else 1] += 1.0
                    wells[t, i, m] = side


@njit(cache=True)
def em_chunk(x, xn, rng, start, nsteps, dt, k, sigma, rho,
             loss_id, hess, hess_diag, center, lp, z, y,
             complete_w, indptr, indices, weights, deg,
             err_well, xref, with_agreement, zt, yt,
             stat_start, stat_every, rec_every, acc, nacc, trace, traj, wells, switches):
    """Advance ``x`` (trials, n, d) by ``nsteps`` Euler-Maruyama steps; see the module docstring.

    ``complete_w`` > 0 selects the mean-field coupling of a complete graph with edge weight
    ``complete_w``; otherwise the CSR adjacency ``(indptr, indices, weights)`` with degrees ``deg`` is
    used. ``xn`` is a scratch buffer of the same shape. For the double well (``err_well`` = w > 0),
    ``wells`` (trials, n + 1, d; row n: the centroid) remembers the last minimum +-w each coordinate
    reached, and ``switches`` (trials, 2) counts, from ``stat_start`` on, arrivals at the other minimum
    (learners, centroid). Returns 0, or 1 if the state became non-finite.
    """
    trials, n, d = x.shape
    g = np.empty(d)
    xbar = np.empty(d)
    eta = np.zeros(d)
    nz = np.empty(d)
    tmp = np.empty(6)
    sq = sigma * math.sqrt(dt)
    a_ind = sq * math.sqrt(1.0 - rho)
    a_com = sq * math.sqrt(rho)
    src = x
    dst = xn
    swaps = 0
    for step in range(start, start + nsteps):
        for t in range(trials):
            xs = src[t]
            xd = dst[t]
            if rho > 0.0:
                for m in range(d):
                    eta[m] = a_com * rng.standard_normal()
            if complete_w > 0.0:
                for m in range(d):
                    xbar[m] = 0.0
                for i in range(n):
                    for m in range(d):
                        xbar[m] += xs[i, m]
                for m in range(d):
                    xbar[m] /= n
                kc = k * complete_w * n
                for i in range(n):
                    _grad(loss_id, xs[i], g, hess, hess_diag, center, lp, z, y)
                    # draw the row's noise first: the update loop below then has no calls and vectorises
                    for m in range(d):
                        nz[m] = rng.standard_normal()
                    xi = xs[i]
                    yi = xd[i]
                    for m in range(d):
                        v = xi[m]
                        yi[m] = v + dt * (kc * (xbar[m] - v) - g[m]) + a_ind * nz[m] + eta[m]
            else:
                for i in range(n):
                    _grad(loss_id, xs[i], g, hess, hess_diag, center, lp, z, y)
                    for m in range(d):
                        nz[m] = rng.standard_normal()
                    kd = k * deg[i]
                    xi = xs[i]
                    yi = xd[i]
                    for m in range(d):
                        v = xi[m]
                        yi[m] = v + dt * (-g[m] - kd * v) + a_ind * nz[m] + eta[m]
                    if k != 0.0:
                        for p in range(indptr[i], indptr[i + 1]):
                            xj = xs[indices[p]]
                            kw = dt * k * weights[p]
                            for m in range(d):
                                yi[m] += kw * xj[m]
        src, dst = dst, src
        swaps += 1
        _record(src, step, stat_start, stat_every, rec_every, acc, nacc, trace, traj, err_well, xref,
                with_agreement, zt, yt, tmp)
        if err_well > 0.0:
            _count_switches(src, err_well, wells, switches, step + 1 >= stat_start)
        if not np.isfinite(src[0, 0, 0]):
            break
    if swaps % 2 == 1:
        x[:] = xn
    for t in range(trials):
        for i in range(n):
            for m in range(d):
                if not np.isfinite(x[t, i, m]):
                    return 1
    return 0


@njit(cache=True)
def ou_chunk(yy, rng, start, nsteps, decay, noise, u_rows, v, center,
             stat_start, stat_every, rec_every, acc, nacc, trace, traj):
    """Advance the mode coordinates ``yy`` (trials, n, d) by ``nsteps`` exact OU steps.

    ``decay[j, m] = exp(-r_jm dt)`` and ``noise[j, m]`` the exact step's noise standard deviation.
    ``u_rows`` holds the rows of ``U`` of the learners whose trajectories are recorded and ``v`` the
    Hessian eigenvectors, so ``x_a = c + V^T``-rotated ``sum_j U[a, j] y_j``. Returns 0.
    """
    trials, n, d = yy.shape
    ntraj = traj.shape[1]
    ndim = traj.shape[2]
    for step in range(start, start + nsteps):
        for t in range(trials):
            yt = yy[t]
            for j in range(n):
                for m in range(d):
                    yt[j, m] = decay[j, m] * yt[j, m] + noise[j, m] * rng.standard_normal()
        s1 = step + 1
        do_stat = s1 >= stat_start and (s1 - stat_start) % stat_every == 0
        r = s1 // rec_every
        do_rec = s1 % rec_every == 0 and r < trace.shape[1]
        if do_stat or do_rec:
            for t in range(trials):
                yt = yy[t]
                spread = 0.0
                for j in range(1, n):
                    for m in range(d):
                        spread += yt[j, m] * yt[j, m]
                cerr = 0.0
                for m in range(d):
                    cerr += yt[0, m] * yt[0, m]
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
    return 0
