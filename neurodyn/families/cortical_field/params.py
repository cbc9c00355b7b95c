"""Scenario schema of the ``cortical_field`` family (validated, unit-resolved).

Units: time in seconds, angular frequencies (``omega0``, ``gamma``, ``m``) in rad/s, the coupling
``kappa`` in 1/s^2, lengths in metres, the field ``u`` is dimensionless (an activity deviation from the
fixed point). The lattice equation (see ``docs/cortical_field.md``) is::

    u''_ij = -omega0^2 u_ij + kappa (u_{i+1,j} + u_{i-1,j} + u_{i,j+1} + u_{i,j-1} - 4 u_ij)
             - gamma u'_ij + sigma xi_ij(t) + J_ij(t)

Either give the lattice directly (``lattice``, ``omega0``, ``kappa``) or its continuum (``continuum``:
``c``, ``m``, ``size``, ``h``; then ``kappa = c^2 / h^2`` and ``omega0 = m``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from neurodyn.errors import FieldIssue
from neurodyn.quantities import Frequency, Length, PositiveLength, PositiveTime, Time
from neurodyn.schema import StrictModel

SiteModel = Literal["harmonic", "ei_linear", "wilson_cowan"]
SITE_MODELS = ("harmonic", "ei_linear", "wilson_cowan")
NonNeg = Annotated[float, Field(ge=0)]
Pos = Annotated[float, Field(gt=0)]
Mode = tuple[int, int]


class Lattice(StrictModel):
    """An ``nx`` x ``ny`` lattice of spacing ``h`` (``h`` only labels distances; kappa sets the physics)."""

    nx: int = Field(ge=3, le=65536, description="number of sites along x")
    ny: int = Field(ge=3, le=65536, description="number of sites along y")
    h: PositiveLength = Field(1e-3, description="distance between neighbouring sites, m")


class Continuum(StrictModel):
    """Continuum Klein–Gordon field ``u_tt = c^2 lap u - m^2 u``, discretised with spacing ``h``.

    ``h`` may be a list: the same scenario is then run at every resolution (convergence study), with
    ``dt = courant * h / c`` when ``courant`` is given (otherwise ``run.dt`` for all).
    """

    c: Pos = Field(description="wave speed of the massless field, m/s")
    m: NonNeg = Field(0.0, description="mass: natural angular frequency of a uniform oscillation, rad/s")
    size: tuple[Length, Length] = Field(description="extent of the domain along x and y, m")
    h: Length | list[Length] = Field(
        description="lattice spacing, m; a list runs the same field at every resolution (convergence study)"
    )
    courant: Annotated[float, Field(gt=0, lt=0.7072)] | None = Field(
        None, description="Courant number c dt / h setting dt at every resolution (default: run.dt for all)"
    )

    @field_validator("size")
    @classmethod
    def _size(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not (v[0] > 0 and v[1] > 0):
            raise ValueError("two positive lengths [x, y], e.g. [64 mm, 64 mm]")
        return v

    @model_validator(mode="after")
    def _resolutions(self) -> Continuum:
        hs = self.h if isinstance(self.h, list) else [self.h]
        if not hs:
            raise FieldIssue("h", self.h, "a length or a non-empty list of lengths")
        for k, h in enumerate(hs):
            if not h > 0:
                raise FieldIssue(f"h.{k}" if isinstance(self.h, list) else "h", h, "a positive length")
            n = [s / h for s in self.size]
            if min(n) < 3 or abs(n[0] - round(n[0])) > 1e-6 * n[0] or abs(n[1] - round(n[1])) > 1e-6 * n[1]:
                raise FieldIssue(
                    "h", h, f"must divide the domain size {list(self.size)} into >= 3 whole cells per side"
                )
        return self

    @property
    def hs(self) -> list[float]:
        """The resolutions as a list."""
        return self.h if isinstance(self.h, list) else [self.h]


class EIPair(StrictModel):
    """Linear excitatory–inhibitory pair (Wilson–Cowan linearised with unit slopes)::

    tau_e E' = -E + w_ee E - w_ei I
    tau_i I' = -I + w_ie E - w_ii I - (tau_i tau_e / w_ei) (kappa lap E + J)
    """

    tau_e: Time = Field(0.01, description="time constant of the excitatory population, s")
    tau_i: Time = Field(0.01, description="time constant of the inhibitory population, s")
    w_ee: NonNeg = Field(1.0, description="excitatory-to-excitatory coupling weight")
    w_ei: Pos = Field(1.0, description="inhibitory-to-excitatory coupling weight (enters with a minus sign)")
    w_ie: NonNeg = Field(1.0, description="excitatory-to-inhibitory coupling weight")
    w_ii: NonNeg = Field(0.0, description="inhibitory-to-inhibitory coupling weight (enters with a minus sign)")


class WilsonCowan(StrictModel):
    """Wilson–Cowan mass with logistic rates ``S(x) = 1 / (1 + exp(-a (x - theta)))``."""

    tau_e: Time = Field(0.01, description="time constant of the excitatory population, s")
    tau_i: Time = Field(0.01, description="time constant of the inhibitory population, s")
    w_ee: NonNeg = Field(12.0, description="excitatory-to-excitatory coupling weight")
    w_ei: Pos = Field(10.0, description="inhibitory-to-excitatory coupling weight (enters with a minus sign)")
    w_ie: NonNeg = Field(10.0, description="excitatory-to-inhibitory coupling weight")
    w_ii: NonNeg = Field(2.0, description="inhibitory-to-inhibitory coupling weight (enters with a minus sign)")
    p_e: float = Field(1.0, description="constant external drive to the excitatory population")
    p_i: float = Field(0.0, description="constant external drive to the inhibitory population")
    a_e: Pos = Field(1.3, description="slope (gain) of the excitatory logistic rate function")
    theta_e: float = Field(4.0, description="threshold (half-activation input) of the excitatory rate function")
    a_i: Pos = Field(2.0, description="slope (gain) of the inhibitory logistic rate function")
    theta_i: float = Field(3.7, description="threshold (half-activation input) of the inhibitory rate function")


class Fields(StrictModel):
    """Coupled fields (e.g. E and I layers): ``u_f'' = kappa_f lap u_f - sum_g M_fg u_g - gamma_f u_f'``."""

    names: list[str] = Field(["E", "I"], description="names of the coupled fields (layers), one per field")
    mass_matrix: list[list[float]] = Field(
        description="mass matrix M coupling the fields' displacements, one row per field, rad^2/s^2"
    )
    kappa: list[NonNeg] = Field(description="lateral (nearest-neighbour) coupling of each field, 1/s^2")
    gamma: list[NonNeg] | None = Field(None, description="damping rate of each field, 1/s (default: params.gamma)")

    @model_validator(mode="after")
    def _shapes(self) -> Fields:
        n = len(self.names)
        if n < 1 or len(set(self.names)) != n:
            raise FieldIssue("names", self.names, "a list of distinct field names")
        if len(self.mass_matrix) != n or any(len(r) != n for r in self.mass_matrix):
            raise FieldIssue("mass_matrix", self.mass_matrix, f"a {n} x {n} matrix (one row per field)")
        if len(self.kappa) != n:
            raise FieldIssue("kappa", self.kappa, f"{n} values, one per field")
        if self.gamma is not None and len(self.gamma) != n:
            raise FieldIssue("gamma", self.gamma, f"{n} values, one per field")
        return self


