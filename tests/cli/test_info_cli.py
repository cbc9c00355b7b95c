"""`neurodyn info`: attributes as people read them, units only where there are units, swept paths."""

from __future__ import annotations

import pytest
import xarray as xr
import yaml

from neurodyn.quantities import format_quantity
from tests import sweep_family, verdict_family


@pytest.fixture(scope="module")
def cli_env() -> dict[str, str]:
    both = [verdict_family.ENV["NEURODYN_FAMILIES"], sweep_family.ENV["NEURODYN_FAMILIES"]]
    return {"NEURODYN_FAMILIES": ";".join(both)}


@pytest.mark.parametrize(
    ("units", "line"),
    [
        ("V", "    x                        (item) [V] given value"),
        ("1", "    x                        (item) given value"),
    ],
)
def test_variables_show_units_unless_dimensionless(tmp_path, cli, units, line):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"name": "s", "family": "verdict_test", "params": {"units": units}}))
    out = tmp_path / "s.h5"
    assert cli("run", scenario, "--output", out, "--quiet").returncode == 0
    proc = cli("info", out)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert line in lines
    assert "    x_theory                 (item)" + (" [V]" if units == "V" else "") + " given prediction" in lines
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        wall = ds.attrs["wall_time_s"]
    assert f"  wall_time_s      {format_quantity(wall, 's', 3)}" in lines


def test_swept_coordinates_name_their_path_and_the_unit_written(tmp_path, cli):
    scenario = sweep_family.write_scenario(
        tmp_path / "s.yaml", "{grid: {params.tau: [5 ms, 20 ms], run.seed: [1, 2]}}", params="{n: 4, tau: 10 ms}"
    )
    out = tmp_path / "sw"
    assert cli("sweep", scenario, "--output", out, "--workers", "1", "--quiet").returncode == 0
    proc = cli("info", out)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    i = lines.index("  swept:")
    assert lines[i : i + 3] == [
        "  swept:",
        "    tau                      params.tau: 5, 20 ms",
        "    seed                     run.seed: 1, 2",
    ]
    assert cli("compare", out).returncode == 0
    assert "| tau | `params.tau` | 5, 20 | ms |" in (out / "report" / "report.md").read_text().splitlines()
