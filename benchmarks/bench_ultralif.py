"""Training time per epoch: Numba kernels against a plain NumPy vectorised implementation.

Digits (1347 training images), one hidden layer of 64, T = 10, batch 128, Bernoulli rate coding; the
same forward pass, exact backward pass and Adam update on both sides.
Run: ``python benchmarks/bench_ultralif.py [--kinds ultralif ultradlif lif] [--batches 128 16]``.
"""

from __future__ import annotations

import os

# One BLAS thread for the NumPy baseline: with several, OpenBLAS threads spin and the baseline's timing
# swings by 5x with the machine's load; single-threaded against single-threaded is the stable comparison.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

# benchmark the checkout this script lives in (``python benchmarks/...`` puts only benchmarks/ on the path,
# so an installed neurodyn elsewhere would be imported instead)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba  # noqa: E402
import numpy as np  # noqa: E402

from neurodyn.families.ultralif_network import kernels as K  # noqa: E402
from neurodyn.families.ultralif_network.build import NetSpec  # noqa: E402
from neurodyn.families.ultralif_network.data import load_digits_split, rate_encode  # noqa: E402
from neurodyn.families.ultralif_network.engine import Workspace, loss_and_grad  # noqa: E402
from neurodyn.families.ultralif_network.reference import loss_and_grad_numpy  # noqa: E402


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
    adam = K.Adam(m, v, mask, 0.9, 0.999, 1e-8, spec.log_eps_index(), float(np.log(0.1)), float(np.log(20.0)))
    ws = Workspace(spec, batch, T)
    order = rng.permutation(len(data.y_train))
    step = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        X = rate_encode(data.x_train[idx], T, 0.5, rng)
        step += 1
        if backend == "numba":
            _, g, ws = loss_and_grad(spec, p, X, data.y_train[idx], 0.0, ws=ws)
            K.adam_step(p, g, adam, 1e-3, step)
        else:
            _, g = loss_and_grad_numpy(spec, p, X, data.y_train[idx], 0.0)
            numpy_adam(p, g, m, v, mask.astype(bool), 1e-3, step)
    return time.perf_counter() - t0, time.process_time() - c0


def best_of(n, spec, data, backend, batch=128):
    """Best wall time and best CPU time (all threads) of ``n`` epochs; CPU time is the robust figure on a
    shared machine."""
    runs = [epoch(spec, data, backend, batch=batch) for _ in range(n)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def per_batch(spec, data, n=20, T=10, batch=128):
    """Best-of-``n`` wall and CPU time of one loss-and-gradient call (no encoding, no optimiser) on both
    sides: the part of the epoch the kernels do."""
    rng = np.random.default_rng(1)
    p = spec.init(rng, 1.0, 0.9)
    X = rate_encode(data.x_train[:batch], T, 0.5, rng)
    y = data.y_train[:batch]
    ws = Workspace(spec, batch, T)
    out = {}
    for name, call in (
        ("numpy", lambda: loss_and_grad_numpy(spec, p, X, y, 0.0)),
        ("numba", lambda: loss_and_grad(spec, p, X, y, 0.0, ws=ws)),
    ):
        call()
        runs = []
        for _ in range(n):
            t0, c0 = time.perf_counter(), time.process_time()
            call()
            runs.append((time.perf_counter() - t0, time.process_time() - c0))
        out[name] = (min(r[0] for r in runs), min(r[1] for r in runs))
    return out


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--kinds",
        nargs="+",
        default=["ultralif", "ultradlif", "lif"],
        help="neuron kinds to time (default: ultralif ultradlif lif)",
    )
    ap.add_argument("--batches", nargs="+", type=int, default=[128, 16], help="batch sizes (default: 128 16)")
    args = ap.parse_args()
    data = load_digits_split()
    print(
        f"digits train {len(data.y_train)}, hidden 64, T=10; numba threads available: "
        f"{numba.config.NUMBA_NUM_THREADS}; NumPy with one BLAS thread"
    )
    for batch in args.batches:
        print(f"batch {batch}")
        for kind in args.kinds:
            spec = NetSpec([64, 64, 10], kind)
            epoch(spec, data, "numba", batch=batch)  # compile
            t_np = best_of(5, spec, data, "numpy", batch)
            t_nb = best_of(5, spec, data, "numba", batch)
            numba.set_num_threads(1)
            t_nb1 = best_of(5, spec, data, "numba", batch)
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
            numba.set_num_threads(1)
            pb1 = per_batch(spec, data, batch=batch)
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
            for what, i in (("wall", 0), ("CPU ", 1)):
                print(
                    f"{kind if i == 0 else '':10s} {what}: numpy {t_np[i] * 1e3:7.1f} ms/epoch | "
                    f"numba {t_nb[i] * 1e3:6.1f} (x{t_np[i] / t_nb[i]:5.1f}) | "
                    f"numba 1 thread {t_nb1[i] * 1e3:6.1f} (x{t_np[i] / t_nb1[i]:5.1f}) | "
                    f"loss+grad only, 1 thread: numpy {pb1['numpy'][i] * 1e3:5.2f} ms, numba "
                    f"{pb1['numba'][i] * 1e3:5.2f} ms (x{pb1['numpy'][i] / pb1['numba'][i]:4.1f})"
                )


if __name__ == "__main__":
    main()
