"""The two gradient experiments: the EP gradient theorem and the EP-BPTT step-by-step match.

Both run on a small float64 network with random inputs (uniform in [0, 1]) and random one-hot targets,
Glorot-uniform weights from ``run.seed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.errors import SimulationError
from neurodyn.families.eqprop import kernels as K
from neurodyn.families.eqprop.network import Layout, glorot_uniform, make_layout
from neurodyn.schema import var_attrs

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.eqprop.params import EqPropParams, GradientExperiment
    from neurodyn.scenario import Scenario


class Problem:
    """A network, a batch of examples and the kernels' calling conventions, for the gradient experiments.

    Parameters
    ----------
    p : EqPropParams
        Network description (``layers``, ``rho``, ``cost``, ``eps``, ``init_gain``).
    n_examples : int
        Batch size.
    seed : int
        Seeds weights, inputs and targets.
    """

    def __init__(self, p: EqPropParams, n_examples: int, seed: int):
        self.p = p
        self.layout: Layout = make_layout(p.layers)
        init_ss, data_ss = np.random.SeedSequence(seed).spawn(2)
        self.Wf, self.bf = glorot_uniform(self.layout, np.random.default_rng(init_ss), p.init_gain)
        rng = np.random.default_rng(data_ss)
        n_in, n_out = p.layers[0], p.layers[-1]
        self.X = rng.uniform(0.0, 1.0, size=(n_in, n_examples))
        self.D = np.zeros((n_out, n_examples))
        self.D[rng.integers(0, n_out, n_examples), np.arange(n_examples)] = 1.0
        self.kind = p.rho_code
        self.cost = p.cost_code

    def _theta(self, Wf: np.ndarray | None, bf: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The given (perturbed) parameters, or the problem's own where ``None``."""
        return (self.Wf if Wf is None else Wf), (self.bf if bf is None else bf)

    def zero_state(self) -> np.ndarray:
        """The input clamped, every other unit at 0."""
        S = np.zeros((self.layout.n_units, self.X.shape[1]))
        S[: self.X.shape[0]] = self.X
        return S

    def relax(
        self,
        S: np.ndarray,
        beta: float,
        tol: float,
        max_steps: int,
        Wf: np.ndarray | None = None,
        bf: np.ndarray | None = None,
    ) -> tuple[int, float]:
        """Relax ``S`` in place to ``|dF/ds| < tol``; raise if it does not get there."""
        Wf, bf = self._theta(Wf, bf)
        steps, res = K.relax(
            S,
            Wf,
            self.layout.woff,
            bf,
            self.layout.off,
            self.D,
            float(beta),
            float(self.p.eps),
            int(max_steps),
            float(tol),
            self.kind,
            self.cost,
        )
        if not res < tol:
            raise SimulationError(
                f"relaxation did not reach |dF/ds| < {tol:g} in {max_steps} steps "
                f"(residual {res:.3g}); raise max_steps or tol, or lower init_gain"
            )
        return steps, res

    def cost_at(self, S: np.ndarray, Wf: np.ndarray | None = None, bf: np.ndarray | None = None) -> float:
        """Mean cost ``C`` of the batch at state ``S``."""
        Wf, bf = self._theta(Wf, bf)
        E = np.empty(S.shape[1])
        C = np.empty(S.shape[1])
        K.energy_cost(S, Wf, self.layout.woff, bf, self.layout.off, self.D, self.kind, self.cost, E, C)
        return float(C.mean())

    def param_mask(self) -> np.ndarray:
        """Which entries of ``concat(Wf, bf)`` are parameters (the input rows of ``bf`` are not)."""
        mask = np.ones(self.layout.n_weights + self.layout.n_units, dtype=bool)
        mask[self.layout.n_weights : self.layout.n_weights + self.layout.layers[0]] = False
        return mask

    def param_groups(self) -> np.ndarray:
        """Name of the tensor each parameter belongs to (``W_0``, ``W_1``, ..., ``b_1``, ...)."""
        lay = self.layout
        names = [f"W_{k}" for k in range(len(lay.layers) - 1) for _ in range(lay.woff[k], lay.woff[k + 1])]
        names += [f"b_{k}" for k in range(1, len(lay.layers)) for _ in range(lay.off[k], lay.off[k + 1])]
        return np.array(names)

    def ep_estimate(self, Sa: np.ndarray, beta_a: float, Sb: np.ndarray, beta_b: float, denom: float) -> np.ndarray:
        """EP estimate as one vector over the parameters (see :func:`kernels.ep_gradient`)."""
        gW, gb = K.ep_gradient(
            Sa,
            beta_a,
            Sb,
            beta_b,
            denom,
            self.Wf,
            self.layout.woff,
            self.bf,
            self.layout.off,
            self.D,
            self.kind,
            self.cost,
        )
        return np.concatenate([gW, gb])[self.param_mask()]


