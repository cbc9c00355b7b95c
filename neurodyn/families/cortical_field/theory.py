"""Closed-form predictions for the lattice and its continuum limit, beside the simulated quantities.

:func:`theory` returns them as ``*_theory`` / ``*_bound`` variables for a run; :func:`compare_rows` adds
the rows ``neurodyn compare`` checks beyond those. The lattice's normal modes (wave vectors, dispersion,
group velocity), which the measurements use too, are in :mod:`.modes`.

Sources (the paper's body was unavailable; these are standard results, see docs/cortical_field.md):

* lattice dispersion ``omega^2 = m^2 + 4 kappa (sin^2(k_x h/2) + sin^2(k_y h/2))``: normal modes of the
  5-point discrete Laplacian (e.g. Brillouin, *Wave Propagation in Periodic Structures*, 1946, ch. 1;
  Cooray, Cooray & Friston 2023, arXiv:2308.10645, for the Klein–Gordon reading);
* leapfrog's discrete dispersion ``sin(omega_dt dt / 2) = omega dt / 2`` (von Neumann analysis of
  Störmer–Verlet; Hairer, Lubich & Wanner 2003);
* stationary variance ``sigma^2 / (2 gamma omega_k^2)`` and Lorentzian spectrum
  ``S_k(omega) = sigma^2 / ((omega_k^2 - omega^2)^2 + gamma^2 omega^2)`` of a damped mode driven by
  white noise (Uhlenbeck & Ornstein 1930, Phys. Rev. 36:823; Gardiner, *Stochastic Methods*, sec. 4.5);
* equipartition over the 2D mode density ``N omega / (2 pi kappa)`` gives the local spectrum
  ``S(omega) = sigma^2 / (4 gamma kappa omega)`` for ``m, gamma << omega << 2 sqrt(kappa)`` (a 1/f law);
  integrating the Lorentzians exactly over the continuum adds the factor
  ``[1/2 + arctan((omega^2 - m^2)/(gamma omega)) / pi]``;
* modified energy of Störmer–Verlet on a linear system: ``H`` oscillates within a factor
  ``1 / (1 - (omega_max dt / 2)^2)`` of a conserved quadratic form (Hairer, Lubich & Wanner 2006,
  *Geometric Numerical Integration*, sec. I.5 and XIII.2).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.families.cortical_field.modes import (
    group_velocity,
    lattice_omega,
    lattice_s,
    loglog_slope,
    mode_wavevector,
    packet_group_velocity,
    secant,
    spectrum_band,
)
from neurodyn.rows import Row
from neurodyn.schema import var_attrs

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.cortical_field.build import CorticalBuilt


def damped_frequency(omega: np.ndarray, gamma: float) -> np.ndarray:
    """Oscillation frequency of a damped mode ``sqrt(omega^2 - gamma^2 / 4)``."""
    return np.sqrt(np.maximum(np.asarray(omega) ** 2 - gamma**2 / 4, 0.0))


def leapfrog_frequency(omega: np.ndarray, dt: float) -> np.ndarray:
    """Frequency the leapfrog scheme actually produces: ``(2/dt) arcsin(omega dt / 2)``."""
    return 2.0 / dt * np.arcsin(np.clip(np.asarray(omega) * dt / 2, -1, 1))


def lorentzian(omega: np.ndarray, omega_k: np.ndarray, gamma: float, sigma: float) -> np.ndarray:
    """Exact stationary spectrum ``S_k(omega) = sigma^2 / ((omega_k^2 - omega^2)^2 + gamma^2 omega^2)``.

    Two-sided in angular frequency: ``variance = int S dω / 2π``.
    """
    w = np.asarray(omega)[..., None]
    wk = np.atleast_1d(omega_k)
    return sigma**2 / ((wk**2 - w**2) ** 2 + gamma**2 * w**2)


def lorentzian_sampled(
    omega: np.ndarray, omega_k: np.ndarray, gamma: float, sigma: float, dt_sample: float, n_alias: int = 3
) -> np.ndarray:
    """The Lorentzian of a series sampled every ``dt_sample``.

    The aliases ``omega + 2 pi n / dt_sample`` are added.
    """
    ws = 2 * math.pi / dt_sample
    return sum(lorentzian(np.asarray(omega) + n * ws, omega_k, gamma, sigma) for n in range(-n_alias, n_alias + 1))


def mode_variance(omega_k: np.ndarray, gamma: float, sigma: float) -> np.ndarray:
    """Stationary variance of a unit-normalised mode: ``sigma^2 / (2 gamma omega_k^2)``."""
    return sigma**2 / (2 * gamma * np.asarray(omega_k) ** 2)


def all_mode_omegas(nx: int, ny: int, h: float, kappa: float, omega0: float, periodic: bool) -> np.ndarray:
    """Frequencies of every lattice mode (periodic: DFT modes; fixed: DST-I modes)."""
    if periodic:
        kx = 2 * np.pi * np.fft.fftfreq(nx, d=h)
        ky = 2 * np.pi * np.fft.fftfreq(ny, d=h)
    else:
        kx = np.pi * np.arange(1, nx + 1) / ((nx + 1) * h)
        ky = np.pi * np.arange(1, ny + 1) / ((ny + 1) * h)
    s = lattice_s(kx[None, :], ky[:, None], h)
    return np.sqrt(omega0**2 + 4 * kappa * s).ravel()


def mode_site_weights(nx: int, ny: int, sites: np.ndarray) -> np.ndarray:
    """Mean over ``sites`` (rows ``[ix, iy]``) of ``phi_k(site)^2`` for the orthonormal DST-I modes.

    Flattened like :func:`all_mode_omegas` (``ky`` slow, ``kx`` fast); on the torus every weight is 1/N.
    """
    n_x = np.arange(1, nx + 1)
    n_y = np.arange(1, ny + 1)
    px = 2.0 / (nx + 1) * np.sin(np.pi * np.outer(sites[:, 0] + 1, n_x) / (nx + 1)) ** 2  # (P, nx)
    py = 2.0 / (ny + 1) * np.sin(np.pi * np.outer(sites[:, 1] + 1, n_y) / (ny + 1)) ** 2  # (P, ny)
    return np.einsum("py,px->yx", py, px).ravel() / len(sites)


def local_spectrum(
    omega: np.ndarray, omegas: np.ndarray, gamma: float, sigma: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """Spectrum of the field at a site: ``sum_k phi_k(x)^2 S_k(omega)`` (exact for the linear lattice).

    ``weights`` are ``phi_k(x)^2`` (averaged over the probe sites); default ``1/N`` (the torus, or the
    site average).
    """
    if weights is None:
        weights = np.full(len(omegas), 1.0 / len(omegas))
    out = np.zeros(len(omega))
    step = 4096
    for i in range(0, len(omegas), step):
        out += lorentzian(omega, omegas[i : i + step], gamma, sigma) @ weights[i : i + step]
    return out


def equipartition_spectrum(omega: np.ndarray, gamma: float, sigma: float, kappa: float, m: float = 0.0) -> np.ndarray:
    """Local spectrum of the damped continuum field: Lorentzians integrated over the 2D mode density.

    ``S(omega) = sigma^2 / (4 pi gamma kappa omega) [pi/2 + arctan((omega^2 - m^2) / (gamma omega))]``,
    which tends to the equipartition 1/f law ``sigma^2 / (4 gamma kappa omega)`` for
    ``omega^2 - m^2 >> gamma omega``.
    """
    w = np.asarray(omega, dtype=float)
    return sigma**2 / (4 * np.pi * gamma * kappa * w) * (np.pi / 2 + np.arctan((w**2 - m**2) / (gamma * w)))


def energy_error_bound(omega_max: float, dt: float) -> float:
    """Bound on ``|H_n - H_0| / H_0`` for Störmer–Verlet on a linear lattice.

    ``x / (1 - x)`` with ``x = (omega_max dt / 2)^2``.
    """
    x = (omega_max * dt / 2) ** 2
    return x / (1 - x) if x < 1 else math.inf


# --------------------------------------------------------------------------- theory beside simulation


def theory(built: CorticalBuilt, ds: xr.Dataset) -> xr.Dataset:
    """Predictions for every measured quantity present in ``ds`` (``*_theory`` / ``*_bound`` variables)."""
    p = built.params
    setups = built.setups
    st0 = setups[0]
    out = xr.Dataset()
    disp_src = (
        "lattice dispersion omega^2 = eig(M + 4 (sin^2(k_x h/2) + sin^2(k_y h/2)) diag(kappa)); "
        "damped: sqrt(omega^2 - gamma^2/4) (free decay) or sqrt(omega^2 - gamma^2/2) (noise-driven peak); "
        "normal modes of the 5-point Laplacian (Brillouin 1946), "
        "Klein-Gordon reading after Cooray, Cooray & Friston 2023 (arXiv:2308.10645)"
    )
    if "dispersion_omega" in ds:
        modes = list(zip(ds["mode_nx"].values.tolist(), ds["mode_ny"].values.tolist()))
        per = []
        lf = []
        for st in setups:
            kk = np.array([mode_wavevector(st, m) for m in modes])
            w = lattice_omega(kk[:, 0], kk[:, 1], st.h, st.kappa, st.mass)  # (F, m)
            g = float(st.gamma[0])
            if g > 0 and st.sigma > 0:  # stationary, noise-driven: peak of the Lorentzian
                per.append(np.sqrt(np.maximum(w**2 - g**2 / 2, 0.0)))
            else:  # free decay of the initial condition
                per.append(damped_frequency(w, g) if g > 0 else w)
            lf.append(leapfrog_frequency(w, st.dt))
        arr = np.array(per)
        lfa = np.array(lf)
        dims = ds["dispersion_omega"].dims
        if "site_model" not in dims and "resolution" not in dims:
            arr, lfa = arr[0], lfa[0]
        if "branch" not in dims:
            arr, lfa = arr[..., 0, :], lfa[..., 0, :]
        binw = float(ds["frequency_bin"])
        finite = arr[np.isfinite(arr)]
        tol = binw / float(finite.min()) if finite.size else 0.05
        out["dispersion_omega_theory"] = (
            dims,
            arr,
            var_attrs(
                "rad/s",
                "lattice dispersion omega(k)",
                source=disp_src,
                rel_tol=tol,
                note="rel_tol is one frequency bin relative to the lowest predicted frequency",
            ),
        )
        out["dispersion_omega_leapfrog"] = (
            dims,
            lfa,
            var_attrs(
                "rad/s",
                "fully discrete leapfrog dispersion (2/dt) arcsin(omega dt/2)",
                source="von Neumann analysis of Stormer-Verlet (Hairer, Lubich & Wanner 2003)",
            ),
        )
        kn = np.hypot(ds["k_x"].values, ds["k_y"].values)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["phase_velocity_theory"] = (
                dims,
                arr / np.where(kn > 0, kn, np.nan),
                var_attrs("m/s", "phase velocity omega(k)/|k|", source=disp_src, rel_tol=tol),
            )
        if "group_velocity" in ds:
            a, b = ds["pair_from"].values, ds["pair_to"].values
            dw = np.abs(secant(arr, kn, a, b) * (kn[b] - kn[a]))
            out["group_velocity_theory"] = (
                ds["group_velocity"].dims,
                secant(arr, kn, a, b),
                var_attrs(
                    "m/s",
                    "group velocity: slope of the lattice dispersion between the same modes",
                    source=disp_src,
                    rel_tol=float(2 * binw / np.nanmin(dw)),
                    note="rel_tol: two frequency bins relative to the smallest frequency difference",
                ),
            )
        if st0.n_fields == 1:
            w0 = lattice_omega(ds["k_x"].values, ds["k_y"].values, st0.h, st0.kappa, st0.mass)[0]
            out["group_velocity_lattice"] = (
                "mode",
                group_velocity(ds["k_x"].values, ds["k_y"].values, st0.h, float(st0.kappa[0]), w0),
                var_attrs(
                    "m/s",
                    "lattice group velocity |d omega / d k| (< c unless m = 0 and k -> 0)",
                    source="gradient of the lattice dispersion relation",
                ),
            )
    if (
        "energy_error_max" in ds
        and st0.scheme in ("stormer", "baoab")
        and not (
            p.noise.sigma > 0
            or np.any(st0.gamma > 0)
            or built.variants[0].sponge.any()
            or len(p.sources)
            or not np.allclose(st0.mass, st0.mass.T)
        )
    ):
        out["energy_error_max_bound"] = (
            (),
            energy_error_bound(st0.omega_max(), st0.dt),
            var_attrs(
                "1",
                "bound x/(1-x), x = (omega_max dt/2)^2, on |H_n - H_0|/H_0 for Stormer-Verlet",
                source="modified (shadow) energy of Stormer-Verlet on a linear system; "
                "Hairer, Lubich & Wanner, "
                "Geometric Numerical Integration (2006), sec. I.5, XIII.2",
            ),
        )
    if "mode_variance" in ds:
        g = float(st0.gamma[0])
        modes = list(zip(ds["vmode_nx"].values.tolist(), ds["vmode_ny"].values.tolist()))
        kk = np.array([mode_wavevector(st0, m) for m in modes])
        wk = lattice_omega(kk[:, 0], kk[:, 1], st0.h, st0.kappa, st0.mass)[0]
        out["mode_variance_theory"] = (
            "vmode",
            mode_variance(wk, g, st0.sigma),
            var_attrs(
                "1",
                "exact stationary mode variance sigma^2 / (2 gamma omega_k^2)",
                rel_tol=0.01,
                source="Ornstein-Uhlenbeck stationary variance of a damped mode (Uhlenbeck & Ornstein 1930); "
                "BAOAB samples it exactly for linear forces (Leimkuhler & Matthews 2013)",
            ),
        )
        dts = float(ds["mode_psd"].attrs["sample_interval"])
        out["mode_psd_lorentzian"] = (
            ("vmode", "omega"),
            lorentzian_sampled(ds["omega"].values, wk, g, st0.sigma, dts).T,
            var_attrs(
                "s",
                "exact Lorentzian sigma^2/((omega_k^2-omega^2)^2+gamma^2 omega^2), aliases of the sampling added",
                source="stationary spectrum of a white-noise-driven damped oscillator "
                "(Gardiner, Stochastic Methods, "
                "sec. 4.5)",
            ),
        )
    if "local_psd" in ds:
        g = float(st0.gamma[0])
        w = ds["omega_local"].values
        om = all_mode_omegas(st0.nx, st0.ny, st0.h, float(st0.kappa[0]), st0.omega0, st0.periodic)
        weights = None
        if not st0.periodic:  # Dirichlet modes weigh differently at each probe site
            sites = np.array(ds["local_psd"].attrs["probe_sites"], dtype=int).reshape(-1, 2)
            weights = mode_site_weights(st0.nx, st0.ny, sites)
        exact = local_spectrum(w, om, g, st0.sigma, weights)
        out["local_psd_lattice_sum"] = (
            "omega_local",
            exact,
            var_attrs(
                "s",
                "exact local spectrum at the probes: mean_p sum_k phi_k(x_p)^2 S_k(omega) (1/N weights on the torus)",
                source="sum of the modes' Lorentzians",
            ),
        )
        # the continuum law and its band need spatial coupling (kappa > 0): without it there is no
        # continuum field, only independent sites, whose spectrum is the lattice sum above
        if float(st0.kappa[0]) > 0:
            out["local_psd_equipartition"] = (
                "omega_local",
                equipartition_spectrum(w, g, st0.sigma, float(st0.kappa[0]), st0.omega0),
                var_attrs(
                    "s",
                    "continuum equipartition spectrum sigma^2/(4 pi gamma kappa omega) "
                    "[pi/2 + arctan((omega^2-m^2)/"
                    "(gamma omega))] -> 1/f law",
                    source="Lorentzians integrated over the 2D mode density N omega/(2 pi kappa); "
                    "Cooray, Cooray & Friston 2023",
                ),
            )
            lo, hi = spectrum_band(st0.omega0, g, float(st0.kappa[0]))
            band = (w >= lo) & (w <= hi)
            out["spectrum_slope_theory"] = (
                (),
                loglog_slope(w[band], exact[band]),
                var_attrs(
                    "1",
                    "log-log slope of the exact local spectrum in the same band",
                    rel_tol=0.05,
                    source="least-squares slope of (1/N) sum_k S_k(omega); the equipartition law predicts -1",
                    equipartition_slope=-1.0,
                ),
            )
    if "packet_speed" in ds:
        vg = packet_group_velocity(st0, p.initial.mode[0])
        out["packet_speed_theory"] = (
            (),
            vg,
            var_attrs(
                "m/s",
                "lattice group velocity kappa h sin(k0 h) / (2 omega(k0)) of the packet's carrier",
                rel_tol=0.02,
                source="stationary phase: a packet's envelope moves at d omega / d k (Brillouin 1946); "
                "< c for m > 0 (dispersive field)",
                wave_speed=float(st0.wave_speed()),
            ),
        )
    if "pulse_speed" in ds:
        c = p.continuum.c if p.continuum is not None else st0.wave_speed()
        out["pulse_speed_theory"] = (
            "direction",
            np.full(3, c),
            var_attrs(
                "m/s",
                "wave speed c = h sqrt(kappa) of the massless field",
                rel_tol=0.02,
                source="massless Klein-Gordon (wave) equation: non-dispersive, every direction at c",
            ),
        )
    if "convergence_order" in ds:
        order = np.full(ds.sizes["refinement"], 2.0)
        out["convergence_order_theory"] = (
            "refinement",
            order,
            var_attrs(
                "1",
                "second-order convergence (5-point Laplacian O(h^2), leapfrog O(dt^2) with dt ~ h)",
                rel_tol=0.1,
                source="truncation error of the centred second differences in space and time",
            ),
        )
    return out


def compare_rows(ds: xr.Dataset) -> list[Row]:
    """Rows beyond the ``_theory``/``_bound`` pairs: the 1/f law, and the invariance under the site model."""
    rows = []
    if "spectrum_slope" in ds:
        rows.append(
            Row(
                quantity="spectrum_slope (equipartition 1/f)",
                simulated=float(ds["spectrum_slope"]),
                predicted=-1.0,
                rel_tol=0.1,
                source="equipartition over the 2D mode density (Cooray, Cooray & Friston 2023)",
            )
        )
    if "dispersion_omega" in ds and "site_model" in ds["dispersion_omega"].dims:
        d = ds["dispersion_omega"]
        ref = d.isel(site_model=0)
        binw = float(ds["frequency_bin"])
        for m in ds["site_model"].values[1:]:
            diff = float(np.nanmax(np.abs(d.sel(site_model=m) - ref))) / binw
            rows.append(
                Row(
                    quantity="invariance |omega - omega_ref| / bin",
                    simulated=diff,
                    predicted=1.0,
                    kind="upper_bound",
                    where=f"{m} vs {ref['site_model'].item()}",
                    source="same linearisation -> same Klein-Gordon field (Cooray et al. 2023)",
                )
            )
    return rows
