"""Scale benchmark: 100,000 LIF neurons with fixed in-degree 1,000 (1e8 synapses), Brunel-style E/I.

Opt-in and short (it allocates ~1 GB and takes a while to wire): reports the construction time, bytes
per synapse (CSR arrays only and peak resident memory), and steps per second of the Numba engine, with
a NumPy-vectorised reference of the membrane update for scale.

Usage::

    python benchmarks/bench_lif_scale.py [--neurons 100000] [--in-degree 1000] [--steps 300]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from neurodyn.families.lif_network import engine, kernels  # noqa: E402
from neurodyn.families.lif_network.build import build, estimate_bytes  # noqa: E402
from neurodyn.scenario import from_dict  # noqa: E402


def peak_rss() -> int:
    """Peak resident set size of this process in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=100_000)
    ap.add_argument("--in-degree", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    n_e, n_i = int(0.8 * args.neurons), args.neurons - int(0.8 * args.neurons)
    c_e, c_i = int(0.8 * args.in_degree), args.in_degree - int(0.8 * args.in_degree)
    # Brunel model A (g = 5, nu_ext = 2 nu_thr) with J scaled so that J C_E = 100 mV as in C_E = 1000
    j = 0.1 * 1000 / c_e
    w = j * 20 / 0.5
    params = yaml.safe_load((REPO / "models" / "brunel.yaml").read_text())
    params["populations"]["exc"]["size"], params["populations"]["inh"]["size"] = n_e, n_i
    exc, inh = params["synapses"]
    exc["connect"]["in_degree"], inh["connect"]["in_degree"] = c_e, c_i
    exc["weight"], inh["weight"] = f"{w} mV", f"{-5 * w} mV"
    params["inputs"][0].update(n_sources=c_e, weight=f"{w} mV")
    sc = from_dict(
        {
            "name": "scale",
            "family": "lif_network",
            "params": params,
            "run": {"duration": f"{args.steps * 0.1} ms", "dt": "0.1 ms", "seed": 1},
            "record": {},
        }
    )
    rss0 = peak_rss()
    est = estimate_bytes(sc.params, sc.run, sc.record) / 2**30
    print(f"{args.neurons} neurons, in-degree {args.in_degree}: estimate {est:.2f} GiB before allocation")
    t0 = time.perf_counter()
    built = build(sc)
    net = built.network
    t_build = time.perf_counter() - t0
    n_syn = net.n_synapses
    csr = sum(p.indices.nbytes + p.indptr.nbytes for p in net.projections)
    print(
        f"built {n_syn:.3g} synapses in {t_build:.1f} s; CSR arrays {csr / n_syn:.2f} bytes/synapse; "
        f"peak RSS growth while building {(peak_rss() - rss0) / n_syn:.2f} bytes/synapse"
    )
    kernel_args = (engine.new_state(built), built.neurons, built.synapses, built.inputs, engine.new_recording(built))
    print(
        f"with the run's state and buffers: peak RSS {peak_rss() / 2**30:.2f} GiB "
        f"({peak_rss() / n_syn:.2f} bytes/synapse including Python, Numba and state)"
    )
    rng = built.dynamics_rng()
    kernels.advance(0, 1, rng, *kernel_args)
    w0, c0 = time.perf_counter(), time.process_time()
    status, _, n_spk, _ = kernels.advance(1, sc.run.n_steps, rng, *kernel_args)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    steps = sc.run.n_steps - 1
    rate = n_spk / (args.neurons * steps * sc.run.dt)
    print(
        f"engine: {steps / wall:.0f} steps/s wall ({steps / cpu:.0f} steps/s CPU), "
        f"{n_spk * args.in_degree / cpu:.3g} synaptic events/s CPU, mean rate {rate:.1f} Hz "
        f"(status {status})"
    )
    # NumPy reference for the membrane update alone: what one vectorised step costs without any synapse
    v = np.zeros(args.neurons)
    x = np.zeros(args.neurons)
    t0 = time.perf_counter()
    for _ in range(50):
        v = 0.99 * v + 0.01 * x
        x *= 0.8
        np.flatnonzero(v >= 1.0)
    np_step = (time.perf_counter() - t0) / 50
    print(
        f"NumPy membrane update alone (no synapses, no input): {1 / np_step:.0f} steps/s; the engine's "
        f"full steps (synapses, delays, Poisson input) run at {steps / wall:.0f} steps/s"
    )


if __name__ == "__main__":
    main()
