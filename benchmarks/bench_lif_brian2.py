"""Benchmark: CUBA (Brette et al. 2007; 4000 neurons, 1 s, dt 0.1 ms) in neurodyn and in Brian2.

All in one run, on the same network (``scenarios/cuba.yaml``, spikes recorded, no v probes):

* neurodyn, Numba engine: ``simulate`` wall time with a warm Numba cache, and that time minus the network
  construction (``build_network``) and the Dataset assembly (``make_dataset``: rates, ISI CVs,
  histograms), which is the part comparable with Brian2's run time (its time loop alone);
* Brian2 runtime, numpy target: run time of the time loop (``device._last_run_time``);
* Brian2 runtime, cython target: the same, after a first run has filled the Cython cache (that first
  run's total, including compilation, is printed too);
* Brian2 cpp_standalone (when g++ is present), in a fresh subprocess with a fresh build directory: the
  binary's run time, and the total including code generation and compilation.

Usage::

    python benchmarks/bench_lif_brian2.py [--duration 1] [--skip-numpy] [--skip-standalone]

The issue's reference figures (one core of the reference machine): Brian2 cython 0.91 s of run time,
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

REFERENCE = {"brian2 cython (run)": 0.91, "cpp_standalone (run)": 0.084, "cpp_standalone (with build)": 10.7,
             "hand-written numba": 0.072}


def cuba(duration: float):
    """The CUBA scenario with only spikes recorded."""
    from neurodyn.scenario import load_scenario

    sc = load_scenario(REPO / "scenarios" / "cuba.yaml")
    return sc.with_values({"record.v": None, "run.duration": duration, "run.backend": "numba"})


def bench_neurodyn(sc) -> dict[str, float]:
    """neurodyn (Numba): warm-up run (compiles or loads the cache), then a timed run."""
    from neurodyn.families.lif_network import LIFNetwork
    from neurodyn.families.lif_network.dataset import make_dataset
    from neurodyn.families.lif_network.network import build_network
    from neurodyn.progress import QUIET

    family = LIFNetwork()
    t0 = time.perf_counter()
    family.simulate(sc, QUIET)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = family.simulate(sc, QUIET)
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_network(sc)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    make_dataset(sc, ds.spike_time.values, ds.spike_index.values, None, None, None)
    assemble = time.perf_counter() - t0
    return {"first": first, "total": total, "build": build, "assemble": assemble,
            "run": total - build - assemble,
            "rate": float(ds.n_spikes.sum()) / (float(ds.population_size.sum()) * sc.run.duration)}


def bench_brian2_runtime(sc, target: str) -> dict[str, float]:
    """Brian2 runtime mode: build, run (incl. code generation), and the time loop alone."""
    import brian2 as b2

    from neurodyn.families.lif_network.brian2_backend import brian2_seed, build_brian2

    b2.prefs.codegen.target = target
    b2.seed(brian2_seed(sc.run.seed))
    t0 = time.perf_counter()
    model = build_brian2(sc)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    model["network"].run(sc.run.duration * b2.second, namespace={})
    total = time.perf_counter() - t0
    return {"build": build, "total": total, "run": float(b2.get_device()._last_run_time),
            "rate": _mean_rate(model, sc)}


def _mean_rate(model: dict, sc) -> float:
    """Mean rate over all neurons (Hz) from the Brian2 model's spike monitors."""
    n_spikes = sum(len(m.t) for m in model["spike_monitors"])
    return n_spikes / (sum(len(g) for g in model["groups"]) * sc.run.duration)


def standalone_child(duration: float, directory: str) -> None:
    """Run CUBA in cpp_standalone mode (called in a subprocess); prints JSON timings."""
    import brian2 as b2

    from neurodyn.families.lif_network.brian2_backend import brian2_seed, build_brian2

    sc = cuba(duration)
    b2.set_device("cpp_standalone", directory=directory, build_on_run=True)
    t0 = time.perf_counter()
    b2.seed(brian2_seed(sc.run.seed))
    model = build_brian2(sc)
    model["network"].run(sc.run.duration * b2.second, namespace={})
    total = time.perf_counter() - t0
    run = float(b2.device._last_run_time)
    print(json.dumps({"total": total, "run": run, "rate": _mean_rate(model, sc)}))


def bench_standalone(duration: float) -> dict[str, float] | None:
    """cpp_standalone in a fresh interpreter and a fresh build directory (full compile)."""
    if shutil.which("g++") is None and shutil.which("c++") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="neurodyn_standalone_") as tmp:
        cmd = [sys.executable, __file__, "--standalone-child", tmp, "--duration", str(duration)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
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
    print(f"CUBA: 4000 neurons, {args.duration:g} s, dt {sc.run.dt * 1e3:g} ms, brian2 {b2.__version__}, "
          f"{os.cpu_count()} cpus")
    rows: list[tuple[str, float, str]] = []
    nd = bench_neurodyn(sc)
    rows.append(("neurodyn numba (run: time loop)", nd["run"], f"mean rate {nd['rate']:.3f} Hz"))
    rows.append(("neurodyn numba (whole simulate call)", nd["total"], f"network build {nd['build']:.3f} s, "
                 f"dataset {nd['assemble']:.3f} s, first call {nd['first']:.2f} s"))
    if not args.skip_numpy:
        r = bench_brian2_runtime(sc, "numpy")
        rows.append(("brian2 runtime numpy (run)", r["run"], f"mean rate {r['rate']:.3f} Hz, "
                     f"build+codegen {r['build'] + r['total'] - r['run']:.2f} s"))
    cold = bench_brian2_runtime(sc, "cython")
    warm = bench_brian2_runtime(sc, "cython")
    rows.append(("brian2 runtime cython (run)", warm["run"], f"mean rate {warm['rate']:.3f} Hz, first run "
                 f"incl. compile/cache load {cold['build'] + cold['total']:.1f} s"))
    if not args.skip_standalone:
        st = bench_standalone(args.duration)
        if st is not None:
            rows.append(("brian2 cpp_standalone (run)", st["run"], f"mean rate {st['rate']:.3f} Hz"))
            rows.append(("brian2 cpp_standalone (with build)", st["total"], "fresh directory, full compile"))

    base = nd["run"]
    print(f"\n{'':46s} {'seconds':>9s} {'x neurodyn':>11s}")
    for name, sec, note in rows:
        print(f"{name:46s} {sec:9.3f} {sec / base:11.1f}   {note}")
    print("\nreference (issue, one core):", ", ".join(f"{k} {v:g} s" for k, v in REFERENCE.items()))


if __name__ == "__main__":
    main()
