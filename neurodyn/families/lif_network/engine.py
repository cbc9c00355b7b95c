"""The Numba engine of ``lif_network``: runs a built network (:mod:`.build`) through :func:`.kernels.advance`.

Each run starts its own :class:`~.kernels.State` (from the build's initial potentials) and
:class:`~.kernels.Recording`, and a fresh dynamics stream, so the build is never written. The time loop
runs inside :func:`.kernels.advance` in chunks driven by :func:`neurodyn.stepping.run_chunked`; Python
regains control between chunks to update the progress bar, drain the spike buffer and check the status.

Under ``neurodyn run`` (a streaming writer is offered, :func:`neurodyn.storage.stream_writer`) the
recordings are not kept: after every kernel call the spikes are appended to the result file and fed to a
:class:`~.dataset.SpikeStatistics` (running per-neuron ISI sums, spike counts, rate histogram), and the
state probes fill a buffer of a bounded number of rows that is appended whenever it is full and at the end
of every chunk. Memory then stays bounded whatever the duration, and a crash leaves every completed
chunk in ``<stem>.partial.h5``. Under :func:`neurodyn.simulate` (no writer) everything stays in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.errors import UserError
from neurodyn.families.lif_network import kernels
from neurodyn.families.lif_network.dataset import (
    RECORDING_ATTRS,
    SpikeStatistics,
    make_dataset,
    neuron_coords,
    spike_population,
    state_attrs,
    state_samples,
)
from neurodyn.families.lif_network.kernels import Parts, Recording, State
from neurodyn.families.lif_network.plasticity import WeightSampler, plastic_projections, plastic_state
from neurodyn.progress import QUIET, Progress
from neurodyn.stepping import Status, kernel_threads, run_chunked, steps
from neurodyn.storage import ChunkedWriter, stream_writer

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.lif_network.build import LIFBuilt

#: spike buffer capacity (spikes) at least; it is drained whenever the next step might overrun it
MIN_SPIKE_BUFFER = 1 << 18
#: networks from this size on run in all the process's threads unless ``run.threads`` says otherwise
PARALLEL_MIN_NEURONS = 20_000
#: how long a thread of the team spins at a barrier before it sleeps, unless the environment says otherwise
#: (:func:`spin_ns`): longer than a step's usual imbalance, shorter than a scheduler's time slice
SPIN_US = 200.0


def new_state(built: LIFBuilt) -> State:
    """A run's starting state: the build's initial potentials, no spike yet, empty channels and delay rings."""
    net = built.network
    n = net.n
    return State(
        v=net.v0.astype(np.float64, copy=True),
        last_spike=np.full(n, -(2**62), dtype=np.int64),
        x=np.zeros((len(net.channels), n)),
        ring=np.zeros(built.ring_size),
        fired=np.empty(n, dtype=np.int64),
        tmp=np.zeros(n),
        tmp2=np.zeros(n),
        key=built.dynamics_rng().integers(0, 2**64, size=1, dtype=np.uint64),
        w=np.zeros(n),
    )


def new_parts(built: LIFBuilt, n_parts: int) -> Parts:
    """Split the neurons into ``n_parts`` contiguous parts of (nearly) equal incoming synapses and neurons.

    Each part is one thread's share of a step. A boundary sits where the running count of
    ``neurons + incoming synapses`` crosses an equal share, so the update (per neuron) and the delivery (per
    synapse) are balanced together. With more than one part, every projection whose rows list their
    targets in ascending order (the ``p`` and ``in_degree`` rules) gets each row's split points, so a part
    touches only its own targets; the others are filtered target by target.
    """
    net = built.network
    syn = built.synapses
    n = net.n
    n_parts = max(1, min(int(n_parts), n))
    if n_parts == 1:
        bounds = np.array([0, n], dtype=np.int64)
    else:
        work = np.ones(n)
        for p in net.projections:
            work[p.post_start : p.post_start + p.n_post] += np.bincount(p.indices, minlength=p.n_post)
        cum = np.cumsum(work)
        inner = np.searchsorted(cum, cum[-1] * np.arange(1, n_parts) / n_parts)
        bounds = np.concatenate([[0], inner, [n]]).astype(np.int64)
        bounds = np.maximum.accumulate(bounds)
    sorted_rows = np.zeros(len(net.projections), dtype=np.bool_)
    row_split = np.zeros((0, n_parts + 1), dtype=np.int64)
    if n_parts > 1 and net.projections:
        row_split = np.zeros((syn.indptr.size, n_parts + 1), dtype=np.int64)
        for k, p in enumerate(net.projections):
            ip0 = int(syn.pr_indptr_off[k])
            local = np.clip(bounds - p.post_start, 0, p.n_post)
            sorted_rows[k] = kernels.row_splits(
                syn.indptr[ip0 : ip0 + p.n_pre + 1],
                syn.indices,
                int(syn.pr_indices_off[k]),
                local,
                row_split[ip0 : ip0 + p.n_pre + 1],
            )
    return Parts(
        bounds=bounds,
        row_split=row_split,
        sorted_rows=sorted_rows,
        n_fired=np.zeros(n_parts, dtype=np.int64),
        bad=np.full(n_parts, -1, dtype=np.int64),
        ctl=_ctl(),
        n_fired_odd=np.zeros(n_parts, dtype=np.int64),
        bad_odd=np.full(n_parts, -1, dtype=np.int64),
        fired_odd=np.empty(n, dtype=np.int64),
    )


def _ctl() -> np.ndarray:
    ctl = np.zeros(kernels.CTL_SIZE, dtype=np.int64)
    ctl[kernels.CTL_SPIN_NS] = spin_ns()
    return ctl


def spin_ns(environ: Mapping[str, str] = os.environ) -> int:
    """How long (ns) a thread waiting at one of the team's barriers spins before it sleeps; -1: never.

    ``NEURODYN_SPIN_US`` (microseconds) sets it; otherwise ``OMP_WAIT_POLICY=ACTIVE`` (a dedicated machine)
    means spin without sleeping and anything else :data:`SPIN_US`. A spinning thread starts the next phase
    at once, which is what makes two threads pay on steps of tens of microseconds; a sleeping one frees its
    core for other jobs but takes tens of microseconds to wake.
    """
    given = environ.get("NEURODYN_SPIN_US", "").strip()
    if given:
        try:
            us = float(given)
        except ValueError:
            raise UserError(
                f"NEURODYN_SPIN_US={given!r}: expected microseconds as a number (negative: spin without sleeping)"
            ) from None
        return -1 if us < 0 else int(us * 1000)
    if environ.get("OMP_WAIT_POLICY", "").strip().upper() == "ACTIVE":
        return -1
    return int(SPIN_US * 1000)


def time_loop(parts: Parts, plain: bool = False) -> Callable:
    """The kernel for ``parts``: the serial one for one part, else the thread team (one parallel region per
    call), or one parallel region per phase where the pool may run two parts on one thread.

    The team's barriers wait for every part, so it needs each part on its own thread at the same time: true
    of the OpenMP and workqueue layers with as many threads as parts, unless OpenMP may hand out fewer
    threads than asked (``OMP_DYNAMIC`` on, or ``OMP_THREAD_LIMIT`` below the part count). There, as under
    TBB, the per-phase kernel runs instead: slower, never stuck, same results. ``plain`` (see
    :func:`is_plain`) picks the twins compiled without the adaptive, shaped-synapse and plasticity code.
    """
    n_parts = parts.n_fired.size
    if plain:
        if n_parts == 1:
            return kernels.advance_plain
        team = team_safe(kernels.threading_layer(), n_parts)
        return kernels.advance_team_plain if team else kernels.advance_threads_plain
    if n_parts == 1:
        return kernels.advance
    return kernels.advance_team if team_safe(kernels.threading_layer(), n_parts) else kernels.advance_threads


def is_plain(built: LIFBuilt) -> bool:
    """Whether the network has neither adaptive nor alpha/biexponential groups nor plastic projections (its
    time loop can then be the plain one, which compiles in a fraction of the time)."""
    return not built.neurons.g_special.any() and not (built.synapses.pr_plastic >= 0).any()


def team_safe(layer: str, n_parts: int, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``layer`` runs ``n_parts`` parts of one parallel region on as many threads at once."""
    if layer == "workqueue":
        return True
    if layer != "omp":
        return False
    if environ.get("OMP_DYNAMIC", "").strip().lower() in ("true", "1", "yes"):
        return False
    limit = environ.get("OMP_THREAD_LIMIT", "").strip()
    return not limit.isdigit() or int(limit) >= n_parts


