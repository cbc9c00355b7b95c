"""Streaming ``lif_network`` runs: spikes and ``v`` go to the result file chunk by chunk.

Under ``neurodyn run`` the Numba engine appends its recordings to the marked partial file and keeps only
running statistics; the file read back must equal the in-memory run bit for bit, its blocks must fit the
memory budget, and the peak memory of a long run must not grow with its recordings.
"""

from __future__ import annotations

import numpy as np
import pytest

import neurodyn
from neurodyn import storage
from neurodyn.errors import SimulationError
from neurodyn.families.lif_network.build import build
from neurodyn.families.lif_network.dataset import SpikeStatistics, isi_cv

NETWORK = """\
name: stream
family: lif_network
params:
  populations:
    exc: {size: 240, tau_m: 20 ms, v_rest: -70 mV, v_reset: -65 mV, v_threshold: -50 mV, t_ref: 2 ms,
          v_init: {uniform: [-70 mV, -50 mV]}}
    inh: {size: 60, tau_m: 10 ms, v_rest: -70 mV, v_reset: -65 mV, v_threshold: -50 mV, t_ref: 1 ms,
          v_init: {uniform: [-70 mV, -50 mV]}}
  synapses:
    - {source: exc, target: [exc, inh], connect: {p: 0.05}, weight: 0.5 mV, tau: 5 ms, delay: 1.5 ms}
    - {source: inh, target: [exc, inh], connect: {p: 0.1}, weight: -1 mV, tau: 10 ms}
  inputs:
    - {kind: noise, target: [exc, inh], mu: 19 mV, sigma: 4 mV}
run: {duration: 1.0003 s, dt: 0.1 ms, seed: 3}
"""

RECORDS = {
    "spikes_and_v": "record: {spikes: true, v: {every: 0.3 ms, indices: [0, 5, 239, 240, 299]}, "
    "rate_bin: 5 ms, analysis_start: 0.1 s}\n",
    "spikes_only": "record: {spikes: true, rate_bin: 5 ms, analysis_start: 0.2 s}\n",
    "v_only": "record: {spikes: false, v: {indices: [1, 250]}, rate_bin: 5 ms}\n",
}

BUDGET = 16 * 1024  # bytes: a few hundred v rows or 2048 spikes per block


def _scenario(tmp_path, record: str):
    path = tmp_path / "stream.yaml"
    path.write_text(NETWORK + record)
    return neurodyn.load_scenario(path)


@pytest.mark.parametrize("record", list(RECORDS))
def test_streamed_file_equals_in_memory_run(tmp_path, monkeypatch, writers, record):
    monkeypatch.setenv("NEURODYN_STREAM_BUFFER", str(BUDGET))
    sc = _scenario(tmp_path, RECORDS[record])
    _, path = neurodyn.run_scenario(sc, output=tmp_path / "streamed.h5")
    assert len(writers) == 1, "the Numba engine must stream under run_scenario"
    assert 0 < writers[0].max_block_bytes <= BUDGET
    assert not storage.stream_partial_path(path).exists()
    streamed = neurodyn.open_run(path)

    memory = neurodyn.simulate(_scenario(tmp_path, RECORDS[record]))
    reference = neurodyn.open_run(storage.write_run(memory, tmp_path / "memory.h5"))
    assert set(streamed.variables) == set(reference.variables)
    assert set(streamed.coords) == set(reference.coords)
    assert dict(streamed.sizes) == dict(reference.sizes)
    for name in reference.variables:
        a, b = streamed[name], reference[name]
        assert a.dims == b.dims and a.dtype == b.dtype, name
        if a.dtype == object:
            assert list(a.values) == list(b.values), name
        else:
            assert a.values.tobytes() == b.values.tobytes(), name
        assert a.attrs == b.attrs, name
    moving = {"created", "wall_time_s"}
    assert {k: v for k, v in streamed.attrs.items() if k not in moving} == {
        k: v for k, v in reference.attrs.items() if k not in moving
    }
    assert "partial" not in streamed.attrs

    # the run really recorded something worth streaming, over several blocks
    if "spike" in reference.sizes:
        assert reference.sizes["spike"] > 2 * (BUDGET // 8)
        assert np.all(np.diff(streamed["spike_time"].values) >= 0)
    if "time" in reference.sizes:
        assert reference.sizes["time"] == int(np.ceil(10003 / round(reference["time"].values[1] / 1e-4)))
        assert np.isfinite(streamed["v"].values).all()
    assert np.all(streamed["n_spikes"].values > 0) and np.all(np.isfinite(streamed["cv_isi"].values))


def test_running_statistics_match_isi_cv_for_any_chunking(tmp_path):
    """Per-neuron running ISI sums give isi_cv's numbers bit for bit, however the spikes are split."""
    sc = _scenario(tmp_path, RECORDS["spikes_only"])
    rng = np.random.default_rng(7)
    n_spikes = 20000
    steps = np.sort(rng.integers(0, sc.run.n_steps, n_spikes))
    index = rng.integers(0, 300, n_spikes).astype(np.int32)
    keep = np.ones(n_spikes, dtype=bool)  # one spike per neuron and step at most
    pairs = steps.astype(np.int64) * 300 + index
    order = np.argsort(pairs, kind="stable")
    keep[order[1:][np.diff(pairs[order]) == 0]] = False
    steps, index = steps[keep], index[keep]
    o = np.lexsort((index, steps))
    t, idx = steps[o] * sc.run.dt, index[o]

    whole = SpikeStatistics(build(sc))
    whole.add(t, idx)
    ref = whole.dataset()
    late = t >= 0.2 - 1e-12
    for p, (lo, hi) in enumerate([(0, 240), (240, 300)]):
        assert float(ref["cv_isi"][p]) == isi_cv(t[late], idx[late], lo, hi)
        assert int(ref["n_spikes"][p]) == int(((idx[late] >= lo) & (idx[late] < hi)).sum())
    counts = np.rint(ref["population_rate"].values * 0.005 * ref["population_size"].values).astype(int)
    assert counts.sum() == np.count_nonzero(t <= 1.0)  # every spike of the 200 full bins in one bin

    for n_cuts in (1, 7, 300):
        cuts = np.sort(rng.choice(np.arange(1, t.size), n_cuts, replace=False))
        chunked = SpikeStatistics(build(sc))
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, t.size]):
            chunked.add(t[a:b], idx[a:b])
        got = chunked.dataset()
        for name in ("rate", "cv_isi", "n_spikes", "population_rate"):
            assert got[name].values.tobytes() == ref[name].values.tobytes(), (name, n_cuts)


