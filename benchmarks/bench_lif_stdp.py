"""Benchmark: STDP on the Song, Miller & Abbott (2000) network, neurodyn against Brian2 cpp_standalone.

``scenarios/stdp_song.yaml``: 1,000 independent 15 Hz input trains onto two conductance-based neurons, each
through 1,000 plastic synapses (one neuron additive STDP, one multiplicative), dt 0.1 ms. Timed per
simulated second:

* neurodyn (Numba engine, ``run.threads: 1``): the chunked time loop (:func:`neurodyn.stepping.run_chunked`);
  its inputs are Bernoulli neurons (a fresh Gaussian potential every step), which draw one normal number
  per input and step;
* Brian2 cpp_standalone: the same network as Brian2's STDP example writes it (a ``PoissonGroup`` of 1,000
  at 15 Hz, the neurons with ``exact`` conductance dynamics integrated by ``exponential_euler``, ``Synapses``
  with event-driven traces and the same on_pre/on_post code as :mod:`neurodyn.families.lif_network.brian2_backend`),
  one thread; its own build directory kept across repeats, so only the first run compiles. *sim* is its
  ``_last_run_time`` (the binary's time loop).

Each run is a fresh process, the two alternated, best of ``--repeat`` (default 3); the load average is
printed beside the times (the machine is shared: rerun when it is high). The final mean weights of both
are printed as a sanity check (they agree statistically, not exactly: different random trains).

Usage::

    python benchmarks/bench_lif_stdp.py [--duration 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child_neurodyn(duration: float) -> dict[str, float]:
    from neurodyn.families.lif_network import LIFNetwork, engine
    from neurodyn.progress import QUIET
    from neurodyn.scenario import load_scenario

    loop = {"sim_wall": 0.0}
    original = engine.run_chunked

    def timed(*args, **kwargs):
        w = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            loop["sim_wall"] += time.perf_counter() - w

    engine.run_chunked = timed
    sc = load_scenario(REPO / "scenarios" / "stdp_song.yaml", ["run.threads=1", f"run.duration={duration} s"])
    family = LIFNetwork()
    ds = family.simulate(family.prepare(sc), QUIET)
    return {**loop, "w_add": float(ds.weight_final_mean[0]), "w_mult": float(ds.weight_final_mean[1])}


def child_brian2(duration: float, directory: str) -> dict[str, float]:
    import brian2 as b2

    b2.set_device("cpp_standalone", directory=directory, build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0
    b2.defaultclock.dt = 0.1 * b2.ms
    b2.seed(1)
    inputs = b2.PoissonGroup(1000, rates=15 * b2.Hz)
    eqs = """dv/dt = (v_rest - v + g / g_leak * (E_ex - v)) / tau_m : volt
dg/dt = -g / tau_e : siemens"""
    ns = {"v_rest": -74 * b2.mV, "g_leak": 10 * b2.nS, "E_ex": 0 * b2.mV, "tau_m": 10 * b2.ms, "tau_e": 5 * b2.ms}
    post = b2.NeuronGroup(2, eqs, threshold="v >= -54*mV", reset="v = -60*mV", method="exponential_euler", namespace=ns)
    post.v = -74 * b2.mV
    syns = []
    for k, (a_minus, f) in enumerate(((2.1, "1"), (4.0, "(w - w_min) / (w_max - w_min)"))):
        syn = b2.Synapses(
            inputs,
            post[k : k + 1],
            model="""w : 1
dapre/dt = -apre / tau_plus : 1 (event-driven)
dapost/dt = -apost / tau_minus : 1 (event-driven)""",
            on_pre=f"g_post += w * nS\nw = clip(w - A_minus * {f} * apost, w_min, w_max)\napre += 1",
            on_post="w = clip(w + A_plus * apre, w_min, w_max)\napost += 1",
            namespace={
                "tau_plus": 20 * b2.ms,
                "tau_minus": 20 * b2.ms,
                "A_plus": 0.002,
                "A_minus": a_minus * 1e-3,
                "w_min": 0.0,
                "w_max": 0.1,
            },
        )
        syn.connect()
        syn.w = 0.05
        syns.append(syn)
    net = b2.Network(inputs, post, *syns)
    net.run(duration * b2.second)
    b2.device.build(directory=directory, compile=True, run=True, with_output=False)
    return {
        "sim_wall": float(b2.device._last_run_time),
        "w_add": float(syns[0].w[:].mean()) * 1e-9,
        "w_mult": float(syns[1].w[:].mean()) * 1e-9,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0, help="simulated time per run (s)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", choices=["neurodyn", "brian2"], help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        out = child_neurodyn(args.duration) if args.child == "neurodyn" else child_brian2(args.duration, args.dir)
        print(json.dumps(out))
        return
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    best: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(args.repeat):
            for peer in ("neurodyn", "brian2"):
                cmd = [sys.executable, __file__, "--child", peer, "--duration", str(args.duration), "--dir", directory]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
                if proc.returncode != 0:
                    print(f"{peer}: failed\n{proc.stderr[-2000:]}")
                    continue
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                if peer not in best or res["sim_wall"] < best[peer]["sim_wall"]:
                    best[peer] = res
    load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    print(f"STDP, Song et al. (2000) network, {args.duration:g} s simulated, best of {args.repeat} ({load})")
    print(f"{'':24s}{'s per sim. s':>14s}{'mean w additive':>18s}{'mean w mult.':>15s}")
    for peer, res in best.items():
        per_s = res["sim_wall"] / args.duration
        print(f"{peer:24s}{per_s:14.4f}{res['w_add'] * 1e9:15.4f} nS{res['w_mult'] * 1e9:12.4f} nS")
    if len(best) == 2:
        print(f"ratio brian2 / neurodyn: {best['brian2']['sim_wall'] / best['neurodyn']['sim_wall']:.2f}")


if __name__ == "__main__":
    main()
