"""Theory against simulation: the rows of ``neurodyn compare``.

Generic rows come from the Dataset alone, so a stored run can be compared without rerunning it:

* every variable ``X_theory`` is paired with the simulated ``X`` (or the variable named by its
  ``simulated`` attribute) and checked as an estimate within ``rel_tol`` (attribute, default 0.05) or
  the simulation's confidence interval, whichever is larger;
* every variable ``X_bound`` is an upper bound on ``X`` (``bound: lower`` for a lower bound).

Dimensions of the simulated variable that the prediction lacks (``seed``, ``trial``, ...) are averaged,
with a 95% confidence interval from their spread. Families add special rows through
:meth:`~neurodyn.families.base.Family.compare_rows`.
"""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

# The row type lives in the leaf module :mod:`neurodyn.rows` (families build rows too); re-exported here.
from neurodyn.rows import Z95, Row  # noqa: F401

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

MAX_ROWS_PER_VARIABLE = 40


def generic_rows(ds: xr.Dataset, max_rows_per_variable: int | None = MAX_ROWS_PER_VARIABLE) -> list[Row]:
    """Rows for every ``*_theory`` and ``*_bound`` variable paired with its simulated variable.

    At most ``max_rows_per_variable`` elements of each prediction are listed (None: all of them, as the
    sweep report does).
    """
    rows: list[Row] = []
    for name in sorted(ds.data_vars):
        for suffix, default_kind in (("_theory", "estimate"), ("_bound", "upper_bound")):
            if not name.endswith(suffix):
                continue
            pred = ds[name]
            sim_name = pred.attrs.get("simulated", name[: -len(suffix)])
            if sim_name not in ds:
                continue
            kind = default_kind
            if suffix == "_bound" and pred.attrs.get("bound") == "lower":
                kind = "lower_bound"
            rows += _pair_rows(ds[sim_name], pred, sim_name, kind, max_rows_per_variable)
    return rows


def _pair_rows(
    sim: xr.DataArray, pred: xr.DataArray, label: str, kind: str, max_rows: int | None = MAX_ROWS_PER_VARIABLE
) -> list[Row]:
    extra = [d for d in sim.dims if d not in pred.dims]
    n = int(np.prod([sim.sizes[d] for d in extra])) if extra else 1
    mean = sim.mean(extra) if extra else sim
    if n > 1:
        ci = Z95 * sim.std(extra, ddof=1) / math.sqrt(n)
    else:
        ci = xr.full_like(mean, math.nan, dtype=float)
    mean, pred, ci = xr.broadcast(mean, pred, ci)
    rel_tol = float(pred.attrs.get("rel_tol", 0.05))
    source = str(pred.attrs.get("source", ""))
    units = str(sim.attrs.get("units", pred.attrs.get("units", "")))
    coord_attrs = {d: sim[d].attrs if d in sim.coords else {} for d in mean.dims}
    rows = []
    flat = mean.stack(_e=mean.dims) if mean.dims else mean.expand_dims("_e")
    pflat = pred.stack(_e=pred.dims) if pred.dims else pred.expand_dims("_e")
    cflat = ci.stack(_e=ci.dims) if ci.dims else ci.expand_dims("_e")
    n_rows = flat.sizes["_e"] if max_rows is None else min(flat.sizes["_e"], max_rows)
    for i in range(n_rows):
        where = ""
        if mean.dims:
            coords = flat["_e"].values[i]
            coords = coords if isinstance(coords, tuple) else (coords,)
            where = ", ".join(f"{d}={format_coord(c, coord_attrs.get(d))}" for d, c in zip(mean.dims, coords))
        rows.append(
            Row(
                quantity=label,
                simulated=float(flat.values[i]),
                predicted=float(pflat.values[i]),
                ci=float(cflat.values[i]),
                kind=kind,
                rel_tol=rel_tol,
                source=source,
                where=where,
                units=units,
            )
        )
    return rows


def format_coord(c: object, attrs: dict | None = None) -> str:
    """A coordinate value as ``where`` shows it; a swept one in the unit its scenario wrote it in (``0.5 mV``).

    Parameters
    ----------
    c : object
        The value (SI for a number).
    attrs : dict, optional
        The coordinate's attributes; a ``display_units`` that :mod:`neurodyn.quantities` knows (a sweep
        coordinate's, see :mod:`neurodyn.sweep`) is the unit the value is shown in.
    """
    from neurodyn.quantities import in_unit, unit_scale

    unit = (attrs or {}).get("display_units")
    number = isinstance(c, int | float | np.integer | np.floating) and not isinstance(c, bool | np.bool_)
    if number and isinstance(unit, str) and unit != "1" and unit_scale(unit) is not None:
        return f"{in_unit(float(c), unit):.4g} {unit}"
    if isinstance(c, float | np.floating):
        return f"{c:.4g}"
    return str(c)


