"""The ``curl_descent`` experiments, dispatched on ``params.experiment`` through :data:`EXPERIMENTS`.

``stability``
    At a teacher-initialised (zero-loss) point, for every swept flip fraction: the finite-difference
    Jacobian of the kernel's flow field, the flow from a small kick (RK4) with its loss and invariants,
    and the finite-size critical flip fraction of large networks.
``chain``
    The 1-1-1 chain with a flipped input weight: flows from several radii, the Jacobian at the origin.
``chaos``
    The flow from a kicked teacher point with a Benettin shadow trajectory: largest Lyapunov exponent
    and the authors' q order parameter.
``saddle_escape``
    Mini-batch training (the authors' update) with and without flipped readout units: epochs to learn.

What the experiments need is drawn once in :mod:`.build`; the kernels are in :mod:`.kernels`, the
stored result is assembled in :mod:`.dataset`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from neurodyn.families.curl_descent import kernels as K
from neurodyn.families.curl_descent.build import ACTIVATIONS, CurlBuilt, epochs, flips, k_matrix, teacher
from neurodyn.families.curl_descent.dataset import chain_dataset, chaos_dataset, saddle_dataset, stability_dataset
from neurodyn.stepping import Status, run_chunked, steps

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.progress import Progress

#: losses below this are at the roundoff floor of a kicked teacher point (|delta v| ~ 1e-13) and not fitted
FIT_FLOOR = 1e-26


def simulate(built: CurlBuilt, progress: Progress) -> xr.Dataset:
    """Run the scenario's experiment on what :func:`~.build.build` made.

    The dense linear algebra here is small (at most a few hundred rows): BLAS threads cost more than they
    gain, and on a shared machine they multiply the wall time, so it runs on one thread.
    """
    with threadpool_limits(1):
        return EXPERIMENTS[built.params.experiment](built, progress)


# --------------------------------------------------------------------------- the flow


def signs(layer: str, alpha: float, inputs: int, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """``(d1, d2)`` with a fraction ``alpha`` of the ``layer``'s neurons rule-flipped (``both``: of each layer's)."""
    if layer == "hidden":
        return flips(inputs, alpha), np.ones(hidden)
    if layer == "both":
        return flips(inputs, alpha), flips(hidden, alpha)
    return np.ones(inputs), flips(hidden, alpha)


def flow_consts(built: CurlBuilt, d1: np.ndarray, d2: np.ndarray, vstar: np.ndarray) -> K.FlowConsts:
    """The flow's constants for rule signs ``d1, d2`` and target ``v*``."""
    p = built.params
    f = p.flow
    return K.FlowConsts(d1, d2, vstar, p.input_variance, p.eta, f.dt, f.projection, f.blowup_norm)


def new_state(W1: np.ndarray, w2: np.ndarray) -> K.FlowState:
    """A flow state starting at copies of ``W1, w2``."""
    W1 = np.ascontiguousarray(W1, dtype=float).copy()
    w2 = np.ascontiguousarray(w2, dtype=float).copy()
    return K.FlowState(W1, w2, np.array([np.linalg.norm(W1), np.linalg.norm(w2)]), np.array([-1], dtype=np.int64))


def new_work(N: int, M: int) -> K.FlowWork:
    """Scratch arrays of an RK4 step."""
    return K.FlowWork(np.zeros((4, N, M)), np.zeros((4, N)), np.zeros((N, M)), np.zeros(N), np.zeros(M))


def new_rec(st: K.FlowState, c: K.FlowConsts, every: int, n_samples: int) -> K.FlowRec:
    """Recording arrays (NaN where a diverged run wrote nothing)."""
    N, M = st.W1.shape
    M0 = st.W1 @ (c.d1[:, None] * st.W1.T) - np.outer(st.w2, st.w2)
    nan = np.full(n_samples, np.nan)
    return K.FlowRec(every, nan.copy(), nan.copy(), nan.copy(), np.full((n_samples, N * M + N), np.nan), M0)


