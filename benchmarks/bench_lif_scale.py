"""Scaling series: Brunel-type E/I networks of 1e4, 1e5 and 1e6 LIF neurons with in-degree 1,000.

Each size runs in its own fresh process (so its peak resident memory is its own) and reports the memory
estimate made before anything is allocated, the build time, the peak RSS per synapse, and the time per
simulated second of the Numba engine; the parent prints the table and the growth exponent of each
quantity against the number of neurons (the slope of a least-squares line through log-log points).

The network is Brunel's (2000) model A as in ``scenarios/brunel.yaml`` (g = 5, nu_ext = 2 nu_thr, delay
1.5 ms), 80 % excitatory, in-degree ``C = C_E + C_I`` with ``C_E = 0.8 C``, and J scaled so that
``J C_E = 100 mV`` as with Brunel's C_E = 1000; ``scenarios/brunel_million.yaml`` is the 1e6 network.

Usage::

    python benchmarks/bench_lif_scale.py                       # the series 1e4, 1e5, 1e6 (1e6 needs ~5 GiB)
    python benchmarks/bench_lif_scale.py --series 10000,100000 --duration 0.2
    python benchmarks/bench_lif_scale.py --neurons 100000      # one size, in this process
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def peak_rss() -> int:
    """Peak resident set size of this process in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def brunel_params(neurons: int, in_degree: int) -> dict:
    """``models/brunel.yaml`` scaled to ``neurons`` neurons and in-degree ``in_degree`` (80 % excitatory)."""
    import yaml

    n_e, c_e = int(0.8 * neurons), int(0.8 * in_degree)
    c_i = in_degree - c_e
    j = 0.1 * 1000 / c_e  # mV: J C_E = 100 mV as with C_E = 1000, J = 0.1 mV
    w = j * 20 / 0.5  # the exponential synapse's jump carrying J (tau_m 20 ms, tau 0.5 ms)
    params = yaml.safe_load((REPO / "models" / "brunel.yaml").read_text())
    params["populations"]["exc"]["size"], params["populations"]["inh"]["size"] = n_e, neurons - n_e
    exc, inh = params["synapses"]
    exc["connect"]["in_degree"], inh["connect"]["in_degree"] = c_e, c_i
    exc["weight"], inh["weight"] = f"{w:g} mV", f"{-5 * w:g} mV"
    params["inputs"][0].update(n_sources=c_e, weight=f"{w:g} mV")
    return params


