"""neurodyn: Numba-compiled simulation of biologically inspired neural dynamics, checked against theory.

Typical use::

    import neurodyn
    ds = neurodyn.run("scenarios/quickstart.yaml", set={"run.seed": 2})   # in memory, nothing written
    neurodyn.compare(ds)                  # theory against simulation, a pandas DataFrame
    neurodyn.plot(ds)                     # the family's figures, matplotlib Figures
    ds.neurodyn.scenario                  # the Scenario the run was made from
    neurodyn.schema_reference("lif_network")   # every key of a family's scenarios, a pandas DataFrame
    neurodyn.run(neurodyn.Scenario.from_dict({...}), output="outputs/mine.h5")   # written as the CLI does

Every Dataset neurodyn returns has the ``ds.neurodyn`` accessor: the first use of any function below
imports :mod:`neurodyn.api`, which registers it.
"""

from __future__ import annotations

__version__ = "0.1.0"

import os as _os  # noqa: E402
import sys as _sys  # noqa: E402
import types as _types  # noqa: E402

# Numba's OpenMP threads spin while waiting by default; on a shared machine that steals the other core
# from everyone (measured: 2 threads ran 4-14x slower than 1 under load). Passive waiting costs little
# when the machine is idle. Users can still set OMP_WAIT_POLICY themselves.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from neurodyn.errors import ScenarioError, SimulationError, UserError  # noqa: E402

# The rest of the public API is imported on first use (PEP 562): xarray, pydantic and Numba take 0.5 s
# to import, and the command line wants to start the sweep pool's fork server before it pays that.
_LAZY = {
    "run": "neurodyn.api",
    "compare": "neurodyn.api",
    "plot": "neurodyn.api",
    "scenario_of": "neurodyn.api",
    "Scenario": "neurodyn.scenario",
    "load_scenario": "neurodyn.scenario",
    "open_run": "neurodyn.storage",
    "write_run": "neurodyn.storage",
    "run_scenario": "neurodyn.runner",
    "simulate": "neurodyn.runner",
    "open_sweep": "neurodyn.sweep",
    "schema_reference": "neurodyn.reference",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neurodyn' has no attribute {name!r}")
    import importlib

    # neurodyn.api registers the ``ds.neurodyn`` accessor: import it with anything that returns a Dataset
    importlib.import_module("neurodyn.api")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(_types.ModuleType):
    """The package's module type: ``neurodyn.compare`` is the function, not the submodule of that name.

    Importing the submodule ``neurodyn.compare`` makes the import system bind it as an attribute of the
    package, which would shadow :func:`neurodyn.api.compare` depending on what was imported first. This
    property ignores that binding (``from neurodyn.compare import Row`` still reaches the submodule).
    """

    @property
    def compare(self):
        """Theory against simulation as a DataFrame: :func:`neurodyn.api.compare`."""
        from neurodyn.api import compare

        return compare

    @compare.setter
    def compare(self, value: object) -> None:
        pass


_sys.modules[__name__].__class__ = _Package


__all__ = [
    "Scenario",
    "ScenarioError",
    "SimulationError",
    "UserError",
    "__version__",
    "compare",
    "load_scenario",
    "open_run",
    "open_sweep",
    "plot",
    "run",
    "run_scenario",
    "scenario_of",
    "schema_reference",
    "simulate",
    "write_run",
]