def run_flow(built: CurlBuilt, st: K.FlowState, c: K.FlowConsts, progress: Progress, desc: str) -> K.FlowRec:
    """Integrate the flow from ``st`` over the scenario's grid; the recording."""
    grid = built.grid
    assert grid is not None
    N, M = st.W1.shape
    wk = new_work(N, M)
    rec = new_rec(st, c, grid.every, grid.n_samples)

    def advance(start: int, n: int) -> tuple[Status, str]:
        K.flow_run(st, c, wk, rec, start, n)
        return Status.OK, ""

    run_chunked(grid.n_steps, advance, progress, desc=desc)
    return rec


def jacobian(W1: np.ndarray, w2: np.ndarray, c: K.FlowConsts, h: float) -> np.ndarray:
    """Central finite-difference Jacobian of the kernel's flow field at ``(W1, w2)`` (flattened W1, then w2)."""
    N, M = W1.shape
    x0 = np.concatenate([W1.ravel(), w2])
    wk = new_work(N, M)

    def field(x: np.ndarray) -> np.ndarray:
        K.flow_field(x[: N * M].reshape(N, M).copy(), x[N * M :].copy(), c, wk.e, wk.W1s, wk.w2s)
        return np.concatenate([wk.W1s.ravel(), wk.w2s])

    J = np.empty((x0.size, x0.size))
    for i in range(x0.size):
        dx = np.zeros_like(x0)
        dx[i] = h
        J[:, i] = (field(x0 + dx) - field(x0 - dx)) / (2 * h)
    return J


def growth_fit(t: np.ndarray, loss: np.ndarray, start: float, below: float) -> tuple[float, float]:
    """Slope of ``log L`` against ``t`` (least squares) over ``t >= start``, ``L > FIT_FLOOR``, before ``L``
    first reaches ``below``; returns (slope, 95% half-width of its standard error), NaN with under 3 points."""
    # only the linear regime: before the loss first reaches ``below`` (a readout-unstable run re-converges
    # to another zero-loss point afterwards, and its decay must not enter the fit)
    above = np.flatnonzero(~(loss < below))
    end = above[0] if above.size else loss.size
    ok = (t >= start) & (loss > FIT_FLOOR) & (np.arange(loss.size) < end)
    if ok.sum() < 3:
        return np.nan, np.nan
    x, y = t[ok], np.log(loss[ok])
    A = np.vstack([x, np.ones_like(x)]).T
    coef, res, *_ = np.linalg.lstsq(A, y, rcond=None)
    n = x.size
    resid = y - A @ coef
    se = np.sqrt(resid @ resid / max(n - 2, 1) / ((x - x.mean()) @ (x - x.mean())))
    return float(coef[0]), float(1.959963984540054 * se)


def critical_fraction(layer: str, W1: np.ndarray, w2: np.ndarray) -> float:
    """Smallest flipped fraction of ``layer`` whose K has a negative eigenvalue (1 if none).

    Flipping one more neuron lowers K in the Loewner order, so ``lambda_min`` falls with the count and a
    bisection over the count is exact.
    """
    N, M = W1.shape
    size = M if layer == "hidden" else N
    # K = rho D1 + W1^T D2 W1 from one Gram matrix: flipping the first k hidden neurons subtracts
    # 2 W1[:k]^T W1[:k]; flipping inputs changes only the diagonal
    gram = W1.T @ W1
    rho = float(w2 @ w2)

    def lam(k: int) -> float:
        if layer == "hidden":
            K = gram + rho * np.diag(flips(M, k / size))
        else:
            K = gram + rho * np.eye(M) - 2.0 * W1[:k].T @ W1[:k]
        return float(np.linalg.eigvalsh(K)[0])

    if lam(size) >= 0:
        return 1.0
    lo, hi = 0, size  # lam(lo) >= 0 (or lo = 0), lam(hi) < 0
    if lam(0) < 0:
        return 0.0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if lam(mid) < 0:
            hi = mid
        else:
            lo = mid
    return hi / size


