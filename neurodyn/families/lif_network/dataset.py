"""The Dataset layout every ``lif_network`` backend writes (one home, so backends cannot drift apart).

Variables
---------
spike_time (spike) [s], spike_index (spike) [global neuron index]
    All recorded spikes, sorted by time then index; the coordinate ``spike_population`` gives each spike's
    population as its position on the ``population`` dimension (``ds.population[ds.spike_population]``).
v, x_<sources>, g_<sources> (time, neuron) [V or S]
    Sampled state variables (``record.state``, or ``record.v``). ``neuron`` holds the global indices of
    every sampled neuron, with the coordinates ``neuron_population`` (name) and ``neuron_index`` (index
    within that population); a variable is NaN on the neurons it was not sampled on.
population_rate (rate_time, population) [Hz]
    Population rate histogram with bins of ``record.rate_bin``.
rate, cv_isi, n_spikes (population)
    Mean firing rate per neuron, mean coefficient of variation of the inter-spike intervals (neurons with
    at least 3 spikes), and spike count, all over ``[record.analysis_start, duration]``.
population_start, population_size (population)
    Where each population sits in the global neuron index.

The summaries are computed by :class:`SpikeStatistics` from spikes fed in time order, all at once
(:func:`make_dataset`, in memory) or chunk by chunk while a streamed run appends its spikes and ``v``
samples to the result file (:mod:`.engine`); both give the same numbers bit for bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from neurodyn.families.lif_network.kernels import accumulate_isi
from neurodyn.schema import var_attrs

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.lif_network.build import LIFBuilt, Network, Probes, StateVariable


#: attributes of the recorded variables (shared by the in-memory Dataset and the streamed file)
RECORDING_ATTRS: dict[str, dict[str, Any]] = {
    "spike_time": var_attrs("s", "spike time"),
    "spike_index": var_attrs("1", "global index of the spiking neuron"),
    "time": var_attrs("s", "sample time"),
    "neuron": var_attrs("1", "global neuron index"),
    "neuron_population": var_attrs("1", "population of the sampled neuron"),
    "neuron_index": var_attrs("1", "index of the sampled neuron within its population"),
    "spike_population": var_attrs("1", "population of the spiking neuron, as its position on the population dimension"),
}


def state_attrs(var: StateVariable) -> dict[str, Any]:
    """Attributes of a sampled state variable."""
    return var_attrs(var.units, var.long_name)


def neuron_coords(net: Network, neurons: np.ndarray) -> dict[str, tuple]:
    """The sampled neurons' population (name) and population-local index, as coordinates on ``neuron``."""
    pop = np.searchsorted(net.starts, neurons, side="right") - 1
    names = np.array(net.names, dtype=object)[pop] if neurons.size else np.zeros(0, dtype=object)
    return {
        "neuron_population": ("neuron", names, dict(RECORDING_ATTRS["neuron_population"])),
        "neuron_index": ("neuron", (neurons - net.starts[pop]).astype(np.int64), dict(RECORDING_ATTRS["neuron_index"])),
    }


def spike_population(net: Network, spike_index: np.ndarray) -> np.ndarray:
    """Each spike's population, as its position on the ``population`` dimension (int16)."""
    return (np.searchsorted(net.starts, spike_index, side="right") - 1).astype(np.int16)


def state_samples(probes: Probes, buf: np.ndarray) -> dict[str, np.ndarray]:
    """Each sampled variable over (sample, neuron axis), from kernel columns ``buf`` (sample, column).

    A variable sampled on the whole neuron axis in its order (e.g. ``record.v``) is a view of its columns.
    """
    out = {}
    for k, var in enumerate(probes.variables):
        cols = np.flatnonzero(probes.var == k)
        axis = probes.column[cols]
        if axis.size == probes.neurons.size and np.array_equal(axis, np.arange(axis.size)):
            out[var.name] = buf[:, cols[0] : cols[-1] + 1]
        else:
            block = np.full((buf.shape[0], probes.neurons.size), np.nan)
            block[:, axis] = buf[:, cols]
            out[var.name] = block
    return out


