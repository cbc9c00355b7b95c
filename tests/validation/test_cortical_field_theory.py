"""cortical_field against theory: dispersion, pulse speed, Lorentzian/equipartition spectra, convergence,
invariance under the site model, coupled E/I branches. Each test runs a shipped scenario."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from neurodyn.runner import simulate


def test_dispersion_matches_lattice_formula_within_one_bin(shipped_scenario):
    ds = simulate(shipped_scenario("field_dispersion"))
    meas, pred = ds["dispersion_omega"].values, ds["dispersion_omega_theory"].values
    assert ds.sizes["mode"] >= 10
    assert np.all(np.abs(meas - pred) <= float(ds["frequency_bin"])), (meas - pred) / float(ds["frequency_bin"])
    # group velocity (slope of omega between collinear modes) and phase velocity follow
    gv, gt = ds["group_velocity"].values, ds["group_velocity_theory"].values
    assert ds.sizes["pair"] >= 5 and np.all(np.abs(gv / gt - 1) < 0.01)
    assert np.allclose(ds["phase_velocity"].values, ds["phase_velocity_theory"].values, rtol=1e-3)
    # the continuum formula is measurably wrong at the zone edge: the lattice formula is needed
    k = np.hypot(ds["k_x"].values, ds["k_y"].values)
    continuum = np.sqrt(31.4159**2 + 10000.0 * 1e-6 * k**2)
    assert np.max(np.abs(meas - continuum)) > 10 * float(ds["frequency_bin"])


def test_massless_pulse_moves_at_c_along_axes_and_diagonal(shipped_scenario):
    # one thread: the physics does not depend on it (see the determinism test) and a busy machine's
    # spinning OpenMP threads would only slow this run down
    ds = simulate(shipped_scenario("field_massless_pulse", "run.threads=1"))
    speed = ds["pulse_speed"].values
    assert list(ds["direction"].values) == ["x", "y", "diagonal"]
    assert np.all(np.abs(speed / 1.0 - 1) < 0.02), speed


def test_wave_packet_moves_at_group_velocity_and_massless_at_c(shipped_scenario):
    """m > 0: the packet's envelope moves at the lattice group velocity d omega/dk < c (dispersive);
    m = 0: at c (non-dispersive)."""
    ds = simulate(shipped_scenario("field_wave_packet"))
    v, vg = float(ds["packet_speed"]), float(ds["packet_speed_theory"])
    assert abs(v / vg - 1) < 0.01 and vg < 0.75
    ds0 = simulate(shipped_scenario("field_wave_packet", "params.continuum.m=0"))
    assert abs(float(ds0["packet_speed"]) - 1.0) < 0.01


@pytest.mark.slow
def test_noise_driven_mode_variances_and_local_spectrum(shipped_scenario):
    """Mode variances vs sigma^2 / (2 gamma omega_k^2): each within its two-sided 99.9% Student-t
    confidence interval from 20 batch means (Bonferroni over the 10 modes: family-wise level >= 99%).
    The local spectrum's log-log slope in the 1/f band matches the exact Lorentzian lattice sum
    (within 0.05) and the equipartition law -1 (within 0.1)."""
    ds = simulate(shipped_scenario("field_noise_spectrum"))
    var = ds["mode_variance"].values  # (batch, mode)
    nb = var.shape[0]
    mean = var.mean(axis=0)
    sem = var.std(axis=0, ddof=1) / np.sqrt(nb)
    t = stats.t.ppf(1 - 0.001 / 2, nb - 1)
    theory = ds["mode_variance_theory"].values
    z = (mean - theory) / sem
    assert ds.sizes["vmode"] >= 10
    assert np.all(np.abs(z) < t), z
    # the batch-mean spread is what the OU theory predicts: relative SEM ~ 1/sqrt(gamma T_batch)
    assert np.all(sem / theory < 0.1)
    slope = float(ds["spectrum_slope"])
    assert abs(slope - float(ds["spectrum_slope_theory"])) < 0.05
    assert abs(slope + 1.0) < 0.1
    # the mode spectra follow their Lorentzians near the peak (Welch relative error ~ 1/sqrt(segments))
    w = ds["omega"].values
    for m in range(ds.sizes["vmode"]):
        sim, lor = ds["mode_psd"].isel(vmode=m).values, ds["mode_psd_lorentzian"].isel(vmode=m).values
        band = (w > 20) & (w < 250)
        assert np.median(np.abs(np.log(sim[band] / lor[band]))) < 0.25


def test_fixed_boundary_noise_uses_sine_modes_and_site_resolved_spectrum(shipped_scenario):
    """Dirichlet lattice: DST-I mode variances match sigma^2/(2 gamma omega_k^2) (99.9% t intervals) and the
    probes' spectrum follows the exact site-resolved Lorentzian sum, whose slope departs from the bulk 1/f
    law because of the walls (so the site-averaged or bulk prediction would be wrong here)."""
    ds = simulate(
        shipped_scenario(
            "field_noise_spectrum",
            "params.boundary=fixed",
            "params.analysis.variance_modes=[[1, 1], [2, 1], [1, 3], [4, 3], [8, 8], [5, 1]]",
            "run.duration=10.5 s",
            "params.analysis.batches=10",
        )
    )
    var = ds["mode_variance"].values
    nb = var.shape[0]
    sem = var.std(axis=0, ddof=1) / np.sqrt(nb)
    z = (var.mean(axis=0) - ds["mode_variance_theory"].values) / sem
    assert np.all(np.abs(z) < stats.t.ppf(1 - 0.001 / 2, nb - 1)), z
    slope, exact = float(ds["spectrum_slope"]), float(ds["spectrum_slope_theory"])
    assert abs(slope - exact) < 0.08
    assert abs(exact + 1.0) > 0.2


def test_convergence_to_continuum_is_second_order_in_h(shipped_scenario):
    ds = simulate(shipped_scenario("field_convergence"))
    order = ds["convergence_order"].values
    assert np.all(np.abs(order - 2.0) < 0.1), order
    assert np.all(np.diff(ds["continuum_error"].values) < 0)


def test_site_models_with_same_linearisation_give_same_dispersion(shipped_scenario):
    ds = simulate(shipped_scenario("field_invariance"))
    d = ds["dispersion_omega"]
    binw = float(ds["frequency_bin"])
    assert list(ds["site_model"].values) == ["harmonic", "ei_linear", "wilson_cowan"]
    ref = d.sel(site_model="harmonic").values
    for m in ("ei_linear", "wilson_cowan"):
        assert np.max(np.abs(d.sel(site_model=m).values - ref)) < binw
    assert np.all(np.abs(d.values - ds["dispersion_omega_theory"].values) <= binw)


def test_coupled_ei_layers_have_two_branches_from_the_mass_matrix(shipped_scenario):
    ds = simulate(shipped_scenario("field_ei_layers"))
    meas, pred = ds["dispersion_omega"].values, ds["dispersion_omega_theory"].values
    assert meas.shape == (2, ds.sizes["mode"])
    assert np.all(np.abs(meas - pred) <= float(ds["frequency_bin"]))
    # the off-diagonal mass couples the layers: the uncoupled E-layer dispersion misses by many bins
    M = np.array([[3948.0, -2000.0], [-2000.0, 15791.0]])
    s = np.sin(ds["k_x"].values * 1e-3 / 2) ** 2 + np.sin(ds["k_y"].values * 1e-3 / 2) ** 2
    uncoupled_e = np.sqrt(M[0, 0] + 4 * 10000.0 * s)
    assert np.min(np.abs(meas[0] - uncoupled_e)) > 3 * float(ds["frequency_bin"])
    # ... and the energy of the coupled system stays within the leapfrog bound
    assert float(ds["energy_error_max"]) <= float(ds["energy_error_max_bound"])
