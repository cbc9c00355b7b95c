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


class Lattice(StrictModel):
    """An ``nx`` x ``ny`` lattice of spacing ``h`` (``h`` only labels distances; kappa sets the physics)."""

    nx: Annotated[int, Field(ge=3, le=65536)]
    ny: Annotated[int, Field(ge=3, le=65536)]
    h: PositiveLength = 1e-3


class Continuum(StrictModel):
    """Continuum Klein–Gordon field ``u_tt = c^2 lap u - m^2 u``, discretised with spacing ``h``.

    ``h`` may be a list: the same scenario is then run at every resolution (convergence study), with
    ``dt = courant * h / c`` when ``courant`` is given (otherwise ``run.dt`` for all).
    """

    c: Pos  #: wave speed, m/s
    m: NonNeg = 0.0  #: mass (natural angular frequency), rad/s
    size: tuple[Length, Length]  #: domain (x, y) extent
    h: Length | list[Length]
    courant: Annotated[float, Field(gt=0, lt=0.7072)] | None = None

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

    tau_e: Time = 0.01
    tau_i: Time = 0.01
    w_ee: NonNeg = 1.0
    w_ei: Pos = 1.0
    w_ie: NonNeg = 1.0
    w_ii: NonNeg = 0.0


class WilsonCowan(StrictModel):
    """Wilson–Cowan mass with logistic rates ``S(x) = 1 / (1 + exp(-a (x - theta)))``."""

    tau_e: Time = 0.01
    tau_i: Time = 0.01
    w_ee: NonNeg = 12.0
    w_ei: Pos = 10.0
    w_ie: NonNeg = 10.0
    w_ii: NonNeg = 2.0
    p_e: float = 1.0  #: constant drive to E
    p_i: float = 0.0  #: constant drive to I
    a_e: Pos = 1.3
    theta_e: float = 4.0
    a_i: Pos = 2.0
    theta_i: float = 3.7


class Fields(StrictModel):
    """Coupled fields (e.g. E and I layers): ``u_f'' = kappa_f lap u_f - sum_g M_fg u_g - gamma_f u_f'``."""

    names: list[str] = ["E", "I"]
    mass_matrix: list[list[float]]  #: rad^2/s^2
    kappa: list[NonNeg]
    gamma: list[NonNeg] | None = None

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

    kind: Literal["constant", "pulse", "sine", "step"] = "constant"
    t0: Time = 0.0
    t1: Time = 1e30
    width: PositiveTime = 1e-3
    frequency: Frequency = 10.0
    phase: float = 0.0  #: rad


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

    kind: Literal["point", "gaussian", "moving"] = "point"
    x: Length
    y: Length
    width: Length = 0.0
    velocity: tuple[float, float] = (0.0, 0.0)  #: m/s
    amplitude: Amplitude  #: 1/s^2 (acceleration of u)
    time_course: TimeCourse = TimeCourse()
    field: str | None = None

    @model_validator(mode="after")
    def _w(self) -> Source:
        return _require_width(self, ("gaussian", "moving"), f"a positive length for a {self.kind} source")


class Initial(StrictModel):
    """Initial field: ``zero``, ``random`` (iid normal, std ``amplitude``), ``gaussian`` bump
    (``amplitude``, ``width``, ``center``; default centre of the domain), ``mode`` (cos wave, ``mode``
    integer wave numbers), ``packet`` (a wave packet along x: Gaussian envelope of std ``width`` times
    ``cos(k0 (x - x0))``, ``k0 = 2 pi mode[0] / (nx h)``, uniform in y; periodic boundaries). Velocities
    start at zero, so a packet splits into halves moving at -+ the group velocity."""

    kind: Literal["zero", "random", "gaussian", "mode", "packet"] = "zero"
    amplitude: Amplitude = 1.0
    width: Length = 0.0
    center: tuple[Length, Length] | None = None
    mode: tuple[int, int] = (1, 0)

    @model_validator(mode="after")
    def _w(self) -> Initial:
        return _require_width(self, ("gaussian", "packet"), f"a positive length for a {self.kind}, e.g. '4 mm'")


class Noise(StrictModel):
    """White-noise drive ``sigma xi(t)`` on every site (``<xi(t) xi(t')> = delta(t - t')``)."""

    sigma: NonNeg = 0.0


class Sponge(StrictModel):
    """Absorbing layer: damping ``strength * (1 - d / width)^2`` within ``width`` sites of the edge."""

    width: Annotated[int, Field(ge=1)] = 10
    strength: NonNeg = 0.0  #: 1/s; 0 picks 10 c / (h width), see lattice.py


class Analysis(StrictModel):
    """Which derived quantities to compute after the run."""

    #: integer wave numbers (n_x, n_y) for the measured dispersion (periodic/fixed boundaries)
    dispersion_modes: list[tuple[int, int]] = []
    #: integer wave numbers for mode variances and Lorentzian spectra (noise-driven runs)
    variance_modes: list[tuple[int, int]] = []
    #: distances (two or more) at which the pulse peak arrival is timed along x, y and the diagonal
    pulse_radii: list[Length] = []
    #: samples before this time are discarded from mode variances and spectra (approach to stationarity)
    burn_in: Time = 0.0
    #: batches for the confidence interval of mode variances
    batches: Annotated[int, Field(ge=2)] = 20
    #: probe sites (auto-spread over the lattice) for the local power spectrum
    spectrum_probes: Annotated[int, Field(ge=0)] = 0

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

    lattice: Lattice | None = None
    continuum: Continuum | None = None
    boundary: Literal["periodic", "fixed", "absorbing"] = "periodic"
    sponge: Sponge = Sponge()
    site_model: SiteModel | list[SiteModel] = "harmonic"
    #: derive omega0, gamma and the E–I pair from the Wilson–Cowan fixed point (invariance check)
    match_linearisation: bool = False
    omega0: NonNeg = 0.0  #: rad/s
    kappa: NonNeg = 0.0  #: 1/s^2
    gamma: NonNeg = 0.0  #: 1/s
    ei: EIPair = EIPair()
    wilson_cowan: WilsonCowan = WilsonCowan()
    fields: Fields | None = None
    noise: Noise = Noise()
    sources: list[Source] = []
    initial: Initial = Initial()
    integrator: Literal["auto", "leapfrog", "rk4"] = "auto"
    analysis: Analysis = Analysis()

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

    every: Time | None = None

    @field_validator("every")
    @classmethod
    def _every_positive(cls, v: float | None) -> float | None:
        return _positive_every(v)


class Snapshots(StrictModel):
    """Whole-lattice snapshots on (time, y, x)."""

    every: Time | None = None

    @field_validator("every")
    @classmethod
    def _every_positive(cls, v: float | None) -> float | None:
        return _positive_every(v)


class Probes(StrictModel):
    """Point probes: lattice sites ``[ix, iy]``."""

    sites: list[tuple[int, int]] = []
    every: Time | None = None

    @field_validator("every")
    @classmethod
    def _every_positive(cls, v: float | None) -> float | None:
        return _positive_every(v)


class CorticalRecord(StrictModel):
    """What to record (all optional)."""

    snapshots: Snapshots | None = None
    probes: Probes | None = None
    energy: Every | None = None
    #: memory the recording may use (MB); default: half the available memory, at most 4096 MB
    max_memory_mb: Pos | None = None
