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
            where = ", ".join(f"{d}={_fmt_coord(c)}" for d, c in zip(mean.dims, coords))
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
            )
        )
    return rows


def _fmt_coord(c: object) -> str:
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
    ``rel_tol``, ``verdict``, ``source``.
    """
    import pandas as pd

    columns = ["quantity", "where", "simulated", "ci", "predicted", "ratio", "kind", "rel_tol", "verdict", "source"]
    assert set(columns) >= {f.name for f in fields(Row)}, "a Row field is missing from the table"
    data = [{c: getattr(r, c) for c in columns} for r in rows]
    return pd.DataFrame(data, columns=columns)


def format_table(rows: list[Row], markdown: bool = False) -> str:
    """Render rows as a plain or Markdown table."""
    header = ["quantity", "where", "simulated", "± 95% CI", "predicted", "ratio", "verdict"]
    body = []
    for r in rows:
        body.append(
            [
                r.quantity
                + (
                    " (upper bound)" if r.kind == "upper_bound" else " (lower bound)" if r.kind == "lower_bound" else ""
                ),
                r.where or "-",
                f"{r.simulated:.5g}",
                f"{r.ci:.2g}" if np.isfinite(r.ci) else "-",
                f"{r.predicted:.5g}",
                f"{r.ratio:.4f}" if np.isfinite(r.ratio) else "-",
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
    return "\n".join(lines)
