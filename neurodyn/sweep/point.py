"""Running one sweep point, in whichever process executes it: the task, its result, its progress.

A :class:`PointTask` is plain, picklable data; :func:`run_point` builds the point's scenario from it and
writes the point's result file, so the same function runs a point in the driver (serial), in a pool
worker or on a Dask worker (:mod:`neurodyn.sweep.executors`).
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurodyn import registry
from neurodyn.progress import QUIET, Progress

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.scenario import Scenario

#: where a pool worker sends the progress of its points (set by :func:`report_progress_to`), or None
_PROGRESS_QUEUE: Any = None


def report_progress_to(queue: Any) -> None:
    """Send the progress of the points run in this process to ``queue`` (a pool worker's, for the driver's bar)."""
    global _PROGRESS_QUEUE
    _PROGRESS_QUEUE = queue


@dataclass
class PointTask:
    """What a worker needs to run one point: picklable, no open files.

    ``scenario`` is the point's scenario as the sweep's plan validated and checked it
    (:func:`neurodyn.sweep.plan.plan_sweep`): the worker builds and runs it without checking it again.
    """

    scenario: Scenario
    family_target: str | None
    point_id: str
    path: str
    threads: int | None = None


@dataclass
class PointResult:
    """What comes back from a worker."""

    point_id: str
    ok: bool
    wall_time: float
    error_type: str = ""
    message: str = ""
    detail: str = ""


def run_point(task: PointTask, progress: Progress | None = None) -> PointResult:
    """Run one sweep point and write its result file (in whichever process executes the task).

    Every exception becomes a failed :class:`PointResult` (the sweep goes on); ``KeyboardInterrupt`` is
    not caught.
    """
    start = time.perf_counter()
    if progress is None:
        progress = _QueueProgress(_PROGRESS_QUEUE, task.point_id) if _PROGRESS_QUEUE is not None else QUIET
    try:
        family = task.scenario.family
        if task.family_target and registry.target(family) != task.family_target:
            registry.register(family, task.family_target)  # workers learn test/plugin families here
        if task.threads:
            from neurodyn.stepping import set_process_threads

            set_process_threads(task.threads)
        from neurodyn.runner import write_scenario_result

        write_scenario_result(task.scenario, Path(task.path), force=True, progress=progress, checked=True)
    except Exception as exc:  # noqa: BLE001 - a failed point is recorded, never fatal to the sweep
        return PointResult(
            task.point_id,
            False,
            time.perf_counter() - start,
            type(exc).__name__,
            str(exc).strip().splitlines()[0] if str(exc).strip() else "",
            traceback.format_exc(limit=8),
        )
    return PointResult(task.point_id, True, time.perf_counter() - start)


class _QueueProgress(Progress):
    """Progress of a point in a worker process, reported to the driver's sweep bar (2 updates/s)."""

    def __init__(self, queue: Any, point_id: str):
        super().__init__(enabled=False)
        self.queue, self.point_id = queue, point_id

    @contextlib.contextmanager
    def task(self, total: float, desc: str, unit: str = "step") -> Iterator[Any]:
        bar = _QueueBar(self.queue, self.point_id, total)
        yield bar
        bar.last = 0.0
        bar.update(0)  # the final fraction, whatever the throttle


class _QueueBar:
    def __init__(self, queue: Any, point_id: str, total: float):
        self.queue, self.point_id, self.total = queue, point_id, total
        self.done, self.last = 0.0, 0.0

    def update(self, n: float = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last > 0.5 and self.total:
            self.last = now
            with contextlib.suppress(Exception):  # progress must never fail a point
                self.queue.put_nowait((self.point_id, min(1.0, self.done / self.total)))

    def set(self, **postfix: object) -> None:
        pass