def _require_width(model: StrictModel, kinds: tuple[str, ...], allowed: str) -> StrictModel:
    """Return ``model``, or point at its ``width`` if its ``kind`` is one of ``kinds`` and width <= 0."""
    if model.kind in kinds and not model.width > 0:
        raise FieldIssue("width", model.width, allowed)
    return model


class TimeCourse(StrictModel):
    """``constant``; ``pulse`` (Gaussian at ``t0`` with ``width``); ``sine`` (``frequency`` Hz, ``phase``);
    ``step`` (on from ``t0`` to ``t1``)."""

    kind: Literal["constant", "pulse", "sine", "step"] = Field(
        "constant", description="shape of the drive in time: constant, Gaussian pulse, sine or step"
    )
    t0: Time = Field(0.0, description="centre of a pulse, or onset of a sine or step, s")
    t1: Time = Field(1e30, description="end of a sine or step, s")
    width: PositiveTime = Field(1e-3, description="standard deviation of a pulse in time, s")
    frequency: Frequency = Field(10.0, description="frequency of a sine, Hz")
    phase: float = Field(0.0, description="phase of a sine at t = 0, rad")


#: largest magnitude of a field amplitude: the analysis squares field values (energies, variances) and
#: sums them over the lattice, which must stay finite in float64 (largest ~1.8e308)
MAX_AMPLITUDE = 1e100


