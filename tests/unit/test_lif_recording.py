"""``record.state``: any state variable by name, per-population indices, population coordinates, size estimate."""

from __future__ import annotations

import numpy as np
import pytest

import neurodyn
from neurodyn.errors import ScenarioError
from neurodyn.families.lif_network import LIFNetwork, build, engine
from neurodyn.resources import format_bytes


def simulate_numba(sc):
    """Check and build ``sc``, then run it with the Numba engine."""
    return engine.simulate(LIFNetwork().prepare(sc))


def pop(size: int, v_rest: str = "-60 mV") -> dict:
    return {"size": size, "tau_m": "20 ms", "v_rest": v_rest, "v_reset": "-70 mV", "v_threshold": "-50 mV"}


#: a regular firer (driven above threshold) feeding a silent target one to one, through a current synapse
#: and a conductance synapse; the target also gets Poisson input
CHAIN = dict(
    pops={"pre": pop(3, "-40 mV"), "post": pop(3)},
    synapses=[
        {"source": "pre", "target": "post", "connect": {"one_to_one": True}, "weight": "0.5 mV", "tau": "5 ms"},
        {
            "source": "pre",
            "target": "post",
            "connect": {"one_to_one": True},
            "kind": "conductance",
            "weight": "1 nS",
            "tau": "3 ms",
            "reversal": "0 mV",
        },
    ],
    inputs=[{"kind": "poisson", "target": "post", "rate": "100 Hz", "weight": "0.1 mV", "tau": "2 ms"}],
)


def test_state_variables_are_named_after_kind_and_sources(lif_scenario):
    sc = lif_scenario(**CHAIN, duration="10 ms")
    names = build.state_variables(sc.params)
    assert list(names) == ["v", "x_input", "x_pre", "g_pre"]
    assert [v.units for v in names.values()] == ["V", "V", "V", "S"]
    assert names["g_pre"].populations == ("post",) and names["v"].populations == ("pre", "post")


def test_channels_sharing_sources_get_numbered_names(lif_scenario):
    syn = {"source": "a", "target": "a", "connect": {"p": 0.5}, "weight": "0.1 mV"}
    sc = lif_scenario({"a": pop(4)}, [{**syn, "tau": "5 ms"}, {**syn, "tau": "8 ms"}], duration="1 ms")
    assert list(build.state_variables(sc.params)) == ["v", "x_a_1", "x_a_2"]


def test_recorded_current_channel_is_the_exact_sum_of_the_spikes_it_received(lif_scenario):
    """x at step n (sampled before the update, like v) is sum over pre spikes at m < n of w d^(n-1-m)."""
    sc = lif_scenario(
        **{**CHAIN, "inputs": []},
        duration="60 ms",
        record={"state": {"x_pre": {"post": [0, 2]}, "g_pre": {"post": [1]}, "v": {"pre": "all"}}},
    )
    ds = simulate_numba(sc)
    dt, n = 1e-4, 600
    assert ds["x_pre"].dims == ("time", "neuron") and ds.sizes["time"] == n
    assert list(ds.neuron.values) == [3, 5, 4, 0, 1, 2]
    assert list(ds.neuron_population.values) == ["post", "post", "post", "pre", "pre", "pre"]
    assert list(ds.neuron_index.values) == [0, 2, 1, 0, 1, 2]
    assert ds["x_pre"].attrs["units"] == "V" and ds["g_pre"].attrs["units"] == "S"
    assert "synaptic drive from pre" in ds["x_pre"].attrs["long_name"]
    for var, sampled in (("x_pre", [3, 5]), ("g_pre", [4]), ("v", [0, 1, 2])):  # NaN where not asked for
        mask = np.isin(ds.neuron.values, sampled)
        assert np.all(np.isfinite(ds[var].values[:, mask])) and np.all(np.isnan(ds[var].values[:, ~mask]))
    for var, w, tau, target in (("x_pre", 0.5e-3, 5e-3, 3), ("g_pre", 1e-9, 3e-3, 4)):
        source = target - 3
        steps = np.rint(ds.spike_time.values[ds.spike_index.values == source] / dt).astype(int)
        assert steps.size >= 2
        k = np.arange(n)[:, None] - 1 - steps[None, :]
        expect = np.where(k >= 0, w * np.exp(-dt / tau) ** np.maximum(k, 0), 0.0).sum(axis=1)
        got = ds[var].sel(neuron=target).values
        np.testing.assert_allclose(got, expect, rtol=1e-12, atol=w * 1e-12)


def test_state_v_equals_the_global_index_form(lif_scenario):
    common = dict(**CHAIN, duration="20 ms")
    old = simulate_numba(lif_scenario(**common, record={"v": {"indices": [4, 0], "every": "1 ms"}}))
    new = simulate_numba(lif_scenario(**common, record={"state": {"v": {"post": [1], "pre": [0]}}, "every": "1 ms"}))
    assert np.array_equal(old.v.values, new.v.values) and np.array_equal(old.time.values, new.time.values)
    assert list(new.neuron.values) == list(old.neuron.values) == [4, 0]
    assert list(old.neuron_population.values) == ["post", "pre"] and list(old.neuron_index.values) == [1, 0]


