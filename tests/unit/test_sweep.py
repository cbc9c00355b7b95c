"""Sweeps: expansion, executors (serial, process pool, Dask LocalCluster), failures, combining."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import xarray as xr

import neurodyn
from neurodyn.errors import OutputExistsError, UserError
from neurodyn.sweep import execute_sweep, open_sweep, plan_sweep
from tests import sweep_family as fam

GRID_3x2x2 = "{grid: {params.sigma: [0.5, 1.0, 2.0], params.tau: [5 ms, 20 ms], run.seed: [1, 2]}}"


@pytest.fixture(autouse=True)
def _family(monkeypatch):
    fam.register()
    monkeypatch.setenv("NEURODYN_FAMILIES", fam.ENV["NEURODYN_FAMILIES"])


@pytest.fixture(scope="module")
def dask_cluster():
    """One loopback LocalCluster for the module (starting one costs seconds)."""
    import logging

    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def serial_3x2x2(tmp_path_factory):
    fam.register()
    tmp = tmp_path_factory.mktemp("serial")
    sc = neurodyn.load_scenario(fam.write_scenario(tmp / "s.yaml", GRID_3x2x2))
    out = execute_sweep(sc, output=tmp / "out", workers=1)
    return sc, out


def test_plan_resolves_units_names_and_order(tmp_path):
    sc = neurodyn.load_scenario(
        fam.write_scenario(
            tmp_path / "s.yaml",
            "{grid: {params.tau: [5 ms, 20 ms]}, zip: {params.sigma: [1, 2, 3], params.n: [2, 3, 4]}}",
        )
    )
    plan = plan_sweep(sc, tmp_path / "out")
    assert [d.name for d in plan.dims] == ["tau", "sigma"]
    assert plan.shape == (2, 3)
    tau, sig = plan.dims
    assert tau.coords["params.tau"] == [0.005, 0.02] and tau.units["params.tau"] == "s"
    assert sig.paths == ["params.sigma", "params.n"] and sig.coords["params.n"] == [2, 3, 4]
    # grid slowest, zip innermost and in lock-step
    assert [p.values for p in plan.points[:3]] == [
        {"params.tau": "5 ms", "params.sigma": s, "params.n": n} for s, n in [(1, 2), (2, 3), (3, 4)]
    ]
    assert [p.index for p in plan.points] == [(i, j) for i in range(2) for j in range(3)]
    assert len({p.id for p in plan.points}) == 6
    assert plan.points[0].id == "tau=5ms_sigma=1"  # the values as written name the files


def test_repeated_values_refused(tmp_path):
    # values repeated as written are refused when the scenario is loaded, naming the path and the value
    with pytest.raises(UserError, match=r"sweep\.grid\.run\.seed = 1: repeated values"):
        neurodyn.load_scenario(fam.write_scenario(tmp_path / "s.yaml", "{grid: {run.seed: [1, 2, 1]}}"))
    # values that differ as written but resolve to the same value are refused by the plan
    sc = neurodyn.load_scenario(fam.write_scenario(tmp_path / "t.yaml", "{grid: {params.tau: [5 ms, 0.005 s]}}"))
    with pytest.raises(UserError, match="repeated values"):
        plan_sweep(sc, tmp_path / "out")


def test_serial_combined_layout_and_theory(serial_3x2x2):
    _sc, out = serial_3x2x2
    assert out.failed == {} and len(out.ran) == 12
    ds = open_sweep(out.plan.root, load=True)
    assert ds.sizes["sigma"] == 3 and ds.sizes["tau"] == 2 and ds.sizes["seed"] == 2
    assert ds["x"].dims == ("sigma", "tau", "seed", "time", "unit") and ds.sizes["time"] == 200
    assert ds["tau"].attrs["sweep_path"] == "params.tau" and ds["tau"].attrs["units"] == "s"
    np.testing.assert_array_equal(ds["tau"].values, [0.005, 0.02])
    # the prediction does not depend on tau or seed: it keeps only the sigma dimension
    assert ds["variance_theory"].dims == ("sigma",)
    np.testing.assert_array_equal(ds["variance_theory"].values, [0.25, 1.0, 4.0])
    # The OU variance is sigma^2. The time average of x^2 over n units and a time T has a relative
    # standard deviation sqrt(2 tau / (n T)) (x^2 decorrelates in tau / 2): allow 4 of them.
    ratio = ds["variance"] / ds["variance_theory"]
    sd = np.sqrt(2 * ds["tau"] / (64 * 0.2))
    assert (abs(ratio - 1) < 4 * sd).all(), (ratio.values, sd.values)
    # crossing_time has a different length in every point: dropped here, kept in the point files
    assert "crossing_time" not in ds and ds.attrs["dropped_variables"] == ["crossing_time"]
    pid = str(ds["point_id"].sel(sigma=2.0, tau=0.02, seed=2).values)
    point = neurodyn.open_run(out.plan.root / "points" / f"{pid}.h5")
    assert point.sizes["crossing"] > 0
    np.testing.assert_array_equal(point["x"].values, ds["x"].sel(sigma=2.0, tau=0.02, seed=2).values)
    # each point is the same run as a plain `neurodyn run` of that scenario
    single = neurodyn.simulate(_sc.with_values({"params.sigma": 2.0, "params.tau": "20 ms", "run.seed": 2}))
    assert single["x"].values.tobytes() == point["x"].values.tobytes()
    # 12 parameter sets, one compiled kernel: parameters are arguments, never compile-time constants
    assert len(fam.ou_advance.signatures) == 1


def test_pool_gives_same_dataset_as_serial(serial_3x2x2, tmp_path):
    sc, serial = serial_3x2x2
    pool = execute_sweep(sc, output=tmp_path / "pool", workers=2)
    assert pool.executor == "2 processes" and pool.failed == {}
    fam.assert_same_data(open_sweep(serial.path, load=True), open_sweep(pool.path, load=True))


def test_dask_local_cluster_gives_same_dataset_as_serial(serial_3x2x2, dask_cluster, tmp_path):
    sc, serial = serial_3x2x2
    out = execute_sweep(sc, output=tmp_path / "dask", scheduler=dask_cluster.scheduler_address)
    assert out.executor.startswith("dask") and out.failed == {} and len(out.ran) == 12
    fam.assert_same_data(open_sweep(serial.path, load=True), open_sweep(out.path, load=True))


def test_failed_point_recorded_others_finish_rerun_retries(tmp_path, monkeypatch):
    counter = tmp_path / "count.txt"
    monkeypatch.setenv(fam.COUNTER_ENV, str(counter))
    sc = neurodyn.load_scenario(
        fam.write_scenario(
            tmp_path / "s.yaml",
            "{grid: {params.sigma: [0.5, 1.0, 2.0], run.seed: [1, 2]}}",
            params="{n: 2, tau: 10 ms, sigma: 1.0, fail_when_sigma: 1.0}",
        )
    )
    out = execute_sweep(sc, output=tmp_path / "out", workers=1)
    assert sorted(out.failed) == ["sigma=1.0_seed=1", "sigma=1.0_seed=2"]
    assert len(out.ran) == 4
    info = json.loads((tmp_path / "out" / "failed" / "sigma=1.0_seed=2.json").read_text())
    assert info["values"] == {"params.sigma": 1.0, "run.seed": 2}
    assert info["error"] == "RuntimeError" and info["message"] == "injected failure at sigma=1.0"
    ds = open_sweep(out.path, load=True)
    assert ds.attrs["sweep_complete"] == 0 and ds.attrs["failed_points"] == sorted(out.failed)
    np.testing.assert_array_equal(ds["point_status"].values, [[1, 1], [0, 0], [1, 1]])
    assert np.isnan(ds["variance"].sel(sigma=1.0)).all() and np.isfinite(ds["variance"].sel(sigma=2.0)).all()
    assert len(counter.read_text().splitlines()) == 6
    # a rerun runs the failed points again, and only them
    again = execute_sweep(sc, output=tmp_path / "out", workers=1)
    assert sorted(again.reused) == sorted(out.ran) and sorted(again.failed) == sorted(out.failed)
    assert len(counter.read_text().splitlines()) == 8


def test_resume_reuses_points_and_refuses_other_scenarios(tmp_path, monkeypatch):
    counter = tmp_path / "count.txt"
    monkeypatch.setenv(fam.COUNTER_ENV, str(counter))
    yaml_path = fam.write_scenario(tmp_path / "s.yaml", "{grid: {params.sigma: [0.5, 1.0], run.seed: [1, 2]}}")
    sc = neurodyn.load_scenario(yaml_path)
    full = execute_sweep(sc, output=tmp_path / "full", workers=1)
    reference = open_sweep(full.path, load=True)
    # A complete sweep is not silently redone.
    with pytest.raises(OutputExistsError, match="already exists"):
        execute_sweep(sc, output=tmp_path / "full", workers=1)
    # Lose the combined file and one point: only that point runs again; the result is identical.
    full.path.unlink()
    (tmp_path / "full" / "points" / "sigma=1.0_seed=1.h5").unlink()
    n_before = len(counter.read_text().splitlines())
    resumed = execute_sweep(sc, output=tmp_path / "full", workers=1)
    assert resumed.ran == ["sigma=1.0_seed=1"] and len(resumed.reused) == 3
    assert len(counter.read_text().splitlines()) == n_before + 1
    fam.assert_same_data(reference, open_sweep(resumed.path, load=True))
    # Points of a different scenario are never overwritten without --force.
    other = neurodyn.load_scenario(yaml_path, ["params.n=3"])
    with pytest.raises(OutputExistsError, match="different scenario"):
        execute_sweep(other, output=tmp_path / "full", workers=1)
    forced = execute_sweep(other, output=tmp_path / "full", workers=1, force=True)
    assert len(forced.ran) == 4 and open_sweep(forced.path).sizes["unit"] == 3


def test_open_sweep_of_unfinished_sweep(tmp_path):
    sc = neurodyn.load_scenario(fam.write_scenario(tmp_path / "s.yaml", "{grid: {params.sigma: [0.5, 1.0, 2.0]}}"))
    out = execute_sweep(sc, output=tmp_path / "out", workers=1)
    full = open_sweep(out.path, load=True)
    out.path.unlink()
    os.unlink(tmp_path / "out" / "points" / "sigma=1.0.h5")
    partial = open_sweep(tmp_path / "out")
    np.testing.assert_array_equal(partial["point_status"].values, [1, 0, 1])
    assert np.isnan(partial["variance"].sel(sigma=1.0))
    np.testing.assert_array_equal(partial["x"].sel(sigma=2.0).values, full["x"].sel(sigma=2.0).values)
    assert isinstance(partial, xr.Dataset) and partial.attrs["sweep_complete"] == 0


def test_lif_sweep_siegert_rate_with_ci_over_seeds(tmp_path):
    """A real family: LIF neurons in white noise, swept drive x seed, against the Siegert rate."""
    from neurodyn.compare import generic_rows

    path = tmp_path / "lif.yaml"
    path.write_text(
        "name: lif_small\nfamily: lif_network\n"
        "params:\n  populations:\n    noisy: {size: 100, tau_m: 20 ms, v_rest: -70 mV, v_reset: -70 mV,\n"
        "            v_threshold: -50 mV, t_ref: 2 ms, v_init: {uniform: [-70 mV, -50 mV]}}\n"
        "  inputs:\n    - {kind: noise, target: noisy, mu: 18 mV, sigma: 5 mV}\n"
        "run: {duration: 1 s, dt: 0.1 ms, seed: 1}\n"
        "record: {spikes: true, analysis_start: 0.2 s}\n"
        "sweep: {grid: {params.inputs.0.mu: [15 mV, 21 mV], run.seed: [1, 2, 3]}}\n"
    )
    out = execute_sweep(neurodyn.load_scenario(path), output=tmp_path / "out", workers=1)
    assert out.failed == {}
    ds = open_sweep(out.path, load=True)
    assert ds["mu"].attrs["units"] == "V" and ds["mu"].values.tolist() == [0.015, 0.021]
    assert {"spike_time", "spike_index"} <= set(ds.attrs["dropped_variables"])  # ragged spike dim
    assert ds["rate_theory"].dims == ("mu", "population")  # the Siegert rate does not depend on the seed
    rows = generic_rows(ds)
    # swept values are shown in the unit the scenario wrote them in (stored in SI)
    assert [r.where for r in rows] == ["mu=15 mV, population=noisy", "mu=21 mV, population=noisy"]
    for r in rows:  # 3 seeds x 100 neurons x 0.8 s: the CI is a few percent; both agree with theory
        assert np.isfinite(r.ci) and 0 < r.ci < 0.1 * r.predicted
        assert r.verdict == "agree", r


def test_the_dask_client_keeps_event_loop_callback_errors_off_stderr(monkeypatch):
    """While a Dask client is open, Dask's and tornado's error logs (noise about work cut short by a
    Ctrl-C: the scheduler's "couldn't gather keys", distributed's failing sync() cancel callback) are
    silenced, and restored afterwards; errors that matter reach the sweep through the futures."""
    import logging

    import distributed

    from neurodyn.sweep import executors

    class FakeClient:
        def __init__(self, address):
            self.address = address

        def close(self):
            pass

    monkeypatch.setattr(executors, "_probe", lambda address: None)
    monkeypatch.setattr(executors, "_connect", FakeClient)
    monkeypatch.setattr(distributed, "Client", FakeClient)
    loop_log, dask_log = logging.getLogger("tornado.application"), logging.getLogger("distributed")
    before = loop_log.level, dask_log.level
    with executors.dask_client("tcp://127.0.0.1:8786", None) as client:
        assert client.address.endswith("127.0.0.1:8786")
        assert not loop_log.isEnabledFor(logging.ERROR)
        assert not logging.getLogger("distributed.scheduler").isEnabledFor(logging.ERROR)
    assert (loop_log.level, dask_log.level) == before