def _bounded_amplitude(v: float) -> float:
    if abs(v) > MAX_AMPLITUDE:
        raise ValueError(f"at most {MAX_AMPLITUDE:g} in magnitude (energies, quadratic in it, must stay finite)")
    return v


Amplitude = Annotated[float, AfterValidator(_bounded_amplitude)]


class Source(StrictModel):
    """Afferent drive ``J(x, t) = amplitude * profile(x - x0 - velocity t) * course(t)``.

    ``point``: one site; ``gaussian``: extended, std ``width``; ``moving``: a Gaussian moving at
    ``velocity``. Positions in metres from the lattice's corner (site (0,0) is at (0,0)).
    """

    kind: Literal["point", "gaussian", "moving"] = Field(
        "point", description="spatial profile of the drive: one site, a Gaussian, or a moving Gaussian"
    )
    x: Length = Field(description="x position of the drive's centre (at t = 0 for a moving one), m")
    y: Length = Field(description="y position of the drive's centre (at t = 0 for a moving one), m")
    width: Length = Field(0.0, description="standard deviation of a Gaussian profile, m")
    velocity: tuple[float, float] = Field((0.0, 0.0), description="velocity (x, y) of a moving drive, m/s")
    amplitude: Amplitude = Field(description="peak afferent drive J, an acceleration of the field u, 1/s^2")
    time_course: TimeCourse = Field(TimeCourse(), description="how the drive's amplitude varies in time")
    field: str | None = Field(None, description="name of the field the drive enters (default: the first)")

    @model_validator(mode="after")
    def _w(self) -> Source:
        return _require_width(self, ("gaussian", "moving"), f"a positive length for a {self.kind} source")


class Initial(StrictModel):
    """Initial field: ``zero``, ``random`` (iid normal, std ``amplitude``), ``gaussian`` bump
    (``amplitude``, ``width``, ``center``; default centre of the domain), ``mode`` (cos wave, ``mode``
    integer wave numbers), ``packet`` (a wave packet along x: Gaussian envelope of std ``width`` times
    ``cos(k0 (x - x0))``, ``k0 = 2 pi mode[0] / (nx h)``, uniform in y; periodic boundaries). Velocities
    start at zero, so a packet splits into halves moving at -+ the group velocity."""

    kind: Literal["zero", "random", "gaussian", "mode", "packet"] = Field(
        "zero", description="shape of the initial field: zero, random, Gaussian bump, lattice mode or wave packet"
    )
    amplitude: Amplitude = Field(1.0, description="peak (or, for random, standard deviation) of the initial field")
    width: Length = Field(0.0, description="standard deviation of a Gaussian bump or of a packet's envelope, m")
    center: tuple[Length, Length] | None = Field(
        None, description="centre (x, y) of a bump or packet, m (default: the middle of the lattice)"
    )
    mode: Mode = Field((1, 0), description="integer wave numbers (n_x, n_y) of a mode, or of a packet's carrier")

    @model_validator(mode="after")
    def _w(self) -> Initial:
        return _require_width(self, ("gaussian", "packet"), f"a positive length for a {self.kind}, e.g. '4 mm'")