def test_indices_are_per_population_so_resizing_another_one_keeps_them(lif_scenario):
    record = {"state": {"v": {"post": [0, 2]}}}
    for size, first in ((3, 3), (7, 7)):
        pops = {"pre": pop(size, "-40 mV"), "post": pop(3)}
        ds = simulate_numba(lif_scenario(pops, duration="2 ms", record=record))
        assert list(ds.neuron.values) == [first, first + 2]
        assert list(ds.neuron_index.values) == [0, 2] and set(ds.neuron_population.values) == {"post"}


def test_spikes_carry_their_population(lif_scenario):
    ds = simulate_numba(lif_scenario(**CHAIN, duration="30 ms"))
    code = ds.spike_population.values
    assert ds.spike_population.dims == ("spike",) and code.dtype == np.int16 and code.size > 0
    expect = np.where(ds.spike_index.values < 3, 0, 1)
    assert np.array_equal(code, expect)
    assert list(ds.population.values[code][:1]) == ["pre"]


@pytest.mark.parametrize(
    ("record", "path", "needle"),
    [
        ({"state": {"g_post": {"post": [0]}}}, "record.state.g_post", "recordable: v, x_input, x_pre, g_pre"),
        ({"state": {"v": {"mid": [0]}}}, "record.state.v.mid", "populations: pre, post"),
        ({"state": {"v": {"post": [1, 3]}}}, "record.state.v.post = 3", "must be < 3 (its size)"),
        ({"state": {"g_pre": {"pre": [0]}}}, "record.state.g_pre.pre", "g_pre exists in: post"),
        ({"state": {"v": {"pre": [0]}}, "every": "0.01 ms"}, "record.every", "at least run.dt"),
    ],
)
def test_bad_state_requests_are_refused_by_the_check(lif_scenario, record, path, needle):
    sc = lif_scenario(**CHAIN, duration="1 ms", record=record)
    with pytest.raises(ScenarioError) as exc:
        LIFNetwork().check(sc)
    assert str(exc.value).startswith(path) and needle in str(exc.value)


def test_validate_refuses_an_index_beyond_a_resized_population(cli, user_error):
    proc = cli(
        "validate",
        "scenarios/cuba.yaml",
        "--set",
        "record.v=null",
        "--set",
        "record.state={v: {inh: [0, 799]}, x_exc: {exc: [5]}}",
        "--set",
        "params.populations.inh.size=500",
    )
    user_error(proc, "record.state.v.inh = 799", "indices of population inh must be < 500 (its size)")


def test_record_v_and_state_together_are_refused(cli, user_error):
    proc = cli("validate", "scenarios/cuba.yaml", "--set", "record.state={v: {exc: [0]}}")
    user_error(proc, "record.v", "give either record.v or record.state")


def test_validate_prints_the_exact_state_size(cli):
    proc = cli(
        "validate",
        "scenarios/cuba.yaml",
        "--set",
        "record.v=null",
        "--set",
        "record.state={v: {exc: [0, 1], inh: [0]}, x_inh: {exc: [0]}}",
        "--set",
        "record.every=2 ms",
    )
    assert proc.returncode == 0, proc.stderr
    # 2 variables x 3 neurons (the union) x 500 samples x 8 B
    assert f"state {format_bytes(2 * 3 * 500 * 8)} (v, x_inh x 3 neurons x 500 samples)" in proc.stdout
    assert "expected from the predicted rates" in proc.stdout


def test_a_state_recording_that_cannot_fit_is_refused(cli, user_error):
    proc = cli(
        "validate",
        "scenarios/cuba.yaml",
        "--set",
        "record.v=null",
        "--set",
        "record.state={v: {exc: all}, x_exc: {exc: all}}",
        "--set",
        "run.duration=100000 s",
    )
    user_error(proc, "record.state: state recording too large")


def test_streamed_file_holds_the_same_state_and_coordinates(lif_scenario, tmp_path):
    sc = lif_scenario(
        **CHAIN,
        duration="50 ms",
        record={"state": {"x_input": {"post": "all"}, "v": {"pre": [1], "post": [0]}}, "every": "0.2 ms"},
    )
    mem = neurodyn.run(sc)
    neurodyn.run(sc, output=tmp_path / "r.h5")
    disk = neurodyn.open_run(tmp_path / "r.h5")
    for name in ("x_input", "v", "time", "neuron", "neuron_index", "spike_time", "spike_index", "spike_population"):
        assert np.array_equal(mem[name].values, disk[name].values, equal_nan=mem[name].dtype.kind == "f"), name
    assert list(disk.neuron_population.values) == list(mem.neuron_population.values) == ["post", "post", "post", "pre"]


def test_expected_spikes_that_cannot_fit_are_refused_unless_spikes_are_off(cli, user_error):
    # brunel.yaml: ~4.5e5 spikes/s predicted, so 1e5 s would keep ~6e11 bytes of spikes
    proc = cli("validate", "scenarios/brunel.yaml", "--set", "run.duration=100000 s", "--set", "record.v=null")
    user_error(proc, "record.spikes: spike recording too large", "record: {spikes: false}")
    proc = cli(
        "validate",
        "scenarios/brunel.yaml",
        "--set",
        "run.duration=100000 s",
        "--set",
        "record.v=null",
        "--set",
        "record.spikes=false",
        "--set",
        "record.rate_bin=1 s",
    )
    assert proc.returncode == 0, proc.stderr
    assert "recording: about 0 B (nothing recorded)" in proc.stdout
