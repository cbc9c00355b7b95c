"""Build and run a ``lif_network`` in NEST from a plain specification (standalone: NEST and NumPy only).

This module is the one place where NEST objects are made. ``run.backend: nest`` imports it and runs
the network in this process; ``neurodyn export --to nest`` copies its source, verbatim, into the script
it writes, followed by the specification, so the script and the in-process run build the very same
network with the very same calls (same seed, same number of virtual processes: identical spikes).

It must therefore import nothing from neurodyn. The specification (:func:`build`'s ``spec``) is a
JSON-compatible dict in NEST's units (ms, mV, pF, nS, pA, Hz), made by ``nest_backend.nest_spec``:

``resolution`` (ms), ``n_steps``, ``rng_seed``, ``threads``, ``populations`` (``name``, ``size``,
``model``, ``params``, ``v_init``), ``projections`` (``source``, ``target`` population numbers, ``conn``
(a NEST connection rule) or ``graph`` (a networkx generator), ``weight``, ``delay``, ``receptor``),
``poisson`` (``target``, ``rate``, ``weight``, ``receptor``), ``noise`` (``target``, ``std``) and
``probe`` (``indices``: global neuron indices, ``every``: steps) or None.

Neurons are created first, population after population, so the neuron of global index ``i`` has NEST
node ID ``i + 1`` on every rank.

Output of the script (:func:`main`), in its output folder, per MPI rank: ``spikes-<rank>.bin`` and
``v-<rank>.bin`` (binary records of what the rank's neurons recorded, appended after every chunk of
the run, so memory stays bounded), and, written last, ``rank-<rank>.json`` (what the rank wrote, its
connection count, wall time), so an incomplete run can be told from a finished one.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

import numpy as np

#: format of the specification and of the files the script writes
SPEC_FORMAT = "neurodyn-nest/1"
#: steps simulated after the run: NEST's multimeter hands over the samples of a slice of the run only
#: when the next slice starts, so without them the last samples would be missing (what the extra steps
#: record is beyond the run and left out when the recordings are read)
FLUSH_STEPS = 1
#: environment variables an MPI launcher sets in every process it starts (Open MPI, MPICH/Hydra, PMIx, Slurm srun)
_MPI_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_STEP_NUM_TASKS")


def import_nest():
    """Import PyNEST without its banner and with only errors logged."""
    os.environ.setdefault("PYNEST_QUIET", "1")
    import nest

    quiet(nest)
    return nest


def quiet(nest) -> None:
    """Log NEST's errors only (its info messages and the per-run summary would fill the terminal)."""
    nest.verbosity = nest.VerbosityLevel.ERROR


def spec_digest(spec: dict) -> str:
    """SHA-256 of the specification (canonical JSON): ties the files of a run to the network that made them."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def configure(nest, spec: dict, threads: int) -> None:
    """Reset the kernel and set resolution, threads and seed."""
    nest.ResetKernel()
    quiet(nest)
    nest.set(resolution=spec["resolution"], local_num_threads=int(threads))
    # the seed after the thread count: NEST seeds one stream per virtual process from it
    nest.set(rng_seed=int(spec["rng_seed"]))


def graph_edges(graph: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Directed edges ``(pre, post)`` of a networkx generator on ``n`` nodes, sorted, duplicates merged.

    Undirected edges connect both ways; self-loops are kept only when ``graph["autapses"]``. The
    generator gets ``graph["seed"]`` when it takes a seed, and ``n`` as its ``n`` argument (or as its
    first one when it has none).
    """
    import inspect

    import networkx as nx

    fn = getattr(nx, graph["name"])
    kwargs = dict(graph["args"])
    params = inspect.signature(fn).parameters
    if "seed" in params and "seed" not in kwargs:
        kwargs["seed"] = int(graph["seed"])
    g = fn(**kwargs, n=n) if "n" in params else fn(n, **kwargs)
    g = nx.convert_node_labels_to_integers(g, ordering="default")
    edges = np.array(list(g.edges()), dtype=np.int64).reshape(-1, 2)
    if not g.is_directed():
        edges = np.concatenate([edges, edges[edges[:, 0] != edges[:, 1]][:, ::-1]])
    if not graph["autapses"]:
        edges = edges[edges[:, 0] != edges[:, 1]]
    edges = np.unique(edges, axis=0)
    return edges[:, 0], edges[:, 1]


