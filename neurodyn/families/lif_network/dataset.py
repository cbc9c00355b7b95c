"""The Dataset layout every ``lif_network`` backend writes (one home, so backends cannot drift apart).

Variables
---------
spike_time (spike) [s], spike_index (spike) [global neuron index]
    All recorded spikes, sorted by time then index.
v (time, neuron) [V]
    Sampled membrane potentials of the probed neurons (``neuron`` holds global indices).
population_rate (rate_time, population) [Hz]
    Population rate histogram with bins of ``record.rate_bin``.
rate, cv_isi, n_spikes (population)
    Mean firing rate per neuron, mean coefficient of variation of the inter-spike intervals (neurons with
    at least 3 spikes), and spike count, all over ``[record.analysis_start, duration]``.
population_start, population_size (population)
    Where each population sits in the global neuron index.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from neurodyn.families.base import var_attrs


def population_layout(params: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Population names, start offsets and sizes in declaration order."""
    names = list(params.populations)
    sizes = np.array([params.populations[n].size for n in names], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return names, starts, sizes


def isi_cv(spike_time: np.ndarray, spike_index: np.ndarray, lo: int, hi: int) -> float:
    """Mean ISI coefficient of variation over neurons ``lo..hi-1`` with at least 3 spikes (NaN if none)."""
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
    uniq, inv, counts = np.unique(owner, return_inverse=True, return_counts=True)
    s1 = np.bincount(inv, weights=isi)
    s2 = np.bincount(inv, weights=isi * isi)
    ok = counts >= 2
    if not ok.any():
        return float("nan")
    mean = s1[ok] / counts[ok]
    var = (s2[ok] - counts[ok] * mean**2) / (counts[ok] - 1)
    return float(np.mean(np.sqrt(np.maximum(var, 0.0)) / mean))


def make_dataset(scenario: Any, spike_time: np.ndarray, spike_index: np.ndarray, v_time: np.ndarray | None,
                 v: np.ndarray | None, v_index: np.ndarray | None) -> xr.Dataset:
    """Assemble a run's Dataset from raw recordings.

    Parameters
    ----------
    scenario : Scenario
        The validated scenario (params, run, record).
    spike_time, spike_index : ndarray
        Spike times (s) and global neuron indices, any order.
    v_time, v, v_index : ndarray or None
        Sample times (s), samples of shape (len(v_time), len(v_index)) in volts, probed global indices.
    """
    params, run, record = scenario.params, scenario.run, scenario.record
    names, starts, sizes = population_layout(params)
    spike_time = np.asarray(spike_time, dtype=np.float64)
    spike_index = np.asarray(spike_index, dtype=np.int32)
    order = np.lexsort((spike_index, spike_time))
    spike_time, spike_index = spike_time[order], spike_index[order]

    duration = run.n_steps * run.dt
    t0 = min(record.analysis_start, duration)
    window = max(duration - t0, run.dt)
    late = spike_time >= t0 - 1e-12
    rate = np.zeros(len(names))
    cv = np.full(len(names), np.nan)
    count = np.zeros(len(names), dtype=np.int64)
    for p, (start, size) in enumerate(zip(starts, sizes)):
        sel = late & (spike_index >= start) & (spike_index < start + size)
        count[p] = int(sel.sum())
        rate[p] = count[p] / (size * window)
        cv[p] = isi_cv(spike_time[late], spike_index[late], int(start), int(start + size))

    n_bins = max(1, int(round(duration / record.rate_bin)))
    edges = np.arange(n_bins + 1) * record.rate_bin
    pop_of = np.searchsorted(starts, spike_index, side="right") - 1
    hist = np.zeros((n_bins, len(names)))
    for p in range(len(names)):
        h, _ = np.histogram(spike_time[pop_of == p], bins=edges)
        hist[:, p] = h / (sizes[p] * record.rate_bin)

    data_vars: dict[str, Any] = {
        "population_start": ("population", starts, var_attrs("1", "first global neuron index")),
        "population_size": ("population", sizes, var_attrs("1", "number of neurons")),
        "rate": ("population", rate, var_attrs("Hz", "mean firing rate per neuron",
                                                 window=f"[{t0:g} s, {duration:g} s]")),
        "cv_isi": ("population", cv, var_attrs("1", "mean coefficient of variation of inter-spike intervals")),
        "n_spikes": ("population", count, var_attrs("1", "number of spikes in the analysis window")),
        "population_rate": (("rate_time", "population"), hist,
                            var_attrs("Hz", "population rate histogram", bin_width=record.rate_bin)),
    }
    coords: dict[str, Any] = {
        "population": ("population", np.array(names, dtype=object), var_attrs("", "population name")),
        "rate_time": ("rate_time", edges[:-1] + record.rate_bin / 2, var_attrs("s", "centre of rate bin")),
    }
    if record.spikes:
        data_vars["spike_time"] = ("spike", spike_time, var_attrs("s", "spike time"))
        data_vars["spike_index"] = ("spike", spike_index, var_attrs("1", "global index of the spiking neuron"))
    if v is not None and v_time is not None and v_index is not None:
        data_vars["v"] = (("time", "neuron"), np.asarray(v, dtype=np.float64),
                          var_attrs("V", "membrane potential"))
        coords["time"] = ("time", np.asarray(v_time, dtype=np.float64), var_attrs("s", "sample time"))
        coords["neuron"] = ("neuron", np.asarray(v_index, dtype=np.int64), var_attrs("1", "global neuron index"))
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update(duration=float(duration), dt=float(run.dt), n_neurons=int(sizes.sum()))
    return ds


def probe_indices(scenario: Any) -> np.ndarray:
    """Global indices of the neurons whose ``v`` is sampled (validated against the network size)."""
    from neurodyn.errors import ScenarioError

    probe = scenario.record.v
    n = sum(p.size for p in scenario.params.populations.values())
    if probe is None:
        return np.zeros(0, dtype=np.int64)
    if probe.indices == "all":
        return np.arange(n, dtype=np.int64)
    idx = np.asarray(probe.indices, dtype=np.int64)
    bad = idx[idx >= n]
    if bad.size:
        raise ScenarioError("record.v.indices", int(bad[0]), f"neuron indices must be < {n} (network size)")
    return idx


def probe_every_steps(scenario: Any) -> int:
    """Sampling interval of the ``v`` probe in steps (at least 1)."""
    probe = scenario.record.v
    if probe is None or probe.every is None:
        return 1
    return max(1, int(round(probe.every / scenario.run.dt)))
