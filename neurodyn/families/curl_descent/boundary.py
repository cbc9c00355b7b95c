"""Large-N phase boundary of curl descent from free probability (our reconstruction, docs/curl_descent.md).

The teacher point is stable iff ``K`` is positive definite. With ``W1`` of shape (N, M), i.i.d. entries of
variance 1/M, ``rho = |w2|^2 = 1`` and a fraction ``alpha`` of -1 entries in one flip matrix:

``hidden``
    ``K = D1 + W1^T W1`` (D2 = I). ``W1^T W1`` is a Wishart matrix with R-transform ``1/(c (1 - w))``
    (c = M/N), free from D1, so ``G^-1(w) = 1/(c (1 - w)) + zeta(w)``, where ``zeta = G_D1^-1(w)`` solves
    ``w = (1 - alpha)/(zeta - 1) + alpha/(zeta + 1)``.
``readout``
    ``K = I + W1^T D2 W1`` (D1 = I), a compound free Poisson matrix:
    ``G^-1(w) = 1/w + 1 + [(1 - alpha)/(1 - w) - alpha/(1 + w)] / c``.

Below the spectrum G is real and decreasing, from 0- at z = -inf to its value at the lower edge, so the
lower edge is the first stationary value of ``G^-1`` met when w goes down from 0-. For the hidden case the
stationary points are found in the variable ``zeta`` (``dw/dzeta < 0`` never vanishes, and w in (-inf, 0)
is zeta in (-inf, -1)), which turns both conditions into quartic polynomials whose real roots are exact
up to roundoff: no grid, no starting guess. The density ``|Im G| / pi`` comes from the cubic that
``G^-1(G) = z`` becomes once its denominators are cleared.

The critical fraction ``alpha*(c)`` is where the lower edge crosses 0; the edge falls with alpha (one more
flip lowers K in the Loewner order), so a bracketing root find is safe.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

LAYERS = ("hidden", "readout")
#: below this flipped fraction the critical fraction is reported as 0 (the edge at 0+ is already negative)
ALPHA_FLOOR = 1e-9
#: hidden flips never destabilise for c <= 1/(1 + sqrt(rho))^2 (closed form at alpha = 1)
HIDDEN_STABLE_C = 0.25
#: any nonzero hidden fraction destabilises for c >= 2/(2 rho + 1) (closed form at alpha -> 0+)
HIDDEN_UNSTABLE_C = 2.0 / 3.0
#: a root of a real polynomial counts as real when its imaginary part is below this (relative)
_IMAG_TOL = 1e-7


def _check(layer: str, c: float, alpha: float) -> None:
    if layer not in LAYERS:
        raise ValueError(f"layer = {layer!r}: one of {LAYERS}")
    if not c > 0:
        raise ValueError(f"c = {c!r}: > 0")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha = {alpha!r}: in [0, 1]")


def _real_roots(poly: np.polynomial.Polynomial, lo: float, hi: float) -> np.ndarray:
    """Real roots of ``poly`` in the open interval (lo, hi), sorted, each polished by two Newton steps."""
    roots = poly.roots()
    x = roots.real[np.abs(roots.imag) <= _IMAG_TOL * (1.0 + np.abs(roots))]
    d = poly.deriv()
    for _ in range(2):  # np.roots works through a companion matrix; Newton restores full precision
        slope = d(x)
        x = np.where(slope != 0, x - poly(x) / np.where(slope != 0, slope, 1.0), x)
    return np.sort(x[(x > lo) & (x < hi)])


def _wishart_edge(c: float) -> float:
    """Lower edge of ``W1^T W1`` (Marchenko-Pastur scaled by 1/c); 0, an atom, when M > N."""
    return (1.0 / math.sqrt(c) - 1.0) ** 2 if c < 1 else 0.0


def lower_edge(layer: str, c: float, alpha: float) -> float:
    """Large-N lower spectral edge of K for flips in ``layer``.

    Parameters
    ----------
    layer
        ``"hidden"`` (a fraction ``alpha`` of D1 is -1, D2 = I) or ``"readout"`` (of D2, D1 = I).
    c
        Compression ratio M/N.
    alpha
        Flipped fraction in [0, 1].

    Returns
    -------
    float
        The smallest point of the limiting spectrum of K (an atom if there is one below the continuum).
    """
    _check(layer, c, alpha)
    P = np.polynomial.Polynomial
    if layer == "hidden":
        if alpha in (0.0, 1.0):  # D1 = +-I: a shifted Wishart matrix
            return (1.0 if alpha == 0.0 else -1.0) + _wishart_edge(c)
        # dz/dzeta = 0  <=>  c (zeta^2 - zeta - 2 + 2 alpha)^2 = (1 - alpha)(zeta + 1)^2 + alpha (zeta - 1)^2
        q = P([-2.0 + 2.0 * alpha, -1.0, 1.0])
        poly = c * q * q - (1.0 - alpha) * P([1.0, 1.0]) ** 2 - alpha * P([-1.0, 1.0]) ** 2
        roots = _real_roots(poly, -math.inf, -1.0)
        if roots.size == 0:
            # no stationary point: G -> -inf at z -> -1, the exact eigenvalue -rho (for c > 1, alpha > 1/c,
            # the kernel of W1^T W1 meets the flipped inputs)
            return -1.0
        zeta = roots[0]  # the first one met from zeta = -inf (w = 0-)
        w = (1.0 - alpha) / (zeta - 1.0) + alpha / (zeta + 1.0)
        return float(zeta + 1.0 / (c * (1.0 - w)))
    if alpha == 0.0:  # K = I + W1^T W1
        return 1.0 + _wishart_edge(c)
    if alpha == 1.0:  # K = I - W1^T W1: the upper Marchenko-Pastur edge, reflected
        return 1.0 - (1.0 / math.sqrt(c) + 1.0) ** 2
    # dz/dw = 0  <=>  c (1 - w)^2 (1 + w)^2 = w^2 [(1 - alpha)(1 + w)^2 + alpha (1 - w)^2], w in (-1, 0)
    # (z -> -inf at both ends of that interval, so a root always exists)
    plus, minus, w = P([1.0, 1.0]), P([-1.0, 1.0]), P([0.0, 1.0])
    poly = c * minus**2 * plus**2 - w**2 * ((1.0 - alpha) * plus**2 + alpha * minus**2)
    root = _real_roots(poly, -1.0, 0.0)[-1]  # the first one met from w = 0-
    return float(1.0 / root + 1.0 + ((1.0 - alpha) / (1.0 - root) - alpha / (1.0 + root)) / c)


def critical_alpha(layer: str, c: float) -> float:
    """Large-N critical flipped fraction: where the lower edge of K crosses 0.

    Returns 1 if K stays positive semi-definite for every fraction, 0 if any nonzero fraction (above
    :data:`ALPHA_FLOOR`) makes it indefinite.
    """
    _check(layer, c, 0.0)
    if layer == "hidden":
        # closed-form ends: alpha = 1 gives (1/sqrt(c) - 1)^2 - 1 >= 0 iff c <= 1/4; the boundary reaches
        # alpha = 0 at c = 2/3, beyond which the minority of flipped inputs already gives a negative edge
        if c <= HIDDEN_STABLE_C:
            return 1.0
        if c >= HIDDEN_UNSTABLE_C:
            return 0.0
    elif lower_edge(layer, c, 1.0) >= 0:  # pragma: no cover - the readout edge at alpha = 1 is negative
        return 1.0
    if lower_edge(layer, c, ALPHA_FLOOR) < 0:
        return 0.0
    return float(brentq(lambda a: lower_edge(layer, c, a), ALPHA_FLOOR, 1.0, xtol=1e-13, rtol=1e-13))


def density(layer: str, c: float, alpha: float, z: float) -> float:
    """Large-N spectral density ``|Im G(z)| / pi`` of K at the real point ``z`` (atoms not included).

    ``G`` solves a cubic with real coefficients; inside the spectrum two of its roots are a complex
    conjugate pair, whose imaginary part is the density, and outside all three are real.
    """
    _check(layer, c, alpha)
    a = 1.0 - 2.0 * alpha
    if layer == "hidden":  # in u = 1 - G
        coeffs = [
            -(c**2) * (z * z - 1.0),
            c**2 * (z * z - 1.0) + 2.0 * c * z - c**2 * z - a * c**2,
            c - 1.0 - 2.0 * c * z,
            1.0,
        ]
    else:  # in G
        coeffs = [-c * (z - 1.0), c - 1.0, c * (z - 1.0) - a, -c]
    roots = np.roots(coeffs)
    return float(np.max(np.abs(roots.imag)) / math.pi)
