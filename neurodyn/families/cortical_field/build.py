"""What a ``cortical_field`` run is made of before its time loop: variants, lattices, recording plans.

One :class:`Setup` describes one simulated variant (one site model at one resolution): geometry,
couplings, the site's linearisation, the time-stepping scheme, the source table. Lists in the parameters
(``site_model``, ``continuum.h``) give several variants that run one after the other inside a single
``neurodyn run``.

:func:`check` makes every refusal from these descriptions and the sizes alone (stability, analyses the
lattice cannot support, the memory estimate): nothing lattice-sized is allocated, so ``neurodyn validate``
and a sweep's planner call it alone. :func:`build` then makes, once, what each variant's run starts from
(:class:`Variant`: the sponge profile, the initial field, the noise stream's seed) into a
:class:`CorticalBuilt`, which the engine, the Dataset and the theory read. The scheme's working arrays are
allocated by the engine while that variant runs, so only one variant's working set is alive at a time
(the memory estimate is per variant).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from scipy.optimize import fsolve
from scipy.special import expit

from neurodyn.errors import ResourceError, ScenarioError
from neurodyn.families.base import Built
from neurodyn.families.cortical_field import kernels as K
from neurodyn.families.cortical_field.params import (
    Analysis,
    CorticalParams,
    CorticalRecord,
    EIPair,
    Initial,
    Source,
    WilsonCowan,
)
from neurodyn.resources import available_bytes, format_bytes, require_memory
from neurodyn.stepping import steps

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.scenario import Scenario

_COURSES = {
    "constant": K.COURSE_CONSTANT,
    "pulse": K.COURSE_PULSE,
    "sine": K.COURSE_SINE,
    "step": K.COURSE_STEP,
}
#: directions along which a pulse's arrival is timed
DIRECTIONS = ("x", "y", "diagonal")


# --------------------------------------------------------------------------- site linearisations


@dataclass
class Linearisation:
    """Site dynamics near the fixed point: ``e' = a e - b i``, ``i' = c e - d i``.

    Eliminating ``i`` gives ``e'' + gamma e' + omega0^2 e = 0`` with ``omega0^2 = b c - a d`` and
    ``gamma = d - a`` (the trace and determinant of the Jacobian).
    """

    a: float
    b: float
    c: float
    d: float
    fixed_point: tuple[float, float] = (0.0, 0.0)
    slopes: tuple[float, float] = (1.0, 1.0)

    @property
    def omega0(self) -> float:
        """Natural angular frequency ``sqrt(det J)`` (rad/s)."""
        return math.sqrt(max(self.b * self.c - self.a * self.d, 0.0))

    @property
    def gamma(self) -> float:
        """Damping rate ``-trace J`` (1/s)."""
        return self.d - self.a


def ei_linearisation(ei: EIPair) -> Linearisation:
    """The linear E–I pair of :class:`~.params.EIPair` as a :class:`Linearisation`."""
    return Linearisation(
        a=(ei.w_ee - 1.0) / ei.tau_e, b=ei.w_ei / ei.tau_e, c=ei.w_ie / ei.tau_i, d=(1.0 + ei.w_ii) / ei.tau_i
    )


def _sig(x: float, a: float, th: float) -> float:
    return float(expit(a * (x - th)))


def wc_linearisation(wc: WilsonCowan) -> Linearisation:
    """Fixed point of the Wilson–Cowan mass and its Jacobian (stable, oscillatory fixed point).

    Raises
    ------
    ScenarioError
        If no fixed point with complex eigenvalues and non-positive real part exists.
    """

    def resid(z: np.ndarray) -> np.ndarray:
        e, i = z
        return np.array(
            [
                -e + _sig(wc.w_ee * e - wc.w_ei * i + wc.p_e, wc.a_e, wc.theta_e),
                -i + _sig(wc.w_ie * e - wc.w_ii * i + wc.p_i, wc.a_i, wc.theta_i),
            ]
        )

    found = []
    for e0 in np.linspace(0.02, 0.98, 13):
        for i0 in np.linspace(0.02, 0.98, 13):
            z, _, ok, _ = fsolve(resid, [e0, i0], full_output=True)
            if ok == 1 and np.max(np.abs(resid(z))) < 1e-12 and not any(np.allclose(z, f) for f in found):
                found.append(z)
    for e, i in sorted(found, key=lambda z: tuple(z)):
        se = _sig(wc.w_ee * e - wc.w_ei * i + wc.p_e, wc.a_e, wc.theta_e)
        si = _sig(wc.w_ie * e - wc.w_ii * i + wc.p_i, wc.a_i, wc.theta_i)
        de, di = wc.a_e * se * (1 - se), wc.a_i * si * (1 - si)
        lin = Linearisation(
            a=(-1 + wc.w_ee * de) / wc.tau_e,
            b=wc.w_ei * de / wc.tau_e,
            c=wc.w_ie * di / wc.tau_i,
            d=(1 + wc.w_ii * di) / wc.tau_i,
            fixed_point=(float(e), float(i)),
            slopes=(float(de), float(di)),
        )
        oscillatory = (lin.a + lin.d) ** 2 - 4 * lin.b * lin.c < 0  # trace^2 < 4 det
        if lin.gamma >= 0 and oscillatory and lin.b > 0:
            return lin
    pts = ", ".join(f"({e:.3f}, {i:.3f})" for e, i in found) or "none"
    raise ScenarioError(
        "params.wilson_cowan",
        "...",
        f"needs a stable fixed point with oscillatory linearisation (found fixed points: {pts})",
    )


# --------------------------------------------------------------------------- one variant, described


@dataclass(eq=False)
class Setup:
    """One variant as the kernels see it, described by scalars and small arrays (nothing lattice-sized)."""

    label: str  #: site model name, or resolution label
    model: str  #: site model: harmonic | ei_linear | wilson_cowan
    scheme: str  #: stormer | baoab | rk4
    nx: int
    ny: int
    h: float  #: lattice spacing, m
    dt: float  #: time step, s
    n_steps: int
    names: list[str]  #: field names
    kappa: np.ndarray  #: (F,) lateral coupling, 1/s^2
    mass: np.ndarray  #: (F, F) in rad^2/s^2; for E–I masses the linearisation's omega0^2
    gamma: np.ndarray  #: (F,) damping rate, 1/s
    sigma: float  #: noise amplitude
    boundary: str  #: periodic | fixed | absorbing
    sponge_width: int  #: sites of the absorbing layer
    sponge_strength: float  #: peak damping of the absorbing layer (at the edge sites), 1/s; 0 without one
    src: np.ndarray  #: (n_src, N_SRC_COLS), positions in site units
    lin: Linearisation | None = None  #: the E–I linearisation of an ei_linear or wilson_cowan site
    wc: WilsonCowan | None = None  #: the Wilson–Cowan mass of a wilson_cowan site
    c: float = math.nan  #: continuum wave speed (m/s)
    courant: float | None = None  #: the Courant number that set ``dt``, if one did

    @property
    def periodic(self) -> bool:
        """Periodic (torus) boundaries."""
        return self.boundary == "periodic"

    @property
    def n_fields(self) -> int:
        """Number of fields F."""
        return len(self.names)

    @property
    def omega0(self) -> float:
        """Effective natural frequency of a single field (rad/s)."""
        return math.sqrt(max(self.mass[0, 0], 0.0))

    def omega_max(self) -> float:
        """Highest lattice-mode angular frequency ``sqrt(lambda_max(M + 8 diag kappa))``."""
        return math.sqrt(max(max_mode_omega2(self.mass, self.kappa, 2.0), 0.0))

    def wave_speed(self) -> float:
        """``c = h sqrt(kappa)`` of the first field (m/s)."""
        return self.h * math.sqrt(self.kappa[0])


def max_mode_omega2(mass: np.ndarray, kappa: np.ndarray, smax: float) -> float:
    """Largest real eigenvalue of ``M + 4 s diag(kappa)`` over ``s`` in ``[0, smax]``."""
    best = -math.inf
    for s in np.linspace(0.0, smax, 41):
        ev = np.linalg.eigvals(mass + 4.0 * s * np.diag(kappa))
        best = max(best, float(np.max(ev.real)))
    return best


def _rk4_amplification(z: np.ndarray) -> np.ndarray:
    return np.abs(1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24)


def rk4_dt_max(omega0: float, kappa: float, gamma: float, gamma_max: float) -> float:
    """Largest dt with ``|R(lambda dt)| <= 1`` for every lattice mode of the linearised site.

    ``R`` is RK4's stability polynomial; ``lambda = -g/2 +- sqrt(g^2/4 - omega_k^2)`` for
    ``omega_k^2`` in ``[omega0^2, omega0^2 + 8 kappa]`` and damping ``g`` in ``[gamma, gamma_max]``.
    """
    w2 = omega0**2 + 8.0 * kappa * np.linspace(0.0, 1.0, 201) ** 2
    lams = []
    for g in np.unique([gamma, gamma_max]):
        root = np.sqrt((g * g / 4 - w2).astype(complex))
        lams += [-g / 2 + root, -g / 2 - root]
    lam = np.concatenate(lams)
    scale = float(np.max(np.abs(lam)))
    if scale == 0:
        return math.inf
    lo, hi = 0.0, 3.0 / scale
    if np.all(_rk4_amplification(lam * hi) <= 1 + 1e-12):
        return hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if np.all(_rk4_amplification(lam * mid) <= 1 + 1e-12):
            lo = mid
        else:
            hi = mid
    return lo


def sponge_profile(nx: int, ny: int, width: int, strength: float) -> np.ndarray:
    """Damping ``strength (1 - d/width)^2`` for sites within ``width`` of the edge (d = distance, sites)."""
    out = np.zeros((ny + 2, nx + 2))
    ix = np.arange(nx)
    iy = np.arange(ny)
    d = np.minimum.outer(np.minimum(iy, ny - 1 - iy), np.minimum(ix, nx - 1 - ix)).astype(float)
    prof = np.where(d < width, (1.0 - d / width) ** 2, 0.0)
    out[1:-1, 1:-1] = strength * prof
    return out


class _Grid(NamedTuple):
    """One lattice of the scenario, before a site model is put on it."""

    label: str | None  #: resolution label when the scenario lists several (else the site model names it)
    nx: int
    ny: int
    h: float  #: spacing, m
    dt: float  #: time step, s
    kappa: float  #: lateral coupling, 1/s^2
    omega0: float  #: natural angular frequency, rad/s
    c: float  #: wave speed, m/s
    courant: float | None  #: the Courant number that set ``dt``, if one did


def _grids(p: CorticalParams, dt: float) -> Iterator[_Grid]:
    """The scenario's lattices: one, or one per continuum resolution (each checked as it is reached)."""
    if p.lattice is not None:
        lat = p.lattice
        yield _Grid(None, lat.nx, lat.ny, lat.h, dt, p.kappa, p.omega0, lat.h * math.sqrt(p.kappa), None)
        return
    cont = p.continuum
    for h in cont.hs:
        nx, ny = (int(round(s / h)) for s in cont.size)
        kap = cont.c * cont.c / (h * h)  # not c**2: a float power raises OverflowError
        if not math.isfinite(kap):
            raise ScenarioError(
                "params.continuum.c", cont.c, f"c^2 / h^2 overflows at h = {h:g} m; use a smaller speed"
            )
        dth = cont.courant * h / cont.c if cont.courant else dt
        label = f"h={h * 1e3:g} mm" if len(cont.hs) > 1 else None
        yield _Grid(label, nx, ny, h, dth, kap, cont.m, cont.c, cont.courant)


