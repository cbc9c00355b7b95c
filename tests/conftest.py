"""Shared test fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from neurodyn import storage

REPO = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str,
    cwd: Path | None = None,
    timeout: float = 600,
    env: dict | None = None,
) -> subprocess.CompletedProcess:
    """Run ``neurodyn ARGS`` in a fresh interpreter (as a user would) and capture its output."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "neurodyn.cli", *map(str, args)],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


@pytest.fixture
def cli():
    """The :func:`run_cli` helper as a fixture."""
    return run_cli


@pytest.fixture
def repo() -> Path:
    """The repository root (scenarios/, models/)."""
    return REPO


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit code 2, one line on stderr, no traceback, and every needle in that line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture
def writers(monkeypatch):
    """Every ChunkedWriter the runner creates, to look at its largest block."""
    made = []

    class Spy(storage.ChunkedWriter):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(storage, "ChunkedWriter", Spy)
    return made


def read_pty(argv: list[str], cwd: Path, env: dict[str, str] | None = None, columns: int = 120) -> tuple[str, int]:
    """Run ``argv`` with stdout and stderr on a pseudo-terminal; return what it printed and its exit status."""
    import fcntl
    import pty
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # child: the terminal is its stdout and stderr
        os.chdir(cwd)
        os.environ.update(env or {})
        os.execv(argv[0], argv)
    # a pseudo-terminal starts 0 columns wide; give it a real size, as a terminal window has
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    return b"".join(chunks).decode(errors="replace"), status


_PEAK_RSS = """
import resource, sys
from neurodyn.cli import main
rc = main(sys.argv[1:])
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rc)
"""


def cli_peak_rss_mb(*args: str, env: dict[str, str] | None = None) -> float:
    """Run ``neurodyn ARGS`` in a fresh interpreter; assert it succeeded and return its peak RSS in MiB."""
    res = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(REPO)},
    )
    assert res.returncode == 0, res.stderr
    line = [x for x in res.stdout.splitlines() if x.startswith("PEAK_KB")][0]
    assert line.endswith(" 0")
    return int(line.split()[1]) / 1024