def fit_slope(beta: np.ndarray, err: np.ndarray) -> float:
    """Least-squares slope of ``log err`` against ``log beta``."""
    return float(np.polyfit(np.log(beta), np.log(err), 1)[0])


def finite_difference_gradient(prob: Problem, S0: np.ndarray, h: float, tol: float, max_steps: int) -> np.ndarray:
    """Central differences of ``J(theta) = C(s0_theta)``; every perturbed relaxation warm-starts at ``S0``."""
    theta = np.concatenate([prob.Wf, prob.bf])
    nW = prob.layout.n_weights
    idx = np.flatnonzero(prob.param_mask())
    grad = np.empty(idx.size)
    for m, i in enumerate(idx):
        vals = []
        for sgn in (1.0, -1.0):
            th = theta.copy()
            th[i] += sgn * h
            Wf, bf = th[:nW].copy(), th[nW:].copy()
            S = S0.copy()
            prob.relax(S, 0.0, tol, max_steps, Wf, bf)
            vals.append(prob.cost_at(S, Wf, bf))
        grad[m] = (vals[0] - vals[1]) / (2.0 * h)
    return grad


def _free_fixed_point(scenario: Scenario, ex: GradientExperiment) -> tuple[Problem, np.ndarray, int, float]:
    """The experiment's problem (seeded by ``run.seed``) and its free fixed point relaxed from zero.

    Returns
    -------
    (Problem, ndarray, int, float)
        The problem, the free state ``s0``, the steps taken and the final residual ``max |dF/ds|``.
    """
    prob = Problem(scenario.params, ex.n_examples, int(scenario.run.seed))
    S0 = prob.zero_state()
    free_steps, free_res = prob.relax(S0, 0.0, ex.tol, ex.max_steps)
    return prob, S0, free_steps, free_res


def _free_phase_vars(free_steps: int, free_res: float) -> dict[str, tuple]:
    """Stored variables of the free phase, common to both gradient experiments."""
    return {
        "free_steps": ((), free_steps, var_attrs("1", "relaxation steps of the free phase from zero")),
        "free_residual": ((), free_res, var_attrs("1", "largest |dF/ds| at the free fixed point")),
    }


def _label_beta_and_params(ds: xr.Dataset) -> None:
    """Units and long names of the ``beta``, ``param`` and ``param_group`` coordinates."""
    ds["beta"].attrs = var_attrs("1", "nudging strength beta")
    ds["param"].attrs = var_attrs("1", "parameter index: weights W_0, W_1, ... then non-input biases")
    ds["param_group"].attrs = var_attrs("1", "weight matrix or bias vector of the parameter")


