"""Running a sweep: claim its folder, decide what to (re)run, run the points, record failures, combine.

The output directory (default ``outputs/<name>/``) holds::

    sweep.json            the plan: swept paths, coordinates, point ids (written before anything runs)
    points/<id>.h5        one ordinary result file per finished point, written as the point finishes
    failed/<id>.json      a point that raised: its parameters, the error type and message
    <name>.h5             the combined Dataset, written atomically at the end
    report/               ``neurodyn compare`` on the sweep: report.md and figures

A rerun skips every point whose file exists and holds the same resolved scenario, and reruns the
others (unfinished or failed). The sweep writes only into a new or empty folder or its own, and
replaces or removes only files it wrote (:func:`_check_folder`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurodyn import registry
from neurodyn.errors import OutputExistsError, UserError
from neurodyn.progress import QUIET, Progress
from neurodyn.scenario import Scenario, same_stored_scenario
from neurodyn.storage import (
    claim_output,
    is_neurodyn_result,
    is_partial_result,
    stored_scenario,
    stream_partial_path,
)
from neurodyn.sweep.combined import combine
from neurodyn.sweep.executors import (
    cpu_count,
    dask_client,
    family_module,
    run_dask,
    run_pool,
    run_serial,
)
from neurodyn.sweep.plan import MANIFEST, SweepPlan, SweepPoint, is_manifest, plan_sweep, sweep_root
from neurodyn.sweep.point import PointResult, PointTask


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
                stored = stored_scenario(path)
                if same_stored_scenario(stored, p.resolved_yaml()):
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
    n_workers = workers or cpu_count()
    executor = (
        ("dask " + (cluster or scheduler or ""))
        if (scheduler or cluster)
        else ("serial" if n_workers == 1 or len(todo) <= 1 else f"{min(n_workers, len(todo))} processes")
    )
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(dask_client(scheduler, cluster)) if (scheduler or cluster) else None
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

        threads = None if scenario.run.threads else (1 if executor != "serial" else None)
        # Each point carries its scenario as the plan checked it; workers write task.path (the
        # scenario's output: was checked here).
        tasks = [
            PointTask(
                scenario=p.scenario,
                family_target=family_target,
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
                run_dask(tasks, on_result, client)
            elif executor == "serial":
                run_serial(tasks, on_result, progress)
            else:
                run_pool(tasks, on_result, min(n_workers, len(tasks)), family_module(scenario.family), bar)
    # Failures recorded by an earlier run for points that are now finished are stale.
    for p in done:
        plan.failed_path(p).unlink(missing_ok=True)
    combine(plan, target=plan.combined)
    outcome.wall_time = time.perf_counter() - t0
    return outcome


#: the sub-folders a sweep writes; --force empties them, but only of files the sweep wrote
_SWEEP_SUBFOLDERS = ("points", "failed", "report")


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
    if not is_manifest(root / MANIFEST):
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
) -> SweepOutcome:
    """:func:`execute_sweep` as the command line runs it: with a progress bar on a terminal unless ``quiet``.

    The command line prints the outcome (``neurodyn.cli``); ``KeyboardInterrupt`` reaches the caller,
    and :func:`finished_point_files` tells what an interrupted sweep kept.
    """
    progress = Progress(enabled=False if quiet else None)
    return execute_sweep(
        scenario,
        output=output,
        force=force,
        workers=workers,
        scheduler=scheduler,
        cluster=cluster,
        progress=progress,
    )


def finished_point_files(root: Path) -> list[Path]:
    """The point files under ``root/points`` (the sweep folder ``root``), unfinished writes left out."""
    return [p for p in (root / "points").glob("*.h5") if ".partial" not in p.name]