def _cv_from_sums(n_isi: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> float:
    """Mean ISI CV over the neurons with at least 2 ISIs, from per-neuron ISI counts, sums and square sums."""
    ok = n_isi >= 2
    if not ok.any():
        return float("nan")
    mean = s1[ok] / n_isi[ok]
    var = (s2[ok] - n_isi[ok] * mean**2) / (n_isi[ok] - 1)
    return float(np.mean(np.sqrt(np.maximum(var, 0.0)) / mean))


def isi_cv(spike_time: np.ndarray, spike_index: np.ndarray, lo: int, hi: int) -> float:
    """Mean ISI coefficient of variation over neurons ``lo..hi-1`` with at least 3 spikes (NaN if none).

    This is the definition; :class:`SpikeStatistics` computes the same numbers (bit for bit) from spikes
    fed chunk by chunk.
    """
    sel = (spike_index >= lo) & (spike_index < hi)
    t, i = spike_time[sel], spike_index[sel]
    if t.size < 3:
        return float("nan")
    order = np.lexsort((t, i))
    t, i = t[order], i[order]
    same = i[1:] == i[:-1]
    isi = np.diff(t)[same]
    owner = i[1:][same]
    if isi.size == 0:
        return float("nan")
    _, inv, counts = np.unique(owner, return_inverse=True, return_counts=True)
    # bincount adds each neuron's ISIs sequentially in time order (SpikeStatistics relies on that order)
    s1 = np.bincount(inv, weights=isi)
    s2 = np.bincount(inv, weights=isi * isi)
    return _cv_from_sums(counts, s1, s2)


class SpikeStatistics:
    """Per-population spike statistics (rate, n_spikes, cv_isi, population_rate), fed chunk by chunk.

    Spikes must arrive in time order (within a chunk and across chunks). Memory is a few arrays of one
    value per neuron plus the rate histogram, whatever the run's length, so a streamed run can keep its
    summaries while its spikes go to the file. :func:`make_dataset` feeds all spikes at once, so both
    paths give the same numbers.

    Parameters
    ----------
    built : LIFBuilt
        The built run (its populations, duration, ``record.analysis_start``, ``record.rate_bin``).
    """

    def __init__(self, built: LIFBuilt):
        run, record, net = built.scenario.run, built.record, built.network
        # copies: the Dataset holds these arrays, and must not share them with the build
        self.names, self.starts, self.sizes = list(net.names), net.starts.copy(), net.sizes.copy()
        self.dt = float(run.dt)
        self.duration = run.n_steps * run.dt
        self.t0 = min(record.analysis_start, self.duration)
        self.window = max(self.duration - self.t0, run.dt)
        #: spikes at or after this time are in the analysis window (tolerates the rounding of step * dt)
        self.t_min = self.t0 - 1e-12
        self.rate_bin = record.rate_bin
        n_bins = max(1, int(round(self.duration / record.rate_bin)))
        self.edges = np.arange(n_bins + 1) * record.rate_bin
        n, n_pop = int(self.sizes.sum()), len(self.names)
        self.hist = np.zeros((n_bins, n_pop), dtype=np.int64)
        self.count = np.zeros(n_pop, dtype=np.int64)
        self.last = np.full(n, np.nan)
        self.n_isi = np.zeros(n, dtype=np.int64)
        self.s1 = np.zeros(n)
        self.s2 = np.zeros(n)
        #: record.psp: each projection's unitary PSP, from the sampled v of its targets (:meth:`add_samples`)
        self.psp = _PSPTracker(built) if built.record.psp and net.projections else None
        #: networks with adaptation also keep each neuron's first two spike times (first ISI)
        self.adaptive = bool(net.adaptive.size and net.adaptive.any())
        self.first = np.full((2, n), np.nan) if self.adaptive else None

    def _first_spikes(self, spike_time: np.ndarray, spike_index: np.ndarray) -> None:
        """Keep each neuron's first two spike times (spikes arrive in time order)."""
        for _ in range(2):
            need = np.isnan(self.first[1, spike_index])  # the neuron's second spike is not known yet
            if not need.any():
                return
            at = np.flatnonzero(need)
            idx, pos = np.unique(spike_index[at], return_index=True)  # each such neuron's earliest spike
            rows = np.where(np.isnan(self.first[0, idx]), 0, 1)
            self.first[rows, idx] = spike_time[at[pos]]
            keep = np.ones(spike_time.size, dtype=bool)
            keep[at[pos]] = False
            spike_time, spike_index = spike_time[keep], spike_index[keep]

    def add_samples(self, time: np.ndarray, samples: np.ndarray) -> None:
        """Take sampled state (kernel columns over ``time``), in time order, after the spikes up to its end."""
        if self.psp is not None:
            self.psp.samples(time, samples)

    def add(self, spike_time: np.ndarray, spike_index: np.ndarray) -> None:
        """Add a chunk of spikes (times in s, global indices), sorted by time, all later than earlier chunks."""
        if spike_time.size == 0:
            return
        pop_of = np.searchsorted(self.starts, spike_index, side="right") - 1
        for p in range(len(self.names)):
            h, _ = np.histogram(spike_time[pop_of == p], bins=self.edges)
            self.hist[:, p] += h
        if self.adaptive:
            self._first_spikes(spike_time, spike_index)
        if self.psp is not None:
            self.psp.spikes(spike_time, pop_of)
        late = spike_time >= self.t_min
        self.count += np.bincount(pop_of[late], minlength=len(self.names))
        accumulate_isi(
            np.ascontiguousarray(spike_time, dtype=np.float64),
            np.ascontiguousarray(spike_index, dtype=np.int64),
            self.t_min,
            self.last,
            self.n_isi,
            self.s1,
            self.s2,
        )

    def dataset(self) -> xr.Dataset:
        """The summary variables (no spikes, no ``v``) and the run attributes."""
        rate = np.zeros(len(self.names))
        cv = np.full(len(self.names), np.nan)
        hist = np.zeros(self.hist.shape)
        for p, (start, size) in enumerate(zip(self.starts, self.sizes)):
            rate[p] = self.count[p] / (size * self.window)
            sl = slice(int(start), int(start + size))
            cv[p] = _cv_from_sums(self.n_isi[sl], self.s1[sl], self.s2[sl])
            hist[:, p] = self.hist[:, p] / (size * self.rate_bin)
        data_vars: dict[str, Any] = {
            "population_start": ("population", self.starts, var_attrs("1", "first global neuron index")),
            "population_size": ("population", self.sizes, var_attrs("1", "number of neurons")),
            "rate": (
                "population",
                rate,
                var_attrs("Hz", "mean firing rate per neuron", window=f"[{self.t0:g} s, {self.duration:g} s]"),
            ),
            "cv_isi": ("population", cv, var_attrs("1", "mean coefficient of variation of inter-spike intervals")),
            "n_spikes": ("population", self.count.copy(), var_attrs("1", "number of spikes in the analysis window")),
            "population_rate": (
                ("rate_time", "population"),
                hist,
                var_attrs("Hz", "population rate histogram", bin_width=self.rate_bin),
            ),
        }
        if self.adaptive:
            first = np.full(len(self.names), np.nan)
            adapted = np.full(len(self.names), np.nan)
            for p, (start, size) in enumerate(zip(self.starts, self.sizes)):
                sl = slice(int(start), int(start + size))
                isi1 = self.first[1, sl] - self.first[0, sl]
                if np.isfinite(isi1).any():
                    first[p] = float(np.nanmean(isi1))
                if self.n_isi[sl].sum() > 0:
                    adapted[p] = float(self.s1[sl].sum() / self.n_isi[sl].sum())
            data_vars["isi_first"] = (
                "population",
                first,
                var_attrs("s", "first inter-spike interval (second spike minus first), mean over neurons"),
            )
            data_vars["isi_adapted"] = (
                "population",
                adapted,
                var_attrs(
                    "s",
                    "mean inter-spike interval in the analysis window",
                    window=f"[{self.t0:g} s, {self.duration:g} s]",
                ),
            )
            data_vars["isi_ratio"] = ("population", first / adapted, var_attrs("1", "first ISI / adapted ISI"))
        if self.psp is not None:
            data_vars.update(self.psp.variables())
        coords: dict[str, Any] = {
            "population": ("population", np.array(self.names, dtype=object), var_attrs("1", "population name")),
            "rate_time": ("rate_time", self.edges[:-1] + self.rate_bin / 2, var_attrs("s", "centre of rate bin")),
        }
        ds = xr.Dataset(data_vars, coords=coords)
        ds.attrs.update(duration=float(self.duration), dt=self.dt, n_neurons=int(self.sizes.sum()))
        return ds


class _PSPTracker:
    """Unitary PSP of every projection: the peak of its targets' sampled ``v`` after the source's first spike.

    Per projection and sampled target neuron: the baseline is the sample at the source population's first
    spike, the peak the largest later sample (``psp_amplitude`` = peak - baseline, ``psp_peak_time`` = its
    time - the spike's), averaged over the sampled targets; NaN without a presynaptic spike or sampled target.
    """

    def __init__(self, built: LIFBuilt):
        net, probes = built.network, built.probes
        self.names = [p.name for p in net.projections]
        self.src = [net.names.index(p.source) for p in net.projections]
        self.first = np.full(len(net.names), np.nan)
        v_cols = probes.channel == -1
        self.cols = [
            np.flatnonzero(v_cols & (probes.neuron >= p.post_start) & (probes.neuron < p.post_start + p.n_post))
            for p in net.projections
        ]
        self.base = [np.full(c.size, np.nan) for c in self.cols]
        self.peak = [np.full(c.size, -np.inf) for c in self.cols]
        self.when = [np.full(c.size, np.nan) for c in self.cols]

    def spikes(self, spike_time: np.ndarray, pop_of: np.ndarray) -> None:
        for k in np.unique(pop_of):
            if np.isnan(self.first[k]):
                self.first[k] = float(spike_time[pop_of == k].min())

    def samples(self, time: np.ndarray, buf: np.ndarray) -> None:
        for p, cols in enumerate(self.cols):
            t0 = self.first[self.src[p]]
            if cols.size == 0 or np.isnan(t0):
                continue
            after = time >= t0 - 1e-12
            if not after.any():
                continue
            block, t = buf[after][:, cols], time[after]
            unset = np.isnan(self.base[p])
            self.base[p][unset] = block[0, unset]
            i = np.argmax(block, axis=0)
            top = block[i, np.arange(cols.size)]
            better = top > self.peak[p]
            self.peak[p][better] = top[better]
            self.when[p][better] = t[i][better] - t0

    def variables(self) -> dict[str, Any]:
        amp = np.array([np.mean(pk - b) if pk.size else np.nan for pk, b in zip(self.peak, self.base)])
        when = np.array([np.mean(w) if w.size else np.nan for w in self.when])
        amp[~np.isfinite(amp)] = np.nan
        return {
            "psp_amplitude": (
                "projection",
                amp,
                var_attrs("V", "peak of the sampled PSP after the source's first spike, mean over sampled targets"),
            ),
            "psp_peak_time": (
                "projection",
                when,
                var_attrs("s", "time from the source's first spike to the sampled PSP peak"),
            ),
            "projection": ("projection", np.array(self.names, dtype=object), var_attrs("1", "source->target")),
        }


def make_dataset(
    built: LIFBuilt,
    spike_time: np.ndarray,
    spike_index: np.ndarray,
    samples: np.ndarray | None,
) -> xr.Dataset:
    """Assemble a run's Dataset from raw recordings held in memory.

    Parameters
    ----------
    built : LIFBuilt
        The built run (populations, duration, what to record: ``built.probes``).
    spike_time, spike_index : ndarray
        Spike times (s) and global neuron indices, any order.
    samples : ndarray or None
        The state samples, one column per column of ``built.probes`` (sample, column), taken at steps
        0, every, 2 every, ...
    """
    spike_time = np.asarray(spike_time, dtype=np.float64)
    spike_index = np.asarray(spike_index, dtype=np.int32)
    order = np.lexsort((spike_index, spike_time))
    spike_time, spike_index = spike_time[order], spike_index[order]
    stats = SpikeStatistics(built)
    stats.add(spike_time, spike_index)
    if samples is not None and built.probes.size:
        every_dt = built.probes.every * float(built.scenario.run.dt)
        stats.add_samples(np.arange(samples.shape[0]) * every_dt, np.asarray(samples, dtype=np.float64))
    ds = stats.dataset()
    net = built.network
    if built.record.spikes:
        ds["spike_time"] = ("spike", spike_time, dict(RECORDING_ATTRS["spike_time"]))
        ds["spike_index"] = ("spike", spike_index, dict(RECORDING_ATTRS["spike_index"]))
        ds = ds.assign_coords(
            spike_population=("spike", spike_population(net, spike_index), dict(RECORDING_ATTRS["spike_population"]))
        )
    probes = built.probes
    if samples is not None and probes.size:
        dt = float(built.scenario.run.dt)
        arrays = state_samples(probes, np.asarray(samples, dtype=np.float64))
        for var in probes.variables:
            ds[var.name] = (("time", "neuron"), arrays[var.name], state_attrs(var))
        ds = ds.assign_coords(
            time=("time", np.arange(samples.shape[0]) * probes.every * dt, dict(RECORDING_ATTRS["time"])),
            neuron=("neuron", probes.neurons.astype(np.int64), dict(RECORDING_ATTRS["neuron"])),
            **neuron_coords(net, probes.neurons),
        )
    return ds


def summary(ds: xr.Dataset) -> str:
    """A few lines after a run: spike count, and per population the rate (with theory) and the ISI CV."""
    lines = []
    if "rate" in ds:
        for pop in ds["population"].values:
            r = float(ds["rate"].sel(population=pop))
            cv = float(ds["cv_isi"].sel(population=pop)) if "cv_isi" in ds else float("nan")
            th = f", theory {float(ds['rate_theory'].sel(population=pop)):.2f} Hz" if "rate_theory" in ds else ""
            lines.append(f"  {pop}: {r:.2f} Hz{th}, ISI CV {cv:.2f}")
    if "spike_time" in ds:
        lines.insert(
            0,
            f"  {ds.sizes.get('spike', 0)} spikes from {ds.attrs.get('n_neurons', '?')} neurons "
            f"in {ds.attrs.get('duration', float('nan')):g} s",
        )
    return "\n".join(lines)
