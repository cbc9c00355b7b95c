"""The special functions and the root polish of the LIF mean-field theory, against SciPy and exact roots."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from neurodyn.families.lif_network.theory import erfcx, newton, norm_sf


def test_erfcx_matches_scipy_within_a_few_ulps_where_scipy_is_exact() -> None:
    # for z >= -5 SciPy's erfcx is accurate to an ulp or two; below it, it multiplies by exp(z^2) with the
    # rounding error of z^2 (up to ~z^2 ulps), which ours avoids: there the two agree to SciPy's error
    z = np.linspace(-5.0, 26.0, 200_001)
    assert np.max(np.abs(erfcx(z) / special.erfcx(z) - 1.0)) < 16 * np.finfo(float).eps
    neg = np.linspace(-26.0, -5.0, 2001)
    assert np.max(np.abs(erfcx(neg) / special.erfcx(neg) - 1.0)) < 1e-13
    assert np.all(np.isinf(erfcx(np.array([-27.0, -40.0]))))
    assert erfcx(np.array([0.0]))[0] == 1.0


def test_norm_sf_is_the_normal_tail() -> None:
    for x in np.linspace(-8.0, 8.0, 161):
        assert norm_sf(x) == pytest.approx(special.ndtr(-x), rel=1e-13)


def test_newton_finds_an_exact_root_and_reports_a_singular_jacobian() -> None:
    # x^2 = 2, y^3 = 27 (coupled): root (sqrt 2, 3)
    def f(v: np.ndarray) -> np.ndarray:
        return np.array([v[0] ** 2 - 2.0 + 0.1 * (v[1] - 3.0), v[1] ** 3 - 27.0])

    x, ok = newton(f, np.array([1.3, 2.7]))
    assert ok
    assert x[0] == pytest.approx(math.sqrt(2.0), rel=1e-12)
    assert x[1] == pytest.approx(3.0, rel=1e-12)
    _, ok = newton(lambda v: np.array([1.0 + 0.0 * v[0]]), np.array([0.5]))
    assert not ok
