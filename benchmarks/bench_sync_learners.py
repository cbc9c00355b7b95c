"""Benchmark: learner-steps per second of the ``sync_learners`` Euler-Maruyama kernel against NumPy.

n = 1000 learners in d = 100 on a ring and on a complete graph, quadratic loss (H = I), one trial. The
NumPy reference is a straightforward vectorised Euler-Maruyama: scipy.sparse Laplacian product for the
ring, the mean for the complete graph (O(n d), as in the kernel), preallocated buffers, NumPy's own
``standard_normal(out=...)`` (its fastest path). The kernel records nothing (statistics sampled every 100
steps) and is timed with 1 thread and with Numba's default thread count (its output is the same for
both). Wall-clock time, best of ``--repeats`` interleaved repeats.

Run: ``python benchmarks/bench_sync_learners.py [--steps 300]``. Prints learner-steps/s and ratios.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit

# This checkout's neurodyn, not whichever one is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurodyn.families.sync_learners import kernels  # noqa: E402
from neurodyn.families.sync_learners.graphs import build_graph  # noqa: E402
from neurodyn.families.sync_learners.params import Topology  # noqa: E402
from neurodyn.families.sync_learners.rng import BATCH, new_streams, take_normals  # noqa: E402


def numpy_em(
    x: np.ndarray, lap, complete: bool, steps: int, dt: float, k: float, sigma: float, rng: np.random.Generator
) -> None:
    """Vectorised NumPy Euler-Maruyama for f = 1/2 ||x||^2 (in place)."""
    noise = np.empty_like(x)
    drift = np.empty_like(x)
    sq = sigma * math.sqrt(dt)
    n = x.shape[0]
    for _ in range(steps):
        if complete:
            # k sum_j (x_j - x_i) = k n (xbar - x_i)
            np.subtract(x.mean(axis=0, keepdims=True), x, out=drift)
            drift *= k * n
        else:
            drift[:] = lap @ x
            drift *= -k
        drift -= x
        rng.standard_normal(out=noise)
        noise *= sq
        drift *= dt
        x += drift
        x += noise


def bench_kernel(g, n: int, d: int, steps: int, dt: float, k: float, sigma: float) -> float:
    """Wall seconds of ``steps`` kernel steps (with Numba's current thread count)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, n, d))
    streams = new_streams(np.random.SeedSequence(1), kernels.n_streams(1, n, d))
    nblk = kernels.n_blocks(n, d)
    xn = np.empty_like(x)
    cw = g.complete_weight if math.isfinite(g.complete_weight) else 0.0
    coupling = kernels.Coupling(cw, *g.csr(), g.degree)
    empty2, empty1 = np.zeros((0, d)), np.zeros(0)
    loss = kernels.Loss(0, np.eye(d), True, np.zeros(d), np.zeros(1), empty2, empty1)
    em = kernels.EMStep(dt, k, sigma, 0.0)
    measure = kernels.Measure(0.0, np.zeros(d), False, empty2, empty1)
    schedule = kernels.Schedule(0, 100, 10**9)
    rec = kernels.Recording(
        np.zeros((1, kernels.N_COLS)),
        np.zeros(2, dtype=np.int64),
        np.zeros((1, 1, kernels.N_COLS)),
        np.zeros((1, 1, 1)),
    )
    wells = kernels.Wells(np.zeros((1, n + 1, d), dtype=np.int8), np.zeros((1, 2)))

    def call(nsteps: int) -> None:
        kernels.em_chunk(x, xn, streams, nblk, 0, nsteps, em, loss, coupling, measure, schedule, rec, wells)

    call(2)  # compile / load cache
    t0 = time.perf_counter()
    call(steps)
    return time.perf_counter() - t0


@njit(cache=True)
def _numba_normals(rng: np.random.Generator, out: np.ndarray, reps: int) -> None:
    for _ in range(reps):
        for i in range(out.size):
            out.flat[i] = rng.standard_normal()


@njit(cache=True)
def _block_normals(streams, out: np.ndarray, reps: int, bits) -> None:
    for _ in range(reps):
        take_normals(streams, 0, out, 0, out.size, bits)


def rng_floor(n: int, d: int, reps: int) -> tuple[float, float, float]:
    """Seconds per normal draw (one thread): Numba's Generator in a loop, the family's block stream
    (xoshiro256++ / ziggurat, :mod:`neurodyn.families.sync_learners.rng`), NumPy's ``standard_normal``."""
    out = np.empty(n * d)
    rng = np.random.default_rng(4)
    _numba_normals(rng, out, 1)
    t0 = time.perf_counter()
    _numba_normals(rng, out, reps)
    t_nb = (time.perf_counter() - t0) / (reps * out.size)
    st = new_streams(4, 1)
    bits = np.empty(BATCH, dtype=np.uint64)
    _block_normals(st, out, 1, bits)
    t0 = time.perf_counter()
    _block_normals(st, out, reps, bits)
    t_zig = (time.perf_counter() - t0) / (reps * out.size)
    t0 = time.perf_counter()
    for _ in range(reps):
        rng.standard_normal(out=out)
    return t_nb, t_zig, (time.perf_counter() - t0) / (reps * out.size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per side (best is reported)")
    args = ap.parse_args()
    n, d, steps, dt, k, sigma = args.n, args.d, args.steps, 1e-3, 1.0, 1.0
    print(f"n = {n}, d = {d}, {steps} steps; learner-steps/s (one learner in R^d advanced one step)")
    threads = sorted({1, numba.config.NUMBA_NUM_THREADS})
    for name in ("ring", "complete"):
        g = build_graph(Topology(generator=name), n, 0, "bench")
        x = np.random.default_rng(2).standard_normal((n, d))
        rng = np.random.default_rng(3)
        numpy_em(x, g.laplacian, name == "complete", 2, dt, k, sigma, rng)
        # interleave the repeats so a change in the machine's load hits both sides alike; best of each
        t_nb = {nt: math.inf for nt in threads}
        t_np = math.inf
        for _ in range(args.repeats):
            for nt in threads:
                numba.set_num_threads(nt)
                t_nb[nt] = min(t_nb[nt], bench_kernel(g, n, d, steps, dt, k, sigma))
            t0 = time.perf_counter()
            numpy_em(x, g.laplacian, name == "complete", steps, dt, k, sigma, rng)
            t_np = min(t_np, time.perf_counter() - t0)
        r_np = n * steps / t_np
        cols = "  ".join(f"numba[{nt} thr] {n * steps / t_nb[nt]:10.3e} ({t_np / t_nb[nt]:4.2f}x)" for nt in threads)
        print(f"  {name:9s} numpy {r_np:10.3e}  {cols}")
    numba.set_num_threads(threads[-1])
    t_nb, t_zig, t_np = rng_floor(n, d, 20)
    print(
        f"  Gaussian draws alone (1 thread): numba Generator {t_nb * 1e9:.2f} ns, block stream "
        f"{t_zig * 1e9:.2f} ns, numpy {t_np * 1e9:.2f} ns per draw"
    )


if __name__ == "__main__":
    main()