def plan_setups(p: CorticalParams, dt: float, duration: float) -> list[Setup]:
    """All variants of a scenario (one per site model, or one per continuum resolution)."""
    models = p.site_models
    lin_wc = wc_linearisation(p.wilson_cowan) if ("wilson_cowan" in models) else None
    return [_setup(p, m, g, duration, lin_wc) for g in _grids(p, dt) for m in models]


def scheme_of(p: CorticalParams, model: str) -> str:
    """Time-stepping scheme of one site model: ``stormer`` or ``baoab`` (leapfrog, with noise), or ``rk4``."""
    integ = p.integrator
    if integ == "auto":
        integ = "leapfrog" if model == "harmonic" else "rk4"
    return "rk4" if integ == "rk4" else ("baoab" if p.noise.sigma > 0 else "stormer")


def planned_lattices(p: CorticalParams) -> list[tuple[str, int, int, str, int]]:
    """``(field path, nx, ny, scheme, n_fields)`` of every variant, computed from the sizes alone."""
    n_fields = len(p.fields.names) if p.fields is not None else 1
    out = []
    if p.continuum is not None:
        for h in p.continuum.hs:
            nx, ny = (int(round(s / h)) for s in p.continuum.size)
            out += [("params.continuum.h", nx, ny, scheme_of(p, m), n_fields) for m in p.site_models]
    else:
        out += [("params.lattice", p.lattice.nx, p.lattice.ny, scheme_of(p, m), n_fields) for m in p.site_models]
    return out