def run_threads(built: LIFBuilt) -> int | None:
    """Threads asked of :func:`~neurodyn.stepping.kernel_threads`: ``run.threads`` when given, else all the
    process has for networks of at least :data:`PARALLEL_MIN_NEURONS` neurons and one for smaller ones
    (there the two thread barriers of every step cost more than the work they share)."""
    requested = built.scenario.run.threads
    if requested:
        return requested
    return None if built.network.n >= PARALLEL_MIN_NEURONS else 1


def new_recording(built: LIFBuilt, probe_rows: int | None = None) -> Recording:
    """Empty recording buffers: every state sample of the run, or ``probe_rows`` rows when given (a streamed
    run, which empties the buffer as it goes), and a spike buffer of at least :data:`MIN_SPIKE_BUFFER`."""
    probes = built.probes
    n_samples = probes.n_samples(built.scenario.run.n_steps)
    if probe_rows is not None:
        n_samples = min(n_samples, probe_rows)
    cap = max(MIN_SPIKE_BUFFER, 4 * built.network.n)
    return Recording(
        probe_idx=probes.neuron.astype(np.int64),
        probe_var=probes.channel.astype(np.int64),
        probe_every=int(probes.every),
        probe_row0=np.zeros(1, dtype=np.int64),
        probe_buf=np.full((n_samples, probes.size), np.nan),
        spk_step=np.empty(cap, dtype=np.int64),
        spk_idx=np.empty(cap, dtype=np.int32),
    )


