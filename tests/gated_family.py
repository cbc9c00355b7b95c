"""The sweep test family (:mod:`tests.sweep_family`), with a gate in the pool's fork server.

Importing this module in the fork server (which imports the family in its preload, started as
``python -c ...``) writes ``<gate>/preloading`` and then waits until ``<gate>/go`` exists, where
``<gate>`` is the folder named by :data:`GATE_ENV`. A test thereby acts at a known moment of a sweep's
start-up: the server is in its preload and has not started any worker. Without the variable, or in any
other process, importing it does nothing more than :mod:`tests.sweep_family`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tests.sweep_family import NAME, OUFamily

GATE_ENV = "NEURODYN_TEST_SERVER_GATE"
TARGET = "tests.gated_family:OUFamily"
#: environment of a CLI subprocess whose ``ou_test`` family is this one
ENV = {"NEURODYN_FAMILIES": f"{NAME}={TARGET}"}
#: how long the gate waits at most (only so that a failed test cannot leave a process behind for ever)
WAIT = 300.0

__all__ = ["ENV", "GATE_ENV", "OUFamily", "TARGET"]


def _wait_at_gate() -> None:
    gate = os.environ.get(GATE_ENV)
    if not gate or sys.argv[:1] != ["-c"] or "multiprocessing.forkserver" not in sys.modules:
        return
    Path(gate, "preloading").write_text(str(os.getpid()))
    deadline = time.monotonic() + WAIT
    while not Path(gate, "go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


_wait_at_gate()
