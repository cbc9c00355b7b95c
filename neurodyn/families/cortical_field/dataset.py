"""The Dataset of a ``cortical_field`` run: the engine's recordings and what is measured from them.

Every variable and coordinate carries ``units`` and ``long_name``. The first variant's recordings are
stored as they are (snapshots, probes, energy); derived quantities (dispersion, mode variances, spectra,
pulse and packet speeds, convergence) are measured per variant in the lattice's normal modes
(:mod:`.modes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.signal
import xarray as xr

from neurodyn.families.cortical_field import modes as M
from neurodyn.families.cortical_field.build import DIRECTIONS, CorticalBuilt, Plan, Setup, Variant
from neurodyn.families.cortical_field.params import Initial
from neurodyn.schema import var_attrs


@dataclass(eq=False)
class Raw:
    """What the engine hands over for one variant: its recordings, its final field and its speed."""

    variant: Variant
    snaps: np.ndarray  #: (n_snap, F, ny, nx)
    probe_out: np.ndarray  #: (n_probe, n_probes)
    energy: np.ndarray  #: (n_energy, 4) total, kinetic, mass, gradient
    u_final: np.ndarray  #: (F, ny, nx) the field after the last step
    wall: float = 0.0  #: wall time of the variant's run, s
    rate: float = math.nan  #: site-updates/s after the first chunk (NaN if the run had one chunk)

    @property
    def setup(self) -> Setup:
        """The variant's description."""
        return self.variant.setup

    @property
    def plan(self) -> Plan:
        """What the variant recorded."""
        return self.variant.plan

    @property
    def u_init(self) -> np.ndarray:
        """The initial field ``(F, ny, nx)``."""
        return self.variant.u0


def mode_series(setup: Setup, snaps: np.ndarray, modes: list[tuple[int, int]]) -> np.ndarray:
    """Unit-normalised mode amplitudes over time, shape ``(F, n_modes, frames)`` (complex if periodic).

    Periodic: ``fft2(u) / sqrt(N)``; fixed/absorbing: orthonormal DST-I. ``E|a|^2`` is then the mode's
    variance in the normalisation of :func:`.theory.mode_variance`.
    """
    F = snaps.shape[1]
    out = np.zeros((F, len(modes), snaps.shape[0]), dtype=complex)
    for f in range(F):
        if setup.periodic:
            spec = np.fft.fft2(snaps[:, f], axes=(-2, -1)) / math.sqrt(setup.nx * setup.ny)
            for m, (mx, my) in enumerate(modes):
                out[f, m] = spec[:, my % setup.ny, mx % setup.nx]
        else:
            spec = scipy.fft.dstn(snaps[:, f], type=1, axes=(-2, -1), norm="ortho")
            for m, (mx, my) in enumerate(modes):
                out[f, m] = spec[:, my - 1, mx - 1]
    return out


def _peak(freqs: np.ndarray, power: np.ndarray) -> float:
    """Peak frequency with parabolic interpolation of the log power around the maximum bin."""
    k = int(np.argmax(power))
    if 0 < k < len(power) - 1 and np.all(power[k - 1 : k + 2] > 0):
        a, b, c = np.log(power[k - 1 : k + 2])
        den = a - 2 * b + c
        off = 0.5 * (a - c) / den if den != 0 else 0.0
        return float(freqs[k] + off * (freqs[1] - freqs[0]))
    return float(freqs[k])


def measure_dispersion(raw: Raw, modes: list[tuple[int, int]]) -> tuple[np.ndarray, float]:
    """Peak angular frequency of each mode's Hann-windowed time series, shape ``(F, n_modes)``, and the bin.

    With several fields the series are first projected on the eigenvectors of ``M + 4 s(k) diag(kappa)``,
    so each branch is measured separately (branches sorted by frequency).
    """
    st = raw.setup
    series = mode_series(st, raw.snaps, modes)  # (F, m, t)
    nt = series.shape[-1]
    dts = raw.plan.k_snap * st.dt
    win = np.hanning(nt)
    freqs = 2 * np.pi * np.fft.rfftfreq(nt, d=dts)
    out = np.full((st.n_fields, len(modes)), np.nan)
    for m, n in enumerate(modes):
        kx, ky = M.mode_wavevector(st, n)
        s = float(M.lattice_s(kx, ky, st.h))
        ev, vec = np.linalg.eigh(0.5 * (st.mass + st.mass.T) + 4 * s * np.diag(st.kappa))
        proj = vec.T @ series[:, m, :]  # branch amplitudes, ascending frequency
        for b in range(st.n_fields):
            x = proj[b] - proj[b].mean()
            # a real standing mode has power at +-omega; the periodic DFT mode is complex: fold both signs
            full = np.abs(np.fft.fft(x * win)) ** 2
            pos = full[: len(freqs)] + np.concatenate([[0.0], full[::-1][: len(freqs) - 1]])
            out[b, m] = _peak(freqs, pos)
    return out, float(freqs[1])


