"""Normal modes of the lattice and its continuum, shared by the measurements and the predictions.

The Dataset (:mod:`.dataset`) measures in the lattice's normal modes (their wave vectors, the branch
projection, the slope of omega between collinear modes, the 1/f band and its log-log slope, the exact
continuum evolution as the reference of the convergence study); the theory (:mod:`.theory`) predicts in
the same terms. Both import them from here, so neither imports the other.

Sources (see docs/cortical_field.md): the lattice dispersion ``omega^2 = m^2 + 4 kappa (sin^2(k_x h/2) +
sin^2(k_y h/2))`` is that of the normal modes of the 5-point discrete Laplacian (e.g. Brillouin, *Wave
Propagation in Periodic Structures*, 1946, ch. 1; Cooray, Cooray & Friston 2023, arXiv:2308.10645, for
the Klein–Gordon reading); a packet's envelope moves at the group velocity ``d omega / d k``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.cortical_field.build import Setup


def lattice_s(kx: np.ndarray, ky: np.ndarray, h: float) -> np.ndarray:
    """``sin^2(k_x h/2) + sin^2(k_y h/2)``."""
    return np.sin(np.asarray(kx) * h / 2) ** 2 + np.sin(np.asarray(ky) * h / 2) ** 2


def lattice_omega(kx: np.ndarray, ky: np.ndarray, h: float, kappa: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Angular frequencies of the lattice modes, shape ``(F, n_modes)`` sorted per mode (branches).

    ``omega^2`` are the eigenvalues of ``M + 4 s(k) diag(kappa)``; NaN where they are not real and positive.
    """
    s = np.atleast_1d(lattice_s(kx, ky, h))
    out = np.full((len(kappa), len(s)), np.nan)
    for n, sv in enumerate(s):
        ev = np.linalg.eigvals(mass + 4.0 * sv * np.diag(kappa))
        real = np.all(np.abs(ev.imag) < 1e-9 * max(1.0, np.max(np.abs(ev))))
        ev = np.sort(ev.real) if real else np.full(len(kappa), np.nan)  # complex: no real dispersion branch
        out[:, n] = np.sqrt(np.where(ev > 0, ev, np.nan))
    return out


def group_velocity(kx: np.ndarray, ky: np.ndarray, h: float, kappa: float, omega: np.ndarray) -> np.ndarray:
    """``|grad_k omega| = kappa h |(sin(k_x h), sin(k_y h))| / omega`` of the scalar lattice field."""
    gx = kappa * h * np.sin(np.asarray(kx) * h) / omega
    gy = kappa * h * np.sin(np.asarray(ky) * h) / omega
    return np.hypot(gx, gy)


def mode_wavevector(setup: Setup, n: tuple[int, int]) -> tuple[float, float]:
    """Wave vector (rad/m) of integer mode ``n``: ``2 pi n / (N h)`` periodic, ``pi n / ((N+1) h)`` fixed."""
    if setup.periodic:
        return 2 * np.pi * n[0] / (setup.nx * setup.h), 2 * np.pi * n[1] / (setup.ny * setup.h)
    return np.pi * n[0] / ((setup.nx + 1) * setup.h), np.pi * n[1] / ((setup.ny + 1) * setup.h)


def packet_group_velocity(setup: Setup, n: int) -> float:
    """Lattice group velocity along x of mode number ``n``: ``kappa h sin(k h) / (2 omega)``."""
    kx, _ = mode_wavevector(setup, (n, 0))
    w = float(lattice_omega(np.array([kx]), np.array([0.0]), setup.h, setup.kappa, setup.mass)[0, 0])
    return float(group_velocity(kx, 0.0, setup.h, float(setup.kappa[0]), w))


def secant(omega: np.ndarray, kn: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Group velocity between two modes: ``(omega_b - omega_a) / (|k_b| - |k_a|)`` along the last axis."""
    return (omega[..., b] - omega[..., a]) / (kn[b] - kn[a])


def spectrum_band(omega0: float, gamma: float, kappa: float) -> tuple[float, float]:
    """Band of the 1/f law: ``[max(3 m, 3 gamma), sqrt(kappa) / 2]`` (rad/s), above the mass and the
    damping width, below where the lattice's density of states departs from the continuum's."""
    return max(3 * omega0, 3 * gamma), 0.5 * math.sqrt(kappa)


def loglog_slope(omega: np.ndarray, s: np.ndarray) -> float:
    """Least-squares slope of ``log s`` against ``log omega``."""
    ok = np.isfinite(s) & (s > 0)
    if ok.sum() < 3:
        return math.nan
    return float(np.polyfit(np.log(omega[ok]), np.log(s[ok]), 1)[0])


def continuum_solution(u0: np.ndarray, h: float, c: float, m: float, t: float) -> np.ndarray:
    """Exact Klein–Gordon evolution (periodic, zero initial velocity) of band-limited lattice data ``u0``."""
    ny, nx = u0.shape
    kx = 2 * np.pi * np.fft.fftfreq(nx, d=h)
    ky = 2 * np.pi * np.fft.fftfreq(ny, d=h)
    w = np.sqrt(m**2 + c**2 * (kx[None, :] ** 2 + ky[:, None] ** 2))
    return np.real(np.fft.ifft2(np.fft.fft2(u0) * np.cos(w * t)))
