"""``neurodyn sweep`` from the command line: interruption and resume, failures, bad input, report."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import neurodyn
from neurodyn.sweep import execute_sweep
from tests import gated_family as gated
from tests import sweep_family as fam
from tests.figures import assert_slide_png

SWEEP = "{grid: {params.sigma: [0.5, 1.0, 2.0], params.tau: [5 ms, 20 ms], run.seed: [1, 2]}}"


@pytest.fixture(scope="module")
def cli_env() -> dict[str, str]:
    """Every command of this module knows the sweep test family."""
    return fam.ENV


@pytest.fixture(autouse=True)
def _family():
    fam.register()


def _session_processes(sid: int) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,sid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()[1:] if line.split()[1] == str(sid)]


def _live_session_processes(sid: int) -> list[str]:
    """The processes of session ``sid`` that still run (a zombie has ended; it only waits to be reaped)."""
    out = subprocess.run(["ps", "-eo", "pid,sid,stat,args"], capture_output=True, text=True).stdout
    return [
        line for line in out.splitlines()[1:] if line.split()[1] == str(sid) and not line.split()[2].startswith("Z")
    ]


def _wait_for(condition, timeout: float = 300.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail (instead of hanging) after a generous ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _finished_points(out) -> int:
    return len([p for p in (out / "points").glob("*.h5") if ".partial" not in p.name])


def _start_sweep(
    repo, tmp_path, gate=None, params="{n: 16, tau: 10 ms, sigma: 1.0, pause: 0.15 s}", where=("--workers", "2")
):
    """``neurodyn sweep`` on 2 workers in a new session; with ``gate``, the fork server waits at the gate
    (tests.gated_family) once it has started its preload."""
    scenario = fam.write_scenario(tmp_path / "s.yaml", SWEEP, params=params)
    out = tmp_path / "out"
    env = {**os.environ, **gated.ENV, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if gate is not None:
        gate.mkdir()
        env[gated.GATE_ENV] = str(gate)
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurodyn.cli", "sweep", str(scenario), *where, "--output", str(out)],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    return proc, out


@pytest.mark.parametrize(
    ("when", "signum"),
    [
        ("pool starting", signal.SIGINT),
        ("points running", signal.SIGINT),
        ("pool starting", signal.SIGTERM),
        ("points running", signal.SIGTERM),
    ],
    ids=["pool starting", "points running", "pool starting, SIGTERM", "points running, SIGTERM"],
)
def test_ctrl_c_stops_a_pool_sweep_with_one_line(tmp_path, when, signum, repo):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it), or SIGTERM to the whole group
    (as a batch system's time limit sends it), while the fork server is still in its preload, or while
    points run: exit 130, one line on stderr, no traceback and no warning from any process (server,
    workers, resource tracker), finished points kept, and no process left behind.

    "pool starting" is a known moment, not a race: the fork server waits at a gate in its preload
    (tests.gated_family) until the signal has been sent, and the driver has written the plan, so it is
    starting the pool or about to."""
    gate = tmp_path / "gate" if when == "pool starting" else None
    proc, out = _start_sweep(repo, tmp_path, gate)
    if gate is not None:
        _wait_for(lambda: (gate / "preloading").exists() and (out / "sweep.json").exists(), what="the pool start")
        os.killpg(proc.pid, signum)
        (gate / "go").touch()
    else:
        _wait_for(lambda: _finished_points(out) >= 2, what="2 finished points")
        os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=300)  # EOF once every process holding stderr has exited
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("neurodyn: interrupted"), err
    n_done = _finished_points(out)
    assert f"interrupted; {n_done} finished points kept" in err
    assert n_done == 0 if when == "pool starting" else n_done >= 2
    _wait_for(lambda: not _session_processes(proc.pid), what="the fork server and resource tracker to end")


def test_ctrl_c_stops_a_dask_local_cluster_sweep_with_one_line(tmp_path, repo):
    """The same for ``--cluster local:2``: the Dask workers inherit a blocked SIGINT, so a Ctrl-C sent to
    the whole process group prints one line, from the driver, which closes the cluster."""
    proc, out = _start_sweep(repo, tmp_path, where=("--cluster", "local:2"))
    _wait_for(lambda: _finished_points(out) >= 2, what="2 finished points")
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("neurodyn: interrupted"), err
    _wait_for(lambda: not _live_session_processes(proc.pid), what="the cluster's processes to end")


