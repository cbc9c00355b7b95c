"""The Numba engine of ``lif_network``: builds the kernel's arrays from a :class:`Network` and runs it.

The time loop runs inside :func:`kernels.advance` in chunks driven by :func:`neurodyn.stepping.run_chunked`;
Python regains control between chunks to update the progress bar, drain the spike buffer and check the
status code.

Under ``neurodyn run`` (a streaming writer is offered, :func:`neurodyn.storage.stream_writer`) the
recordings are not kept: after every kernel call the spikes are appended to the result file and fed to a
:class:`~.dataset.SpikeStatistics` (running per-neuron ISI sums, spike counts, rate histogram), and the
``v`` probe fills a buffer of a bounded number of rows that is appended whenever it is full and at the end
of every chunk. Memory then stays bounded whatever the duration, and a crash leaves every completed
chunk in ``<stem>.partial.h5``. Under :func:`neurodyn.simulate` (no writer) everything stays in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from neurodyn.families.lif_network import kernels
from neurodyn.families.lif_network.dataset import (
    RECORDING_ATTRS,
    SpikeStatistics,
    make_dataset,
    probe_every_steps,
    probe_indices,
)
from neurodyn.families.lif_network.network import KIND_CONDUCTANCE, Network, build_network, streams
from neurodyn.progress import QUIET, Progress
from neurodyn.stepping import Status, run_chunked, steps
from neurodyn.storage import ChunkedWriter, stream_writer

#: spike buffer capacity (spikes) at least; it is drained whenever the next step might overrun it
MIN_SPIKE_BUFFER = 1 << 18


@dataclass
class KernelState:
    """Every array the kernel reads or writes, in :func:`kernels.advance` argument order after ``rng``."""

    args: tuple
    v: np.ndarray
    probe_row0: np.ndarray
    probe_buf: np.ndarray
    spk_step: np.ndarray
    spk_idx: np.ndarray


def kernel_state(
    net: Network, dt: float, probe_idx: np.ndarray, probe_every: int, n_steps: int, probe_rows: int | None = None
) -> KernelState:
    """Flatten ``net`` into the kernel's arrays (per-neuron propagators, concatenated CSR, ring buffers).

    The projections' ``indices`` arrays are moved into one concatenated array and replaced by views of it,
    so the synapses are stored once (4 bytes each). The probe buffer holds every sample of ``n_steps``
    steps, or ``probe_rows`` rows when given (a streamed run, which empties it as it goes).
    """
    n = net.n
    n_ch = len(net.channels)
    x = np.zeros((n_ch, n))
    ch_kind = np.array([ch.kind for ch in net.channels], dtype=np.int64)
    ch_decay = np.array([np.exp(-dt / ch.tau) for ch in net.channels], dtype=np.float64)
    ch_rev = np.array([ch.reversal if ch.kind == KIND_CONDUCTANCE else 0.0 for ch in net.channels])

    # which channels each neuron receives (per population: every input targets whole populations)
    receives = np.zeros((len(net.names), max(n_ch, 1)), dtype=bool)
    for p in net.projections:
        receives[net.names.index(p.target), p.channel] = True
    for d in net.poisson:
        receives[np.searchsorted(net.starts, d.start, side="right") - 1, d.channel] = True

    v_inf = net.v_rest + net.drive + net.noise_mu
    # exact OU increment of tau_m dv = ... + sigma sqrt(tau_m) dW over one step: std sigma sqrt((1-d^2)/2)
    noise_std = net.noise_sigma * np.sqrt(-np.expm1(-2.0 * dt / net.tau_m) / 2.0)
    per_neuron = (net.ref_steps, v_inf, net.tau_m, net.v_threshold, noise_std, net.g_leak)
    # groups: maximal runs of neurons sharing every constant, never straddling a population
    cuts = set(int(c) for c in net.starts) | {n}
    for arr in per_neuron:
        cuts |= set((np.flatnonzero(np.diff(arr) != 0) + 1).tolist())
    bounds = np.array(sorted(cuts), dtype=np.int64)
    g_start, g_stop = bounds[:-1], bounds[1:]
    pop = np.searchsorted(net.starts, g_start, side="right") - 1
    g_nch = np.zeros(g_start.size, dtype=np.int64)
    g_ch = np.zeros((g_start.size, max(n_ch, 1)), dtype=np.int64)
    g_kern = np.zeros((g_start.size, max(n_ch, 1)))
    g_cond = np.zeros(g_start.size, dtype=np.bool_)
    for g, (s0, p_) in enumerate(zip(g_start, pop)):
        chans = np.flatnonzero(receives[p_, :n_ch])
        g_nch[g] = chans.size
        g_ch[g, : chans.size] = chans
        g_cond[g] = bool(np.any(ch_kind[chans] == KIND_CONDUCTANCE))
        for k, c in enumerate(chans):
            g_kern[g, k] = kernels.current_kernel(dt, net.tau_m[s0], net.channels[c].tau)
    tau_g = net.tau_m[g_start]
    group_args = (
        g_start,
        g_stop,
        net.ref_steps[g_start].astype(np.int64),
        v_inf[g_start],
        np.exp(-dt / tau_g),
        net.v_threshold[g_start],
        noise_std[g_start],
        dt / tau_g,
        1.0 / net.g_leak[g_start],
        g_cond,
        g_nch,
        g_ch,
        g_kern,
    )

    projs = net.projections
    n_indptr = sum(p.indptr.size for p in projs)
    n_idx = sum(p.indices.size for p in projs)
    indptr = np.empty(n_indptr, dtype=np.int64)
    if len(projs) == 1:
        indices = projs[0].indices
    else:
        indices = np.empty(n_idx, dtype=np.int32)
    pr_indptr_off = np.zeros(len(projs), dtype=np.int64)
    pr_indices_off = np.zeros(len(projs), dtype=np.int64)
    pr_ring_off = np.zeros(len(projs), dtype=np.int64)
    a = b = r = 0
    for k, p in enumerate(projs):
        pr_indptr_off[k], pr_indices_off[k] = a, b
        indptr[a : a + p.indptr.size] = p.indptr
        if len(projs) > 1:
            indices[b : b + p.indices.size] = p.indices
            p.indices = indices[b : b + p.indices.size]  # share storage: synapses stored once
        a += p.indptr.size
        b += p.indices.size
        if p.delay_steps > 0:
            pr_ring_off[k] = r
            r += (p.delay_steps + 1) * p.n_post
    ring = np.zeros(r)

    def col(attr: str, dtype: Any, items: list) -> np.ndarray:
        return np.array([getattr(it, attr) for it in items], dtype=dtype)

    cdfs = [kernels.poisson_cdf_table(d.rate * d.n_sources * dt) for d in net.poisson]
    cdf_off = np.concatenate([[0], np.cumsum([c.size for c in cdfs])]).astype(np.int64)
    n_samples = (n_steps + probe_every - 1) // probe_every if probe_idx.size else 0
    if probe_rows is not None:
        n_samples = min(n_samples, probe_rows)
    probe_buf = np.full((n_samples, probe_idx.size), np.nan)
    probe_row0 = np.zeros(1, dtype=np.int64)
    cap = max(MIN_SPIKE_BUFFER, 4 * n)
    spk_step = np.empty(cap, dtype=np.int64)
    spk_idx = np.empty(cap, dtype=np.int32)
    v = net.v0.astype(np.float64, copy=True)
    last_spike = np.full(n, -(2**62), dtype=np.int64)
    args = (
        v,
        last_spike,
        net.v_reset.astype(np.float64),
        *group_args,
        x,
        ch_kind,
        ch_decay,
        ch_rev,
        col("pre_start", np.int64, projs),
        col("n_pre", np.int64, projs),
        col("post_start", np.int64, projs),
        col("n_post", np.int64, projs),
        col("weight", np.float64, projs),
        col("channel", np.int64, projs),
        col("delay_steps", np.int64, projs),
        pr_indptr_off,
        pr_indices_off,
        pr_ring_off,
        indptr,
        indices,
        ring,
        col("start", np.int64, net.poisson),
        col("stop", np.int64, net.poisson),
        np.array([d.rate * d.n_sources * dt for d in net.poisson], dtype=np.float64),
        col("weight", np.float64, net.poisson),
        col("channel", np.int64, net.poisson),
        cdf_off,
        np.concatenate([np.zeros(0), *cdfs]),
        probe_idx.astype(np.int64),
        int(probe_every),
        probe_row0,
        probe_buf,
        spk_step,
        spk_idx,
        np.empty(n, dtype=np.int64),
        np.zeros(n),
        np.zeros(n),
    )
    return KernelState(args=args, v=v, probe_row0=probe_row0, probe_buf=probe_buf, spk_step=spk_step, spk_idx=spk_idx)


class StreamRecorder:
    """Sends a run's recordings to a :class:`~neurodyn.storage.ChunkedWriter` as the kernel produces them.

    Spikes go to ``spike_time``/``spike_index`` on the unlimited ``spike`` dimension (and to running
    statistics); ``v`` samples to ``v``/``time`` on the unlimited ``time`` dimension, one probe buffer of
    at most ``writer.rows(...)`` rows at a time. Every append is flushed, so a crash keeps it.
    """

    def __init__(self, scenario: Any, writer: ChunkedWriter, probe_idx: np.ndarray, every: int, dt: float):
        self.writer = writer
        self.record_spikes = bool(scenario.record.spikes)
        self.stats = SpikeStatistics(scenario)
        self.every = every
        self.dt = dt
        self.n_probe = int(probe_idx.size)
        self.n_samples = (scenario.run.n_steps + every - 1) // every if self.n_probe else 0
        #: samples already appended (= the row of ``probe_buf`` that holds sample 0)
        self.row0 = 0
        if self.record_spikes:
            writer.dimension("spike", None)
            writer.variable("spike_time", ("spike",), "f8", RECORDING_ATTRS["spike_time"], fill=np.nan)
            writer.variable("spike_index", ("spike",), "i4", RECORDING_ATTRS["spike_index"])
        if self.n_probe:
            writer.dimension("time", None)
            writer.dimension("neuron", self.n_probe)
            writer.variable("v", ("time", "neuron"), "f8", RECORDING_ATTRS["v"], fill=np.nan)
            writer.variable("time", ("time",), "f8", RECORDING_ATTRS["time"], fill=np.nan)
            writer.variable("neuron", ("neuron",), "i8", RECORDING_ATTRS["neuron"])
            writer.write("neuron", probe_idx.astype(np.int64))
        self.probe_rows = writer.rows(8 * self.n_probe) if self.n_probe else 0

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

    def probes(self, st: KernelState, next_step: int, force: bool) -> None:
        """Append the samples of steps before ``next_step`` when the buffer is full (or ``force``)."""
        if not self.n_probe:
            return
        filled = min((next_step + self.every - 1) // self.every, self.n_samples)
        pending = filled - self.row0
        if pending <= 0 or (pending < self.probe_rows and not force):
            return
        self.writer.append("v", st.probe_buf[:pending])
        self.writer.append("time", np.arange(self.row0, filled) * self.every * self.dt)
        self.row0 = filled
        st.probe_row0[0] = filled


def simulate_numba(scenario: Any, progress: Progress = QUIET) -> xr.Dataset:
    """Run ``scenario`` with the Numba engine and return the Dataset of :mod:`.dataset`."""
    run = scenario.run
    dt = float(run.dt)
    n_steps = run.n_steps
    net = build_network(scenario)
    _, _, dyn_rng = streams(run.seed)
    probe_idx = probe_indices(scenario)
    every = probe_every_steps(scenario)
    writer = stream_writer()
    rec = None
    if writer is None:
        st = kernel_state(net, dt, probe_idx, every, n_steps)
    else:
        rows = writer.rows(8 * probe_idx.size) if probe_idx.size else 0
        st = kernel_state(net, dt, probe_idx, every, n_steps, probe_rows=rows)
        rec = StreamRecorder(scenario, writer, probe_idx, every, dt)
    steps_out: list[np.ndarray] = []
    idx_out: list[np.ndarray] = []

    def advance(start: int, count: int) -> tuple[Status, str]:
        m, stop = start, start + count
        while m < stop:
            sub = stop if rec is None else rec.limit(m, stop)
            status, m, n_spk, bad = kernels.advance(m, sub, dyn_rng, *st.args)
            if rec is not None:
                if n_spk:
                    rec.spikes(st.spk_step[:n_spk], st.spk_idx[:n_spk])
                rec.probes(st, m, force=status == Status.NAN)
            elif n_spk:
                steps_out.append(st.spk_step[:n_spk].copy())
                idx_out.append(st.spk_idx[:n_spk].copy())
            if status == Status.NAN:
                return Status.NAN, (
                    f"membrane potential of neuron {bad} became {st.v[bad]} at "
                    f"t = {m * dt:g} s; reduce dt or the synaptic weights"
                )
        if rec is not None:
            rec.probes(st, m, force=True)  # every chunk ends on disk, so a crash keeps it
        return Status.OK, ""

    chunk = steps(run.chunk, dt) if run.chunk else None
    run_chunked(n_steps, advance, progress, desc=f"{scenario.name} ({net.n} neurons)", chunk_steps=chunk)
    if rec is not None:
        ds = rec.stats.dataset()  # the recordings are in the file; the summaries come back
        ds.attrs["n_synapses"] = int(net.n_synapses)
        return ds
    spike_step = np.concatenate(steps_out) if steps_out else np.zeros(0, dtype=np.int64)
    spike_index = np.concatenate(idx_out) if idx_out else np.zeros(0, dtype=np.int32)
    v_time = v = None
    if probe_idx.size:
        v_time = np.arange(st.probe_buf.shape[0]) * every * dt
        v = st.probe_buf
    ds = make_dataset(scenario, spike_step * dt, spike_index, v_time, v, probe_idx if probe_idx.size else None)
    ds.attrs["n_synapses"] = int(net.n_synapses)
    return ds
