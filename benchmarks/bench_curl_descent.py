"""Benchmark: the ``curl_descent`` Numba kernels against plain NumPy references of the same updates.

* mini-batch training in the authors' setting (tanh, M = 100, N = 10, B = 10, P = 500, one flipped readout
  unit, norm projection): ``kernels.train_epochs`` against the authors' update in NumPy matrix form
  (one BLAS thread), epochs per second;
* the population flow (linear, M = 20, N = 40, RK4): ``kernels.flow_run`` against the same RK4 in NumPy,
  steps per second.

Both pairs start from identical weights and see identical batches; the final weights are compared. Wall-clock
time, best of ``--repeats``.

Run: ``python benchmarks/bench_curl_descent.py [--epochs 50] [--steps 5000]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

# This checkout's neurodyn, not whichever one is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurodyn.families.curl_descent import engine  # noqa: E402
from neurodyn.families.curl_descent import kernels as K  # noqa: E402
from neurodyn.families.curl_descent.build import flips, teacher, teacher_output  # noqa: E402


def numpy_training(W1, w2, d1, d2, X, y, orders, eta, B):
    """The authors' update (col mode) in NumPy, tanh, with the projection to the initial norms."""
    W1, W2 = W1.copy(), w2.copy()[None, :]
    n1, n2 = np.linalg.norm(W1), np.linalg.norm(W2)
    D1, D2 = np.diag(d1), np.diag(d2)
    inputs = X.T
    for order in orders:
        shuffled = inputs[:, order]
        for s in range(0, inputs.shape[1], B):
            x = shuffled[:, s : s + B]
            a = W1 @ x
            h = np.tanh(a)
            e = np.tanh(W2 @ h) - y[order[s : s + B]][None, :]
            da1 = (W2.T @ e) * (1 - h**2)
            W2 = W2 - eta * (e @ h.T @ D2) / e.shape[1]
            W1 = W1 - eta * (da1 @ x.T @ D1) / da1.shape[1]
            W1 *= n1 / np.linalg.norm(W1)
            W2 *= n2 / np.linalg.norm(W2)
        # the kernel also evaluates the training and test errors after every epoch
        np.tanh(np.tanh(X @ W1.T) @ W2[0])
    return W1, W2[0]


def numpy_rk4(x, f, dt, n):
    for _ in range(n):
        k1 = f(x)
        k2 = f(x + dt / 2 * k1)
        k3 = f(x + dt / 2 * k2)
        k4 = f(x + dt * k3)
        x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)

    M, N, P, B = 100, 10, 500, 10
    W1t, w2t = teacher(rng, M, N)
    X = np.sqrt(0.5) * rng.standard_normal((P, M))
    y = teacher_output(W1t, w2t, X, K.TANH)
    W1 = rng.uniform(-2 / np.sqrt(M), 2 / np.sqrt(M), (N, M))
    w2 = rng.uniform(-2 / np.sqrt(N), 2 / np.sqrt(N), N)
    d1, d2 = np.ones(M), flips(N, 0.1)
    orders = np.stack([rng.permutation(P) for _ in range(args.epochs)]).astype(np.int64)
    eta = 0.1 * B / P
    c = K.TrainConsts(K.TANH, eta, B, True)
    norms = np.array([np.linalg.norm(W1), np.linalg.norm(w2)])

    def kernel_training():
        net = K.Net(W1.copy(), w2.copy(), d1, d2, norms)
        rec = K.TrainRec(np.zeros(args.epochs + 1), np.zeros(args.epochs + 1))
        K.train_epochs(net, K.Data(X, y, X[:100], y[:100]), c, orders, rec, 0)
        return net.W1, net.w2

    kernel_training()  # compile
    tk, (kW1, kw2) = best(kernel_training, args.repeats)
    with threadpool_limits(1):
        tn, (nW1, nw2) = best(lambda: numpy_training(W1, w2, d1, d2, X, y, orders, eta, B), args.repeats)
    err = max(np.abs(kW1 - nW1).max(), np.abs(kw2 - nw2).max())
    print(
        f"training (tanh, M={M}, N={N}, P={P}, B={B}): Numba {args.epochs / tk:.1f} epochs/s, "
        f"NumPy {args.epochs / tn:.1f} epochs/s, ratio {tn / tk:.2f}x; max weight difference {err:.1e}"
    )

    M, N = 20, 40
    W1t, w2t = teacher(rng, M, N)
    vstar = W1t.T @ w2t
    W1s, w2s = W1t + 1e-3 * rng.standard_normal((N, M)), w2t + 1e-3 * rng.standard_normal(N)
    d1, d2 = flips(M, 0.3), np.ones(N)
    fc = K.FlowConsts(d1, d2, vstar, 0.5, 1.0, 0.05, False, 1e6)

    def kernel_flow():
        st = engine.new_state(W1s, w2s)
        rec = engine.new_rec(st, fc, args.steps, 2)
        K.flow_run(st, fc, engine.new_work(N, M), rec, 0, args.steps)
        return np.concatenate([st.W1.ravel(), st.w2])

    def f(x):
        W, w = x[: N * M].reshape(N, M), x[N * M :]
        e = 0.5 * (W.T @ w - vstar)
        return np.concatenate([(-np.outer(w, e * d1)).ravel(), -d2 * (W @ e)])

    kernel_flow()
    tk, xk = best(kernel_flow, args.repeats)
    with threadpool_limits(1):
        tn, xn = best(lambda: numpy_rk4(np.concatenate([W1s.ravel(), w2s]), f, 0.05, args.steps), args.repeats)
    print(
        f"flow RK4 (M={M}, N={N}): Numba {args.steps / tk:.0f} steps/s, NumPy {args.steps / tn:.0f} steps/s, "
        f"ratio {tn / tk:.2f}x; max difference {np.abs(xk - xn).max():.1e}"
    )


if __name__ == "__main__":
    main()
