"""A sweep's report: ``neurodyn compare`` on the combined Dataset as Markdown, and the sweep's figures.

``report/report.md`` holds theory against simulation per quantity and sweep point (the simulation
averaged, with a 95% confidence interval, over the sweep dimensions a prediction does not vary along),
the failed points, and the figures: one per checked quantity across the sweep, and the family's own
figures for a few points.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from neurodyn import registry
from neurodyn.plotting import DIMENSIONLESS
from neurodyn.storage import check_folder_writable, reading, writes_to
from neurodyn.sweep.combined import is_prediction, open_point, open_sweep
from neurodyn.sweep.plan import SweepPlan, SweepPoint, display_values, load_plan

#: family figures drawn per point in a report, at most
MAX_POINT_FIGURES = 3


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
    family = registry.get(plan.family)

    with reading(plan.combined if plan.combined.is_file() else root, plan.family):
        rows = generic_rows(ds, max_rows_per_variable=None)
    for p in plan.points:
        if plan.point_path(p).exists():
            with _point_data(plan.point_path(p), plan.family) as pds:
                extra = family.compare_rows(pds)
            label = ", ".join(f"{d.name}={_shown_coord(d, d.paths[0], i)}" for d, i in zip(plan.dims, p.index))
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
        f"family `{plan.family}`, {len(plan.points)} points, "
        f"{len(plan.points) - len(failed)} finished, {len(failed)} failed or missing.",
        "",
        "| dimension | swept path | values | units |",
        "|---|---|---|---|",
    ]
    for d in plan.dims:
        for p in d.paths:
            shown, unit = d.shown(p)
            values = ", ".join(_fmt_coord(v) for v in shown)
            unit = "" if unit in DIMENSIONLESS else unit
            lines.append(f"| {d.name if p == d.paths[0] else d.coord_names[p]} | `{p}` | {values} | {unit} |")
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
    with open_point(path) as pds:
        with reading(path):
            data = pds.load()
        with reading(path, family):
            yield data


def _report_figures(plan: SweepPlan, ds: xr.Dataset, out: Path, strict: bool) -> tuple[list[Path], list[str]]:
    """Quantity figures of the combined Dataset and the family's figures of :func:`_figure_points`.

    With ``strict`` a failure of the family's figures is raised (as one line naming the point file);
    otherwise it is printed as a warning and returned as a problem, for the report to note.
    """
    family = registry.get(plan.family)
    with reading(plan.combined if plan.combined.is_file() else plan.root, plan.family):
        figures = _quantity_figures(ds, [], out)
    problems: list[str] = []
    for p in _figure_points(plan):
        if not plan.point_path(p).exists():
            continue
        if strict:
            with _point_data(plan.point_path(p), plan.family) as pds:
                figures += family.plot(pds, out, p.id)
            continue
        with open_point(plan.point_path(p)) as pds:
            try:
                figures += family.plot(pds.load(), out, p.id)
            except Exception as exc:  # noqa: BLE001 - the table is still worth writing
                problems.append(f"the family's figures failed: {type(exc).__name__}: {exc}")
                print(f"neurodyn: warning: {problems[-1]}", file=sys.stderr)
                break
    return figures, problems


def _fmt_coord(c: Any) -> str:
    return f"{c:.4g}" if isinstance(c, float) else str(c)


def _shown_coord(dim: Any, path: str, i: int) -> str:
    """The ``i``-th value of a swept path in the unit the scenario wrote it in (``0.5 mV``)."""
    values, unit = dim.shown(path)
    text = _fmt_coord(values[i])
    return f"{text} {unit}" if unit not in DIMENSIONLESS and isinstance(values[i], int | float) else text


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
    from neurodyn.plotting import slide_style

    paths = []
    sweep_dims = list(ds.attrs.get("sweep_dims") or [])
    for name in sorted(ds.data_vars):
        if not is_prediction(str(name)):
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
        with slide_style():
            paths += _quantity_figure(plt, ds, sim_name, x, mean, pred, ci, others, out)
    return paths


def _quantity_figure(
    plt: Any,
    ds: xr.Dataset,
    sim_name: str,
    x: str,
    mean: xr.DataArray,
    pred: xr.DataArray,
    ci: xr.DataArray | None,
    others: list,
    out: Path,
) -> list[Path]:
    """One quantity's figure: simulated (± 95% CI) dots and predicted lines against the swept ``x``."""
    from neurodyn.compare import format_coord
    from neurodyn.plotting import axis_label, legend, save_figures

    fig, ax = plt.subplots()
    stacked = mean.stack(_o=others) if others else mean.expand_dims(_o=[0])
    pstacked = pred.broadcast_like(mean).stack(_o=others) if others else pred.expand_dims(_o=[0])
    cstacked = (ci.stack(_o=others) if others else ci.expand_dims(_o=[0])) if ci is not None else None
    xv, xunit = ds[x].values, str(ds[x].attrs.get("units", ""))
    if isinstance(ds[x].attrs.get("display_units"), str):  # in the unit the scenario wrote the values in
        shown, xunit = display_values(list(xv), xunit, ds[x].attrs["display_units"])
        xv = np.asarray(shown)
    for k in range(min(stacked.sizes["_o"], 8)):
        coords = stacked["_o"].values[k] if others else ()
        coords = coords if isinstance(coords, tuple) else (coords,)
        label = ", ".join(f"{d}={format_coord(c, ds[d].attrs)}" for d, c in zip(others, coords))
        line = ax.errorbar(
            xv,
            stacked.isel(_o=k).transpose(x).values,
            yerr=None if cstacked is None else cstacked.isel(_o=k).transpose(x).values,
            fmt="o",
            ms=7,
            capsize=3,
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
        xlabel=axis_label(str(ds[x].attrs.get("sweep_path", x)), xunit),
        ylabel=axis_label(sim_name, str(ds[sim_name].attrs.get("units", ""))),
        title=f"{sim_name} across the sweep (95% CI)",
    )
    legend(ax, where="right")
    fig.set_label(f"{sim_name}_sweep")
    return save_figures([fig], out, str(ds.attrs.get("scenario_name", "sweep")))
