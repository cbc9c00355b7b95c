"""Streaming long runs: recordings go to a marked partial file in bounded blocks, renamed at the end."""

from __future__ import annotations

import numpy as np
import pytest

import neurodyn
from neurodyn import storage
from neurodyn.errors import SimulationError
from tests import sweep_family as fam


@pytest.fixture(autouse=True)
def _family():
    fam.register()


def _scenario(tmp_path, params="{n: 8, tau: 10 ms, sigma: 1.5}", run="{duration: 0.5 s, dt: 0.1 ms, seed: 4}"):
    path = tmp_path / "s.yaml"
    path.write_text(f"name: long\nfamily: {fam.NAME}\nparams: {params}\nrun: {run}\n")
    return neurodyn.load_scenario(path)


def test_streamed_result_equals_in_memory_and_blocks_fit_budget(tmp_path, monkeypatch, writers):
    monkeypatch.setenv("NEURODYN_STREAM_BUFFER", str(64 * 1024))
    sc = _scenario(tmp_path)
    ds, path = neurodyn.run_scenario(sc, output=tmp_path / "streamed.h5")
    assert len(writers) == 1 and 0 < writers[0].max_block_bytes <= 64 * 1024
    assert not storage.stream_partial_path(path).exists()
    streamed = neurodyn.open_run(path)
    memory = neurodyn.simulate(_scenario(tmp_path, params="{n: 8, tau: 10 ms, sigma: 1.5, stream: false}"))
    assert streamed.sizes["time"] == 5000 and memory["x"].shape == (5000, 8)
    for name in ("x", "time", "variance", "crossing_time"):
        assert streamed[name].values.tobytes() == memory[name].values.tobytes(), name
        assert streamed[name].attrs["units"] == memory[name].attrs["units"]
    assert streamed.attrs["scenario_name"] == "long" and float(streamed["variance_theory"]) == 2.25
    assert float(ds["variance"]) == float(memory["variance"])  # the returned Dataset is the file


def test_crash_keeps_recorded_blocks_in_partial_file(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODYN_STREAM_BUFFER", str(16 * 1024))
    sc = _scenario(tmp_path, params="{n: 8, tau: 10 ms, sigma: 1.5, fail_at_step: 2000}")
    target = tmp_path / "crash.h5"
    with pytest.raises(SimulationError, match="injected instability"):
        neurodyn.run_scenario(sc, output=target)
    assert not target.exists()
    partial = storage.stream_partial_path(target)
    assert partial.name == "crash.partial.h5"
    kept = neurodyn.open_run(partial)
    assert kept.attrs["partial"] is True
    n = kept.sizes["time"]
    assert n == 2000  # every step recorded before the failure
    full = neurodyn.simulate(_scenario(tmp_path, params="{n: 8, tau: 10 ms, sigma: 1.5, stream: false}"))
    np.testing.assert_array_equal(kept["x"].values, full["x"].values[:n])


def test_writer_appends_regions_and_refuses_unequal_lengths(tmp_path):
    w = storage.ChunkedWriter(tmp_path / "w.h5", budget_bytes=1000)
    assert w.rows(8 * 10) == 12
    w.dimension("time", None)
    w.dimension("k", 3)
    w.variable("a", ("time", "k"), "f8", {"units": "1", "long_name": "a"})
    w.variable("time", ("time",), "f8", {"units": "s", "long_name": "time"})
    w.variable("label", ("k",), object, {"units": "1", "long_name": "label"}, coord=True)
    w.write("label", np.array(["x", "y", "z"]))
    for i in range(3):
        w.append("a", np.full((2, 3), i, float))
        w.append("time", [2 * i, 2 * i + 1])
    w.append("a", np.ones((1, 3)))
    with pytest.raises(ValueError, match="unequal lengths"):
        w.commit()
    w.append("time", [6.0])
    w.set_attrs({"flag": True, "info": {"a": 1}})
    w.commit()
    ds = neurodyn.open_run(tmp_path / "w.h5")
    np.testing.assert_array_equal(ds["a"].values[:, 0], [0, 0, 1, 1, 2, 2, 1])
    assert list(ds["label"].values) == ["x", "y", "z"] and "label" in ds.coords
    assert ds.attrs["flag"] is True and ds.attrs["info"] == {"a": 1}


@pytest.mark.slow
def test_long_run_memory_stays_bounded(tmp_path, peak_rss):
    """240 MB of recordings with an 8 MB block budget: peak memory grows far less than the data."""
    env = {"NEURODYN_STREAM_BUFFER": str(8 * 2**20), "NEURODYN_FAMILIES": "ou_test=tests.sweep_family:OUFamily"}
    text = (
        "name: long\nfamily: ou_test\nparams: {{n: 100, tau: 10 ms, sigma: 1.0}}\n"
        "run: {{duration: {d}, dt: 0.1 ms, seed: 1}}\n"
    )
    short = tmp_path / "short.yaml"
    short.write_text(text.format(d="1 s"))  # 8 MB of recordings
    long = tmp_path / "long.yaml"
    long.write_text(text.format(d="30 s"))  # 300000 steps x 100 processes x 8 bytes = 240 MB
    base = peak_rss("run", short, "-o", tmp_path / "short.h5", "-q", env=env)
    peak = peak_rss("run", long, "-o", tmp_path / "long.h5", "-q", env=env)
    size_mb = (tmp_path / "long.h5").stat().st_size / 2**20
    assert size_mb > 228
    assert peak - base < 60, (base, peak, size_mb)
