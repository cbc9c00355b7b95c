"""The NEST cluster path from the command line: ``neurodyn export --to nest``, the script, ``neurodyn import-nest``.

The exported script builds the network with the very code and seed of ``run.backend: nest``, so run with
one process and the scenario's threads it must reproduce the in-process NEST run spike for spike; the
import must give the file a run gives. Output safety as for ``neurodyn run``. Skipped without NEST.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = [
    pytest.mark.nest,
    pytest.mark.skipif(
        importlib.util.find_spec("nest") is None, reason="NEST is not installed: pip install 'neurodyn[nest]'"
    ),
]

SMALL = """
name: small
family: lif_network
params:
  populations:
    exc: {size: 80, tau_m: 20 ms, v_rest: -49 mV, v_reset: -60 mV, v_threshold: -50 mV, t_ref: 5 ms,
          v_init: {uniform: [-60 mV, -50 mV]}}
    inh: {size: 20, tau_m: 20 ms, v_rest: -49 mV, v_reset: -60 mV, v_threshold: -50 mV, t_ref: 5 ms,
          v_init: {normal: [-55 mV, 2 mV]}}
  synapses:
    - {source: exc, target: [exc, inh], connect: {p: 0.1}, kind: current, weight: 1.6 mV, tau: 5 ms, delay: 1 ms}
    - {source: inh, target: [exc, inh], connect: {in_degree: 4}, kind: current, weight: -9 mV, tau: 10 ms}
    - {source: exc, target: exc, connect: {graph: watts_strogatz_graph, args: {k: 4, p: 0.1}}, weight: 0.5 mV,
       tau: 5 ms, delay: 0.5 ms}
  inputs:
    - {kind: poisson, target: exc, rate: 5 Hz, n_sources: 20, weight: 1 mV, tau: 5 ms}
    - {kind: noise, target: inh, mu: 1 mV, sigma: 1 mV}
run: {duration: 200 ms, dt: 0.1 ms, seed: 3}
record: {v: {every: 1 ms, indices: [5, 0, 99]}}
"""


def _script(path: Path, *args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run an exported script with this interpreter, as a user would (``python OUT.py``)."""
    return subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd or path.parent,
        env={**os.environ, **(env or {})},
    )


def _in_process(scenario_path: Path, *overrides: str):
    from neurodyn.families.lif_network import LIFNetwork
    from neurodyn.progress import QUIET
    from neurodyn.scenario import load_scenario

    family = LIFNetwork()
    sc = load_scenario(scenario_path, ["run.backend=nest", *overrides])
    return family.simulate(family.prepare(sc), QUIET)


def _same_recordings(a, b) -> None:
    assert np.isfinite(a.v.values).all()  # every sample of the run, the last ones included
    np.testing.assert_array_equal(a.spike_index.values, b.spike_index.values)
    np.testing.assert_array_equal(a.spike_time.values, b.spike_time.values)
    np.testing.assert_array_equal(a.neuron.values, b.neuron.values)
    np.testing.assert_array_equal(a.v.values, b.v.values)
    np.testing.assert_array_equal(a.rate.values, b.rate.values)


def test_cuba_exported_script_reproduces_the_in_process_nest_run(tmp_path, cli, repo) -> None:
    """``scenarios/cuba.yaml`` exported, run by ``python OUT.py``, imported: the spikes and v of the
    in-process ``run.backend: nest`` run, bit for bit, and the result file of a run (theory included)."""
    import neurodyn

    script = tmp_path / "cuba_nest.py"
    proc = cli("export", repo / "scenarios" / "cuba.yaml", script, "--to", "nest")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert os.access(script, os.X_OK)
    ran = _script(script)
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr == ""  # no banner, no warnings
    out = tmp_path / "cuba_nest_output"
    info = json.loads((out / "rank-0.json").read_text())
    assert info["num_processes"] == 1 and info["threads"] == 1
    result = tmp_path / "cuba.h5"
    proc = cli("import-nest", out, "--output", result)
    assert proc.returncode == 0, proc.stderr
    assert f"result: {result}" in proc.stdout

    imported = neurodyn.open_run(result)
    direct = _in_process(repo / "scenarios" / "cuba.yaml")
    assert imported.sizes["spike"] > 15_000
    _same_recordings(imported, direct)
    assert imported.attrs["backend"] == "nest" and imported.attrs["family"] == "lif_network"
    assert imported.attrs["n_synapses"] == direct.attrs["n_synapses"] == info["n_synapses"]
    assert imported.attrs["nest_model"] == {"exc": "iaf_psc_exp", "inh": "iaf_psc_exp"}
    assert "rate_theory" in imported and "scenario" in imported.attrs
    # the layout of the in-process run's file (plus the theory and provenance a run adds too)
    neurodyn.write_run(direct, tmp_path / "direct.h5")
    direct = neurodyn.open_run(tmp_path / "direct.h5")
    assert set(direct.variables) <= set(imported.variables)
    for name in direct.variables:
        assert imported[name].dims == direct[name].dims, name
        assert imported[name].dtype == direct[name].dtype, name
        assert imported[name].attrs == direct[name].attrs, name