def build(nest, spec: dict) -> dict:
    """Create the network of ``spec`` in the (configured) NEST kernel.

    Parameters
    ----------
    nest : module
        PyNEST, after :func:`configure`.
    spec : dict
        The specification (see the module docstring).

    Returns
    -------
    dict
        ``populations`` (NodeCollections), ``spikes`` (the spike recorder), ``multimeter`` (or None),
        ``probed`` (sorted unique probed node IDs), ``n_synapses`` (neuron-to-neuron connections made on
        this rank).
    """
    res = float(spec["resolution"])
    pops = []
    first = 1
    for pop in spec["populations"]:
        nodes = nest.Create(pop["model"], int(pop["size"]), params=pop["params"])
        if nodes[0].global_id != first:
            raise RuntimeError(f"population {pop['name']} starts at node {nodes[0].global_id}, expected {first}")
        first += int(pop["size"])
        init = pop["v_init"]
        if init["kind"] == "uniform":
            nodes.V_m = nest.random.uniform(min=init["low"], max=init["high"])
        elif init["kind"] == "normal":
            nodes.V_m = nest.random.normal(mean=init["mean"], std=init["std"])
        pops.append(nodes)

    for i, proj in enumerate(spec["projections"]):
        src, tgt = pops[proj["source"]], pops[proj["target"]]
        # one weight per projection: a synapse model with a homogeneous weight stores none per synapse
        model = f"neurodyn_projection_{i}"
        nest.CopyModel("static_synapse_hom_w", model, {"weight": float(proj["weight"])})
        if proj["graph"] is not None:
            pre, post = graph_edges(proj["graph"], len(src))
            if pre.size:
                syn = {
                    "synapse_model": model,
                    "delay": np.full(pre.size, float(proj["delay"])),
                    "receptor_type": np.full(pre.size, int(proj["receptor"]), dtype=np.int64),
                }
                first_src, first_tgt = src[0].global_id, tgt[0].global_id
                nest.Connect(pre + first_src, post + first_tgt, "one_to_one", syn)
        else:
            syn = {"synapse_model": model, "delay": float(proj["delay"]), "receptor_type": int(proj["receptor"])}
            nest.Connect(src, tgt, proj["conn"], syn)
    n_synapses = int(nest.num_connections)

    for drive in spec["poisson"]:
        gen = nest.Create("poisson_generator", params={"rate": float(drive["rate"])})
        syn = {"weight": float(drive["weight"]), "delay": res, "receptor_type": int(drive["receptor"])}
        nest.Connect(gen, pops[drive["target"]], "all_to_all", syn)
    for noise in spec["noise"]:
        # every target of a noise_generator receives its own realisation, a new value each step
        gen = nest.Create("noise_generator", params={"mean": 0.0, "std": float(noise["std"]), "dt": res})
        nest.Connect(gen, pops[noise["target"]], "all_to_all", {"delay": res})

    recorder = nest.Create("spike_recorder", params={"time_in_steps": True})
    for nodes in pops:
        nest.Connect(nodes, recorder)
    multimeter = None
    probed: list[int] = []
    probe = spec["probe"]
    if probe is not None:
        probed = sorted({int(i) + 1 for i in probe["indices"]})
        params = {"record_from": ["V_m"], "interval": int(probe["every"]) * res, "time_in_steps": True}
        multimeter = nest.Create("multimeter", params=params)
        nest.Connect(multimeter, nest.NodeCollection(probed))
    return {
        "populations": pops,
        "spikes": recorder,
        "multimeter": multimeter,
        "probed": probed,
        "n_synapses": n_synapses,
    }


