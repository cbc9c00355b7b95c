"""The ``eqprop`` experiments, dispatched on ``params.experiment`` through :data:`EXPERIMENTS`.

``train``
    EP (each estimator) and the backprop baseline on the digits, for every seed; the epochs run through
    :func:`neurodyn.stepping.run_chunked`, one epoch per chunk.
``gradient_theorem``
    The EP gradient (one-sided and symmetric) against central finite differences of ``J = C(s0)``.
``bptt_match``
    Discrete-time EP updates against truncated BPTT, step by step.

Everything these need is built once in :mod:`.build`; the kernels are in :mod:`.kernels` and the stored
result is assembled in :mod:`.dataset`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from neurodyn.errors import SimulationError
from neurodyn.families.eqprop import kernels as K
from neurodyn.families.eqprop.build import EqPropBuilt, GradientProblem, SeedStart, gradient_experiment
from neurodyn.families.eqprop.dataset import CURVES, bptt_dataset, theorem_dataset, training_dataset
from neurodyn.stepping import Status, run_chunked

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.progress import Progress

#: test examples relaxed together in one call of :func:`kernels.predict_ep`
EVAL_CHUNK = 512


def simulate(built: EqPropBuilt, progress: Progress) -> xr.Dataset:
    """Run the scenario's experiment on what :func:`~.build.build` made."""
    return EXPERIMENTS[built.params.experiment](built, progress)


# --------------------------------------------------------------------------- training


def train(built: EqPropBuilt, progress: Progress) -> xr.Dataset:
    """Train EP (each estimator) and backprop for every seed; per-epoch curves and the trained weights.

    Every rule starts from its seed's Glorot-uniform weights; each has its own stream for the example
    order (and the beta signs), spawned from the seed (see :class:`~.build.SeedStart`).
    """
    setup = built.training
    assert setup is not None
    p = built.params
    lay = built.layout
    nM, nS, nE = len(setup.rules), len(setup.starts), setup.epochs
    curves = {name: np.full((nM, nS, nE), np.nan) for name in CURVES}
    W_out = [np.zeros((nM, nS, lay.layers[k], lay.layers[k + 1])) for k in range(len(lay.layers) - 1)]
    b_out = [np.zeros((nM, nS, lay.layers[k])) for k in range(1, len(lay.layers))]
    # The matrices are small (minibatch 20): BLAS threads cost more than they gain, and a single thread
    # keeps the run reproducible bit for bit whatever the machine's core count.
    with threadpool_limits(limits=1, user_api="blas"):
        for si, start in enumerate(setup.starts):
            for mi in range(len(setup.rules)):
                net = _train_rule(built, start, mi, {name: c[mi, si] for name, c in curves.items()}, progress)
                for k, W in enumerate(lay.weights(net.Wf)):
                    W_out[k][mi, si] = W
                for k, b in enumerate(lay.biases(net.bf)):
                    b_out[k][mi, si] = b
    digits = setup.digits
    return training_dataset(
        p.layers,
        list(setup.rules),
        [s.seed for s in setup.starts],
        curves,
        W_out,
        b_out,
        digits.X_train.shape[1],
        digits.X_test.shape[1],
    )


