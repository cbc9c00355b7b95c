"""The papers' published figures that a run of ``speed`` or ``xor`` is set beside (CfC paper, arXiv v2:
Table 4 and the per-epoch times; ``papers/ltc_cfc.md`` §6), as compare rows. A module of its own so that the
numbers have one home, cited once."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from neurodyn.rows import Z95, Row

#: CfC Table 4 (bit-stream XOR, n = 5): model -> encoding -> (mean accuracy %, std %)
XOR_TABLE = {
    "ltc": {"equidistant": (100.00, 0.00), "event": (49.11, 0.00)},
    "pure": {"equidistant": (100.00, 0.00), "event": (85.42, 2.84)},
    "no_gate": {"equidistant": (100.00, 0.00), "event": (96.29, 1.61)},
    "cfc": {"equidistant": (100.00, 0.00), "event": (99.42, 0.42)},
}
SRC_XOR = (
    "Hasani et al. 2022 (CfC), Table 4 (n = 5; pad 32, 100 000 training sequences, 200 epochs, CfC hidden 192, "
    "LTC 64 units); this run's sizes are in the file's attributes"
)
SRC_ORDER = "Hasani et al. 2022 (CfC), Table 4's ordering: CfC 99.42 % vs LTC 49.11 % on the event-based encoding"
#: the per-epoch speed-up of CfC over the fused-solver LTC the paper's tables give (3.6x to 10x)
SPEEDUP_FUSED = 3.6
SRC_SPEED_FUSED = "Hasani et al. 2022 (CfC), per-epoch times of Tables 4-7: CfC 3.6x-10x faster than the fused LTC"
SPEEDUP_ODE = 100.0
SRC_SPEED_ODE = "Hasani et al. 2022 (CfC), Fig. 3 caption: 'at least 100x faster than neural ODEs' (adaptive solvers)"


def published_rows(ds: xr.Dataset) -> list[Row]:
    """Rows setting the run's speed-ups or XOR accuracies beside the published ones."""
    rows: list[Row] = []
    if ds.attrs.get("experiment") == "speed":
        rows.append(
            Row("speedup_fused", float(ds["speedup_fused"]), SPEEDUP_FUSED, kind="lower_bound", source=SRC_SPEED_FUSED)
        )
        rows.append(
            Row(
                "speedup_fused_paper_unfolds",
                float(ds["speedup_fused_paper_unfolds"]),
                SPEEDUP_FUSED,
                kind="lower_bound",
                source=SRC_SPEED_FUSED + " (the paper's LTC runs L = 6, not the L of equal accuracy)",
            )
        )
        rows.append(
            Row("speedup_rk45", float(ds["speedup_rk45"]), SPEEDUP_ODE, kind="lower_bound", source=SRC_SPEED_ODE)
        )
        if "speedup_scipy_rk45" in ds:
            rows.append(
                Row(
                    "speedup_scipy_rk45",
                    float(ds["speedup_scipy_rk45"]),
                    SPEEDUP_ODE,
                    kind="lower_bound",
                    source=SRC_SPEED_ODE + " (adaptive solver driven from Python, as torchdiffeq)",
                )
            )
    elif ds.attrs.get("experiment") == "xor":
        final = 100 * ds["test_accuracy"].isel(epoch=-1)
        for m in ds["model"].values:
            for enc in ds["encoding"].values:
                if m not in XOR_TABLE or enc not in XOR_TABLE[m]:
                    continue
                v = final.sel(model=m, encoding=enc).values
                mean, sd = XOR_TABLE[m][enc]
                ci = Z95 * v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else math.nan
                rows.append(
                    Row(
                        quantity="final test accuracy (%)",
                        simulated=float(np.mean(v)),
                        predicted=mean,
                        ci=float(ci),
                        rel_tol=max(2 * sd, 1.0) / mean,
                        source=SRC_XOR + "; agree = within 2 published std (at least 1 point)",
                        where=f"model={m}, encoding={enc}",
                        units="%",
                    )
                )
        models = list(ds["model"].values)
        if "cfc" in models and "ltc" in models and "event" in ds["encoding"].values:
            gap = final.sel(model="cfc", encoding="event") - final.sel(model="ltc", encoding="event")
            rows.append(
                Row(
                    quantity="CfC minus LTC final test accuracy (%)",
                    simulated=float(gap.mean()),
                    predicted=0.0,
                    kind="lower_bound",
                    source=SRC_ORDER,
                    where="encoding=event",
                    units="%",
                )
            )
    return rows