def measure(neurons: int, in_degree: int, duration: float) -> dict:
    """Build and run one network in this process; sizes in bytes, times in seconds."""
    import numpy as np

    from neurodyn.families.lif_network import engine, kernels
    from neurodyn.families.lif_network.build import build, estimate_parts
    from neurodyn.scenario import from_dict

    def scenario(n: int, k: int, seconds: float):
        return from_dict(
            {
                "name": "scale",
                "family": "lif_network",
                "params": brunel_params(n, k),
                "run": {"duration": f"{seconds * 1e3:g} ms", "dt": "0.1 ms", "seed": 1},
                "record": {"spikes": False},
            }
        )

    # compile or load every kernel on a small network first: the series measures the build, not Numba
    small = build(scenario(1000, 100, 0.001))
    rec = engine.new_recording(small)
    kernels.advance(0, small.scenario.run.n_steps, small.dynamics_rng(), engine.new_state(small), small.neurons,
                    small.synapses, small.inputs, rec)  # fmt: skip
    del small, rec
    sc = scenario(neurons, in_degree, duration)
    parts = estimate_parts(sc.params, sc.run, sc.record)
    rss_before = peak_rss()
    t0, c0 = time.perf_counter(), time.process_time()
    built = build(sc)
    t_build, cpu_build = time.perf_counter() - t0, time.process_time() - c0
    rss_build = peak_rss()
    n_syn = built.network.n_synapses
    state, rec = engine.new_state(built), engine.new_recording(built)
    rng = built.dynamics_rng()
    n_steps = sc.run.n_steps
    w0, c0 = time.perf_counter(), time.process_time()
    m, n_spikes = 0, 0
    while m < n_steps:  # the engine's loop: advance until the spike buffer is full, drain it, go on
        status, m, n_spk, _ = kernels.advance(m, n_steps, rng, state, built.neurons, built.synapses, built.inputs, rec)
        n_spikes += int(n_spk)
        if status == 1:  # Status.NAN (2, a full spike buffer, only means: drained, go on)
            raise RuntimeError(f"non-finite state at step {m}")
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {
        "neurons": neurons,
        "synapses": int(n_syn),
        "estimate": float(sum(parts.values())),
        "estimate_parts": parts,
        "rss_imports": rss_before,
        "rss_build": rss_build,
        "rss_peak": peak_rss(),
        "build_s": t_build,
        "build_cpu_s": cpu_build,
        "run_wall_s": wall / duration,
        "run_cpu_s": cpu / duration,
        "rate_hz": n_spikes / (neurons * duration),
        "csr_bytes": int(built.network.indices.nbytes + sum(p.indptr.nbytes for p in built.network.projections)),
        "finite": bool(np.isfinite(state.v).all()),
    }


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) against log(x)."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def series(sizes: list[int], in_degree: int, duration: float) -> None:
    rows = []
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--neurons", str(n), "--in-degree", str(in_degree), "--duration", str(duration),
             "--json"],
            capture_output=True, text=True, cwd=REPO,
        )  # fmt: skip
        if proc.returncode != 0:
            sys.exit(proc.stderr)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"  done: {n} neurons", file=sys.stderr)
    load = os.getloadavg()
    gib = 2**30
    print(f"in-degree {in_degree}, {duration:g} s simulated, dt 0.1 ms, one thread; load average {load[0]:.1f} "
          f"{load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print("| neurons | synapses | estimate | peak RSS | peak RSS / synapse | build (wall / CPU) | build CPU / syn. | "
          "run per simulated s (wall / CPU) | rate |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['neurons']:.0e} | {r['synapses']:.3g} | {r['estimate'] / gib:.3g} GiB | "
            f"{r['rss_peak'] / gib:.3g} GiB | "
            f"{r['rss_peak'] / r['synapses']:.2f} B ({(r['rss_peak'] - r['rss_imports']) / r['synapses']:.2f} B "
            f"above the imports) | {r['build_s']:.2f} / {r['build_cpu_s']:.2f} s | "
            f"{r['build_cpu_s'] / r['synapses'] * 1e9:.1f} ns | "
            f"{r['run_wall_s']:.2f} / {r['run_cpu_s']:.2f} s | {r['rate_hz']:.1f} Hz |"
        )
    if len(rows) > 1:
        ns = [r["neurons"] for r in rows]
        print("growth exponents (log-log slope against neurons):")
        for key, what in (
            ("build_cpu_s", "build CPU time"),
            ("run_cpu_s", "CPU time per simulated second"),
            ("rss_peak", "peak RSS"),
            ("synapses", "synapses"),
        ):
            print(f"  {what}: {slope(ns, [r[key] for r in rows]):.2f}")
    for r in rows:
        extra = (r["rss_peak"] - r["rss_imports"]) / r["estimate"]
        print(
            f"{r['neurons']:.0e}: estimate {r['estimate'] / gib:.3g} GiB vs peak RSS above the imported interpreter "
            f"{(r['rss_peak'] - r['rss_imports']) / gib:.3g} GiB (x{extra:.2f}); interpreter "
            f"{r['rss_imports'] / 2**20:.0f} MiB"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", default="10000,100000,1000000", help="comma-separated sizes, one process each")
    ap.add_argument("--neurons", type=int, help="measure one size in this process")
    ap.add_argument("--in-degree", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=1.0, help="simulated seconds")
    ap.add_argument("--json", action="store_true", help="with --neurons: print one JSON line")
    args = ap.parse_args()
    if args.neurons:
        r = measure(args.neurons, args.in_degree, args.duration)
        print(json.dumps(r) if args.json else json.dumps(r, indent=1))
    else:
        series([int(float(s)) for s in args.series.split(",")], args.in_degree, args.duration)


if __name__ == "__main__":
    main()
