"""How the local process pool of a sweep starts its workers: a fork server, started early and warmed up.

Kept free of heavy imports (no xarray, pydantic or Numba here), so the command line can start the fork
server first thing, before it imports any of that itself: the server's imports and warm-up then run on
the second core while the driver loads the scenario and plans the sweep. Workers fork from the server
with everything loaded; the pool itself lives in :mod:`neurodyn.sweep`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Iterator
from typing import Any

#: modules the fork server imports before it forks a worker; the last one does the first-use work of
#: Numba and xarray once for all workers (see :mod:`neurodyn.worker_warmup`)
POOL_PRELOAD = ("neurodyn.sweep", "neurodyn.runner", "neurodyn.worker_warmup")
#: the signals that stop a run or a sweep: Ctrl-C, and SIGTERM (``kill``, a batch system's time limit)
INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


def pool_context(family_module: str | None = None) -> Any:
    """The multiprocessing context of the pool: forkserver where available, else spawn.

    Workers fork from a server that already imported neurodyn and the family's module and did the
    first-use work of Numba and xarray (:data:`POOL_PRELOAD`), so each starts in milliseconds and its
    first point costs what the others do; Numba kernels load from their on-disk caches (cache=True).
    The preload takes effect when the server starts: the first call (or :func:`prestart_pool`) decides.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover - macOS, Windows
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([m for m in (*POOL_PRELOAD, family_module) if m])
    return ctx


def warm_up_xarray() -> None:
    """Pay xarray's first-use cost now: its first Variable looks for duck-array libraries, which imports
    ``dask.array`` (0.3-0.45 s measured). Workers do it in the fork server; the driver does it while it
    waits for the server, instead of when it combines the points."""
    import numpy as np
    import xarray as xr

    xr.Variable(("x",), np.zeros(1))


def family_module(family: str | None) -> str | None:
    """The module of the family registered as ``family`` (not imported), or None."""
    from neurodyn import registry

    return (registry.target(family) or "").partition(":")[0] or None if family else None


def prestart_pool(scenario: str | os.PathLike) -> None:
    """Start the pool's fork server now, if ``scenario`` is a sweep, so its start-up overlaps ours.

    Parameters
    ----------
    scenario : path-like
        The scenario file. Only its ``family:`` and ``sweep:`` keys are looked at, without validation:
        the server imports that family too. A file without a sweep, or one that cannot be read, starts
        nothing (loading the scenario reports what is wrong with it).
    """
    doc = _peek(scenario)
    if "sweep" not in doc:
        return
    family = doc.get("family")
    start_server(pool_context(family_module(family) if isinstance(family, str) else None))


def start_server(ctx: Any) -> None:
    """Start the fork server of ``ctx`` unless it runs already, immune to Ctrl-C; never lose one meant for us.

    The server spends about a second in its preload (imports, warm-up). A Ctrl-C meant for the sweep
    would interrupt it there and print a traceback from the server process. So the server starts with
    SIGINT *blocked*: a signal mask survives fork and exec, and the server ignores SIGINT once its preload
    is done (multiprocessing sets it to ignored, which discards a pending one). The driver does not ignore
    the signal meanwhile, which would drop a Ctrl-C that arrives during the start (an ignored signal is
    discarded; this happened whenever the start took long on a busy machine): it only blocks it in the
    starting thread and defers it (:func:`interrupts_deferred`), then raises it as soon as the server runs.
    The driver alone handles Ctrl-C; the server exits when every holder of its "alive" pipe (the driver
    and the workers) has exited. Workers ignore SIGINT (``_worker_init`` in :mod:`neurodyn.sweep`).
    """
    if ctx.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver, resource_tracker

    with interrupts_deferred():
        # The resource tracker first: starting it unblocks SIGINT in this thread when it is done.
        resource_tracker.ensure_running()
        with sigint_blocked():
            forkserver.ensure_running()


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread for the block: processes and threads started here inherit the block.

    A Ctrl-C sent meanwhile to this process waits (or goes to another thread) and is handled on leaving;
    use it inside :func:`interrupts_deferred` to act on it at a known point. Does nothing outside the
    main thread or where signal masks do not exist.
    """
    import threading

    block = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask")
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if block else None
    try:
        yield
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a SIGINT held back meanwhile arrives now


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[list[int]]:
    """Hold back SIGINT and SIGTERM in this block: one received meanwhile is handled on leaving it.

    For code that must not be cut in half (starting processes that would print a traceback if
    interrupted during their start-up). Only signals with a Python handler are held back (Ctrl-C's
    KeyboardInterrupt; SIGTERM once the command line made it stop a run as Ctrl-C does): an ignored
    signal stays ignored and a default one keeps its default action. On leaving the block, the first
    signal received runs its own handler, which typically raises KeyboardInterrupt. The block gets the
    list of signals received so far (empty: none), to stop early at a point of its choosing.

    A handler that only takes note rather than a blocked signal mask: native threads (BLAS) would still
    receive the signal, and Python would then run the handler in the middle of the block anyway.
    Outside the main thread (where Python runs signal handlers), nothing is held back.
    """
    import threading

    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def note(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = {}
    for sig in INTERRUPTS:
        handler = signal.getsignal(sig)
        if callable(handler):
            previous[sig] = signal.signal(sig, note)
    try:
        yield received
    finally:
        # signal.signal runs the handlers of signals already received before it changes one
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            # Also when the block failed: the signal is the cause (a process it stopped), and the user
            # asked to stop; the failure stays attached as the exception's context.
            previous[received[0]](received[0], None)


def _peek(path: str | os.PathLike) -> dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return doc if isinstance(doc, dict) else {}
