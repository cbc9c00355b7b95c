"""Theory beside simulation for ``eqprop``: the predicted error slopes and sign agreement, and the rows
comparing each EP estimator's training with its backprop peer."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.rows import Z95, Row
from neurodyn.schema import var_attrs

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.eqprop.build import EqPropBuilt

SRC_THEOREM = (
    "Scellier & Bengio 2017, Theorem 1: dJ/dtheta = lim_{beta->0} (dF/dtheta(s_beta) - "
    "dF/dtheta(s_0)) / beta; the one-sided estimate has O(beta) bias, the symmetric "
    "(s_+beta, s_-beta) estimate O(beta^2) (Laborieux et al. 2021): log-log slope {k}"
)
SRC_BPTT = (
    "Ernoult et al. 2019, Theorem 1: for s_{t+1} = dPhi/ds(s_t) at a fixed point, the EP updates "
    "Delta^EP_t -> -dL/dtheta_{T-t} (truncated BPTT) as beta -> 0, with O(beta) error for one-sided "
    "nudging (O(beta^2) symmetric): log-log slope {k}"
)
#: acceptance level of the sign agreement; the theorem itself gives 1 in the limit beta -> 0
SIGN_SHARE_LEVEL = 0.95
#: acceptance level of the EP-BPTT relative RMSE at beta <= 0.01
RMSE_LEVEL = 1e-2


def _slope_theory(k: float, what: str, source: str, rel_tol: float) -> tuple:
    """A predicted log-log slope ``k`` as a scalar ``*_theory`` variable; ``{k}`` in ``source`` is filled in."""
    return (
        (),
        k,
        var_attrs("1", f"predicted {what}", source=source.replace("{k}", str(int(k))), rel_tol=rel_tol),
    )


def theory(built: EqPropBuilt, ds: xr.Dataset) -> xr.Dataset:
    """Predictions for a gradient_theorem or bptt_match run (none for training runs)."""
    p = built.params
    exp = p.experiment
    out = xr.Dataset()
    if exp == "gradient_theorem":
        out["slope_one_sided_theory"] = _slope_theory(1.0, "error slope, one-sided nudging", SRC_THEOREM, rel_tol=0.15)
        out["slope_symmetric_theory"] = _slope_theory(2.0, "error slope, symmetric nudging", SRC_THEOREM, rel_tol=0.1)
    elif exp == "bptt_match":
        assert p.bptt is not None
        k = 2.0 if p.bptt.estimator == "symmetric" else 1.0
        out["rmse_slope_theory"] = _slope_theory(k, "slope of the EP-BPTT relative RMSE", SRC_BPTT, rel_tol=0.15)
        out["rmse_state_slope_theory"] = _slope_theory(
            k, "slope of the EP-BPTT neuron-update relative RMSE", SRC_BPTT, rel_tol=0.15
        )
        small = ds["beta"].values <= 0.01 + 1e-15
        if small.any():
            level = np.where(small, SIGN_SHARE_LEVEL, np.nan)
            out["rel_rmse_bound"] = (
                ("beta",),
                np.where(small, RMSE_LEVEL, np.nan),
                var_attrs(
                    "1",
                    "upper bound on the EP-BPTT relative RMSE for beta <= 0.01",
                    source="Ernoult et al. 2019 Thm 1 (RMSE -> 0, O(beta)); acceptance level 1e-2",
                ),
            )
            out["sign_share_bound"] = (
                ("beta",),
                level,
                var_attrs(
                    "1",
                    "lower bound on the sign agreement for beta <= 0.01",
                    bound="lower",
                    source="Ernoult et al. 2019 Thm 1 (share -> 1 as beta -> 0); acceptance level 0.95",
                ),
            )
        out = out.assign_coords(beta=ds["beta"])
    return out


def compare_rows(ds: xr.Dataset) -> list[Row]:
    """Each EP estimator's final test error against the backprop peer on the same architecture."""
    if ds.attrs.get("experiment") != "train" or "bp" not in ds["rule"].values:
        return []
    final = ds["test_error"].isel(epoch=-1)
    bp = final.sel(rule="bp").values
    rows = []
    for m in ds["rule"].values:
        if m == "bp":
            continue
        ep = final.sel(rule=m).values
        n = ep.size
        ci = Z95 * ep.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
        rows.append(
            Row(
                quantity=f"final test_error {m} vs backprop",
                simulated=float(ep.mean()),
                predicted=float(bp.mean()),
                ci=float(ci),
                rel_tol=1.0,
                source="peer: backprop on the same architecture and data; agree = within a factor 2",
                where=f"epoch={int(ds['epoch'].values[-1])}, seeds={n}",
            )
        )
    return rows
