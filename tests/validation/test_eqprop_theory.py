"""The EP gradient theorem and the EP-BPTT correspondence, measured on small float64 networks."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.compare import all_rows
from neurodyn.runner import simulate
from neurodyn.scenario import from_dict, load_scenario


@pytest.fixture(scope="module")
def theorem_ds(repo):
    sc = load_scenario(repo / "scenarios" / "eqprop_gradient_theorem.yaml")
    assert min(sc.params.theorem.betas) <= 1e-3
    return simulate(sc)


def test_one_sided_error_is_first_order_in_beta(theorem_ds):
    err = theorem_ds["grad_rel_error"].sel(estimator="one_sided")
    assert float(theorem_ds["slope_one_sided"]) == pytest.approx(1.0, abs=0.15)
    # about 10x smaller per 10x smaller beta
    assert float(err.sel(beta=0.01) / err.sel(beta=0.001)) == pytest.approx(10.0, rel=0.15)
    assert float(err.sel(beta=0.001)) < 2e-3


def test_symmetric_error_is_second_order_in_beta(theorem_ds):
    err = theorem_ds["grad_rel_error"].sel(estimator="symmetric")
    assert float(theorem_ds["slope_symmetric"]) == pytest.approx(2.0, abs=0.2)
    assert float(err.sel(beta=0.01) / err.sel(beta=0.001)) == pytest.approx(100.0, rel=0.2)
    # and it beats the one-sided estimate at every beta
    assert np.all(err.values < theorem_ds["grad_rel_error"].sel(estimator="one_sided").values)


def test_theorem_rows_agree_with_predicted_slopes(theorem_ds):
    rows = {r.quantity: r for r in all_rows(theorem_ds)}
    assert rows["slope_one_sided"].verdict == "agree"
    assert rows["slope_symmetric"].verdict == "agree"
    assert rows["slope_symmetric"].predicted == 2.0


def _bptt(estimator: str, betas: list[float]):
    sc = from_dict(
        {
            "name": "t",
            "family": "eqprop",
            "run": {"seed": 1},
            "params": {
                "experiment": "bptt_match",
                "layers": [6, 8, 8, 3],
                "rho": "tanh",
                "bptt": {"betas": betas, "estimator": estimator, "steps": 20},
            },
        }
    )
    return simulate(sc)


def test_discrete_time_ep_updates_match_bptt_step_by_step():
    ds = _bptt("one_sided", [0.1, 0.01, 0.001])
    at = ds.sel(beta=0.01)
    assert float(at["rel_rmse"]) < 1e-2
    assert float(at["rel_rmse_state"]) < 1e-2
    assert float(at["sign_share"]) > 0.95
    assert float(ds["rmse_slope"]) == pytest.approx(1.0, abs=0.15)
    rows = all_rows(ds)
    verdicts = {r.quantity: r.verdict for r in rows if r.verdict != "n/a"}
    assert set(verdicts.values()) == {"agree", "holds"}
    assert sum(r.verdict == "holds" for r in rows) == 4  # rel_rmse and sign_share at beta = 0.01, 0.001
    # the first EP step equals the last BPTT step up to O(beta): the cost gradient at the fixed point
    np.testing.assert_allclose(
        ds["ep_state_update"].sel(beta=0.001).isel(step=0), ds["bptt_state_update"].isel(step=0), rtol=0, atol=2e-3
    )


def test_symmetric_nudging_matches_bptt_to_second_order():
    ds = _bptt("symmetric", [0.1, 0.01])
    assert float(ds["rmse_slope"]) == pytest.approx(2.0, abs=0.2)
    assert float(ds["rel_rmse"].sel(beta=0.01)) < 1e-3
