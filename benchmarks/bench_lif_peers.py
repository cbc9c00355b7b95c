"""Benchmark: neurodyn's LIF kernel against its peers (CUBA, COBA) and against itself in threads.

**Peers.** CUBA and COBA (Brette et al. 2007; ``scenarios/cuba.yaml``, ``scenarios/coba.yaml``: 4000
neurons, 1 s, dt 0.1 ms, spikes recorded, no probes) in

* neurodyn (Numba engine, ``run.threads: 1``),
* Brian2 cpp_standalone (its own build directory per scenario, kept across repeats, so the first run
  compiles and later ones rebuild nothing),
* Brian2 runtime with the cython target (warm cache; the loop of a second ``run()`` of the same network),
* NEST (``run.backend: nest``, ``local_num_threads`` 1; NEST draws its own network, statistically the same),

each run in a fresh process with one thread (``NUMBA_NUM_THREADS=OMP_NUM_THREADS=1``), the peers
alternated, best of ``--repeat`` (default 3). *sim* is the time loop alone: neurodyn's and NEST's chunked
loop (:func:`neurodyn.stepping.run_chunked`), Brian2's ``_last_run_time`` (its CPU column for
cpp_standalone is the binary's whole CPU time, start-up and result writing included, and for cython the
CPU time of the ``run()`` call); *total* is the whole process from interpreter start to exit (for
cpp_standalone: code generation, compilation when needed, and the binary). Peers that are not installed
are skipped with a note. Ratios are peer / neurodyn (> 1: neurodyn faster).

**Threads.** A 64,000-neuron CUBA network with in-degree 80 (CUBA's 4000 neurons and ``p = 0.02``
scaled up at the same in-degree) and, with ``--scale``, the 1e5 x 1e3 Brunel network of
``bench_lif_scale.py`` (about 1 GB, a minute to wire) run with 1 and 2 threads, alternated in one
process on one build, best of 3; the runs must be bitwise identical (checked). The load average, Numba's
threading layer and ``OMP_WAIT_POLICY`` are printed with the times: on a loaded machine a thread that
waits for a core at the per-step barrier makes the other wait too.

The machine is shared and noisy: compare the ratios within one run, and rerun when the load average
printed beside them is high.

Usage::

    python benchmarks/bench_lif_peers.py [--repeat 3] [--duration 1] [--peers ...] [--skip-threads] [--scale]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS = ("neurodyn", "brian2-standalone", "brian2-cython", "nest")
#: run.seed of the peer comparison: COBA's activity, started by the initial potentials alone, dies out in
#: about half of NEST's networks; with seed 2 it lasts in every simulator
SEED = 2


def _load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _scenario(name: str, duration: float, backend: str = "numba"):
    from neurodyn.scenario import load_scenario

    return load_scenario(
        REPO / "scenarios" / f"{name}.yaml",
        [f"run.backend={backend}", "run.threads=1", "record.v=null", f"run.duration={duration} s", f"run.seed={SEED}"],
    )


def _rate(n_spikes: float, n: int, duration: float) -> float:
    return n_spikes / (n * duration)


# ----------------------------------------------------------------------------- one peer, in a fresh process


def child_engine(name: str, backend: str, duration: float) -> dict[str, float]:
    """neurodyn or NEST through the family: the chunked time loop timed (both backends drive it)."""
    from neurodyn import stepping
    from neurodyn.families.lif_network import LIFNetwork
    from neurodyn.progress import QUIET

    loop = {"sim_wall": 0.0, "sim_cpu": 0.0}
    original = stepping.run_chunked

    def timed(*args, **kwargs):
        w, c = time.perf_counter(), time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            loop["sim_wall"] += time.perf_counter() - w
            loop["sim_cpu"] += time.process_time() - c

    if backend == "nest":
        from neurodyn.families.lif_network import nest_backend as module
    else:
        from neurodyn.families.lif_network import engine as module
    module.run_chunked = timed  # both call run_chunked through the name their module imported
    sc = _scenario(name, duration, backend)
    family = LIFNetwork()
    ds = family.simulate(family.prepare(sc), QUIET)
    window = duration - sc.record.analysis_start  # n_spikes counts the analysed window
    return {**loop, "rate": _rate(float(ds.n_spikes.sum()), int(ds.population_size.sum()), window)}


def child_brian2(name: str, target: str, duration: float, directory: str) -> dict[str, float]:
    """Brian2 cpp_standalone (in ``directory``) or the cython runtime target on the same scenario."""
    import brian2 as b2

    from neurodyn.families.lif_network.brian2_backend import brian2_seed, build_brian2
    from neurodyn.families.lif_network.build import build

    sc = _scenario(name, duration)
    if target == "standalone":
        b2.set_device("cpp_standalone", directory=directory, build_on_run=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = 0
    else:
        b2.prefs.codegen.target = "cython"
    b2.seed(brian2_seed(sc.run.seed))
    model = build_brian2(build(sc))
    model["network"].run(duration * b2.second, namespace={})
    if target == "standalone":
        b2.device.build(directory=directory, compile=True, run=False, with_output=False)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b2.device.run(directory=directory, with_output=False)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        sim_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    else:
        # the first run compiled (or loaded) the code objects; the second is the loop
        c = time.process_time()
        model["network"].run(duration * b2.second, namespace={})
        sim_cpu = time.process_time() - c
    n_spikes = sum(len(m.t) for m in model["spike_monitors"])
    n = sum(len(g) for g in model["groups"])
    spans = 1 if target == "standalone" else 2
    return {
        "sim_wall": float(b2.get_device()._last_run_time),
        "sim_cpu": sim_cpu,
        "rate": _rate(n_spikes, n, spans * duration),
    }


def measure(name: str, peer: str, duration: float, directory: str) -> dict[str, float] | str:
    """One fresh, single-threaded process: the child's loop times and the whole process's wall and CPU."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "NUMBA_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    cmd = [sys.executable, __file__, "--child", name, peer, "--duration", str(duration), "--dir", directory]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {**out, "total_wall": wall, "total_cpu": cpu}


