"""Benchmark: one EP training epoch on digits (64-500-10), Numba kernel vs a NumPy/BLAS batched EP.

Both run the same algorithm (Scellier & Bengio 2017 hyperparameters: minibatch 20, 20 free and 4 nudged
steps of eps = 0.5, beta = 0.5 with random sign, persistent particles, lr (0.1, 0.05)), from the same
weights, example order and signs, so their weights after the epoch must agree to rounding. Prints epoch
times, their ratio and relaxation steps per second.

Run: ``python benchmarks/bench_eqprop.py [--epochs 3] [--hidden 500]``
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

from neurodyn.families.eqprop import kernels as K  # noqa: E402
from neurodyn.families.eqprop.build import glorot_uniform, load_digits, make_layout, per_unit_bias_rates  # noqa: E402
from neurodyn.families.eqprop.params import Data  # noqa: E402


def numpy_epoch(X, D, particles, perm, signs, batch, Ws, bs, lr, beta, eps, n_free, n_nudged):
    """The same EP epoch written with NumPy arrays per layer (hard sigmoid, squared error)."""
    L = len(Ws)  # number of weight matrices; layers 0..L

    def relax(S, Xb, Db, beta_, n):
        drive = Ws[0].T @ Xb + bs[0][:, None]
        for _ in range(n):
            R = [Xb] + [np.clip(s, 0.0, 1.0) for s in S]
            new = []
            for k in range(1, L + 1):
                u = drive if k == 1 else Ws[k - 1].T @ R[k - 1] + bs[k - 1][:, None]
                if k < L:
                    u = u + Ws[k] @ R[k + 1]
                s = S[k - 1]
                g = s - ((s >= 0.0) & (s <= 1.0)) * u
                if k == L and beta_ != 0.0:
                    g = g + beta_ * (s - Db)
                new.append(np.clip(s - eps * g, 0.0, 1.0))
            S = new
        return S

    sizes = [W.shape[1] for W in Ws]
    offs = np.cumsum([X.shape[0]] + sizes)
    for bi in range(len(perm) // batch):
        idx = perm[bi * batch : (bi + 1) * batch]
        Xb, Db = X[:, idx], D[:, idx]
        S0 = [particles[offs[k] : offs[k + 1], idx] for k in range(L)]
        S0 = relax(S0, Xb, Db, 0.0, n_free)
        for k in range(L):
            particles[offs[k] : offs[k + 1], idx] = S0[k]
        b_ = beta * signs[bi]
        Sb = relax(S0, Xb, Db, b_, n_nudged)
        R0 = [Xb] + [np.clip(s, 0, 1) for s in S0]
        Rb = [Xb] + [np.clip(s, 0, 1) for s in Sb]
        for k in range(L):
            Ws[k] += lr[k] / b_ * (Rb[k] @ Rb[k + 1].T - R0[k] @ R0[k + 1].T) / batch
            bs[k] += lr[k] / b_ * (Rb[k + 1] - R0[k + 1]).sum(1) / batch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=500)
    args = ap.parse_args()
    layers = [64, args.hidden, 10]
    lay = make_layout(layers)
    X, D, *_ = load_digits(Data())
    n = X.shape[1]
    batch, n_free, n_nudged, eps, beta, lr = 20, 20, 4, 0.5, 0.5, [0.1, 0.05]
    rng = np.random.default_rng(0)
    Wf0, bf0 = glorot_uniform(lay, rng)
    lr_b = per_unit_bias_rates(lay, lr)
    n_batches = n // batch
    steps_per_epoch = n_batches * (n_free + n_nudged)

    Wf, bf = Wf0.copy(), bf0.copy()
    Ws = [W.copy() for W in lay.weights(Wf0)]
    bs = [b.copy() for b in lay.biases(bf0)]
    p_nb = np.zeros((lay.n_units, n))
    p_np = np.zeros((lay.n_units, n))
    t_nb, t_np = [], []
    net = K.Net(Wf, bf, lay.woff, lay.off, K.RHO_HARD_SIGMOID, K.COST_MSE)
    data = K.Examples(X, D)
    rates = K.Rates(np.asarray(lr), lr_b)
    schedule = K.EPSchedule(batch, beta, False, eps, n_free, n_nudged, 0.0, True)
    with threadpool_limits(limits=1, user_api="blas"):
        # compile (or load from cache) outside the timing
        K.train_epoch(
            K.Net(Wf0.copy(), bf0.copy(), lay.woff, lay.off, K.RHO_HARD_SIGMOID, K.COST_MSE),
            data,
            np.zeros_like(p_nb),
            np.arange(n),
            np.ones(n_batches),
            rates,
            schedule,
            np.zeros((n_batches, 5)),
        )
        for _ in range(args.epochs):
            perm = rng.permutation(n).astype(np.int64)
            signs = rng.choice(np.array([-1.0, 1.0]), size=n_batches)
            t0 = time.perf_counter()
            K.train_epoch(net, data, p_nb, perm, signs, rates, schedule, np.zeros((n_batches, 5)))
            t_nb.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            numpy_epoch(X, D, p_np, perm, signs, batch, Ws, bs, lr, beta, eps, n_free, n_nudged)
            t_np.append(time.perf_counter() - t0)
    diff = max(np.abs(W - Wn).max() for W, Wn in zip(lay.weights(Wf), Ws))
    nb, npy = float(np.median(t_nb)), float(np.median(t_np))
    print(
        f"EP epoch on digits, layers {layers}, {n} examples, minibatch {batch}, "
        f"{n_free}+{n_nudged} relaxation steps, single BLAS thread, median of {args.epochs} epochs"
    )
    print(
        f"  numba kernel : {nb * 1e3:8.1f} ms/epoch  {steps_per_epoch / nb:10.0f} batched steps/s  "
        f"{steps_per_epoch * batch / nb:12.0f} example-steps/s"
    )
    print(
        f"  numpy/BLAS   : {npy * 1e3:8.1f} ms/epoch  {steps_per_epoch / npy:10.0f} batched steps/s  "
        f"{steps_per_epoch * batch / npy:12.0f} example-steps/s"
    )
    print(f"  speed-up numba / numpy: {npy / nb:.2f}x (target >= 1)")
    print(f"  max |W_numba - W_numpy| after {args.epochs} epochs: {diff:.2e}")


if __name__ == "__main__":
    main()
