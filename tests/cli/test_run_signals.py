"""``neurodyn run`` stopped by Ctrl-C or SIGTERM: one line, exit 130, what was streamed is kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import neurodyn
from tests import sweep_family as fam

SCENARIO = """name: long_ou
family: ou_test
description: a long streaming run, to be interrupted
params: {n: 64, tau: 10 ms, sigma: 1.0}
run: {duration: 5000 s, dt: 0.1 ms, seed: 0}
record: {every: 1 ms}
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_streaming_run_keeps_its_partial_file(tmp_path, signum, repo):
    """SIGTERM (``kill PID``, a batch system's time limit) stops a run as Ctrl-C does: exit 130, exactly
    one line on stderr, nothing under the final name, and the marked partial file holds the blocks
    recorded before the signal, readable."""
    scenario = tmp_path / "long.yaml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "long.h5"
    env = {**os.environ, **fam.ENV, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurodyn.cli", "run", str(scenario), "--output", str(out), "--quiet"],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    partial = tmp_path / "long.partial.h5"
    deadline = time.monotonic() + 300  # generous: only keeps a failure from hanging
    while not (partial.exists() and partial.stat().st_size > 200_000):  # some blocks are on disk
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never streamed"
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("neurodyn: interrupted"), err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.partial.h5", "long.yaml"]
    kept = neurodyn.open_run(partial, load=True)
    assert 0 < kept.sizes["time"] < 5_000_000
    assert kept.attrs["partial"] in (True, 1, "True", "true")


SWALLOWED = """
import json, os, signal, sys, time, weakref
from neurodyn.cli import _interruptible


class Thing:
    pass


def callback(ref):
    os.kill(os.getpid(), signal.{name})
    for _ in range(1000):  # the handler runs here, inside the callback, whose exceptions Python ignores
        pass


outcome = "lost"
with _interruptible():
    thing = Thing()
    ref = weakref.ref(thing, callback)
    deadline = time.monotonic() + 120  # generous: the signal is delivered again within milliseconds
    try:
        del thing
        while time.monotonic() < deadline:
            pass
    except KeyboardInterrupt:
        outcome = "KeyboardInterrupt"
print(json.dumps(outcome))
"""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_an_interrupt_raised_inside_a_finalizer_is_not_lost(name, repo):
    """A signal whose KeyboardInterrupt lands in a weakref callback (where Python only prints "Exception
    ignored") is delivered again, so the command still stops, and nothing is printed."""
    res = subprocess.run(
        [sys.executable, "-c", SWALLOWED.format(name=name)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(repo)},
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == '"KeyboardInterrupt"'
    assert res.stderr == ""
