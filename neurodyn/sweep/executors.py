"""Where a sweep's points run: in this process, on a local process pool, or on a Dask cluster.

The process pool's workers fork from a fork server that the command line starts first thing
(:func:`prestart_pool`), before it imports xarray, pydantic or Numba itself: the server's imports and
warm-up (:mod:`neurodyn.sweep.warmup`) then run on the second core while the driver loads the scenario
and plans the sweep, and every worker forks with everything loaded. Hence this module imports nothing
heavy at import time (the command line imports it before anything else); what a point needs is imported
where it runs.

Signals: Ctrl-C and SIGTERM stop a sweep. The driver alone acts on them (:func:`interrupts_deferred`
holds them back where a half-done step would print a traceback); workers ignore SIGINT, exit cleanly on
SIGTERM, and exit by themselves when the driver is gone (:func:`_worker_init`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from neurodyn.errors import UserError

if TYPE_CHECKING:  # what runs a point (the runner, tqdm) loads where points run, not with this module
    from neurodyn.progress import Progress
    from neurodyn.sweep.point import PointResult, PointTask

#: modules the fork server imports before it forks a worker; the last one does the first-use work of
#: Numba and xarray once for all workers (see :mod:`neurodyn.sweep.warmup`)
POOL_PRELOAD = ("neurodyn.sweep.run", "neurodyn.runner", "neurodyn.sweep.warmup")
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
    """Pay xarray's first-use cost now (its first Variable looks for duck-array libraries; through
    :mod:`neurodyn.storage` that no longer imports ``dask.array``, which cost 0.3-0.45 s). Workers do it in
    the fork server; the driver does it while it waits for the server, instead of when it combines the points."""
    import numpy as np
    import xarray as xr

    import neurodyn.storage  # noqa: F401 - defers xarray's dask detection before the first Variable

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
    and the workers) has exited. Workers ignore SIGINT (:func:`_worker_init`).
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


#: a scenario file larger than this is not peeked at (loading it refuses it: neurodyn.scenario's limit)
_PEEK_BYTES = 2**20


def _peek(path: str | os.PathLike) -> dict[str, Any]:
    """The scenario's top-level mapping, or {} for anything unusual: loading the scenario, with its
    limits on size, nesting and expansion, is what reports a problem. Nothing here may fail or hang on a
    hostile file, so it reads at most the size limit, uses libyaml where present, and catches everything
    (deep nesting ends in RecursionError inside PyYAML's composer)."""
    import yaml

    try:
        with open(path, "rb") as f:
            data = f.read(_PEEK_BYTES + 1)
        if len(data) > _PEEK_BYTES:
            return {}
        doc = yaml.load(data.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except Exception:  # noqa: BLE001 - see the docstring
        return {}
    return doc if isinstance(doc, dict) else {}


DASK_CONNECT_TIMEOUT = "5s"
#: seconds a stopped pool worker gets to finish its current chunk and exit cleanly before it is killed
WORKER_EXIT_GRACE = 5.0
#: seconds between two looks of the pool's driver at its points and at a Ctrl-C it has noted
POLL_INTERVAL = 0.2

# --------------------------------------------------------------------------- executors


def parse_cluster(spec: str) -> int:
    """The number of workers of ``--cluster local:N``, or a one-line UserError."""
    m = re.fullmatch(r"local:(\d+)", spec.strip())
    if not m or int(m.group(1)) < 1:
        raise UserError(f"--cluster = {spec!r}: expected local:N with N >= 1 workers, e.g. local:2")
    return int(m.group(1))


#: host names (RFC 1123 labels), IPv4 addresses, or IPv6 addresses in brackets
_HOST = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\]"
)