def simulate_theorem(scenario: Scenario) -> xr.Dataset:
    """EP gradient (one-sided, symmetric) against finite differences over the beta list."""
    p: EqPropParams = scenario.params
    th = p.theorem
    assert th is not None
    prob, S0, free_steps, free_res = _free_fixed_point(scenario, th)
    g_fd = finite_difference_gradient(prob, S0, th.fd_step, th.tol, th.max_steps)
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
        nudged_steps[0, b], _ = prob.relax(Sp, beta, th.tol, th.max_steps)
        nudged_steps[1, b], _ = prob.relax(Sm, -beta, th.tol, th.max_steps)
        est[0, b] = prob.ep_estimate(Sp, beta, S0, 0.0, beta)
        est[1, b] = prob.ep_estimate(Sp, beta, Sm, -beta, 2.0 * beta)
    err = np.linalg.norm(est - g_fd, axis=2) / np.linalg.norm(g_fd)
    slopes = np.array([fit_slope(betas, err[0]), fit_slope(betas, err[1])])
    estimators = ["one_sided", "symmetric"]
    ds = xr.Dataset(
        {
            "grad_rel_error": (
                ("estimator", "beta"),
                err,
                var_attrs("1", "relative error ||g_EP - g_FD|| / ||g_FD|| of the EP gradient"),
            ),
            "grad_ep": (("estimator", "beta", "param"), est, var_attrs("1", "EP estimate of dJ/dtheta")),
            "grad_fd": (("param",), g_fd, var_attrs("1", "central finite differences of J = C(s0)")),
            "error_slope": (
                ("estimator",),
                slopes,
                var_attrs("1", "fitted slope of log grad_rel_error against log beta"),
            ),
            "slope_one_sided": ((), slopes[0], var_attrs("1", "fitted error slope, one-sided nudging")),
            "slope_symmetric": ((), slopes[1], var_attrs("1", "fitted error slope, symmetric nudging")),
            "nudged_steps": (
                ("estimator", "beta"),
                nudged_steps,
                var_attrs("1", "relaxation steps of the nudged phase (+beta; -beta)"),
            ),
            **_free_phase_vars(free_steps, free_res),
            "J": ((), prob.cost_at(S0), var_attrs("1", "J = C(s0), mean over the batch")),
        },
        coords={
            "estimator": estimators,
            "beta": betas,
            "param": np.arange(g_fd.size),
            "param_group": ("param", prob.param_groups()),
        },
    )
    _label_beta_and_params(ds)
    ds["estimator"].attrs = var_attrs("1", "one_sided: (s_beta, s_0); symmetric: (s_+beta, s_-beta)")
    ds.attrs.update(experiment="gradient_theorem", layers=list(p.layers))
    return ds


