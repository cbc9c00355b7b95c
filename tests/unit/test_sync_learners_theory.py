"""Theory formulas of sync_learners against direct Lyapunov solutions of the full linear system."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

from neurodyn.families.sync_learners.graphs import build_graph
from neurodyn.families.sync_learners.params import Topology
from neurodyn.families.sync_learners.theory import em_inflation, ou_centroid_error, ou_spread, spread_bound


def _system(n=7, d=3, k=0.7, sigma=1.3, rho=0.3, seed=0):
    rng = np.random.default_rng(seed)
    spec = Topology(generator="erdos_renyi_graph", args={"p": 0.6}, weights=(0.2, 2.0))
    g = build_graph(spec, n, seed, "t")
    a = rng.standard_normal((d, d))
    hess = a @ a.T + 0.5 * np.eye(d)
    lap = g.laplacian.toarray()
    m = np.kron(np.eye(n), hess) + k * np.kron(lap, np.eye(d))  # drift: dX = -M X dt + noise
    cov_learners = sigma**2 * ((1 - rho) * np.eye(n) + rho * np.ones((n, n)))
    q = np.kron(cov_learners, np.eye(d))
    proj = np.kron(np.eye(n) - np.ones((n, n)) / n, np.eye(d))
    cent = np.kron(np.ones((1, n)) / n, np.eye(d))
    return g, hess, m, q, proj, cent


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_spread_and_centroid_match_continuous_lyapunov(seed):
    """Mode sums = trace of the stationary covariance of M S + S M^T = Q (weighted graph, full H, rho)."""
    n, d, k, sigma, rho = 7, 3, 0.7, 1.3, 0.3
    g, hess, m, q, proj, cent = _system(n, d, k, sigma, rho, seed)
    s = sla.solve_continuous_lyapunov(m, q)
    h = np.linalg.eigvalsh(hess)
    lam = g.spectrum
    assert ou_spread(lam, h, k, sigma, rho) == pytest.approx(np.trace(proj @ s @ proj.T), rel=1e-10)
    assert ou_centroid_error(n, h, sigma, rho) == pytest.approx(np.trace(cent @ s @ cent.T), rel=1e-10)


def test_euler_maruyama_chain_matches_discrete_lyapunov():
    """The dt-corrected mode sums are the stationary covariance of X <- (I - dt M) X + sqrt(dt) noise."""
    n, d, k, sigma, rho, dt = 7, 3, 0.7, 1.3, 0.3, 0.05
    g, hess, m, q, proj, cent = _system(n, d, k, sigma, rho, 3)
    a = np.eye(n * d) - dt * m
    s = sla.solve_discrete_lyapunov(a, dt * q)
    h, lam = np.linalg.eigvalsh(hess), g.spectrum
    assert ou_spread(lam, h, k, sigma, rho, dt=dt) == pytest.approx(np.trace(proj @ s @ proj.T), rel=1e-9)
    assert ou_centroid_error(n, h, sigma, rho, dt=dt) == pytest.approx(np.trace(cent @ s @ cent.T), rel=1e-9)
    # and EM's inflation of every mode is at most 1 / (1 - r_max dt / 2)
    r_max = h[-1] + k * lam[-1]
    em = ou_spread(lam, h, k, sigma, rho, dt=dt)
    assert em <= em_inflation(r_max, dt) * ou_spread(lam, h, k, sigma, rho)


@pytest.mark.parametrize("generator", ["complete", "ring", "star", "grid", "small_world", "barabasi_albert"])
@pytest.mark.parametrize("k", [0.0, 0.1, 1.0, 10.0])
def test_bound_dominates_exact_and_is_attained_by_complete_graph(generator, k):
    n, d, sigma, h = 16, 2, 0.8, 1.5
    lam = build_graph(Topology(generator=generator), n, 4, "t").spectrum
    exact = ou_spread(lam, np.full(d, h), k, sigma)
    bound = spread_bound(n, d, sigma, h, lam[1], k)
    assert exact <= bound * (1 + 1e-12)
    if generator == "complete" or k == 0:
        assert exact == pytest.approx(bound, rel=1e-12)
        assert exact == pytest.approx(d * sigma**2 * (n - 1) / (2 * (h + k * (n if k else 0))), rel=1e-12)


def test_bound_undefined_without_contraction():
    assert np.isnan(spread_bound(8, 1, 1.0, -4.0, 0.5, 1.0))  # double well, weak coupling
    assert spread_bound(8, 1, 1.0, -4.0, 8.0, 1.0) == pytest.approx(7 / 8)
    assert np.isinf(em_inflation(100.0, 0.03))
