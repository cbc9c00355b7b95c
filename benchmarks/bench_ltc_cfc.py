"""Benchmark: the ``ltc_cfc`` Numba kernels against plain NumPy, sequences per second.

Three models on the same sequence (T = 100 samples, M = 4 inputs, N hidden): the LTC network unfolded by
the fused solver (L = 6, the paper's setting), the same LTC under explicit Euler, and a CfC cell (backbone
128, ncps defaults). The NumPy references are vectorised over neurons and synapses (one ``(N, N)`` sigmoid
per sub-step for the LTC, matrix products for the CfC). ``ncps_reference.py`` compares with ``ncps``/PyTorch.
Wall-clock time, best of ``--repeats``.

Run: ``python benchmarks/bench_ltc_cfc.py [--neurons 32] [--repeats 5]``. Prints times and ratios.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

# This checkout's neurodyn, not whichever one is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurodyn.families.ltc_cfc import kernels as K  # noqa: E402
from neurodyn.families.ltc_cfc.build import draw_problem, stream  # noqa: E402
from neurodyn.families.ltc_cfc.params import Inputs, Network  # noqa: E402
from neurodyn.families.ltc_cfc.speed import random_cell  # noqa: E402


def sigmoid(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * u))


def numpy_ltc(net: K.Net, x0: np.ndarray, inputs: np.ndarray, elapsed: np.ndarray, L: int, fused: bool) -> np.ndarray:
    """The LTC network over the sequence, vectorised NumPy."""
    x = x0.copy()
    for inp, span in zip(inputs, elapsed):
        dt = span / L
        ss = net.Ws * sigmoid(net.sigs * (inp[:, None] - net.mus))
        gs, ds = ss.sum(0), (ss * net.Es).sum(0)
        for _ in range(L):
            s = net.W * sigmoid(net.sig * (x[:, None] - net.mu))
            g, d = s.sum(0) + gs, (s * net.E).sum(0) + ds
            if fused:
                x = (net.cm / dt * x + net.gl * net.vl + d) / (net.cm / dt + net.gl + g)
            else:
                x = x + dt * (net.gl * (net.vl - x) + d - g * x) / net.cm
    return x


def numpy_cfc(c: K.Cell, inputs: np.ndarray, elapsed: np.ndarray, N: int) -> np.ndarray:
    """The CfC cell (default mode, lecun-tanh backbone) over the sequence, NumPy."""
    x = np.zeros(N)
    for inp, t in zip(inputs, elapsed):
        z = 1.7159 * np.tanh(0.666 * (np.concatenate([inp, x]) @ c.Wbb + c.bbb))
        gate = sigmoid((z @ c.Wa + c.ba) * t + z @ c.Wb + c.bb)
        x = np.tanh(z @ c.W1 + c.b1) * (1 - gate) + gate * np.tanh(z @ c.W2 + c.b2)
    return x


def best(fn, repeats: int) -> float:
    fn()
    out = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    N, M, T, L = a.neurons, 4, 100, 6
    pr = draw_problem(Network(neurons=N, inputs=M), Inputs(samples=T, jitter=0.5), "sigmoid", 1, 0)
    cell = random_cell(M, N, 128, "default", "lecun_tanh", stream(0, 3))
    xs = np.empty((T, N))
    stats = np.zeros(len(K.STATS))

    def kernel_ltc(scheme: int):
        return lambda: K.unfold(
            pr.net, pr.bounds, pr.x0.copy(), pr.inputs, pr.elapsed, L, scheme, 0, T, xs, stats, np.inf
        )

    rows = []
    for name, scheme in (("fused LTC, L = 6", 0), ("Euler LTC, L = 6", 1)):
        tk = best(kernel_ltc(scheme), a.repeats)
        tn = best(lambda s=scheme: numpy_ltc(pr.net, pr.x0, pr.inputs, pr.elapsed, L, s == 0), a.repeats)
        rows.append((name, tk, tn))
    tk = best(lambda: K.cfc_sequence(cell, np.zeros(N), pr.inputs, pr.elapsed, xs), a.repeats)
    tn = best(lambda: numpy_cfc(cell, pr.inputs, pr.elapsed, N), a.repeats)
    rows.append(("CfC, backbone 128", tk, tn))
    print(f"N = {N}, M = {M}, T = {T}; wall time per sequence, best of {a.repeats}")
    print(f"{'model':<20} {'Numba (ms)':>11} {'NumPy (ms)':>11} {'NumPy/Numba':>12}")
    for name, tk, tn in rows:
        print(f"{name:<20} {tk * 1e3:>11.3f} {tn * 1e3:>11.3f} {tn / tk:>12.1f}")
    print(f"fused LTC / CfC (Numba): {rows[0][1] / rows[2][1]:.2f}x")
    print("ncps / PyTorch (outputs and timing): python benchmarks/ncps_reference.py")


if __name__ == "__main__":
    main()
