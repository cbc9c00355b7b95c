"""The ``neurodyn`` command line.

Every user error (bad scenario, existing output, missing file) prints one line on stderr and exits with
code 2; a simulation that became invalid (NaN, instability) exits with 3; ``compare --fail-on-disagree``
exits with 1 when theory and simulation disagree.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurodyn import __version__

if TYPE_CHECKING:  # pydantic and the rest load after the sweep pool's fork server has started
    from neurodyn.scenario import Scenario

EPILOG = (
    "Scenario format and examples: README.md and scenarios/; every key of a family's scenarios: neurodyn schema FAMILY."
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neurodyn", description="Simulate neural dynamics and compare with theory.", epilog=EPILOG
    )
    p.add_argument("--version", action="version", version=f"neurodyn {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run a scenario and write its result file")
    r.add_argument("scenario", type=Path)
    r.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a value, e.g. --set run.seed=2 --set params.synapses.0.weight=2mV (quantities need their unit)",
    )
    r.add_argument("--output", "-o", type=Path, help="result file (default outputs/<name>.h5)")
    r.add_argument("--force", action="store_true", help="replace an existing result")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")

    sw = sub.add_parser("sweep", help="run every point of a scenario's sweep: section (resumable)")
    sw.add_argument("scenario", type=Path)
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    sw.add_argument(
        "--workers", "-j", type=int, metavar="N", help="local worker processes (default: all cores; 1 = serial)"
    )
    where = sw.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run the points on this Dask distributed scheduler (shared filesystem)",
    )
    where.add_argument("--cluster", metavar="local:N", help="start a Dask LocalCluster with N workers")
    sw.add_argument("--output", "-o", type=Path, help="sweep directory (default outputs/<name>)")
    sw.add_argument("--force", action="store_true", help="discard finished points and run everything again")
    sw.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")

    v = sub.add_parser("validate", help="check a scenario without running it")
    v.add_argument("scenario", type=Path)
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")

    sub.add_parser("list", help="list families, model presets and scenarios")

    sc = sub.add_parser(
        "schema",
        help="every key of a family's scenarios: type, unit, default, constraint, meaning",
        description="Print the parameter reference of a family: every dotted path a scenario may set (the "
        "top level, run:, record:, sweep: and the family's params:), with its type, unit, default, "
        "constraint and description, generated from the models that validate scenarios.",
    )
    sc.add_argument("family", help="a family name (neurodyn list shows them)")
    sc.add_argument("--markdown", action="store_true", help="print the Markdown page (docs/reference/FAMILY.md)")

    i = sub.add_parser("info", help="describe a result file")
    i.add_argument("run", type=Path)

    pl = sub.add_parser("plot", help="plot a result file (PNG, SVG or PDF)")
    pl.add_argument("run", type=Path)
    pl.add_argument("--out", type=Path, help="folder for the figures (default: beside the run)")
    pl.add_argument("--format", default="png", metavar="png|svg|pdf", help="file format of the figures (png)")
    pl.add_argument(
        "--window",
        metavar="START:STOP",
        help="time span of the time-axis figures, e.g. 0.5s:1s or 200ms:400ms (an end may be left empty)",
    )

    c = sub.add_parser("compare", help="table of theory against simulation (a sweep: also report/)")
    c.add_argument("run", type=Path, help="a result file, or a sweep directory / combined sweep file")
    c.add_argument("--markdown", action="store_true", help="print a Markdown table")
    c.add_argument(
        "--fail-on-disagree",
        action="store_true",
        help="exit with code 1 when any row differs or a bound is violated (for scripts and CI)",
    )
    c.add_argument(
        "--report-dir",
        type=Path,
        metavar="DIR",
        help="a sweep: write the report here instead of SWEEP/report (e.g. a read-only sweep folder)",
    )
    from neurodyn.interop import add_parsers

    add_parsers(sub)  # export, import-nest
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``neurodyn`` console script."""
    from neurodyn.errors import SimulationError, UserError

    args = _parser().parse_args(argv)
    try:
        with _interruptible():
            return _COMMANDS[args.command](args)
    except UserError as exc:
        print(f"neurodyn: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except SimulationError as exc:
        print(f"neurodyn: simulation failed: {exc}", file=sys.stderr)
        return SimulationError.exit_code
    except KeyboardInterrupt:
        print("neurodyn: interrupted; no result written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout was closed early (e.g. `neurodyn info run.h5 | head`): not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C and SIGTERM stop the command with KeyboardInterrupt (one line, exit 130), and never get lost.

    * SIGTERM (``kill PID``, a batch system's time limit, a container's stop) by default ends the process
      at once, without the streaming run's partial file being closed or the sweep's workers being
      stopped: it now does what Ctrl-C does.
    * Python raises the KeyboardInterrupt of a signal wherever the main thread is; inside a weakref
      callback or a ``__del__`` (h5py and xarray run some) the exception is only printed as "Exception
      ignored" and the command went on to the end. ``sys.unraisablehook`` then delivers the signal
      again, so that the ordinary code after the finalizer raises it.

    A signal that is ignored, or handled by whoever calls :func:`main`, is left alone; only the main
    thread may install handlers. Everything is restored on return.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    previous = {}
    for sig, default in defaults.items():
        if signal.getsignal(sig) in (default, signal.SIG_DFL):
            previous[sig] = signal.signal(sig, _interrupt)
    hook = sys.unraisablehook
    sys.unraisablehook = functools.partial(_deliver_again, hook)
    try:
        yield
    finally:
        sys.unraisablehook = hook
        try:
            for sig, handler in previous.items():
                signal.signal(sig, handler)  # may run the handler of a signal just received: it raises
        finally:
            _STOPPED_BY.clear()


#: seconds after which a signal whose KeyboardInterrupt a finalizer swallowed is delivered again
REDELIVERY_DELAY = 0.01
#: the signal that last stopped the command (delivered again if its KeyboardInterrupt was swallowed)
_STOPPED_BY: list[int] = []


def _interrupt(signum: int, frame: object) -> None:
    _STOPPED_BY[:] = [signum]
    raise KeyboardInterrupt


def _deliver_again(hook: Any, unraisable: Any) -> None:
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _STOPPED_BY:
        import threading

        # As if the signal arrived again, a little later and from another thread: tripped now, its
        # handler would run in this hook, whose exceptions are ignored too. The main thread is back in
        # ordinary code by then (or in another finalizer, which lands here once more).
        timer = threading.Timer(REDELIVERY_DELAY, _redeliver, args=(_STOPPED_BY[0],))
        timer.daemon = True
        timer.start()
        return
    hook(unraisable)


def _redeliver(signum: int) -> None:
    import _thread

    if _STOPPED_BY:  # not once the command has ended: KeyboardInterrupt was raised after all
        _thread.interrupt_main(signum)


def _cmd_run(args: argparse.Namespace) -> int:
    from neurodyn.sweep.executors import prestart_pool

    prestart_pool(args.scenario)  # a sweep runs on the pool; its start-up overlaps our imports
    from neurodyn import registry
    from neurodyn.progress import Progress
    from neurodyn.runner import run_scenario
    from neurodyn.scenario import load_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    if scenario.sweep is not None:
        return _run_sweep(scenario, output=args.output, force=args.force, quiet=args.quiet)
    progress = Progress(enabled=False if args.quiet else None)
    ds, path = run_scenario(scenario, output=args.output, force=args.force, progress=progress)
    if not args.quiet:
        summary = registry.get(scenario.family).summary(ds)
        print(
            f"{scenario.name} ({scenario.family}, backend {scenario.run.backend}): "
            f"{ds.attrs['wall_time_s']:.2f} s wall time"
        )
        if summary:
            print(summary)
        _print_verdicts(ds, path)
        print(f"result: {path}")
        print(f"explore: python -c \"import neurodyn; print(neurodyn.open_run('{path}'))\"")
    return 0


def _print_verdicts(ds: Any, path: Path) -> None:
    """After a run, every family alike: the count of verdicts and the command that shows the table."""
    from neurodyn.compare import all_rows, summary

    rows = all_rows(ds)
    if rows:
        print(f"theory: {summary(rows).removeprefix('summary: ')}; the table: neurodyn compare {path}")


def _cmd_sweep(args: argparse.Namespace) -> int:
    from neurodyn.sweep.executors import prestart_pool

    if args.workers != 1 and not (args.scheduler or args.cluster):
        prestart_pool(args.scenario)  # first thing: the pool's imports run while ours do
    from neurodyn.errors import UserError
    from neurodyn.scenario import load_scenario
    from neurodyn.sweep import parse_cluster, scheduler_address

    # Where the points run is checked before anything else (no connection yet; execute_sweep connects).
    if args.scheduler is not None:
        scheduler_address(args.scheduler)
    if args.cluster is not None:
        parse_cluster(args.cluster)
    if args.workers is not None and (args.scheduler is not None or args.cluster is not None):
        where = "--scheduler" if args.scheduler is not None else "--cluster"
        raise UserError(
            f"--workers = {args.workers}: sets the local process pool, which {where} replaces "
            f"(a Dask cluster has its own workers; --cluster local:N starts N)"
        )
    scenario = load_scenario(args.scenario, args.overrides)
    if scenario.sweep is None:
        raise UserError(f"{args.scenario} has no sweep: section; use 'neurodyn run' for a single run")
    return _run_sweep(
        scenario,
        output=args.output,
        force=args.force,
        quiet=args.quiet,
        workers=args.workers,
        scheduler=args.scheduler,
        cluster=args.cluster,
    )


def _run_sweep(
    scenario: Scenario,
    output: Path | None,
    force: bool,
    quiet: bool,
    workers: int | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
) -> int:
    """Run a sweep, print its summary, return the exit code.

    Exit code 0 when every point finished, 3 when some failed (they are listed on stderr with their
    parameters and message, and recorded in ``failed/``; a rerun retries them), 130 when interrupted.
    """
    from neurodyn.sweep import finished_point_files, run_sweep, sweep_root

    try:
        out = run_sweep(
            scenario,
            output=output,
            force=force,
            quiet=quiet,
            workers=workers,
            scheduler=scheduler,
            cluster=cluster,
        )
    except KeyboardInterrupt:
        root = sweep_root(scenario, output)
        n_done = len(finished_point_files(root))
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


def _cmd_validate(args: argparse.Namespace) -> int:
    from neurodyn import registry
    from neurodyn.scenario import load_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    # The same checks `run` and `sweep` make before running: the family's check of the scenario, or
    # of every sweep point (plan_sweep, which the sweep driver calls before any point runs).
    if scenario.sweep is not None:
        from neurodyn.sweep import plan_sweep

        n = len(plan_sweep(scenario).points)
    else:
        registry.get(scenario.family).check(scenario)
        n = 1
    print(
        f"{args.scenario}: valid {scenario.family} scenario '{scenario.name}'"
        + (f" ({n} sweep points)" if n > 1 else "")
    )
    if scenario.sweep is None:
        from neurodyn.resources import last_estimate

        memory = last_estimate()  # the estimate the family's check just compared with the available memory
        if memory:
            print(f"  {memory}")
        estimate = registry.get(scenario.family).recording_estimate(scenario)
        if estimate:
            print(f"  {estimate}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from neurodyn import registry
    from neurodyn.scenario import REPO_ROOT

    print("families:")
    for name in registry.names():
        fam = registry.get(name)
        print(f"  {name:18s} {fam.description}")
    for folder in ("models", "scenarios"):
        dirs = [d for d in (Path.cwd() / folder, REPO_ROOT / folder) if d.is_dir()]
        files = sorted({p.name: p for d in dirs for p in d.glob("*.yaml")}.values())
        print(f"{folder}:")
        for f in files:
            print(f"  {f.stem:28s} {_describe(f)}")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from neurodyn import reference

    if args.markdown:
        sys.stdout.write(reference.markdown(args.family))  # the page, byte for byte as docs/reference/ holds it
    else:
        print(reference.text(args.family))
    return 0


def _describe(path: Path, width: int = 90) -> str:
    """The start of a YAML file's ``description`` (or its first comment line), cut to ``width``."""
    from neurodyn.errors import ScenarioError
    from neurodyn.scenario import read_yaml_file

    try:  # within the scenario limits: a hostile file in the listed folders must not hang `list`
        doc = read_yaml_file(path)
    except ScenarioError:
        return "(unreadable)"
    desc = str(doc.get("description") or "") if isinstance(doc, dict) else ""
    if not desc:
        comments = [ln.lstrip("# ").strip() for ln in path.read_text().splitlines() if ln.startswith("#")]
        desc = next((c for c in comments if c), "")
    desc = " ".join(desc.split())
    return desc if len(desc) <= width else desc[: width - 3] + "..."


def _sweep_or_run(path: Path) -> tuple[Path | None, dict]:
    """What ``info``, ``plot`` and ``compare`` were given: ``(sweep folder, {})`` for a sweep (its folder
    or its combined file), ``(None, root attributes)`` for a single result file.

    Raises
    ------
    UserError
        One line naming the file when it is not a neurodyn result (see
        :func:`neurodyn.storage.identify_result`), or a combined sweep file away from its folder.
    """
    from neurodyn.errors import UserError
    from neurodyn.storage import identify_result
    from neurodyn.sweep import MANIFEST

    if path.is_dir() and (path / MANIFEST).is_file():
        return path, {}
    attrs = identify_result(path)
    if "sweep_dims" in attrs:  # written by sweep.combine
        if not (path.parent / MANIFEST).is_file():
            raise UserError(
                f"{path}: a combined sweep file without its sweep folder (no {MANIFEST} beside it); "
                "give the sweep folder it was written in, with its sweep.json and points/"
            )
        return path.parent, {}
    return None, attrs


def _cmd_info(args: argparse.Namespace) -> int:
    from neurodyn.plotting import DIMENSIONLESS
    from neurodyn.storage import identify_result, open_run, reading
    from neurodyn.sweep import MANIFEST, load_plan
    from neurodyn.sweep.plan import display_values

    path = args.run
    # a sweep folder is described by its combined file, or its plan while unfinished; any file, a
    # combined one included, by itself (describing needs neither its sweep.json nor its family's code)
    root = path if path.is_dir() and (path / MANIFEST).is_file() else None
    if root is not None:
        plan = load_plan(root)
        if not plan.combined.is_file():
            done = sum(plan.point_path(p).is_file() for p in plan.points)
            dims = ", ".join(f"{d.name}={d.size}" for d in plan.dims)
            print(f"{root}: sweep {plan.name} ({plan.family}), {len(plan.points)} points ({dims})")
            print(f"  {done} finished, no combined result yet; run the sweep again to finish it")
            print("  swept:")
            for d in plan.dims:
                for p in d.paths:
                    print(_swept_line(d.name if p == d.paths[0] else d.coord_names[p], p, *d.shown(p)))
            return 0
        path = plan.combined
    identify_result(path, known_family=False, partial=True)
    ds = open_run(path, load=False)
    with reading(path):  # the header is in memory; a damaged file may fail on any access
        a = ds.attrs
        lines = [f"{path}: {a.get('scenario_name', '?')} ({a.get('family', '?')}, backend {a.get('backend', '?')})"]
        for key in ("title", "seed", "created", "wall_time_s", "neurodyn_version", "git_commit", "platform"):
            if key in a:
                lines.append(f"  {key:16s} {_attr_text(key, a[key])}")
        if a.get("partial"):
            lines.append("  partial          yes: the run stopped before its end; this is what it recorded")
        lines.append("  dimensions       " + ", ".join(f"{d}={n}" for d, n in ds.sizes.items()))
        swept = [name for name, c in ds.coords.items() if "sweep_path" in c.attrs]
        if swept:
            lines.append("  swept:")
        for name in swept:
            c = ds.coords[name]
            values, unit = display_values(list(c.values), str(c.attrs.get("units", "")), c.attrs.get("display_units"))
            lines.append(_swept_line(str(name), str(c.attrs["sweep_path"]), values, unit))
        lines.append("  variables:")
        for name, var in ds.data_vars.items():
            dims = ",".join(map(str, var.dims))
            units = str(var.attrs.get("units", ""))
            shown = "" if units in DIMENSIONLESS else f" [{units}]"
            lines.append(f"    {name:24s} ({dims}){shown} {var.attrs.get('long_name', '')}")
        ds.close()
    print("\n".join(lines))
    return 0


def _attr_text(key: str, value: Any) -> str:
    """An attribute as people read it: a time in seconds (``wall_time_s``) as ``1.14 s``, a float to 6 digits."""
    from neurodyn.quantities import format_quantity

    if isinstance(value, float) and key.endswith("_s"):
        return format_quantity(value, "s", 3)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


#: swept values listed by ``info`` before the rest is only counted
MAX_SHOWN_VALUES = 8


def _swept_line(name: str, path: str, values: list, unit: str) -> str:
    """``    weight                   params.synapses.0.weight: 0.5, 1, 2 mV`` (values in the unit written)."""
    from neurodyn.plotting import DIMENSIONLESS

    shown = [f"{v:.6g}" if isinstance(v, float) else str(v) for v in values[:MAX_SHOWN_VALUES]]
    if len(values) > MAX_SHOWN_VALUES:
        shown.append(f"... ({len(values)} values)")
    suffix = f" {unit}" if unit not in DIMENSIONLESS and all(isinstance(v, int | float) for v in values) else ""
    return f"    {name:24s} {path}: {', '.join(shown)}{suffix}"


def _cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    from neurodyn import registry
    from neurodyn.errors import UserError
    from neurodyn.plotting import plot_options
    from neurodyn.storage import check_folder_writable, open_run, reading, writes_to
    from neurodyn.sweep import plot_sweep

    matplotlib.use("Agg")
    # the options are checked first, so a bad --format or --window reads and writes nothing
    with plot_options(args.format, args.window):
        root, attrs = _sweep_or_run(args.run)
        if root is not None:  # the sweep's figures, as `compare` writes them into its report
            paths = plot_sweep(root, args.out)
        else:
            family = attrs["family"]
            out = args.out or args.run.parent
            check_folder_writable(out, hint="choose another folder with --out DIR")
            ds = open_run(args.run)
            fresh = not out.exists()
            try:
                with writes_to(out):
                    out.mkdir(parents=True, exist_ok=True)
                    with reading(args.run, family):
                        paths = registry.get(family).plot(ds, out, args.run.stem)
            except UserError:
                if fresh and out.is_dir() and not any(out.iterdir()):
                    out.rmdir()  # the family could not plot this file: leave no empty folder behind
                raise
            if not paths:
                raise UserError(f"{args.run}: nothing to plot for this {family} run")
    for p in paths:
        print(p)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from neurodyn.compare import all_rows
    from neurodyn.errors import UserError
    from neurodyn.storage import open_run, reading
    from neurodyn.sweep import load_plan, write_report

    root, attrs = _sweep_or_run(args.run)
    if root is not None:
        md, rows = write_report(root, out_dir=args.report_dir)
        code = _print_comparison(
            rows, load_plan(root).family, args, f"{args.run}: no theory predictions stored for this sweep"
        )
        print(f"report: {md}")
        return code
    if args.report_dir is not None:
        raise UserError(f"--report-dir {args.report_dir}: only a sweep has a report; {args.run} is a single run")
    ds = open_run(args.run)
    with reading(args.run, attrs["family"]):
        rows = all_rows(ds)
    return _print_comparison(rows, attrs["family"], args, f"{args.run}: no theory predictions stored for this run")


def _print_comparison(rows: list, family: str, args: argparse.Namespace, empty: str) -> int:
    """The table, its summary line and, when something disagrees, where the family's page explains it.

    Returns the exit code: 1 when ``--fail-on-disagree`` is given and a row differs or is violated.
    """
    from neurodyn.compare import disagreements, format_table, pointer, summary

    if not rows:
        print(empty)
        return 0
    print(format_table(rows, markdown=args.markdown))
    if args.markdown:
        print()
    print(summary(rows))
    line = pointer(family, rows)
    if line:
        print(line)
    n = disagreements(rows)
    if args.fail_on_disagree and n:
        print(
            f"neurodyn: compare: {n} of {len(rows)} rows differ or are violated (--fail-on-disagree)", file=sys.stderr
        )
        return 1
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from neurodyn.interop import cmd_export

    return cmd_export(args)


def _cmd_import_nest(args: argparse.Namespace) -> int:
    from neurodyn.interop import cmd_import_nest

    return cmd_import_nest(args)


_COMMANDS = {
    "run": _cmd_run,
    "sweep": _cmd_sweep,
    "validate": _cmd_validate,
    "list": _cmd_list,
    "schema": _cmd_schema,
    "info": _cmd_info,
    "plot": _cmd_plot,
    "compare": _cmd_compare,
    "export": _cmd_export,
    "import-nest": _cmd_import_nest,
}


def console() -> None:
    """Entry point of the ``neurodyn`` console script: :func:`main`, then a fast exit.

    ``gc.freeze()`` before exiting keeps the interpreter's final garbage collections from walking the
    object graphs of Numba, xarray and Dask, which took 0.3 s of every command (measured). Nothing is
    left to collect that matters: the process is ending and every file is already closed.
    """
    code = main()
    import gc

    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
