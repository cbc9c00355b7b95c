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
attribute); zipped paths share one dimension named after the first of them, the others are coordinates
along it. Variables whose dimensions differ between points (a ``spike`` dimension, say) cannot share
one array: they are *dropped* from the combined file and stay in the point files (listed in the
``dropped_variables`` attribute; the ``point_id`` variable names each point's file). ``*_theory`` and
``*_bound`` variables keep only the sweep dimensions they vary along, so ``neurodyn compare`` averages
the simulation over the others (typically ``seed``) with a confidence interval.

Executors: serial (``workers=1``), a local process pool (default, all cores; workers fork from a
warmed-up fork server, see :mod:`neurodyn.worker_pool`, and load Numba's on-disk caches) and Dask
distributed (``scheduler=`` an address, or ``cluster="local:N"`` for a loopback LocalCluster). Workers
write the point files themselves, so a remote Dask cluster must share the output directory's filesystem.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from neurodyn import registry
from neurodyn.errors import OutputExistsError, ScenarioError, UserError
from neurodyn.progress import QUIET, Progress
from neurodyn.scenario import RunConfig, Scenario, _descend, from_dict, parse_yaml, set_path
from neurodyn.storage import (
    ChunkedWriter,
    check_folder_writable,
    claim_output,
    is_neurodyn_result,
    is_partial_result,
    open_run,
    reading,
    stream_partial_path,
    writes_to,
)
from neurodyn.worker_pool import (
    family_module,
    interrupts_deferred,
    pool_context,
    sigint_blocked,
    start_server,
    warm_up_xarray,
)

MANIFEST = "sweep.json"
#: per-point attributes that do not describe the sweep as a whole
_POINT_ATTRS = ("scenario", "seed", "created", "wall_time_s", "title")
#: family figures drawn per point in a report, at most
MAX_POINT_FIGURES = 3
DASK_CONNECT_TIMEOUT = "5s"
#: seconds a stopped pool worker gets to finish its current chunk and exit cleanly before it is killed
WORKER_EXIT_GRACE = 5.0
#: seconds between two looks of the pool's driver at its points and at a Ctrl-C it has noted
POLL_INTERVAL = 0.2


# --------------------------------------------------------------------------- the plan


@dataclass
class SweepDim:
    """One dimension of the combined Dataset: a grid path, or all zipped paths together."""

    name: str
    paths: list[str]
    #: path -> resolved (SI) coordinate values along this dimension
    coords: dict[str, list[Any]]
    #: path -> coordinate variable name (the first path's is ``name``)
    coord_names: dict[str, str]
    units: dict[str, str]

    @property
    def size(self) -> int:
        return len(self.coords[self.paths[0]])


@dataclass
class SweepPoint:
    """One run of the sweep."""

    index: tuple[int, ...]
    id: str
    values: dict[str, Any]  #: dotted path -> value as written in the scenario
    yaml: str = ""  #: resolved scenario of this point (what its file must hold to be reused); see resolved_yaml
    scenario: Scenario | None = field(default=None, repr=False)  #: the validated point, when planned here

    def resolved_yaml(self) -> str:
        """:attr:`yaml`, rendered from :attr:`scenario` on first use (only reused points need it)."""
        if not self.yaml and self.scenario is not None:
            self.yaml = self.scenario.resolved_yaml()
        return self.yaml


@dataclass
class SweepPlan:
    """Everything decided before a point runs: where, which points, which dimensions."""

    scenario: Scenario
    root: Path
    dims: list[SweepDim]
    points: list[SweepPoint]

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def combined(self) -> Path:
        return self.root / f"{self.name}.h5"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(d.size for d in self.dims)

    def point_path(self, point: SweepPoint) -> Path:
        return self.root / "points" / f"{point.id}.h5"

    def failed_path(self, point: SweepPoint) -> Path:
        return self.root / "failed" / f"{point.id}.json"

    def manifest(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.scenario.family,
            "scenario": self.scenario.resolved_yaml(),
            "dims": [
                {"name": d.name, "paths": d.paths, "coords": d.coords, "coord_names": d.coord_names, "units": d.units}
                for d in self.dims
            ],
            "points": [{"index": list(p.index), "id": p.id, "values": p.values} for p in self.points],
        }


def sweep_root(scenario: Scenario, output: str | os.PathLike | None = None) -> Path:
    """The sweep's directory: ``output``, else the scenario's ``output:``, else ``outputs/<name>``."""
    root = Path(output) if output is not None else scenario.output or Path("outputs") / scenario.name
    if root.suffix in (".h5", ".nc"):
        raise UserError(
            f"output {root}: a sweep writes a directory (points/, failed/, {scenario.name}.h5); pass --output DIR"
        )
    return root.absolute()


def plan_sweep(scenario: Scenario, output: str | os.PathLike | None = None) -> SweepPlan:
    """Expand the sweep of ``scenario`` into points and dimensions; nothing is written.

    This is the one place a sweep's points are validated: each point's scenario is built from its values
    and passed through the family's complete check (the same :meth:`Family.check` a single run makes),
    once, so ``neurodyn validate`` and the sweep driver refuse exactly what a point's run would refuse,
    before anything runs.

    Raises
    ------
    UserError
        No ``sweep:`` section, a swept list with repeated values (the coordinate would be ambiguous), or
        a point that its run would refuse (the message names the point's values).
    """
    spec = scenario.sweep
    if spec is None:
        raise UserError(f"scenario '{scenario.name}' has no sweep: section; use 'neurodyn run'")
    root = sweep_root(scenario, output)
    groups = [[p] for p in spec.grid] + ([list(spec.zip)] if spec.zip else [])
    raw_lists = {**spec.grid, **spec.zip}
    points_values = spec.points()
    family = registry.get(scenario.family)
    scenarios = []
    for values in points_values:
        try:
            sc = scenario.with_values(values)
            family.check(sc)
        except UserError as exc:
            raise _at_point(exc, values) from None
        scenarios.append(sc)
    models = {"params": type(scenario.params), "run": RunConfig, "record": type(scenario.record)}

    # Points vary grid paths slowest-first, zip innermost: the same order as the dimensions.
    shape = tuple(len(raw_lists[g[0]]) for g in groups)
    indices = [tuple(int(i) for i in np.unravel_index(k, shape)) for k in range(len(points_values))]
    # Resolved coordinate values, read back from the validated scenarios ("0.5 mV" -> 0.0005).
    resolved: dict[str, list[Any]] = {p: [None] * len(raw_lists[p]) for p in raw_lists}
    for index, sc in zip(indices, scenarios):
        for g, i in zip(groups, index):
            for p in g:
                resolved[p][i] = _coord_value(_lookup(sc, p), raw_lists[p][i])
    names = _dim_names([g[0] for g in groups] + [p for g in groups for p in g[1:]])
    dims = []
    for g in groups:
        coords = {p: resolved[p] for p in g}
        lead = coords[g[0]]
        if len({_key(v) for v in lead}) != len(lead):
            kind = "zip" if g[0] in spec.zip else "grid"
            raise UserError(
                f"sweep.{kind}.{g[0]}: repeated values {raw_lists[g[0]]}; each value must "
                f"appear once (it labels a coordinate)"
            )
        dims.append(
            SweepDim(
                name=names[g[0]],
                paths=g,
                coords=coords,
                coord_names={p: names[p] for p in g},
                units={p: _units(models, p, raw_lists[p], coords[p]) for p in g},
            )
        )

    points = []
    ids: set[str] = set()
    for index, values, sc in zip(indices, points_values, scenarios):
        labels = [(names[d.paths[0]], values[d.paths[0]]) for d in dims]
        pid = _point_id(labels, values, ids)
        ids.add(pid)
        points.append(SweepPoint(index=index, id=pid, values=values, scenario=sc))
    return SweepPlan(scenario=scenario, root=root, dims=dims, points=points)


def _at_point(exc: UserError, values: dict[str, Any]) -> UserError:
    """The same refusal, naming the sweep point it belongs to."""
    where = ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())
    if isinstance(exc, ScenarioError):
        return ScenarioError(exc.path, exc.value, f"{exc.allowed} (sweep point {where})")
    try:
        return type(exc)(f"{exc} (sweep point {where})")
    except TypeError:  # a subclass with another signature: keep it as it is
        return exc


def _lookup(sc: Scenario, path: str) -> Any:
    parts = path.split(".")
    node: Any = {"params": sc.params, "run": sc.run, "record": sc.record}[parts[0]]
    for part in parts[1:]:
        if isinstance(node, dict):
            node = node[part]
        elif isinstance(node, list | tuple):
            node = node[int(part)]
        else:
            node = getattr(node, part)
    return node


def _coord_value(value: Any, raw: Any) -> Any:
    """A coordinate value: numbers and strings as they are, anything else as its YAML-ish JSON text."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str):
        return value
    if value is None:
        return "none"
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.dumps(value if value is not None else raw, sort_keys=True, default=str)


def _key(v: Any) -> Any:
    return ("f", float(v)) if isinstance(v, int | float) else ("s", str(v))


def _dim_names(paths: list[str]) -> dict[str, str]:
    """Last path component, lengthened with earlier components (joined by ``_``) until unique."""
    depth = dict.fromkeys(paths, 1)
    while True:
        names = {p: "_".join(p.split(".")[-depth[p] :]) for p in paths}
        taken = list(names.values())
        clash = {p for p in paths if taken.count(names[p]) > 1 and depth[p] < len(p.split("."))}
        if not clash:
            return names
        for p in clash:
            depth[p] += 1


_SI = {
    "time": "s",
    "voltage": "V",
    "frequency": "Hz",
    "conductance": "S",
    "current": "A",
    "capacitance": "F",
    "resistance": "ohm",
    "length": "m",
    "dimensionless": "1",
}


def _units(models: dict[str, Any], path: str, raw: list[Any], coords: list[Any]) -> str:
    """Units of a swept value: from a quantity field type, a unit in the written value, or '1'."""
    from neurodyn import quantities

    parts = path.split(".")
    tp: Any = models[parts[0]]
    meta: list[Any] = []
    for part in parts[1:]:
        fields = getattr(tp, "model_fields", None) if isinstance(tp, type) else None
        if fields and part in fields:
            meta, tp = list(fields[part].metadata), fields[part].annotation
        else:
            meta, tp = [], _descend(tp, int(part) if part.isdigit() else part)
        if tp is None:
            break
    for dim, symbol in _SI.items():
        q = getattr(quantities, dim.capitalize(), None)
        if q is not None and meta and getattr(q, "__metadata__", (None,))[0] is meta[0]:
            return symbol
    for value in raw:
        if isinstance(value, str):
            m = quantities._QUANTITY_RE.match(value)
            if m and m.group(2) in quantities.UNITS:
                return _SI[quantities.UNITS[m.group(2)][0]]
    return "1" if all(isinstance(c, int | float) for c in coords) else ""


def _point_id(labels: list[tuple[str, Any]], values: dict[str, Any], taken: set[str]) -> str:
    """A readable file name from the values as written, such as ``we=0.5mV_seed=2``.

    A hash of the values is added when needed to stay unique (or short).
    """
    slug = "_".join(f"{n}={_fmt(v)}" for n, v in labels)
    slug = re.sub(r"[^A-Za-z0-9.=+_-]", "-", slug)
    if slug and len(slug) <= 120 and slug not in taken:
        return slug
    digest = hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{slug[:100]}-{digest}" if slug else digest


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        text = repr(v)
        return text if len(text) <= 12 else f"{v:.10g}"
    if isinstance(v, str):
        return "".join(v.split())
    return json.dumps(v, sort_keys=True, default=str) if isinstance(v, dict | list) else str(v)


# --------------------------------------------------------------------------- running one point


@dataclass
class PointTask:
    """What a worker needs to run one point: plain data, picklable, no open files."""

    raw: dict[str, Any]
    source: str | None
    family: str
    family_target: str | None
    values: dict[str, Any]
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
        if task.family_target and registry.target(task.family) != task.family_target:
            registry.register(task.family, task.family_target)  # workers learn test/plugin families here
        if task.threads:
            import numba

            numba.set_num_threads(min(task.threads, numba.config.NUMBA_NUM_THREADS))
        raw = copy.deepcopy(task.raw)
        for path, value in task.values.items():
            set_path(raw, path, value)
        scenario = from_dict(raw, source=Path(task.source) if task.source else None, preset_applied=True)
        from neurodyn.runner import write_scenario_result

        write_scenario_result(scenario, Path(task.path), force=True, progress=progress)
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
def _dask_client(scheduler: str | None, cluster: str | None) -> Iterator[Any]:
    """A connected ``distributed.Client``; a bad or unreachable scheduler is a one-line UserError."""
    import logging

    n_local = parse_cluster(cluster) if cluster is not None else 0  # before the slow import
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise UserError("Dask distributed is not installed; pip install 'dask[distributed]'") from None
    # Errors of the client's event-loop callbacks are logged by tornado, not raised. A Ctrl-C that lands
    # in distributed's sync() before its future exists makes its cancel callback fail that way (a race in
    # distributed); the driver prints the one line an interrupt deserves, and the points' own errors reach
    # it through their futures, so those log lines are kept off stderr for the whole run.
    loop_log = logging.getLogger("tornado.application")
    level = loop_log.level
    loop_log.setLevel(logging.CRITICAL)
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
                        silence_logs=logging.ERROR,
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
        logging.getLogger("distributed").setLevel(logging.ERROR)
        if address.partition("://")[0] in ("tcp", "tls", "ws", "wss"):  # the transports that run over TCP
            _probe(address)
        client = _connect(address)
        try:
            yield client
        finally:
            client.close()
    finally:
        loop_log.setLevel(level)


def _run_serial(tasks: list[PointTask], on_result: Callable[[PointResult], None], progress: Progress) -> None:
    for task in tasks:
        on_result(run_point(task, progress))


def _run_pool(
    tasks: list[PointTask], on_result: Callable[[PointResult], None], workers: int, preload: str | None, bar: Any = None
) -> None:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

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


_PROGRESS_QUEUE: Any = None


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

    global _PROGRESS_QUEUE
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # The fork server started with SIGINT blocked (worker_pool.start_server); it is ignored from here on.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _PROGRESS_QUEUE = queue
    if driver_alive is not None:
        threading.Thread(target=_exit_with_driver, args=(driver_alive,), daemon=True).start()


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    # Runs in the main thread between two bytecodes, as soon as the current kernel call returns (every
    # chunk). Raising SystemExit here is not reliable: inside a weakref or __del__ callback it is only
    # printed and ignored. So do what a worker does when it ends normally, multiprocessing's exit routine
    # (its finalizers unlink the named semaphores), and leave. The point being computed is lost; its
    # files are atomic (a stray partial file is removed by the rerun, which redoes the point).
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


def _run_dask(tasks: list[PointTask], on_result: Callable[[PointResult], None], client: Any) -> None:
    from distributed import as_completed

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


# --------------------------------------------------------------------------- the sweep


@dataclass
class SweepOutcome:
    """What a sweep did."""

    plan: SweepPlan
    path: Path  #: the combined Dataset
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, PointResult] = field(default_factory=dict)
    wall_time: float = 0.0
    executor: str = ""

    def plan_point(self, pid: str) -> SweepPoint:
        """The point with id ``pid``."""
        return next(p for p in self.plan.points if p.id == pid)


def _stored_scenario(path: Path) -> str | None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("scenario")
    except OSError:
        return None
    return value.decode() if isinstance(value, bytes) else value


def execute_sweep(
    scenario: Scenario,
    output: str | os.PathLike | None = None,
    force: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    progress: Progress = QUIET,
) -> SweepOutcome:
    """Run every unfinished point of a sweep and write the combined Dataset.

    Parameters
    ----------
    scenario : Scenario
        A scenario with a ``sweep:`` section.
    output : path-like, optional
        The sweep directory (default ``outputs/<name>``).
    force : bool
        Discard finished points and any combined result, and run everything again.
    workers : int, optional
        Local processes (default: all cores); 1 runs the points serially in this process.
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``); workers must share ``output``.
    cluster : str, optional
        ``"local:N"``: start a Dask LocalCluster with N worker processes on the loopback interface.
    progress : Progress
        One bar for the sweep (points done, failed, ETA); serial points also show their own progress.

    Returns
    -------
    SweepOutcome
        Which points ran, were reused or failed, and the combined file.

    Raises
    ------
    UserError
        Before anything is written: no sweep, another sweep writing the same folder, a folder that is
        not a neurodyn sweep or holds files the sweep did not write (:func:`_check_folder`), results of a
        different scenario in the directory, a finished sweep without ``force``, an unreachable
        scheduler.
    """
    # The driver claims the folder for the whole sweep (workers write only inside it, for this driver).
    with claim_output(sweep_root(scenario, output)):
        return _execute_sweep(scenario, output, force, workers, scheduler, cluster, progress)


def _execute_sweep(
    scenario: Scenario,
    output: str | os.PathLike | None,
    force: bool,
    workers: int | None,
    scheduler: str | None,
    cluster: str | None,
    progress: Progress,
) -> SweepOutcome:
    """:func:`execute_sweep` once the sweep's folder is claimed."""
    t0 = time.perf_counter()
    plan = plan_sweep(scenario, output)
    if scheduler and cluster:
        raise UserError("give either --scheduler or --cluster, not both")
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers}: must be at least 1")

    _check_folder(plan, force)
    # Decide what to (re)run without writing anything.
    done, stale = [], []
    if not force:
        for p in plan.points:
            path = plan.point_path(p)
            if path.exists():
                stored = _stored_scenario(path)
                if stored == p.resolved_yaml():
                    done.append(p)
                elif stored is not None:  # an unreadable file is simply not finished
                    stale.append(p)
        if stale:
            raise OutputExistsError(
                f"{plan.root / 'points'} holds {len(stale)} point(s) of a different "
                f"scenario (e.g. {stale[0].id}); pass --force to replace them or "
                f"--output DIR to write elsewhere"
            )
        if plan.combined.exists() and len(done) == len(plan.points):
            raise OutputExistsError(
                f"sweep result {plan.combined} already exists and is complete; pass "
                f"--force to recompute it or --output DIR to write elsewhere"
            )
    done_ids = {p.id for p in done}
    todo = [p for p in plan.points if p.id not in done_ids]

    family_target = registry.target(scenario.family)
    n_workers = workers or _cpu_count()
    executor = (
        ("dask " + (cluster or scheduler or ""))
        if (scheduler or cluster)
        else ("serial" if n_workers == 1 or len(todo) <= 1 else f"{min(n_workers, len(todo))} processes")
    )
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(_dask_client(scheduler, cluster)) if (scheduler or cluster) else None
        # From here on we write; _check_folder made sure that everything removed here is the sweep's own.
        try:
            if force:
                _clear(plan)
            plan.root.mkdir(parents=True, exist_ok=True)
            _write_json(plan.root / MANIFEST, plan.manifest())
        except OSError as exc:
            raise UserError(f"output {plan.root}: cannot write the sweep folder ({exc.strerror or exc})") from None
        for stray in _partial_points(plan.root):
            stray.unlink(missing_ok=True)  # writes a killed run never finished; the point reruns
        if plan.combined.exists():
            plan.combined.unlink()  # an incomplete combined result is rebuilt below

        raw = copy.deepcopy(scenario.raw)
        raw.pop("sweep", None)
        raw.pop("output", None)  # workers write task.path; the scenario's output: was checked here
        threads = None if scenario.run.threads else (1 if executor != "serial" else None)
        tasks = [
            PointTask(
                raw=raw,
                source=str(scenario.source) if scenario.source else None,
                family=scenario.family,
                family_target=family_target,
                values=p.values,
                point_id=p.id,
                path=str(plan.point_path(p)),
                threads=threads,
            )
            for p in todo
        ]
        outcome = SweepOutcome(plan=plan, path=plan.combined, reused=[p.id for p in done], executor=executor)
        by_id = {p.id: p for p in plan.points}
        with progress.task(len(plan.points), f"sweep {plan.name}", "point") as bar:
            bar.update(len(done))

            def on_result(r: PointResult) -> None:
                point = by_id[r.point_id]
                if r.ok and not plan.point_path(point).is_file():
                    r = PointResult(
                        r.point_id,
                        False,
                        r.wall_time,
                        "OutputNotShared",
                        f"the worker wrote {plan.point_path(point)} but it is not visible here; "
                        f"the output directory must be on a filesystem the workers share",
                    )
                if r.ok:
                    outcome.ran.append(r.point_id)
                    plan.failed_path(point).unlink(missing_ok=True)
                else:
                    outcome.failed[r.point_id] = r
                    _write_json(
                        plan.failed_path(point),
                        {
                            "point": r.point_id,
                            "values": point.values,
                            "error": r.error_type,
                            "message": r.message,
                            "traceback": r.detail,
                            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        },
                    )
                bar.update(1)
                bar.set(failed=len(outcome.failed))

            if client is not None:
                _run_dask(tasks, on_result, client)
            elif executor == "serial":
                _run_serial(tasks, on_result, progress)
            else:
                _run_pool(tasks, on_result, min(n_workers, len(tasks)), family_module(scenario.family), bar)
    # Failures recorded by an earlier run for points that are now finished are stale.
    for p in done:
        plan.failed_path(p).unlink(missing_ok=True)
    combine(plan, target=plan.combined)
    outcome.wall_time = time.perf_counter() - t0
    return outcome


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: the sub-folders a sweep writes; --force empties them, but only of files the sweep wrote
_SWEEP_SUBFOLDERS = ("points", "failed", "report")


