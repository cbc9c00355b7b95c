"""cortical_field through the command line: refusals (exit 2, one line), NaN stop, plot and compare."""

from __future__ import annotations

import re

#: relative to the working directory of the ``cli`` fixture, the repository
DISP = "scenarios/field_dispersion.yaml"


def test_unstable_dt_is_refused_with_largest_stable_dt(tmp_path, cli, user_error):
    # omega_max = sqrt(31.4159^2 + 8e4) = 284.59 rad/s -> leapfrog needs dt < 2 / omega_max = 7.0277 ms
    proc = cli("run", DISP, "--set", "run.dt=8 ms", "-o", tmp_path / "x.h5")
    user_error(proc, "run.dt", "largest stable dt", "0.00702")
    assert not (tmp_path / "x.h5").exists()


def test_unstable_rk4_dt_is_refused(tmp_path, cli, user_error):
    # RK4 on the undamped oscillator: stable up to omega_max dt = 2 sqrt(2) -> dt < 9.939 ms
    proc = cli("validate", DISP, "--set", "params.integrator=rk4", "--set", "run.dt=10 ms")
    user_error(proc, "RK4", "largest stable dt", "0.00993")
    ok = cli("validate", DISP, "--set", "params.integrator=rk4", "--set", "run.dt=9.9 ms")
    assert ok.returncode == 0, ok.stderr


def test_recording_too_large_is_refused_with_estimate(tmp_path, cli, user_error):
    proc = cli(
        "run",
        DISP,
        "--set",
        "params.lattice.nx=512",
        "--set",
        "params.lattice.ny=512",
        "--set",
        "record.snapshots.every=0.25 ms",
        "--set",
        "record.max_memory_mb=1000",
        "-o",
        tmp_path / "x.h5",
    )
    user_error(proc, "recording", "MB", "record.snapshots.every >=")
    # 40960 frames x 512 x 512 x 8 bytes = 81,920 MB
    assert re.search(r"81,9\d\d MB", proc.stderr), proc.stderr


def test_nan_stops_with_step_and_site(tmp_path, repo, cli):
    # a mass matrix with a negative eigenvalue is a physical (tachyonic) instability: the field grows
    # as exp(3162 t) and overflows; the run stops at the first non-finite value
    scen = tmp_path / "bad.yaml"
    scen.write_text(
        (repo / "scenarios" / "field_ei_layers.yaml")
        .read_text()
        .replace("[[3948, -2000], [-2000, 15791]]", "[[-1.0e7, 0], [0, 15791]]")
        .replace("duration: 10.24 s", "duration: 1 s")
    )
    proc = cli("run", scen, "-o", tmp_path / "x.h5")
    assert proc.returncode == 3, proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    m = re.search(r"non-finite value at step (\d+) .*field E, site \(x=(\d+), y=(\d+)\)", err)
    assert m, err
    # exp(3162 t) * 1 reaches 1.8e308 after ~ 709 / 3162 s = 0.224 s = ~897 steps of 0.25 ms
    assert 800 < int(m.group(1)) < 1000
    assert not (tmp_path / "x.h5").exists()


def test_bad_site_model_and_missing_geometry_are_one_line_errors(cli, user_error):
    proc = cli("validate", DISP, "--set", "params.site_model=wilson_cowen")
    user_error(proc, "params.site_model", "wilson_cowan")
    proc = cli("validate", DISP, "--set", "params.lattice=null")
    user_error(proc, "params", "lattice", "continuum")
    proc = cli("validate", DISP, "--set", "params.sources=[{kind: gaussian, x: 1 mm, y: 1 mm, amplitude: 1}]")
    user_error(proc, "params.sources.0.width", "positive length")


def test_run_compare_plot(tmp_path, cli):
    out = tmp_path / "disp.h5"
    proc = cli("run", DISP, "--set", "run.duration=2.56 s", "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    cmp = cli("compare", out)
    assert cmp.returncode == 0, cmp.stderr
    rows = [ln for ln in cmp.stdout.splitlines() if ln.startswith("dispersion_omega ")]
    assert len(rows) == 12 and all(ln.rstrip().endswith("agree") for ln in rows), cmp.stdout
    assert "energy_error_max (upper bound)" in cmp.stdout and "holds" in cmp.stdout
    plot = cli("plot", out, "--out", tmp_path / "fig")
    assert plot.returncode == 0, plot.stderr
    names = {p.name for p in (tmp_path / "fig").iterdir()}
    assert {"disp_snapshots.png", "disp_dispersion.png", "disp_energy.png"} <= names
    assert "disp_snapshots.gif" in names  # pillow is a matplotlib dependency
    gif = (tmp_path / "fig" / "disp_snapshots.gif").read_bytes()
    assert gif[:6] in (b"GIF87a", b"GIF89a")
