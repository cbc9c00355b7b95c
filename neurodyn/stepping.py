"""Time stepping shared by every family: the chunked loop, the kernel status, time to steps, threads.

The steps of a simulation run inside a Numba kernel; Python regains control between chunks only to update
the progress bar, flush recordings and read the kernel's :class:`Status`. This module imports nothing
heavier than the standard library at import time (Numba loads only when the thread count is set), so
every layer may use it: scenario validation counts steps with :func:`steps`, families run their kernels
through :func:`run_chunked` and :func:`kernel_threads`.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from neurodyn.errors import SimulationError

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.progress import Progress

#: target wall time of one chunk; Python overhead between chunks is then negligible
CHUNK_SECONDS = 0.25


class Status(enum.IntEnum):
    """What a kernel reports after a chunk of steps; each member carries its message.

    An ``IntEnum``, so Numba kernels return the members themselves (``return Status.NAN, step``): inside
    a kernel they are integer constants, back in Python they are members again.
    """

    message: str

    def __new__(cls, value: int, message: str) -> Status:
        member = int.__new__(cls, value)
        member._value_ = value
        member.message = message
        return member

    OK = 0, "the steps ran"
    NAN = 1, "a state variable became non-finite"
    #: not a failure: the kernel's spike buffer is full; drain it and call again from the step it returned
    BUFFER_FULL = 2, "the spike buffer is full"


def steps(duration: float, dt: float, at_least: int = 0) -> int:
    """Number of steps of length ``dt`` in ``duration``: the nearest integer (ties to even), at least ``at_least``.

    The one rule for turning a time (a run's duration, a sampling interval, a delay, a chunk) into steps,
    so a time given in a scenario means the same number of steps in every family.
    """
    return max(at_least, int(round(duration / dt)))


def run_chunked(
    n_steps: int,
    advance: Callable[[int, int], tuple[Status, str]],
    progress: Progress | None = None,
    desc: str = "simulating",
    chunk_steps: int | None = None,
    unit: str = "step",
) -> None:
    """Advance a simulation ``n_steps`` steps in chunks.

    Parameters
    ----------
    n_steps : int
        Total number of steps.
    advance : callable
        ``advance(start, n) -> (status, detail)`` runs steps ``start .. start+n-1`` inside a kernel and
        returns a :class:`Status` and a human detail string (where and why it stopped; empty when it ran).
    progress : Progress, optional
        Where to report progress (default: nowhere).
    desc : str
        Label of the progress bar.
    chunk_steps : int, optional
        Steps per chunk. By default the first chunk is small and later chunks are sized from its wall
        time to take about :data:`CHUNK_SECONDS`.
    unit : str
        Unit of the progress bar.

    Raises
    ------
    SimulationError
        When a chunk reports a status other than :attr:`Status.OK` (with the kernel's detail, or the
        status's message when there is none).
    """
    if progress is None:
        from neurodyn.progress import QUIET

        progress = QUIET
    done = 0
    size = chunk_steps or min(n_steps, 100)
    with progress.task(n_steps, desc, unit) as bar:
        while done < n_steps:
            n = min(size, n_steps - done)
            t0 = time.perf_counter()
            status, detail = advance(done, n)
            elapsed = time.perf_counter() - t0
            if status != Status.OK:
                reason = detail or Status(status).message
                raise SimulationError(f"simulation stopped at step {done}..{done + n}: {reason}")
            done += n
            bar.update(n)
            if chunk_steps is None and elapsed > 0:
                size = int(min(max(n * CHUNK_SECONDS / elapsed, 1), 10_000_000))


@contextmanager
def kernel_threads(requested: int | None, default: int | None = None) -> Iterator[int]:
    """Numba threads for the kernels run inside the block; the previous count is restored after it.

    The one thread-count policy: ``requested`` (a scenario's ``run.threads``) if given, else ``default``
    (a family's choice, e.g. 1 where parallel regions cost more than they save), else the count the
    process already has (all cores, or the one thread a sweep gives each of its worker processes);
    never more than Numba started with. The count is process-wide, hence the restore: one run's choice
    never leaks into the next. Kernels' results do not depend on it, only their speed.

    Yields
    ------
    int
        The thread count in effect inside the block.
    """
    import numba

    before = numba.get_num_threads()
    want = requested or default or before
    numba.set_num_threads(min(want, numba.config.NUMBA_NUM_THREADS))
    try:
        yield numba.get_num_threads()
    finally:
        numba.set_num_threads(before)


def set_process_threads(n: int) -> int:
    """Set the thread count this process's kernels start from (a sweep worker's share of the cores).

    :func:`kernel_threads` falls back to this count when a run asks for none; never more than Numba
    started with. Returns the count set.
    """
    import numba

    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    return numba.get_num_threads()