def test_every_rule_and_input_round_trips_and_threads_are_honoured(tmp_path, cli) -> None:
    """p, in_degree and networkx rules, delays, Poisson and noise inputs, v probes out of order, two threads:
    the script (``--threads`` defaults to run.threads) reproduces the in-process run exactly."""
    import neurodyn

    sc = tmp_path / "small.yaml"
    sc.write_text(SMALL)
    script = tmp_path / "small.py"
    assert cli("export", sc, script, "--to", "nest", "--set", "run.threads=2").returncode == 0
    out = tmp_path / "out"
    ran = _script(script, "--output-dir", str(out))
    assert ran.returncode == 0, ran.stderr
    info = json.loads((out / "rank-0.json").read_text())
    assert info["threads"] == 2 and info["virtual_processes"] == 2
    proc = cli("import-nest", out, "--output", tmp_path / "small.h5")
    assert proc.returncode == 0, proc.stderr
    imported = neurodyn.open_run(tmp_path / "small.h5")
    direct = _in_process(sc, "run.threads=2")
    assert imported.sizes["spike"] > 100
    _same_recordings(imported, direct)
    assert list(imported.neuron.values) == [5, 0, 99]
    assert imported.attrs["nest_threads"] == 2


def test_export_output_safety(tmp_path, cli, user_error, repo) -> None:
    """An existing file is replaced only with --force and only when neurodyn exported it; nothing is left
    behind by a refused export; what NEST cannot express is refused before anything is written."""
    cuba = repo / "scenarios" / "cuba.yaml"
    script = tmp_path / "net.py"
    assert cli("export", cuba, script, "--to", "nest").returncode == 0
    first = script.read_text()
    user_error(cli("export", cuba, script, "--to", "nest", "--set", "run.seed=2"), str(script), "--force")
    assert script.read_text() == first
    assert cli("export", cuba, script, "--to", "nest", "--set", "run.seed=2", "--force").returncode == 0
    assert script.read_text() != first
    foreign = tmp_path / "mine.py"
    foreign.write_text("print('my own work')\n")
    user_error(cli("export", cuba, foreign, "--to", "nest", "--force"), "not a program neurodyn exported")
    assert foreign.read_text() == "print('my own work')\n"
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(
        SMALL.replace(
            "- {source: inh, target: [exc, inh], connect: {in_degree: 4}, kind: current, weight: -9 mV, tau: 10 ms}",
            "- {source: inh, target: [exc, inh], connect: {in_degree: 4}, kind: conductance, weight: 9 nS, "
            "tau: 10 ms, reversal: -80 mV}",
        )
    )
    user_error(cli("export", mixed, tmp_path / "mixed.py", "--to", "nest"), "params.synapses", "iaf_cond_exp")
    user_error(
        cli("export", cuba, tmp_path / "x.py", "--to", "nest", "--set", "params.synapses.0.connect={in_degree: 5000}"),
        "params.synapses.0.connect.in_degree",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.py", "mixed.yaml", "net.py"]


def test_import_refuses_incomplete_or_foreign_output(tmp_path, cli, user_error) -> None:
    sc = tmp_path / "small.yaml"
    sc.write_text(SMALL.replace("200 ms", "50 ms"))
    script = tmp_path / "small.py"
    assert cli("export", sc, script, "--to", "nest").returncode == 0
    out = tmp_path / "small_output"
    assert _script(script).returncode == 0
    result = tmp_path / "r.h5"
    assert cli("import-nest", out, "--output", result).returncode == 0
    # output safety of neurodyn run: an existing result needs --force; a foreign file is never replaced
    user_error(cli("import-nest", out, "--output", result), str(result), "--force")
    assert cli("import-nest", out, "--output", result, "--force").returncode == 0
    foreign = tmp_path / "data.h5"
    foreign.write_bytes(b"not neurodyn's")
    user_error(cli("import-nest", out, "--output", foreign, "--force"), "not a neurodyn result")
    # a scenario edited after the run no longer describes the recordings
    yaml_file = out / "scenario.yaml"
    original = yaml_file.read_text()
    yaml_file.write_text(original.replace("0.0016", "0.0017"))
    user_error(cli("import-nest", out, "--output", tmp_path / "e.h5"), "another network")
    yaml_file.write_text(original)
    # a rank that has not finished, and folders that are not a script's output
    (out / "rank-0.json").rename(out / "elsewhere.json")
    user_error(cli("import-nest", out, "--output", tmp_path / "e.h5"), "no rank-<r>.json")
    user_error(cli("import-nest", tmp_path / "missing", "--output", tmp_path / "e.h5"), "no such folder")
    user_error(cli("import-nest", tmp_path, "--output", tmp_path / "e.h5"), "no scenario.yaml")
    assert not (tmp_path / "e.h5").exists()


def test_script_refuses_mpirun_without_an_mpi_build(tmp_path, cli, repo) -> None:
    """Started by an MPI launcher, a NEST built without MPI would run N identical copies: refused."""
    import nest

    if nest.build_info.get("have_mpi"):
        pytest.skip("this NEST has MPI")
    script = tmp_path / "cuba.py"
    assert cli("export", repo / "scenarios" / "cuba.yaml", script, "--to", "nest").returncode == 0
    ran = _script(script, env={"OMPI_COMM_WORLD_SIZE": "4"})
    assert ran.returncode == 2
    assert "built without MPI" in ran.stderr and len(ran.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "cuba_output").exists()


def test_run_with_nest_backend_from_the_cli_is_quiet(tmp_path, cli) -> None:
    """``neurodyn run`` of a backend-nest scenario: exit 0, no NEST banner or log lines, a plain result file."""
    import xarray as xr

    sc = tmp_path / "small.yaml"
    sc.write_text(SMALL.replace("seed: 3}", "seed: 3, backend: nest}"))
    proc = cli("run", sc, "--output", tmp_path / "small.h5")
    assert proc.returncode == 0, proc.stderr
    assert "NEST" not in proc.stdout.replace("in NEST", "") and "[INFO]" not in proc.stdout + proc.stderr
    with xr.open_dataset(tmp_path / "small.h5", engine="h5netcdf") as ds:
        assert ds.attrs["backend"] == "nest" and ds.sizes["spike"] > 100