def scheduler_address(spec: str) -> str:
    """The Dask scheduler address ``spec`` in full (``tcp://`` by default), or a one-line UserError.

    Checked without connecting: ``SCHEME://HOST:PORT`` with a scheme of a network transport that Dask
    distributed has registered and can use here (``tcp``, ``tls``, ``ws``, ``wss``; ``ucx`` when its
    package is installed), a host name or IP address, and a port from 1 to 65535. ``tls``/``wss`` also
    need certificates in the Dask configuration (``distributed.comm.tls``).
    """
    example = "e.g. tcp://10.0.0.5:8786"
    address = spec.strip() if "://" in spec else f"tcp://{spec.strip()}"
    scheme, _, location = address.partition("://")
    usable = _network_schemes()

    def refuse(why: str) -> UserError:
        return UserError(
            f"--scheduler = {spec!r}: {why}; expected SCHEME://HOST:PORT with SCHEME one of "
            f"{', '.join(usable)}, {example}"
        )

    if scheme not in usable:
        known = scheme in _registered_schemes()
        raise refuse(f"{scheme!r} is not a usable transport here" if known else f"unknown scheme {scheme!r}")
    host, colon, port = location.rpartition(":")
    if not colon or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise refuse("no port number from 1 to 65535 after the host")
    if not _HOST.fullmatch(host):
        raise refuse(f"{host!r} is not a host name or IP address (IPv6 in brackets)")
    if scheme in ("tls", "wss"):
        from distributed import Security

        if Security().get_connection_args("client")["ssl_context"] is None:
            raise UserError(
                f"--scheduler = {spec!r}: {scheme}:// needs TLS certificates in the Dask configuration "
                f"(distributed.comm.tls.ca-file, .client.cert, .client.key)"
            )
    return address


def _registered_schemes() -> list[str]:
    import importlib.metadata

    from distributed.comm import registry

    plugins = [ep.name for ep in importlib.metadata.entry_points(group="distributed.comm.backends")]
    return sorted({*registry.backends, *plugins})


def _network_schemes() -> list[str]:
    """The registered transports that reach another host by host and port, and can connect here."""
    from distributed.comm import registry

    usable = []
    for scheme in _registered_schemes():
        try:
            backend = registry.get_backend(scheme)
            backend.get_address_host_port("127.0.0.1:8786")  # in-process transports have no host:port
            backend.get_connector()  # a transport whose package is missing cannot make one (ucx)
        except Exception:  # noqa: BLE001 - whatever a backend raises, it is not usable from here
            continue
        usable.append(scheme)
    return usable


def _probe(address: str) -> None:
    """Open and close a TCP connection to the scheduler's host and port, or raise a one-line UserError.

    Fast answers for the common faults (nothing listens: refused at once; a host name that does not
    resolve), and the connect timeout for an address that does not answer, before a Client exists (a
    Client whose connection failed spends 10 s closing when it is garbage collected).
    """
    import socket

    host, _, port = address.partition("://")[2].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=_seconds(DASK_CONNECT_TIMEOUT)).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if isinstance(exc, socket.timeout):
            reason = f"no answer within {DASK_CONNECT_TIMEOUT}"
        raise UserError(f"cannot reach the Dask scheduler at {address}: {reason}") from None


def _seconds(text: str) -> float:
    return float(text.rstrip("s"))


def _connect(address: str) -> Any:
    """A ``distributed.Client`` connected to ``address``, or a one-line UserError (a port that answers but
    is not a Dask scheduler, a TLS handshake that fails...)."""
    from distributed import Client

    client = Client.__new__(Client)
    try:
        client.__init__(address, timeout=DASK_CONNECT_TIMEOUT, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - whatever the connection raised, it is one line for the user
        with contextlib.suppress(Exception):
            client.close(timeout=1)
        client.status = "closed"  # its __del__ would otherwise wait 10 s to close it again
        text = str(exc).strip()
        reason = text.splitlines()[0][:150] if text else type(exc).__name__
        raise UserError(f"cannot connect to a Dask scheduler at {address}: {reason}") from None
    return client


@contextlib.contextmanager
def dask_client(scheduler: str | None, cluster: str | None) -> Iterator[Any]:
    """A connected ``distributed.Client``; a bad or unreachable scheduler is a one-line UserError."""
    import logging

    n_local = parse_cluster(cluster) if cluster is not None else 0  # before the slow import
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise UserError("Dask distributed is not installed; pip install 'dask[distributed]'") from None
    # Dask reports trouble twice: as exceptions through the futures (a point's error, a lost worker: the
    # sweep records those as failed points) and as log lines of its scheduler, client and event loop. The
    # log lines are kept off stderr while the client is open: on a Ctrl-C they are only noise about work
    # cut short (the scheduler "couldn't gather keys"; distributed's sync() cancel callback fails when
    # the interrupt lands before its future exists, logged by tornado), and the driver prints the one
    # line an interrupt deserves.
    quiet = [logging.getLogger(name) for name in ("tornado.application", "distributed")]
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.CRITICAL)
    try:
        if cluster is not None:
            # Everything (scheduler, workers, the scheduler's HTTP endpoint) on loopback; the HTTP port is
            # random so that concurrent clusters do not collide on 8787. The cluster's threads, and the
            # worker processes they start, inherit a blocked SIGINT: a Ctrl-C sent to the whole process
            # group would print a traceback from every worker; the driver alone handles it, and closes the
            # cluster. (The resource tracker first: starting it unblocks SIGINT in the thread that does.)
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()
            lc = None
            try:
                with interrupts_deferred(), sigint_blocked():
                    lc = LocalCluster(
                        n_workers=n_local,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address="127.0.0.1:0",
                        silence_logs=logging.CRITICAL,  # the workers' log handlers too
                    )
            except BaseException:
                if lc is not None:
                    lc.close()
                raise
            with lc, Client(lc) as client:
                yield client
            return
        assert scheduler is not None
        address = scheduler_address(scheduler)
        if address.partition("://")[0] in ("tcp", "tls", "ws", "wss"):  # the transports that run over TCP
            _probe(address)
        client = _connect(address)
        try:
            yield client
        finally:
            client.close()
    finally:
        for log, level in zip(quiet, levels):
            log.setLevel(level)


