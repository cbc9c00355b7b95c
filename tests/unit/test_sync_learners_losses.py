"""Losses of sync_learners: the kernel gradients against finite differences, the logistic minimiser
against scikit-learn, and the constants the bound uses."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from neurodyn.families.sync_learners import kernels
from neurodyn.families.sync_learners.losses import logistic_loss_grad_hess, make_loss
from neurodyn.families.sync_learners.params import DoubleWell, LogCosh, Logistic, Quadratic


def _value(setup, x):
    """Loss value in NumPy (for finite differences of the kernel's gradient)."""
    if setup.kind == "quadratic":
        u = x - setup.center
        return 0.5 * u @ setup.hess @ u
    if setup.kind == "logcosh":
        s, mu = setup.lp
        u = x - setup.center
        return np.sum(s**2 * np.log(np.cosh(u / s))) + 0.5 * mu * u @ u
    if setup.kind == "double_well":
        b, w = setup.lp
        return np.sum(b * ((x / w) ** 2 - 1) ** 2)
    return logistic_loss_grad_hess(x, setup.z, setup.y, setup.lp[0])[0]


@pytest.mark.parametrize(
    "loss",
    [
        Quadratic(hessian=[[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]], center=[1.0, 0.0, -1.0]),
        LogCosh(kind="logcosh", scale=0.7, mu=0.2, center=0.3),
        DoubleWell(kind="double_well", barrier=0.8, width=1.3),
        Logistic(kind="logistic", samples=50, test_samples=10, reg=0.1),
    ],
)
def test_kernel_gradient_matches_finite_differences(loss):
    setup = make_loss(loss, 3)
    rng = np.random.default_rng(0)
    z = setup.z if setup.kind == "logistic" else np.zeros((0, 3))
    y = setup.y if setup.kind == "logistic" else np.zeros(0)
    for _ in range(3):
        x = rng.standard_normal(3) * 1.5
        g = np.empty(3)
        kernels._grad(setup.kind_id, x, g, setup.hess, setup.hess_diagonal, setup.center, setup.lp, z, y)
        eps = 1e-6
        fd = np.array([(_value(setup, x + eps * e) - _value(setup, x - eps * e)) / (2 * eps) for e in np.eye(3)])
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_logistic_minimiser_matches_scikit_learn():
    """Same data, same objective: sklearn's C = 1 / (reg m), no intercept."""
    loss = Logistic(kind="logistic", samples=300, test_samples=4000, separation=2.5, reg=0.02, data_seed=4)
    setup = make_loss(loss, 4)
    clf = LogisticRegression(C=1.0 / (loss.reg * loss.samples), fit_intercept=False, tol=1e-12, max_iter=10_000)
    clf.fit(setup.z, setup.y)
    np.testing.assert_allclose(setup.x_ref, clf.coef_.ravel(), rtol=1e-5, atol=1e-7)
    assert np.linalg.norm(logistic_loss_grad_hess(setup.x_ref, setup.z, setup.y, loss.reg)[1]) < 1e-10
    # the Bayes rule's error is Phi(-separation/2); the fitted w* cannot beat it by more than sampling error
    assert setup.bayes_error == pytest.approx(0.10565, abs=1e-4)
    assert setup.optimum_test_error > setup.bayes_error - 3 * np.sqrt(0.1 * 0.9 / 4000)
    # lambda_f and L bracket the Hessian at w*
    eig = np.linalg.eigvalsh(setup.hess_ref)
    assert setup.lam_f <= eig[0] and eig[-1] <= setup.lip


def test_strong_convexity_constants():
    assert make_loss(Quadratic(hessian=[0.5, 2.0]), 2).lam_f == 0.5
    assert make_loss(LogCosh(kind="logcosh", mu=0.3), 2).lam_f == 0.3
    assert make_loss(LogCosh(kind="logcosh", mu=0.3), 2).lip == pytest.approx(1.3)
    assert make_loss(DoubleWell(kind="double_well", barrier=2.0, width=2.0), 1).lam_f == pytest.approx(-2.0)