def stability(built: CurlBuilt, progress: Progress) -> xr.Dataset:
    """Jacobian eigenvalues, kick growth and invariants per (layer, alpha, seed); the phase boundary."""
    p = built.params
    st_p = p.stability
    M, N = p.inputs, p.hidden
    grid = built.grid
    assert grid is not None
    nL, nA, nS = len(st_p.layers), len(st_p.alpha), p.seeds
    shape = (nL, nA, nS)
    out = {
        k: np.full(shape, np.nan)
        for k in ("lambda_min", "growth_rate", "growth_rate_ci", "signed_norm_drift", "matrix_drift", "final_loss")
    }
    out["k_eig"] = np.full(shape + (M,), np.nan)
    out["jacobian_eig"] = np.full(shape + (M,), np.nan)
    out["jacobian_zero_max"] = np.full(shape, np.nan)
    out["diverged_at"] = np.full(shape, np.nan)
    out["growth_rate_other"] = np.full(shape, np.nan)
    out["loss"] = np.full(shape + (grid.n_samples,), np.nan)
    for li, layer in enumerate(st_p.layers):
        for ai, alpha in enumerate(st_p.alpha):
            d1, d2 = signs(layer, alpha, M, N)
            for si, (W1t, w2t) in enumerate(built.teachers):
                ix = (li, ai, si)
                c = flow_consts(built, d1, d2, W1t.T @ w2t)
                ek = np.linalg.eigvalsh(k_matrix(W1t, w2t, d1, d2))
                out["k_eig"][ix] = ek
                out["lambda_min"][ix] = ek[0]
                ej = np.linalg.eigvals(jacobian(W1t, w2t, c, st_p.jacobian_step))
                order = np.argsort(-np.abs(ej))
                out["jacobian_eig"][ix] = np.sort(ej[order[:M]].real)
                out["jacobian_zero_max"][ix] = np.abs(ej[order[M:]]).max() if order.size > M else 0.0
                kick = built.kicks[si]
                state = new_state(W1t + kick[: N * M].reshape(N, M), w2t + kick[N * M :])
                rec = run_flow(built, state, c, progress, f"{layer} alpha={alpha} seed {si}")
                t = np.arange(grid.n_samples) * grid.every * p.flow.dt
                out["loss"][ix] = rec.loss
                out["growth_rate"][ix], out["growth_rate_ci"][ix] = growth_fit(
                    t, rec.loss, st_p.fit_start, st_p.fit_below
                )
                ok = np.isfinite(rec.signed_norm)
                out["signed_norm_drift"][ix] = np.abs(rec.signed_norm[ok] - rec.signed_norm[0]).max()
                out["matrix_drift"][ix] = np.nanmax(rec.matrix_drift) if np.all(d2 > 0) else np.nan
                out["final_loss"][ix] = rec.loss[ok][-1]
                if state.diverged[0] >= 0:
                    out["diverged_at"][ix] = state.diverged[0] * p.flow.dt
                if st_p.compare_projection:
                    other = new_state(W1t + kick[: N * M].reshape(N, M), w2t + kick[N * M :])
                    rec = run_flow(built, other, c._replace(projection=not c.projection), progress, "other projection")
                    out["growth_rate_other"][ix] = growth_fit(t, rec.loss, st_p.fit_start, st_p.fit_below)[0]
    bound = _boundary(built)
    return stability_dataset(built, out, bound)