def initial_potentials(nest, probed: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Node IDs and V_m (mV) of the probed neurons local to this rank, before the run (their sample at t = 0)."""
    if not probed:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    flags = np.atleast_1d(np.asarray(nest.NodeCollection(probed).get("local"), dtype=bool))
    ids = np.asarray(probed, dtype=np.int64)[flags]
    if ids.size == 0:
        return ids, np.zeros(0)
    local = nest.NodeCollection(ids.tolist())
    v = np.atleast_1d(np.asarray(local.get("V_m"), dtype=np.float64))
    return ids, v


def _mpi_size_from_launcher() -> int:
    """Number of processes an MPI launcher started (1 when not started by one)."""
    for name in _MPI_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def main(spec: dict, scenario_yaml: str, argv: list[str] | None = None) -> int:
    """Run the network of ``spec`` and write its recordings (the exported script's entry point).

    Each MPI rank writes what its neurons recorded, chunk after chunk, to ``spikes-<rank>.bin`` (pairs of
    little-endian int64: node ID, NEST's time step) and, with probes, ``v-<rank>.bin`` (node ID, time step,
    V_m in mV as float64; the initial potentials at step 0), then, last, ``rank-<rank>.json``; rank 0
    also writes ``scenario.yaml``. ``neurodyn import-nest FOLDER`` reads them back.
    """
    import argparse

    default_out = os.path.splitext(os.path.abspath(sys.argv[0]))[0] + "_output"
    parser = argparse.ArgumentParser(
        description=f"Run the neurodyn scenario '{spec['name']}' in NEST and write its recordings "
        "(read them back with: neurodyn import-nest FOLDER --output RESULT.h5)."
    )
    parser.add_argument("--output-dir", default=default_out, help=f"folder for the recordings (default {default_out})")
    parser.add_argument(
        "--threads",
        type=int,
        default=int(spec["threads"]),
        help=f"threads per MPI process (default {spec['threads']}, the scenario's run.threads); the spikes "
        "are reproduced exactly for the same number of processes x threads",
    )
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be a positive integer")

    nest = import_nest()
    launched = _mpi_size_from_launcher()
    if launched > 1 and not nest.build_info.get("have_mpi", False):
        print(
            f"error: started as {launched} MPI processes, but this NEST was built without MPI (the "
            "nest-simulator wheel is); use a NEST built with MPI (-Dwith-mpi=ON), or run one process "
            "with more --threads",
            file=sys.stderr,
        )
        return 2
    out = os.path.abspath(args.output_dir)
    os.makedirs(out, exist_ok=True)
    rank = int(nest.Rank())
    done_file = os.path.join(out, f"rank-{rank}.json")
    if os.path.exists(done_file):
        os.remove(done_file)  # until this run's rank file is written, the folder holds no finished run
    configure(nest, spec, args.threads)
    start = time.perf_counter()
    handles = build(nest, spec)
    recorder, multimeter = handles["spikes"], handles["multimeter"]
    spike_name, v_name = f"spikes-{rank}.bin", f"v-{rank}.bin"
    n_spikes = n_v = 0
    built = time.perf_counter()
    total = int(spec["n_steps"])
    res = float(spec["resolution"])
    # chunks of at most 1 s of network time: the recorders are emptied into the files after each
    chunk = max(1, min(total // 20 or 1, int(round(1000.0 / res))))
    show = rank == 0 and sys.stdout.isatty()
    with open(os.path.join(out, spike_name), "wb") as spikes_fh, open(os.path.join(out, v_name), "wb") as v_fh:
        if multimeter is not None:
            ids, v0 = initial_potentials(nest, handles["probed"])
            n_v += _write_v(v_fh, ids, np.zeros(ids.size, dtype=np.int64), v0)
        done = 0
        while done < total + FLUSH_STEPS:
            n = min(chunk, total + FLUSH_STEPS - done)
            nest.Simulate(n * res)
            done += n
            events = recorder.get("events")
            pairs = np.stack([np.asarray(events["senders"], dtype="<i8"), np.asarray(events["times"], dtype="<i8")], 1)
            pairs.tofile(spikes_fh)
            n_spikes += len(pairs)
            recorder.n_events = 0
            if multimeter is not None:
                ev = multimeter.get("events")
                n_v += _write_v(v_fh, ev["senders"], ev["times"], ev["V_m"])
                multimeter.n_events = 0
            if show:
                shown = min(done, total)
                print(f"\r{spec['name']}: {100 * shown // total:3d}% of {total * res:g} ms", end="", flush=True)
        spikes_fh.flush()
        os.fsync(spikes_fh.fileno())
        v_fh.flush()
        os.fsync(v_fh.fileno())
    if show:
        print(flush=True)
    end = time.perf_counter()
    if rank == 0:
        with open(os.path.join(out, "scenario.yaml"), "w") as fh:
            fh.write(scenario_yaml)
    info = {
        "format": SPEC_FORMAT,
        "spec_sha256": spec_digest(spec),
        "rank": rank,
        "num_processes": int(nest.NumProcesses()),
        "threads": int(args.threads),
        "virtual_processes": int(nest.total_num_virtual_procs),
        "rng_seed": int(spec["rng_seed"]),
        "nest_version": str(nest.build_info.get("version", "")),
        "n_synapses": handles["n_synapses"],
        "spike_file": spike_name,
        "n_spikes": n_spikes,
        "v_file": v_name,
        "n_v": n_v,
        "build_time_s": built - start,
        "wall_time_s": end - start,
        "biological_time_ms": float(nest.biological_time),
    }
    tmp = os.path.join(out, f".rank-{rank}.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(info, fh, indent=1)
    os.replace(tmp, done_file)
    if rank == 0:
        print(f"recordings in {out}; read them with: neurodyn import-nest {out} --output RESULT.h5")
    return 0


#: one record of ``v-<rank>.bin``
V_RECORD = np.dtype([("sender", "<i8"), ("step", "<i8"), ("v", "<f8")])


def _write_v(fh, senders, steps, v_mv) -> int:
    """Append ``v`` samples (node IDs, time steps, mV) to an open ``v-<rank>.bin``; return their number."""
    rec = np.empty(len(senders), dtype=V_RECORD)
    rec["sender"], rec["step"], rec["v"] = senders, steps, v_mv
    rec.tofile(fh)
    return int(rec.size)
