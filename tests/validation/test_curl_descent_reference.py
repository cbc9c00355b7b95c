"""``curl_descent`` against independent NumPy implementations for identical weights, data and batches.

* mini-batch training: the authors' update written in matrix form (``e = y_hat - y``,
  ``delta1 = (W2^T e) * phi'(W1 x)``, ``dW2 = -eta e h^T D2 / B``, ``dW1 = -eta delta1 x^T D1 / B``, then the
  rescaling to the initial Frobenius norms), every activation, flips in both layers, a partial last batch;
* the population flow: the same RK4 steps in NumPy, and an independent adaptive integrator (scipy DOP853);
* the population flow as the large-P limit of the full-batch update: one full-batch step on P samples
  approaches the flow's velocity as P grows.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from neurodyn.families.curl_descent import engine
from neurodyn.families.curl_descent import kernels as K
from neurodyn.families.curl_descent.build import ACTIVATIONS, flips, teacher, teacher_output

PHI = {
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.clip(z, 0, None), lambda z: (z > 0) * 1.0),
}


def reference_training(W1, W2, D1, D2, X, y, orders, eta, B, act, project=True):
    """The authors' ``learning_simu_batch`` (col mode, no batch norm), inputs one column per example."""
    phi, dphi = PHI[act]
    W1, W2 = W1.copy(), W2.copy()[None, :]
    n1, n2 = np.linalg.norm(W1), np.linalg.norm(W2)
    inputs = X.T
    for order in orders:
        shuffled = inputs[:, order]
        for s in range(0, inputs.shape[1], B):
            x = shuffled[:, s : s + B]
            a = W1 @ x
            h = phi(a)
            e = phi(W2 @ h) - y[order[s : s + B]][None, :]
            da1 = (W2.T @ e) * dphi(a)
            W2 = W2 - eta * (e @ h.T @ D2) / e.shape[1]
            W1 = W1 - eta * (da1 @ x.T @ D1) / da1.shape[1]
            if project:
                W1 *= n1 / np.linalg.norm(W1)
                W2 *= n2 / np.linalg.norm(W2)
    return W1, W2[0]


@pytest.mark.parametrize("act", ["linear", "tanh", "relu"])
@pytest.mark.parametrize("project", [True, False])
def test_minibatch_training_matches_the_numpy_reference(act, project):
    rng = np.random.default_rng(7)
    M, N, P, B = 6, 5, 23, 5  # 23 = 4 full batches + a batch of 3
    W1t, w2t = teacher(rng, M, N)
    X = np.sqrt(0.5) * rng.standard_normal((P, M))
    y = teacher_output(W1t, w2t, X, ACTIVATIONS[act])
    W1 = rng.uniform(-2 / np.sqrt(M), 2 / np.sqrt(M), (N, M))
    w2 = rng.uniform(-2 / np.sqrt(N), 2 / np.sqrt(N), N)
    d1, d2 = flips(M, 0.34), flips(N, 0.2)
    orders = np.stack([rng.permutation(P) for _ in range(4)]).astype(np.int64)
    eta = 0.5 * B / P

    net = K.Net(W1.copy(), w2.copy(), d1, d2, np.array([np.linalg.norm(W1), np.linalg.norm(w2)]))
    data = K.Data(X, y, X[:4], y[:4])
    rec = K.TrainRec(np.zeros(5), np.zeros(5))
    assert K.train_epochs(net, data, K.TrainConsts(ACTIVATIONS[act], eta, B, project), orders, rec, 0)
    R1, r2 = reference_training(W1, w2, np.diag(d1), np.diag(d2), X, y, orders, eta, B, act, project)
    np.testing.assert_allclose(net.W1, R1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.w2, r2, rtol=1e-12, atol=1e-14)
    phi = PHI[act][0]
    assert rec.train_error[-1] == pytest.approx(0.5 * np.mean((phi(phi(X @ R1.T) @ r2) - y) ** 2), rel=1e-11)


def numpy_field(x, N, M, d1, d2, vstar, s2, eta):
    W1, w2 = x[: N * M].reshape(N, M), x[N * M :]
    e = s2 * (W1.T @ w2 - vstar)
    return np.concatenate([(-eta * np.outer(w2, e * d1)).ravel(), -eta * d2 * (W1 @ e)])


def test_flow_matches_numpy_rk4_and_an_adaptive_integrator():
    rng = np.random.default_rng(3)
    M, N = 4, 6
    W1t, w2t = teacher(rng, M, N)
    vstar = W1t.T @ w2t
    # near the teacher: random starts with flips in both layers often diverge in finite time
    W1 = W1t + rng.normal(0, 0.3, (N, M))
    w2 = w2t + rng.normal(0, 0.3, N)
    d1, d2 = flips(M, 0.25), flips(N, 0.34)
    dt, n = 0.01, 300
    c = K.FlowConsts(d1, d2, vstar, 0.5, 0.8, dt, False, 1e6)
    st = engine.new_state(W1, w2)
    rec = engine.new_rec(st, c, n, 2)
    K.flow_run(st, c, engine.new_work(N, M), rec, 0, n)

    def f(x):
        return numpy_field(x, N, M, d1, d2, vstar, 0.5, 0.8)

    x = x0 = np.concatenate([W1.ravel(), w2])
    for _ in range(n):
        k1 = f(x)
        k2 = f(x + dt / 2 * k1)
        k3 = f(x + dt / 2 * k2)
        k4 = f(x + dt * k3)
        x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    got = np.concatenate([st.W1.ravel(), st.w2])
    assert st.diverged[0] == -1 and np.abs(got - x0).max() > 1e-2  # finite, and it moved
    np.testing.assert_allclose(got, x, rtol=1e-12, atol=1e-13)
    ref = solve_ivp(
        lambda _t, z: f(z), (0, n * dt), np.concatenate([W1.ravel(), w2]), method="DOP853", rtol=1e-12, atol=1e-13
    )
    np.testing.assert_allclose(got, ref.y[:, -1], atol=1e-9)


def test_population_flow_is_the_large_p_limit_of_the_full_batch_update():
    """One full-batch update divided by eta approaches the flow's velocity as O(1/sqrt(P))."""
    rng = np.random.default_rng(11)
    M, N = 3, 4
    W1t, w2t = teacher(rng, M, N)
    W1, w2 = rng.normal(0, 0.5, (N, M)), rng.normal(0, 0.5, N)
    d1, d2 = flips(M, 0.34), flips(N, 0.25)
    v = numpy_field(np.concatenate([W1.ravel(), w2]), N, M, d1, d2, W1t.T @ w2t, 0.5, 1.0)
    errs = []
    for P in (1_000, 100_000):
        X = np.sqrt(0.5) * rng.standard_normal((P, M))
        y = X @ W1t.T @ w2t
        net = K.Net(W1.copy(), w2.copy(), d1, d2, np.zeros(2))
        K.batch_update(
            net,
            X,
            y,
            np.arange(P),
            K.TrainConsts(K.LINEAR, 1.0, P, False),
            np.empty(N),
            np.empty(N),
            np.empty((N, M)),
            np.empty(N),
        )
        step = np.concatenate([(net.W1 - W1).ravel(), net.w2 - w2])
        errs.append(np.linalg.norm(step - v) / np.linalg.norm(v))
    assert errs[1] < 0.02
    assert errs[1] < errs[0] / 3  # ~ 1/sqrt(P): a factor 10 expected, 3 allowed for sampling noise
