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
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.families.sync_learners.losses import DOUBLE_WELL, LOGCOSH, LOGISTIC, LossSetup
from neurodyn.schema import var_attrs

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.sync_learners.build import SyncBuilt
    from neurodyn.families.sync_learners.params import SyncParams

SOURCE_NOTE = (
    "reconstructed from the abstract of Bouvrie & Slotine 2011 (Neural Comput. 23(11)) and "
    "stochastic contraction (Pham, Tabareau & Slotine 2009); checked numerically"
)


def _mode_sum(lam: np.ndarray, h: np.ndarray, k: float, dt: float | None) -> float:
    r = h[None, :] + k * lam[:, None]
    if dt is None:
        return float(np.sum(1.0 / (2.0 * r)))
    return float(np.sum(1.0 / (r * (2.0 - r * dt))))


def ou_spread(
    lam: np.ndarray, h: np.ndarray, k: float, sigma: float, rho: float = 0.0, dt: float | None = None
) -> float:
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
    """Exact stationary ``E||xbar - c||^2 = sigma^2 ((1 - rho)/n + rho) tr(H^-1) / 2`` (EM chain: ``dt``)."""
    return sigma**2 * ((1.0 - rho) / n + rho) * _mode_sum(np.zeros(1), np.asarray(h), 0.0, dt)


def em_inflation(r_max: float, dt: float) -> float:
    """Factor ``1 / (1 - r_max dt / 2)`` by which Euler-Maruyama inflates a stationary variance (or inf)."""
    x = 1.0 - 0.5 * r_max * dt
    return 1.0 / x if x > 0 else math.inf


def spread_bound(n: int, d: int, sigma: float, lam_f: float, lam2: float, k: float, rho: float = 0.0) -> float:
    """``(1 - rho) sigma^2 d (n - 1) / (2 (lambda_f + k lambda_2))``; NaN when the denominator is <= 0."""
    c = lam_f + k * lam2
    return (1.0 - rho) * sigma**2 * d * (n - 1) / (2.0 * c) if c > 0 else math.nan


