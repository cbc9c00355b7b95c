"""lif_network through the command line: run, compare (theory rows agree), plot, plain-xarray reading."""

from __future__ import annotations

import numpy as np
import xarray as xr


def test_quickstart_run_compare_plot(tmp_path, repo, cli):
    out = tmp_path / "q.h5"
    proc = cli("run", repo / "scenarios" / "quickstart.yaml", "--set", "run.duration=2 s", "--output", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    ds = xr.open_dataset(out, engine="h5netcdf")
    for name, var in ds.variables.items():
        assert "units" in var.attrs and "long_name" in var.attrs, name
    assert list(ds.rate_theory_regime.values) == ["fi", "siegert", "siegert"]
    ratio = ds.rate.values / ds.rate_theory.values
    np.testing.assert_array_less(np.abs(ratio - 1), [0.01, 0.05, 0.05])
    proc = cli("compare", out)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("rate ")]
    assert len(rows) == 3 and all(line.rstrip().endswith("agree") for line in rows), proc.stdout
    proc = cli("plot", out, "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    png = tmp_path / "q_overview.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