def all_rows(ds: xr.Dataset) -> list[Row]:
    """Generic rows plus the family's own rows (found through the registry)."""
    from neurodyn import registry

    rows = generic_rows(ds)
    family = ds.attrs.get("family")
    if family:
        rows += registry.get(family).compare_rows(ds)
    return rows


def to_dataframe(rows: list[Row]) -> pd.DataFrame:
    """Rows as a pandas DataFrame: one column per :class:`Row` field, plus ``ratio`` and ``verdict``.

    Columns: ``quantity``, ``where``, ``simulated``, ``ci``, ``predicted``, ``ratio``, ``kind``,
    ``rel_tol``, ``verdict``, ``source``. The units of each quantity are in ``DataFrame.attrs["units"]``
    (quantity -> units, for the quantities whose units are known).
    """
    import pandas as pd

    columns = ["quantity", "where", "simulated", "ci", "predicted", "ratio", "kind", "rel_tol", "verdict", "source"]
    assert set(columns) | {"units"} >= {f.name for f in fields(Row)}, "a Row field is missing from the table"
    data = [{c: getattr(r, c) for c in columns} for r in rows]
    table = pd.DataFrame(data, columns=columns)
    table.attrs["units"] = {r.quantity: r.units for r in rows if r.units}
    return table


#: the verdicts, in the order the summary counts them
VERDICTS = ("agree", "differ", "holds", "violated", "n/a")
#: verdicts that say theory and simulation disagree (``neurodyn compare --fail-on-disagree`` exits 1)
DISAGREE = ("differ", "violated")


def _label(r: Row) -> str:
    return r.quantity + {"upper_bound": " (upper bound)", "lower_bound": " (lower bound)"}.get(r.kind, "")


def format_table(rows: list[Row], markdown: bool = False) -> str:
    """Render rows as a plain or Markdown table.

    Numbers have five significant digits, with an SI prefix when their unit takes one (``29.237 Hz``,
    ``12.3 mV``) and in exponent form when large or small (``2.257e+20``); the half-width of the
    confidence interval has two; ratios have four decimals, or exponent form far from 1.
    """
    from neurodyn.quantities import format_quantity

    header = ["quantity", "where", "simulated", "± 95% CI", "predicted", "ratio", "verdict"]
    body = []
    for r in rows:
        body.append(
            [
                _label(r),
                r.where or "-",
                format_quantity(r.simulated, r.units, 5),
                format_quantity(r.ci, r.units, 2) if np.isfinite(r.ci) else "-",
                format_quantity(r.predicted, r.units, 5),
                _ratio(r.ratio),
                r.verdict,
            ]
        )
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*row) for row in body]
    lines = [line.rstrip() for line in lines]
    return "\n".join(lines)


def _ratio(ratio: float) -> str:
    """A ratio with four decimals near 1 (``1.0191``), in exponent form far from it (``2.257e+20``)."""
    if not np.isfinite(ratio):
        return "-"
    return f"{ratio:.4f}" if ratio == 0 or 0.01 <= abs(ratio) < 1000 else f"{ratio:.3e}"


def summary(rows: list[Row]) -> str:
    """One line counting the verdicts: ``summary: 72 agree, 0 differ, 60 holds, 28 violated, 0 n/a (160 rows)``."""
    counts = {v: 0 for v in VERDICTS}
    for r in rows:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    text = ", ".join(f"{n} {v}" for v, n in counts.items())
    return f"summary: {text} ({len(rows)} row{'s' * (len(rows) != 1)})"


def disagreements(rows: list[Row]) -> int:
    """How many rows say theory and simulation disagree (verdict ``differ`` or ``violated``)."""
    return sum(r.verdict in DISAGREE for r in rows)


def family_page(family: str) -> Path | None:
    """The documentation page of a family, which explains where its theory and simulation part.

    ``docs/<family>.md``, else the page in ``docs/`` whose title starts with the family's name in code
    (``# `ultralif_network`: ...``); None when there is none (a family from another package, an
    installation without the documentation).
    """
    from neurodyn.scenario import REPO_ROOT

    docs = REPO_ROOT / "docs"
    page = docs / f"{family}.md"
    if page.is_file():
        return page
    for candidate in sorted(docs.glob("*.md")) if docs.is_dir() else []:
        try:
            with open(candidate, encoding="utf-8") as f:
                title = f.readline()
        except (OSError, UnicodeDecodeError):
            continue
        if title.startswith(f"# `{family}`"):
            return candidate
    return None


def pointer(family: str, rows: list[Row]) -> str | None:
    """The line that sends a reader to the family's page when some row disagrees, else None."""
    n = disagreements(rows)
    page = family_page(family) if n else None
    if page is None:
        return None
    try:
        shown = page.relative_to(Path.cwd())
    except ValueError:
        shown = page
    rows_text = "1 row differs or is violated" if n == 1 else f"{n} rows differ or are violated"
    return f"{rows_text}; see {shown} for where {family}'s theory is known not to hold"