def _check_source_inside(s: Source, k: int, nx: int, ny: int, h: float) -> None:
    """Refuse a source whose (starting) centre lies off the lattice: the kernels would drop its drive."""
    for axis, value, n in (("x", s.x, nx), ("y", s.y, ny)):
        if not -0.5 <= value / h < n - 0.5:
            raise ScenarioError(
                f"params.sources.{k}.{axis}",
                f"{value:g} m",
                f"a position on the {nx} x {ny} lattice of spacing {h:g} m: "
                f"0 <= {axis} <= {(n - 1) * h:g} m (site (0, 0) is at the origin)",
            )


def _setup(p: CorticalParams, model: str, g: _Grid, duration: float, lin_wc: Linearisation | None) -> Setup:
    """Put one site model on one lattice: couplings, linearisation, scheme, sponge strength, source table."""
    nx, ny, h, omega0, gamma, c = g.nx, g.ny, g.h, g.omega0, p.gamma, g.c
    lin = None
    if p.match_linearisation and lin_wc is not None:
        omega0, gamma = lin_wc.omega0, lin_wc.gamma
    if model == "ei_linear":
        lin = lin_wc if (p.match_linearisation and lin_wc is not None) else ei_linearisation(p.ei)
        if lin.b * lin.c - lin.a * lin.d <= 0 or (lin.a + lin.d) ** 2 - 4 * lin.b * lin.c >= 0:
            raise ScenarioError(
                "params.ei",
                "...",
                "the E–I pair must have an oscillatory linearisation "
                f"(det = {lin.b * lin.c - lin.a * lin.d:.4g}, trace = {lin.a - lin.d:.4g})",
            )
        omega0, gamma = lin.omega0, lin.gamma
    elif model == "wilson_cowan":
        lin = lin_wc
        omega0, gamma = lin.omega0, lin.gamma
    if p.fields is not None:
        names = list(p.fields.names)
        mass = np.array(p.fields.mass_matrix, dtype=float)
        kap = np.array(p.fields.kappa, dtype=float)
        gam = np.array(p.fields.gamma if p.fields.gamma is not None else [gamma] * len(names), dtype=float)
    else:
        names = ["u"]
        mass = np.array([[omega0**2]])
        kap = np.array([g.kappa])
        gam = np.array([gamma])
    scheme = scheme_of(p, model)
    if scheme == "rk4" and p.boundary == "absorbing":
        raise ScenarioError(
            "params.boundary",
            "absorbing",
            "the sponge layer needs the leapfrog integrator "
            "(harmonic site model); use periodic or fixed boundaries with RK4",
        )
    strength = 0.0
    if p.boundary == "absorbing":
        strength = p.sponge.strength
        if strength == 0:
            # peak damping 10 c / (h width): a wave crossing the layer (width h / c seconds) is damped by
            # ~e^-3 each way, while the quadratic ramp keeps the reflection from its onset small
            strength = 10.0 * c / (h * p.sponge.width) if math.isfinite(c) else 0.0
    src = np.zeros((len(p.sources), K.N_SRC_COLS))
    for k, s in enumerate(p.sources):
        _check_source_inside(s, k, nx, ny, h)
        src[k] = [
            names.index(s.field) if s.field else 0,
            0 if s.kind == "point" else 1,
            s.x / h,
            s.y / h,
            s.velocity[0] / h,
            s.velocity[1] / h,
            s.width / h,
            s.amplitude,
            _COURSES[s.time_course.kind],
            s.time_course.t0,
            s.time_course.t1,
            s.time_course.width,
            s.time_course.frequency,
            s.time_course.phase,
        ]
    return Setup(
        label=g.label or model,
        model=model,
        scheme=scheme,
        nx=nx,
        ny=ny,
        h=h,
        dt=g.dt,
        n_steps=steps(duration, g.dt, at_least=1),
        names=names,
        kappa=kap,
        mass=mass,
        gamma=gam,
        sigma=p.noise.sigma,
        boundary=p.boundary,
        sponge_width=p.sponge.width,
        sponge_strength=strength,
        src=src,
        lin=lin,
        wc=p.wilson_cowan if model == "wilson_cowan" else None,
        c=c,
        courant=g.courant,
    )