class Noise(StrictModel):
    """White-noise drive ``sigma xi(t)`` on every site (``<xi(t) xi(t')> = delta(t - t')``)."""

    sigma: NonNeg = Field(0.0, description="amplitude of the white-noise drive on every site, 1/s^(3/2)")


class Sponge(StrictModel):
    """Absorbing layer: damping ``strength * (1 - d / width)^2`` within ``width`` sites of the edge."""

    width: int = Field(10, ge=1, description="thickness of the absorbing layer at the edges, in sites")
    strength: NonNeg = Field(
        0.0, description="peak extra damping at the edge, 1/s (0 picks 10 c / (h width), see build.py)"
    )


class Analysis(StrictModel):
    """Which derived quantities to compute after the run."""

    dispersion_modes: list[Mode] = Field(
        [], description="integer wave numbers (n_x, n_y) whose frequencies give the measured dispersion"
    )
    variance_modes: list[Mode] = Field(
        [], description="integer wave numbers for mode variances and Lorentzian spectra (noise-driven runs)"
    )
    pulse_radii: list[Length] = Field(
        [], description="distances (two or more) at which the pulse peak's arrival is timed along x, y and diagonal, m"
    )
    burn_in: Time = Field(
        0.0, description="time discarded before mode variances and spectra (approach to stationarity), s"
    )
    batches: int = Field(20, ge=2, description="batches of consecutive samples for the mode variances' error bars")
    spectrum_probes: int = Field(
        0, ge=0, description="probe sites (spread over the lattice) averaged into the local power spectrum"
    )

    @field_validator("dispersion_modes", "variance_modes")
    @classmethod
    def _distinct_modes(cls, v: list[tuple[int, int]]) -> list[tuple[int, int]]:
        # a repeated mode would be fitted twice against itself (a zero-width fit: NaN slopes)
        seen: set[tuple[int, int]] = set()
        for i, mode in enumerate(v):
            if tuple(mode) in seen:
                raise FieldIssue(str(i), list(mode), "repeats an earlier mode; list each wave number once")
            seen.add(tuple(mode))
        return v


