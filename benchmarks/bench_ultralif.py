"""Training time per epoch: Numba kernels against a plain NumPy vectorised implementation.

Digits (1347 training images), one hidden layer of 64, T = 10, batch 128, Bernoulli rate coding; the
same forward pass, exact backward pass and Adam update on both sides.
Run: ``python benchmarks/bench_ultralif.py``.
"""

from __future__ import annotations

import time

import numba
import numpy as np

from neurodyn.families.ultralif_network.data import load_digits_split, rate_encode
from neurodyn.families.ultralif_network.kernels import adam_step
from neurodyn.families.ultralif_network.network import NetSpec, Workspace, loss_and_grad
from neurodyn.families.ultralif_network.reference import loss_and_grad_numpy


def numpy_adam(p, g, m, v, mask, lr, step, b1=0.9, b2=0.999, e=1e-8):
    """Adam in NumPy (masked), the baseline's optimiser step."""
    m[:] = np.where(mask, b1 * m + (1 - b1) * g, m)
    v[:] = np.where(mask, b2 * v + (1 - b2) * g * g, v)
    upd = lr * (m / (1 - b1**step)) / (np.sqrt(v / (1 - b2**step)) + e)
    p -= np.where(mask, upd, 0.0)


def epoch(spec, data, backend, seed=0, T=10, batch=128):
    rng = np.random.default_rng(seed)
    p = spec.init(rng, 1.0, 0.9)
    mask = spec.train_mask(True)
    m, v = np.zeros_like(p), np.zeros_like(p)
    ws = Workspace(spec, batch, T)
    order = rng.permutation(len(data.y_train))
    step = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for s in range(0, len(order), batch):
        idx = order[s:s + batch]
        X = rate_encode(data.x_train[idx], T, 0.5, rng)
        step += 1
        if backend == "numba":
            _, g, ws = loss_and_grad(spec, p, X, data.y_train[idx], 0.0, ws=ws)
            adam_step(p, g, m, v, mask, 1e-3, 0.9, 0.999, 1e-8, step, spec.log_eps_index(), np.log(0.1),
                      np.log(20.0))
        else:
            _, g = loss_and_grad_numpy(spec, p, X, data.y_train[idx], 0.0)
            numpy_adam(p, g, m, v, mask.astype(bool), 1e-3, step)
    return time.perf_counter() - t0, time.process_time() - c0


def best_of(n, spec, data, backend):
    """Best wall time and best CPU time (all threads) of ``n`` epochs; CPU time is the robust figure on a
    shared machine."""
    runs = [epoch(spec, data, backend) for _ in range(n)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def main() -> None:
    data = load_digits_split()
    print(f"digits train {len(data.y_train)}, hidden 64, T=10, batch 128; numba threads available: "
          f"{numba.config.NUMBA_NUM_THREADS}")
    for kind in ("ultralif", "ultradlif", "lif"):
        spec = NetSpec([64, 64, 10], kind)
        epoch(spec, data, "numba")  # compile
        t_np = best_of(3, spec, data, "numpy")
        t_nb = best_of(3, spec, data, "numba")
        numba.set_num_threads(1)
        t_nb1 = best_of(3, spec, data, "numba")
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        for what, i in (("wall", 0), ("CPU ", 1)):
            print(f"{kind if i == 0 else '':10s} {what}: numpy {t_np[i] * 1e3:7.1f} ms/epoch | "
                  f"numba {t_nb[i] * 1e3:6.1f} (x{t_np[i] / t_nb[i]:5.1f}) | "
                  f"numba 1 thread {t_nb1[i] * 1e3:6.1f} (x{t_np[i] / t_nb1[i]:5.1f})")

if __name__ == "__main__":
    main()