def _boundary(built: CurlBuilt) -> np.ndarray:
    """Finite-size critical fractions, shape (layer, c, boundary seed), at M = ``boundary_inputs``."""
    p = built.params
    st_p = p.stability
    assert built.boundary_seed is not None
    Mb = st_p.boundary_inputs
    out = np.full((len(st_p.layers), len(st_p.boundary_c), st_p.boundary_seeds), np.nan)
    for ci, (c, sc) in enumerate(zip(st_p.boundary_c, built.boundary_seed.spawn(len(st_p.boundary_c)))):
        Nb = max(1, int(round(Mb / c)))
        for si, ss in enumerate(sc.spawn(st_p.boundary_seeds)):
            W1, w2 = teacher(np.random.default_rng(ss), Mb, Nb, p.teacher_init)
            for li, layer in enumerate(st_p.layers):
                if layer != "both":  # the large-N boundary covers flips in one layer
                    out[li, ci, si] = critical_fraction(layer, W1, w2)
    return out


# --------------------------------------------------------------------------- the 1-1-1 chain


def chain(built: CurlBuilt, progress: Progress) -> xr.Dataset:
    """Flows of the 1-1-1 chain (d1 = -1, d2 = +1) from each radius; the Jacobian at the origin."""
    p = built.params
    ch = p.chain
    grid = built.grid
    assert grid is not None
    d1, d2, vstar = np.array([-1.0]), np.array([1.0]), np.array([ch.v_star])
    c = flow_consts(built, d1, d2, vstar)
    weights = np.full((len(ch.r2), grid.n_samples, 2), np.nan)
    loss = np.full((len(ch.r2), grid.n_samples), np.nan)
    for ri, r2 in enumerate(ch.r2):
        r = np.sqrt(r2)
        st = new_state(np.array([[r * np.cos(ch.angle)]]), np.array([r * np.sin(ch.angle)]))
        rec = run_flow(built, st, c, progress, f"r^2={r2}")
        weights[ri] = rec.weights
        loss[ri] = rec.loss
    zero = (np.zeros((1, 1)), np.zeros(1))
    eig_curl = np.linalg.eigvals(jacobian(*zero, c, 1e-6))
    c_gd = flow_consts(built, np.ones(1), np.ones(1), vstar)
    eig_gd = np.linalg.eigvals(jacobian(*zero, c_gd, 1e-6))
    return chain_dataset(built, weights, loss, eig_curl, eig_gd)


# --------------------------------------------------------------------------- chaos


def chaos(built: CurlBuilt, progress: Progress) -> xr.Dataset:
    """Benettin's largest Lyapunov exponent and the q order parameter per (layer, alpha, seed)."""
    p = built.params
    ch = p.chaos
    M, N = p.inputs, p.hidden
    grid = built.grid
    assert grid is not None
    renorm = steps(ch.renorm_every, p.flow.dt, at_least=1)
    n_logs = grid.n_steps // renorm
    shape = (len(ch.layers), len(ch.alpha), p.seeds)
    out = {k: np.full(shape, np.nan) for k in ("lyapunov", "q", "lambda_min", "final_loss", "diverged_at")}
    out["loss"] = np.full(shape + (grid.n_samples,), np.nan)
    for li, layer in enumerate(ch.layers):
        for ai, alpha in enumerate(ch.alpha):
            d1, d2 = signs(layer, alpha, M, N)
            for si, (W1t, w2t) in enumerate(built.teachers):
                ix = (li, ai, si)
                c = flow_consts(built, d1, d2, W1t.T @ w2t)
                out["lambda_min"][ix] = np.linalg.eigvalsh(k_matrix(W1t, w2t, d1, d2))[0]
                kick = built.kicks[si]
                a = new_state(W1t + kick[: N * M].reshape(N, M), w2t + kick[N * M :])
                sh = ch.separation * built.shadows[si]
                b = new_state(a.W1 + sh[: N * M].reshape(N, M), a.w2 + sh[N * M :])
                b.norm0[:] = a.norm0  # both trajectories live on the same spheres
                wk = new_work(N, M)
                rec = new_rec(a, c, grid.every, grid.n_samples)
                logs = np.full(n_logs, np.nan)

                def advance(start: int, n: int) -> tuple[Status, str]:
                    K.benettin_run(a, b, c, wk, rec, logs, renorm, ch.separation, start, n)  # noqa: B023
                    return Status.OK, ""

                run_chunked(grid.n_steps, advance, progress, desc=f"{layer} alpha={alpha} seed {si}")
                first = int(n_logs * (1.0 - ch.window))
                out["lyapunov"][ix] = np.mean(logs[first:]) / (renorm * p.flow.dt)
                s0 = int(grid.n_samples * (1.0 - ch.window))
                out["q"][ix] = q_order(rec.weights[s0:])
                out["loss"][ix] = rec.loss
                ok = np.isfinite(rec.loss)
                out["final_loss"][ix] = rec.loss[ok][-1]
                if a.diverged[0] >= 0 or b.diverged[0] >= 0:
                    out["diverged_at"][ix] = max(a.diverged[0], b.diverged[0]) * p.flow.dt
    return chaos_dataset(built, out)