def _is_manifest(path: Path) -> bool:
    """Whether ``path`` is a sweep's marker: a ``sweep.json`` of the shape :meth:`SweepPlan.manifest` writes."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("name"), str)
        and isinstance(doc.get("family"), str)
        and isinstance(doc.get("scenario"), str)
        and isinstance(doc.get("dims"), list)
        and isinstance(doc.get("points"), list)
        and all(isinstance(p, dict) and isinstance(p.get("id"), str) for p in doc["points"])
    )


def _is_failure_record(path: Path) -> bool:
    """Whether ``path`` is a ``failed/<id>.json`` the sweep wrote (or the temporary file of one)."""
    if path.is_symlink() or not path.is_file():
        return False
    if re.fullmatch(r"\..+\.json\.tmp-\d+", path.name):
        return True  # _write_json was stopped between writing and renaming
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("point") == path.stem and {"values", "error", "message"} <= set(doc)


def _is_partial_point(path: Path) -> bool:
    """Whether ``path`` in ``points/`` is the unfinished file of a point (a killed worker's)."""
    named = path.name.endswith(".partial.h5") or re.fullmatch(r"\..+\.partial-\d+\.h5", path.name)
    return bool(named) and (is_partial_result(path) or is_neurodyn_result(path))


def _partial_points(root: Path) -> list[Path]:
    folder = root / "points"
    return [f for f in folder.iterdir() if _is_partial_point(f)] if folder.is_dir() else []


def _report_files(folder: Path) -> set[str]:
    """Names of the files in ``report/`` that ``write_report`` wrote: report.md and the figures it shows."""
    md = folder / "report.md"
    if md.is_symlink() or not md.is_file():
        return set()
    try:
        text = md.read_text()
    except (OSError, UnicodeDecodeError):
        return set()
    if not text.startswith("# Sweep report: "):
        return set()
    return {"report.md", *re.findall(r"^!\[[^\]]*\]\(([^)/\\]+)\)$", text, flags=re.M)}


def _owned_files(root: Path) -> tuple[list[Path], list[Path]]:
    """Files under the sweep's sub-folders: (those the sweep wrote, anything else)."""
    own: list[Path] = []
    other: list[Path] = []
    for sub in _SWEEP_SUBFOLDERS:
        folder = root / sub
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            other.append(folder)
            continue
        if not folder.is_dir():
            continue
        report = _report_files(folder) if sub == "report" else set()
        for f in sorted(folder.iterdir()):
            if sub == "points":
                ok = f.suffix == ".h5" and (is_neurodyn_result(f) or _is_partial_point(f))
            elif sub == "failed":
                ok = _is_failure_record(f)
            else:
                ok = f.name in report and f.is_file() and not f.is_symlink()
            (own if ok else other).append(f)
    return own, other


def _check_folder(plan: SweepPlan, force: bool) -> None:
    """Refuse, before anything is written, a sweep folder holding what the sweep did not write.

    The folder must be new, empty, or a neurodyn sweep folder (its marker: a ``sweep.json`` of the right
    shape). In it, every file the sweep would replace or remove must be its own: point files and the
    combined file carry neurodyn's marker attribute, failure records have the sweep's shape, report
    files are report.md and the figures it shows. With ``force`` that is every file in points/,
    failed/ and report/ (which --force empties); without, the files of the planned points, their failure
    records, leftover partial files and the combined file. Anything else is refused with one line and
    left untouched; files elsewhere in the folder are never touched.
    """
    root = plan.root
    if (root.is_symlink() and not root.is_dir()) or (root.exists() and not root.is_dir()):
        raise UserError(f"output {root} is a file; a sweep writes a folder: pass --output DIR")
    if not root.is_dir():
        return
    keep = "move it away or choose another --output"
    if not _is_manifest(root / MANIFEST):
        stray = [f for f in root.iterdir() if not re.fullmatch(r"\.sweep\.json\.tmp-\d+", f.name)]
        if stray:
            raise UserError(
                f"output {root} is a folder that is not a neurodyn sweep (no valid {MANIFEST}); a sweep "
                f"writes only into a new or empty folder or its own: choose another --output"
            )
        return
    if force:
        foreign = _owned_files(root)[1]
    else:
        foreign = [
            f
            for p in plan.points
            for f, own in ((plan.point_path(p), is_neurodyn_result), (plan.failed_path(p), _is_failure_record))
            if (f.exists() or f.is_symlink()) and not own(f)
        ]
        points = root / "points"
        if points.is_dir():
            foreign += [
                f
                for f in points.iterdir()
                if (f.name.endswith(".partial.h5") or re.fullmatch(r"\..+\.partial-\d+\.h5", f.name))
                and not _is_partial_point(f)
            ]
    for f, own in ((plan.combined, is_neurodyn_result), (stream_partial_path(plan.combined), is_partial_result)):
        if (f.exists() or f.is_symlink()) and not own(f):
            foreign.append(f)
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        what = "--force replaces only the sweep's own files" if force else "a sweep replaces only its own files"
        raise UserError(f"{foreign[0]}{more} was not written by this sweep; {what}: {keep}")


def _clear(plan: SweepPlan) -> None:
    """Remove what earlier runs of this sweep wrote, and nothing else (checked by :func:`_check_folder`)."""
    own, _other = _owned_files(plan.root)
    for f in own:
        f.unlink(missing_ok=True)
    for sub in _SWEEP_SUBFOLDERS:
        with contextlib.suppress(OSError):
            (plan.root / sub).rmdir()  # only when empty
    for f in (plan.combined, stream_partial_path(plan.combined), plan.root / MANIFEST):
        f.unlink(missing_ok=True)


def _write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, path)


