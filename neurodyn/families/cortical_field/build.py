"""From validated parameters to a concrete lattice: geometry, couplings, linearisations, stability.

One :class:`Setup` describes one simulated variant (one site model at one resolution). Lists in the
parameters (``site_model``, ``continuum.h``) give several variants that run one after the other inside a
single ``neurodyn run``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import fsolve
from scipy.special import expit

from neurodyn.errors import ScenarioError
from neurodyn.families.cortical_field import kernels as K
from neurodyn.families.cortical_field.params import CorticalParams
from neurodyn.stepping import steps

_COURSES = {
    "constant": K.COURSE_CONSTANT,
    "pulse": K.COURSE_PULSE,
    "sine": K.COURSE_SINE,
    "step": K.COURSE_STEP,
}


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


def ei_linearisation(ei) -> Linearisation:
    """The linear E–I pair of :class:`~.params.EIPair` as a :class:`Linearisation`."""
    return Linearisation(
        a=(ei.w_ee - 1.0) / ei.tau_e, b=ei.w_ei / ei.tau_e, c=ei.w_ie / ei.tau_i, d=(1.0 + ei.w_ii) / ei.tau_i
    )


def _sig(x: float, a: float, th: float) -> float:
    return float(expit(a * (x - th)))


def wc_linearisation(wc) -> Linearisation:
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


@dataclass
class Setup:
    """Everything a kernel needs for one variant."""

    label: str  #: site model name, or resolution label
    model: str
    scheme: str  #: stormer | baoab | rk4
    nx: int
    ny: int
    h: float
    dt: float
    n_steps: int
    names: list[str]
    kappa: np.ndarray  #: (F,)
    mass: np.ndarray  #: (F, F) in rad^2/s^2; for E–I masses the linearisation's omega0^2
    gamma: np.ndarray  #: (F,)
    sigma: float
    boundary: str
    sponge: np.ndarray  #: (ny+2, nx+2) extra damping, 1/s
    src: np.ndarray  #: (n_src, N_SRC_COLS), positions in site units
    lin: Linearisation | None = None
    c: float = math.nan  #: continuum wave speed (m/s)
    extras: dict = field(default_factory=dict)

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


def build_setups(p: CorticalParams, dt: float, duration: float) -> list[Setup]:
    """All variants of a scenario (one per site model, or one per continuum resolution)."""
    setups = []
    models = p.site_models
    lin_wc = wc_linearisation(p.wilson_cowan) if ("wilson_cowan" in models) else None
    if p.continuum is not None:
        hs = p.continuum.hs
        for h in hs:
            nx, ny = (int(round(s / h)) for s in p.continuum.size)
            kap = p.continuum.c * p.continuum.c / (h * h)  # not c**2: a float power raises OverflowError
            if not math.isfinite(kap):
                raise ScenarioError(
                    "params.continuum.c", p.continuum.c, f"c^2 / h^2 overflows at h = {h:g} m; use a smaller speed"
                )
            dth = p.continuum.courant * h / p.continuum.c if p.continuum.courant else dt
            label = f"h={h * 1e3:g} mm" if len(hs) > 1 else models[0]
            for m in models:
                st = _setup(
                    p,
                    m,
                    label if len(hs) > 1 else m,
                    nx,
                    ny,
                    h,
                    dth,
                    duration,
                    kap,
                    p.continuum.m,
                    p.gamma,
                    lin_wc,
                    p.continuum.c,
                )
                st.extras["courant"] = p.continuum.courant
                setups.append(st)
    else:
        lat = p.lattice
        for m in models:
            setups.append(
                _setup(
                    p,
                    m,
                    m,
                    lat.nx,
                    lat.ny,
                    lat.h,
                    dt,
                    duration,
                    p.kappa,
                    p.omega0,
                    p.gamma,
                    lin_wc,
                    lat.h * math.sqrt(p.kappa),
                )
            )
    return setups


def scheme_of(p: CorticalParams, model: str) -> str:
    """Time-stepping scheme of one site model: ``stormer`` or ``baoab`` (leapfrog, with noise), or ``rk4``."""
    integ = p.integrator
    if integ == "auto":
        integ = "leapfrog" if model == "harmonic" else "rk4"
    return "rk4" if integ == "rk4" else ("baoab" if p.noise.sigma > 0 else "stormer")


def planned_lattices(p: CorticalParams) -> list[tuple[str, int, int, str, int]]:
    """``(field path, nx, ny, scheme, n_fields)`` of every variant, computed without allocating anything."""
    n_fields = len(p.fields.names) if p.fields is not None else 1
    out = []
    if p.continuum is not None:
        for h in p.continuum.hs:
            nx, ny = (int(round(s / h)) for s in p.continuum.size)
            out += [("params.continuum.h", nx, ny, scheme_of(p, m), n_fields) for m in p.site_models]
    else:
        out += [("params.lattice", p.lattice.nx, p.lattice.ny, scheme_of(p, m), n_fields) for m in p.site_models]
    return out


def _check_source_inside(s, k: int, nx: int, ny: int, h: float) -> None:
    """Refuse a source whose (starting) centre lies off the lattice: the kernels would drop its drive."""
    for axis, value, n in (("x", s.x, nx), ("y", s.y, ny)):
        if not -0.5 <= value / h < n - 0.5:
            raise ScenarioError(
                f"params.sources.{k}.{axis}",
                f"{value:g} m",
                f"a position on the {nx} x {ny} lattice of spacing {h:g} m: "
                f"0 <= {axis} <= {(n - 1) * h:g} m (site (0, 0) is at the origin)",
            )


def _setup(
    p: CorticalParams,
    model: str,
    label: str,
    nx: int,
    ny: int,
    h: float,
    dt: float,
    duration: float,
    kappa: float,
    omega0: float,
    gamma: float,
    lin_wc: Linearisation | None,
    c: float,
) -> Setup:
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
        kap = np.array([kappa])
        gam = np.array([gamma])
    scheme = scheme_of(p, model)
    if scheme == "rk4" and p.boundary == "absorbing":
        raise ScenarioError(
            "params.boundary",
            "absorbing",
            "the sponge layer needs the leapfrog integrator "
            "(harmonic site model); use periodic or fixed boundaries with RK4",
        )
    if p.boundary == "absorbing":
        strength = p.sponge.strength
        if strength == 0:
            # peak damping 10 c / (h width): a wave crossing the layer (width h / c seconds) is damped by
            # ~e^-3 each way, while the quadratic ramp keeps the reflection from its onset small
            strength = 10.0 * c / (h * p.sponge.width) if math.isfinite(c) else 0.0
        sponge = sponge_profile(nx, ny, p.sponge.width, strength)
    else:
        sponge = np.zeros((ny + 2, nx + 2))
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
        label=label,
        model=model,
        scheme=scheme,
        nx=nx,
        ny=ny,
        h=h,
        dt=dt,
        n_steps=steps(duration, dt, at_least=1),
        names=names,
        kappa=kap,
        mass=mass,
        gamma=gam,
        sigma=p.noise.sigma,
        boundary=p.boundary,
        sponge=sponge,
        src=src,
        lin=lin,
        c=c,
    )


def check_stability(setup: Setup) -> None:
    """Refuse a step beyond the scheme's stability limit, naming the largest stable dt."""
    if setup.scheme == "rk4":
        lim = rk4_dt_max(
            setup.omega0,
            float(setup.kappa[0]),
            float(setup.gamma[0]),
            float(setup.gamma[0] + setup.sponge.max()),
        )
        rule = "RK4: |R(lambda dt)| <= 1 for every lattice mode of the linearised site"
    else:
        w = setup.omega_max()
        lim = 2.0 / w if w > 0 else math.inf
        rule = f"leapfrog: dt * omega_max < 2 with omega_max = {w:.6g} rad/s = sqrt(m^2 + 8 kappa)"
    if not setup.dt < lim:
        where = "run.dt" if not setup.extras.get("courant") else "params.continuum.courant"
        raise ScenarioError(
            where,
            f"{setup.dt:g} s",
            f"unstable for {setup.label} ({rule}); "
            f"the largest stable dt is just below {lim:.6g} s ({lim * 1e3:.6g} ms)",
        )