def _train_rule(built: EqPropBuilt, start: SeedStart, mi: int, rec: dict[str, np.ndarray], progress: Progress) -> K.Net:
    """Train rule ``mi`` from ``start`` for every epoch, writing its per-epoch curves into ``rec``.

    Returns the trained network.
    """
    setup = built.training
    assert setup is not None
    p = built.params
    t = p.training
    assert t is not None
    rule = setup.rules[mi]
    lay = built.layout
    digits = setup.digits
    data = K.Examples(digits.X_train, digits.D_train)
    n_train, n_test = digits.X_train.shape[1], digits.X_test.shape[1]
    n_seen = (n_train // t.batch_size) * t.batch_size
    net = K.Net(start.Wf.copy(), start.bf.copy(), lay.woff, lay.off, p.rho_code, p.cost_code)
    rng = np.random.default_rng(start.streams[mi])
    backprop = rule == "bp"
    ep = K.EPSchedule(
        t.batch_size,
        float(t.beta),
        rule == "ep_symmetric",
        float(p.eps),
        t.n_free,
        t.n_nudged,
        float(t.tol),
        t.persistent,
    )
    rates = K.Rates(setup.bp_lr_w, setup.bp_lr_b) if backprop else K.Rates(setup.lr_w, setup.lr_b)
    particles = np.zeros((lay.n_units, n_train))
    test_particles = np.zeros((lay.n_units, n_test))
    cls = np.zeros(n_test, dtype=np.int64)
    st = np.zeros(n_test, dtype=np.int64)

    def advance(first: int, n: int) -> tuple[Status, str]:
        for e in range(first, first + n):
            t0 = time.perf_counter()
            perm = rng.permutation(n_train).astype(np.int64)
            n_batches = n_train // t.batch_size
            if backprop:
                stats = np.zeros((n_batches, 2))
                K.bp_train_epoch(net, data, perm, t.batch_size, rates, stats)
                errors, cost = stats[:, 0], stats[:, 1]
            else:
                signs = rng.choice(np.array([-1.0, 1.0]), size=n_batches) if t.random_sign else np.ones(n_batches)
                stats = np.zeros((n_batches, 5))
                K.train_epoch(net, data, particles, perm, signs, rates, ep, stats)
                errors, cost = stats[:, 3], stats[:, 4]
            rec["epoch_time"][e] = time.perf_counter() - t0
            if not (np.all(np.isfinite(net.Wf)) and np.all(np.isfinite(net.bf))):
                return Status.NAN, (
                    f"{rule} weights became non-finite at epoch {e + 1} (seed {start.seed}); "
                    "lower training.lr (or bp_lr) or beta"
                )
            rec["train_error"][e] = errors.sum() / n_seen
            rec["cost"][e] = cost.mean()
            if backprop:
                K.predict_bp(net, digits.X_test, cls)
            else:
                rec["free_steps"][e] = stats[:, 0].mean()
                rec["free_residual"][e] = stats[:, 1].mean()
                rec["energy"][e] = stats[:, 2].mean()
                if t.eval_start == "zero":
                    test_particles[:] = 0.0
                K.predict_ep(
                    net, digits.X_test, test_particles, ep.eps, t.eval_steps, float(t.eval_tol), EVAL_CHUNK, cls, st
                )
                rec["eval_steps"][e] = st.mean()
            rec["test_error"][e] = np.mean(cls != digits.y_test)
        return Status.OK, ""

    run_chunked(setup.epochs, advance, progress, desc=f"{rule} seed {start.seed}", chunk_steps=1, unit="epoch")
    return net


# --------------------------------------------------------------------------- the gradient experiments


def _net(
    problem: GradientProblem, built: EqPropBuilt, Wf: np.ndarray | None = None, bf: np.ndarray | None = None
) -> K.Net:
    """The problem's network for the kernels, or the same network with the parameters ``Wf``, ``bf``."""
    p = built.params
    lay = problem.layout
    return K.Net(
        problem.Wf if Wf is None else Wf, problem.bf if bf is None else bf, lay.woff, lay.off, p.rho_code, p.cost_code
    )


def _relax(
    net: K.Net, D: np.ndarray, S: np.ndarray, beta: float, eps: float, tol: float, max_steps: int
) -> tuple[int, float]:
    """Relax ``S`` in place to ``|dF/ds| < tol``; raise if it does not get there."""
    steps, res = K.relax(S, net, D, float(beta), float(eps), int(max_steps), float(tol))
    if not res < tol:
        raise SimulationError(
            f"relaxation did not reach |dF/ds| < {tol:g} in {max_steps} steps "
            f"(residual {res:.3g}); raise max_steps or tol, or lower init_gain"
        )
    return steps, res


def _cost_at(net: K.Net, D: np.ndarray, S: np.ndarray) -> float:
    """Mean cost ``C`` of the batch at state ``S``."""
    E = np.empty(S.shape[1])
    C = np.empty(S.shape[1])
    K.energy_cost(S, net, D, E, C)
    return float(C.mean())


def _ep_estimate(
    net: K.Net, problem: GradientProblem, Sa: np.ndarray, beta_a: float, Sb: np.ndarray, beta_b: float, denom: float
) -> np.ndarray:
    """EP estimate as one vector over the parameters (see :func:`kernels.ep_gradient`)."""
    gW, gb = K.ep_gradient(Sa, beta_a, Sb, beta_b, denom, net, problem.D)
    return np.concatenate([gW, gb])[problem.param_mask()]


def fit_slope(beta: np.ndarray, err: np.ndarray) -> float:
    """Least-squares slope of ``log err`` against ``log beta``."""
    return float(np.polyfit(np.log(beta), np.log(err), 1)[0])


def finite_difference_gradient(built: EqPropBuilt, S0: np.ndarray, h: float, tol: float, max_steps: int) -> np.ndarray:
    """Central differences of ``J(theta) = C(s0_theta)``; every perturbed relaxation warm-starts at ``S0``."""
    problem = built.problem
    assert problem is not None
    eps = built.params.eps
    theta = np.concatenate([problem.Wf, problem.bf])
    nW = problem.layout.n_weights
    idx = np.flatnonzero(problem.param_mask())
    grad = np.empty(idx.size)
    for m, i in enumerate(idx):
        vals = []
        for sgn in (1.0, -1.0):
            th = theta.copy()
            th[i] += sgn * h
            net = _net(problem, built, th[:nW].copy(), th[nW:].copy())
            S = S0.copy()
            _relax(net, problem.D, S, 0.0, eps, tol, max_steps)
            vals.append(_cost_at(net, problem.D, S))
        grad[m] = (vals[0] - vals[1]) / (2.0 * h)
    return grad


def _free_fixed_point(built: EqPropBuilt) -> tuple[K.Net, np.ndarray, int, float]:
    """The network for the kernels and its free fixed point relaxed from zero.

    Returns
    -------
    (Net, ndarray, int, float)
        The network, the free state ``s0``, the steps taken and the final residual ``max |dF/ds|``.
    """
    problem = built.problem
    assert problem is not None
    ex = gradient_experiment(built.params)
    net = _net(problem, built)
    S0 = problem.zero_state()
    free_steps, free_res = _relax(net, problem.D, S0, 0.0, built.params.eps, ex.tol, ex.max_steps)
    return net, S0, free_steps, free_res


def gradient_theorem(built: EqPropBuilt, progress: Progress) -> xr.Dataset:
    """EP gradient (one-sided, symmetric) against finite differences over the beta list."""
    p = built.params
    problem = built.problem
    th = p.theorem
    assert th is not None and problem is not None
    net, S0, free_steps, free_res = _free_fixed_point(built)
    g_fd = finite_difference_gradient(built, S0, th.fd_step, th.tol, th.max_steps)
    if not np.any(g_fd):
        # the relative errors below divide by ||g_FD||: a zero gradient leaves nothing to compare
        raise SimulationError(
            f"the finite-difference gradient is exactly zero (params.theorem.tol = {th.tol:g} stops every "
            "relaxation before the state moves); use a smaller tol"
        )
    betas = np.asarray(th.betas, dtype=float)
    est = np.empty((2, betas.size, g_fd.size))
    nudged_steps = np.empty((2, betas.size))
    for b, beta in enumerate(betas):
        Sp, Sm = S0.copy(), S0.copy()
        nudged_steps[0, b], _ = _relax(net, problem.D, Sp, beta, p.eps, th.tol, th.max_steps)
        nudged_steps[1, b], _ = _relax(net, problem.D, Sm, -beta, p.eps, th.tol, th.max_steps)
        est[0, b] = _ep_estimate(net, problem, Sp, beta, S0, 0.0, beta)
        est[1, b] = _ep_estimate(net, problem, Sp, beta, Sm, -beta, 2.0 * beta)
    err = np.linalg.norm(est - g_fd, axis=2) / np.linalg.norm(g_fd)
    slopes = np.array([fit_slope(betas, err[0]), fit_slope(betas, err[1])])
    return theorem_dataset(
        p.layers,
        betas,
        problem.param_groups(),
        err,
        est,
        g_fd,
        slopes,
        nudged_steps,
        free_steps,
        free_res,
        _cost_at(net, problem.D, S0),
    )


def bptt_match(built: EqPropBuilt, progress: Progress) -> xr.Dataset:
    """Discrete-time EP updates against truncated BPTT, step by step, for every beta."""
    p = built.params
    problem = built.problem
    bp = p.bptt
    assert bp is not None and problem is not None
    net, S0, free_steps, free_res = _free_fixed_point(built)
    lay = problem.layout
    n_steps = bp.steps
    n_rel = lay.n_units - lay.layers[0]
    B = bp.n_examples
    gS = np.zeros((n_steps, n_rel, B))
    gW = np.zeros((n_steps, lay.n_weights))
    gb = np.zeros((n_steps, lay.n_units))
    eps = float(p.eps)
    K.bptt_at_fixed_point(S0, net, problem.D, eps, n_steps, gS, gW, gb)
    bptt_theta = np.concatenate([gW, gb], axis=1)[:, problem.param_mask()]
    bptt_s = gS
    betas = np.asarray(bp.betas, dtype=float)
    symmetric = bp.estimator == "symmetric"
    ep_theta = np.empty((betas.size, n_steps, bptt_theta.shape[1]))
    ep_s = np.empty((betas.size, n_steps, n_rel, B))
    for b, beta in enumerate(betas):
        traj = _nudged_trajectory(net, problem.D, S0, beta, eps, n_steps)
        trajm = _nudged_trajectory(net, problem.D, S0, -beta, eps, n_steps) if symmetric else None
        for t in range(n_steps):
            # Delta theta^EP_t = (dPhi/dtheta(s_{t+1}) - dPhi/dtheta(s_t)) / (eps beta)
            #                 = -(dE/dtheta(s_{t+1}) - dE/dtheta(s_t)) / beta
            if symmetric:
                d = _ep_estimate(net, problem, traj[t + 1], 0.0, traj[t], 0.0, 2 * beta) - _ep_estimate(
                    net, problem, trajm[t + 1], 0.0, trajm[t], 0.0, 2 * beta
                )
                ds_ = (traj[t + 1] - traj[t] - (trajm[t + 1] - trajm[t])) / (2 * eps * beta)
            else:
                d = _ep_estimate(net, problem, traj[t + 1], 0.0, traj[t], 0.0, beta)
                ds_ = (traj[t + 1] - traj[t]) / (eps * beta)
            # EP update is -d; BPTT gradient is +grad: store both as "minus the gradient"
            ep_theta[b, t] = -d
            ep_s[b, t] = ds_[lay.layers[0] :]
    neg_bptt_theta = -bptt_theta
    neg_bptt_s = -bptt_s
    rmse_theta = np.sqrt(((ep_theta - neg_bptt_theta) ** 2).sum(axis=(1, 2)) / (neg_bptt_theta**2).sum())
    rmse_s = np.sqrt(((ep_s - neg_bptt_s) ** 2).sum(axis=(1, 2, 3)) / (neg_bptt_s**2).sum())
    # sign agreement over (step, parameter) entries whose BPTT gradient is not zero to rounding
    nz = np.abs(neg_bptt_theta) > 1e-12 * np.abs(neg_bptt_theta).max()
    sign_share = (np.sign(ep_theta) == np.sign(neg_bptt_theta))[:, nz].mean(axis=1)
    return bptt_dataset(
        p.layers,
        bp.estimator,
        betas,
        problem.param_groups(),
        ep_theta,
        neg_bptt_theta,
        ep_s,
        neg_bptt_s,
        rmse_theta,
        rmse_s,
        sign_share,
        fit_slope(betas, rmse_theta),
        fit_slope(betas, rmse_s),
        free_steps,
        free_res,
    )


def _nudged_trajectory(
    net: K.Net, D: np.ndarray, S0: np.ndarray, beta: float, eps: float, n_steps: int
) -> list[np.ndarray]:
    """``s_0 = s*`` and ``n_steps`` steps of the discrete-time form with nudging ``beta``."""
    traj = [S0.copy()]
    for _ in range(n_steps):
        traj.append(K.step_map(traj[-1], net, D, float(beta), float(eps)))
    return traj


#: experiment name (``params.experiment``) -> the function that runs it
EXPERIMENTS: dict[str, Callable[[EqPropBuilt, Progress], xr.Dataset]] = {
    "train": train,
    "gradient_theorem": gradient_theorem,
    "bptt_match": bptt_match,
}