class StreamRecorder:
    """Sends a run's recordings to a :class:`~neurodyn.storage.ChunkedWriter` as the kernel produces them.

    Spikes go to ``spike_time``/``spike_index`` on the unlimited ``spike`` dimension (and to running
    statistics); state samples to their variables and ``time`` on the unlimited ``time`` dimension, one probe buffer of
    at most ``writer.rows(...)`` rows at a time. Every append is flushed, so a crash keeps it.
    """

    def __init__(self, built: LIFBuilt, writer: ChunkedWriter):
        probes = built.probes
        self.plan = probes
        self.net = built.network
        self.writer = writer
        self.record_spikes = bool(built.record.spikes)
        self.stats = SpikeStatistics(built)
        self.every = probes.every
        self.dt = float(built.scenario.run.dt)
        self.n_probe = probes.size
        self.n_samples = probes.n_samples(built.scenario.run.n_steps)
        #: samples already appended (= the row of ``probe_buf`` that holds sample 0)
        self.row0 = 0
        if self.record_spikes:
            writer.dimension("spike", None)
            writer.variable("spike_time", ("spike",), "f8", RECORDING_ATTRS["spike_time"], fill=np.nan)
            writer.variable("spike_index", ("spike",), "i4", RECORDING_ATTRS["spike_index"])
            writer.variable("spike_population", ("spike",), "i2", RECORDING_ATTRS["spike_population"], coord=True)
        if self.n_probe:
            writer.dimension("time", None)
            writer.dimension("neuron", probes.neurons.size)
            for var in probes.variables:
                writer.variable(var.name, ("time", "neuron"), "f8", state_attrs(var), fill=np.nan)
            writer.variable("time", ("time",), "f8", RECORDING_ATTRS["time"], fill=np.nan)
            writer.variable("neuron", ("neuron",), "i8", RECORDING_ATTRS["neuron"])
            writer.write("neuron", probes.neurons.astype(np.int64))
            for name, (dims, values, attrs) in neuron_coords(self.net, probes.neurons).items():
                writer.variable(name, (dims,), values.dtype, attrs, coord=True)
                writer.write(name, values)
        # a block holds the kernel's columns and, while appended, each variable over the neuron axis
        row_bytes = 8 * (self.n_probe + len(probes.variables) * probes.neurons.size)
        self.probe_rows = writer.rows(row_bytes) if self.n_probe else 0

    def limit(self, start: int, stop: int) -> int:
        """Last step (exclusive) the kernel may run from ``start`` before the probe buffer is full."""
        if not self.n_probe:
            return stop
        return min(stop, (self.row0 + self.probe_rows) * self.every)

    def spikes(self, steps: np.ndarray, idx: np.ndarray) -> None:
        """Take a drained chunk of spikes (time ordered) into the statistics and the file."""
        t = steps * self.dt
        self.stats.add(t, idx)
        if self.record_spikes:
            block = self.writer.rows(8)
            for a in range(0, t.size, block):
                self.writer.append("spike_time", t[a : a + block])
                self.writer.append("spike_index", idx[a : a + block])
                self.writer.append("spike_population", spike_population(self.net, idx[a : a + block]))

    def probes(self, rec: Recording, next_step: int, force: bool) -> None:
        """Append the samples of steps before ``next_step`` when the buffer is full (or ``force``)."""
        if not self.n_probe:
            return
        filled = min((next_step + self.every - 1) // self.every, self.n_samples)
        pending = filled - self.row0
        if pending <= 0 or (pending < self.probe_rows and not force):
            return
        for name, values in state_samples(self.plan, rec.probe_buf[:pending]).items():
            self.writer.append(name, values)
        times = np.arange(self.row0, filled) * self.every * self.dt
        self.stats.add_samples(times, rec.probe_buf[:pending])
        self.writer.append("time", times)
        self.row0 = filled
        rec.probe_row0[0] = filled


def simulate(built: LIFBuilt, progress: Progress = QUIET) -> xr.Dataset:
    """Run a built ``lif_network`` with the Numba engine and return the Dataset of :mod:`.dataset`."""
    run = built.scenario.run
    dt = float(run.dt)
    n_steps = run.n_steps
    net = built.network
    writer = stream_writer()
    stream = None if writer is None else StreamRecorder(built, writer)
    # a streamed run's probe buffer holds one block of rows, appended to the file whenever it is full
    rec = new_recording(built, probe_rows=None if stream is None else stream.probe_rows)
    state = new_state(built)
    steps_out: list[np.ndarray] = []
    weights = WeightSampler(built) if plastic_projections(net) else None
    idx_out: list[np.ndarray] = []

    def advance(start: int, count: int) -> tuple[Status, str]:
        m, stop = start, start + count
        while m < stop:
            sub = stop if stream is None else stream.limit(m, stop)
            if weights is not None:
                weights.take(state, m)
                sub = weights.limit(m, sub)
            status, m, n_spk, bad = kernel(m, sub, state, built.neurons, built.synapses, built.inputs, rec, parts)
            if stream is not None:
                if n_spk:
                    stream.spikes(rec.spk_step[:n_spk], rec.spk_idx[:n_spk])
                stream.probes(rec, m, force=status == Status.NAN)
            elif n_spk:
                steps_out.append(rec.spk_step[:n_spk].copy())
                idx_out.append(rec.spk_idx[:n_spk].copy())
            if status == Status.NAN:
                what, value = "membrane potential", state.v[bad]
                if np.isfinite(value) and not np.isfinite(state.w[bad]):
                    what, value = "adaptation current w", state.w[bad]
                return Status.NAN, (
                    f"{what} of neuron {bad} became {value} at t = {m * dt:g} s (step {m}); "
                    "reduce dt or the synaptic weights"
                )
        if stream is not None:
            stream.probes(rec, m, force=True)  # every chunk ends on disk, so a crash keeps it
        return Status.OK, ""

    chunk = steps(run.chunk, dt) if run.chunk else None
    with kernel_threads(run_threads(built)) as threads:
        parts = new_parts(built, threads)
        kernel = time_loop(parts, is_plain(built))
        state = plastic_state(built, state, parts.n_fired.size)
        # load the compiled kernel (and start the threads) before the clock of the time loop starts: a call
        # over no steps, so the first chunk and its progress measure steps, not the loading
        kernel(0, 0, state, built.neurons, built.synapses, built.inputs, rec, parts)
        run_chunked(n_steps, advance, progress, desc=f"{built.scenario.name} ({net.n} neurons)", chunk_steps=chunk)
    if weights is not None:
        weights.take(state, n_steps)
        weights.finish(state)
    if stream is not None:
        ds = stream.stats.dataset()  # the recordings are in the file; the summaries come back
        ds.attrs["n_synapses"] = int(net.n_synapses)
        return ds if weights is None else ds.assign(weights.variables())
    spike_step = np.concatenate(steps_out) if steps_out else np.zeros(0, dtype=np.int64)
    spike_index = np.concatenate(idx_out) if idx_out else np.zeros(0, dtype=np.int32)
    ds = make_dataset(built, spike_step * dt, spike_index, rec.probe_buf if built.probes.size else None)
    ds.attrs["n_synapses"] = int(net.n_synapses)
    return ds if weights is None else ds.assign(weights.variables())
