"""Scenario loading: the issue's CUBA file, presets, overrides, sweeps, and one-line errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from neurodyn.errors import ScenarioError
from neurodyn.scenario import from_dict, load_scenario

DATA = Path(__file__).resolve().parents[1] / "data"
CUBA = DATA / "cuba_issue.yaml"


def test_issue_cuba_file_loads_exactly_as_written():
    s = load_scenario(CUBA)
    exc = s.params.populations["exc"]
    assert exc.size == 3200 and math.isclose(exc.tau_m, 0.02) and math.isclose(exc.v_rest, -0.049)
    assert exc.v_init.uniform == pytest.approx((-0.06, -0.05))
    assert s.params.synapses[1].weight == pytest.approx(-9e-3)
    assert s.run.n_steps == 10000 and s.run.seed == 1
    assert s.record.v.every == pytest.approx(1e-3) and s.record.v.indices == [0, 1, 2]
    # the resolved text is valid YAML holding SI values with their units and re-validates to the same parameters
    again = from_dict(yaml.safe_load(s.resolved_yaml()))
    assert again.params == s.params


@pytest.mark.parametrize(
    ("override", "path", "needle"),
    [
        ("run.dt=0", "run.dt", "positive"),
        ("run.dt=-0.1 ms", "run.dt", "positive"),
        ("run.dt=5 mV", "run.dt", "'mV' is a voltage"),
        ("run.duration=1 us", "run", "must not exceed duration"),
        ("family=lif_netwrk", "family", "did you mean 'lif_network'"),
        ("params.populations.exc.tau_mm=3", "params.populations.exc.tau_mm", "did you mean 'tau_m'"),
        ("params.synapses.0.connect.p=1.5", "params.synapses.0.connect.p", "[0, 1]"),
        ("params.synapses.0.source=ex", "params.synapses.0.source", "did you mean 'exc'"),
        ("params.synapses.1.target=[exc, inhh]", "params.synapses.1.target", "no population 'inhh'"),
        ("params.populations.exc.tau_m=5 mV", "params.populations.exc.tau_m", "expected a time"),
        ("params.synapses.0.weight=1 nS", "params.synapses.0.weight", "for a current synapse"),
        ("run.backend=genn", "run.backend", "allowed: numba, brian2"),
        ("runn.seed=1", "runn", "did you mean 'run'"),
        (
            "params.synapses.0.connect={graph: watts_strogatz, args: {k: 4, p: 0.1}}",
            "params.synapses.0.connect.graph",
            "did you mean 'watts_strogatz_graph'",
        ),
        (
            "params.synapses.0.connect={graph: watts_strogatz_graph, args: {k: 4}}",
            "params.synapses.0.connect",
            "missing a required argument: 'p'",
        ),
        ("params.populations.exc.v_reset=-40 mV", "params.populations.exc.v_reset", "below v_threshold"),
        ("model=nosuchpreset", "model", "no preset"),
    ],
)
def test_errors_name_field_value_and_allowed(override, path, needle):
    with pytest.raises(ScenarioError) as info:
        load_scenario(CUBA, [override])
    msg = str(info.value)
    assert msg.startswith(path), msg
    assert needle in msg, msg
    assert "\n" not in msg


def test_malformed_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nparams: {populations: [\n")
    with pytest.raises(ScenarioError, match="malformed YAML at line"):
        load_scenario(bad)


def test_preset_merges_under_params(tmp_path):
    (tmp_path / "models").mkdir()
    doc = yaml.safe_load(CUBA.read_text())
    preset = {"params": doc["params"]}
    (tmp_path / "models" / "mycuba.yaml").write_text(yaml.safe_dump(preset))
    scen = {
        "name": "p",
        "family": "lif_network",
        "model": "mycuba",
        "params": {"populations": {"exc": {"size": 10}}},
        "run": doc["run"],
    }
    (tmp_path / "scenarios").mkdir()
    f = tmp_path / "scenarios" / "p.yaml"
    f.write_text(yaml.safe_dump(scen))
    s = load_scenario(f)
    assert s.params.populations["exc"].size == 10  # scenario wins
    assert s.params.populations["inh"].size == 800  # preset fills in
    assert s.params.populations["exc"].tau_m == pytest.approx(0.02)


def test_overrides_and_sweep_points():
    s = load_scenario(CUBA, ["run.seed=7", "params.populations.exc.size=100"])
    assert s.run.seed == 7 and s.params.populations["exc"].size == 100
    doc = yaml.safe_load(CUBA.read_text())
    doc["sweep"] = {
        "grid": {"params.synapses.0.weight": ["0.5 mV", "1 mV"], "run.seed": [1, 2, 3]},
        "zip": {"params.populations.exc.size": [10, 20], "params.populations.inh.size": [5, 6]},
    }
    s = from_dict(doc)
    points = s.sweep.points()
    assert len(points) == 2 * 3 * 2
    p = s.with_values(points[-1])
    assert p.run.seed == 3 and p.params.populations["inh"].size == 6
    assert p.params.synapses[0].weight == pytest.approx(1e-3)


@pytest.mark.parametrize(
    ("sweep", "needle"),
    [
        ({"grid": {"run.seed": []}}, "empty list"),
        ({"zip": {"run.seed": [1, 2], "run.dt": ["0.1 ms"]}}, "unequal lengths"),
        ({"grid": {"params.populations.exc.tau_mm": [1]}}, "did you mean 'tau_m'"),
        ({"grid": {"run.sed": [1]}}, "did you mean 'seed'"),
        ({"grid": {"name": ["a"]}}, "paths start with"),
        ({}, "non-empty"),
    ],
)
def test_bad_sweeps(sweep, needle):
    doc = yaml.safe_load(CUBA.read_text())
    doc["sweep"] = sweep
    with pytest.raises(ScenarioError, match=needle.replace("(", r"\(")):
        from_dict(doc)


def test_overrides_reach_into_preset_lists(repo):
    """--set can change values that only the model preset provides (params.synapses.0.weight)."""
    s = load_scenario(repo / "scenarios" / "brunel.yaml", ["params.synapses.0.weight=0.2 mV", "run.seed=4"])
    assert s.params.synapses[0].weight == pytest.approx(2e-4)
    assert s.run.seed == 4
    base = load_scenario(repo / "scenarios" / "brunel.yaml")
    assert base.params.synapses[0].weight != pytest.approx(2e-4)
    assert len(s.params.synapses) == len(base.params.synapses)
