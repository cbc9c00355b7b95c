"""A run's life: progress only on a terminal, nothing half-written when killed."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time

from tests.conftest import REPO, run_cli


def test_killed_run_leaves_no_result_file(tmp_path):
    out = tmp_path / "cuba.h5"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "neurodyn.cli", "run", "scenarios/cuba.yaml", "--set",
                             "run.duration=60 s", "--output", str(out), "--quiet"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(8.0)  # past start-up and compilation, well inside the 60 s of simulated time
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path):
    proc = run_cli("run", "scenarios/quickstart.yaml", "--set", "run.duration=5 s", "--output", tmp_path / "q.h5")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "result:" in proc.stdout and "regular" in proc.stdout


def test_progress_bar_on_a_terminal(tmp_path):
    """Under a pseudo-terminal a run longer than a couple of seconds shows a bar on stderr; --quiet none."""
    def run(*extra: str) -> str:
        pid, fd = pty.fork()
        if pid == 0:  # child: stdout and stderr are the terminal
            os.chdir(REPO)
            os.environ["PYTHONPATH"] = str(REPO)
            out = str(tmp_path / f"q{len(extra)}.h5")
            os.execv(sys.executable, [sys.executable, "-m", "neurodyn.cli", "run", "scenarios/quickstart.yaml",
                                      "--set", "run.duration=100 s", "--set", "record.v=null", "--output", out,
                                      *extra])
        # a pseudo-terminal starts 0 columns wide; give it a real size, as a terminal window has
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        chunks = []
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        os.waitpid(pid, 0)
        return b"".join(chunks).decode(errors="replace")

    shown = run()
    assert "quickstart (810 neurons)" in shown and "step/s" in shown, shown[-2000:]
    quiet = run("--quiet")
    assert "810 neurons" not in quiet and "step/s" not in quiet
