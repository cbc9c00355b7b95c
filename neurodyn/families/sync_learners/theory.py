"""Theory of redundant noisy learners coupled on a graph.

Reconstructed, not quoted: the source (Bouvrie & Slotine, Neural Computation 23(11), 2011; arXiv:1010.4517)
was available only as its abstract. The statements below follow from Ito's formula and the
stochastic-contraction argument (Pham, Tabareau & Slotine 2009) and were checked numerically
(``papers/synchronized_learners.md``, and this family's validation tests).

Notation: ``L = D - A`` the weighted Laplacian with eigenvalues ``0 = lambda_1 <= lambda_2 <= ... <=
lambda_n``; ``lambda_f`` the strong-convexity modulus of f; noise ``dW_i = sqrt(1 - rho) dB_i +
sqrt(rho) dB_0``.

* Spread ``V = sum_i ||x_i - xbar||^2``. Ito: ``dV = -2 sum_i (x_i - xbar).(grad f(x_i) - grad f(xbar)) dt
  - 2k X^T (L (x) I) X dt + (1 - rho) sigma^2 d (n - 1) dt + martingale``; monotonicity of grad f and
  ``X^T L X >= lambda_2 ||X||^2`` on the complement of the constant vector give
  ``dE[V]/dt <= -2 (lambda_f + k lambda_2) E[V] + (1 - rho) sigma^2 d (n - 1)``, hence the steady bound
  ``E[V] <= (1 - rho) sigma^2 d (n - 1) / (2 (lambda_f + k lambda_2))`` (when the denominator is positive)
  and the transient rate ``2 (lambda_f + k lambda_2)``.
* Quadratic ``f = 1/2 (x - c)^T H (x - c)`` (curvatures ``h_m``): Laplacian and Hessian modes decouple
  into scalar OU processes with rates ``h_m + k lambda_j``, so exactly
  ``E[V] = (1 - rho) sigma^2 / 2 sum_{j>=2} sum_m 1 / (h_m + k lambda_j)``,
  ``E||xbar - c||^2 = sigma^2 ((1 - rho)/n + rho) tr(H^-1) / 2`` (coupling never acts on the centroid),
  and the mean learner error is ``E||xbar - c||^2 + E[V] / n``. All-to-all coupling (``lambda_j = n``,
  isotropic H): the bound is attained.
* Euler-Maruyama's stationary variance of a mode with rate r is ``q / (r (2 - r dt))`` instead of
  ``q / (2 r)`` (:func:`ou_spread` with ``dt``), a relative bias ``r dt / 2``.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from neurodyn.families.base import var_attrs
from neurodyn.families.sync_learners.losses import DOUBLE_WELL, LOGISTIC, make_loss

SOURCE_NOTE = ("reconstructed from the abstract of Bouvrie & Slotine 2011 (Neural Comput. 23(11)) and "
               "stochastic contraction (Pham, Tabareau & Slotine 2009); checked numerically")


def _mode_sum(lam: np.ndarray, h: np.ndarray, k: float, dt: float | None) -> float:
    r = h[None, :] + k * lam[:, None]
    if dt is None:
        return float(np.sum(1.0 / (2.0 * r)))
    return float(np.sum(1.0 / (r * (2.0 - r * dt))))


def ou_spread(lam: np.ndarray, h: np.ndarray, k: float, sigma: float, rho: float = 0.0,
              dt: float | None = None) -> float:
    """Exact stationary ``E[V]`` of the coupled OU system.

    Parameters
    ----------
    lam : ndarray
        Laplacian eigenvalues, ascending; ``lam[0]`` (the centroid mode) is skipped.
    h : ndarray
        Hessian eigenvalues.
    k, sigma, rho : float
        Coupling, noise amplitude and noise correlation.
    dt : float, optional
        If given, the stationary value of the Euler-Maruyama chain with this step instead of the SDE's.
    """
    return (1.0 - rho) * sigma**2 * _mode_sum(np.asarray(lam)[1:], np.asarray(h), k, dt)


def ou_centroid_error(n: int, h: np.ndarray, sigma: float, rho: float = 0.0, dt: float | None = None) -> float:
    """Exact stationary ``E||xbar - c||^2 = sigma^2 ((1 - rho)/n + rho) tr(H^-1) / 2`` (EM chain if ``dt``)."""
    return sigma**2 * ((1.0 - rho) / n + rho) * _mode_sum(np.zeros(1), np.asarray(h), 0.0, dt)


def em_inflation(r_max: float, dt: float) -> float:
    """Factor ``1 / (1 - r_max dt / 2)`` by which Euler-Maruyama inflates a stationary variance (inf if unstable)."""
    x = 1.0 - 0.5 * r_max * dt
    return 1.0 / x if x > 0 else math.inf


def spread_bound(n: int, d: int, sigma: float, lam_f: float, lam2: float, k: float, rho: float = 0.0) -> float:
    """``(1 - rho) sigma^2 d (n - 1) / (2 (lambda_f + k lambda_2))``; NaN when the denominator is <= 0."""
    c = lam_f + k * lam2
    return (1.0 - rho) * sigma**2 * d * (n - 1) / (2.0 * c) if c > 0 else math.nan


def theory_dataset(scenario, ds: xr.Dataset) -> xr.Dataset:
    """Bounds and exact predictions for every (topology, n, k) of a run."""
    p = scenario.params
    loss = make_loss(p.loss, p.d)
    rho, sigma, d = p.noise_correlation, p.sigma, p.d
    nt, nn, nk = ds.sizes["topology"], ds.sizes["n"], ds.sizes["k"]
    cube = ("topology", "n", "k")
    lam2 = ds["lambda_2"].values
    lam_max = ds["lambda_max"].values
    em_dt = scenario.run.dt if p.integrator == "euler_maruyama" else None
    bound = np.full((nt, nn, nk), np.nan)
    rate = np.full((nt, nn, nk), np.nan)
    for ti in range(nt):
        for ni, n in enumerate(p.n):
            for ki, k in enumerate(p.k):
                b = spread_bound(n, d, sigma, loss.lam_f, lam2[ti, ni], k, rho)
                if em_dt is not None and math.isfinite(loss.lip):
                    b *= em_inflation(loss.lip + k * lam_max[ti, ni], em_dt)
                bound[ti, ni, ki] = b
                c = loss.lam_f + k * lam2[ti, ni]
                rate[ti, ni, ki] = 2.0 * c if c > 0 else math.nan
    em_note = ("; times the Euler-Maruyama inflation 1/(1 - (L + k lambda_max) dt / 2) (exact for quadratic "
               "losses, first order otherwise)" if em_dt is not None else "")
    out = {
        "spread_bound": xr.DataArray(bound, dims=cube, attrs=var_attrs(
            "1", "steady-state spread bound",
            source="(1 - rho) sigma^2 d (n - 1) / (2 (lambda_f + k lambda_2)); NaN (undefined) where "
                   f"lambda_f + k lambda_2 <= 0; lambda_f = {loss.lam_f:g}{em_note}; {SOURCE_NOTE}")),
    }
    if "transient_rate" in ds:
        out["transient_rate_bound"] = xr.DataArray(rate, dims=cube, attrs=var_attrs(
            "s-1", "contraction rate of the spread (lower bound on its decay rate)", bound="lower",
            source=f"2 (lambda_f + k lambda_2) (Gronwall on dE[V]/dt); {SOURCE_NOTE}"))
    if loss.is_quadratic:
        h = np.linalg.eigvalsh(loss.hess)
        eig = ds["laplacian_eigenvalues"].values
        spread = np.full((nt, nn, nk), np.nan)
        cerr = np.full((nt, nn, nk), np.nan)
        for ti in range(nt):
            for ni, n in enumerate(p.n):
                lam = eig[ti, ni, :n]
                for ki, k in enumerate(p.k):
                    spread[ti, ni, ki] = ou_spread(lam, h, k, sigma, rho, dt=em_dt)
                    cerr[ti, ni, ki] = ou_centroid_error(n, h, sigma, rho, dt=em_dt)
        tol = 0.02
        which = ("stationary value of the Euler-Maruyama chain with this dt (1/(2 r) -> 1/(r (2 - r dt))); "
                 if em_dt is not None else "")
        nvec = np.asarray(p.n, dtype=float)[None, :, None]
        out["spread_theory"] = xr.DataArray(spread, dims=cube, attrs=var_attrs(
            "1", "exact OU steady-state spread", rel_tol=tol,
            source=f"{which}(1 - rho) sigma^2 / 2 sum_(j>=2) sum_m 1/(h_m + k lambda_j); {SOURCE_NOTE}"))
        out["centroid_error_theory"] = xr.DataArray(cerr, dims=cube, attrs=var_attrs(
            "1", "exact OU centroid error", rel_tol=tol,
            source=f"{which}sigma^2 ((1 - rho)/n + rho) tr(H^-1) / 2 (= d sigma^2 / (2 h n) for H = h I); {SOURCE_NOTE}"))
        out["learner_error_theory"] = xr.DataArray(cerr + spread / nvec, dims=cube, attrs=var_attrs(
            "1", "exact OU mean learner error", rel_tol=tol,
            source=f"E||xbar - c||^2 + E[V]/n; {SOURCE_NOTE}"))
    if loss.kind_id == LOGISTIC and np.all(np.isfinite(loss.x_ref)):
        tr = float(np.trace(np.linalg.inv(loss.hess_ref)))
        nvec = np.asarray(p.n, dtype=float)
        lin = sigma**2 * ((1.0 - rho) / nvec + rho) * tr / 2.0
        out["centroid_error_theory"] = xr.DataArray(
            np.broadcast_to(lin[None, :, None], (nt, nn, nk)).copy(), dims=cube, attrs=var_attrs(
                "1", "centroid error, small-noise linearisation around w*", rel_tol=0.25,
                source="sigma^2 ((1 - rho)/n + rho) tr(H(w*)^-1) / 2: OU approximation of the centroid "
                       "near the minimiser w* (valid for small sigma)"))
        for which in ("learner", "centroid"):
            out[f"test_error_{which}_bound"] = xr.DataArray(loss.bayes_error, attrs=var_attrs(
                "1", "Bayes error of the two-class problem", bound="lower",
                source="Phi(-separation/2): no classifier does better in expectation (finite test set: "
                       "sampling error ~ sqrt(e(1-e)/test_samples))"))
    if loss.kind_id == DOUBLE_WELL:
        out["lambda_f"] = xr.DataArray(loss.lam_f, attrs=var_attrs(
            "s-1", "one-sided Lipschitz constant of -grad f (negative: not contracting)",
            source="min f'' = -4 barrier / width^2"))
    return xr.Dataset(out)
