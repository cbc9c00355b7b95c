"""Parameter sweeps: expand, run on an executor, stream each point to disk, resume, combine, report.

A scenario with a ``sweep:`` section (``grid`` and/or ``zip`` over dotted paths) becomes one run per
point. The output directory (default ``outputs/<name>/``) holds::

    sweep.json            the plan: swept paths, coordinates, point ids (written before anything runs)
    points/<id>.h5        one ordinary result file per finished point, written as the point finishes
    failed/<id>.json      a point that raised: its parameters, the error type and message
    <name>.h5             the combined Dataset, written atomically at the end
    report/               ``neurodyn compare`` on the sweep: report.md and figures

A rerun skips every point whose file exists and holds the same resolved scenario, and reruns the
others (unfinished or failed). The combined Dataset has one dimension per swept path, named by the
path's last component (``params.we`` -> ``we``; the full path is the coordinate's ``sweep_path``
attribute). Coordinates hold SI values (``units``); ``display_units`` is the unit the scenario wrote them
in (``mV``), in which ``info``, ``compare`` and the report show them. Zipped paths share one dimension
named after the first of them, the others are coordinates along it. Variables whose dimensions differ
between points (a ``spike`` dimension, say) cannot share one array: they are *dropped* from the
combined file and stay in the point files (listed in the ``dropped_variables`` attribute; the
``point_id`` variable names each point's file). ``*_theory`` and
``*_bound`` variables keep only the sweep dimensions they vary along, so ``neurodyn compare`` averages
the simulation over the others (typically ``seed``) with a confidence interval.

Executors: serial (``workers=1``), a local process pool (default, all cores; workers fork from a
warmed-up fork server and load Numba's on-disk caches) and Dask distributed (``scheduler=`` an
address, or ``cluster="local:N"`` for a loopback LocalCluster). Workers write the point files
themselves, so a remote Dask cluster must share the output directory's filesystem.

One module per job:

* :mod:`~neurodyn.sweep.plan`: the points and dimensions of a sweep, validated once; ``sweep.json``.
* :mod:`~neurodyn.sweep.executors`: where points run (serial, process pool, Dask), signals, worker
  start-up; imports nothing heavy, so the command line can start the pool's fork server first thing.
* :mod:`~neurodyn.sweep.point`: running one point, in whichever process runs it.
* :mod:`~neurodyn.sweep.warmup`: the fork server's one-off warm-up (imported there, never here).
* :mod:`~neurodyn.sweep.run`: the driver (claim the folder, resume, record failures, combine).
* :mod:`~neurodyn.sweep.combined`: the combined Dataset, built from the point files through
  :mod:`neurodyn.storage`.
* :mod:`~neurodyn.sweep.report`: ``report.md`` and the figures of a sweep.

The names below are imported from those modules on first use (PEP 562), so that importing
:mod:`neurodyn.sweep.executors` stays free of xarray, pydantic and Numba.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module of this package that defines it
_HOMES = {
    "MANIFEST": "plan",
    "SweepDim": "plan",
    "SweepPlan": "plan",
    "SweepPoint": "plan",
    "is_sweep": "plan",
    "load_plan": "plan",
    "plan_sweep": "plan",
    "sweep_root": "plan",
    "DASK_CONNECT_TIMEOUT": "executors",
    "POLL_INTERVAL": "executors",
    "WORKER_EXIT_GRACE": "executors",
    "PointResult": "point",
    "PointTask": "point",
    "parse_cluster": "executors",
    "run_point": "point",
    "scheduler_address": "executors",
    "SweepOutcome": "run",
    "execute_sweep": "run",
    "finished_point_files": "run",
    "run_sweep": "run",
    "combine": "combined",
    "open_sweep": "combined",
    "MAX_POINT_FIGURES": "report",
    "plot_sweep": "report",
    "write_report": "report",
}

if TYPE_CHECKING:
    from neurodyn.sweep.combined import combine, open_sweep
    from neurodyn.sweep.executors import (
        DASK_CONNECT_TIMEOUT,
        POLL_INTERVAL,
        WORKER_EXIT_GRACE,
        parse_cluster,
        scheduler_address,
    )
    from neurodyn.sweep.plan import (
        MANIFEST,
        SweepDim,
        SweepPlan,
        SweepPoint,
        is_sweep,
        load_plan,
        plan_sweep,
        sweep_root,
    )
    from neurodyn.sweep.point import PointResult, PointTask, run_point
    from neurodyn.sweep.report import MAX_POINT_FIGURES, plot_sweep, write_report
    from neurodyn.sweep.run import SweepOutcome, execute_sweep, finished_point_files, run_sweep


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'neurodyn.sweep' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"neurodyn.sweep.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


__all__ = [
    "DASK_CONNECT_TIMEOUT",
    "MANIFEST",
    "MAX_POINT_FIGURES",
    "POLL_INTERVAL",
    "PointResult",
    "PointTask",
    "SweepDim",
    "SweepOutcome",
    "SweepPlan",
    "SweepPoint",
    "WORKER_EXIT_GRACE",
    "combine",
    "execute_sweep",
    "finished_point_files",
    "is_sweep",
    "load_plan",
    "open_sweep",
    "parse_cluster",
    "plan_sweep",
    "plot_sweep",
    "run_point",
    "run_sweep",
    "scheduler_address",
    "sweep_root",
    "write_report",
]