def measure_mode_variance(
    raw: Raw, modes: list[tuple[int, int]], burn_in: float, batches: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Batch-mean variances ``(batches, n_modes)`` and Welch mode spectra of field 0 after ``burn_in``."""
    st = raw.setup
    dts = raw.plan.k_snap * st.dt
    first = int(math.ceil(burn_in / dts))
    series = mode_series(st, raw.snaps[first:], modes)[0]
    nt = series.shape[-1]
    nb = nt // batches
    var = np.array(
        [[np.mean(np.abs(series[m, b * nb : (b + 1) * nb]) ** 2) for m in range(len(modes))] for b in range(batches)]
    )
    nseg = min(nt, max(64, 2 ** int(np.floor(np.log2(max(nt // 16, 2))))))
    f, p = scipy.signal.welch(series, fs=1 / dts, nperseg=nseg, return_onesided=False, axis=-1, detrend=False)
    # two-sided P(f) of a real field's mode is symmetric in f: average the +f and -f estimates
    k = np.arange(1, nseg // 2)
    sym = 0.5 * (p[:, k] + p[:, nseg - k])
    f = f[k]
    return var, 2 * np.pi * f, sym, dts


def measure_local_spectrum(raw: Raw) -> tuple[np.ndarray, np.ndarray]:
    """Welch spectrum of the spectrum probes averaged over probes, two-sided in angular frequency."""
    idx = [k for k, r in enumerate(raw.plan.probe_role) if r == "spectrum"]
    x = raw.probe_out[:, idx].T
    dts = raw.plan.k_probe * raw.setup.dt
    n = x.shape[1]
    nseg = 2 ** int(np.floor(np.log2(max(n // 16, 16))))
    f, p = scipy.signal.welch(x, fs=1 / dts, nperseg=nseg, axis=-1)
    # one-sided density per Hz -> two-sided per (rad/s)/(2 pi): S(omega) = P(f) / 2
    return 2 * np.pi * f[1:], 0.5 * p.mean(axis=0)[1:]


def measure_pulse_speed(raw: Raw) -> tuple[np.ndarray, np.ndarray]:
    """Speed (m/s) of the pulse peak along x, y and the diagonal.

    The speed is the inverse slope of the peak arrival time against distance.
    """
    speeds = np.full(len(DIRECTIONS), np.nan)
    arrivals = {}
    dt = raw.plan.k_probe * raw.setup.dt
    for k, role in enumerate(raw.plan.probe_role):
        if not role.startswith("pulse:"):
            continue
        _, d, _ = role.split(":")
        x = raw.probe_out[:, k]
        t = np.arange(len(x)) * dt
        arrivals.setdefault(d, []).append(
            (raw.plan.probe_dist[k], _peak(t, np.exp(x - x.max())) if x.max() > 0 else math.nan)
        )
    times = np.full((len(DIRECTIONS), max((len(v) for v in arrivals.values()), default=0)), np.nan)
    for i, d in enumerate(DIRECTIONS):
        pts = np.array(arrivals.get(d, []))
        if len(pts) >= 2 and np.all(np.isfinite(pts)):
            slope = np.polyfit(pts[:, 0], pts[:, 1], 1)[0]
            speeds[i] = 1.0 / slope
            times[i, : len(pts)] = pts[:, 1]
    return speeds, times


def measure_packet_speed(ini: Initial, raw: Raw) -> tuple[float, float, float]:
    """Speed of the right-moving half of a packet: slope of the centroid of ``mean_y u^2`` over time.

    Only distances ``d = x - x0`` in ``(0, L/2)`` count, and only times when the predicted centroid is
    more than three widths from the start and from ``L/2`` (the halves have separated and not wrapped).
    Returns the speed and the time window used.
    """
    st = raw.setup
    x0 = (st.nx - 1) // 2 if ini.center is None else ini.center[0] / st.h
    d = (np.arange(st.nx) - x0) % st.nx  # sites to the right of x0, wrapped
    keep = (d > 0) & (d < st.nx / 2)
    pw = np.mean(raw.snaps[:, 0] ** 2, axis=1)[:, keep]  # (time, x)
    cen = (pw @ d[keep]) / np.maximum(pw.sum(axis=1), 1e-300) * st.h
    t = np.arange(len(cen)) * raw.plan.k_snap * st.dt
    vg = M.packet_group_velocity(st, ini.mode[0])
    w = ini.width
    lo, hi = 3 * w / vg, (st.nx * st.h / 2 - 3 * w) / vg
    sel = (t >= lo) & (t <= hi)
    if sel.sum() < 3:
        return math.nan, lo, hi
    return float(np.polyfit(t[sel], cen[sel], 1)[0]), lo, hi


def collinear_pairs(modes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Consecutive pairs ``(a, b)`` of listed modes along the same lattice direction, ``|n_a| < |n_b|``."""
    groups: dict[tuple[int, int], list[int]] = {}
    for m, (nx, ny) in enumerate(modes):
        g = math.gcd(nx, ny)
        if g:
            groups.setdefault((nx // g, ny // g), []).append(m)
    out = []
    for idx in groups.values():
        idx.sort(key=lambda m: math.hypot(*modes[m]))
        out += list(zip(idx[:-1], idx[1:]))
    return sorted(out)


def make_dataset(built: CorticalBuilt, raws: list[Raw]) -> xr.Dataset:
    """Everything measured, as a Dataset (first variant's recordings; per-variant derived quantities)."""
    p = built.params
    record = built.record
    an = p.analysis
    r0 = raws[0]
    st0 = r0.setup
    ds = xr.Dataset()
    ds.coords["x"] = ("x", np.arange(st0.nx) * st0.h, var_attrs("m", "site x position"))
    ds.coords["y"] = ("y", np.arange(st0.ny) * st0.h, var_attrs("m", "site y position"))
    many = len(raws) > 1
    vdim = "resolution" if (p.continuum is not None and len(p.continuum.hs) > 1) else "site_model"
    if many:
        ds.coords[vdim] = (
            vdim,
            [r.setup.label if vdim == "site_model" else r.setup.h for r in raws],
            var_attrs(
                "m" if vdim == "resolution" else "1",
                "lattice spacing h" if vdim == "resolution" else "site model",
            ),
        )
    F = st0.n_fields
    if F > 1:
        ds.coords["field"] = ("field", st0.names, var_attrs("1", "field (layer)"))
    # snapshots of the first variant
    if r0.plan.n_snap and record.snapshots is not None:
        t = np.arange(r0.plan.n_snap) * r0.plan.k_snap * st0.dt
        ds.coords["time"] = ("time", t, var_attrs("s", "snapshot time"))
        if F > 1:
            ds["u"] = (("time", "field", "y", "x"), r0.snaps, var_attrs("1", "field u (snapshots)"))
        else:
            ds["u"] = (("time", "y", "x"), r0.snaps[:, 0], var_attrs("1", "field u (snapshots)"))
        if st0.periodic:
            pw = np.mean(np.abs(np.fft.fft2(r0.snaps[:, 0], axes=(-2, -1))) ** 2, axis=0) / (st0.nx * st0.ny)
            ds.coords["kx"] = (
                "kx",
                np.fft.fftshift(2 * np.pi * np.fft.fftfreq(st0.nx, st0.h)),
                var_attrs("rad/m", "wave number k_x"),
            )
            ds.coords["ky"] = (
                "ky",
                np.fft.fftshift(2 * np.pi * np.fft.fftfreq(st0.ny, st0.h)),
                var_attrs("rad/m", "wave number k_y"),
            )
            ds["spatial_power"] = (
                ("ky", "kx"),
                np.fft.fftshift(pw),
                var_attrs("1", "time-averaged spatial power |u_k|^2 / N (field 0)"),
            )
    user = [k for k, r in enumerate(r0.plan.probe_role) if r == "user"]
    if user:
        t = np.arange(r0.plan.n_probe) * r0.plan.k_probe * st0.dt
        ds.coords["probe_time"] = ("probe_time", t, var_attrs("s", "probe sample time"))
        ds.coords["probe"] = ("probe", np.arange(len(user)), var_attrs("1", "probe index"))
        ds.coords["probe_ix"] = ("probe", r0.plan.probes[user, 2], var_attrs("1", "probe site column"))
        ds.coords["probe_iy"] = ("probe", r0.plan.probes[user, 1], var_attrs("1", "probe site row"))
        ds["probe_u"] = (("probe_time", "probe"), r0.probe_out[:, user], var_attrs("1", "field u at probes"))
    if r0.plan.n_energy:
        t = np.arange(r0.plan.n_energy) * r0.plan.k_energy * st0.dt
        ds.coords["energy_time"] = ("energy_time", t, var_attrs("s", "energy sample time"))
        names = ["energy", "energy_kinetic", "energy_mass", "energy_gradient"]
        longs = [
            "total energy H",
            "kinetic energy sum v^2/2",
            "mass energy sum u.Mu/2",
            "gradient (coupling) energy kappa/2 sum_bonds (du)^2",
        ]
        for c, (nm, ln) in enumerate(zip(names, longs)):
            ds[nm] = ("energy_time", r0.energy[:, c], var_attrs("1/s^2", ln))
        e0 = r0.energy[0, 0]
        if e0 != 0:
            rel = (r0.energy[:, 0] - e0) / e0
            ds["energy_rel_error"] = (
                "energy_time",
                rel,
                var_attrs("1", "relative energy error (H - H0) / H0"),
            )
            ds["energy_error_max"] = (
                (),
                float(np.max(np.abs(rel))),
                var_attrs("1", "max relative energy error over the run"),
            )
            n = len(rel)
            if n >= 20:  # drift: difference of the mean error in the last and first tenth
                ds["energy_drift"] = (
                    (),
                    float(np.mean(rel[-n // 10 :]) - np.mean(rel[: n // 10])),
                    var_attrs("1", "mean relative energy error, last tenth minus first tenth"),
                )
    # dispersion
    if an.dispersion_modes:
        modes = [tuple(m) for m in an.dispersion_modes]
        meas = []
        for r in raws:
            w, binw = measure_dispersion(r, modes)
            meas.append(w)
        ds.coords["mode"] = ("mode", np.arange(len(modes)), var_attrs("1", "mode index"))
        ds.coords["mode_nx"] = ("mode", [m[0] for m in modes], var_attrs("1", "integer wave number n_x"))
        ds.coords["mode_ny"] = ("mode", [m[1] for m in modes], var_attrs("1", "integer wave number n_y"))
        kk = np.array([M.mode_wavevector(st0, m) for m in modes])
        ds.coords["k_x"] = ("mode", kk[:, 0], var_attrs("rad/m", "wave vector x component"))
        ds.coords["k_y"] = ("mode", kk[:, 1], var_attrs("rad/m", "wave vector y component"))
        arr = np.array(meas)  # (V, F, m)
        dims = ["branch", "mode"]
        if many:
            dims = [vdim, *dims]
        else:
            arr = arr[0]
        if F == 1:
            arr = arr[..., 0, :]
            dims.remove("branch")
        ds["dispersion_omega"] = (dims, arr, var_attrs("rad/s", "measured peak angular frequency per mode"))
        ds["frequency_bin"] = (
            (),
            binw,
            var_attrs("rad/s", "frequency resolution 2 pi / T of the space-time FFT"),
        )
        kn = np.hypot(kk[:, 0], kk[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            ds["phase_velocity"] = (
                dims,
                arr / np.where(kn > 0, kn, np.nan),
                var_attrs("m/s", "measured phase velocity omega / |k|"),
            )
        pairs = collinear_pairs(modes)
        if pairs:
            a, b = np.array(pairs).T
            ds.coords["pair"] = ("pair", np.arange(len(pairs)), var_attrs("1", "pair of collinear modes"))
            ds.coords["pair_from"] = ("pair", a, var_attrs("1", "mode index of the shorter wave vector"))
            ds.coords["pair_to"] = ("pair", b, var_attrs("1", "mode index of the longer wave vector"))
            ds["group_velocity"] = (
                [*dims[:-1], "pair"],
                M.secant(arr, kn, a, b),
                var_attrs("m/s", "measured group velocity: slope of measured omega between collinear modes"),
            )
    # noise-driven mode variances and spectra
    if an.variance_modes:
        modes = [tuple(m) for m in an.variance_modes]
        var, w, psd, dts = measure_mode_variance(r0, modes, an.burn_in, an.batches)
        ds.coords["vmode"] = ("vmode", np.arange(len(modes)), var_attrs("1", "variance-mode index"))
        ds.coords["vmode_nx"] = ("vmode", [m[0] for m in modes], var_attrs("1", "integer wave number n_x"))
        ds.coords["vmode_ny"] = ("vmode", [m[1] for m in modes], var_attrs("1", "integer wave number n_y"))
        ds.coords["batch"] = ("batch", np.arange(an.batches), var_attrs("1", "batch of consecutive samples"))
        ds["mode_variance"] = (
            ("batch", "vmode"),
            var,
            var_attrs("1", "batch-mean variance of the unit-normalised mode amplitude"),
        )
        ds.coords["omega"] = ("omega", w, var_attrs("rad/s", "angular frequency"))
        ds["mode_psd"] = (
            ("vmode", "omega"),
            psd,
            var_attrs("s", "Welch spectrum of the mode amplitude (two-sided, per rad/s / 2 pi)"),
        )
        ds["mode_psd"].attrs["sample_interval"] = dts
    if an.spectrum_probes:
        w, s = measure_local_spectrum(r0)
        ds.coords["omega_local"] = ("omega_local", w, var_attrs("rad/s", "angular frequency"))
        ds["local_psd"] = (
            "omega_local",
            s,
            var_attrs(
                "s",
                "local field spectrum, probe-averaged Welch (two-sided, per rad/s / 2 pi)",
                probe_sites=[
                    [int(r[2]), int(r[1])] for r, role in zip(r0.plan.probes, r0.plan.probe_role) if role == "spectrum"
                ],
            ),
        )
        lo, hi = M.spectrum_band(st0.omega0, float(st0.gamma[0]), float(st0.kappa[0]))
        band = (w >= lo) & (w <= hi)
        ds["spectrum_slope"] = (
            (),
            M.loglog_slope(w[band], s[band]),
            var_attrs("1", "log-log slope of the local spectrum in the 1/f band", band=[lo, hi]),
        )
    if an.pulse_radii:
        speeds, times = measure_pulse_speed(r0)
        ds.coords["direction"] = ("direction", list(DIRECTIONS), var_attrs("1", "propagation direction"))
        ds["pulse_speed"] = (
            "direction",
            speeds,
            var_attrs("m/s", "speed of the pulse peak (fit over radii)"),
        )
        ds["pulse_arrival"] = (
            ("direction", "radius"),
            times,
            var_attrs("s", "peak arrival time at each radius"),
        )
        ds.coords["radius"] = ("radius", list(an.pulse_radii), var_attrs("m", "nominal probe distance"))
    if p.initial.kind == "packet" and r0.plan.n_snap and record.snapshots is not None:
        speed, lo, hi = measure_packet_speed(p.initial, r0)
        ds["packet_speed"] = (
            (),
            speed,
            var_attrs("m/s", "speed of the right-moving packet's centroid of u^2", window=[lo, hi]),
        )
    # convergence to the continuum
    if p.continuum is not None and len(p.continuum.hs) > 1 and p.initial.kind == "gaussian" and st0.periodic:
        errs = []
        for r in raws:
            st = r.setup
            exact = M.continuum_solution(r.u_init[0], st.h, p.continuum.c, p.continuum.m, st.n_steps * st.dt)
            errs.append(float(np.sqrt(np.mean((r.u_final[0] - exact) ** 2)) / np.sqrt(np.mean(r.u_init[0] ** 2))))
        ds["continuum_error"] = (
            "resolution",
            np.array(errs),
            var_attrs("1", "RMS error vs the exact continuum solution / RMS of u0"),
        )
        hs = np.array([r.setup.h for r in raws])
        order = np.log(np.array(errs[:-1]) / np.array(errs[1:])) / np.log(hs[:-1] / hs[1:])
        ds.coords["refinement"] = ("refinement", hs[1:], var_attrs("m", "finer h of each successive pair"))
        ds["convergence_order"] = (
            "refinement",
            order,
            var_attrs("1", "observed order log(e_{i-1}/e_i) / log(h_{i-1}/h_i)"),
        )
    if many and vdim == "site_model":
        ds["u_final"] = (
            ("site_model", "y", "x"),
            np.array([r.u_final[0] for r in raws]),
            var_attrs("1", "field u at the end of the run, per site model"),
        )
    # per-variant description
    ds.attrs["schemes"] = [r.setup.scheme for r in raws]
    ds.attrs["variants"] = [r.setup.label for r in raws]
    ds.attrs["lattice_shape"] = [[r.setup.nx, r.setup.ny] for r in raws]
    ds.attrs["dt_used"] = [r.setup.dt for r in raws]
    ds.attrs["field_names"] = st0.names
    ds.attrs["boundary"] = st0.boundary
    ds.attrs["variant_wall_time_s"] = [r.wall for r in raws]
    # throughput after the first chunk (excludes loading the compiled kernels); NaN for one-chunk runs
    ds.attrs["site_updates_per_s"] = [r.rate for r in raws]
    return ds
