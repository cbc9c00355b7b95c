"""Scenario schema of the ``curl_descent`` family.

Model (Ninou, Kadmon & Cayco-Gajic, "Curl Descent", NeurIPS 2025; as simulated in the authors' code,
see ``docs/curl_descent.md``): a student ``y = phi(w2 . phi(W1 x))`` (``W1`` is N x M, scalar output)
learns a teacher of the same architecture from inputs ``x ~ N(0, s^2 I)``. With ``e = y_student - y_teacher``
and ``delta1 = (w2 e) * phi'(W1 x)``, one update on a mini-batch of ``B`` inputs is

    Delta w2 = -eta e h^T D2 / B,      Delta W1 = -eta delta1 x^T D1 / B,

where ``D1 = diag(+-1)`` over the M inputs (its first ``round(alpha_h M)`` entries are -1: rule-flipped
input neurons) and ``D2 = diag(+-1)`` over the N hidden neurons (first ``round(alpha_r N)`` entries -1).
``D = I`` is gradient descent. Learning time in this family is dimensionless (updates, epochs, or the
population flow's time ``t`` in units of ``1/eta``), so no field carries a physical unit.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from neurodyn.errors import FieldIssue
from neurodyn.quantities import Positive
from neurodyn.schema import PositiveInt, StrictModel

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Layer = Literal["hidden", "readout", "both"]

#: the experiments of the family (dispatched by ``engine.EXPERIMENTS``)
EXPERIMENT_NAMES = ("stability", "chain", "chaos", "saddle_escape")


def _as_list(v: Any) -> Any:
    return v if isinstance(v, list) else [v]


def _unique(v: list) -> list:
    if not v or len(set(v)) != len(v):
        raise ValueError("a non-empty list without repeated values")
    return v


class Flow(StrictModel):
    """Integration of the population flow (the P -> infinity limit of the update, linear network)."""

    dt: Positive = Field(0.02, description="step of the classical 4th-order Runge-Kutta scheme (units of 1/eta)")
    duration: Positive = Field(40.0, description="flow time integrated (units of 1/eta)")
    samples: PositiveInt = Field(400, description="number of stored samples of the loss and invariants")
    projection: bool = Field(
        False,
        description="rescale W1 and w2 to their initial Frobenius norms after every step, as the authors' "
        "training does (the flow is then projected onto two spheres)",
    )
    blowup_norm: Positive = Field(
        1e6,
        description="blow-up guard: a run stops (and is marked diverged) when |W1|_F or |w2| exceeds this "
        "factor times its initial value (flips in both layers can diverge in finite time)",
    )


class Stability(StrictModel):
    """``stability``: the flow near a teacher-initialised (zero-loss) point, swept across flip fractions."""

    layers: list[Layer] = Field(
        ["hidden", "readout"],
        description="which flips are swept: hidden (alpha_h, D1), readout (alpha_r, D2) or both (the same alpha)",
    )
    alpha: list[Fraction] = Field(
        [0.0, 0.1, 0.2, 0.3, 0.5], description="fractions of rule-flipped neurons swept in each layer"
    )
    kick: Positive = Field(1e-8, description="norm of the random perturbation added to the teacher's weights")
    fit_below: Positive = Field(
        1e-6, description="the growth rate of log L is fitted on samples whose loss is below this value"
    )
    fit_start: Annotated[float, Field(ge=0.0)] = Field(
        5.0, description="flow time skipped before the growth-rate fit (the transient of the faster modes)"
    )
    jacobian_step: Positive = Field(1e-6, description="step of the central finite-difference Jacobian")
    compare_projection: bool = Field(
        True,
        description="also run every kick with the opposite flow.projection and classify it (does the authors' "
        "norm projection move the stability boundary?)",
    )
    boundary_inputs: PositiveInt = Field(
        300,
        description="inputs M of the large networks whose critical flip fraction is compared with the large-N boundary",
    )
    boundary_c: list[Positive] = Field(
        [0.1, 0.25, 0.5, 1.0, 2.0],
        description="compression ratios c = M/N at which the finite-size critical fraction is compared with "
        "the large-N boundary (computed from free probability)",
    )
    boundary_seeds: PositiveInt = Field(3, description="independent teachers per compression ratio")

    @field_validator("layers", "alpha", "boundary_c", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("layers", "alpha", "boundary_c")
    @classmethod
    def _distinct(cls, v: list) -> list:
        return _unique(v)


class Chain(StrictModel):
    """``chain``: the 1-1-1 chain with a flipped input weight (d1 = -1, d2 = +1)."""

    v_star: Positive = Field(1.0, description="teacher's product w1* w2* (the target of w1 w2)")
    r2: list[Positive] = Field(
        [1.0, 1.5, 2.5, 4.0], description="squared radii r^2 = w1^2 + w2^2 of the starting points (one run each)"
    )
    angle: float = Field(0.3, description="starting angle a of w = r (cos a, sin a), radians")

    @field_validator("r2", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("r2")
    @classmethod
    def _distinct(cls, v: list) -> list:
        return _unique(v)


class Chaos(StrictModel):
    """``chaos``: q order parameter and largest Lyapunov exponent across flip fractions."""

    layers: list[Layer] = Field(
        ["hidden", "readout"], description="which flips are swept: hidden, readout or both (the same alpha in each)"
    )
    alpha: list[Fraction] = Field([0.0, 0.1, 0.3, 0.5], description="fractions of rule-flipped neurons swept")
    kick: Positive = Field(1e-6, description="norm of the perturbation of the teacher's weights at the start")
    separation: Positive = Field(1e-8, description="distance d0 between the two Benettin trajectories")
    renorm_every: Positive = Field(1.0, description="flow time between Benettin renormalisations (units of 1/eta)")
    window: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.5, description="last fraction of the run over which q and the Lyapunov exponent are measured"
    )
    lyapunov_threshold: Positive = Field(
        2e-3, description="exponent (per unit flow time) above which a run is classified as chaotic"
    )

    @field_validator("layers", "alpha", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("layers", "alpha")
    @classmethod
    def _distinct(cls, v: list) -> list:
        return _unique(v)


class Training(StrictModel):
    """Mini-batch training as the authors simulate it (``saddle_escape``)."""

    samples: list[PositiveInt] = Field([50, 200], description="training-set sizes P (one run each)")
    test_samples: PositiveInt = Field(100, description="test inputs the test error is measured on")
    batch: PositiveInt = Field(10, description="mini-batch size B (the last batch of an epoch may be smaller)")
    lr: Positive = Field(
        0.1, description="learning rate per epoch: each mini-batch update uses eta = lr B / P, as the authors"
    )
    epochs: PositiveInt = Field(2000, description="passes over the training set (run.epochs overrides it)")
    init_gain: Positive = Field(2.0, description="student init: uniform in +-g/sqrt(M) (W1) and +-g/sqrt(N) (w2)")
    flipped_readout: list[Annotated[int, Field(ge=0)]] = Field(
        [0, 1], description="numbers of rule-flipped readout (hidden) neurons compared; 0 is gradient descent"
    )
    projection: bool = Field(True, description="rescale W1, w2 to their initial norms after each update")
    threshold: float = Field(-3.0, description="log10 of the training error that counts as learned")

    @field_validator("samples", "flipped_readout", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("samples", "flipped_readout")
    @classmethod
    def _distinct(cls, v: list) -> list:
        return _unique(v)


class CurlParams(StrictModel):
    """Parameters of a ``curl_descent`` scenario (see module docstring for the model)."""

    experiment: Literal["stability", "chain", "chaos", "saddle_escape"] = Field(
        description="stability (Jacobian, kick growth, phase boundary), chain (1-1-1 centre and Adler phase), "
        "chaos (q and Lyapunov exponent), saddle_escape (epochs to learn, GD vs flipped readout)"
    )
    inputs: PositiveInt = Field(10, description="input neurons M")
    hidden: PositiveInt = Field(20, description="hidden neurons N (student and teacher)")
    activation: Literal["linear", "tanh", "relu"] = Field(
        "linear", description="nonlinearity phi of both layers, student and teacher alike"
    )
    input_variance: Positive = Field(0.5, description="variance s^2 of every input coordinate (the authors: 1/2)")
    eta: Positive = Field(1.0, description="learning rate of the population flow (its time unit is 1/eta)")
    teacher_init: Literal["uniform", "normal"] = Field(
        "uniform", description="teacher draw before rescaling to |W1*|_F = sqrt(N), |w2*| = 1"
    )
    seeds: PositiveInt = Field(2, description="independent teachers (and students, data sets) per setting")
    flow: Flow = Field(Flow(), description="integration of the population flow")
    stability: Stability = Field(Stability(), description="settings of the stability experiment")
    chain: Chain = Field(Chain(), description="settings of the 1-1-1 chain experiment")
    chaos: Chaos = Field(Chaos(), description="settings of the chaos experiment")
    training: Training = Field(Training(), description="settings of mini-batch training (saddle_escape)")

    @model_validator(mode="after")
    def _consistent(self) -> CurlParams:
        flow_based = self.experiment in ("stability", "chain", "chaos")
        if flow_based and self.activation != "linear":
            raise FieldIssue(
                "activation",
                self.activation,
                f"the population flow of {self.experiment} is derived for the linear network; use linear",
            )
        if flow_based and self.flow.dt > self.flow.duration:
            raise FieldIssue("flow.dt", self.flow.dt, f"at most flow.duration = {self.flow.duration}")
        if self.experiment == "saddle_escape":
            bad = [k for k in self.training.flipped_readout if k > self.hidden]
            if bad:
                raise FieldIssue("training.flipped_readout", bad[0], f"at most hidden = {self.hidden}")
        if self.experiment == "chaos" and self.chaos.renorm_every < self.flow.dt:
            raise FieldIssue("chaos.renorm_every", self.chaos.renorm_every, f"at least flow.dt = {self.flow.dt}")
        return self
