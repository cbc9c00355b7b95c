"""Benchmark: CUBA (Brette et al. 2007; 4000 neurons, 1 s, dt 0.1 ms) in neurodyn and in Brian2.

All in one run, on the same network (``scenarios/cuba.yaml``, spikes recorded, no v probes):

* neurodyn, Numba engine: ``prepare`` (checks and network construction) plus ``simulate`` wall time with a
  warm Numba cache, and the ``simulate`` time minus the Dataset assembly (``make_dataset``: rates, ISI
  CVs, histograms), which is the part comparable with Brian2's run time (its time loop alone);
* Brian2 runtime, numpy target: run time of the time loop (``device._last_run_time``);
* Brian2 runtime, cython target: the same, after a first run has filled the Cython cache (that first
  run's total, including compilation, is printed too);
* Brian2 cpp_standalone (when g++ is present), in a fresh subprocess with a fresh build directory: the
  binary's run time, and the total including code generation and compilation.

Wall times and, beside them, CPU times of the same phases (``process_time``; for cpp_standalone the
binary's ``getrusage`` CPU time): on a shared machine the wall time of a short run mostly measures the
scheduler, the CPU time what the code costs. Ratios are printed for both.

Usage::

    python benchmarks/bench_lif_brian2.py [--duration 1] [--skip-numpy] [--skip-standalone]

Reference figures (one core of the reference machine): Brian2 cython 0.91 s of run time,
cpp_standalone 0.084 s run (10.7 s with build), hand-written Numba kernel 0.072 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REFERENCE = {
    "brian2 cython (run)": 0.91,
    "cpp_standalone (run)": 0.084,
    "cpp_standalone (with build)": 10.7,
    "hand-written numba": 0.072,
}


def cuba(duration: float):
    """The CUBA scenario with only spikes recorded."""
    from neurodyn.scenario import load_scenario

    sc = load_scenario(REPO / "scenarios" / "cuba.yaml")
    return sc.with_values({"record.v": None, "run.duration": f"{duration!r} s", "run.backend": "numba"})


class _Clock:
    """Wall time (``perf_counter``) and CPU time of this process (``process_time``) since creation."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall0, time.process_time() - self.cpu0


def bench_neurodyn(sc) -> dict[str, float]:
    """neurodyn (Numba): warm-up run (compiles or loads the cache), then a timed run."""
    from neurodyn.families.lif_network import LIFNetwork
    from neurodyn.families.lif_network.dataset import make_dataset
    from neurodyn.progress import QUIET

    family = LIFNetwork()
    c = _Clock()
    family.simulate(family.prepare(sc), QUIET)
    first, _ = c.stop()
    c = _Clock()
    built = family.prepare(sc)
    build, _ = c.stop()
    c = _Clock()
    ds = family.simulate(built, QUIET)
    sim, sim_cpu = c.stop()
    c = _Clock()
    make_dataset(built, ds.spike_time.values, ds.spike_index.values, None, None, None)
    assemble, assemble_cpu = c.stop()
    return {
        "first": first,
        "total": build + sim,
        "build": build,
        "assemble": assemble,
        "run": sim - assemble,
        "run_cpu": sim_cpu - assemble_cpu,
        "rate": float(ds.n_spikes.sum()) / (float(ds.population_size.sum()) * sc.run.duration),
    }


def bench_brian2_runtime(sc, target: str) -> dict[str, float]:
    """Brian2 runtime mode: build, run (incl. code generation), and the time loop alone.

    ``run`` is Brian2's own wall time of the loop; ``run_cpu`` the CPU time of a second ``run()`` of the
    same length on the same network (code objects then come from Brian2's caches, the loop dominates).
    """
    import brian2 as b2

    from neurodyn.families.lif_network.brian2_backend import brian2_seed, build_brian2
    from neurodyn.families.lif_network.build import build

    b2.prefs.codegen.target = target
    b2.seed(brian2_seed(sc.run.seed))
    c = _Clock()
    model = build_brian2(build(sc))
    build, _ = c.stop()
    c = _Clock()
    model["network"].run(sc.run.duration * b2.second, namespace={})
    total, _ = c.stop()
    run = float(b2.get_device()._last_run_time)
    rate = _mean_rate(model, sc)
    c = _Clock()
    model["network"].run(sc.run.duration * b2.second, namespace={})
    _, run_cpu = c.stop()
    return {"build": build, "total": total, "run": run, "run_cpu": run_cpu, "rate": rate}


def _mean_rate(model: dict, sc) -> float:
    """Mean rate over all neurons (Hz) from the Brian2 model's spike monitors."""
    n_spikes = sum(len(m.t) for m in model["spike_monitors"])
    return n_spikes / (sum(len(g) for g in model["groups"]) * sc.run.duration)


