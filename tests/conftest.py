"""Shared test fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from neurodyn import storage

if TYPE_CHECKING:
    from neurodyn.scenario import Scenario

#: the checkout under test: CLI subprocesses import its neurodyn (tests request the ``repo`` fixture)
REPO = Path(__file__).resolve().parents[1]


def _run_cli(
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


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root (scenarios/, models/, examples/), also the working directory of ``cli``."""
    return REPO


@pytest.fixture(scope="module")
def cli_env() -> dict[str, str]:
    """Environment variables every ``cli`` call of a module adds; a module overrides this fixture.

    A module whose tests use a test family returns its ``ENV`` (``NEURODYN_FAMILIES``) here, so every
    command it runs knows that family.
    """
    return {}


@pytest.fixture(scope="module")
def cli(cli_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess]:
    """``cli(*args, cwd=None, timeout=600, env=None)``: run ``neurodyn ARGS`` in a fresh interpreter.

    The interpreter imports this checkout's neurodyn; it runs in ``repo`` unless ``cwd`` is given, with
    :func:`cli_env` and then ``env`` added to the environment. Returns the completed process (text output).
    """

    def run(*args: Any, cwd: Path | None = None, timeout: float = 600, env: dict | None = None):
        return _run_cli(*args, cwd=cwd, timeout=timeout, env={**cli_env, **(env or {})})

    return run


def _assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit code 2, one line on stderr, no traceback, and every needle in that line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture(scope="session")
def user_error() -> Callable[..., None]:
    """``user_error(proc, *needles)``: assert a user error as the CLI reports one.

    Exit code 2, exactly one line on stderr, no traceback, and every needle in that line.
    """
    return _assert_user_error


def _make_scenario(
    family: str, params: dict, run: dict | None = None, record: dict | None = None, name: str = "t"
) -> Scenario:
    """A validated Scenario from its sections, as a scenario file would give them."""
    from neurodyn.scenario import from_dict

    return from_dict({"name": name, "family": family, "params": params, "run": run or {}, "record": record or {}})


@pytest.fixture(scope="session")
def make_scenario() -> Callable[..., Scenario]:
    """``make_scenario(family, params, run=None, record=None, name="t")``: a validated Scenario.

    Run it in memory with :func:`neurodyn.simulate` (checks, simulation, theory, provenance), or with
    ``neurodyn.run_scenario`` into a file.
    """
    return _make_scenario


@pytest.fixture(scope="session")
def lif_scenario() -> Callable[..., Scenario]:
    """``lif_scenario(pops, synapses=None, inputs=None, *, duration, dt="0.1 ms", seed=1, record=None)``.

    A lif_network Scenario from its populations, synapses and inputs (the shape most lif tests vary).
    """

    def lif(
        pops: dict,
        synapses: list | None = None,
        inputs: list | None = None,
        *,
        duration: str,
        dt: str = "0.1 ms",
        seed: int = 1,
        record: dict | None = None,
    ) -> Scenario:
        params = {"populations": pops, "synapses": synapses or [], "inputs": inputs or []}
        return _make_scenario("lif_network", params, {"duration": duration, "dt": dt, "seed": seed}, record)

    return lif


@pytest.fixture(scope="session")
def shipped_scenario() -> Callable[..., Scenario]:
    """``shipped_scenario(name, *overrides)``: ``scenarios/<name>.yaml`` loaded with ``--set`` overrides."""
    from neurodyn.scenario import load_scenario

    def load(name: str, *overrides: str) -> Scenario:
        return load_scenario(REPO / "scenarios" / f"{name}.yaml", list(overrides))

    return load


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


def _read_pty(argv: list[str], cwd: Path, env: dict[str, str] | None = None, columns: int = 120) -> tuple[str, int]:
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


def _cli_peak_rss_mb(*args: str, env: dict[str, str] | None = None) -> float:
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


@pytest.fixture(scope="session")
def pty() -> Callable[..., tuple[str, int]]:
    """``pty(argv, cwd, env=None, columns=120)``: run ``argv`` on a pseudo-terminal; (output, wait status)."""
    return _read_pty


@pytest.fixture(scope="session")
def peak_rss() -> Callable[..., float]:
    """``peak_rss(*args, env=None)``: peak RSS (MiB) of ``neurodyn ARGS`` in a fresh interpreter; asserts exit 0."""
    return _cli_peak_rss_mb
