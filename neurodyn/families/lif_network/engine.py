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

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

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
from neurodyn.families.lif_network.kernels import Recording, State
from neurodyn.progress import QUIET, Progress
from neurodyn.stepping import Status, run_chunked, steps
from neurodyn.storage import ChunkedWriter, stream_writer

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.lif_network.build import LIFBuilt

#: spike buffer capacity (spikes) at least; it is drained whenever the next step might overrun it
MIN_SPIKE_BUFFER = 1 << 18


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
        w=np.zeros(n),
    )


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
    rng = built.dynamics_rng()
    writer = stream_writer()
    stream = None if writer is None else StreamRecorder(built, writer)
    # a streamed run's probe buffer holds one block of rows, appended to the file whenever it is full
    rec = new_recording(built, probe_rows=None if stream is None else stream.probe_rows)
    state = new_state(built)
    steps_out: list[np.ndarray] = []
    idx_out: list[np.ndarray] = []

    def advance(start: int, count: int) -> tuple[Status, str]:
        m, stop = start, start + count
        while m < stop:
            sub = stop if stream is None else stream.limit(m, stop)
            status, m, n_spk, bad = kernels.advance(
                m, sub, rng, state, built.neurons, built.synapses, built.inputs, rec
            )
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
    run_chunked(n_steps, advance, progress, desc=f"{built.scenario.name} ({net.n} neurons)", chunk_steps=chunk)
    if stream is not None:
        ds = stream.stats.dataset()  # the recordings are in the file; the summaries come back
        ds.attrs["n_synapses"] = int(net.n_synapses)
        return ds
    spike_step = np.concatenate(steps_out) if steps_out else np.zeros(0, dtype=np.int64)
    spike_index = np.concatenate(idx_out) if idx_out else np.zeros(0, dtype=np.int32)
    ds = make_dataset(built, spike_step * dt, spike_index, rec.probe_buf if built.probes.size else None)
    ds.attrs["n_synapses"] = int(net.n_synapses)
    return ds
