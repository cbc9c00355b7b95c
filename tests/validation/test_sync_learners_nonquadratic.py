"""sync_learners with non-quadratic losses: Gibbs values at k = 0, the double well, logistic regression."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.runner import simulate
from neurodyn.scenario import from_dict


def run(params: dict, run: dict, record: dict | None = None):
    doc = {"name": "t", "family": "sync_learners", "params": params, "run": run, "record": record or {}}
    return simulate(from_dict(doc))


def mean_se(da):
    return da.mean("trial"), da.std("trial", ddof=1) / np.sqrt(da.sizes["trial"])


@pytest.mark.parametrize(
    "loss",
    [
        {"kind": "logcosh", "scale": 0.5, "mu": 0.3, "center": 0.5},
        {"kind": "double_well", "barrier": 0.5, "width": 1.0},
    ],
)
def test_uncoupled_learners_follow_gibbs_density(loss):
    """k = 0: spread and learner error match quadrature over exp(-2 f / sigma^2) within 3 SE."""
    ds = run(
        {
            "n": 8,
            "d": 1,
            "k": [0.0, 1.0],
            "sigma": 1.0,
            "topology": "complete",
            "loss": loss,
            "trials": 24,
            "burn_in": "5.0 s",
            "init_offset": 0.0,
        },
        {"duration": "60.0 s", "dt": "0.004 s", "seed": 6},
    )
    for name in ("spread", "learner_error"):
        m, se = mean_se(ds[name].sel(k=0.0))
        pred = ds[f"{name}_theory"].sel(k=0.0)
        assert bool(np.all(np.abs(m - pred) <= 3 * se)), (name, m.values, pred.values, se.values)
        assert bool(ds[f"{name}_theory"].sel(k=1.0).isnull().all())
    if loss["kind"] == "double_well":
        # exact mean first-passage rate between the minima (B/D = 1 here: far from Kramers' asymptote)
        m, se = mean_se(ds["switch_rate"].sel(k=0.0))
        pred = ds["switch_rate_theory"].sel(k=0.0)
        assert bool(np.all(np.abs(m - pred) <= 3 * se)), (m.values, pred.values, se.values)
        assert bool(np.all(se < 0.05 * pred))


def test_double_well_coupling_makes_learners_agree():
    """Non-convex loss: bound undefined until k lambda_2 > 4 B / w^2, holds beyond; coupling aligns wells."""
    ds = run(
        {
            "n": 12,
            "d": 1,
            "k": [0.0, 0.2, 2.0],
            "sigma": 1.0,
            "topology": ["complete", "ring"],
            "loss": {"kind": "double_well", "barrier": 0.6, "width": 1.0},
            "trials": 16,
            "burn_in": "10.0 s",
            "init_offset": -1.0,
            "init_spread": 0.5,
        },
        {"duration": "50.0 s", "dt": "0.004 s", "seed": 7},
    )
    bound = ds["spread_bound"].isel(n=0)
    lam_f = -4 * 0.6
    lam2 = ds["lambda_2"].isel(n=0)
    defined = (lam_f + ds["k"] * lam2) > 0
    assert bool((bound.notnull() == defined).all())
    assert bool(defined.sel(topology="complete", k=2.0)) and not bool(defined.sel(topology="ring").any())
    m, se = mean_se(ds["spread"].isel(n=0))
    assert bool((m <= bound + 3 * se).where(defined, True).all())
    agree = ds["agreement"].isel(n=0).mean("trial")
    assert float(agree.sel(topology="complete", k=2.0)) > 0.99
    assert float(agree.sel(topology="complete", k=0.0)) < 0.8  # independent learners hop between wells
    assert float(agree.sel(topology="ring", k=2.0)) > float(agree.sel(topology="ring", k=0.0)) + 0.1
    # robustness of the decision: uncoupled learners hop between wells, the synchronised group never does
    assert float(ds["switch_rate"].isel(n=0).sel(topology="complete", k=0.0).mean()) > 0.05
    assert float(ds["centroid_switch_rate"].isel(n=0).sel(topology="complete", k=2.0).max()) == 0.0


@pytest.mark.slow
def test_logistic_regression_error_vs_n_and_k():
    """Test error of single learners falls with k; the centroid's with n; Bayes error bounds both."""
    ds = run(
        {
            "n": [2, 8],
            "d": 3,
            "k": [0.0, 1.0],
            "sigma": 0.4,
            "topology": "complete",
            "loss": {"kind": "logistic", "samples": 80, "test_samples": 2000, "separation": 2.0, "reg": 0.05},
            "trials": 8,
            "burn_in": "10.0 s",
        },
        {"duration": "60.0 s", "dt": "0.01 s", "seed": 3},
        {"every": "0.5 s"},
    )
    te_l, se_l = mean_se(ds["test_error_learner"].isel(topology=0))
    te_c, se_c = mean_se(ds["test_error_centroid"].isel(topology=0))
    bayes = float(ds["test_error_learner_bound"].max())
    assert bayes == pytest.approx(0.158655, rel=1e-4)  # Phi(-1)
    assert bool((te_l >= bayes).all()) and bool((te_c >= bayes).all())
    # coupling: single learners approach the centroid, which is better than a lone learner
    gap = te_l.sel(n=8, k=0.0) - te_l.sel(n=8, k=1.0)
    assert float(gap) > 3 * float(np.hypot(se_l.sel(n=8, k=0.0), se_l.sel(n=8, k=1.0)))
    assert float(te_c.sel(n=8, k=0.0)) < float(te_l.sel(n=8, k=0.0))
    # redundancy: the coupled centroid's parameter error follows the small-noise law sigma^2 tr(H^-1) / (2n)
    ce, ce_se = mean_se(ds["centroid_error"].isel(topology=0).sel(k=1.0))
    pred = ds["centroid_error_theory"].isel(topology=0).sel(k=1.0)
    assert bool((np.abs(ce - pred) <= np.maximum(3 * ce_se, 0.25 * pred)).all()), (ce.values, pred.values)
    assert float(ce.sel(n=8) / ce.sel(n=2)) == pytest.approx(0.25, rel=0.35)
