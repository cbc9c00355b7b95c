"""``neurodyn export`` and ``neurodyn import-nest``: a scenario as another simulator's program, and back.

``neurodyn export SCENARIO --to nest OUT.py`` asks the scenario's family for a standalone program
(:meth:`~neurodyn.families.base.Family.export`) and writes it; ``neurodyn import-nest FOLDER`` reads what
that program recorded (:meth:`~neurodyn.families.base.Family.import_run`), adds the theory and provenance
a run gets, and writes the result file a run of the same scenario would write. The scenario travels with
the recordings (the program writes it into its output folder), so the import cannot pair recordings with
another scenario.

Output safety is that of ``neurodyn run``: the output is claimed first, an existing file is replaced only
with ``--force`` and only when neurodyn wrote it (a result file: :func:`neurodyn.storage.check_writable`;
a program: the line ``# neurodyn export:`` in its first lines), and the new file appears atomically.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from neurodyn.errors import OutputExistsError, UserError

#: every exported program carries a line starting with this within its first three lines
EXPORT_MARKER_PREFIX = b"# neurodyn export:"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` and ``import-nest`` commands (handled by :func:`cmd_export`, :func:`cmd_import_nest`)."""
    e = sub.add_parser("export", help="write a scenario as a standalone program for another simulator")
    e.add_argument("scenario", type=Path)
    e.add_argument("output", type=Path, metavar="OUT", help="the program to write, e.g. cuba_nest.py")
    e.add_argument("--to", required=True, choices=["nest"], help="the simulator (nest: a PyNEST script)")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    e.add_argument("--force", action="store_true", help="replace a program neurodyn exported before")

    i = sub.add_parser("import-nest", help="read the recordings of an exported NEST script into a result file")
    i.add_argument("folder", type=Path, help="the folder the script wrote (its --output-dir)")
    i.add_argument("--output", "-o", type=Path, help="result file (default outputs/<name>.h5)")
    i.add_argument("--force", action="store_true", help="replace an existing result")


def is_exported_program(path: Path) -> bool:
    """Whether ``path`` is a program ``neurodyn export`` wrote (the marker line in its first three lines)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096).splitlines()[:3]
    except OSError:
        return False
    return any(line.startswith(EXPORT_MARKER_PREFIX) for line in head)


def write_program(path: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``path`` atomically (executable), refusing to destroy anything not exported by neurodyn."""
    from neurodyn.storage import claim_output

    with claim_output(path):
        if path.is_dir():
            raise UserError(f"output {path} is a folder; export writes one file, e.g. {path / 'network.py'}")
        if path.exists() or path.is_symlink():
            if not force:
                raise OutputExistsError(f"output {path} already exists; pass --force to replace it")
            if path.is_symlink() or not is_exported_program(path):
                raise UserError(
                    f"output {path} exists and is not a program neurodyn exported; --force replaces only "
                    "those: move it away or choose another name"
                )
        tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
        try:
            with open(tmp, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o755)
            os.replace(tmp, path)
        except OSError as exc:
            raise UserError(f"output {path}: cannot write it ({exc.strerror or exc})") from None
        finally:
            tmp.unlink(missing_ok=True)


def cmd_export(args: argparse.Namespace) -> int:
    """``neurodyn export SCENARIO --to nest OUT``."""
    from neurodyn import registry
    from neurodyn.scenario import load_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    if scenario.sweep is not None:
        raise UserError(
            f"{args.scenario} has a sweep: section; export one point of it, e.g. --set sweep=null --set PATH=VALUE"
        )
    family = registry.get(scenario.family)
    if args.to not in family.exports:
        allowed = ", ".join(family.exports) or "none"
        raise UserError(f"--to = {args.to}: {scenario.family} scenarios export to: {allowed}")
    text = family.export(scenario, args.to)
    if not any(line.startswith(EXPORT_MARKER_PREFIX) for line in text.encode().splitlines()[:3]):
        raise RuntimeError(f"{scenario.family}.export wrote no '# neurodyn export:' line")  # a family's bug
    write_program(args.output, text, args.force)
    print(f"{scenario.name}: wrote {args.output} ({args.to})")
    print(f"run it:  python {args.output}    or on a cluster:  mpirun -n 4 python {args.output}")
    print(f"then:    neurodyn import-nest {args.output.with_suffix('')}_output --output RESULT.h5")
    return 0


def cmd_import_nest(args: argparse.Namespace) -> int:
    """``neurodyn import-nest FOLDER --output RESULT.h5``."""
    import time

    from neurodyn import registry
    from neurodyn.runner import default_output, provenance
    from neurodyn.scenario import load_scenario
    from neurodyn.storage import check_writable, claim_output, write_run

    folder = args.folder
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (give the folder an exported NEST script wrote its recordings to)")
    scenario_file = folder / "scenario.yaml"
    if not scenario_file.is_file():
        raise UserError(
            f"{folder}: has no scenario.yaml, which an exported NEST script writes when it has finished "
            "(not such a folder, or the script has not finished)"
        )
    scenario = load_scenario(scenario_file)
    family = registry.get(scenario.family)
    if "nest" not in family.exports:
        raise UserError(f"{scenario_file}: a {scenario.family} scenario; that family does not run in NEST")
    output = args.output if args.output is not None else default_output(scenario)
    start = time.perf_counter()
    with claim_output(output):
        check_writable(output, args.force)
        ds = family.import_run(scenario, "nest", folder)
        theory = family.theory(family.build(scenario), ds)
        if theory is not None and len(theory.variables):
            ds = ds.merge(theory, combine_attrs="override")
        wall = float(ds.attrs.pop("nest_wall_time_s", float("nan")))
        ds.attrs.update(provenance(scenario, wall))
        ds.attrs["imported_from"] = str(folder.resolve())
        write_run(ds, output, force=args.force)
    summary = family.summary(ds)
    print(
        f"{scenario.name} ({scenario.family}, NEST, {wall:.2f} s wall time in NEST): imported in "
        f"{time.perf_counter() - start:.2f} s"
    )
    if summary:
        print(summary)
    print(f"result: {output}")
    return 0
