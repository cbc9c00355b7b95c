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

# The rest of the public API is imported on first use (PEP 562): xarray, pydantic and Numba take 0.5 s
# to import, and the command line wants to start the sweep pool's fork server before it pays that.
_LAZY = {
    "Scenario": "neurodyn.scenario",
    "load_scenario": "neurodyn.scenario",
    "open_run": "neurodyn.storage",
    "write_run": "neurodyn.storage",
    "run_scenario": "neurodyn.runner",
    "simulate": "neurodyn.runner",
    "open_sweep": "neurodyn.sweep",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neurodyn' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Scenario",
    "ScenarioError",
    "SimulationError",
    "UserError",
    "__version__",
    "load_scenario",
    "open_run",
    "open_sweep",
    "run_scenario",
    "simulate",
    "write_run",
]
