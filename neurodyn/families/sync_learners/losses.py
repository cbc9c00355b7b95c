"""Losses of the ``sync_learners`` family, packed into plain arrays for the Numba kernels.

===========  ==================================================  ===========  ==========================
kind         f(x)                                                lambda_f     Lipschitz L
===========  ==================================================  ===========  ==========================
quadratic    1/2 (x - c)^T H (x - c)                             min eig H    max eig H
logcosh      sum_m s^2 log cosh((x_m - c_m)/s) + mu/2 ||x - c||^2 mu           1 + mu
double_well  sum_m B ((x_m/w)^2 - 1)^2                           -4 B / w^2   unbounded
logistic     mean_i log(1 + exp(-y_i w.z_i)) + reg/2 ||w||^2     reg          max eig Z^TZ/(4m) + reg
===========  ==================================================  ===========  ==========================

``lambda_f`` is the largest number with ``(x - y).(grad f(x) - grad f(y)) >= lambda_f ||x - y||^2`` for all
x, y (the contraction rate of the uncoupled gradient flow; negative for the double well), which is all the
spread bound needs.

A module of its own beside :mod:`.build`: the catalogue of losses (their constants, the logistic data
and its minimiser) is what both the kernels (the loss codes, the arrays of :class:`LossSetup`) and the
theory (``lambda_f``, ``L``, the Hessians, the Bayes error) read, and it is tested alone against finite
differences and scikit-learn. :mod:`.build` makes the run's :class:`LossSetup` once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, ndtr

from neurodyn.families.sync_learners.params import (
    DoubleWell,
    LogCosh,
    Logistic,
    Quadratic,
    hessian_matrix,
    vector,
)

#: loss codes (:attr:`LossSetup.kind_id`, the kernels' :attr:`.kernels.Loss.kind`)
QUADRATIC, LOGCOSH, DOUBLE_WELL, LOGISTIC = 0, 1, 2, 3


@dataclass
class LossSetup:
    """A loss as arrays for the kernels plus the constants the theory needs.

    Attributes
    ----------
    kind_id : int
        :data:`QUADRATIC`, :data:`LOGCOSH`, :data:`DOUBLE_WELL` or :data:`LOGISTIC`.
    hess : ndarray, shape (d, d)
        Hessian of the quadratic loss (zeros otherwise).
    hess_diagonal : bool
        ``hess`` is diagonal (the kernel then skips the matrix product).
    center : ndarray, shape (d,)
        Centre ``c`` of quadratic / log-cosh losses.
    lp : ndarray
        Scalar parameters: logcosh ``[s, mu]``, double well ``[B, w]``, logistic ``[reg]``.
    z, y, z_test, y_test : ndarray
        Logistic training and test sets (empty otherwise).
    lam_f, lip : float
        Strong-convexity modulus (may be negative) and gradient Lipschitz constant (inf if unbounded).
    x_ref : ndarray, shape (d,)
        The minimiser errors are measured from (for the double well: the minimum ``(w, ..., w)``; errors
        there are measured to the nearest minimum).
    hess_ref : ndarray, shape (d, d)
        Hessian at ``x_ref`` (linearised centroid prediction).
    bayes_error : float
        Logistic only: the Bayes error ``Phi(-separation/2)``.
    """

    kind: str
    kind_id: int
    d: int
    hess: np.ndarray
    hess_diagonal: bool
    center: np.ndarray
    lp: np.ndarray
    lam_f: float
    lip: float
    x_ref: np.ndarray
    hess_ref: np.ndarray
    z: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    z_test: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))
    y_test: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bayes_error: float = math.nan
    optimum_test_error: float = math.nan

    @property
    def is_quadratic(self) -> bool:
        """Whether the exact Ornstein-Uhlenbeck predictions apply."""
        return self.kind_id == QUADRATIC


def two_class_data(loss: Logistic, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generate the two-class Gaussian training and test sets (deterministic in ``data_seed``).

    Returns
    -------
    z, y, z_test, y_test : ndarray
        Features ``(m, d)`` and labels in {-1, +1}.
    """
    rng = np.random.default_rng(loss.data_seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)

    def draw(m: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.choice(np.array([-1.0, 1.0]), size=m)
        z = y[:, None] * (0.5 * loss.separation) * u[None, :] + rng.standard_normal((m, d))
        return z, y

    z, y = draw(loss.samples)
    z_test, y_test = draw(loss.test_samples)
    return z, y, z_test, y_test


def logistic_loss_grad_hess(
    w: np.ndarray,
    z: np.ndarray,
    y: np.ndarray,
    reg: float,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Value, gradient and Hessian of the regularised logistic loss (NumPy; used outside the kernels)."""
    margin = y * (z @ w)
    value = float(np.mean(np.logaddexp(0.0, -margin)) + 0.5 * reg * w @ w)
    s = expit(-margin)
    grad = -(z * (y * s)[:, None]).mean(axis=0) + reg * w
    hess = (z * (s * (1 - s))[:, None]).T @ z / len(y) + reg * np.eye(len(w))
    return value, grad, hess


def logistic_minimiser(z: np.ndarray, y: np.ndarray, reg: float, iters: int = 100) -> np.ndarray:
    """Minimiser of the regularised logistic loss by damped Newton steps (NaN if it does not converge)."""
    w = np.zeros(z.shape[1])
    value, grad, hess = logistic_loss_grad_hess(w, z, y, reg)
    for _ in range(iters):
        step = np.linalg.solve(hess + 1e-12 * np.eye(len(w)), grad)
        t = 1.0
        while t > 1e-10:  # backtracking keeps Newton monotone far from the optimum
            new = logistic_loss_grad_hess(w - t * step, z, y, reg)
            if new[0] <= value - 1e-4 * t * grad @ step:
                break
            t *= 0.5
        w = w - t * step
        value, grad, hess = new
        if np.linalg.norm(grad) < 1e-12:
            return w
    return w if np.linalg.norm(grad) < 1e-8 else np.full_like(w, np.nan)


def test_error(w: np.ndarray, z: np.ndarray, y: np.ndarray) -> float:
    """Fraction of ``(z, y)`` misclassified by ``sign(w.z)``."""
    return float(np.mean(np.sign(z @ w) != y))


def make_loss(loss: Quadratic | LogCosh | DoubleWell | Logistic, d: int) -> LossSetup:
    """Pack a validated loss spec into a :class:`LossSetup`."""
    zeros = np.zeros((d, d))
    if isinstance(loss, Quadratic):
        hess = hessian_matrix(loss.hessian, d)
        eig = np.linalg.eigvalsh(hess)
        c = vector(loss.center, d)
        return LossSetup(
            "quadratic",
            QUADRATIC,
            d,
            hess,
            bool(np.all(hess == np.diag(np.diag(hess)))),
            c,
            np.zeros(1),
            float(eig[0]),
            float(eig[-1]),
            c.copy(),
            hess.copy(),
        )
    if isinstance(loss, LogCosh):
        c = vector(loss.center, d)
        return LossSetup(
            "logcosh",
            LOGCOSH,
            d,
            zeros,
            True,
            c,
            np.array([loss.scale, loss.mu]),
            float(loss.mu),
            1.0 + loss.mu,
            c.copy(),
            (1.0 + loss.mu) * np.eye(d),
        )
    if isinstance(loss, DoubleWell):
        b, w = loss.barrier, loss.width
        return LossSetup(
            "double_well",
            DOUBLE_WELL,
            d,
            zeros,
            True,
            np.zeros(d),
            np.array([b, w]),
            -4.0 * b / w**2,
            math.inf,
            np.full(d, w),
            8.0 * b / w**2 * np.eye(d),
        )
    z, y, zt, yt = two_class_data(loss, d)
    w_star = logistic_minimiser(z, y, loss.reg)
    _, _, h_ref = logistic_loss_grad_hess(np.nan_to_num(w_star), z, y, loss.reg)
    lip = float(np.linalg.eigvalsh(z.T @ z / (4 * len(y)))[-1] + loss.reg)
    return LossSetup(
        "logistic",
        LOGISTIC,
        d,
        zeros,
        True,
        np.zeros(d),
        np.array([loss.reg]),
        float(loss.reg),
        lip,
        w_star,
        h_ref,
        z=z,
        y=y,
        z_test=zt,
        y_test=yt,
        bayes_error=float(ndtr(-0.5 * loss.separation)),
        optimum_test_error=test_error(w_star, zt, yt),
    )
