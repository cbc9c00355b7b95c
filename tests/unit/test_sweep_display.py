"""A swept coordinate keeps its path and the unit its values were written in (stored in SI)."""

from __future__ import annotations

import json

import pytest

import neurodyn
from neurodyn.plotting import axis_label
from neurodyn.quantities import in_unit
from neurodyn.sweep import execute_sweep, load_plan, plan_sweep
from neurodyn.sweep.plan import display_values
from tests import sweep_family as fam


@pytest.fixture(autouse=True)
def _family(monkeypatch):
    fam.register()
    monkeypatch.setenv("NEURODYN_FAMILIES", fam.ENV["NEURODYN_FAMILIES"])


@pytest.mark.parametrize(
    ("written", "display", "shown"),
    [
        ("[5 ms, 20 ms]", "ms", [5.0, 20.0]),
        ("[500 us, 2 ms]", "us", [500.0, 2000.0]),  # the first value's unit, when every value has one
        ("[5 ms, 0.02 s]", "ms", [5.0, 20.0]),
        ("[0, 20 ms]", "s", [0.0, 0.02]),  # a plain zero (the one number a time may be without a unit): SI
    ],
)
def test_display_units_are_the_units_written(tmp_path, written, display, shown):
    sc = neurodyn.load_scenario(fam.write_scenario(tmp_path / "s.yaml", f"{{grid: {{params.tau: {written}}}}}"))
    (tau,) = plan_sweep(sc, tmp_path / "out").dims
    assert tau.units == {"params.tau": "s"} and tau.display_units == {"params.tau": display}
    assert tau.shown("params.tau") == (shown, display)


def test_dimensionless_and_plain_values_show_as_they_are(tmp_path):
    sc = neurodyn.load_scenario(fam.write_scenario(tmp_path / "s.yaml", "{grid: {params.sigma: [0.5, 2]}}"))
    (sigma,) = plan_sweep(sc, tmp_path / "out").dims
    assert sigma.display_units == {"params.sigma": "1"} and sigma.shown("params.sigma") == ([0.5, 2], "1")


def test_sweep_json_and_combined_coordinates_carry_path_and_display_units(tmp_path):
    sc = neurodyn.load_scenario(fam.write_scenario(tmp_path / "s.yaml", "{grid: {params.tau: [5 ms, 20 ms]}}"))
    out = execute_sweep(sc, output=tmp_path / "out", workers=1)
    manifest = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert manifest["dims"][0]["display_units"] == {"params.tau": "ms"}
    ds = neurodyn.open_sweep(out.plan.root)
    assert ds["tau"].values.tolist() == [0.005, 0.02]
    assert {k: ds["tau"].attrs[k] for k in ("units", "display_units", "sweep_path", "long_name")} == {
        "units": "s",
        "display_units": "ms",
        "sweep_path": "params.tau",
        "long_name": "swept params.tau",
    }


def test_a_sweep_json_without_display_units_still_loads(tmp_path):
    sc = neurodyn.load_scenario(fam.write_scenario(tmp_path / "s.yaml", "{grid: {params.tau: [5 ms, 20 ms]}}"))
    plan = plan_sweep(sc, tmp_path / "out")
    doc = plan.manifest()
    for d in doc["dims"]:
        del d["display_units"]  # as sweep.json files written before the attribute existed
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sweep.json").write_text(json.dumps(doc))
    (tau,) = load_plan(tmp_path / "out").dims
    assert tau.shown("params.tau") == ([0.005, 0.02], "s")


def test_in_unit_and_display_values():
    assert in_unit(0.0005, "mV") == 0.5  # not 0.49999999999999994
    assert display_values([0.0005, 0.001, "x"], "V", "mV") == ([0.5, 1.0, "x"], "mV")
    assert display_values([0.0005], "V", "ms") == ([0.0005], "V")  # a unit of another dimension is ignored
    assert display_values([0.5], "1", None) == ([0.5], "1")
    assert display_values([0.5], "V", ["mV"]) == ([0.5], "V")  # what a damaged file's attribute may hold


def test_axis_labels_leave_out_dimensionless_units():
    assert [axis_label("rate", u) for u in ("Hz", "1", "")] == ["rate (Hz)", "rate", "rate"]