def theory(built: SyncBuilt, ds: xr.Dataset) -> xr.Dataset:
    """Bounds and exact predictions for every (topology, n, k) of a run, from its built loss and stored spectra."""
    p, loss = built.params, built.loss
    rho, sigma, d = p.noise_correlation, p.sigma, p.d
    nt, nn, nk = ds.sizes["topology"], ds.sizes["n"], ds.sizes["k"]
    cube = ("topology", "n", "k")
    lam2 = ds["lambda_2"].values
    lam_max = ds["lambda_max"].values
    em_dt = built.run.dt if p.integrator == "euler_maruyama" else None
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
    em_note = (
        "; times the Euler-Maruyama inflation 1/(1 - (L + k lambda_max) dt / 2) (exact for quadratic "
        "losses, first order otherwise)"
        if em_dt is not None
        else ""
    )
    out = {
        "spread_bound": xr.DataArray(
            bound,
            dims=cube,
            attrs=var_attrs(
                "1",
                "steady-state spread bound",
                source="(1 - rho) sigma^2 d (n - 1) / (2 (lambda_f + k lambda_2)); NaN (undefined) where "
                f"lambda_f + k lambda_2 <= 0; lambda_f = {loss.lam_f:g}{em_note}; {SOURCE_NOTE}",
            ),
        ),
    }
    if "transient_rate" in ds and loss.is_quadratic:
        # Linear dynamics: the excess E[V](t) - E[V](inf) is a positive mix of exp(-2 (h_m + k lambda_j) t),
        # so its decay rate is at least 2 (lambda_f + k lambda_2) at every time.
        out["transient_rate_bound"] = xr.DataArray(
            rate,
            dims=cube,
            attrs=var_attrs(
                "s-1",
                "contraction rate of the spread (lower bound on its decay rate)",
                bound="lower",
                source=f"2 (lambda_f + k lambda_2): slowest spread mode of the linear system; {SOURCE_NOTE}",
            ),
        )
    elif "transient_rate" in ds:
        # Non-linear losses: Gronwall bounds E[V](t) by an envelope relaxing at this rate towards the *bound*,
        # which says nothing about the decay of the excess over the true steady state: stored, not compared.
        out["contraction_rate"] = xr.DataArray(
            rate,
            dims=cube,
            attrs=var_attrs(
                "s-1",
                "contraction rate 2 (lambda_f + k lambda_2) of the Gronwall envelope",
                source=f"E[V](t) <= B + (V(0) - B) exp(-2 (lambda_f + k lambda_2) t), B the spread bound; "
                f"{SOURCE_NOTE}",
            ),
        )
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
        which = (
            "stationary value of the Euler-Maruyama chain with this dt (1/(2 r) -> 1/(r (2 - r dt))); "
            if em_dt is not None
            else ""
        )
        nvec = np.asarray(p.n, dtype=float)[None, :, None]
        out["spread_theory"] = xr.DataArray(
            spread,
            dims=cube,
            attrs=var_attrs(
                "1",
                "exact OU steady-state spread",
                rel_tol=tol,
                source=f"{which}(1 - rho) sigma^2 / 2 sum_(j>=2) sum_m 1/(h_m + k lambda_j); {SOURCE_NOTE}",
            ),
        )
        out["centroid_error_theory"] = xr.DataArray(
            cerr,
            dims=cube,
            attrs=var_attrs(
                "1",
                "exact OU centroid error",
                rel_tol=tol,
                source=f"{which}sigma^2 ((1 - rho)/n + rho) tr(H^-1) / 2 (= d sigma^2 / (2 h n) for H = h I); "
                f"{SOURCE_NOTE}",
            ),
        )
        out["learner_error_theory"] = xr.DataArray(
            cerr + spread / nvec,
            dims=cube,
            attrs=var_attrs(
                "1", "exact OU mean learner error", rel_tol=tol, source=f"E||xbar - c||^2 + E[V]/n; {SOURCE_NOTE}"
            ),
        )
    if loss.kind_id == LOGISTIC and np.all(np.isfinite(loss.x_ref)):
        tr = float(np.trace(np.linalg.inv(loss.hess_ref)))
        nvec = np.asarray(p.n, dtype=float)
        lin = sigma**2 * ((1.0 - rho) / nvec + rho) * tr / 2.0
        cerr = np.broadcast_to(lin[None, :, None], (nt, nn, nk)).copy()
        # Uncoupled learners are each biased by the loss's asymmetry (E w_i != w*), and that bias does not
        # average out over n: the linearisation only describes a synchronised group.
        cerr[:, :, np.asarray(p.k) == 0] = np.nan
        out["centroid_error_theory"] = xr.DataArray(
            cerr,
            dims=cube,
            attrs=var_attrs(
                "1",
                "centroid error of coupled learners, small-noise linearisation around w*",
                rel_tol=0.25,
                source="sigma^2 ((1 - rho)/n + rho) tr(H(w*)^-1) / 2: a synchronised group moves like one "
                "particle with noise sigma/sqrt(n) near w* (valid for small sigma and small spread; "
                "NaN at k = 0, where each learner's own bias dominates)",
            ),
        )
        for which in ("learner", "centroid"):
            bayes = np.full((nt, nn, nk), loss.bayes_error)
            out[f"test_error_{which}_bound"] = xr.DataArray(
                bayes,
                dims=cube,
                attrs=var_attrs(
                    "1",
                    "Bayes error of the two-class problem",
                    bound="lower",
                    source="Phi(-separation/2): no classifier does better in expectation (finite test set: "
                    "sampling error ~ sqrt(e(1-e)/test_samples))",
                ),
            )
    if loss.kind_id in (LOGCOSH, DOUBLE_WELL) and rho == 0 and 0.0 in p.k and sigma > 0:
        out.update(_gibbs_k0(loss, p, (nt, nn, nk), cube))
    if loss.kind_id == DOUBLE_WELL and "switch_rate" in ds and sigma > 0:
        b, w = loss.lp
        single = double_well_switch_rate(b, w, sigma**2 / 2)
        rate_k0 = np.full((nt, nn, nk), np.nan)
        rate_k0[:, :, np.asarray(p.k) == 0] = single
        out["switch_rate_theory"] = xr.DataArray(
            rate_k0,
            dims=cube,
            attrs=var_attrs(
                "s-1",
                "well-to-well switch rate of an uncoupled learner",
                rel_tol=0.05,
                source="1 / T(-w -> +w), the exact mean first-passage time of dx = -f'(x) dt + sigma dW "
                "(1-D first-passage formula, e.g. Gardiner, Handbook of Stochastic Methods), "
                "D = sigma^2/2; exact at k = 0 (each "
                "coordinate of each learner is independent), NaN for k > 0; Kramers' asymptote is "
                "sqrt(f''(w) |f''(0)|)/(2 pi) exp(-barrier/D)",
            ),
        )
        nvec = np.asarray(p.n, dtype=float)
        sync = np.array([double_well_switch_rate(b, w, sigma**2 * ((1 - rho) / nn_ + rho) / 2) for nn_ in nvec])
        out["centroid_switch_rate_sync"] = xr.DataArray(
            np.broadcast_to(sync[None, :, None], (nt, nn, nk)).copy(),
            dims=cube,
            attrs=var_attrs(
                "s-1",
                "centroid switch rate in the synchronised limit (one particle, noise sigma/sqrt(n))",
                source="1 / T(-w -> +w) with D = sigma^2 ((1 - rho)/n + rho) / 2: the limit k lambda_2 >> "
                "4 barrier / width^2 where all learners move together; an estimate, not compared",
            ),
        )
    if loss.kind_id == DOUBLE_WELL:
        out["lambda_f"] = xr.DataArray(
            loss.lam_f,
            attrs=var_attrs(
                "s-1",
                "one-sided Lipschitz constant of -grad f (negative: not contracting)",
                source="min f'' = -4 barrier / width^2",
            ),
        )
    return xr.Dataset(out)


