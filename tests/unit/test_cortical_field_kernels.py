"""Unit tests of the cortical_field kernels: energy conservation, determinism, sources, boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.families.cortical_field import modes as M
from neurodyn.families.cortical_field import theory as T
from neurodyn.runner import simulate

LATTICE = {
    "lattice": {"nx": 32, "ny": 32, "h": "1e-3 m"},
    "omega0": 31.4159,
    "kappa": 10000.0,
    "initial": {"kind": "random", "amplitude": 1.0},
}


def test_energy_error_bounded_without_drift_and_scales_as_dt_squared(make_scenario):
    """Undamped, no input: over 1e5 steps the relative energy error stays below the Störmer–Verlet
    shadow-energy bound, does not drift, and halves dt -> error / 4."""
    errs = {}
    for dt, steps in ((1e-3, 100_000), (5e-4, 40_000)):
        ds = simulate(
            make_scenario(
                "cortical_field",
                LATTICE,
                {"duration": f"{steps * dt!r} s", "dt": f"{dt!r} s", "seed": 7},
                {"energy": {}},
            )
        )
        rel = ds["energy_rel_error"].values
        assert len(rel) == steps
        bound = T.energy_error_bound(float(np.sqrt(31.4159**2 + 8 * 10000.0)), dt)
        assert np.max(np.abs(rel)) <= bound
        # no secular drift: the mean error of the last tenth equals that of the first tenth
        assert abs(float(ds["energy_drift"])) < 0.05 * np.max(np.abs(rel))
        # compare the two step sizes over the same 20 s of trajectory
        errs[dt] = np.max(np.abs(rel[: int(round(20.0 / dt))]))
    ratio = errs[1e-3] / errs[5e-4]
    assert 3.6 < ratio < 4.4, ratio


def test_same_seed_is_bitwise_identical_and_threads_do_not_change_results(make_scenario):
    from neurodyn.families.cortical_field.engine import PARALLEL_MIN_SITES

    assert 256 * 256 >= PARALLEL_MIN_SITES  # with threads: 2 this lattice takes the prange path
    params = {
        "lattice": {"nx": 256, "ny": 256},
        "omega0": 20.0,
        "kappa": 40000.0,
        "gamma": 5.0,
        "noise": {"sigma": 1.0},
    }
    run = {"duration": "0.05 s", "dt": "1e-3 s", "seed": 11}
    rec = {"snapshots": {"every": "0.01 s"}, "energy": {}}
    a = simulate(make_scenario("cortical_field", params, {**run, "threads": 1}, rec))
    b = simulate(make_scenario("cortical_field", params, {**run, "threads": 1}, rec))
    c = simulate(make_scenario("cortical_field", params, {**run, "threads": 2}, rec))
    assert np.array_equal(a["u"].values, b["u"].values)
    assert np.array_equal(a["u"].values, c["u"].values)
    assert np.array_equal(a["energy"].values, c["energy"].values)
    d = simulate(make_scenario("cortical_field", params, {**run, "seed": 12}, rec))
    assert not np.array_equal(a["u"].values, d["u"].values)


@pytest.mark.parametrize("kind", ["point", "gaussian"])
def test_constant_source_reaches_the_exact_static_response(kind, make_scenario):
    """Damped massive lattice driven by a constant source settles at (omega0^2 - kappa lap) u = J,
    solved exactly by FFT on the torus."""
    n, h = 24, 1e-3
    src = {"kind": kind, "x": "10e-3 m", "y": "7e-3 m", "amplitude": 500.0}
    if kind == "gaussian":
        src["width"] = "2e-3 m"
    params = {
        "lattice": {"nx": n, "ny": n, "h": f"{h} m"},
        "omega0": 30.0,
        "kappa": 2000.0,
        "gamma": 40.0,
        "sources": [src],
    }
    ds = simulate(
        make_scenario(
            "cortical_field", params, {"duration": "3.0 s", "dt": "1e-3 s"}, {"snapshots": {"every": "0.1 s"}}
        )
    )
    u = ds["u"].isel(time=-1).values
    ix, iy = np.arange(n), np.arange(n)
    if kind == "point":
        J = np.zeros((n, n))
        J[7, 10] = 500.0
    else:
        J = 500.0 * np.exp(-((ix[None, :] - 10) ** 2 + (iy[:, None] - 7) ** 2) / (2 * 2.0**2))
    k = 2 * np.pi * np.fft.fftfreq(n)
    sym = 30.0**2 + 4 * 2000.0 * (np.sin(k[None, :] / 2) ** 2 + np.sin(k[:, None] / 2) ** 2)
    exact = np.real(np.fft.ifft2(np.fft.fft2(J) / sym))
    assert np.max(np.abs(u - exact)) < 1e-6 * np.max(np.abs(exact))


def test_moving_source_response_follows_the_source(make_scenario):
    """A Gaussian source moving at v along x on an overdamped lattice: the field's peak tracks x0 + v t."""
    params = {
        "lattice": {"nx": 80, "ny": 20, "h": "1e-3 m"},
        "omega0": 60.0,
        "kappa": 1000.0,
        "gamma": 200.0,
        "boundary": "fixed",
        "sources": [
            {
                "kind": "moving",
                "x": "10e-3 m",
                "y": "10e-3 m",
                "width": "2e-3 m",
                "velocity": [0.1, 0.0],
                "amplitude": 100.0,
            }
        ],
    }
    ds = simulate(
        make_scenario(
            "cortical_field", params, {"duration": "0.5 s", "dt": "1e-3 s"}, {"snapshots": {"every": "0.1 s"}}
        )
    )
    # steady travelling response lags the source by a constant; peak positions advance by v * 0.1 s
    peaks = [float(ds["x"][int(np.argmax(ds["u"].isel(time=k, y=10).values))]) for k in (2, 3, 4)]
    assert np.allclose(np.diff(peaks), 0.1 * 0.1, atol=1.01e-3)