def available(peer: str) -> str | None:
    """None if ``peer`` can run here, else why not."""
    if peer.startswith("brian2") and importlib.util.find_spec("brian2") is None:
        return "Brian2 is not installed (pip install brian2)"
    if peer == "brian2-standalone" and shutil.which("g++") is None and shutil.which("c++") is None:
        return "no C++ compiler for cpp_standalone"
    if peer == "nest" and importlib.util.find_spec("nest") is None:
        return "NEST is not installed (pip install 'neurodyn[nest]')"
    return None


def peers(args: argparse.Namespace) -> None:
    keys = ("sim_wall", "sim_cpu", "total_wall", "total_cpu")
    chosen = []
    for peer in args.peers:
        why = available(peer)
        if why:
            print(f"skipped {peer}: {why}")
        else:
            chosen.append(peer)
    print(
        f"\n{args.duration:g} s of network activity, dt 0.1 ms, seed {SEED}; one thread, fresh process per run, "
        f"peers alternated, best of {args.repeat}; {_load()} at the start on {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory(prefix="neurodyn_peers_") as tmp:
        for name in args.scenarios:
            best: dict[str, dict[str, float]] = {}
            failed: dict[str, str] = {}
            for _ in range(args.repeat):
                for peer in chosen:  # alternated: a busy spell of the machine hits every peer
                    if peer in failed:
                        continue
                    r = measure(name, peer, args.duration, str(Path(tmp) / f"{name}_{peer}"))
                    if isinstance(r, str):
                        failed[peer] = r
                        continue
                    b = best.setdefault(peer, dict(r))
                    for k in keys:
                        b[k] = min(b[k], r[k])
            print(f"\n{name.upper()} ({_load()} at the end)")
            print(
                f"{'':20s} {'sim wall':>9s} {'sim CPU':>9s} {'total wall':>11s} {'total CPU':>10s} {'rate Hz':>8s}"
                f"   ratio to neurodyn (sim CPU, sim wall, total wall)"
            )
            nd = best.get("neurodyn")
            for peer in chosen:
                if peer in failed:
                    print(f"{peer:20s} failed: {failed[peer]}")
                    continue
                b = best[peer]
                ratio = (
                    f"   {b['sim_cpu'] / nd['sim_cpu']:5.2f}x {b['sim_wall'] / nd['sim_wall']:6.2f}x "
                    f"{b['total_wall'] / nd['total_wall']:6.2f}x"
                    if nd and peer != "neurodyn"
                    else ""
                )
                print(
                    f"{peer:20s} {b['sim_wall']:9.3f} {b['sim_cpu']:9.3f} {b['total_wall']:11.2f} "
                    f"{b['total_cpu']:10.2f} {b['rate']:8.2f}{ratio}"
                )


# ----------------------------------------------------------------------------- threads


def cuba_64k(duration: float):
    """CUBA scaled to 64,000 neurons (51,200 + 12,800) at CUBA's in-degree 80 (64 + 16), spikes recorded."""
    import yaml

    from neurodyn.scenario import from_dict

    d = yaml.safe_load((REPO / "scenarios" / "cuba.yaml").read_text())
    pops, syn = d["params"]["populations"], d["params"]["synapses"]
    pops["exc"]["size"], pops["inh"]["size"] = 51_200, 12_800
    syn[0]["connect"], syn[1]["connect"] = {"in_degree": 64}, {"in_degree": 16}
    d["name"] = "cuba_64k"
    d["run"].update(duration=f"{duration} s", seed=1)
    d["record"] = {"spikes": True}
    return from_dict(d)


def brunel_1e5(duration: float):
    """The 1e5 x 1e3 Brunel network of ``bench_lif_scale.py`` (same construction), spikes recorded."""
    import yaml

    from neurodyn.scenario import from_dict

    n, k = 100_000, 1000
    n_e, c_e = int(0.8 * n), int(0.8 * k)
    w = 0.1 * 1000 / c_e * 20 / 0.5
    params = yaml.safe_load((REPO / "models" / "brunel.yaml").read_text())
    params["populations"]["exc"]["size"], params["populations"]["inh"]["size"] = n_e, n - n_e
    exc, inh = params["synapses"]
    exc["connect"]["in_degree"], inh["connect"]["in_degree"] = c_e, k - c_e
    exc["weight"], inh["weight"] = f"{w} mV", f"{-5 * w} mV"
    params["inputs"][0].update(n_sources=c_e, weight=f"{w} mV")
    run = {"duration": f"{duration} s", "dt": "0.1 ms", "seed": 1}
    return from_dict({"name": "brunel_1e5", "family": "lif_network", "params": params, "run": run, "record": {}})


def child_threads(name: str, duration: float, repeat: int) -> None:
    """1 and 2 threads alternated on one build; prints one JSON line per network."""
    import numba
    import numpy as np

    from neurodyn.families.lif_network import engine
    from neurodyn.families.lif_network.build import build
    from neurodyn.stepping import Status, kernel_threads

    sc = cuba_64k(duration) if name == "cuba_64k" else brunel_1e5(duration)
    t0 = time.perf_counter()
    built = build(sc)
    build_s = time.perf_counter() - t0
    best: dict[int, tuple[float, float]] = {}
    results: dict[int, bytes] = {}
    n_spikes = 0
    for _ in range(repeat):
        for threads in (1, 2):
            with kernel_threads(threads) as got:
                state, rec = engine.new_state(built), engine.new_recording(built)
                parts = engine.new_parts(built, got)
                kernel = engine.time_loop(parts)
                args = (state, built.neurons, built.synapses, built.inputs, rec, parts)
                kernel(0, 1, *args)  # compiled or loaded outside the timing
                spikes = [rec.spk_idx[:0].copy()]
                m, w, c = 1, time.perf_counter(), time.process_time()
                while m < sc.run.n_steps:
                    status, m, n_spk, _ = kernel(m, sc.run.n_steps, *args)
                    spikes.append(rec.spk_idx[:n_spk].copy())
                    assert status in (Status.OK, Status.BUFFER_FULL)
                w, c = time.perf_counter() - w, time.process_time() - c
            spk = np.concatenate(spikes)
            n_spikes = spk.size
            results.setdefault(got, spk.tobytes() + state.v.tobytes())
            assert results[got] == spk.tobytes() + state.v.tobytes()
            old = best.get(got)
            best[got] = (w, c) if old is None or w < old[0] else old
    print(
        json.dumps(
            {
                "n": built.network.n,
                "synapses": int(built.network.n_synapses),
                "build": build_s,
                "spikes": n_spikes,
                "t1": best[1],
                "t2": best.get(2),
                "identical": len(set(results.values())) == 1,
                "layer": numba.threading_layer(),
            }
        )
    )


def threads(args: argparse.Namespace) -> None:
    nets = ["cuba_64k"] + (["brunel_1e5"] if args.scale else [])
    env = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_NUM_THREADS": "2"}
    print(
        f"\nTHREADS: 1 vs 2 on one build, alternated, best of 3; OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}, NUMBA_THREADING_LAYER="
        f"{os.environ.get('NUMBA_THREADING_LAYER', '(default)')}"
    )
    for name in nets:
        duration = args.thread_duration if name == "cuba_64k" else min(args.thread_duration, 0.1)
        load0 = _load()
        cmd = [sys.executable, __file__, "--threads-child", name, "--duration", str(duration)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
        if proc.returncode != 0:
            print(f"{name}: failed: {proc.stderr.strip()[-2000:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        (w1, c1), t2 = r["t1"], r["t2"]
        line = (
            f"{name}: {r['n']} neurons, {r['synapses']:.3g} synapses, {duration:g} s simulated, {r['spikes']} spikes "
            f"(build {r['build']:.1f} s; threading layer {r['layer']}); 1 thread {w1:.3f} s wall ({c1:.3f} s CPU)"
        )
        if t2 is None:
            line += "; 2 threads not available (NUMBA_NUM_THREADS < 2)"
        else:
            line += f", 2 threads {t2[0]:.3f} s wall ({t2[1]:.3f} s CPU): speed-up {w1 / t2[0]:.2f}x"
        print(line + f"; bitwise identical: {r['identical']}; {load0} before, {_load()} after")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=1.0, help="simulated time of the peer runs in s (default 1)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per peer and scenario; the best counts")
    ap.add_argument("--scenarios", nargs="+", default=["cuba", "coba"])
    ap.add_argument("--peers", nargs="+", default=list(PEERS), choices=PEERS)
    ap.add_argument("--skip-peers", action="store_true", help="only the thread scaling")
    ap.add_argument("--skip-threads", action="store_true", help="only the peer comparison")
    ap.add_argument("--scale", action="store_true", help="also the 1e5 x 1e3 network in the thread scaling")
    ap.add_argument("--thread-duration", type=float, default=1.0, help="simulated time of the thread runs (s)")
    ap.add_argument("--child", nargs=2, metavar=("SCENARIO", "PEER"), help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    ap.add_argument("--threads-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.path.insert(0, str(REPO))
        name, peer = args.child
        if peer in ("neurodyn", "nest"):
            out = child_engine(name, "numba" if peer == "neurodyn" else "nest", args.duration)
        else:
            out = child_brian2(name, peer.split("-")[1], args.duration, args.dir)
        print(json.dumps(out))
        return
    if args.threads_child:
        sys.path.insert(0, str(REPO))
        child_threads(args.threads_child, args.duration, 3)
        return
    if not args.skip_peers:
        peers(args)
    if not args.skip_threads:
        threads(args)


if __name__ == "__main__":
    main()
