"""Benchmark of the cortical_field leapfrog kernel (plain script, not a test).

Site-updates per second of the undamped Störmer–Verlet lattice at 512 x 512 (periodic), for

* a NumPy-vectorised leapfrog (slices of a ghost-padded array) — the reference, same run;
* the Numba kernel on one thread (serial rows) and on two threads (rows in ``prange``);

then a 4096 x 4096 lattice in memory. The Numba results are checked against NumPy (same arithmetic
order up to rounding) and the 1- and 2-thread results against each other (bitwise).

Thread scaling depends on how idle OpenMP threads wait between the per-step parallel regions. neurodyn
sets ``OMP_WAIT_POLICY=PASSIVE`` (sleeping threads), right for a shared machine; on a dedicated machine
spinning threads (``OMP_WAIT_POLICY=ACTIVE``) scale better. The 1- vs 2-thread measurement is therefore
repeated in a child process with ``ACTIVE`` and both ratios are printed.

Run: ``python benchmarks/bench_cortical_field.py [--steps N]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np

# This checkout's neurodyn, not whichever one is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurodyn.families.cortical_field import kernels as K  # noqa: E402
from neurodyn.stepping import Status  # noqa: E402

OMEGA0 = 31.4159
KAPPA = 10000.0
DT = 1e-3


def numpy_leapfrog(u0: np.ndarray, steps: int) -> tuple[np.ndarray, float]:
    """Reference: ``u_{n+1} = 2 u_n - u_{n-1} + dt^2 (kappa lap u_n - m^2 u_n)`` with NumPy slices."""
    n = u0.shape[0]
    up = np.zeros((n + 2, n + 2))
    u = np.zeros((n + 2, n + 2))
    un = np.zeros((n + 2, n + 2))
    u[1:-1, 1:-1] = u0
    up[1:-1, 1:-1] = u0
    c = u[1:-1, 1:-1]
    t0 = time.perf_counter()
    for _ in range(steps):
        u[1:-1, 0] = u[1:-1, -2]
        u[1:-1, -1] = u[1:-1, 1]
        u[0, :] = u[-2, :]
        u[-1, :] = u[1, :]
        c = u[1:-1, 1:-1]
        lap = u[1:-1, :-2] + u[1:-1, 2:] + u[:-2, 1:-1] + u[2:, 1:-1] - 4.0 * c
        un[1:-1, 1:-1] = 2.0 * c - up[1:-1, 1:-1] + DT * DT * (KAPPA * lap - OMEGA0**2 * c)
        up, u, un = u, un, up
    return u[1:-1, 1:-1].copy(), time.perf_counter() - t0


@numba.njit(cache=True)
def _plain_loop(up: np.ndarray, u: np.ndarray, un: np.ndarray, steps: int, c1: float, c2: float) -> None:
    """The simplest Numba leapfrog (periodic wrap by index arithmetic): the "plain Numba loop" reference."""
    n = u.shape[0]
    for _ in range(steps):
        for j in range(n):
            jm = j - 1 if j > 0 else n - 1
            jp = j + 1 if j < n - 1 else 0
            for i in range(n):
                im = i - 1 if i > 0 else n - 1
                ip = i + 1 if i < n - 1 else 0
                c = u[j, i]
                un[j, i] = 2.0 * c - up[j, i] + c1 * (u[j, im] + u[j, ip] + u[jm, i] + u[jp, i] - 4.0 * c) - c2 * c
        up, u, un = u, un, up


def plain_numba(u0: np.ndarray, steps: int) -> float:
    """Wall time of :func:`_plain_loop` (compiled outside the timing)."""
    up, u, un = u0.copy(), u0.copy(), np.zeros_like(u0)
    _plain_loop(up.copy(), u.copy(), un.copy(), 1, DT * DT * KAPPA, DT * DT * OMEGA0**2)
    t0 = time.perf_counter()
    _plain_loop(up, u, un, steps, DT * DT * KAPPA, DT * DT * OMEGA0**2)
    return time.perf_counter() - t0


def numba_leapfrog(u0: np.ndarray, steps: int, parallel: bool) -> tuple[np.ndarray, float]:
    """The family's kernel ``stormer_run`` with no recording."""
    n = u0.shape[0]
    U = np.zeros((3, 1, n + 2, n + 2))
    U[1, 0, 1:-1, 1:-1] = u0
    U[0, 0, 1:-1, 1:-1] = u0
    lat = K.Consts(DT, np.array([KAPPA]), np.array([[OMEGA0**2]]), True, np.zeros((0, K.N_SRC_COLS)), parallel)
    co = K.StormerCoeffs(np.zeros(1), np.zeros((n + 2, n + 2)), False, np.zeros((1, 1, 1)))
    z4 = np.zeros((0, 1, 1, 1))
    zp = np.zeros((0, 3), dtype=np.int64)
    rec = K.Recording(z4, 0, zp, np.zeros((0, 0)), 0, np.zeros((0, 4)), 0, np.zeros((1, n + 2, 3)))

    def state(U: np.ndarray) -> K.StormerState:
        return K.StormerState(U, np.ones(1, dtype=np.int64), np.zeros((1, 1, 1)), np.zeros((1, n + 2)))

    K.stormer_run(state(U.copy()), 0, 2, lat, co, rec)  # compile / load from cache outside the timing
    st = state(U)
    t0 = time.perf_counter()
    status, *_ = K.stormer_run(st, 0, steps, lat, co, rec)
    wall = time.perf_counter() - t0
    assert status == Status.OK
    return U[st.level[0], 0, 1:-1, 1:-1].copy(), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400, help="steps at 512 x 512")
    ap.add_argument("--big-steps", type=int, default=10, help="steps at 4096 x 4096")
    ap.add_argument("--threads-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads_only:
        threads_only(args.steps)
        return
    rng = np.random.default_rng(0)
    n = 512
    u0 = rng.standard_normal((n, n))
    sites = n * n * args.steps
    ref, t_np = numpy_leapfrog(u0, args.steps)
    numba.set_num_threads(1)
    t_plain = plain_numba(u0, args.steps)
    one, t_1 = numba_leapfrog(u0, args.steps, parallel=False)
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(threads)
    two, t_2 = numba_leapfrog(u0, args.steps, parallel=True)
    print(
        f"512 x 512, {args.steps} steps, periodic, undamped (numba {numba.__version__}, "
        f"threading layer {numba.threading_layer()})"
    )
    print(f"  NumPy vectorised leapfrog : {sites / t_np:10.3e} site-updates/s")
    rate = sites / t_plain
    print(f"  plain Numba loop          : {rate:10.3e} site-updates/s  ({t_np / t_plain:5.2f}x NumPy)")
    print(f"  Numba, 1 thread           : {sites / t_1:10.3e} site-updates/s  ({t_np / t_1:5.2f}x NumPy)")
    print(
        f"  Numba, {threads} threads (prange) : {sites / t_2:10.3e} site-updates/s  "
        f"({t_1 / t_2:5.2f}x one thread; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')})"
    )
    print(
        f"  max |numba - numpy| = {np.max(np.abs(one - ref)):.2e} (field scale {np.max(np.abs(ref)):.2f}); "
        f"1 vs {threads} threads bitwise equal: {np.array_equal(one, two)}"
    )
    if os.environ.get("OMP_WAIT_POLICY", "").upper() != "ACTIVE":
        env = {**os.environ, "OMP_WAIT_POLICY": "ACTIVE"}
        out = subprocess.run(
            [sys.executable, __file__, "--threads-only", "--steps", str(args.steps)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        print(out.stdout.rstrip() or out.stderr.strip().splitlines()[-1])
    nb = 4096
    big = rng.standard_normal((nb, nb))
    out, t_big = numba_leapfrog(big, args.big_steps, parallel=threads > 1)
    print(
        f"4096 x 4096, {args.big_steps} steps: {nb * nb * args.big_steps / t_big:10.3e} site-updates/s, "
        f"state {3 * (nb + 2) ** 2 * 8 / 2**20:.0f} MB, finite: {bool(np.isfinite(out).all())}"
    )


def threads_only(steps: int) -> None:
    """1 vs 2 threads only (run in a child process with another OMP_WAIT_POLICY)."""
    u0 = np.random.default_rng(0).standard_normal((512, 512))
    numba.set_num_threads(1)
    one, t_1 = numba_leapfrog(u0, steps, parallel=False)
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    two, t_2 = numba_leapfrog(u0, steps, parallel=True)
    print(
        f"  with OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} (dedicated machine): 2 threads "
        f"{512 * 512 * steps / t_2:10.3e} site-updates/s ({t_1 / t_2:5.2f}x one thread), "
        f"bitwise equal: {np.array_equal(one, two)}"
    )


if __name__ == "__main__":
    main()