def test_absorbing_sponge_removes_an_outgoing_pulse(make_scenario):
    """A massless pulse on an absorbing lattice: after it has crossed the domain twice, < 1% of the
    energy is left (a fixed boundary would keep all of it)."""
    base = {
        "continuum": {"c": 1.0, "size": ["0.1 m", "0.1 m"], "h": "1e-3 m", "courant": 0.5},
        "initial": {"kind": "gaussian", "width": "4e-3 m"},
    }
    left = {}
    for boundary in ("absorbing", "fixed"):
        ds = simulate(
            make_scenario(
                "cortical_field",
                {**base, "boundary": boundary},
                {"duration": "0.2 s", "dt": "5e-4 s"},
                {"energy": {"every": "0.01 s"}},
            )
        )
        e = ds["energy"].values
        left[boundary] = e[-1] / e[0]
    assert left["absorbing"] < 0.01
    assert left["fixed"] > 0.95


def test_ei_pair_equals_harmonic_oscillator_under_rk4(make_scenario):
    """With w_ee = 1 (a = 0) the E–I pair starts at rest like the oscillator, and RK4 commutes with the
    linear change of variables (e, i) -> (u, v = -b i): both runs give the same field to rounding."""
    tau_e, tau_i, w_ei, w_ie, w_ii = 0.01, 0.02, 2.0, 3.0, 0.5
    b, c, d = w_ei / tau_e, w_ie / tau_i, (1 + w_ii) / tau_i
    common = {
        "lattice": {"nx": 16, "ny": 16},
        "kappa": 5000.0,
        "initial": {"kind": "random"},
        "integrator": "rk4",
        "boundary": "fixed",
        "sources": [
            {
                "kind": "point",
                "x": "5e-3 m",
                "y": "7e-3 m",
                "amplitude": 50.0,
                "time_course": {"kind": "sine", "frequency": "12 Hz"},
            }
        ],
    }
    run = {"duration": "0.3 s", "dt": "5e-4 s", "seed": 5}
    rec = {"snapshots": {"every": "0.05 s"}, "energy": {"every": "0.05 s"}}
    ei = simulate(
        make_scenario(
            "cortical_field",
            {
                **common,
                "site_model": "ei_linear",
                "ei": {
                    "tau_e": f"{tau_e} s",
                    "tau_i": f"{tau_i} s",
                    "w_ee": 1.0,
                    "w_ei": w_ei,
                    "w_ie": w_ie,
                    "w_ii": w_ii,
                },
            },
            run,
            rec,
        )
    )
    ho = simulate(
        make_scenario(
            "cortical_field",
            {**common, "site_model": "harmonic", "omega0": float(np.sqrt(b * c)), "gamma": d},
            run,
            rec,
        )
    )
    scale = np.max(np.abs(ho["u"].values))
    assert np.max(np.abs(ei["u"].values - ho["u"].values)) < 1e-10 * scale
    assert np.allclose(ei["energy"].values, ho["energy"].values, rtol=1e-9)