def double_well_switch_rate(barrier: float, width: float, diff: float, points: int = 200_001) -> float:
    """Exact rate of well-to-well switches of ``dx = -U'(x) dt + sqrt(2 D) dW``, ``U = B((x/w)^2 - 1)^2``.

    A switch is an arrival at the minimum opposite the last one reached, so switches form a renewal
    process with mean interval
    ``T(-w -> +w) = (1/D) int_{-w}^{w} e^{U(y)/D} int_{-inf}^{y} e^{-U(z)/D} dz dy``
    (mean first-passage time, reflecting at -inf). Evaluated by the trapezoidal rule with the barrier
    factor ``e^{B/D}`` taken out, so large barriers do not overflow.
    """
    from scipy.integrate import cumulative_trapezoid

    lo = -width * (1.0 + 3.0 * np.sqrt(diff / barrier) + 0.5)  # e^{-U/D} is negligible below this
    x = np.linspace(lo, width, points)
    u = barrier * ((x / width) ** 2 - 1.0) ** 2
    inner = cumulative_trapezoid(np.exp(-u / diff), x, initial=0.0)
    outer_integrand = np.exp((u - barrier) / diff) * inner
    sel = x >= -width
    t_scaled = np.trapezoid(outer_integrand[sel], x[sel]) / diff  # = T e^{-B/D}
    return float(np.exp(-barrier / diff) / t_scaled)