def standalone_child(duration: float, directory: str) -> None:
    """Run CUBA in cpp_standalone mode (called in a subprocess); prints JSON timings.

    Code generation and compilation (``device.build(run=False)``) are timed apart from running the
    binary; the binary's CPU time comes from ``getrusage(RUSAGE_CHILDREN)``.
    """
    import resource

    import brian2 as b2

    from neurodyn.families.lif_network.brian2_backend import brian2_seed, build_brian2
    from neurodyn.families.lif_network.build import build

    sc = cuba(duration)
    b2.set_device("cpp_standalone", directory=directory, build_on_run=False)
    t0 = time.perf_counter()
    b2.seed(brian2_seed(sc.run.seed))
    model = build_brian2(build(sc))
    model["network"].run(sc.run.duration * b2.second, namespace={})
    b2.device.build(directory=directory, compile=True, run=False)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b2.device.run(directory=directory, with_output=False)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = time.perf_counter() - t0
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    run = float(b2.device._last_run_time)
    print(json.dumps({"total": total, "run": run, "run_cpu": cpu, "rate": _mean_rate(model, sc)}))


def bench_standalone(duration: float) -> dict[str, float] | None:
    """cpp_standalone in a fresh interpreter and a fresh build directory (full compile)."""
    if shutil.which("g++") is None and shutil.which("c++") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="neurodyn_standalone_") as tmp:
        cmd = [sys.executable, __file__, "--standalone-child", tmp, "--duration", str(duration)]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
    if proc.returncode != 0:
        print("cpp_standalone failed:\n" + proc.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=1.0, help="simulated time in s (default 1)")
    ap.add_argument("--skip-numpy", action="store_true", help="skip Brian2's numpy target")
    ap.add_argument("--skip-standalone", action="store_true", help="skip Brian2 cpp_standalone")
    ap.add_argument("--standalone-child", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.standalone_child:
        standalone_child(args.duration, args.standalone_child)
        return

    import brian2 as b2

    sc = cuba(args.duration)
    print(
        f"CUBA: 4000 neurons, {args.duration:g} s, dt {sc.run.dt * 1e3:g} ms, brian2 {b2.__version__}, "
        f"{os.cpu_count()} cpus"
    )
    nan = float("nan")
    rows: list[tuple[str, float, float, str]] = []  # name, wall s, CPU s, note
    nd = bench_neurodyn(sc)
    rows.append(("neurodyn numba (run: time loop)", nd["run"], nd["run_cpu"], f"mean rate {nd['rate']:.3f} Hz"))
    rows.append(
        (
            "neurodyn numba (whole simulate call)",
            nd["total"],
            nan,
            f"network build {nd['build']:.3f} s, dataset {nd['assemble']:.3f} s, first call {nd['first']:.2f} s",
        )
    )
    if not args.skip_numpy:
        r = bench_brian2_runtime(sc, "numpy")
        rows.append(
            (
                "brian2 runtime numpy (run)",
                r["run"],
                r["run_cpu"],
                f"mean rate {r['rate']:.3f} Hz, build+codegen {r['build'] + r['total'] - r['run']:.2f} s",
            )
        )
    cold = bench_brian2_runtime(sc, "cython")
    warm = bench_brian2_runtime(sc, "cython")
    rows.append(
        (
            "brian2 runtime cython (run)",
            warm["run"],
            warm["run_cpu"],
            f"mean rate {warm['rate']:.3f} Hz, first run incl. compile/cache load "
            f"{cold['build'] + cold['total']:.1f} s",
        )
    )
    if not args.skip_standalone:
        st = bench_standalone(args.duration)
        if st is not None:
            rows.append(("brian2 cpp_standalone (run)", st["run"], st["run_cpu"], f"mean rate {st['rate']:.3f} Hz"))
            rows.append(("brian2 cpp_standalone (with build)", st["total"], nan, "fresh directory, full compile"))

    base = nd["run"]
    print(f"\n{'':46s} {'wall s':>8s} {'x neurodyn':>11s} {'CPU s':>8s}")
    for name, sec, cpu, note in rows:
        cpu_txt = f"{cpu:8.3f}" if cpu == cpu else f"{'-':>8s}"
        print(f"{name:46s} {sec:8.3f} {sec / base:11.1f} {cpu_txt}   {note}")
    ratios = [f"{name.split(' (')[0]} {cpu / nd['run_cpu']:.1f}x" for name, _, cpu, _ in rows[2:] if cpu == cpu]
    print(f"CPU-time ratios to neurodyn's loop ({nd['run_cpu']:.3f} s CPU): " + ", ".join(ratios))
    print("\nreference (one core of the reference machine):", ", ".join(f"{k} {v:g} s" for k, v in REFERENCE.items()))


if __name__ == "__main__":
    main()
