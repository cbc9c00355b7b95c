"""sync_learners simulations against exact Ornstein-Uhlenbeck values and the lambda_2 bound.

Every check uses a fixed seed, so each run of a test is bitwise identical; tolerances are 3 standard
errors over trials (time averages per trial are independent across trials).
"""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.runner import simulate
from neurodyn.scenario import from_dict


def run(params: dict, run: dict, record: dict | None = None):
    doc = {"name": "t", "family": "sync_learners", "params": params, "run": run, "record": record or {}}
    return simulate(from_dict(doc))


def within_3se(ds, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sim = ds[name]
    mean = sim.mean("trial").values
    se = (sim.std("trial", ddof=1) / np.sqrt(sim.sizes["trial"])).values
    pred = ds[f"{name}_theory"].values
    return mean, se, pred


@pytest.mark.parametrize("integrator", ["euler_maruyama", "exact"])
def test_quadratic_spread_and_centroid_match_exact_ou(integrator):
    """complete, ring, star: spread, centroid and learner error within 3 SE of the exact OU values.

    Euler-Maruyama is compared with the exact stationary values of its own chain (dt-corrected mode sums).
    """
    dt = 0.01 if integrator == "euler_maruyama" else 0.05
    ds = run(
        {
            "n": 8,
            "d": 2,
            "k": [0.3, 2.0],
            "sigma": 1.0,
            "topology": ["complete", "ring", "star"],
            "loss": {"kind": "quadratic", "hessian": [1.0, 2.0]},
            "trials": 60,
            "integrator": integrator,
            "burn_in": "5.0 s",
        },
        {"duration": "80.0 s", "dt": f"{dt} s", "seed": 11},
    )
    for name in ("spread", "centroid_error", "learner_error"):
        mean, se, pred = within_3se(ds, name)
        assert np.all(np.abs(mean - pred) <= 3 * se), (name, mean, pred, se)
        assert np.all(se < 0.03 * pred)  # the test is sharp: 3 SE is at most ~9%
    # the EM-chain correction is real: with these rates the SDE values lie outside 3 SE for the star
    if integrator == "euler_maruyama":
        from neurodyn.families.sync_learners.theory import ou_spread

        lam = ds["laplacian_eigenvalues"].sel(topology="star", n=8).values
        sde = ou_spread(lam, np.array([1.0, 2.0]), 2.0, 1.0)
        sim = ds["spread"].sel(topology="star", k=2.0).isel(n=0)
        assert float(sim.mean()) - sde > 3 * float(sim.std(ddof=1)) / np.sqrt(sim.sizes["trial"])


def test_exact_integrator_full_hessian_weighted_graph_correlated_noise():
    ds = run(
        {
            "n": 6,
            "d": 3,
            "k": [0.5, 4.0],
            "sigma": 0.7,
            "noise_correlation": 0.4,
            "loss": {
                "kind": "quadratic",
                "hessian": [[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]],
                "center": [1.0, -2.0, 0.5],
            },
            "topology": [
                {"edges": [[0, 1, 2.0], [1, 2], [2, 3, 0.3], [3, 4], [4, 5, 1.5], [5, 0]], "label": "weighted_ring"},
                {"generator": "star", "weights": [0.5, 2.0]},
            ],
            "trials": 60,
            "integrator": "exact",
            "burn_in": "10.0 s",
        },
        {"duration": "200.0 s", "dt": "0.1 s", "seed": 5},
    )
    for name in ("spread", "centroid_error", "learner_error"):
        mean, se, pred = within_3se(ds, name)
        assert np.all(np.abs(mean - pred) <= 3 * se), (name, mean, pred, se)


def test_k0_is_independent_learners():
    """k = 0: the graph is irrelevant (bitwise), and every learner is an independent OU process."""
    params = {
        "n": 10,
        "d": 2,
        "k": 0.0,
        "sigma": 1.0,
        "loss": {"kind": "quadratic", "hessian": 2.0},
        "topology": ["complete", "ring", "star"],
        "trials": 40,
        "burn_in": "2.0 s",
    }
    ds = run(params, {"duration": "30.0 s", "dt": "0.01 s", "seed": 3})
    a = ds["spread"].sel(topology="complete").values
    for t in ("ring", "star"):
        np.testing.assert_array_equal(ds["spread"].sel(topology=t).values, a)
        np.testing.assert_array_equal(
            ds["trajectory"].sel(topology=t).values, ds["trajectory"].sel(topology="complete").values
        )
    # one learner: d sigma^2 / (2 h (1 - h dt / 2)) (EM chain); spread = (n - 1) times that
    single = 2 * 1.0 / (2 * 2.0 * (1 - 2.0 * 0.01 / 2))
    le = ds["learner_error"].sel(topology="ring")
    assert abs(float(le.mean()) - single) < 3 * float(le.std(ddof=1)) / np.sqrt(40)
    assert float(ds["spread_theory"].sel(topology="ring").squeeze()) == pytest.approx(9 * single)


def test_complete_graph_spread_falls_as_one_over_h_plus_kn():
    """log spread / (n - 1) against log (h + k n) has slope -1 (EM inflation divided out, exact here)."""
    h, dt = 1.0, 0.002
    ds = run(
        {
            "n": [4, 16],
            "d": 2,
            "k": [0.25, 1.0, 4.0],
            "sigma": 1.0,
            "topology": "complete",
            "loss": {"kind": "quadratic", "hessian": h},
            "trials": 30,
            "burn_in": "1.0 s",
        },
        {"duration": "15.0 s", "dt": f"{dt} s", "seed": 8},
    )
    x, y = [], []
    for n in (4, 16):
        for k in (0.25, 1.0, 4.0):
            r = h + k * n
            v = float(ds["spread"].sel(topology="complete", n=n, k=k).mean())
            x.append(np.log(r))
            y.append(np.log(v * (1 - r * dt / 2) / (n - 1)))
    slope, intercept = np.polyfit(x, y, 1)
    assert slope == pytest.approx(-1.0, abs=0.03)
    assert np.exp(intercept) == pytest.approx(2 * 1.0 / 2, rel=0.05)  # d sigma^2 / 2


def test_logcosh_lambda2_bound_never_exceeded():
    """Strongly convex non-quadratic loss: simulated spread <= bound (+ 3 SE) across topologies and k."""
    ds = run(
        {
            "n": 12,
            "d": 2,
            "k": [0.0, 0.3, 1.0, 3.0],
            "sigma": 1.5,
            "loss": {"kind": "logcosh", "scale": 1.0, "mu": 0.2, "center": [0.5, -0.5]},
            "topology": [
                "complete",
                "ring",
                "star",
                "grid",
                {"generator": "connected_watts_strogatz_graph", "args": {"k": 4, "p": 0.3}, "label": "small_world"},
                {"generator": "barabasi_albert", "label": "ba"},
            ],
            "trials": 16,
            "burn_in": "10.0 s",
        },
        {"duration": "50.0 s", "dt": "0.005 s", "seed": 2},
    )
    sim = ds["spread"]
    mean = sim.mean("trial").values
    se = (sim.std("trial", ddof=1) / np.sqrt(sim.sizes["trial"])).values
    bound = ds["spread_bound"].values
    assert np.all(np.isfinite(bound))
    assert np.all(mean <= bound + 3 * se), mean / bound
    # the loss is genuinely non-quadratic here: at k = 0 the spread sits far below the mu-only bound
    assert np.all(mean[:, 0, 0] < 0.6 * bound[:, 0, 0])


def test_transient_rate_lower_bound_and_complete_graph_rate():
    """The spread's excess decays at least at 2 (lambda_f + k lambda_2); exactly so on the complete graph."""
    ds = run(
        {
            "n": 10,
            "d": 2,
            "k": [0.2, 1.0],
            "sigma": 0.3,
            "topology": ["complete", "ring", "star"],
            "loss": {"kind": "quadratic", "hessian": 1.0},
            "trials": 100,
            "integrator": "exact",
            "init_spread": 3.0,
            "burn_in": "10.0 s",
        },
        {"duration": "20.0 s", "dt": "0.005 s", "seed": 4},
        {"every": "0.005 s", "batches": 10},
    )
    rate = ds["transient_rate"]
    mean = rate.mean("batch")
    se = rate.std("batch", ddof=1) / np.sqrt(rate.sizes["batch"])
    bound = ds["transient_rate_bound"]
    assert bool(np.all(mean >= bound - 3 * se)), (mean.values, bound.values)
    comp = mean.sel(topology="complete").isel(n=0)
    assert np.allclose(comp, bound.sel(topology="complete").isel(n=0), rtol=0.03)


@pytest.mark.parametrize("integrator", ["euler_maruyama", "exact"])
def test_same_seed_same_bits_whatever_the_chunking(integrator):
    params = {
        "n": 5,
        "d": 2,
        "k": [0.5],
        "sigma": 1.0,
        "topology": ["ring"],
        "trials": 3,
        "init_spread": 1.0,
        "noise_correlation": 0.2,
        "integrator": integrator,
    }
    a = run(params, {"duration": "3.0 s", "dt": "0.01 s", "seed": 21, "chunk": "0.07 s"})
    b = run(params, {"duration": "3.0 s", "dt": "0.01 s", "seed": 21})
    c = run(params, {"duration": "3.0 s", "dt": "0.01 s", "seed": 22})
    for name in ("spread", "trajectory", "spread_t"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert not np.array_equal(a["spread"].values, c["spread"].values)