def gibbs_moments(loss: LossSetup, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-coordinate stationary moments of one uncoupled learner of a separable loss.

    The uncoupled dynamics ``dx = -f'(x) dt + sigma dW`` is a gradient flow with additive noise, so its
    stationary density is the Gibbs density ``p(x) ~ exp(-2 f(x) / sigma^2)`` (exact, not reconstructed);
    the moments come from adaptive quadrature.

    Returns
    -------
    mean, var, err : ndarray, shape (d,)
        ``E x_m``, ``Var x_m`` and the per-coordinate error ``E (x_m - c_m)^2`` (double well:
        ``E (|x_m| - w)^2``).
    """
    from scipy.integrate import quad

    d = loss.d
    mean, var, err = np.zeros(d), np.zeros(d), np.zeros(d)
    for m in range(d):
        if loss.kind_id == LOGCOSH:
            s_, mu = loss.lp
            c = loss.center[m]

            def f(x, s_=s_, mu=mu, c=c):
                u = (x - c) / s_
                # log cosh u = |u| + log1p(exp(-2|u|)) - log 2, stable for large |u|
                return s_**2 * (abs(u) + np.log1p(np.exp(-2 * abs(u))) - np.log(2)) + 0.5 * mu * (x - c) ** 2

            def e(x, c=c):
                return (x - c) ** 2

            width = s_ + sigma / np.sqrt(max(loss.lam_f, 1e-3))
            lo, hi = c - 40 * width, c + 40 * width
        else:
            b, w = loss.lp

            def f(x, b=b, w=w):
                return b * ((x / w) ** 2 - 1) ** 2

            def e(x, w=w):
                return (abs(x) - w) ** 2

            lo, hi = -w - 20 * (w + sigma), w + 20 * (w + sigma)
        pts = [loss.center[m]] if loss.kind_id == LOGCOSH else [-loss.lp[1], 0.0, loss.lp[1]]

        def weight(x, f=f):
            return np.exp(-2.0 * f(x) / sigma**2)

        z = quad(weight, lo, hi, points=pts, limit=200, epsabs=1e-12)[0]
        mean[m] = quad(lambda x: x * weight(x), lo, hi, points=pts, limit=200, epsabs=1e-12)[0] / z
        second = quad(lambda x: x * x * weight(x), lo, hi, points=pts, limit=200, epsabs=1e-12)[0] / z
        var[m] = second - mean[m] ** 2
        err[m] = quad(lambda x, e=e: e(x) * weight(x), lo, hi, points=pts, limit=200, epsabs=1e-12)[0] / z
    return mean, var, err


def _gibbs_k0(
    loss: LossSetup,
    p: SyncParams,
    shape: tuple[int, int, int],
    cube: tuple[str, ...],
) -> dict[str, xr.DataArray]:
    """Exact k = 0 predictions for separable non-quadratic losses (NaN at k != 0)."""
    mean, var, err = gibbs_moments(loss, p.sigma)
    spread = np.full(shape, np.nan)
    lerr = np.full(shape, np.nan)
    k0 = list(p.k).index(0.0)
    for ni, n in enumerate(p.n):
        spread[:, ni, k0] = (n - 1) * var.sum()  # iid learners: E sum_i ||x_i - xbar||^2 = (n - 1) tr Cov
        lerr[:, ni, k0] = err.sum()
    src = (
        "uncoupled learners (k = 0) are iid with the Gibbs density exp(-2 f / sigma^2) (gradient flow, "
        "additive noise; exact for the SDE, Euler-Maruyama adds O(dt)); moments by quadrature; "
        "NaN for k > 0"
    )
    out = {
        "spread_theory": xr.DataArray(
            spread,
            dims=cube,
            attrs=var_attrs(
                "1", "k = 0 steady-state spread (Gibbs)", rel_tol=0.02, source=f"(n - 1) sum_m Var x_m; {src}"
            ),
        ),
        "learner_error_theory": xr.DataArray(
            lerr,
            dims=cube,
            attrs=var_attrs("1", "k = 0 mean learner error (Gibbs)", rel_tol=0.02, source=f"sum_m E err(x_m); {src}"),
        ),
    }
    if loss.kind_id == LOGCOSH:
        cerr = np.full(shape, np.nan)
        for ni, n in enumerate(p.n):
            cerr[:, ni, k0] = var.sum() / n + ((mean - loss.center) ** 2).sum()
        out["centroid_error_theory"] = xr.DataArray(
            cerr,
            dims=cube,
            attrs=var_attrs("1", "k = 0 centroid error (Gibbs)", rel_tol=0.02, source=f"sum_m Var x_m / n; {src}"),
        )
    return out
