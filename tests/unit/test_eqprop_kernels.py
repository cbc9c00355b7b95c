"""eqprop kernels against independent NumPy formulas, finite differences and exact properties."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.families.eqprop import kernels as K
from neurodyn.families.eqprop.build import glorot_uniform, make_layout, per_unit_bias_rates

HARD, TANH, HALF = K.RHO_HARD_SIGMOID, K.RHO_TANH, K.RHO_CLIP_HALF


def _net(layers, seed=0, B=5, bias=0.2):
    lay = make_layout(layers)
    rng = np.random.default_rng(seed)
    Wf, bf = glorot_uniform(lay, rng)
    bf[layers[0] :] = rng.normal(0.0, bias, lay.n_units - layers[0])
    X = rng.uniform(0, 1, (layers[0], B))
    D = np.zeros((layers[-1], B))
    D[rng.integers(0, layers[-1], B), np.arange(B)] = 1.0
    S = np.zeros((lay.n_units, B))
    S[: layers[0]] = X
    return lay, Wf, bf, X, D, S


def _k(lay, Wf, bf, kind, cost=K.COST_MSE):
    """The network as the kernels take it."""
    return K.Net(Wf, bf, lay.woff, lay.off, kind, cost)


def _np_rho(s, kind):
    if kind == TANH:
        return np.tanh(s), 1 - np.tanh(s) ** 2
    if kind == HARD:
        return np.clip(s, 0, 1), ((s >= 0) & (s <= 1)).astype(float)
    return np.clip(s / 2, 0, 1), 0.5 * ((s >= 0) & (s <= 2))


def _np_grad_F(lay, Wf, bf, S, D, beta, kind):
    """dF/ds of F = E + beta/2 ||y - d||^2 for the relaxed layers, written layer by layer in NumPy."""
    Ws = lay.weights(Wf)
    L = len(lay.layers)
    st = [S[lay.off[k] : lay.off[k + 1]] for k in range(L)]
    rh = [st[0]] + [_np_rho(st[k], kind)[0] for k in range(1, L)]
    G = []
    for n in range(1, L):
        u = Ws[n - 1].T @ rh[n - 1] + bf[lay.off[n] : lay.off[n + 1], None]
        if n < L - 1:
            u = u + Ws[n] @ rh[n + 1]
        g = st[n] - _np_rho(st[n], kind)[1] * u
        if n == L - 1:
            g = g + beta * (st[n] - D)
        G.append(g)
    return np.vstack(G)


@pytest.mark.parametrize("kind", [HARD, TANH, HALF])
@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_relaxation_reaches_a_fixed_point_of_F(kind, beta):
    """The returned state satisfies the (projected) stationarity conditions of F, checked in NumPy."""
    lay, Wf, bf, X, D, S = _net([7, 12, 9, 4], seed=3)
    tol = 1e-9
    steps, res = K.relax(S, _k(lay, Wf, bf, kind), D, beta, 0.5, 100_000, tol)
    assert res < tol and 0 < steps < 100_000
    G = _np_grad_F(lay, Wf, bf, S, D, beta, kind)
    s = S[lay.off[1] :]
    lo, hi = {HARD: (0, 1), HALF: (0, 2), TANH: (-np.inf, np.inf)}[kind]
    inside = (s > lo) & (s < hi)
    assert np.abs(G[inside]).max() < 1e-8
    # at a lower bound the force may only push further down (dF/ds >= 0), at an upper bound up
    assert np.all(G[s <= lo] >= -1e-8) and np.all(G[s >= hi] <= 1e-8)


def test_energy_never_increases_during_relaxation():
    """Projected gradient descent with a small step decreases F monotonically (exact property)."""
    lay, Wf, bf, X, D, S = _net([6, 10, 3], seed=1)
    E, C = np.empty(S.shape[1]), np.empty(S.shape[1])
    beta = 0.5
    F = []
    for _ in range(60):
        K.energy_cost(S, _k(lay, Wf, bf, HARD), D, E, C)
        F.append(E.sum() + beta * C.sum())
        K.relax(S, _k(lay, Wf, bf, HARD), D, beta, 0.1, 1, 0.0)
    assert np.all(np.diff(F) <= 1e-12)
    assert F[-1] < F[0]


@pytest.mark.parametrize("cost", [K.COST_MSE, K.COST_SOFTMAX_CE])
def test_ep_gradient_equals_the_rho_outer_product_formula(cost):
    """ep_gradient is (dF/dtheta(Sa) - dF/dtheta(Sb)) / denom with dE/dW_k = -rho_k rho_{k+1}^T."""
    lay, Wf, bf, X, D, S = _net([5, 8, 6, 3], seed=2, B=4)
    rng = np.random.default_rng(9)
    Sa = S.copy()
    Sb = S.copy()
    Sa[5:] = rng.uniform(0, 1, Sa[5:].shape)
    Sb[5:] = rng.uniform(0, 1, Sb[5:].shape)
    beta, denom = 0.3, 0.3
    gW, gb = K.ep_gradient(Sa, beta, Sb, 0.0, denom, _k(lay, Wf, bf, TANH, cost), D)
    top = 3 if cost == K.COST_MSE else 2  # number of weight matrices inside the energy

    def rho(Sx):
        return [Sx[:5]] + [np.tanh(Sx[lay.off[k] : lay.off[k + 1]]) for k in range(1, 4)]

    ra, rb = rho(Sa), rho(Sb)
    B = S.shape[1]
    for k in range(top):
        expect = -(ra[k] @ ra[k + 1].T - rb[k] @ rb[k + 1].T) / B / denom
        np.testing.assert_allclose(lay.weights(gW)[k], expect, rtol=1e-12, atol=1e-14)
    for k in range(1, top + 1):
        expect = -(ra[k].sum(1) - rb[k].sum(1)) / B / denom
        np.testing.assert_allclose(gb[lay.off[k] : lay.off[k + 1]], expect, rtol=1e-12, atol=1e-14)
    if cost == K.COST_SOFTMAX_CE:  # readout: beta dC/dW at Sa only (beta_b = 0)
        z = lay.weights(Wf)[2].T @ ra[2] + bf[lay.off[3] :, None]
        p = np.exp(z - z.max(0))
        p /= p.sum(0)
        expect = beta * ra[2] @ (p - D).T / B / denom
        np.testing.assert_allclose(lay.weights(gW)[2], expect, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kind,cost", [(TANH, K.COST_MSE), (TANH, K.COST_SOFTMAX_CE), (HARD, K.COST_MSE)])
def test_backprop_step_is_minus_lr_times_the_finite_difference_gradient(kind, cost):
    lay, Wf, bf, X, D, S = _net([5, 7, 6, 3], seed=0, B=4, bias=0.3)
    B = X.shape[1]

    def loss(W, b):
        Z = np.zeros((lay.n_units, B))
        H = np.zeros((lay.n_units, B))
        K.forward(_k(lay, W, b, kind, cost), X, Z, H)
        y = H[lay.off[-2] :]
        return 0.5 * ((y - D) ** 2).sum() / B if cost == K.COST_MSE else -(D * np.log(y)).sum() / B

    lr = 1e-3
    W2, b2 = Wf.copy(), bf.copy()
    stats = np.zeros((1, 2))
    K.bp_train_epoch(
        _k(lay, W2, b2, kind, cost),
        K.Examples(X, D),
        np.arange(B),
        B,
        K.Rates(np.full(3, lr), per_unit_bias_rates(lay, [lr] * 3)),
        stats,
    )
    g_bp = np.concatenate([Wf - W2, (bf - b2)[5:]]) / lr
    theta = np.concatenate([Wf, bf])
    h = 1e-6
    g_fd = []
    for i in list(range(Wf.size)) + list(range(Wf.size + 5, theta.size)):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += h
        tm[i] -= h
        g_fd.append((loss(tp[: Wf.size], tp[Wf.size :]) - loss(tm[: Wf.size], tm[Wf.size :])) / (2 * h))
    np.testing.assert_allclose(g_bp, g_fd, atol=1e-8 * max(1.0, np.abs(g_fd).max()))
    assert stats[0, 1] == pytest.approx(loss(Wf, bf), rel=1e-12)


def test_glorot_uniform_bounds_and_spread():
    lay = make_layout([64, 500, 10])
    Wf, bf = glorot_uniform(lay, np.random.default_rng(0))
    for k, W in enumerate(lay.weights(Wf)):
        a = np.sqrt(6 / (lay.layers[k] + lay.layers[k + 1]))
        assert np.abs(W).max() <= a
        # U(-a, a) has std a / sqrt(3); 5000+ samples put the estimate within 3%
        assert W.std() == pytest.approx(a / np.sqrt(3), rel=0.03)
    assert not bf.any()


def test_discrete_step_is_gradient_descent_on_F_without_projection():
    """step_map(s) = s - eps dF/ds exactly (the prototypical form with Phi = ||s||^2/2 - eps E)."""
    lay, Wf, bf, X, D, S = _net([4, 6, 3], seed=5)
    S[4:] = np.random.default_rng(1).normal(0, 1, S[4:].shape)
    out = K.step_map(S, _k(lay, Wf, bf, TANH), D, 0.2, 0.4)
    G = _np_grad_F(lay, Wf, bf, S, D, 0.2, TANH)
    np.testing.assert_allclose(out[4:], S[4:] - 0.4 * G, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(out[:4], S[:4])


def test_persistent_evaluation_restarts_at_the_fixed_point():
    """predict_ep writes the relaxed states back: a second pass from them needs no step at all."""
    lay, Wf, bf, X, D, S = _net([6, 10, 4], seed=4, B=7)
    states = np.zeros((lay.n_units, X.shape[1]))
    cls1 = np.zeros(X.shape[1], dtype=np.int64)
    st1 = np.zeros(X.shape[1], dtype=np.int64)
    K.predict_ep(_k(lay, Wf, bf, HARD), X, states, 0.5, 10_000, 1e-10, 3, cls1, st1)
    assert st1.min() > 0
    cls2, st2 = cls1.copy(), st1.copy()
    K.predict_ep(_k(lay, Wf, bf, HARD), X, states, 0.5, 10_000, 1e-10, 3, cls2, st2)
    assert st2.max() == 0
    np.testing.assert_array_equal(cls1, cls2)
    np.testing.assert_array_equal(cls1, states[lay.off[2] :].argmax(0))
