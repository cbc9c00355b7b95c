"""Scenario schema of the ``eqprop`` family.

One network description (``layers``, ``rho``, ``cost``, ``eps``) and one of three experiments:

``train``
    EP training on scikit-learn's bundled digits, with a backprop baseline on the same architecture,
    for every seed in ``training.seeds`` (section ``training``).
``gradient_theorem``
    EP gradient estimate (one-sided and symmetric) against central finite differences of
    ``J(theta) = C(s0_theta)`` over a list of beta values (section ``theorem``).
``bptt_match``
    Step-by-step EP updates of the discrete-time form against truncated BPTT (section ``bptt``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from neurodyn.errors import FieldIssue
from neurodyn.quantities import NonNegative, Positive
from neurodyn.schema import PositiveInt, StrictModel

#: an iteration count (relaxation steps, epochs): at most 10 million, beyond which a run would not end in
#: any useful time (every step of every example of every epoch relaxes the whole network)
StepCount = Annotated[int, Field(ge=1, le=10_000_000)]

RHO_CODES = {"hard_sigmoid": 0, "tanh": 1, "clip_half": 2}
COST_CODES = {"mse": 0, "softmax_ce": 1}


def _positive_list(v: list[float], what: str) -> list[float]:
    if not v:
        raise ValueError(f"needs at least one {what}")
    for x in v:
        if not x > 0:
            raise ValueError(f"every {what} must be positive (got {x!r})")
    return v


class Training(StrictModel):
    """EP training hyperparameters (defaults: Scellier & Bengio 2017, 1 hidden layer)."""

    beta: float = Field(
        0.5, description="nudging strength beta of the EP update (non-zero; its sign is random when random_sign)"
    )
    random_sign: bool = Field(True, description="draw the sign of beta at random for every minibatch")
    estimators: list[Literal["one_sided", "symmetric"]] = Field(
        ["one_sided"],
        description="EP estimators trained side by side: one_sided (s_beta vs s_0) and/or symmetric "
        "(s_+beta vs s_-beta, Laborieux et al. 2021)",
    )
    batch_size: PositiveInt = Field(20, description="examples per minibatch (the last partial minibatch is dropped)")
    n_free: StepCount = Field(20, description="largest number of relaxation steps of the free phase")
    n_nudged: StepCount = Field(4, description="relaxation steps of the nudged phase")
    tol: NonNegative = Field(
        0.0, description="the free phase stops early once the largest projected force |dF/ds| is below tol (0: never)"
    )
    persistent: bool = Field(True, description="warm-start each example's free phase from its last free state")
    lr: list[float] = Field(
        [0.1, 0.05],
        description="learning rate of each weight matrix W_0 .. W_L, input side first; a layer's bias uses the "
        "rate of the matrix feeding it",
    )
    epochs: StepCount = Field(25, description="passes over the training set (run.epochs overrides it)")
    seeds: list[int] | None = Field(
        None,
        description="seeds of the independent runs (initial weights, minibatch order, beta signs); default [run.seed]",
    )
    backprop: bool = Field(True, description="also train the feed-forward backprop baseline on the same architecture")
    bp_lr: list[float] | None = Field(
        None, description="learning rate of each weight matrix of the backprop baseline (default: lr)"
    )
    eval_steps: StepCount = Field(100, description="largest number of relaxation steps of the test-set free phase")
    eval_tol: NonNegative = Field(
        1e-4, description="the test-set free phase stops once the largest projected force is below eval_tol"
    )
    eval_start: Literal["zero", "persistent"] = Field(
        "zero",
        description="test-set free phase starts from the zero state or from each test example's free state of the "
        "previous evaluation (persistent, as Scellier & Bengio evaluate; deep nets relax slowly from zero)",
    )

    @field_validator("beta")
    @classmethod
    def _beta(cls, v: float) -> float:
        if v == 0:
            raise ValueError("must be non-zero for training (the EP update divides by beta); e.g. 0.5")
        return v

    @field_validator("lr")
    @classmethod
    def _lr(cls, v: list[float]) -> list[float]:
        return _positive_list(v, "learning rate")

    @field_validator("bp_lr")
    @classmethod
    def _bplr(cls, v: list[float] | None) -> list[float] | None:
        return None if v is None else _positive_list(v, "learning rate")

    @field_validator("estimators")
    @classmethod
    def _estimators(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("needs one or both of one_sided, symmetric, each once")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if not v:
                raise ValueError("needs at least one seed")
            if len(set(v)) != len(v):
                raise ValueError("seeds must be distinct")
            if any(s < 0 for s in v):
                raise ValueError("seeds must be non-negative integers")
        return v


class GradientExperiment(StrictModel):
    """Fields shared by the two gradient experiments: a beta sweep on a small batch at a tight fixed point."""

    betas: list[float] = Field(
        [0.1, 0.03, 0.01, 0.003, 0.001],
        description="nudging strengths beta (at least two): the error is stored for each and its log-log slope "
        "fitted over all",
    )
    n_examples: PositiveInt = Field(
        4, description="random inputs (uniform in [0, 1]) with random one-hot targets in the batch the cost averages"
    )
    tol: Positive = Field(1e-13, description="every relaxation runs until the largest |dF/ds| is below tol")
    max_steps: StepCount = Field(200_000, description="largest number of steps of one relaxation")

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: list[float]) -> list[float]:
        _positive_list(v, "beta")
        if len(v) < 2:
            raise ValueError("needs at least two beta values to fit a slope")
        return v


class Theorem(GradientExperiment):
    """EP gradient vs finite differences of ``J(theta) = C(s0_theta)``."""

    fd_step: Positive = Field(1e-5, description="central finite-difference step on every weight and bias")


class BPTTMatch(GradientExperiment):
    """Discrete-time EP updates vs truncated BPTT gradients (Ernoult et al. 2019)."""

    estimator: Literal["one_sided", "symmetric"] = Field(
        "one_sided", description="EP nudging compared with BPTT: one_sided (+beta) or symmetric (+beta and -beta)"
    )
    steps: StepCount = Field(20, description="number of steps K of the nudged phase and of truncated BPTT")


class Data(StrictModel):
    """The training data: scikit-learn's bundled ``load_digits`` (offline), fixed stratified split."""

    dataset: Literal["digits"] = Field("digits", description="scikit-learn's bundled 8x8 digits (1797 images)")
    test_fraction: float = Field(0.2, description="fraction of the examples held out as the test set, in (0, 1)")
    split_seed: int = Field(0, description="seed of the stratified train/test split")

    @field_validator("test_fraction")
    @classmethod
    def _frac(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError("must be in (0, 1)")
        return v


class EqPropParams(StrictModel):
    """A layered Hopfield network and the experiment to run on it."""

    experiment: Literal["train", "gradient_theorem", "bptt_match"] = Field(
        "train",
        description="train (digits, EP beside backprop), gradient_theorem (EP gradient vs finite differences) or "
        "bptt_match (discrete-time EP updates vs truncated BPTT)",
    )
    layers: list[PositiveInt] = Field(
        [64, 500, 10], description="units per layer, input first, output last (at least one hidden layer)"
    )
    rho: Literal["hard_sigmoid", "tanh", "clip_half"] = Field(
        "hard_sigmoid",
        description="activation rho: hard_sigmoid clip(s, 0, 1), tanh, or clip_half clip(s/2, 0, 1)",
    )
    cost: Literal["mse", "softmax_ce"] = Field(
        "mse",
        description="cost C: mse, 1/2 ||y - d||^2 on the output states, or softmax_ce, cross-entropy of a softmax "
        "readout",
    )
    eps: float = Field(0.5, description="step size of the relaxation s <- s - eps dF/ds, in (0, 1]")
    init_gain: Positive = Field(
        1.0, description="multiplies the Glorot-uniform bound sqrt(6 / (fan_in + fan_out)) of the initial weights"
    )
    training: Training | None = Field(None, description="settings of experiment train")
    theorem: Theorem | None = Field(None, description="settings of experiment gradient_theorem")
    bptt: BPTTMatch | None = Field(None, description="settings of experiment bptt_match")
    data: Data = Field(Data(), description="the training data and its train/test split")

    @field_validator("layers")
    @classmethod
    def _layers(cls, v: list[int]) -> list[int]:
        if len(v) < 3:
            raise ValueError("needs input, at least one hidden layer and output, e.g. [64, 500, 10]")
        return v

    @field_validator("eps")
    @classmethod
    def _eps(cls, v: float) -> float:
        if not 0 < v <= 1:
            raise ValueError("step size must be in (0, 1], e.g. 0.5")
        return v

    @model_validator(mode="after")
    def _sections(self) -> EqPropParams:
        owner = {"training": "train", "theorem": "gradient_theorem", "bptt": "bptt_match"}
        for section, exp in owner.items():
            if getattr(self, section) is not None and self.experiment != exp:
                raise FieldIssue(
                    section,
                    "{...}",
                    f"only used with experiment: {exp} (this scenario has experiment: {self.experiment})",
                )
        # Fill the experiment's section with its defaults (bypassing validate_assignment, which would
        # re-run this validator).
        defaults = {
            "train": ("training", Training),
            "gradient_theorem": ("theorem", Theorem),
            "bptt_match": ("bptt", BPTTMatch),
        }
        section, cls = defaults[self.experiment]
        if getattr(self, section) is None:
            self.__dict__[section] = cls()
        n_w = len(self.layers) - 1
        if self.training is not None:
            for key in ("lr", "bp_lr"):
                rates = getattr(self.training, key)
                if rates is not None and len(rates) != n_w:
                    raise FieldIssue(
                        f"training.{key}",
                        rates,
                        f"needs one rate per weight matrix: {n_w} for layers {self.layers}",
                    )
        if self.experiment != "train" and self.rho != "tanh":
            raise FieldIssue(
                "rho",
                self.rho,
                f"experiment {self.experiment} needs the smooth rho 'tanh' "
                "(the theorem is about differentiable fixed points)",
            )
        if self.experiment == "bptt_match" and self.cost != "mse":
            raise FieldIssue("cost", self.cost, "experiment bptt_match supports cost 'mse' only")
        return self

    @property
    def rho_code(self) -> int:
        """Integer code of rho for the kernels."""
        return RHO_CODES[self.rho]

    @property
    def cost_code(self) -> int:
        """Integer code of the cost for the kernels."""
        return COST_CODES[self.cost]