BLOWUP = """\
name: blowup
family: lif_network
params:
  populations:
    a: {size: 50, tau_m: 20 ms, v_rest: -70 mV, v_reset: -70 mV, v_threshold: -50 mV, t_ref: 2 ms,
        v_init: {uniform: [-70 mV, -50 mV]}}
    b: {size: 1, tau_m: 20 ms, v_rest: -70 mV, v_reset: -70 mV, v_threshold: -50 mV}
  inputs:
    - {kind: noise, target: a, mu: 19 mV, sigma: 4 mV}
    # one conductance event of 1e305 S overflows exponential Euler (inf / inf): v of neuron 50 becomes NaN
    - {kind: poisson, target: b, rate: 2 Hz, n_sources: 1, weight: 1e305 S, tau: 5 ms, synapse: conductance,
       reversal: -80 mV}
run: {duration: 5 s, dt: 0.1 ms, seed: 57, chunk: 20 ms}
record: {spikes: true, v: {every: 1 ms, indices: [0, 50]}}
"""


def test_failed_run_keeps_everything_before_the_failure_in_the_partial_file(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODYN_STREAM_BUFFER", str(4096))
    path = tmp_path / "blowup.yaml"
    path.write_text(BLOWUP)
    target = tmp_path / "blowup.h5"
    with pytest.raises(SimulationError, match=r"neuron 50 became nan at t = 2.4042 s"):
        neurodyn.run_scenario(neurodyn.load_scenario(path), output=target)
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blowup.partial.h5", "blowup.yaml"]
    kept = neurodyn.open_run(storage.stream_partial_path(target))
    assert kept.attrs["partial"] is True and "rate" not in kept  # summaries only come with a finished run
    # everything up to the failing step 24042 is there, equal to a run that stops just before it
    ref = neurodyn.simulate(neurodyn.load_scenario(path, overrides=["run.duration=2.4042 s"]))
    assert kept.sizes["time"] == ref.sizes["time"] == 2405
    for name in ("spike_time", "spike_index", "v", "time", "neuron"):
        assert kept[name].values.tobytes() == ref[name].values.tobytes(), name
    assert ref.sizes["spike"] > 1000


LONG = """\
name: long
family: lif_network
params:
  populations:
    noisy: {{size: 100, tau_m: 20 ms, v_rest: -70 mV, v_reset: -70 mV, v_threshold: -50 mV, t_ref: 2 ms}}
  inputs:
    - {{kind: noise, target: noisy, mu: 18 mV, sigma: 5 mV}}
run: {{duration: {d}, dt: 0.1 ms, seed: 1}}
record: {{spikes: true, v: {{indices: all}}, analysis_start: 0.2 s}}
"""


@pytest.mark.slow
def test_long_lif_run_memory_stays_bounded(tmp_path, peak_rss):
    """240 MB of v samples (100 neurons x 300 000 steps) with an 8 MiB block budget: peak memory grows by
    far less than the data over a 30x shorter run (held in memory it would add 240 MB)."""
    env = {"NEURODYN_STREAM_BUFFER": str(8 * 2**20)}
    short = tmp_path / "short.yaml"
    short.write_text(LONG.format(d="1 s"))
    long = tmp_path / "long.yaml"
    long.write_text(LONG.format(d="30 s"))
    base = peak_rss("run", short, "-o", tmp_path / "short.h5", "-q", env=env)
    peak = peak_rss("run", long, "-o", tmp_path / "long.h5", "-q", env=env)
    size_mb = (tmp_path / "long.h5").stat().st_size / 2**20
    assert size_mb > 228
    ds = neurodyn.open_run(tmp_path / "long.h5", load=False)
    assert ds.sizes["time"] == 300_000 and ds.sizes["neuron"] == 100
    assert 100 * 29.8 * 5 < ds.sizes["spike"]  # the noisy population fires at ~10-20 Hz
    ds.close()
    print(f"peak RSS {peak:.0f} MB vs {base:.0f} MB (short run), file {size_mb:.0f} MB")
    assert peak - base < 60, (base, peak, size_mb)
