"""neurodyn: Numba-compiled simulation of biologically inspired neural dynamics, checked against theory.

Typical use::

    import neurodyn
    scenario = neurodyn.load_scenario("scenarios/quickstart.yaml")
    ds, path = neurodyn.run_scenario(scenario)
    ds = neurodyn.open_run(path)
"""

from __future__ import annotations

__version__ = "0.1.0"

import os as _os  # noqa: E402

# Numba's OpenMP threads spin while waiting by default; on a shared machine that steals the other core
# from everyone (measured: 2 threads ran 4-14x slower than 1 under load). Passive waiting costs little
# when the machine is idle. Users can still set OMP_WAIT_POLICY themselves.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from neurodyn.errors import ScenarioError, SimulationError, UserError  # noqa: E402
from neurodyn.scenario import Scenario, load_scenario  # noqa: E402
from neurodyn.storage import open_run, write_run  # noqa: E402


def run_scenario(*args, **kwargs):
    """Run a scenario and write its result; see :func:`neurodyn.runner.run_scenario`."""
    from neurodyn.runner import run_scenario as _run

    return _run(*args, **kwargs)


def open_sweep(*args, **kwargs):
    """Open a sweep's combined Dataset (lazily); see :func:`neurodyn.sweep.open_sweep`."""
    from neurodyn.sweep import open_sweep as _open

    return _open(*args, **kwargs)


def simulate(*args, **kwargs):
    """Run a scenario in memory; see :func:`neurodyn.runner.simulate`."""
    from neurodyn.runner import simulate as _simulate

    return _simulate(*args, **kwargs)


__all__ = ["Scenario", "ScenarioError", "SimulationError", "UserError", "__version__", "load_scenario",
           "open_run", "open_sweep", "run_scenario", "simulate", "write_run"]