def run_serial(tasks: list[PointTask], on_result: Callable[[PointResult], None], progress: Progress) -> None:
    """Run the points one after the other in this process (each shows its own progress)."""
    from neurodyn.sweep.point import run_point

    for task in tasks:
        on_result(run_point(task, progress))


def run_pool(
    tasks: list[PointTask], on_result: Callable[[PointResult], None], workers: int, preload: str | None, bar: Any = None
) -> None:
    """Run the points on ``workers`` local processes forked from the fork server (preloading ``preload``).

    ``on_result`` gets each point's result as it arrives; ``bar`` (the sweep's progress bar) also shows
    the points being computed. Ctrl-C or SIGTERM stops the workers within :data:`WORKER_EXIT_GRACE`.
    """
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from neurodyn.sweep.point import PointResult, run_point

    ctx = pool_context(preload)
    start_server(ctx)  # before the executor does it, so that Ctrl-C cannot reach the server's preload
    warm_up_xarray()  # idle time: the server is still in its preload; combining the points needs this
    # Per-point progress travels on a queue only when someone is watching the sweep's bar.
    queue = ctx.Queue() if bar is not None and bar.visible else None
    # Workers watch the read end of this pipe; only this process holds the write end, which the
    # kernel closes when this process ends, however it ends (see _worker_init).
    alive_r, alive_w = ctx.Pipe(duplex=False)
    running: dict[str, float] = {}
    finished: set[str] = set()
    n_failed = 0
    pool = None
    try:
        # Ctrl-C (or SIGTERM) is only noted while the pool runs, and acted on at the top of the loop:
        # raised anywhere else, KeyboardInterrupt can leave a future's lock held inside
        # concurrent.futures, and the pool's shutdown then waits on it for ever. Submitting starts
        # the worker processes (and waits for the server's preload); a worker interrupted half-way
        # through its start-up would print a traceback, so that part is not interrupted either.
        with interrupts_deferred() as stop:
            pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(queue, alive_r)
            )
            futures = {pool.submit(run_point, t): t for t in tasks}
            pending = set(futures)
            while pending and not stop:
                done, pending = wait(pending, timeout=POLL_INTERVAL, return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        result = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker died (BrokenProcessPool)
                        t = futures[fut]
                        result = PointResult(
                            t.point_id, False, 0.0, type(exc).__name__, f"worker process failed: {exc}".strip()
                        )
                    finished.add(result.point_id)
                    n_failed += not result.ok
                    on_result(result)
                if queue is not None:
                    _drain(queue, running)
                    for pid in finished & set(running):
                        del running[pid]
                    shown = ", ".join(f"{k} {100 * v:.0f}%" for k, v in list(running.items())[:4])
                    bar.set(failed=n_failed, running=shown) if shown else bar.set(failed=n_failed)
            if not stop:
                pool.shutdown(wait=True)
        # leaving the block with a signal noted raised KeyboardInterrupt (handled below)
    except BaseException:
        # Interrupted: stop now. Points being computed are lost (their files are written atomically,
        # so nothing half-written is published); finished points stay, and a rerun resumes. A second
        # Ctrl-C does not cut this short: it lasts WORKER_EXIT_GRACE at most.
        if pool is not None:
            with interrupts_deferred():
                _stop_pool(pool)
        raise
    finally:
        if queue is not None:
            queue.close()
        alive_w.close()  # after the workers ended: to a worker still running, this means "driver gone"
        alive_r.close()


def _stop_pool(pool: Any) -> None:
    """Stop a process pool now: cancel what has not started, end its workers, wait for them."""
    workers_now = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in workers_now:
        proc.terminate()  # exits at the end of the worker's current chunk (see _worker_init)
    deadline = time.monotonic() + WORKER_EXIT_GRACE
    for proc in workers_now:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()  # stuck in one long kernel call
    pool.shutdown(wait=True)


def _drain(queue: Any, running: dict[str, float]) -> None:
    import queue as _queue

    while True:
        try:
            pid, fraction = queue.get_nowait()
        except (_queue.Empty, OSError, EOFError):
            return
        running[pid] = fraction


def _worker_init(queue: Any = None, driver_alive: Any = None) -> None:
    """Set up a pool worker.

    Workers leave Ctrl-C to the driver, which stops them (no traceback from every worker), and exit on
    their own when the driver is gone (killed with SIGKILL, say): a fork-server worker is not the
    driver's child, so nothing else would end it. ``driver_alive`` is the read end of a pipe whose write
    end only the driver holds: the kernel closes it when the driver ends, before its parent reaps it (a
    dead but unreaped driver keeps its pid, so watching the pid is not enough), and a thread here waits
    for that end of file. On SIGTERM (how the driver stops them, and how that thread ends the worker) a
    worker runs multiprocessing's exit routine before it exits: Numba's threading layer holds a named
    semaphore, which the resource tracker would otherwise report as leaked when the sweep ends. Once
    every worker is gone, the fork server sees the end of its own "alive" pipe and exits too.
    """
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # The fork server started with SIGINT blocked (:func:`start_server`); it is ignored from here on.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    from neurodyn.sweep.point import report_progress_to

    report_progress_to(queue)
    if driver_alive is not None:
        threading.Thread(target=_exit_with_driver, args=(driver_alive,), daemon=True).start()


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    # Runs in the main thread between two bytecodes, as soon as the current kernel call returns (every
    # chunk). Raising SystemExit here is not reliable: inside a weakref or __del__ callback it is only
    # printed and ignored. So do what a worker does when it ends normally, multiprocessing's exit routine
    # (its finalizers unlink the named semaphores), and leave. The point being computed is lost; its
    # files are atomic (a stray partial file is removed by the rerun, which redoes the point).
    # A second SIGTERM is common (the one sent to the whole process group, then the driver's own
    # terminate()); arriving while the exit routine runs, it would run this handler again inside it and
    # leave between a semaphore's unlink and its unregistering, which the tracker then reports.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from multiprocessing import util

    with contextlib.suppress(Exception):
        util._exit_function()
    os._exit(128 + signum)


def _exit_with_driver(driver_alive: Any) -> None:
    import signal

    with contextlib.suppress(EOFError, OSError):
        while True:
            driver_alive.recv_bytes()  # the driver never writes: this returns only at end of file (EOFError)
    os.kill(os.getpid(), signal.SIGTERM)  # exit cleanly, see _exit_on_sigterm
    time.sleep(WORKER_EXIT_GRACE)
    os._exit(1)  # the main thread is stuck in one long kernel call: leave anyway


def run_dask(tasks: list[PointTask], on_result: Callable[[PointResult], None], client: Any) -> None:
    """Run the points on the Dask cluster of ``client``; an interrupt cancels what has not finished."""
    from distributed import as_completed

    from neurodyn.sweep.point import PointResult, run_point

    futures = client.map(run_point, tasks, pure=False, key=[f"neurodyn-point-{t.point_id}-{id(t)}" for t in tasks])
    by_key = {f.key: t for f, t in zip(futures, tasks)}
    try:
        for fut in as_completed(futures, loop=client.loop):
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 - the worker died (KilledWorker) or lost the task
                t = by_key[fut.key]
                result = PointResult(t.point_id, False, 0.0, type(exc).__name__, str(exc).splitlines()[0])
            on_result(result)
    except BaseException:
        client.cancel(futures)
        raise


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask), the default number of pool workers."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
