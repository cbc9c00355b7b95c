"""Running a scenario: the path from a validated Scenario to a result file.

``run_scenario`` is the only place that strings the stages together: family checks, simulation, theory,
provenance attributes, atomic write. The time loop every time-stepping family uses is
:func:`neurodyn.stepping.run_chunked` (re-exported here for code written against this module).
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import xarray as xr

from neurodyn import __version__, registry
from neurodyn.progress import QUIET, Progress
from neurodyn.scenario import REPO_ROOT, Scenario
from neurodyn.stepping import CHUNK_SECONDS, run_chunked  # noqa: F401 - re-exported
from neurodyn.storage import check_writable, claim_output, open_run, streaming, write_run


def default_output(scenario: Scenario) -> Path:
    """``outputs/<name>.h5`` unless the scenario says ``output:``."""
    return scenario.output or Path("outputs") / f"{scenario.name}.h5"


def simulate(scenario: Scenario, progress: Progress = QUIET, *, checked: bool = False) -> xr.Dataset:
    """Run one scenario in memory and return its Dataset with theory and provenance attached.

    The family prepares the run (checks, then builds) once; ``checked`` says the family's checks already
    passed for this very scenario (a sweep point, checked when the sweep was planned), so only the build
    remains.
    """
    family = registry.get(scenario.family)
    built = family.build(scenario) if checked else family.prepare(scenario)
    start = time.perf_counter()
    ds = family.simulate(built, progress)
    wall = time.perf_counter() - start
    theory = family.theory(built, ds)
    if theory is not None and len(theory.variables):
        ds = ds.merge(theory, combine_attrs="override")
    ds.attrs.update(provenance(scenario, wall))
    return ds


def run_scenario(
    scenario: Scenario, output: str | os.PathLike | None = None, force: bool = False, progress: Progress = QUIET
) -> tuple[xr.Dataset, Path]:
    """Run ``scenario`` and write its result atomically.

    The output is claimed (:func:`neurodyn.storage.claim_output`) and checked *before* the run, and the
    claim is held until the result is in place: a second run on the same output, an existing result
    without ``force``, anything not written by neurodyn, a leftover partial file or a folder that cannot
    be written is refused without wasting a run. A family may stream its recordings to the file while it
    runs (:func:`neurodyn.storage.stream_writer`); the rest of its Dataset is then added at the end and the
    returned Dataset is the file opened lazily.

    ``output`` (like ``--output``) may name any place; a scenario file's own ``output:`` is checked to
    stay inside the working directory when the scenario is loaded.

    Returns
    -------
    (xarray.Dataset, pathlib.Path)
        The Dataset and where it was written.
    """
    path = Path(output) if output is not None else default_output(scenario)
    with claim_output(path):
        check_writable(path, force)
        ds = write_scenario_result(scenario, path, force=force, progress=progress)
    return (ds if ds is not None else open_run(path, load=False)), path


def write_scenario_result(
    scenario: Scenario, path: Path, force: bool = False, progress: Progress = QUIET, *, checked: bool = False
) -> xr.Dataset | None:
    """Simulate ``scenario`` into the file ``path`` (streamed if the family streams).

    Returns the in-memory Dataset, or None when the family streamed its recordings (the data is then
    only in the file). Used by :func:`run_scenario` and by sweep workers, which need no Dataset back
    (and whose points were checked when the sweep was planned: ``checked``, see :func:`simulate`).
    """
    # What is being run goes into a streamed file at once: a killed run's partial file then says so.
    known = {k: v for k, v in provenance(scenario, 0.0).items() if k != "wall_time_s"}
    with streaming(path, force, attrs=known) as slot:
        ds = simulate(scenario, progress, checked=checked)
        if slot.writer is None:
            write_run(ds, path, force=force)
            return ds
        slot.writer.write_dataset(ds)
        slot.writer.commit()
    return None


def provenance(scenario: Scenario, wall_time: float) -> dict:
    """Attributes recording what was run, where and when."""
    return {
        "title": scenario.description or scenario.name,
        "scenario_name": scenario.name,
        "family": scenario.family,
        "scenario": scenario.resolved_yaml(),
        "seed": int(scenario.run.seed),
        "backend": scenario.run.backend,
        "neurodyn_version": __version__,
        "git_commit": git_commit() or "unknown",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "wall_time_s": float(wall_time),
        "platform": f"{platform_text()} python {platform.python_version()} numpy {np.__version__}",
        "Conventions": "CF-1.8",
    }


@functools.cache
def platform_text() -> str:
    """``platform.platform()``: on Linux built from ``os.uname`` and the C library's version directly.

    The standard library's function starts a ``uname -p`` subprocess for the processor name (tens of
    milliseconds of a run's start-up), which it then leaves out on Linux whenever it is empty, "unknown" or
    the machine name, as it is on the usual distributions; this text leaves it out always.
    """
    u = os.uname()
    try:
        libc = "".join(os.confstr("CS_GNU_LIBC_VERSION").split(maxsplit=1))  # "glibc 2.36" -> "glibc2.36"
    except (AttributeError, ValueError, OSError):
        libc = ""
    if u.sysname != "Linux" or not libc:
        return platform.platform()
    text = "-".join(x for x in (u.sysname, u.release, u.machine, "with", libc) if x)
    for c in ' /\\:;"()':  # the clean-up platform.platform applies
        text = text.replace(c, "_" if c == " " else "-")
    text = text.replace("unknown", "")
    while "--" in text:
        text = text.replace("--", "-")
    return text[:-1] if text.endswith("-") else text


def _git_head(root: Path) -> str | None:
    """HEAD's commit read from the repository's files (a worktree's ``.git`` file, loose or packed refs), or
    None when anything there is not the plain layout (then :func:`git_commit` asks git itself)."""
    git = root / ".git"
    try:
        gitdir = git
        if git.is_file():
            text = git.read_text().strip()
            if not text.startswith("gitdir:"):
                return None
            gitdir = (root / text.partition(":")[2].strip()).resolve()
        common = gitdir
        if (gitdir / "commondir").is_file():
            common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
        head = (gitdir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head if len(head) == 40 else None
        ref = head.partition(":")[2].strip()
        for base in (gitdir, common):
            if (base / ref).is_file():
                sha = (base / ref).read_text().strip()
                return sha if len(sha) == 40 else None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                sha, _, name = line.partition(" ")
                if name == ref and len(sha) == 40:
                    return sha
    except OSError:
        return None
    return None


@functools.cache
def git_commit() -> str | None:
    """The repository's HEAD commit when neurodyn runs from a git checkout (asked once per process).

    Read from the repository's files when they have the plain layout (no subprocess: start-up), else
    from ``git rev-parse HEAD``.
    """
    sha = _git_head(REPO_ROOT)
    if sha is not None:
        return sha
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