def simulate_bptt(scenario: Scenario) -> xr.Dataset:
    """Discrete-time EP updates against truncated BPTT, step by step, for every beta."""
    p: EqPropParams = scenario.params
    bp = p.bptt
    assert bp is not None
    prob, S0, free_steps, free_res = _free_fixed_point(scenario, bp)
    lay = prob.layout
    n_steps = bp.steps
    n_rel = lay.n_units - lay.layers[0]
    B = bp.n_examples
    gS = np.zeros((n_steps, n_rel, B))
    gW = np.zeros((n_steps, lay.n_weights))
    gb = np.zeros((n_steps, lay.n_units))
    K.bptt_at_fixed_point(S0, prob.Wf, lay.woff, prob.bf, lay.off, prob.D, float(p.eps), prob.kind, n_steps, gS, gW, gb)
    mask = prob.param_mask()
    bptt_theta = np.concatenate([gW, gb], axis=1)[:, mask]
    bptt_s = gS
    betas = np.asarray(bp.betas, dtype=float)
    symmetric = bp.estimator == "symmetric"
    ep_theta = np.empty((betas.size, n_steps, bptt_theta.shape[1]))
    ep_s = np.empty((betas.size, n_steps, n_rel, B))
    eps = float(p.eps)
    for b, beta in enumerate(betas):
        traj = _nudged_trajectory(prob, S0, beta, n_steps)
        trajm = _nudged_trajectory(prob, S0, -beta, n_steps) if symmetric else None
        for t in range(n_steps):
            # Delta theta^EP_t = (dPhi/dtheta(s_{t+1}) - dPhi/dtheta(s_t)) / (eps beta)
            #                 = -(dE/dtheta(s_{t+1}) - dE/dtheta(s_t)) / beta
            if symmetric:
                d = prob.ep_estimate(traj[t + 1], 0.0, traj[t], 0.0, 2 * beta) - prob.ep_estimate(
                    trajm[t + 1], 0.0, trajm[t], 0.0, 2 * beta
                )
                ds_ = (traj[t + 1] - traj[t] - (trajm[t + 1] - trajm[t])) / (2 * eps * beta)
            else:
                d = prob.ep_estimate(traj[t + 1], 0.0, traj[t], 0.0, beta)
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
    slope_theta = fit_slope(betas, rmse_theta)
    slope_s = fit_slope(betas, rmse_s)
    unit_layer = np.concatenate([np.full(n, k) for k, n in enumerate(lay.layers) if k > 0])
    ds = xr.Dataset(
        {
            "ep_update": (
                ("beta", "step", "param"),
                ep_theta,
                var_attrs("1", "EP parameter update Delta theta^EP_t (one step of the nudged phase)"),
            ),
            "bptt_update": (
                ("step", "param"),
                neg_bptt_theta,
                var_attrs("1", "minus the truncated-BPTT gradient dL/dtheta_{T-t}"),
            ),
            "ep_state_update": (
                ("beta", "step", "unit", "example"),
                ep_s,
                var_attrs("1", "EP neuron update Delta s^EP_t = (s_{t+1} - s_t)/(eps beta)"),
            ),
            "bptt_state_update": (
                ("step", "unit", "example"),
                neg_bptt_s,
                var_attrs("1", "minus the truncated-BPTT gradient dL/ds_{T-t}"),
            ),
            "rel_rmse": (
                ("beta",),
                rmse_theta,
                var_attrs("1", "relative RMSE of EP parameter updates vs BPTT over all steps"),
            ),
            "rel_rmse_state": (
                ("beta",),
                rmse_s,
                var_attrs("1", "relative RMSE of EP neuron updates vs BPTT over all steps"),
            ),
            "sign_share": (
                ("beta",),
                sign_share,
                var_attrs("1", "share of (step, parameter) entries whose EP and BPTT signs agree"),
            ),
            "rmse_slope": ((), slope_theta, var_attrs("1", "fitted slope of log rel_rmse against log beta")),
            "rmse_state_slope": (
                (),
                slope_s,
                var_attrs("1", "fitted slope of log rel_rmse_state against log beta"),
            ),
            **_free_phase_vars(free_steps, free_res),
            "unit_layer": (("unit",), unit_layer, var_attrs("1", "layer of each relaxed unit")),
        },
        coords={
            "beta": betas,
            "step": np.arange(n_steps),
            "param": np.arange(bptt_theta.shape[1]),
            "param_group": ("param", prob.param_groups()),
            "unit": np.arange(n_rel),
            "example": np.arange(B),
        },
    )
    _label_beta_and_params(ds)
    ds["step"].attrs = var_attrs("1", "t: steps into the nudged phase = steps back from the end for BPTT")
    ds["unit"].attrs = var_attrs("1", "relaxed unit index (hidden layers, then output)")
    ds["example"].attrs = var_attrs("1", "example in the batch")
    ds.attrs.update(experiment="bptt_match", layers=list(p.layers), estimator=bp.estimator)
    return ds


def _nudged_trajectory(prob: Problem, S0: np.ndarray, beta: float, n_steps: int) -> list[np.ndarray]:
    """``s_0 = s*`` and ``n_steps`` steps of the discrete-time form with nudging ``beta``."""
    lay = prob.layout
    traj = [S0.copy()]
    for _ in range(n_steps):
        traj.append(
            K.step_map(
                traj[-1],
                prob.Wf,
                lay.woff,
                prob.bf,
                lay.off,
                prob.D,
                float(beta),
                float(prob.p.eps),
                prob.kind,
                prob.cost,
            )
        )
    return traj
