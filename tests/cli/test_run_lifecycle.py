"""A run's life: progress only on a terminal, nothing half-written when killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np

import neurodyn


def test_killed_run_leaves_no_result_file(tmp_path, repo):
    """SIGKILL mid-run: never a file under the final name; the only leftover is the marked partial file
    of the streamed recordings, which holds the spikes of the chunks completed before the kill."""
    out = tmp_path / "cuba.h5"
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "neurodyn.cli",
            "run",
            "scenarios/cuba.yaml",
            "--set",
            "run.duration=600 s",
            "--output",
            str(out),
            "--quiet",
        ],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # Kill only once the run is streaming (a cold Numba cache can take a minute to compile), then a few
    # chunks later (a chunk is about 0.25 s of wall time), far from the end of 600 s (over a minute).
    partial = tmp_path / "cuba.partial.h5"
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if partial.exists() and partial.stat().st_size > 200_000:  # spikes and v of some chunks are on disk
            break
        time.sleep(0.2)
    time.sleep(1.0)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists()
    left = sorted(p.name for p in tmp_path.iterdir())
    # lif_network streams under `neurodyn run`: completed chunks are on disk, clearly marked; the run's
    # lock file stays too (its lock died with the process, the next run reuses the file)
    assert left == [".cuba.h5.lock", "cuba.partial.h5"], left
    kept = neurodyn.open_run(tmp_path / "cuba.partial.h5")
    assert 0 < kept.sizes["time"] < 600_000 and kept.sizes["spike"] > 0
    # it says what it holds from the start: what was run, by which neurodyn (the marker --force trusts)
    assert kept.attrs["scenario_name"] == "cuba" and kept.attrs["family"] == "lif_network"
    assert kept.attrs["neurodyn_version"] == neurodyn.__version__ and "wall_time_s" not in kept.attrs
    # what was kept is the start of the run: the same spikes as an uninterrupted run over that time
    until = min(0.2, float(kept["time"].values[-1]))
    ref = neurodyn.simulate(neurodyn.load_scenario(repo / "scenarios" / "cuba.yaml", overrides=["run.duration=0.2 s"]))
    early = kept["spike_time"].values < until
    np.testing.assert_array_equal(
        kept["spike_time"].values[early], ref["spike_time"].values[ref["spike_time"].values < until]
    )
    np.testing.assert_array_equal(
        kept["spike_index"].values[early], ref["spike_index"].values[ref["spike_time"].values < until]
    )


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path, cli):
    proc = cli("run", "scenarios/quickstart.yaml", "--set", "run.duration=5 s", "--output", tmp_path / "q.h5")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "result:" in proc.stdout and "regular" in proc.stdout


def test_progress_bar_on_a_terminal(tmp_path, repo, pty):
    """Under a pseudo-terminal a run longer than a couple of seconds shows a bar on stderr; --quiet none."""

    def run(*extra: str) -> str:
        out = str(tmp_path / f"q{len(extra)}.h5")
        argv = [
            sys.executable,
            "-m",
            "neurodyn.cli",
            "run",
            "scenarios/quickstart.yaml",
            "--set",
            "run.duration=100 s",
            "--set",
            "record.v=null",
            "--output",
            out,
            *extra,
        ]
        return pty(argv, repo, {"PYTHONPATH": str(repo)})[0]

    shown = run()
    assert "quickstart (810 neurons)" in shown and "step/s" in shown, shown[-2000:]
    quiet = run("--quiet")
    assert "810 neurons" not in quiet and "step/s" not in quiet