def run_sweep(
    scenario: Scenario,
    output: str | os.PathLike | None = None,
    force: bool = False,
    quiet: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
) -> int:
    """Command-line driver: run the sweep, print a summary, return the exit code.

    Exit code 0 when every point finished, 3 when some failed (they are listed on stderr with their
    parameters and message, and recorded in ``failed/``; a rerun retries them).
    """
    progress = Progress(enabled=False if quiet else None)
    try:
        out = execute_sweep(
            scenario,
            output=output,
            force=force,
            workers=workers,
            scheduler=scheduler,
            cluster=cluster,
            progress=progress,
        )
    except KeyboardInterrupt:
        root = sweep_root(scenario, output)
        n_done = len([p for p in (root / "points").glob("*.h5") if ".partial" not in p.name])
        print(
            f"neurodyn: interrupted; {n_done} finished points kept in {root / 'points'}; "
            f"run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    n = len(out.plan.points)
    for pid, r in out.failed.items():
        values = ", ".join(f"{k}={v}" for k, v in out.plan_point(pid).values.items())
        print(f"neurodyn: point {pid} ({values}) failed: {r.error_type}: {r.message}", file=sys.stderr)
    if not quiet:
        dims = ", ".join(f"{d.name}={d.size}" for d in out.plan.dims)
        print(
            f"sweep {scenario.name} ({scenario.family}): {n} points ({dims}); {len(out.ran)} run, "
            f"{len(out.reused)} reused, {len(out.failed)} failed; {out.wall_time:.2f} s on {out.executor}"
        )
        print(f"result: {out.path}")
        print(f"explore: python -c \"import neurodyn; print(neurodyn.open_sweep('{out.plan.root}'))\"")
    if out.failed:
        print(
            f"neurodyn: {len(out.failed)} of {n} points failed (see {out.plan.root / 'failed'}); rerun to retry them",
            file=sys.stderr,
        )
        return 3
    return 0


# --------------------------------------------------------------------------- combining


class _MemoryTarget:
    """Collects the combined Dataset in memory (``open_sweep`` on an unfinished sweep)."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}
        self.arrays: dict[str, tuple[tuple[str, ...], np.ndarray, dict, bool]] = {}
        self.attrs: dict[str, Any] = {}

    def dimension(self, name: str, size: int) -> None:
        self.sizes[name] = size

    def variable(self, name: str, dims: tuple[str, ...], dtype: Any, attrs: dict, fill: Any, coord: bool) -> None:
        dtype = np.dtype(dtype)
        shape = tuple(self.sizes[d] for d in dims)
        arr = np.full(shape, fill if fill is not None else 0, dtype=object if dtype.kind in "OUS" else dtype)
        self.arrays[name] = (dims, arr, attrs, coord)

    def write(self, name: str, data: Any, index: tuple = ()) -> None:
        self.arrays[name][1][index if index else ...] = data

    def set_attrs(self, attrs: dict) -> None:
        self.attrs.update(attrs)

    def dataset(self) -> xr.Dataset:
        data = {n: xr.Variable(d, a, at) for n, (d, a, at, c) in self.arrays.items() if not c and n not in d}
        coords = {n: xr.Variable(d, a, at) for n, (d, a, at, c) in self.arrays.items() if c or n in d}
        return xr.Dataset(data, coords=coords, attrs=self.attrs)


class _FileTarget:
    """Writes the combined Dataset through :class:`~neurodyn.storage.ChunkedWriter` (atomic)."""

    def __init__(self, path: Path):
        self.writer = ChunkedWriter(path, force=True)

    def dimension(self, name: str, size: int) -> None:
        self.writer.dimension(name, size)

    def variable(self, name: str, dims: tuple[str, ...], dtype: Any, attrs: dict, fill: Any, coord: bool) -> None:
        self.writer.variable(name, dims, dtype, attrs, fill=fill, coord=coord)

    def write(self, name: str, data: Any, index: tuple = ()) -> None:
        self.writer.write(name, data, index)

    def set_attrs(self, attrs: dict) -> None:
        self.writer.set_attrs(attrs)


def _is_prediction(name: str) -> bool:
    return name.endswith("_theory") or name.endswith("_bound")


def combine(plan: SweepPlan, target: Path | None = None) -> xr.Dataset | Path:
    """Combine the finished point files into one Dataset with a dimension per swept path.

    Missing (failed or unfinished) points are NaN (integer variables then become float64) and have
    ``point_status == 0``. Each point file is read twice: its layout (with h5py, quick) and its data
    (with xarray); one point's variables are in memory at a time, except predictions and non-index
    coordinates, which are small.

    Parameters
    ----------
    plan : SweepPlan
        The sweep.
    target : path, optional
        Write the combined file there atomically and return its path; by default return the Dataset.
    """
    finished = {p.id: plan.point_path(p) for p in plan.points if plan.point_path(p).exists()}
    sweep_dims = tuple(_final_dims(plan, finished))
    shape = plan.shape

    # Pass 1: the layout of every variable, which dimensions are ragged across points, and the small
    # per-point values (predictions, non-index coordinates) whose variation decides their dimensions.
    layout: dict[str, tuple[tuple[str, ...], np.dtype, dict, bool]] = {}
    sizes: dict[str, int] = {}
    index_values: dict[str, np.ndarray] = {}
    ragged: set[str] = set()
    first_attrs: dict[str, Any] | None = None
    seen_vars: list[set[str]] = []
    small: dict[str, dict[tuple[int, ...], np.ndarray]] = {}
    #: raw HDF5 values of the first point's index and non-index coordinates, for equality checks
    ref_raw: dict[str, np.ndarray] | None = None
    first_decoded: dict[str, np.ndarray] = {}
    for p in plan.points:
        if p.id not in finished:
            continue
        if ref_raw is not None:
            fast = _fast_scan(finished[p.id], layout, ref_raw)
            if fast is not None:
                # The same variables as the first point, read as HDF5 metadata (much faster than xarray).
                shapes, raw = fast
                seen_vars.append(set(shapes))
                for name, (shp, dtype) in shapes.items():
                    dims, old_dtype, attrs, coord = layout[name]
                    for dim, n in zip(dims, shp):
                        if sizes.setdefault(dim, n) != n:
                            ragged.add(dim)
                    if dtype.kind in "iuf" and old_dtype.kind in "iuf":
                        layout[name] = (dims, np.promote_types(old_dtype, dtype), attrs, coord)
                for name, values in raw.items():
                    if name in index_values and not _same(ref_raw[name], values):
                        ragged.add(name)
                    elif name in small:
                        small[name][p.index] = values
                continue
        with _open_point(finished[p.id]) as ds:
            if first_attrs is None:
                first_attrs = dict(ds.attrs)
            seen_vars.append(set(map(str, ds.variables)))
            for dim, n in ds.sizes.items():
                if sizes.setdefault(str(dim), int(n)) != n:
                    ragged.add(str(dim))
                elif dim in ds.indexes:
                    values = ds[dim].values
                    prev = index_values.setdefault(str(dim), values)
                    if prev is not values and not _same(prev, values):
                        ragged.add(str(dim))
            for name, var in ds.variables.items():
                name = str(name)
                is_coord = name in ds.coords
                if name in layout:
                    old_dims, old_dtype, attrs, coord = layout[name]
                    if old_dims != var.dims:
                        ragged.update(map(str, var.dims))
                    if var.dtype.kind not in "OUS" and old_dtype.kind not in "OUS":
                        layout[name] = (old_dims, np.promote_types(old_dtype, var.dtype), attrs, coord)
                else:
                    layout[name] = (tuple(map(str, var.dims)), var.dtype, dict(var.attrs), is_coord)
                if (_is_prediction(name) and var.dtype.kind in "iuf") or (is_coord and name not in var.dims):
                    small.setdefault(name, {})[p.index] = var.values
        if ref_raw is None:
            ref_raw = _raw_values(finished[p.id], [*index_values, *small])
            if ref_raw is not None:
                # Equality checks of coordinates compare raw values with raw values.
                for name in small:
                    if not _is_prediction(name):
                        first_decoded[name] = small[name][p.index]
                        small[name][p.index] = ref_raw[name]
    missing_somewhere = {n for n in layout if any(n not in s for s in seen_vars)}
    dropped = sorted(n for n, (d, *_rest) in layout.items() if set(d) & ragged)
    kept = [n for n in layout if n not in dropped]
    incomplete = len(finished) < len(plan.points) or bool(missing_somewhere)

    # Index coordinates, and coordinates equal in every point, are shared; predictions keep the sweep
    # dimensions they vary along; everything else gets all sweep dimensions in front.
    shared: dict[str, np.ndarray] = {}
    predictions: dict[str, tuple[np.ndarray, tuple[int, ...]]] = {}
    for name in kept:
        vdims, dtype, _attrs, coord = layout[name]
        if coord and name in vdims:
            shared[name] = index_values.get(name, np.zeros(0))
        elif coord and name in small and not missing_somewhere & {name}:
            values = list(small[name].values())
            if all(_same(values[0], v) for v in values[1:]):
                shared[name] = first_decoded.get(name, values[0])
        elif _is_prediction(name) and name in small and dtype.kind in "iuf":
            predictions[name] = _reduce_prediction(small[name], shape, dtype)
    stacked = [n for n in kept if n not in shared and n not in predictions]

    out: Any = _MemoryTarget() if target is None else _FileTarget(target)
    try:
        for d, n in zip(sweep_dims, shape):
            out.dimension(d, n)
        for dim, n in sizes.items():
            if dim not in ragged and any(dim in layout[v][0] for v in kept):
                out.dimension(dim, n)
        # Sweep coordinates.
        for sd, dname in zip(plan.dims, sweep_dims):
            for path in sd.paths:
                cname = dname if path == sd.paths[0] else sd.coord_names[path]
                values = np.asarray(sd.coords[path])
                attrs = {"long_name": f"swept {path}", "units": sd.units[path], "sweep_path": path}
                out.variable(cname, (dname,), values.dtype, attrs, None, True)
                out.write(cname, values.astype(object) if values.dtype.kind == "U" else values)
        # Which file holds each point, and whether it finished.
        ids = np.empty(shape, dtype=object)
        status = np.zeros(shape, dtype=np.int8)
        for p in plan.points:
            ids[p.index] = p.id
            status[p.index] = 1 if p.id in finished else 0
        out.variable(
            "point_id", sweep_dims, object, {"long_name": "point file points/<point_id>.h5", "units": "1"}, None, False
        )
        out.write("point_id", ids)
        out.variable(
            "point_status",
            sweep_dims,
            np.int8,
            {"long_name": "1 = finished, 0 = failed or not run", "units": "1"},
            None,
            False,
        )
        out.write("point_status", status)
        for name, values in shared.items():
            vdims, _dtype, attrs, _coord = layout[name]
            out.variable(name, vdims, values.dtype, attrs, _fill(values.dtype), True)
            out.write(name, values)
        for name, (arr, keep_axes) in predictions.items():
            vdims, _dtype, attrs, coord = layout[name]
            out.variable(
                name, tuple(sweep_dims[i] for i in keep_axes) + vdims, arr.dtype, attrs, _fill(arr.dtype), coord
            )
            out.write(name, arr)
        dtypes = {}
        for name in stacked:
            vdims, dtype, attrs, coord = layout[name]
            if incomplete and dtype.kind in "iub":
                dtype = np.dtype(np.float64)
            dtypes[name] = dtype
            out.variable(name, sweep_dims + vdims, dtype, attrs, _fill(dtype), coord)
        # Pass 2: the data, one point at a time (h5py where the stored bytes are the values).
        for p in plan.points:
            if p.id not in finished:
                continue
            data = _read_plain(finished[p.id], stacked)
            if data is None:
                with _open_point(finished[p.id]) as ds:
                    data = {name: ds[name].values for name in stacked if name in ds.variables}
            for name, values in data.items():
                if values.dtype != dtypes[name] and values.dtype.kind not in "OUS":
                    values = values.astype(dtypes[name])
                out.write(name, values, p.index)
        attrs = {k: v for k, v in (first_attrs or {}).items() if k not in _POINT_ATTRS}
        failed = sorted(p.id for p in plan.points if p.id not in finished)
        attrs.update(
            {
                "title": plan.scenario.description or plan.name,
                "scenario_name": plan.name,
                "family": plan.scenario.family,
                "scenario": plan.scenario.resolved_yaml(),
                "sweep": {"dims": [{"name": n, "paths": d.paths} for n, d in zip(sweep_dims, plan.dims)]},
                "sweep_dims": list(sweep_dims),
                "sweep_complete": int(not failed),
                "failed_points": failed,
                "dropped_variables": dropped,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            }
        )
        out.set_attrs(attrs)
    except BaseException:
        if isinstance(out, _FileTarget):
            out.writer.abort(keep=False)
        raise
    if isinstance(out, _FileTarget):
        return out.writer.commit()
    return out.dataset()


def _final_dims(plan: SweepPlan, finished: dict[str, Path]) -> list[str]:
    """Sweep dimension names, prefixed with ``sweep_`` where a point already uses the name."""
    taken: set[str] = set()
    if finished:
        with _open_point(next(iter(finished.values()))) as ds:
            taken = set(map(str, ds.variables)) | set(map(str, ds.dims))
    names = []
    for d in plan.dims:
        names.append(f"sweep_{d.name}" if d.name in taken else d.name)
        for p, c in d.coord_names.items():
            if p != d.paths[0] and c in taken:
                d.coord_names[p] = f"sweep_{c}"
    return names


def _bare_dimension(obj: Any) -> bool:
    """A netCDF dimension without a coordinate variable (stored as an empty dimension scale)."""
    name = obj.attrs.get("NAME", b"")
    return isinstance(name, bytes) and name.startswith(b"This is a netCDF dimension but not")


def _raw_values(path: Path, names: list[str]) -> dict[str, np.ndarray] | None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {n: f[n][()] for n in names}
    except (OSError, KeyError):
        return None


def _fast_scan(
    path: Path, layout: dict[str, tuple], ref_raw: dict[str, np.ndarray]
) -> tuple[dict[str, tuple[tuple[int, ...], np.dtype]], dict[str, np.ndarray]] | None:
    """Shapes and dtypes of a point's variables and raw values of ``ref_raw``'s variables, via h5py.

    None when the point does not look like the first one (other variables, other ranks, packed or
    filled data): the caller then reads it with xarray.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            items = {k: obj for k, obj in f.items() if isinstance(obj, h5py.Dataset) and not _bare_dimension(obj)}
            if set(items) != set(layout):
                return None
            shapes = {}
            for name, obj in items.items():
                packed = "scale_factor" in obj.attrs or "add_offset" in obj.attrs
                if packed or len(obj.shape) != len(layout[name][0]):
                    return None
                shapes[name] = (tuple(obj.shape), obj.dtype)
            raw = {}
            for name in ref_raw:
                fill = items[name].attrs.get("_FillValue")
                # A NaN fill decodes to NaN: raw values are the decoded ones. Anything else: use xarray.
                if fill is not None and not np.isnan(np.asarray(fill, dtype=float)).all():
                    return None
                raw[name] = items[name][()]
            return shapes, raw
    except (OSError, KeyError, TypeError):
        return None


#: attributes that make xarray transform stored values when it decodes them
_DECODED_ATTRS = ("scale_factor", "add_offset", "_Unsigned", "dtype", "calendar", "missing_value")


def _read_plain(path: Path, names: list[str]) -> dict[str, np.ndarray] | None:
    """Read variables with h5py when decoding would not change them; None if any would change.

    Plain numbers (no packing, no CF time units, NaN or no fill value) and strings read back exactly as
    xarray would return them, at a fraction of the cost of opening the file with xarray.
    """
    import h5py

    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            for name in names:
                if name not in f:
                    continue
                obj = f[name]
                attrs = obj.attrs
                if any(a in attrs for a in _DECODED_ATTRS) or " since " in str(attrs.get("units", "")):
                    return None
                fill = attrs.get("_FillValue")
                if obj.dtype.kind == "O":
                    values = obj.asstr()[()]
                    out[name] = np.asarray(values, dtype=object)
                    continue
                if obj.dtype.kind not in "iuf":
                    return None
                nan_fill = obj.dtype.kind == "f" and np.isnan(np.asarray(fill, float)).all()
                if fill is not None and not nan_fill:
                    return None
                out[name] = obj[()]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return out


@contextlib.contextmanager
def _open_point(path: Path) -> Iterator[xr.Dataset]:
    ds = open_run(path, load=False)
    try:
        yield ds
    finally:
        ds.close()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _fill(dtype: np.dtype) -> Any:
    return np.nan if np.dtype(dtype).kind in "fc" else None


def _reduce_prediction(
    values: dict[tuple[int, ...], np.ndarray], shape: tuple[int, ...], dtype: np.dtype
) -> tuple[np.ndarray, tuple[int, ...]]:
    """A prediction over all points, reduced to the sweep dimensions along which it varies.

    Predictions do not depend on ``run.seed`` (say); keeping only the dimensions they vary along lets
    ``compare`` average the simulation over the others with a confidence interval. Missing points
    (NaN) do not count as variation.
    """
    some = next(iter(values.values()))
    arr = np.full(shape + np.shape(some), np.nan)
    for index, v in values.items():
        arr[index] = v
    keep = []
    for axis in range(len(shape)):
        first = np.take(arr, [0], axis=axis)
        if not np.all((arr == first) | np.isnan(arr) | np.isnan(first)):
            keep.append(axis)
    reduced = arr
    for axis in reversed([a for a in range(len(shape)) if a not in keep]):
        # The value is the same along this axis wherever it is known: take the first known one.
        first = np.argmax(~np.isnan(reduced), axis=axis)
        reduced = np.take_along_axis(reduced, np.expand_dims(first, axis), axis=axis).squeeze(axis)
    if dtype.kind in "iu" and not np.isnan(reduced).any():
        reduced = reduced.astype(dtype)
    return reduced, tuple(keep)


# --------------------------------------------------------------------------- reading


def load_plan(root: str | os.PathLike) -> SweepPlan:
    """Rebuild the plan of a sweep directory from its ``sweep.json``.

    Raises
    ------
    UserError
        One line naming ``sweep.json`` when it is missing, not JSON, or not a plan neurodyn wrote
        (a missing key, a value of the wrong type, point indices outside the dimensions).
    """
    root = Path(root).absolute()
    path = root / MANIFEST
    if not path.is_file():
        raise UserError(f"{root} is not a neurodyn sweep directory (no {MANIFEST})")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"not JSON: {exc}"
        raise UserError(f"{path}: not a readable sweep plan ({reason})") from None
    try:
        return _plan_from_manifest(doc, root)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise UserError(f"{path}: not a sweep plan neurodyn wrote ({what})") from None


def _file_name(text: Any) -> bool:
    """Whether ``text`` can name a file inside the sweep folder (no separators, not ``.`` or ``..``)."""
    return (
        isinstance(text, str) and re.fullmatch(r"[A-Za-z0-9_.=+\-]{1,200}", text) is not None and text.strip(".") != ""
    )


def _plan_from_manifest(doc: Any, root: Path) -> SweepPlan:
    """The plan in a parsed ``sweep.json`` (:meth:`SweepPlan.manifest`); raises on any deviation."""

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(what)

    need(isinstance(doc, dict), f"the document is a JSON {type(doc).__name__}, not an object")
    for key, kind in (("name", str), ("family", str), ("scenario", str), ("dims", list), ("points", list)):
        need(isinstance(doc[key], kind), f"{key!r} is not a JSON {kind.__name__.replace('str', 'string')}")
    need(_file_name(doc["name"]), f"name {doc['name']!r} is not a file name")
    need(registry.target(doc["family"]) is not None, f"family {doc['family']!r} is not installed here")
    try:
        stored = parse_yaml(doc["scenario"], "scenario")
    except ScenarioError:
        stored = None
    need(isinstance(stored, dict), "'scenario' does not hold a scenario's YAML mapping")
    scenario = Scenario._header(doc["name"], doc["family"], doc["scenario"])
    dims = []
    for d in doc["dims"]:
        need(isinstance(d, dict), "an entry of 'dims' is not an object")
        dim = SweepDim(
            name=d["name"], paths=d["paths"], coords=d["coords"], coord_names=d["coord_names"], units=d["units"]
        )
        need(
            isinstance(dim.name, str) and isinstance(dim.paths, list) and dim.paths, f"dimension {dim.name!r}: no paths"
        )
        for attr in ("coords", "coord_names", "units"):
            table = getattr(dim, attr)
            need(isinstance(table, dict), f"dimension {dim.name!r}: {attr!r} is not an object")
            need(all(p in table for p in dim.paths), f"dimension {dim.name!r}: {attr!r} lacks a swept path")
        need(
            all(
                isinstance(dim.coords[p], list) and len(dim.coords[p]) == len(dim.coords[dim.paths[0]])
                for p in dim.paths
            ),
            f"dimension {dim.name!r}: coordinate lists of different lengths",
        )
        dims.append(dim)
    shape = tuple(d.size for d in dims)
    points = []
    for p in doc["points"]:
        need(isinstance(p, dict), "an entry of 'points' is not an object")
        index = tuple(p["index"])
        need(
            len(index) == len(shape) and all(isinstance(i, int) and 0 <= i < n for i, n in zip(index, shape)),
            f"point {p.get('id')!r}: index {list(index)} outside the sweep's shape {list(shape)}",
        )
        need(_file_name(p["id"]), f"point id {p['id']!r} is not a file name")
        need(isinstance(p["values"], dict), f"point {p['id']!r}: 'values' is not an object")
        points.append(SweepPoint(index=index, id=p["id"], values=p["values"], yaml=""))
    return SweepPlan(scenario=scenario, root=root, dims=dims, points=points)


def open_sweep(path: str | os.PathLike, load: bool = False) -> xr.Dataset:
    """Open a sweep's combined Dataset.

    Parameters
    ----------
    path : path-like
        The sweep directory (``outputs/<name>``) or its combined file ``outputs/<name>/<name>.h5``.
    load : bool
        Read everything into memory. By default the combined file is opened lazily.

    Returns
    -------
    xarray.Dataset
        One dimension per swept path. While a sweep is unfinished (no combined file yet), the finished
        points are combined in memory and the others are NaN with ``point_status == 0``.
    """
    path = Path(path)
    if path.is_file():
        return open_run(path, load=load)
    plan = load_plan(path)
    if plan.combined.is_file():
        return open_run(plan.combined, load=load)
    ds = combine(plan)
    assert isinstance(ds, xr.Dataset)
    return ds


def is_sweep(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a sweep directory or a combined sweep file."""
    path = Path(path)
    if path.is_dir():
        return (path / MANIFEST).is_file()
    if path.is_file() and (path.parent / MANIFEST).is_file():
        try:
            doc = json.loads((path.parent / MANIFEST).read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            return False
        return isinstance(doc, dict) and doc.get("name") == path.stem
    return False


# --------------------------------------------------------------------------- report


def write_report(path: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> tuple[Path, list]:
    """Write ``report/report.md`` (theory vs simulation per quantity and sweep point) and figures.

    Rows come from :func:`neurodyn.compare.generic_rows` on the combined Dataset (simulation averaged,
    with a 95% CI, over the sweep dimensions the prediction does not vary along, typically ``seed``),
    plus the family's own rows for each point file. Figures: one per checked quantity (simulated ± CI
    and predicted along the first remaining sweep dimension) and the family's figures for the first
    :data:`MAX_POINT_FIGURES` points along the first sweep dimension.

    Returns
    -------
    (pathlib.Path, list of Row)
        The Markdown file and the rows in it.
    """
    from neurodyn.compare import format_table, generic_rows

    path = Path(path)
    root = path.parent if path.is_file() else path
    plan = load_plan(root)
    report = Path(out_dir) if out_dir else root / "report"
    # before any work: a read-only sweep folder (shared, say) is refused with the way out
    check_folder_writable(report, hint="write the report elsewhere with --report-dir DIR")
    ds = open_sweep(root, load=True)
    family = registry.get(plan.scenario.family)

    with reading(plan.combined if plan.combined.is_file() else root, plan.scenario.family):
        rows = generic_rows(ds, max_rows_per_variable=None)
    for p in plan.points:
        if plan.point_path(p).exists():
            with _point_data(plan.point_path(p), plan.scenario.family) as pds:
                extra = family.compare_rows(pds)
            label = ", ".join(f"{d.name}={_fmt_coord(d.coords[d.paths[0]][i])}" for d, i in zip(plan.dims, p.index))
            for r in extra:
                r.where = ", ".join(filter(None, [label, r.where]))
            rows += extra
    with writes_to(report):
        report.mkdir(parents=True, exist_ok=True)
        figures, problems = _report_figures(plan, ds, report, strict=False)

    failed = ds.attrs.get("failed_points") or []
    lines = [
        f"# Sweep report: {plan.name}",
        "",
        ds.attrs.get("title", plan.name),
        "",
        f"family `{plan.scenario.family}`, {len(plan.points)} points, "
        f"{len(plan.points) - len(failed)} finished, {len(failed)} failed or missing.",
        "",
        "| dimension | swept path | values | units |",
        "|---|---|---|---|",
    ]
    for d in plan.dims:
        for p in d.paths:
            values = ", ".join(_fmt_coord(v) for v in d.coords[p])
            lines.append(
                f"| {d.name if p == d.paths[0] else d.coord_names[p]} | `{p}` | {values} | {d.units.get(p, '')} |"
            )
    lines += ["", "## Theory against simulation", ""]
    if rows:
        lines += [
            "Simulated values are means over the sweep dimensions a prediction does not depend on, "
            "with the half-width of the 95% confidence interval.",
            "",
            format_table(rows, markdown=True),
        ]
        sources = sorted({r.source for r in rows if r.source})
        if sources:
            lines += ["", "Sources:", *[f"- {s}" for s in sources]]
    else:
        lines.append("No theory predictions are stored for this sweep.")
    if failed:
        lines += ["", "## Failed points", ""]
        for pid in failed:
            fpath = root / "failed" / f"{pid}.json"
            if fpath.is_file():
                info = json.loads(fpath.read_text())
                lines.append(f"- `{pid}` ({info.get('values')}): {info.get('error')}: {info.get('message')}")
            else:
                lines.append(f"- `{pid}`: not run")
    if figures or problems:
        lines += ["", "## Figures", ""] + [f"![{f.stem}]({f.name})" for f in figures]
        lines += [f"Note: {msg}" for msg in problems]
    md = report / "report.md"
    with writes_to(report):
        md.write_text("\n".join(lines) + "\n")
    return md, rows


def plot_sweep(path: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Write a sweep's figures (those of its report, see :func:`write_report`) and return their paths.

    Parameters
    ----------
    path : path-like
        The sweep directory or its combined file.
    out_dir : path-like, optional
        Folder for the figures (default: the sweep's ``report/``).

    Raises
    ------
    UserError
        An unreadable plan or point file, an unwritable ``out_dir``, or the family's figures failing on
        a point file (one line naming the file).
    """
    path = Path(path)
    root = path.parent if path.is_file() else path
    plan = load_plan(root)
    out = Path(out_dir) if out_dir else root / "report"
    check_folder_writable(out, hint="choose another folder with --out DIR")
    ds = open_sweep(root, load=True)
    with writes_to(out):
        out.mkdir(parents=True, exist_ok=True)
        figures, _ = _report_figures(plan, ds, out, strict=True)
    return figures


@contextlib.contextmanager
def _point_data(path: Path, family: str) -> Iterator[xr.Dataset]:
    """A point file read into memory, for family code: reading and interpreting it fail as one line."""
    with _open_point(path) as pds:
        with reading(path):
            data = pds.load()
        with reading(path, family):
            yield data


def _report_figures(plan: SweepPlan, ds: xr.Dataset, out: Path, strict: bool) -> tuple[list[Path], list[str]]:
    """Quantity figures of the combined Dataset and the family's figures of :func:`_figure_points`.

    With ``strict`` a failure of the family's figures is raised (as one line naming the point file);
    otherwise it is printed as a warning and returned as a problem, for the report to note.
    """
    family = registry.get(plan.scenario.family)
    with reading(plan.combined if plan.combined.is_file() else plan.root, plan.scenario.family):
        figures = _quantity_figures(ds, [], out)
    problems: list[str] = []
    for p in _figure_points(plan):
        if not plan.point_path(p).exists():
            continue
        if strict:
            with _point_data(plan.point_path(p), plan.scenario.family) as pds:
                figures += family.plot(pds, out, p.id)
            continue
        with _open_point(plan.point_path(p)) as pds:
            try:
                figures += family.plot(pds.load(), out, p.id)
            except Exception as exc:  # noqa: BLE001 - the table is still worth writing
                problems.append(f"the family's figures failed: {type(exc).__name__}: {exc}")
                print(f"neurodyn: warning: {problems[-1]}", file=sys.stderr)
                break
    return figures, problems


def _fmt_coord(c: Any) -> str:
    return f"{c:.4g}" if isinstance(c, float) else str(c)


def _figure_points(plan: SweepPlan) -> list[SweepPoint]:
    """Points whose family figures go into the report: along the first sweep dimension (the others at
    their first value), at most :data:`MAX_POINT_FIGURES`, evenly spread."""
    line = [p for p in plan.points if all(i == 0 for i in p.index[1:]) and plan.point_path(p).exists()]
    if len(line) <= MAX_POINT_FIGURES:
        return line
    picks = np.linspace(0, len(line) - 1, MAX_POINT_FIGURES).round().astype(int)
    return [line[i] for i in sorted(set(picks))]


def _quantity_figures(ds: xr.Dataset, rows: list, out: Path) -> list[Path]:
    """Simulated (± 95% CI) and predicted against the first sweep dimension each prediction keeps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurodyn.compare import Z95

    paths = []
    sweep_dims = list(ds.attrs.get("sweep_dims") or [])
    for name in sorted(ds.data_vars):
        if not _is_prediction(str(name)):
            continue
        pred = ds[name]
        sim_name = pred.attrs.get("simulated", str(name).rsplit("_", 1)[0])
        if sim_name not in ds:
            continue
        sim = ds[sim_name]
        xdims = [d for d in sweep_dims if d in pred.dims]
        if not xdims:
            continue  # the prediction is the same at every point: nothing to plot against
        x = xdims[0]
        extra = [d for d in sim.dims if d not in pred.dims]
        mean = sim.mean(extra) if extra else sim
        n = int(np.prod([sim.sizes[d] for d in extra])) if extra else 1
        ci = Z95 * sim.std(extra, ddof=1) / math.sqrt(n) if n > 1 else None
        others = [d for d in mean.dims if d != x]
        fig, ax = plt.subplots(figsize=(5, 3.5))
        stacked = mean.stack(_o=others) if others else mean.expand_dims(_o=[0])
        pstacked = pred.broadcast_like(mean).stack(_o=others) if others else pred.expand_dims(_o=[0])
        cstacked = (ci.stack(_o=others) if others else ci.expand_dims(_o=[0])) if ci is not None else None
        xv = ds[x].values
        for k in range(min(stacked.sizes["_o"], 8)):
            coords = stacked["_o"].values[k] if others else ()
            coords = coords if isinstance(coords, tuple) else (coords,)
            label = ", ".join(f"{d}={_fmt_coord(c)}" for d, c in zip(others, coords))
            line = ax.errorbar(
                xv,
                stacked.isel(_o=k).transpose(x).values,
                yerr=None if cstacked is None else cstacked.isel(_o=k).transpose(x).values,
                fmt="o",
                ms=4,
                capsize=2,
                label=f"simulated {label}".strip(),
            )
            ax.plot(
                xv,
                pstacked.isel(_o=k).transpose(x).values,
                "-",
                color=line[0].get_color(),
                label=f"predicted {label}".strip(),
            )
        ax.set(
            xlabel=f"{x} ({ds[x].attrs.get('units', '')})",
            ylabel=f"{sim_name} ({sim.attrs.get('units', '')})",
            title=f"{sim_name} across the sweep",
        )
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = out / f"{ds.attrs.get('scenario_name', 'sweep')}_{sim_name}_sweep.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)
    return paths
