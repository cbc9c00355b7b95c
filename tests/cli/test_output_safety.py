"""Outputs are claimed exclusively, never replaced unless neurodyn wrote them, and checked before any work.

Concurrency tests never race against the clock: the first run is started, the test waits (with a generous
timeout) until its claim or its partial file exists, stops it with SIGSTOP while the second run tries the
same output, then lets it go on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

import neurodyn
from neurodyn import storage
from neurodyn.errors import OutputExistsError, ScenarioError, UserError
from tests import sweep_family as fam

WAIT = 600  # seconds: generous, a cold Numba cache on a busy machine can take minutes


@pytest.fixture(autouse=True)
def _family():
    fam.register()


@pytest.fixture(scope="module")
def cli_env() -> dict[str, str]:
    """Every command of this module knows the sweep test family."""
    return fam.ENV


@pytest.fixture
def start(repo):
    """``start(*args, cwd=repo)``: ``neurodyn ARGS`` started in the background, its output piped."""

    def popen(*args: str, cwd: Path = repo) -> subprocess.Popen:
        env = {**os.environ, **fam.ENV, "PYTHONPATH": str(repo)}
        return subprocess.Popen(
            [sys.executable, "-m", "neurodyn.cli", *map(str, args)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return popen


def wait_for(proc: subprocess.Popen, ready) -> None:
    """Poll until ``ready()``; fail (with the process's output) if it ends first or WAIT passes."""
    deadline = time.monotonic() + WAIT
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def claimed(path: Path):
    """True once the lock file of ``path`` names its holder."""
    lock = storage.lock_path(path)

    def ready() -> bool:
        try:
            return "pid" in json.loads(lock.read_text())
        except (OSError, ValueError):
            return False

    return ready


def ou_scenario(path: Path, params: str = "{n: 8, tau: 10 ms, sigma: 1.0}", run: str = "{duration: 0.1 s}") -> Path:
    path.write_text(
        f"name: ou\nfamily: {fam.NAME}\nparams: {params}\nrun: {{dt: 0.1 ms, seed: 1, {run[1:-1]}}}\n"
        "record: {every: 1 ms}\n"
    )
    return path


# --------------------------------------------------------------------------- two runs, one output


def test_second_run_on_a_streaming_output_is_refused_naming_the_first(tmp_path, cli, user_error, start):
    """lif_network streams: B must not touch A's partial file; A then finishes with a valid result."""
    out = tmp_path / "cuba.h5"
    partial = storage.stream_partial_path(out)
    a = start("run", "scenarios/cuba.yaml", "--set", "run.duration=40 s", "--output", out, "--quiet")
    try:
        wait_for(a, lambda: partial.exists() and partial.stat().st_size > 200_000)  # some chunks are on disk
        a.send_signal(signal.SIGSTOP)  # A is mid-run (tens of seconds of network left) while B tries
        b = cli("run", "scenarios/cuba.yaml", "--set", "run.duration=0.1 s", "--output", out, "--quiet")
        user_error(b, f"pid {a.pid}", str(out), "being written by another neurodyn run")
        b_forced = cli("run", "scenarios/cuba.yaml", "--set", "run.duration=0.1 s", "-o", out, "--force", "-q")
        user_error(b_forced, f"pid {a.pid}", str(out))  # --force does not break a claim either
        assert not out.exists() and partial.exists()  # A was mid-run: refused for the claim, nothing else
        a.send_signal(signal.SIGCONT)
        stdout, stderr = a.communicate(timeout=WAIT)
    finally:
        a.kill()
    assert a.returncode == 0, (stdout, stderr)
    ds = neurodyn.open_run(out)
    assert ds.attrs["scenario_name"] == "cuba" and "partial" not in ds.attrs
    assert float(ds["time"].values[-1]) > 39.9 and ds.sizes["spike"] > 0  # the whole 40 s, intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cuba.h5"]  # no partial file, no lock file


def test_second_run_on_a_non_streaming_output_is_refused_and_the_first_finishes(tmp_path, cli, user_error, start):
    """sync_learners holds its result in memory: B is refused while A runs, A then writes a valid file."""
    out = tmp_path / "dw.h5"
    overrides = ["--set", "run.duration=40 s", "--set", "params.trials=10"]
    a = start("run", "scenarios/sync_double_well.yaml", *overrides, "--output", out, "--quiet")
    try:
        wait_for(a, claimed(out))
        a.send_signal(signal.SIGSTOP)  # A is simulating (seconds of work left) while B tries
        b = cli("run", "scenarios/sync_double_well.yaml", "--set", "run.duration=1 s", "-o", out, "-q")
        user_error(b, f"pid {a.pid}", str(out), "being written by another neurodyn run")
        assert not out.exists()  # A had not finished: B was refused because of the claim, nothing else
        a.send_signal(signal.SIGCONT)
        _, err = a.communicate(timeout=WAIT)
    finally:
        a.kill()
    assert a.returncode == 0, err
    ds = neurodyn.open_run(out)
    assert ds.attrs["family"] == "sync_learners" and ds.attrs["scenario_name"] == "sync_double_well"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dw.h5"]  # the lock file is removed at the end


def test_kill_9_leaves_no_stale_claim(tmp_path, cli, start):
    """After SIGKILL the kernel has dropped the lock: the next run is not refused as 'being written'."""
    out = tmp_path / "dw.h5"
    a = start("run", "scenarios/sync_double_well.yaml", "--set", "run.duration=40 s", "--output", out, "-q")
    try:
        wait_for(a, claimed(out))
    finally:
        a.kill()
    a.communicate(timeout=WAIT)
    assert storage.lock_path(out).exists()  # the file stays behind; its lock does not
    short = ["--set", "run.duration=1 s", "--set", "params.burn_in=0.5 s", "--set", "params.trials=2"]
    again = cli("run", "scenarios/sync_double_well.yaml", *short, "-o", out)
    assert again.returncode == 0, again.stderr
    assert storage.is_neurodyn_result(out) and not storage.lock_path(out).exists()


def test_claims_exclude_each_other_in_one_process(tmp_path):
    out = tmp_path / "sub" / "r.h5"
    with storage.claim_output(out):
        info = json.loads(storage.lock_path(out).read_text())
        assert info["pid"] == os.getpid() and info["output"] == str(out)
        with pytest.raises(UserError, match=f"pid {os.getpid()}"), storage.claim_output(out):
            pass
    assert not storage.lock_path(out).exists()
    assert not (tmp_path / "sub").exists()  # the folder made for the claim held nothing: removed again
    with storage.claim_output(out):  # free again
        pass


# --------------------------------------------------------------------------- --force replaces only our results


def _foreign_hdf5(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f["data"] = np.arange(3)
        f.attrs["family"] = "lif_network"  # looks like ours, but no neurodyn_version marker


@pytest.mark.parametrize("kind", ["text", "hdf5", "folder"])
def test_run_force_refuses_what_neurodyn_did_not_write(tmp_path, kind, cli, user_error):
    scenario = ou_scenario(tmp_path / "ou.yaml")
    target = tmp_path / "r.h5"
    if kind == "text":
        target.write_text("my notes\n")
    elif kind == "hdf5":
        _foreign_hdf5(target)
    else:
        target.mkdir()
        (target / "keep.txt").write_text("mine")
    before = {p: p.read_bytes() for p in [target, *target.glob("*")] if p.is_file()}
    res = cli("run", scenario, "--output", target, "--force", "-q", cwd=tmp_path)
    user_error(res, str(target), "folder" if kind == "folder" else "not a neurodyn result")
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ou.yaml", "r.h5"]


def test_run_force_replaces_a_neurodyn_result(tmp_path, cli, user_error):
    scenario = ou_scenario(tmp_path / "ou.yaml")
    target = tmp_path / "r.h5"
    assert cli("run", scenario, "-o", target, "-q", cwd=tmp_path).returncode == 0
    user_error(cli("run", scenario, "-o", target, "-q", cwd=tmp_path), "already exists", "--force")
    res = cli("run", scenario, "-o", target, "-q", "--force", "--set", "run.seed=2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert neurodyn.open_run(target).attrs["seed"] == 2


def test_write_run_refuses_to_replace_a_foreign_file(tmp_path):
    target = tmp_path / "x.h5"
    _foreign_hdf5(target)
    ds = xr.Dataset({"x": ("t", np.arange(3.0))})
    with pytest.raises(UserError, match="not a neurodyn result"):
        storage.write_run(ds, target, force=True)
    assert not storage.is_neurodyn_result(target)
    storage.write_run(ds, tmp_path / "ours.h5")  # every file neurodyn writes carries the marker
    assert storage.is_neurodyn_result(tmp_path / "ours.h5")
    storage.write_run(ds * 2, tmp_path / "ours.h5", force=True)


def _sweep(tmp_path: Path) -> Path:
    return fam.write_scenario(
        tmp_path / "s.yaml", "{grid: {params.sigma: [0.5, 1.0]}}", run="{duration: 0.05 s, dt: 0.1 ms, seed: 0}"
    )


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_sweep_refuses_a_folder_that_is_not_a_sweep(tmp_path, cli, user_error):
    scenario = _sweep(tmp_path)
    out = tmp_path / "mine"
    for sub in ("points", "report", "failed"):
        (out / sub).mkdir(parents=True)
        (out / sub / "data.txt").write_text(f"user data in {sub}")
    before = _snapshot(out)
    for extra in ([], ["--force"]):
        res = cli("sweep", scenario, "--workers", "1", "--output", out, *extra, cwd=tmp_path)
        user_error(res, str(out), "not a neurodyn sweep")
        assert _snapshot(out) == before
    (out / "sweep.json").write_text('{"not": "a sweep"}')  # a marker of the wrong shape is no marker
    res = cli("sweep", scenario, "--workers", "1", "--output", out, "--force", cwd=tmp_path)
    user_error(res, "not a neurodyn sweep")
    assert (out / "sweep.json").read_text() == '{"not": "a sweep"}'


@pytest.mark.parametrize("where", ["points/notes.txt", "points/copy.h5", "report/mine.png", "failed/todo.json"])
def test_sweep_force_refuses_user_files_inside_and_removes_only_its_own(tmp_path, where, cli, user_error):
    scenario = _sweep(tmp_path)
    out = tmp_path / "out"
    res = cli("sweep", scenario, "--workers", "1", "--output", out, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert cli("compare", out, cwd=tmp_path).returncode == 0  # report/ with report.md and figures
    (out / "README.txt").write_text("notes about this sweep")  # beside the sweep's files: never touched
    user = out / where
    user.parent.mkdir(exist_ok=True)
    if where.endswith(".h5"):
        _foreign_hdf5(user)
    else:
        user.write_text('{"mine": true}')
    before = _snapshot(out)
    res = cli("sweep", scenario, "--workers", "1", "--output", out, "--force", cwd=tmp_path)
    user_error(res, str(user), "not written by this sweep")
    assert _snapshot(out) == before
    user.unlink()
    res = cli("sweep", scenario, "--workers", "1", "--output", out, "--force", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "2 run, 0 reused" in res.stdout
    assert (out / "README.txt").read_text() == "notes about this sweep"
    assert not (out / "report").exists()  # the old report was the sweep's own: removed


def test_sweep_without_force_refuses_a_foreign_file_at_a_point_path(tmp_path, cli, user_error):
    scenario = _sweep(tmp_path)
    out = tmp_path / "out"
    assert cli("sweep", scenario, "--workers", "1", "--output", out, cwd=tmp_path).returncode == 0
    point = sorted((out / "points").glob("*.h5"))[0]
    point.unlink()
    point.write_text("not a result")  # an unfinished point would be rerun into this name
    (out / "ousweep.h5").unlink()
    before = _snapshot(out)
    res = cli("sweep", scenario, "--workers", "1", "--output", out, cwd=tmp_path)
    user_error(res, str(point), "not written by this sweep")
    assert _snapshot(out) == before


def test_second_sweep_on_one_folder_is_refused_and_a_killed_sweep_resumes(tmp_path, cli, user_error, start):
    scenario = fam.write_scenario(
        tmp_path / "s.yaml",
        "{grid: {run.seed: [1, 2, 3, 4]}}",
        params="{n: 8, tau: 10 ms, pause: 60 s}",
        run="{duration: 0.05 s, dt: 0.1 ms, seed: 0}",
    )
    out = tmp_path / "out"
    a = start("sweep", scenario, "--workers", "1", "--output", out, "--quiet", cwd=tmp_path)
    try:
        wait_for(a, lambda: (out / "sweep.json").exists())  # written under the claim; points pause 60 s each
        a.send_signal(signal.SIGSTOP)
        b = cli("sweep", scenario, "--workers", "1", "--output", out, cwd=tmp_path)
        user_error(b, f"pid {a.pid}", str(out), "being written by another neurodyn run")
        a.send_signal(signal.SIGKILL)
    finally:
        a.kill()
    a.communicate(timeout=WAIT)
    # the same sweep without the pauses resumes in the killed sweep's folder (no point had finished)
    again = cli("sweep", scenario, "--set", "params.pause=0 s", "--workers", "1", "--output", out, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "4 run, 0 reused" in again.stdout and neurodyn.open_sweep(out).sizes["seed"] == 4


# --------------------------------------------------------------------------- the partial file of a killed run


@pytest.mark.parametrize("stream", [True, False])
def test_leftover_partial_file_is_refused_and_force_discards_it(tmp_path, stream, cli, user_error):
    scenario = ou_scenario(tmp_path / "ou.yaml", params=f"{{n: 8, tau: 10 ms, sigma: 1.0, stream: {stream}}}")
    target = tmp_path / "r.h5"
    partial = storage.stream_partial_path(target)
    w = storage.ChunkedWriter(target)  # what a killed streaming run leaves: a marked partial file
    w.dimension("time", None)
    w.variable("x", ("time",), "f8", {"units": "1", "long_name": "x"})
    w.append("x", np.arange(4.0))
    w.abort(keep=True)
    before = partial.read_bytes()
    res = cli("run", scenario, "-o", target, "-q", cwd=tmp_path)
    user_error(res, str(partial), f"neurodyn info {partial}", "--force")
    assert partial.read_bytes() == before and not target.exists()
    assert cli("info", partial, cwd=tmp_path).returncode == 0  # the message's advice works
    res = cli("run", scenario, "-o", target, "-q", "--force", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert not partial.exists() and storage.is_neurodyn_result(target)


def test_force_refuses_a_foreign_file_under_the_partial_name(tmp_path, cli, user_error):
    scenario = ou_scenario(tmp_path / "ou.yaml")
    target = tmp_path / "r.h5"
    partial = storage.stream_partial_path(target)
    partial.write_text("someone else's file")
    res = cli("run", scenario, "-o", target, "-q", "--force", cwd=tmp_path)
    user_error(res, str(partial), "not a partial neurodyn result")
    assert partial.read_text() == "someone else's file" and not target.exists()


def test_partial_file_refusal_in_python(tmp_path):
    target = tmp_path / "r.h5"
    storage.stream_partial_path(target).write_bytes(storage.HDF5_SIGNATURE + b"\0" * 100)  # cut short by a kill
    with pytest.raises(OutputExistsError, match="neurodyn info"):
        storage.check_writable(target, force=False)
    storage.check_writable(target, force=True)  # an HDF5 file under neurodyn's partial name: its own


# --------------------------------------------------------------------------- a scenario's output: stays inside


@pytest.mark.parametrize(
    "output", ["/tmp/neurodyn-escape.h5", "../escape.h5", "sub/../../escape.h5", "link/escape.h5", "link"]
)
def test_scenario_output_must_stay_inside_the_working_directory(tmp_path, output, cli, user_error):
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (work / "link").symlink_to(tmp_path / "elsewhere")
    scenario = ou_scenario(work / "ou.yaml")
    scenario.write_text(scenario.read_text() + f"output: {output}\n")
    for command in ("validate", "run"):
        user_error(cli(command, scenario, cwd=work), f"output = '{output}'", "relative path inside")
    assert sorted(p.name for p in work.iterdir()) == ["link", "ou.yaml"]
    assert list((tmp_path / "elsewhere").iterdir()) == [] and not (tmp_path / "escape.h5").exists()
    assert not Path("/tmp/neurodyn-escape.h5").exists()


def test_scenario_output_inside_is_used_and_command_line_output_goes_anywhere(tmp_path, cli):
    work = tmp_path / "work"
    work.mkdir()
    scenario = ou_scenario(work / "ou.yaml")
    scenario.write_text(scenario.read_text() + "output: results/../here/ou.h5\n")
    res = cli("run", scenario, "-q", cwd=work)
    assert res.returncode == 0, res.stderr
    assert storage.is_neurodyn_result(work / "here" / "ou.h5")
    res = cli("run", scenario, "-q", "--output", "../outside/ou.h5", cwd=work)
    assert res.returncode == 0, res.stderr
    assert storage.is_neurodyn_result(tmp_path / "outside" / "ou.h5")


def test_scenario_output_checked_when_loading_in_python(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from neurodyn.scenario import from_dict

    doc = {"name": "ou", "family": fam.NAME, "params": {}, "run": {"duration": "0.01 s", "dt": "1e-4 s"}}
    assert from_dict({**doc, "output": "a/b.h5"}).output == Path("a/b.h5")
    for bad in ("/etc/x.h5", "../x.h5", 5, "a\0b"):
        with pytest.raises(ScenarioError, match="relative path inside"):
            from_dict({**doc, "output": bad})


# --------------------------------------------------------------------------- unwritable places, before any work


def test_output_under_a_file_is_refused_before_running(tmp_path, cli, user_error):
    scenario = ou_scenario(tmp_path / "ou.yaml")
    counter = tmp_path / "counter"
    (tmp_path / "afile").write_text("x")
    env = {fam.COUNTER_ENV: str(counter)}
    res = cli("run", scenario, "-o", tmp_path / "afile" / "sub" / "r.h5", env=env, cwd=tmp_path)
    user_error(res, str(tmp_path / "afile"), "is a file, not a folder")
    sweep = _sweep(tmp_path)
    res = cli("sweep", sweep, "--workers", "1", "-o", tmp_path / "afile" / "out", env=env, cwd=tmp_path)
    user_error(res, str(tmp_path / "afile"), "is a file, not a folder")
    res = cli("sweep", sweep, "--workers", "1", "-o", tmp_path / "afile", env=env, cwd=tmp_path)
    user_error(res, str(tmp_path / "afile"), "is a file")
    assert not counter.exists()  # no simulation ran


def test_unwritable_folder_is_refused_before_running(tmp_path, cli, user_error):
    """/proc takes no new files, not even from root (chmod does not stop root, so it is the portable case)."""
    scenario = ou_scenario(tmp_path / "ou.yaml")
    counter = tmp_path / "counter"
    env = {fam.COUNTER_ENV: str(counter)}
    for out in ("/proc/neurodyn-test.h5", "/proc/neurodyn-test/r.h5"):
        res = cli("run", scenario, "-o", out, "-q", env=env, cwd=tmp_path)
        user_error(res, f"output {out}", "cannot")
    assert not counter.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; see the /proc test above")
def test_read_only_folder_is_refused_before_running(tmp_path, cli, user_error):
    scenario = ou_scenario(tmp_path / "ou.yaml")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    counter = tmp_path / "counter"
    try:
        res = cli("run", scenario, "-o", ro / "r.h5", "-q", env={fam.COUNTER_ENV: str(counter)}, cwd=tmp_path)
        user_error(res, f"output {ro / 'r.h5'}", "cannot write")
    finally:
        ro.chmod(0o700)
    assert not counter.exists()