class CorticalParams(StrictModel):
    """Parameters of a ``cortical_field`` run (see module docstring)."""

    lattice: Lattice | None = Field(None, description="the lattice given directly (or give continuum)")
    continuum: Continuum | None = Field(None, description="the continuum field to discretise (or give lattice)")
    boundary: Literal["periodic", "fixed", "absorbing"] = Field(
        "periodic", description="edges: periodic (torus), fixed (zero field) or absorbing (fixed plus a sponge)"
    )
    sponge: Sponge = Field(Sponge(), description="the absorbing layer of absorbing boundaries")
    site_model: SiteModel | list[SiteModel] = Field(
        "harmonic", description="dynamics of one site (a list runs each model in turn on the same lattice)"
    )
    match_linearisation: bool = Field(
        False, description="derive omega0, gamma and the E–I pair from the Wilson–Cowan fixed point"
    )
    omega0: NonNeg = Field(0.0, description="natural angular frequency of one site, rad/s")
    kappa: NonNeg = Field(0.0, description="nearest-neighbour (lateral) coupling, 1/s^2")
    gamma: NonNeg = Field(0.0, description="damping rate of the field, 1/s")
    ei: EIPair = Field(EIPair(), description="the linear excitatory–inhibitory pair of the ei_linear site model")
    wilson_cowan: WilsonCowan = Field(WilsonCowan(), description="the Wilson–Cowan mass of the wilson_cowan model")
    fields: Fields | None = Field(None, description="several coupled fields (layers) instead of one field u")
    noise: Noise = Field(Noise(), description="white-noise drive on every site")
    sources: list[Source] = Field([], description="afferent drives J(x, t)")
    initial: Initial = Field(Initial(), description="the field at t = 0 (velocities start at zero)")
    integrator: Literal["auto", "leapfrog", "rk4"] = Field(
        "auto", description="time stepping: leapfrog (harmonic sites), rk4, or auto (leapfrog where it applies)"
    )
    analysis: Analysis = Field(Analysis(), description="derived quantities computed after the run")

    @model_validator(mode="after")
    def _geometry(self) -> CorticalParams:
        if (self.lattice is None) == (self.continuum is None):
            raise ValueError("give exactly one of 'lattice' ({nx, ny, h}) or 'continuum' ({c, m, size, h})")
        models = self.site_models
        if len(set(models)) != len(models):
            raise FieldIssue("site_model", self.site_model, "distinct site models")
        if self.fields is not None:
            if models != ["harmonic"]:
                raise FieldIssue("site_model", self.site_model, "coupled fields use the harmonic site model")
            if self.continuum is not None:
                raise FieldIssue("fields", "...", "coupled fields need 'lattice' (not 'continuum')")
            for k, s in enumerate(self.sources):
                if s.field is not None and s.field not in self.fields.names:
                    raise FieldIssue(f"sources.{k}.field", s.field, f"one of {self.fields.names}")
        else:
            for k, s in enumerate(self.sources):
                if s.field not in (None, "u"):
                    raise FieldIssue(
                        f"sources.{k}.field", s.field, "omit it (a single field 'u'), or define params.fields"
                    )
        if self.fields is not None and self.integrator == "rk4":
            raise FieldIssue("integrator", self.integrator, "coupled fields run with leapfrog (or auto)")
        if self.integrator == "leapfrog" and any(m != "harmonic" for m in models):
            raise FieldIssue(
                "integrator",
                self.integrator,
                "leapfrog needs the harmonic site model; use rk4 (or auto) for E–I masses",
            )
        if self.match_linearisation and "wilson_cowan" not in models:
            raise FieldIssue("match_linearisation", True, "needs wilson_cowan among the site models")
        if self.continuum is not None and len(self.continuum.hs) > 1 and len(models) > 1:
            raise FieldIssue("continuum.h", self.continuum.h, "a single h when several site models are given")
        return self

    @property
    def site_models(self) -> list[str]:
        """The site model(s) as a list."""
        return list(self.site_model) if isinstance(self.site_model, list) else [self.site_model]


def _positive_every(v: float | None) -> float | None:
    """A sampling interval is a positive time (a zero or negative one would silently mean every step)."""
    if v is not None and not v > 0:
        raise ValueError("a positive time of at least run.dt, e.g. '5 ms' (omit it to sample every step)")
    return v


class Every(StrictModel):
    """Sample every ``every`` seconds (rounded to whole steps; default every step)."""

    every: Time | None = Field(None, description="sampling interval, s, rounded to whole steps (default: every step)")

    @field_validator("every")
    @classmethod
    def _every_positive(cls, v: float | None) -> float | None:
        return _positive_every(v)


class Snapshots(StrictModel):
    """Whole-lattice snapshots on (time, y, x)."""

    every: Time | None = Field(
        None, description="interval between snapshots of the whole lattice, s (default: every step)"
    )

    @field_validator("every")
    @classmethod
    def _every_positive(cls, v: float | None) -> float | None:
        return _positive_every(v)


class Probes(StrictModel):
    """Point probes: lattice sites ``[ix, iy]``."""

    sites: list[tuple[int, int]] = Field([], description="lattice sites [ix, iy] whose field is recorded")
    every: Time | None = Field(None, description="interval between probe samples, s (default: every step)")

    @field_validator("every")
    @classmethod
    def _every_positive(cls, v: float | None) -> float | None:
        return _positive_every(v)


class CorticalRecord(StrictModel):
    """What to record (all optional)."""

    snapshots: Snapshots | None = Field(None, description="snapshots of the whole field")
    probes: Probes | None = Field(None, description="the field at chosen sites")
    energy: Every | None = Field(None, description="the lattice energy (total, kinetic, mass, gradient)")
    max_memory_mb: Pos | None = Field(
        None, description="memory the recording may use, MB (default: half the available memory, at most 4096 MB)"
    )