def test_wilson_cowan_small_amplitude_follows_its_linearisation(make_scenario):
    """Around a stable focus the Wilson–Cowan lattice and its linear E–I pair differ by a relative
    O(amplitude): the nonlinearity vanishes as the amplitude does."""
    p = {
        "lattice": {"nx": 16, "ny": 16},
        "kappa": 5000.0,
        "site_model": ["ei_linear", "wilson_cowan"],
        "match_linearisation": True,
        "wilson_cowan": {"w_ee": 12, "w_ei": 10, "w_ie": 10, "w_ii": 2, "p_e": 3.25, "p_i": 1.5},
    }
    diffs = []
    for amp in (1e-3, 2e-3):
        ds = simulate(
            make_scenario(
                "cortical_field",
                {**p, "initial": {"kind": "random", "amplitude": amp}},
                {"duration": "0.1 s", "dt": "2e-4 s", "seed": 1},
                {},
            )
        )
        assert list(ds.attrs["variants"]) == ["ei_linear", "wilson_cowan"]
        uf = ds["u_final"]
        diff = uf.sel(site_model="wilson_cowan") - uf.sel(site_model="ei_linear")
        diffs.append(float(np.sqrt((diff**2).mean())) / float(np.sqrt((uf.sel(site_model="ei_linear") ** 2).mean())))
    # the relative difference is set by the quadratic (shape, ~ amplitude) and cubic (frequency shift,
    # ~ amplitude^2 t) terms: doubling the amplitude multiplies it by between 2 and 4
    assert diffs[0] < 0.02
    assert 1.6 < diffs[1] / diffs[0] < 4.4


def test_probes_snapshots_and_chunking_agree(make_scenario):
    """Probes sample the same field as snapshots; the chunk size does not change the result."""
    params = {**LATTICE, "boundary": "fixed", "gamma": 1.0}
    rec = {"snapshots": {"every": "0.01 s"}, "probes": {"sites": [[3, 4], [20, 30]], "every": "0.005 s"}}
    a = simulate(
        make_scenario("cortical_field", params, {"duration": "0.5 s", "dt": "1e-3 s", "chunk": "0.007 s"}, rec)
    )
    b = simulate(make_scenario("cortical_field", params, {"duration": "0.5 s", "dt": "1e-3 s"}, rec))
    assert np.array_equal(a["u"].values, b["u"].values)
    for p, (ix, iy) in enumerate([(3, 4), (20, 30)]):
        from_probe = a["probe_u"].isel(probe=p).values[::2]
        from_snap = a["u"].isel(x=ix, y=iy).values
        assert np.array_equal(from_probe, from_snap)


def test_theory_formulas_against_numerical_derivatives_and_integrals():
    """Group velocity = numerical gradient of the lattice dispersion; the Lorentzian integrates to the
    OU variance; the continuum equipartition spectrum tends to sigma^2 / (4 gamma kappa omega)."""
    h, kappa, m = 1e-3, 4e4, 30.0
    mass = np.array([[m**2]])
    k = np.array([300.0, 800.0, 2000.0])
    for kx, ky in ((k, 0 * k), (k / np.sqrt(2), k / np.sqrt(2))):
        w = M.lattice_omega(kx, ky, h, np.array([kappa]), mass)[0]
        eps = 1e-3
        wp = M.lattice_omega(kx * (1 + eps), ky * (1 + eps), h, np.array([kappa]), mass)[0]
        wm = M.lattice_omega(kx * (1 - eps), ky * (1 - eps), h, np.array([kappa]), mass)[0]
        numeric = (wp - wm) / (2 * eps * np.hypot(kx, ky))
        assert np.allclose(M.group_velocity(kx, ky, h, kappa, w), numeric, rtol=1e-5)
    omega = np.linspace(-5000, 5000, 2_000_001)
    s = T.lorentzian(omega, np.array([120.0]), 7.0, 2.0)[:, 0]
    assert np.isclose(np.trapezoid(s, omega) / (2 * np.pi), T.mode_variance(120.0, 7.0, 2.0), rtol=1e-3)
    big = np.array([1e5])
    assert np.isclose(T.equipartition_spectrum(big, 5.0, 1.0, kappa, m)[0], 1 / (4 * 5.0 * kappa * 1e5), rtol=1e-4)