def q_order(w: np.ndarray) -> float:
    """The authors' chaos indicator ``q = mean_i Var_t[w_i] / Var_i[mean_t w_i]`` over rows of ``w`` (time)."""
    w = w[np.all(np.isfinite(w), axis=1)]
    if len(w) < 2:
        return np.nan
    return float(np.mean(np.var(w, axis=0)) / np.var(np.mean(w, axis=0)))


# --------------------------------------------------------------------------- mini-batch training


def train_run(
    built: CurlBuilt, key: tuple[int, int], flipped: int, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Train the student of training set ``key`` = (P, seed) with ``flipped`` rule-flipped readout units.

    Returns the per-epoch training and test errors (index 0: before training).
    """
    p = built.params
    t = p.training
    ts = built.train_sets[key]
    P, M = ts.X.shape
    N = p.hidden
    n_e = epochs(built.scenario)
    W1, w2 = ts.W1.copy(), ts.w2.copy()
    net = K.Net(W1, w2, np.ones(M), flips(N, flipped / N), np.array([np.linalg.norm(W1), np.linalg.norm(w2)]))
    data = K.Data(ts.X, ts.y, ts.Xt, ts.yt)
    act = ACTIVATIONS[p.activation]
    c = K.TrainConsts(act, t.lr * t.batch / P, t.batch, t.projection)
    rec = K.TrainRec(np.full(n_e + 1, np.nan), np.full(n_e + 1, np.nan))
    rec.train_error[0] = K.half_mse(W1, w2, ts.X, ts.y, act)
    rec.test_error[0] = K.half_mse(W1, w2, ts.Xt, ts.yt, act)
    rng = np.random.default_rng(ts.order_seed)  # a fresh stream per rule: GD and curl see the same order

    def advance(first: int, n: int) -> tuple[Status, str]:
        order = np.stack([rng.permutation(P) for _ in range(n)]).astype(np.int64)
        if not K.train_epochs(net, data, c, order, rec, first):
            return Status.NAN, f"a weight became non-finite in epochs {first}..{first + n}"
        return Status.OK, ""

    run_chunked(n_e, advance, progress, desc=f"P={key[0]} seed {key[1]} flipped {flipped}", unit="epoch")
    return rec.train_error, rec.test_error


def saddle_escape(built: CurlBuilt, progress: Progress) -> xr.Dataset:
    """Training curves and epochs to learn per (P, flipped, seed)."""
    p = built.params
    t = p.training
    n_e = epochs(built.scenario)
    shape = (len(t.samples), len(t.flipped_readout), p.seeds, n_e + 1)
    train = np.full(shape, np.nan)
    test = np.full(shape, np.nan)
    for pi, P in enumerate(t.samples):
        for ki, k in enumerate(t.flipped_readout):
            for s in range(p.seeds):
                train[pi, ki, s], test[pi, ki, s] = train_run(built, (P, s), k, progress)
    return saddle_dataset(built, train, test)


EXPERIMENTS: dict[str, Callable[[CurlBuilt, Progress], xr.Dataset]] = {
    "stability": stability,
    "chain": chain,
    "chaos": chaos,
    "saddle_escape": saddle_escape,
}
