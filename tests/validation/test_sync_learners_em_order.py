"""Convergence order of Euler-Maruyama on Ornstein-Uhlenbeck test problems (measured slopes).

* Strong order: ``E|X_h(T) - X(T)|`` against ``h`` on the same Brownian paths. With multiplicative noise
  (``dX = -theta X dt + s X dW``, exact solution known) EM has strong order 1/2. With the family's
  additive noise (OU) EM coincides with Milstein and its strong order is 1 (Kloeden & Platen 1992,
  sec. 10.3); both slopes are measured.
* Weak order 1: the bias of ``E[X_h(T)]`` (same paths, so the Monte Carlo noise cancels), and the bias of
  the family kernel's stationary spread against the SDE's exact value, measured by simulation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba import njit

from neurodyn.families.sync_learners.theory import ou_spread
from neurodyn.runner import simulate
from neurodyn.scenario import from_dict


@njit(cache=True)
def _em_levels(x0, theta, s, multiplicative, t_end, n_fine, levels, n_paths, rng):
    """EM at coarsening ``levels`` of one fine Brownian path per sample; returns (em[path, level], ref[path]).

    For multiplicative noise the exact value is ``x0 exp((-theta - s^2/2) T + s W_T)``; for additive noise
    the reference is EM on the fine grid (its strong error is O(dt_fine), far below the coarse errors).
    """
    nl = levels.shape[0]
    out = np.empty((n_paths, nl))
    ref = np.empty(n_paths)
    dtf = t_end / n_fine
    dw = np.empty(n_fine)
    for p in range(n_paths):
        w = 0.0
        for q in range(n_fine):
            dw[q] = math.sqrt(dtf) * rng.standard_normal()
            w += dw[q]
        if multiplicative:
            ref[p] = x0 * math.exp((-theta - 0.5 * s * s) * t_end + s * w)
        else:
            x = x0
            for q in range(n_fine):
                x = x - dtf * theta * x + s * dw[q]
            ref[p] = x
        for li in range(nl):
            c = levels[li]
            h = c * dtf
            x = x0
            for q in range(0, n_fine, c):
                inc = 0.0
                for r in range(q, q + c):
                    inc += dw[r]
                x = x - h * theta * x + s * (x * inc if multiplicative else inc)
            out[p, li] = x
    return out, ref


LEVELS = np.array([16, 32, 64, 128, 256])
N_FINE = 4096


def _slope(h, err):
    return np.polyfit(np.log(h), np.log(err), 1)[0]


@pytest.mark.parametrize(("multiplicative", "order"), [(True, 0.5), (False, 1.0)])
def test_strong_order(multiplicative, order):
    rng = np.random.default_rng(0)
    em, ref = _em_levels(1.0, 1.0, 1.0, multiplicative, 1.0, N_FINE, LEVELS, 3000, rng)
    h = LEVELS / N_FINE
    err = np.mean(np.abs(em - ref[:, None]), axis=0)
    assert _slope(h, err) == pytest.approx(order, abs=0.1), err


def test_weak_order_scalar():
    """Bias of E[X_h(T)] for OU: x0 ((1 - theta h)^(T/h) - e^(-theta T)), slope 1."""
    rng = np.random.default_rng(1)
    x0, theta, t_end = 2.0, 1.0, 1.0
    em, ref = _em_levels(x0, theta, 0.5, False, t_end, N_FINE, LEVELS, 2000, rng)
    h = LEVELS / N_FINE
    bias = np.mean(em - ref[:, None], axis=0) + x0 * ((1 - theta / N_FINE) ** N_FINE - math.exp(-theta))
    exact_bias = x0 * ((1 - theta * h) ** (t_end / h) - math.exp(-theta * t_end))
    np.testing.assert_allclose(bias, exact_bias, rtol=0.02)
    assert _slope(h, np.abs(bias)) == pytest.approx(1.0, abs=0.05)


def test_weak_order_family_kernel_stationary_spread():
    """The family's EM kernel: relative bias of the stationary spread vs the SDE value scales as dt."""
    h, k, n = 1.0, 2.0, 4
    lam = np.array([0.0] + [n] * (n - 1))
    sde = ou_spread(lam, np.full(2, h), k, 1.0)
    dts = np.array([0.005, 0.01, 0.02])
    bias, se = [], []
    for dt in dts:
        ds = simulate(
            from_dict(
                {
                    "name": "t",
                    "family": "sync_learners",
                    "params": {
                        "n": n,
                        "d": 2,
                        "k": k,
                        "sigma": 1.0,
                        "topology": "complete",
                        "loss": {"kind": "quadratic", "hessian": h},
                        "trials": 200,
                        "burn_in": "1.0 s",
                    },
                    "run": {"duration": "60.0 s", "dt": f"{float(dt)!r} s", "seed": 9},
                }
            )
        )
        bias.append(float(ds["spread"].mean()) / sde - 1.0)
        se.append(float(ds["spread"].std(ddof=1)) / np.sqrt(200) / sde)
    bias, se = np.array(bias), np.array(se)
    # the EM chain's exact bias, r dt / 2 / (1 - r dt / 2) with r = h + k n: first order in dt
    r = h + k * n
    exact = (r * dts / 2) / (1 - r * dts / 2)
    assert np.all(np.abs(bias - exact) < 3 * se), (bias, exact, se)
    assert _slope(dts, bias) == pytest.approx(1.0, abs=0.15), bias