@pytest.mark.parametrize("when", ["pool starting", "points running"])
def test_workers_end_when_the_driver_is_killed_and_not_reaped(tmp_path, when, repo):
    """SIGKILL the driver while its parent does not reap it (this test never waits for it until the end):
    the driver stays a zombie that keeps its pid, yet the workers, the fork server and the resource
    tracker all end, whether the pool was still starting or points were running. (The bound of the wait
    only keeps a failure from hanging; they end within about a second.)"""
    gate = tmp_path / "gate" if when == "pool starting" else None
    proc, out = _start_sweep(repo, tmp_path, gate, params="{n: 16, tau: 10 ms, sigma: 1.0, pause: 1 s}")
    if gate is not None:
        _wait_for(lambda: (gate / "preloading").exists() and (out / "sweep.json").exists(), what="the pool start")
    else:
        _wait_for(lambda: _finished_points(out) >= 1, what="a finished point")
        assert len(_live_session_processes(proc.pid)) >= 5  # driver, resource tracker, server, 2 workers
    os.kill(proc.pid, signal.SIGKILL)
    if gate is not None:
        (gate / "go").touch()
    stat = Path(f"/proc/{proc.pid}/stat")
    _wait_for(lambda: stat.read_text().rpartition(")")[2].split()[0] == "Z", what="the driver to be a zombie")
    _wait_for(lambda: not _live_session_processes(proc.pid), timeout=60, what="every process of the sweep to end")
    assert stat.read_text().rpartition(")")[2].split()[0] == "Z"  # still unreaped: nothing relied on reaping
    proc.communicate(timeout=60)


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_and_resume(tmp_path, workers, repo, cli):
    """SIGKILL the driver after some points; the rerun computes only the others, same result."""
    counter = tmp_path / "count.txt"
    scenario = fam.write_scenario(tmp_path / "s.yaml", SWEEP, params="{n: 16, tau: 10 ms, sigma: 1.0, pause: 0.15 s}")
    out = tmp_path / "out"
    env = {
        **os.environ,
        **fam.ENV,
        fam.COUNTER_ENV: str(counter),
        "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "neurodyn.cli",
            "sweep",
            str(scenario),
            "--workers",
            str(workers),
            "--output",
            str(out),
            "--quiet",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    points = out / "points"

    def finished_points() -> set[str]:  # not the partial files of a point being written
        return {p.stem for p in points.glob("*.h5") if ".partial" not in p.name}

    deadline = time.time() + 120
    while time.time() < deadline and len(finished_points()) < 4:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # pool workers see the end of the driver's pipe and exit instead of lingering (see also the zombie test)
    deadline = time.time() + 20
    while time.time() < deadline and _session_processes(proc.pid):
        time.sleep(0.1)
    assert not _session_processes(proc.pid)
    finished = finished_points()
    assert 4 <= len(finished) < 12, finished
    assert not (out / "ousweep.h5").exists()
    started = len(counter.read_text().splitlines())

    res = cli("sweep", scenario, "--workers", "1", "--output", out, env={fam.COUNTER_ENV: str(counter)}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"{12 - len(finished)} run, {len(finished)} reused, 0 failed" in res.stdout
    rerun = counter.read_text().splitlines()[started:]
    assert len(rerun) == 12 - len(finished)  # finished points were not recomputed

    # the same as an uninterrupted run (in this process: it is the same code path, and faster)
    ref = execute_sweep(neurodyn.load_scenario(scenario), output=tmp_path / "ref", workers=1)
    fam.assert_same_data(neurodyn.open_sweep(out, load=True), neurodyn.open_sweep(ref.path, load=True))


def test_failed_point_reported_with_parameters(tmp_path, cli):
    scenario = fam.write_scenario(
        tmp_path / "s.yaml",
        "{grid: {params.sigma: [0.5, 1.0, 2.0]}}",
        params="{n: 4, tau: 10 ms, sigma: 1.0, fail_when_sigma: 2.0}",
    )
    res = cli("sweep", scenario, "--workers", "2", "--output", tmp_path / "out", cwd=tmp_path)
    assert res.returncode == 3, res.stderr
    assert "point sigma=2.0 (params.sigma=2.0) failed: RuntimeError: injected failure at sigma=2.0" in res.stderr
    assert "2 run, 0 reused, 1 failed" in res.stdout
    ds = neurodyn.open_sweep(tmp_path / "out", load=True)
    np.testing.assert_array_equal(ds["point_status"].values, [1, 1, 0])
    assert (tmp_path / "out" / "failed" / "sigma=2.0.json").is_file()
    rep = cli("compare", tmp_path / "out", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    md = (tmp_path / "out" / "report" / "report.md").read_text()
    assert "2 finished, 1 failed or missing" in md
    assert "- `sigma=2.0` ({'params.sigma': 2.0}): RuntimeError: injected failure at sigma=2.0" in md
    rows = [line for line in md.splitlines() if line.startswith("| variance")]
    assert len(rows) == 3 and rows[2].endswith("| n/a |")  # the failed point has no value to check


def test_run_on_sweep_scenario_then_compare_report(tmp_path, cli, user_error):
    scenario = fam.write_scenario(
        tmp_path / "s.yaml",
        "{grid: {params.sigma: [0.5, 2.0], run.seed: [1, 2, 3]}}",
        params="{n: 64, tau: 5 ms, sigma: 1.0}",
    )
    res = cli("run", scenario, cwd=tmp_path)  # `neurodyn run` on a sweep: the default process pool
    assert res.returncode == 0, res.stderr
    root = tmp_path / "outputs" / "ousweep"
    assert (root / "ousweep.h5").is_file() and len(list((root / "points").glob("*.h5"))) == 6
    again = cli("run", scenario, cwd=tmp_path)
    user_error(again, "already exists", "--force")

    rep = cli("compare", root, "--markdown", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    md = (root / "report" / "report.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| variance")]
    # one row per sigma: the prediction does not depend on the seed, so seeds give the CI
    assert len(rows) == 2 and "sigma=0.5" in rows[0] and "sigma=2" in rows[1]
    assert all(r.rstrip(" |").endswith("agree") for r in rows), rows
    ds = neurodyn.open_sweep(root, load=True)
    mean = ds["variance"].sel(sigma=2.0).mean().item()
    assert f"{mean:.5g}" in rows[1] and "| 4 |" in rows[1]
    assert (root / "report" / "ousweep_variance_sweep.png").is_file()
    assert_slide_png(root / "report" / "ousweep_variance_sweep.png")
    assert "![" in md and "Gardiner" in md


def test_cluster_local(tmp_path, cli):
    scenario = fam.write_scenario(tmp_path / "s.yaml", "{zip: {params.sigma: [0.5, 1.0], run.seed: [3, 4]}}")
    res = cli("sweep", scenario, "--cluster", "local:2", "--output", tmp_path / "d", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "on dask local:2" in res.stdout
    ser = execute_sweep(neurodyn.load_scenario(scenario), output=tmp_path / "s", workers=1)
    a, b = neurodyn.open_sweep(tmp_path / "d", load=True), neurodyn.open_sweep(ser.path, load=True)
    fam.assert_same_data(a, b)
    assert a["sigma"].dims == ("sigma",) and a["seed"].dims == ("sigma",)  # zip: one shared dimension


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("sweep", "extra", "needles"),
    [
        ("{grid: {params.sigmaa: [1, 2]}}", [], ["sweep.params.sigmaa", "did you mean 'sigma'"]),
        ("{grid: {run.sed: [1, 2]}}", [], ["sweep.run.sed", "did you mean 'seed'"]),
        ("{grid: {record.evry: [1 ms]}}", [], ["sweep.record.evry", "did you mean 'every'"]),
        ("{grid: {params.sigma: []}}", [], ["empty list"]),
        ("{zip: {params.sigma: [1, 2], run.seed: [1, 2, 3]}}", [], ["unequal lengths"]),
        ("{grid: {params.sigma: [1, 2]}}", ["--scheduler", "tcp://127.0.0.1:{port}"], ["cannot reach the Dask"]),
        ("{grid: {params.sigma: [1, 2]}}", ["--scheduler", "[::1]:{port}"], ["cannot reach the Dask", "tcp://[::1]"]),
        (
            "{grid: {params.sigma: [1, 2]}}",
            ["--scheduler", "tcp://nonexistent.invalid:8786"],
            ["cannot reach the Dask"],
        ),
        (
            "{grid: {params.sigma: [1, 2]}}",
            ["--scheduler", "zzz://x"],
            ["--scheduler = 'zzz://x'", "unknown scheme 'zzz'"],
        ),
        ("{grid: {params.sigma: [1, 2]}}", ["--scheduler", "tcp://x"], ["--scheduler = 'tcp://x'", "no port number"]),
        ("{grid: {params.sigma: [1, 2]}}", ["--scheduler", "tcp://h:65536"], ["no port number from 1 to 65535"]),
        ("{grid: {params.sigma: [1, 2]}}", ["--scheduler", "tcp://h:8786/x"], ["no port number"]),
        ("{grid: {params.sigma: [1, 2]}}", ["--scheduler", "tcp://a b:8786"], ["'a b' is not a host name"]),
        ("{grid: {params.sigma: [1, 2]}}", ["--scheduler", ""], ["--scheduler = ''", "no port number"]),
        ("{grid: {params.sigma: [1, 2]}}", ["--scheduler", "inproc://1.2.3.4/5/6"], ["'inproc' is not a usable"]),
        ("{grid: {params.sigma: [1, 2]}}", ["--scheduler", "tls://127.0.0.1:{port}"], ["needs TLS certificates"]),
        ("{grid: {params.sigma: [1, 2]}}", ["--cluster", "local:0"], ["--cluster = 'local:0'", "local:N"]),
        ("{grid: {params.sigma: [1, 2]}}", ["--cluster", ""], ["--cluster = ''", "local:N"]),
        ("{grid: {params.sigma: [1, 2]}}", ["--cluster", "local:2", "-j", "2"], ["--workers = 2", "--cluster"]),
        ("{grid: {params.sigma: [1, 2]}}", ["--workers", "0"], ["--workers 0"]),
    ],
)
def test_bad_input_one_line_nothing_written(tmp_path, sweep, extra, needles, cli, user_error):
    scenario = fam.write_scenario(tmp_path / "s.yaml", sweep)
    extra = [e.format(port=_closed_port()) for e in extra]
    res = cli("sweep", scenario, "--output", tmp_path / "out", *extra, cwd=tmp_path)
    user_error(res, *needles)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "outputs").exists()


def test_a_port_that_is_not_a_dask_scheduler_is_one_line(tmp_path, cli, user_error):
    """Something listens, but it is not a Dask scheduler (it closes every connection): one line, exit 2."""
    import threading

    scenario = fam.write_scenario(tmp_path / "s.yaml", "{grid: {params.sigma: [1, 2]}}")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        stop = threading.Event()

        def refuse_all() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    server.accept()[0].close()

        thread = threading.Thread(target=refuse_all, daemon=True)
        thread.start()
        try:
            address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
            res = cli("sweep", scenario, "--output", tmp_path / "out", "--scheduler", address, cwd=tmp_path)
        finally:
            stop.set()
            thread.join()
    user_error(res, f"cannot connect to a Dask scheduler at {address}")
    assert not (tmp_path / "out").exists()


def test_typo_under_a_mapping_is_refused_not_created(tmp_path, repo, cli, user_error):
    """`populations` is a mapping: a misspelt key would silently add a population if not checked."""
    text = (repo / "scenarios" / "lif_siegert_sweep.yaml").read_text()
    text = text.replace(
        "params.inputs.0.mu: [12 mV, 15 mV, 18 mV, 21 mV, 24 mV]", "params.populations.noisi.size: [10, 20]"
    )
    scenario = tmp_path / "typo.yaml"
    scenario.write_text(text)
    res = cli("sweep", scenario, "--output", tmp_path / "out", cwd=tmp_path)
    user_error(res, "sweep.params.populations.noisi.size", "did you mean 'noisy'")
    assert not (tmp_path / "out").exists()


def test_sweep_progress_bar_on_a_terminal(tmp_path, repo, pty):
    """Under a pseudo-terminal the sweep shows one bar: points done, failed count, running points."""
    scenario = fam.write_scenario(
        tmp_path / "s.yaml",
        "{grid: {run.seed: [1, 2, 3, 4]}}",
        params="{n: 64, tau: 10 ms, pause: 2.5 s}",
        run="{duration: 20 s, dt: 0.1 ms, seed: 0}",
        record="{x: false}",
    )
    argv = [
        sys.executable,
        "-m",
        "neurodyn.cli",
        "sweep",
        str(scenario),
        "--workers",
        "2",
        "--output",
        str(tmp_path / "out"),
    ]
    shown, status = pty(argv, tmp_path, {**fam.ENV, "PYTHONPATH": str(repo)}, columns=200)
    assert os.waitstatus_to_exitcode(status) == 0, shown[-2000:]
    assert "sweep ousweep:" in shown and "point" in shown and "failed=0" in shown, shown[-2000:]
    assert "4 run, 0 reused, 0 failed" in shown
    assert "running=seed=" in shown  # the pool workers' own progress, in the sweep's bar
