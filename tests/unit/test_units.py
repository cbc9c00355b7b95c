"""Units that cannot be mistaken: a plain number in a dimensioned field is refused on every path a value
comes in by, zero and dimensionless numbers are fine, stored scenarios round-trip, and files written before
units were required (SI numbers without units in their ``scenario`` attribute) still open and are reused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import pytest
import yaml

import neurodyn
from neurodyn.errors import ScenarioError
from neurodyn.scenario import from_dict, load_scenario, same_stored_scenario
from neurodyn.sweep import execute_sweep, open_sweep, plan_sweep
from tests import sweep_family as fam

REPO = Path(__file__).resolve().parents[2]
CUBA = REPO / "scenarios" / "cuba.yaml"
SHIPPED = sorted((REPO / "scenarios").glob("*.yaml"))
#: the refusal of ``params.synapses.0.weight = 8`` (a current synapse's weight is a voltage)
WEIGHT_8 = "params.synapses.0.weight = 8: a voltage needs a unit, e.g. '8 mV' for a current synapse"

#: a tiny lif_network run: one population, constant drive
TINY = {
    "name": "units_tiny",
    "family": "lif_network",
    "params": {
        "populations": {
            "a": {"size": 3, "tau_m": "20 ms", "v_rest": "-70 mV", "v_reset": "-70 mV", "v_threshold": "-50 mV"}
        },
        "inputs": [{"kind": "constant", "target": "a", "drive": "25 mV"}],
        "synapses": [{"source": "a", "target": "a", "connect": {"p": 0.5}, "weight": "0.5 mV", "tau": "5 ms"}],
    },
    "run": {"duration": "0.1 s", "dt": "0.1 ms", "seed": 1},
    "record": {"v": {"every": "1 ms", "indices": [0]}},
}

_SI_TEXT = re.compile(r"^(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?) (s|V|Hz|S|A|F|ohm|m)$")


def old_style(text: str) -> str:
    """A stored scenario as versions before units were required wrote it: SI numbers without units.

    The ``sweep:`` section held the values as the user wrote them then as now, so it is left alone.
    """

    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items()}
        if isinstance(node, list):
            return [strip(v) for v in node]
        m = _SI_TEXT.match(node) if isinstance(node, str) else None
        return float(m.group(1)) if m else node

    doc = yaml.safe_load(text)
    return yaml.safe_dump({k: v if k == "sweep" else strip(v) for k, v in doc.items()}, sort_keys=False)


def _set_stored(path: Path, text: str) -> None:
    with h5py.File(path, "r+") as f:
        f.attrs["scenario"] = text


def _cuba_doc() -> dict:
    return yaml.safe_load(CUBA.read_text())


# --------------------------------------------------------------------------- refused on every path


def _from_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(CUBA.read_text().replace("weight: 1.62 mV", "weight: 8"))
    load_scenario(path)


def _from_preset(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    preset = (REPO / "models" / "cuba.yaml").read_text().replace("weight: 1.62 mV", "weight: 8")
    (tmp_path / "models" / "mine.yaml").write_text(preset)
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nfamily: lif_network\nmodel: mine\nrun: {duration: 1 s, dt: 0.1 ms}\n")
    load_scenario(path)


def _from_mapping(tmp_path: Path) -> None:
    doc = _cuba_doc()
    doc["params"]["synapses"][0]["weight"] = 8
    neurodyn.Scenario.from_dict(doc)


def _from_sweep_list(tmp_path: Path) -> None:
    doc = {**_cuba_doc(), "sweep": {"grid": {"params.synapses.0.weight": [8, 9]}}}
    plan_sweep(neurodyn.Scenario.from_dict(doc), tmp_path / "out")  # refused before anything is written


PATHS = {
    "scenario file": _from_file,
    "--set": lambda tmp: load_scenario(CUBA, ["params.synapses.0.weight=8"]),
    "Python mapping": _from_mapping,
    "mapping of overrides": lambda tmp: neurodyn.Scenario.from_dict(_cuba_doc(), {"params.synapses.0.weight": 8}),
    "with_values": lambda tmp: load_scenario(CUBA).with_values({"params.synapses.0.weight": 8}),
    "neurodyn.run(set=)": lambda tmp: neurodyn.run(CUBA, set={"params.synapses.0.weight": 8}, progress=False),
    "preset": _from_preset,
    "sweep list": _from_sweep_list,
}


@pytest.mark.parametrize("how", PATHS)
def test_plain_number_is_refused_on_every_path(how, tmp_path):
    with pytest.raises(ScenarioError) as info:
        PATHS[how](tmp_path)
    message = str(info.value)
    if how == "sweep list":
        assert message == f"{WEIGHT_8} (sweep point params.synapses.0.weight=8)"
        assert not (tmp_path / "out").exists()
    else:
        assert message == WEIGHT_8


#: (scenario, --set override, the refusal): one field of each dimension the families have
DIMENSIONED = [
    ("cuba", "params.populations.exc.tau_m=20", "params.populations.exc.tau_m = 20: a time needs a unit, e.g. '20 ms'"),
    ("cuba", "run.duration=0.5", "run.duration = 0.5: a time needs a unit, e.g. '0.5 ms'"),
    (
        "field_dispersion",
        "record.snapshots.every='10'",
        "record.snapshots.every = '10': a time needs a unit, e.g. '10 ms'",
    ),
    (
        "cuba",
        "params.populations.exc.v_rest=-65",
        "params.populations.exc.v_rest = -65: a voltage needs a unit, e.g. '-65 mV'",
    ),
    (
        "cuba",
        "params.populations.exc.v_init=-0.06",
        "params.populations.exc.v_init = -0.06: a voltage needs a unit, e.g. '-0.06 mV'",
    ),
    (
        "cuba",
        "params.populations.exc.v_init={uniform: [-60 mV, -50]}",
        "params.populations.exc.v_init.uniform.1 = -50: a voltage needs a unit, e.g. '-50 mV'",
    ),
    ("quickstart", "params.inputs.2.rate=11", "params.inputs.2.rate = 11: a frequency needs a unit, e.g. '11 Hz'"),
    (
        "coba",
        "params.populations.exc.g_leak=10",
        "params.populations.exc.g_leak = 10: a conductance needs a unit, e.g. '10 nS'",
    ),
    (
        "coba",
        "params.synapses.0.weight=6",
        "params.synapses.0.weight = 6: a conductance needs a unit, e.g. '6 nS' for a conductance synapse",
    ),
    (
        "quickstart",
        "params.inputs.0={kind: constant, target: regular, current: 50}",
        "params.inputs.0.current = 50: a current needs a unit, e.g. '50 pA'",
    ),
    ("field_dispersion", "params.lattice.h=1", "params.lattice.h = 1: a length needs a unit, e.g. '1 mm'"),
    ("sync_logistic", "params.burn_in=15", "params.burn_in = 15: a time needs a unit, e.g. '15 ms'"),
]


@pytest.mark.parametrize(("scenario", "override", "message"), DIMENSIONED)
def test_every_dimension_names_field_value_and_unit(scenario, override, message):
    with pytest.raises(ScenarioError) as info:
        load_scenario(REPO / "scenarios" / f"{scenario}.yaml", [override])
    assert str(info.value) == message


def test_zero_needs_no_unit():
    s = load_scenario(
        CUBA,
        ["params.populations.exc.v_rest=0", "params.populations.exc.t_ref=0", "params.synapses.0.delay=0.0"],
    )
    exc = s.params.populations["exc"]
    assert exc.v_rest == 0.0 and exc.t_ref == 0.0 and s.params.synapses[0].delay == 0.0
    # zero passes the unit rule; a field that must be positive still refuses it, saying why
    with pytest.raises(ScenarioError, match=r"^run\.dt = 0: must be a positive time"):
        load_scenario(CUBA, ["run.dt=0"])


def test_dimensionless_fields_take_plain_numbers():
    s = load_scenario(
        CUBA, ["params.populations.exc.size=40", "params.synapses.0.connect.p=0.05", "run.seed=3", "run.threads=1"]
    )
    assert s.params.populations["exc"].size == 40 and s.params.synapses[0].connect.p == 0.05 and s.run.seed == 3


@pytest.mark.parametrize("value", ["8mV", "8 mV", "'8 mV'", "0.008 V", "8e-3 V"])
def test_written_with_a_unit_is_accepted(value):
    assert load_scenario(CUBA, [f"params.synapses.0.weight={value}"]).params.synapses[0].weight == pytest.approx(8e-3)


# --------------------------------------------------------------------------- stored scenarios


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_to_yaml_of_every_shipped_scenario_reads_back_to_the_same_values(path, tmp_path):
    s = load_scenario(path)
    text = s.to_yaml()
    copy = tmp_path / path.name
    copy.write_text(text)
    again = neurodyn.Scenario.from_yaml(copy)
    # model equality compares every float exactly: SI values written with the SI unit are bit-identical
    assert again.params == s.params and again.run == s.run and again.record == s.record
    assert again.sweep == s.sweep and again.to_yaml() == text


def test_stored_text_writes_si_units_at_full_precision():
    text = load_scenario(CUBA).to_yaml()
    exc = yaml.safe_load(text)["params"]["populations"]["exc"]
    assert exc["tau_m"] == "0.02 s" and exc["v_rest"] == "-0.049 V" and exc["g_leak"] == "1e-08 S"
    weight = yaml.safe_load(text)["params"]["synapses"][0]["weight"]
    assert weight == f"{1.62 * 1e-3!r} V" == "0.0016200000000000001 V"  # the float "1.62 mV" resolves to


def test_old_style_result_file_still_opens(tmp_path):
    path = tmp_path / "tiny.h5"
    neurodyn.run(TINY, output=path, progress=False)
    current = neurodyn.open_run(path).attrs["scenario"]
    old = old_style(current)
    assert "tau_m: 0.02\n" in old and " s\n" not in old  # SI numbers without units, as earlier versions wrote
    with pytest.raises(ScenarioError, match="needs a unit"):  # read as user input, it would be refused
        from_dict(yaml.safe_load(old), preset_applied=True)
    _set_stored(path, old)

    ds = neurodyn.open_run(path)
    s = neurodyn.scenario_of(ds)
    expected = neurodyn.Scenario.from_dict(TINY)
    assert s.params == expected.params and s.run == expected.run and s.record == expected.record
    assert s.to_yaml() == current  # written again with units
    assert ds.neurodyn.scenario.params == expected.params
    # derived scenarios are user input again, and the stored values carry units now
    again = s.with_values({"run.seed": 2})
    assert again.run.seed == 2 and again.params == expected.params
    with pytest.raises(ScenarioError, match=r"^run\.duration = 1: a time needs a unit"):
        s.with_values({"run.duration": 1})
    assert same_stored_scenario(old, current) and same_stored_scenario(current, current)
    assert not same_stored_scenario(old.replace("seed: 1", "seed: 2"), current)
    assert not same_stored_scenario("not: [a scenario", current) and not same_stored_scenario(None, current)


@pytest.fixture
def _ou_family(monkeypatch):
    fam.register()
    monkeypatch.setenv("NEURODYN_FAMILIES", fam.ENV["NEURODYN_FAMILIES"])


def test_old_style_sweep_is_opened_and_its_points_reused(tmp_path, monkeypatch, _ou_family):
    counter = tmp_path / "count.txt"
    monkeypatch.setenv(fam.COUNTER_ENV, str(counter))
    spec = "{grid: {params.tau: [5 ms, 20 ms], run.seed: [1, 2]}}"
    sc = neurodyn.load_scenario(fam.write_scenario(tmp_path / "s.yaml", spec, run="{duration: 0.05 s, dt: 0.1 ms}"))
    root = tmp_path / "out"
    first = execute_sweep(sc, output=root, workers=1)
    reference = open_sweep(first.path, load=True)
    assert len(first.ran) == 4 and len(counter.read_text().splitlines()) == 4

    # make the folder what an earlier version left: every stored scenario with SI numbers without units
    for point in (root / "points").glob("*.h5"):
        _set_stored(point, old_style(neurodyn.open_run(point).attrs["scenario"]))
    _set_stored(first.path, old_style(reference.attrs["scenario"]))
    manifest = json.loads((root / "sweep.json").read_text())
    manifest["scenario"] = old_style(manifest["scenario"])
    (root / "sweep.json").write_text(json.dumps(manifest))
    assert "tau: 0.01\n" in manifest["scenario"] and "- 5 ms\n" in manifest["scenario"]

    old = open_sweep(root)
    assert neurodyn.scenario_of(old).params == sc.params  # the combined file's stored scenario
    assert neurodyn.scenario_of(neurodyn.open_run(root / "points" / "tau=5ms_seed=1.h5")).params.tau == 0.005

    # resuming: no point runs again, the combined result is the same
    first.path.unlink()
    resumed = execute_sweep(sc, output=root, workers=1)
    assert resumed.ran == [] and sorted(resumed.reused) == sorted(first.ran)
    assert len(counter.read_text().splitlines()) == 4
    fam.assert_same_data(reference, open_sweep(resumed.path, load=True))