def check_stability(setup: Setup) -> None:
    """Refuse a step beyond the scheme's stability limit, naming the largest stable dt."""
    if setup.scheme == "rk4":
        lim = rk4_dt_max(
            setup.omega0,
            float(setup.kappa[0]),
            float(setup.gamma[0]),
            # the sponge's peak damping (zero here: RK4 runs have no sponge)
            float(setup.gamma[0] + setup.sponge_strength),
        )
        rule = "RK4: |R(lambda dt)| <= 1 for every lattice mode of the linearised site"
    else:
        w = setup.omega_max()
        lim = 2.0 / w if w > 0 else math.inf
        rule = f"leapfrog: dt * omega_max < 2 with omega_max = {w:.6g} rad/s = sqrt(m^2 + 8 kappa)"
    if not setup.dt < lim:
        where = "run.dt" if not setup.courant else "params.continuum.courant"
        raise ScenarioError(
            where,
            f"{setup.dt:g} s",
            f"unstable for {setup.label} ({rule}); "
            f"the largest stable dt is just below {lim:.6g} s ({lim * 1e3:.6g} ms)",
        )


# --------------------------------------------------------------------------- what a variant records


@dataclass
class Plan:
    """What one variant records, in steps and sites."""

    k_snap: int = 0
    n_snap: int = 0
    k_probe: int = 0
    n_probe: int = 0
    probes: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    probe_role: list[str] = field(default_factory=list)  #: "user", "pulse:<dir>:<r index>", "spectrum"
    probe_dist: list[float] = field(default_factory=list)
    k_energy: int = 0
    n_energy: int = 0

    def record_bytes(self, setup: Setup) -> int:
        """Bytes of the recording buffers."""
        return 8 * (
            self.n_snap * setup.n_fields * setup.nx * setup.ny + self.n_probe * len(self.probes) + 4 * self.n_energy
        )


