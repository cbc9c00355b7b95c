"""CUBA benchmark (Brette et al. 2007; 4000 neurons, 1 s, dt 0.1 ms): neurodyn's Numba engine against a
plain NumPy implementation of the same network in the same run, plus process-start-to-result and Numba
compile times.

Usage::

    python benchmarks/bench_lif_cuba.py [--repeat 3] [--no-compile]

Reference figures (one core of this machine): Brian2 cython 0.91 s, Brian2
cpp_standalone 0.084 s (10.7 s with its build), a hand-written Numba kernel 0.072 s. The Brian2 side is
measured by ``benchmarks/bench_lif_brian2.py``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from neurodyn.families.lif_network import engine, kernels  # noqa: E402
from neurodyn.families.lif_network.build import build, current_kernel  # noqa: E402
from neurodyn.scenario import load_scenario  # noqa: E402
from neurodyn.stepping import Status  # noqa: E402

ISSUE_REFERENCE = {"Brian2 cython": 0.91, "Brian2 cpp_standalone": 0.084, "hand-written Numba": 0.072}


def numpy_cuba(net, dt: float, n_steps: int) -> tuple[int, float]:
    """The same CUBA network stepped with vectorised NumPy (same propagators, same schedule).

    Returns the spike count and the wall and CPU time of the time loop.
    """
    v = net.v0.copy()
    n = net.n
    tau_m = net.tau_m[0]
    dm = np.exp(-dt / tau_m)
    v_inf = net.v_rest + net.drive
    x = np.zeros((len(net.channels), n))
    decay = np.array([np.exp(-dt / ch.tau) for ch in net.channels])[:, None]
    kern = np.stack([current_kernel(dt, net.tau_m, ch.tau) for ch in net.channels])
    last = np.full(n, -(2**62))
    ref = net.ref_steps
    count = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for m in range(n_steps):
        vn = v_inf + (v - v_inf) * dm + (kern * x).sum(axis=0)
        x *= decay
        free = (m - last) >= ref
        v = np.where(free, vn, v)
        fired = np.flatnonzero(v >= net.v_threshold)
        for p in net.projections:
            src = fired[(fired >= p.pre_start) & (fired < p.pre_start + p.n_pre)] - p.pre_start
            if src.size:
                lo, hi = p.indptr[src], p.indptr[src + 1]
                tgt = np.concatenate([p.indices[a:b] for a, b in zip(lo, hi)])
                x[p.channel, p.post_start : p.post_start + p.n_post] += p.weight * np.bincount(tgt, minlength=p.n_post)
        v[fired] = net.v_reset[fired]
        last[fired] = m
        count += fired.size
    return count, time.perf_counter() - t0, time.process_time() - c0


def neurodyn_run(sc) -> tuple[int, float, float]:
    """Kernel-only run time (wall and CPU) of the whole 1 s (v of neurons 0-2 every 1 ms), after a warm-up call."""
    built = build(sc)
    args = (engine.new_state(built), built.neurons, built.synapses, built.inputs, engine.new_recording(built))
    rng = built.dynamics_rng()
    first = kernels.advance(0, 1, rng, *args)[2]  # compile / load from cache outside the timing
    w, c = time.perf_counter(), time.process_time()
    status, _, n_spk, _ = kernels.advance(1, sc.run.n_steps, rng, *args)
    assert status == Status.OK
    return first + n_spk, time.perf_counter() - w, time.process_time() - c


def cli_time(env: dict | None = None) -> tuple[float, float]:
    """Wall and CPU time of ``neurodyn run scenarios/cuba.yaml`` from process start to the result file."""
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "neurodyn.cli",
                "run",
                str(REPO / "scenarios" / "cuba.yaml"),
                "--output",
                str(Path(tmp) / "cuba.h5"),
                "--quiet",
            ],
            check=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert (Path(tmp) / "cuba.h5").exists()
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-compile", action="store_true", help="skip the cold-compile measurement")
    args = ap.parse_args()
    sc = load_scenario(REPO / "scenarios" / "cuba.yaml")
    print(
        f"CUBA: 4000 neurons, {sc.run.n_steps} steps of {sc.run.dt * 1e3:g} ms; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times suffer when it exceeds the cores)"
    )
    best = None
    for _ in range(args.repeat):
        n_spk, wall, cpu = neurodyn_run(sc)
        best = (n_spk, wall, cpu) if best is None or cpu < best[2] else best
    n_spk, nd_wall, nd_cpu = best
    print(f"neurodyn kernel: {nd_wall:.3f} s wall ({nd_cpu:.3f} s CPU), {n_spk} spikes (best of {args.repeat})")
    net = build(sc).network
    np_spk, np_wall, np_cpu = numpy_cuba(net, sc.run.dt, sc.run.n_steps)
    print(
        f"NumPy reference: {np_wall:.3f} s wall ({np_cpu:.3f} s CPU), {np_spk} spikes -> neurodyn is "
        f"{np_wall / nd_wall:.1f}x faster by wall time, {np_cpu / nd_cpu:.1f}x by CPU time"
    )
    for name, t in ISSUE_REFERENCE.items():
        print(
            f"  vs {name} ({t:.3f} s, reference): ratio {t / nd_wall:.2f} by wall time, {t / nd_cpu:.2f} by "
            "CPU time (>1: neurodyn faster; CPU time is the fair figure on a loaded machine)"
        )
    cli_time()  # make sure the cache is warm
    wall, cpu = min((cli_time() for _ in range(args.repeat)), key=lambda r: r[0])
    print(f"process start -> result file (warm cache): {wall:.2f} s wall, {cpu:.2f} s CPU")
    if not args.no_compile:
        with tempfile.TemporaryDirectory() as cache:
            cold = cli_time({"NUMBA_CACHE_DIR": cache})
            warm = cli_time({"NUMBA_CACHE_DIR": cache})
        print(
            f"Numba compile: cold run {cold[0]:.2f} s wall ({cold[1]:.2f} s CPU), cached run "
            f"{warm[0]:.2f} s wall ({warm[1]:.2f} s CPU) -> compile ~{cold[1] - warm[1]:.1f} s CPU"
        )


if __name__ == "__main__":
    main()
