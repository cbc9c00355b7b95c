"""The Python interface: neurodyn.run / compare / plot, Scenario constructors and the ds.neurodyn accessor."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

import neurodyn
from neurodyn.errors import ScenarioError, UserError
from neurodyn.quantities import parse_quantity

#: a tiny lif_network run (a fraction of a second): one population, constant drive, exact f-I theory
DOC = {
    "name": "api_tiny",
    "family": "lif_network",
    "params": {
        "populations": {
            "a": {"size": 4, "tau_m": "20 ms", "v_rest": "-70 mV", "v_reset": "-70 mV", "v_threshold": "-50 mV"}
        },
        "inputs": [{"kind": "constant", "target": "a", "drive": "25 mV"}],
    },
    "run": {"duration": "0.3 s", "dt": "0.1 ms", "seed": 1},
    "record": {"spikes": True, "v": {"every": "1 ms", "indices": [0, 1]}},
}


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run inside an empty temporary working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def tiny():
    return neurodyn.run(DOC, progress=False)


def _stored(ds) -> dict:
    return yaml.safe_load(ds.attrs["scenario"])


def test_run_from_dict_in_memory_writes_nothing(in_tmp, tiny):
    ds = neurodyn.run(DOC, progress=False)
    assert list(in_tmp.iterdir()) == []
    assert ds.attrs["family"] == "lif_network" and ds.attrs["scenario_name"] == "api_tiny"
    # deterministic: the same document gives the same spikes
    np.testing.assert_array_equal(ds["spike_time"].values, tiny["spike_time"].values)
    assert ds.sizes["spike"] > 0 and "rate_theory" in ds


def test_run_from_path_and_from_scenario_agree(tmp_path, tiny):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(DOC))
    from_path = neurodyn.run(path, progress=False)
    from_scenario = neurodyn.run(neurodyn.Scenario.from_yaml(path), progress=False)
    for ds in (from_path, from_scenario):
        np.testing.assert_array_equal(ds["spike_time"].values, tiny["spike_time"].values)
        assert ds.attrs["scenario"] == tiny.attrs["scenario"]


def test_set_overrides_a_preset_value(in_tmp, repo):
    doc = {"name": "cuba_small", "family": "lif_network", "model": "cuba", "run": {"duration": "20 ms", "dt": "0.1 ms"}}
    ds = neurodyn.run(
        doc,
        set={"params.populations.exc.size": 40, "params.populations.inh.size": 10, "params.synapses.0.weight": "2 mV"},
        progress=False,
    )
    params = _stored(ds)["params"]
    assert params["populations"]["exc"]["size"] == 40
    # stored in SI units, with the unit
    assert parse_quantity(params["synapses"][0]["weight"], "voltage") == pytest.approx(2e-3)
    assert parse_quantity(params["synapses"][1]["weight"], "voltage") == pytest.approx(-9e-3)  # the rest of the preset
    assert ds["population_size"].values.tolist() == [40, 10]
    # the same with a file: presets are found beside the scenario, overrides apply after them
    s = neurodyn.Scenario.from_yaml(repo / "scenarios" / "cuba.yaml", {"params.populations.exc.size": 40})
    assert s.params.populations["exc"].size == 40


def test_output_is_written_as_the_cli_writes_it(tmp_path, cli):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(DOC))
    cli_out, api_out = tmp_path / "cli.h5", tmp_path / "api.h5"
    proc = cli("run", path, "--output", cli_out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    ds = neurodyn.run(path, output=api_out, progress=False)
    assert api_out.is_file()
    cli_ds, api_ds = neurodyn.open_run(cli_out), neurodyn.open_run(api_out)
    assert set(api_ds.variables) == set(cli_ds.variables) == set(ds.variables)
    for name in cli_ds.variables:
        np.testing.assert_array_equal(api_ds[name].values, cli_ds[name].values, err_msg=name)
        assert api_ds[name].attrs == cli_ds[name].attrs, name
    assert api_ds.attrs["scenario"] == cli_ds.attrs["scenario"]
    # an existing result is refused, as by the CLI, and replaced with force=True
    with pytest.raises(UserError, match="exists"):
        neurodyn.run(path, output=api_out, progress=False)
    neurodyn.run(path, output=api_out, force=True, progress=False)


@pytest.mark.parametrize(
    ("set_", "cli_set"),
    [
        ({"params.populations.a.tau_m": "-5 ms"}, "params.populations.a.tau_m=-5 ms"),
        ({"run.backend": "numbaa"}, "run.backend=numbaa"),
        ({"params.populations.a.sise": 3}, "params.populations.a.sise=3"),
    ],
)
def test_bad_input_raises_the_cli_message(tmp_path, set_, cli_set, cli):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(DOC))
    with pytest.raises(ScenarioError) as info:
        neurodyn.run(path, set=set_, progress=False)
    proc = cli("validate", path, "--set", cli_set)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"neurodyn: error: {info.value}"
    with pytest.raises(ScenarioError) as from_dict:
        neurodyn.run(DOC, set=set_, progress=False)
    assert str(from_dict.value) == str(info.value)


def test_a_sweep_is_refused_with_a_pointer():
    swept = {**DOC, "sweep": {"grid": {"run.seed": [1, 2]}}}
    for source in (swept, neurodyn.Scenario.from_dict(swept)):
        with pytest.raises(ScenarioError, match=r"^sweep = .*'neurodyn sweep FILE'.*open_sweep.*with_values"):
            neurodyn.run(source, set={"run.duration": "0.1 s"}, progress=False)
    # one point of it runs
    point = neurodyn.Scenario.from_dict(swept).with_values({"run.seed": 2, "run.duration": "0.1 s"})
    assert neurodyn.run(point, progress=False).attrs["seed"] == 2


def test_direct_construction_is_validated():
    s = neurodyn.Scenario.from_dict(DOC)
    fields = {k: getattr(s, k) for k in ("name", "family", "params", "run", "record")}
    with pytest.raises(ScenarioError, match=r"^params = .*a validated LIFParams model; build scenarios with"):
        neurodyn.Scenario(**{**fields, "params": DOC["params"]})
    with pytest.raises(ScenarioError, match=r"^run = "):
        neurodyn.Scenario(**{**fields, "run": DOC["run"]})
    with pytest.raises(ScenarioError, match=r"^family = 'lif_netwrk': unknown family"):
        neurodyn.Scenario(**{**fields, "family": "lif_netwrk"})
    # validated parts are accepted (dataclasses.replace and friends keep working)
    assert neurodyn.Scenario(**fields).params is s.params


def test_load_scenario_accepts_a_mapping():
    s = neurodyn.load_scenario(DOC, ["run.seed=5"])
    assert s.run.seed == 5 and s.params.populations["a"].size == 4
    assert neurodyn.load_scenario(DOC, {"run.seed": 6}).run.seed == 6


def test_scenario_round_trips_through_yaml(tmp_path):
    s = neurodyn.Scenario.from_dict(DOC).with_values({"run.seed": 3})
    path = tmp_path / "again.yaml"
    path.write_text(s.to_yaml())
    again = neurodyn.Scenario.from_yaml(path)
    assert again.params == s.params and again.run == s.run and again.record == s.record
    assert again.run.seed == 3


def test_compare_is_a_dataframe_of_the_cli_rows(tiny):
    from neurodyn.compare import all_rows

    table = neurodyn.compare(tiny)
    assert list(table.columns) == [
        "quantity",
        "where",
        "simulated",
        "ci",
        "predicted",
        "ratio",
        "kind",
        "rel_tol",
        "verdict",
        "source",
    ]
    rows = all_rows(tiny)
    assert len(table) == len(rows) > 0
    assert table["verdict"].tolist() == [r.verdict for r in rows]
    rate = table[table["quantity"] == "rate"].iloc[0]
    assert rate["where"] == "population=a" and rate["kind"] == "estimate"
    # constant drive 25 mV over a 20 mV gap: the exact f-I curve, 1 / (tau_m ln(25/5)) = 31.07 Hz
    assert rate["predicted"] == pytest.approx(1 / (0.02 * np.log(25 / 5)), rel=1e-6)
    assert rate["verdict"] == "agree"


def test_plot_returns_figures_and_saves_the_cli_files(tmp_path, tiny):
    from matplotlib.figure import Figure

    figs = neurodyn.plot(tiny)
    assert len(figs) == 1 and all(isinstance(f, Figure) for f in figs)
    assert [f.get_label() for f in figs] == ["overview"]
    assert list(tmp_path.iterdir()) == []
    figs = neurodyn.plot(tiny, out_dir=tmp_path / "figs")
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["api_tiny_overview.png"]


def test_accessor_on_open_run(tmp_path, tiny, cli):
    path = tmp_path / "tiny.h5"
    neurodyn.run(DOC, output=path, progress=False)
    ds = neurodyn.open_run(path)
    assert ds.neurodyn.family == "lif_network"
    assert ds.neurodyn.compare().equals(neurodyn.compare(tiny))
    assert ds.neurodyn.scenario.params == neurodyn.Scenario.from_dict(DOC).params
    figs = ds.neurodyn.plot(out_dir=tmp_path / "api")
    assert len(figs) == 1
    proc = cli("plot", path, "--out", tmp_path / "cli")
    assert proc.returncode == 0, proc.stderr
    # the same files as `neurodyn plot`, byte for byte, named after the result file
    assert sorted(p.name for p in (tmp_path / "api").iterdir()) == ["tiny_overview.png"]
    assert (tmp_path / "api" / "tiny_overview.png").read_bytes() == (
        tmp_path / "cli" / "tiny_overview.png"
    ).read_bytes()


def test_import_neurodyn_stays_light_and_the_accessor_comes_with_open_run(tmp_path, repo):
    """``import neurodyn`` loads none of the heavy libraries; after open_run the accessor is there."""
    code = (
        "import sys, neurodyn\n"
        "heavy = [m for m in ('xarray', 'pydantic', 'numba', 'matplotlib', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import xarray as xr\n"
        "ds = neurodyn.open_run(sys.argv[1])\n"
        "print(type(ds.neurodyn).__name__)\n"
    )
    path = tmp_path / "tiny.h5"
    neurodyn.run(DOC, output=path, progress=False)
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "NeurodynAccessor"


def test_compare_is_the_function_whatever_was_imported_first():
    import neurodyn.compare as module  # noqa: F401 - binds the submodule name on the package

    assert callable(neurodyn.compare) and neurodyn.compare.__module__ == "neurodyn.api"


def test_docstring_examples_run(monkeypatch, repo):
    """The Examples sections of the API's docstrings are correct (run from the repository root)."""
    import doctest

    import neurodyn.api
    import neurodyn.quantities
    import neurodyn.scenario

    monkeypatch.chdir(repo)
    for module in (neurodyn.quantities, neurodyn.scenario, neurodyn.api):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0, module.__name__
