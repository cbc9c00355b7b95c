"""EP training on digits: it learns, the free phase converges, persistent particles shorten it."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.families.eqprop import kernels as K
from neurodyn.families.eqprop.build import load_digits, make_layout
from neurodyn.runner import simulate
from neurodyn.scenario import from_dict, load_scenario


def _train(training: dict, layers=(64, 100, 10), epochs=4, **params):
    doc = {
        "name": "t",
        "family": "eqprop",
        "run": {"seed": 0, "epochs": epochs},
        "params": {"experiment": "train", "layers": list(layers), "training": training, **params},
    }
    return simulate(from_dict(doc))


@pytest.fixture(scope="module")
def converging_runs():
    base = {"tol": 1e-2, "n_free": 300, "seeds": [4], "backprop": False, "eval_steps": 20}
    return tuple(_train({**base, "persistent": p}, layers=(64, 200, 10), epochs=5) for p in (True, False))


def test_free_phase_converges_below_tolerance(converging_runs):
    persistent, cold = converging_runs
    for ds in converging_runs:
        # every minibatch stopped because |dF/ds| fell below tol, not because the step budget ran out
        assert float(ds["free_steps"].max()) < 300
        assert float(ds["free_residual"].max()) < 1e-2
    assert float(cold["free_steps"].min()) > 0


def test_persistent_particles_shorten_the_free_phase(converging_runs):
    persistent, cold = converging_runs
    # epoch 1 starts from zero in both runs (same weights, same order: identical counts) ...
    assert persistent["free_steps"].isel(epoch=0).item() == cold["free_steps"].isel(epoch=0).item()
    # ... later the warm start from last epoch's fixed point needs markedly fewer steps, more so as the
    # weights settle
    warm, zero = persistent["free_steps"].isel(epoch=-1), cold["free_steps"].isel(epoch=-1)
    assert warm.item() < 0.75 * zero.item()


def test_relaxed_state_is_a_fixed_point_of_the_trained_network(converging_runs):
    """Rebuild the trained network from the stored weights and check |dF/ds| at its fixed point."""
    ds = converging_runs[0].isel(rule=0, seed=0)
    lay = make_layout([64, 200, 10])
    Wf = np.concatenate([ds["W_0"].values.ravel(), ds["W_1"].values.ravel()])
    bf = np.concatenate([np.zeros(64), ds["b_1"].values, ds["b_2"].values])
    Xtr, Dtr, *_ = load_digits(from_dict({"name": "t", "family": "eqprop"}).params.data)
    S = np.zeros((lay.n_units, 10))
    S[:64] = Xtr[:, :10]
    steps, res = K.relax(S, K.Net(Wf, bf, lay.woff, lay.off, 0, 0), Dtr[:, :10], 0.0, 0.5, 20_000, 1e-6)
    assert res < 1e-6 and steps < 20_000
    # independent check of stationarity: inside (0, 1) the state equals its net input
    h = S[64:264]
    u = ds["W_0"].values.T @ S[:64] + ds["W_1"].values @ S[264:] + ds["b_1"].values[:, None]
    inside = (h > 0) & (h < 1)
    assert np.abs(h - u)[inside].max() < 1e-6
    assert np.all(u[h == 0] <= 1e-6) and np.all(u[h == 1] >= 1 - 1e-6)


def test_one_hidden_layer_reaches_95_percent_on_digits(repo):
    sc = load_scenario(repo / "scenarios" / "eqprop_digits_1h.yaml", ["params.training.seeds=[1]", "run.epochs=25"])
    ds = simulate(sc)
    # averaged over the last 5 epochs: robust to epoch-to-epoch jitter (a few test examples) and to
    # BLAS rounding differences between machines
    late = ds["test_error"].isel(epoch=slice(-5, None)).mean("epoch")
    assert late.sel(rule="ep_one_sided").item() <= 0.05
    assert late.sel(rule="bp").item() <= 0.05
    # learning happened: the first epoch was worse
    ep = ds["test_error"].sel(rule="ep_one_sided")
    assert ep.isel(epoch=0).item() > ep.isel(epoch=-1).item()
    assert ds["W_0"].sizes == {"rule": 2, "seed": 1, "unit_0": 64, "unit_1": 500}


def test_same_seed_gives_bitwise_identical_training():
    cfg = {"seeds": [7], "estimators": ["one_sided", "symmetric"], "eval_steps": 10}
    a = _train(cfg, epochs=2)
    b = _train(cfg, epochs=2)
    for name in ("test_error", "train_error", "energy", "W_0", "W_1", "b_2"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    # the two estimators start from the same weights but do not train identically
    W = a["W_0"]
    assert not np.array_equal(W.sel(rule="ep_one_sided").values, W.sel(rule="ep_symmetric").values)


def test_softmax_cross_entropy_readout_learns():
    ds = _train({"seeds": [2], "backprop": True, "eval_steps": 30}, epochs=6, cost="softmax_ce")
    final = ds["test_error"].isel(epoch=-1)
    assert final.sel(rule="ep_one_sided").item() < 0.1
    assert final.sel(rule="bp").item() < 0.1