def _every(every: float | None, dt: float, path: str = "") -> int:
    """Sampling interval in whole steps; an interval shorter than half a step is refused, not made 1."""
    if every is None:
        return 1
    k = steps(every, dt)
    if k < 1:
        raise ScenarioError(path, f"{every:g} s", f"at least one step (dt = {dt:g} s); omit it to sample every step")
    return k


def center_site(setup: Setup, center: tuple[float, float] | None) -> tuple[int, int]:
    """Site closest to ``center`` (the initial bump's centre; default: the middle of the lattice)."""
    if center is None:
        return (setup.nx - 1) // 2, (setup.ny - 1) // 2
    return int(round(center[0] / setup.h)), int(round(center[1] / setup.h))


def plan_recording(p: CorticalParams, rec: CorticalRecord, setup: Setup) -> Plan:
    """Recording plan of one variant (snapshots, probes, energy) in whole steps."""
    an = p.analysis
    plan = Plan()
    n = setup.n_steps
    if rec.snapshots is not None or an.dispersion_modes or an.variance_modes:
        every = rec.snapshots.every if rec.snapshots is not None else None
        plan.k_snap = _every(every, setup.dt, "record.snapshots.every")
        if every is None and (an.dispersion_modes or an.variance_modes):
            # analysis only: sample at 80% of the Nyquist limit of the fastest lattice mode
            plan.k_snap = max(1, int(0.8 * math.pi / (setup.omega_max() * setup.dt)))
        plan.n_snap = -(-n // plan.k_snap)
    if rec.energy is not None:
        plan.k_energy = _every(rec.energy.every, setup.dt, "record.energy.every")
        plan.n_energy = -(-n // plan.k_energy)
    probes: list[tuple[int, int, int]] = []
    if rec.probes is not None:
        for k, (ix, iy) in enumerate(rec.probes.sites):
            if not (0 <= ix < setup.nx and 0 <= iy < setup.ny):
                raise ScenarioError(
                    f"record.probes.sites.{k}",
                    [ix, iy],
                    f"a site [ix, iy] inside the {setup.nx} x {setup.ny} lattice",
                )
            probes.append((0, iy, ix))
            plan.probe_role.append("user")
            plan.probe_dist.append(math.nan)
    if an.pulse_radii:
        cx, cy = center_site(setup, p.initial.center)
        for d in DIRECTIONS:
            for r_idx, r in enumerate(an.pulse_radii):
                sites = r / setup.h if d != "diagonal" else r / (setup.h * math.sqrt(2))
                s = int(round(sites))
                ix, iy = (cx + s, cy) if d == "x" else (cx, cy + s) if d == "y" else (cx + s, cy + s)
                if not (0 <= ix < setup.nx and 0 <= iy < setup.ny):
                    raise ScenarioError(
                        "params.analysis.pulse_radii",
                        r,
                        "radii inside the lattice from the initial bump's centre",
                    )
                probes.append((0, iy, ix))
                plan.probe_role.append(f"pulse:{d}:{r_idx}")
                plan.probe_dist.append(setup.h * math.hypot(ix - cx, iy - cy))
    if an.spectrum_probes:
        n_probes = an.spectrum_probes
        side = int(math.ceil(math.sqrt(n_probes)))
        for q in range(n_probes):
            ix = int((q % side + 0.5) * setup.nx / side)
            iy = int((q // side + 0.5) * setup.ny / side)
            probes.append((0, iy, ix))
            plan.probe_role.append("spectrum")
            plan.probe_dist.append(math.nan)
    if probes:
        every = rec.probes.every if rec.probes is not None else None
        plan.k_probe = _every(every, setup.dt, "record.probes.every") if not an.pulse_radii else 1
        plan.n_probe = -(-n // plan.k_probe)
        plan.probes = np.array(probes, dtype=np.int64)
    return plan


# --------------------------------------------------------------------------- refusals


def memory_limit_mb(rec: CorticalRecord) -> float:
    """``record.max_memory_mb`` or half the available memory (at most 4096 MB)."""
    if rec.max_memory_mb is not None:
        return float(rec.max_memory_mb)
    return min(4096.0, 0.5 * available_bytes() / 2**20)


def check_analysis(p: CorticalParams, setup: Setup, plan: Plan) -> None:
    """Refuse analyses that cannot work on this lattice (mode numbers, sampling below Nyquist)."""
    an: Analysis = p.analysis
    for key in ("dispersion_modes", "variance_modes"):
        for k, (mx, my) in enumerate(getattr(an, key)):
            if setup.boundary == "absorbing":
                raise ScenarioError(
                    f"params.analysis.{key}",
                    [mx, my],
                    "mode analyses need periodic or fixed boundaries (the sponge has no modes)",
                )
            if not setup.periodic and not (1 <= mx <= setup.nx and 1 <= my <= setup.ny):
                raise ScenarioError(
                    f"params.analysis.{key}.{k}",
                    [mx, my],
                    f"fixed-boundary modes are sine modes with 1 <= n_x <= {setup.nx}, 1 <= n_y <= {setup.ny}",
                )
    if an.dispersion_modes and plan.k_snap * setup.dt * setup.omega_max() >= math.pi:
        kmax = math.pi / (setup.omega_max() * setup.dt)
        raise ScenarioError(
            "record.snapshots.every",
            f"{plan.k_snap * setup.dt:g} s",
            f"too coarse for the dispersion analysis (aliasing above {setup.omega_max():.4g} "
            f"rad/s); use every < {kmax * setup.dt:.4g} s",
        )
    if an.variance_modes and not (setup.sigma > 0 and setup.gamma[0] > 0):
        raise ScenarioError(
            "params.analysis.variance_modes",
            "...",
            "mode variances need a noise-driven damped lattice (noise.sigma > 0, gamma > 0)",
        )
    if an.spectrum_probes and not (setup.sigma > 0 and setup.gamma[0] > 0):
        raise ScenarioError(
            "params.analysis.spectrum_probes",
            an.spectrum_probes,
            "the local spectrum needs a noise-driven damped lattice (noise.sigma > 0, gamma > 0)",
        )
    if an.variance_modes:
        frames = plan.n_snap - int(math.ceil(an.burn_in / (plan.k_snap * setup.dt)))
        if frames < 10 * an.batches:
            raise ScenarioError(
                "params.analysis.batches",
                an.batches,
                f"needs >= 10 snapshots per batch after burn_in; there are {max(frames, 0)} "
                "(run longer, sample snapshots more often, or use fewer batches)",
            )
    if (an.variance_modes or an.spectrum_probes) and setup.n_fields > 1:
        raise ScenarioError(
            "params.analysis",
            "variance_modes/spectrum_probes",
            "noise-spectrum analyses are for a single field (omit params.fields)",
        )
    if p.initial.kind == "packet" and not setup.periodic:
        raise ScenarioError("params.initial.kind", "packet", "a wave packet needs periodic boundaries")
    if an.pulse_radii and len(an.pulse_radii) < 2:
        raise ScenarioError("params.analysis.pulse_radii", an.pulse_radii, "two or more distances")


def _state_planes(scheme: str) -> int:
    """Lattice-sized planes per field that a scheme's run holds (state, coefficients, buffers)."""
    return {"stormer": 6, "baoab": 8, "rk4": 17}[scheme]


def state_bytes(setup: Setup) -> int:
    """Bytes of the state arrays the scheme allocates."""
    return 8 * _state_planes(setup.scheme) * setup.n_fields * (setup.nx + 2) * (setup.ny + 2)


#: what :func:`check` hands to :func:`build`: every variant's description and recording plan
Checked = list[tuple[Setup, Plan]]


def check(scenario: Scenario) -> Checked:
    """Refuse, before anything big is allocated, what a run of ``scenario`` would refuse.

    The lattices' state is checked first, from the sizes alone; then each variant is described (its
    linearisation, couplings and source table: small) and checked for stability, for the analyses it
    is asked for and for the memory of its run. Returns the variants and their recording plans, which
    :func:`build` reuses.
    """
    p: CorticalParams = scenario.params
    rec: CorticalRecord = scenario.record
    for where, nx, ny, scheme, n_fields in planned_lattices(p):
        planes = _state_planes(scheme)
        need = 8 * planes * n_fields * (nx + 2) * (ny + 2) + 8 * (nx + 2) * (ny + 2)  # + the sponge profile
        require_memory(
            need,
            f"{nx} x {ny} sites x ({n_fields} field(s) x {planes} {scheme} state planes + 1 sponge plane) x 8 B",
            what=where,
            hint="use a smaller lattice",
        )
    checked = []
    limit = memory_limit_mb(rec)
    for st in plan_setups(p, scenario.run.dt, scenario.run.duration):
        check_stability(st)
        plan = plan_recording(p, rec, st)
        check_analysis(p, st, plan)
        rec_mb = plan.record_bytes(st) / 2**20
        if rec_mb > limit:
            hint = ""
            if plan.n_snap:
                snap_mb = 8 * plan.n_snap * st.n_fields * st.nx * st.ny / 2**20
                other = rec_mb - snap_mb
                need = st.n_steps * st.n_fields * st.nx * st.ny * 8 / 2**20 / max(limit - other, 1e-9)
                k = max(plan.k_snap + 1, int(math.ceil(need)))
                hint = f"; use record.snapshots.every >= {k * st.dt:.4g} s ({k} steps) or a shorter run"
            raise ResourceError(
                f"recording for {st.label} would need {rec_mb:,.0f} MB (limit {limit:,.0f} MB, "
                f"record.max_memory_mb){hint}"
            )
        require_memory(
            state_bytes(st) + plan.record_bytes(st),
            f"{st.nx} x {st.ny} lattice state {format_bytes(state_bytes(st))}, "
            f"recording {format_bytes(plan.record_bytes(st))}",
            what=f"{st.label}",
            hint="use a smaller lattice or record less",
        )
        checked.append((st, plan))
    return checked


# --------------------------------------------------------------------------- built once


def initial_field(ini: Initial, setup: Setup, rng: np.random.Generator) -> np.ndarray:
    """Interior initial field ``(F, ny, nx)`` (the bump or mode goes into field 0)."""
    u0 = np.zeros((setup.n_fields, setup.ny, setup.nx))
    ix = np.arange(setup.nx)
    iy = np.arange(setup.ny)
    if ini.kind == "random":
        u0[:] = ini.amplitude * rng.standard_normal(u0.shape)
    elif ini.kind == "gaussian":
        cx, cy = center_site(setup, ini.center)
        if ini.center is not None:
            cx, cy = ini.center[0] / setup.h, ini.center[1] / setup.h
        dx = ix - cx
        dy = iy - cy
        if setup.periodic:  # minimal image on the torus
            dx = (dx + setup.nx / 2) % setup.nx - setup.nx / 2
            dy = (dy + setup.ny / 2) % setup.ny - setup.ny / 2
        w = ini.width / setup.h
        u0[0] = ini.amplitude * np.exp(-(dy[:, None] ** 2 + dx[None, :] ** 2) / (2 * w * w))
    elif ini.kind == "packet":
        cx = center_site(setup, None)[0] if ini.center is None else ini.center[0] / setup.h
        dx = (ix - cx + setup.nx / 2) % setup.nx - setup.nx / 2  # minimal image on the torus
        k0 = 2 * np.pi * ini.mode[0] / setup.nx  # per site
        env = np.exp(-(dx**2) / (2 * (ini.width / setup.h) ** 2))
        u0[0] = ini.amplitude * (env * np.cos(k0 * dx))[None, :]
    elif ini.kind == "mode":
        mx, my = ini.mode
        if setup.periodic:
            u0[0] = ini.amplitude * np.cos(2 * np.pi * (mx * ix[None, :] / setup.nx + my * iy[:, None] / setup.ny))
        else:
            u0[0] = ini.amplitude * (
                np.sin(np.pi * mx * (ix[None, :] + 1) / (setup.nx + 1))
                * np.sin(np.pi * my * (iy[:, None] + 1) / (setup.ny + 1))
            )
    return u0


@dataclass(eq=False)
class Variant:
    """One variant built: its description, its recording plan and what its run starts from."""

    setup: Setup
    plan: Plan
    sponge: np.ndarray  #: (ny + 2, nx + 2) extra damping of the absorbing layer, 1/s (zeros without one)
    u0: np.ndarray  #: (F, ny, nx) the initial field
    noise_seed: np.random.SeedSequence  #: seed of this variant's noise stream


@dataclass(eq=False)
class CorticalBuilt(Built):
    """A ``cortical_field`` scenario built for its run: one :class:`Variant` per site model or resolution."""

    variants: list[Variant] = field(default_factory=list)

    @property
    def params(self) -> CorticalParams:
        """The scenario's validated parameters."""
        return self.scenario.params

    @property
    def record(self) -> CorticalRecord:
        """What the scenario records."""
        return self.scenario.record

    @property
    def setups(self) -> list[Setup]:
        """Every variant's description, in run order."""
        return [v.setup for v in self.variants]


def build(scenario: Scenario, checked: Checked | None = None) -> CorticalBuilt:
    """Build every variant of ``scenario`` once: sponge profile, initial field, noise seed.

    ``checked`` is what :func:`check` returned for this scenario; without it (a sweep point, checked when
    the sweep was planned) the variants are described again. Every variant starts from the same initial
    random stream (so all start from the same field) and has a noise stream of its own.
    """
    p: CorticalParams = scenario.params
    if checked is None:
        setups = plan_setups(p, scenario.run.dt, scenario.run.duration)
        checked = [(st, plan_recording(p, scenario.record, st)) for st in setups]
    seeds = np.random.SeedSequence(scenario.run.seed).spawn(1 + len(checked))
    variants = []
    for k, (st, plan) in enumerate(checked):
        if st.boundary == "absorbing":
            sponge = sponge_profile(st.nx, st.ny, st.sponge_width, st.sponge_strength)
        else:
            sponge = np.zeros((st.ny + 2, st.nx + 2))
        u0 = initial_field(p.initial, st, np.random.default_rng(seeds[0]))
        variants.append(Variant(setup=st, plan=plan, sponge=sponge, u0=u0, noise_seed=seeds[1 + k]))
    return CorticalBuilt(scenario=scenario, variants=variants)
