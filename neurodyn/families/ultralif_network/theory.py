"""The paper's bounds as ``*_bound`` variables beside the measured quantities of the bounds experiment
(:func:`.engine.bounds`); a training run has no theory variables.

Source: J. Miñoza, "UltraLIF: Fully Differentiable Spiking Neural Networks via Ultradiscretization and
Max-Plus Algebra", arXiv:2602.11206 (2026); statements as recorded in papers/ultralif.md.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.schema import var_attrs

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.ultralif_network.build import UltraLIFBuilt

PAPER = "Minoza 2026, arXiv:2602.11206"


def theory(built: UltraLIFBuilt, ds: xr.Dataset) -> xr.Dataset:
    """Upper (and one lower) bounds for every measured variable of the bounds experiment (none for training)."""
    p = built.params
    if p.experiment != "bounds":
        return xr.Dataset()
    eps = ds["eps"].values
    n = p.bounds.lse_terms
    steps = p.bounds.steps
    ones = np.ones_like(eps)
    out: dict[str, tuple] = {}

    def put(name: str, values: np.ndarray, long_name: str, source: str, **extra) -> None:
        out[name] = (("eps",), np.asarray(values, dtype=np.float64), var_attrs("1", long_name, source=source, **extra))

    put(
        "lse_excess_max_bound",
        eps * math.log(n),
        "Lemma 3.2 upper bound eps log n",
        f"LSE_eps(x) <= max(x) + eps log n; {PAPER}, Lemma 3.2",
    )
    put(
        "lse_excess_min_bound",
        0.0 * eps,
        "Lemma 3.2 lower bound 0",
        f"max(x) <= LSE_eps(x); {PAPER}, Lemma 3.2",
        bound="lower",
    )
    put(
        "lse_gap_ratio_max_bound",
        ones,
        "gap form of Lemma 3.2 (ratio <= 1)",
        f"LSE_eps - max <= eps (n-1) exp(-delta/eps) via log(1+u) <= u; {PAPER}, Lemma 3.2 "
        "(O(eps e^-delta/eps)), constant (n-1) made explicit here",
    )
    put(
        "sigmoid_ratio_max_bound",
        ones,
        "Lemma 5.1 (ratio <= 1)",
        f"|sigmoid(x/eps) - H(x)| <= exp(-|x|/eps); {PAPER}, Lemma 5.1",
    )
    put(
        "dsdw_ratio_max_bound",
        ones,
        "Prop. 5.4 weight-gradient bound (ratio <= 1)",
        f"|ds/dW_ij| <= ||x||_inf / (4 eps); {PAPER}, Prop. 5.4",
    )
    for pre, m, src, who in (("v", 2, "Prop. 5.2", "UltraLIF"), ("d", 3, "Cor. 5.3", "UltraDLIF")):
        logm = f"log {m}"
        put(
            f"{pre}_noreset_ratio_max_bound",
            ones,
            f"{who}, no reset: |V_eps - v| <= t eps {logm}",
            f"each LSE step adds at most eps {logm} (Lemma 3.2) and max is 1-Lipschitz; {PAPER}, {src}",
        )
        put(
            f"{pre}_ratio_margin_max_bound",
            ones,
            f"{who}, reset, margin holds: t eps {logm}",
            f"|V_eps(t) - v(t)| <= t eps {logm} under the threshold-margin assumption; {PAPER}, {src}",
        )
        put(
            f"{pre}_ratio_all_max_bound",
            ones,
            f"{who}, reset, every step: t eps {logm}",
            f"{PAPER}, {src} applied without checking the margin (expected to fail near threshold "
            "for small eps: papers/ultralif.md 'Caution')",
        )
        put(
            f"{pre}_error_max_bound",
            steps * eps * math.log(m),
            f"{who}: steps * eps {logm}",
            f"largest value of t eps {logm} over the run; {PAPER}, {src}",
        )
        put(
            f"{pre}_dsdv_max_bound",
            1.0 / (4.0 * eps),
            "Prop. 5.4: ds/dV <= 1/(4 eps)",
            f"0 < ds/dVt = s(1-s)/eps <= 1/(4 eps); {PAPER}, Prop. 5.4",
        )
        put(
            f"{pre}_spike_ratio_margin_max_bound",
            ones,
            f"{who}: |s_eps - s| <= exp(-delta_t/eps)",
            f"{PAPER}, {src} spike bound, as stated (it ignores the accumulated potential error)",
        )
        put(
            f"{pre}_spike_shifted_ratio_max_bound",
            ones,
            f"{who}: |s_eps - s| <= exp(-(delta_t - |V_eps - v|)/eps)",
            "Lemma 5.1 applied at the soft potential (derived here; holds whenever both potentials lie "
            f"on the same side of theta); {PAPER}, Lemma 5.1",
        )
    return xr.Dataset(out, coords={"eps": ds["eps"]})
