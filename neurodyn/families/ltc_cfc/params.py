"""Scenario schema of the ``ltc_cfc`` family: liquid time-constant (LTC) and closed-form continuous-time (CfC)
networks (Hasani et al., AAAI 2021 and Nat. Mach. Intell. 2022; ``papers/ltc_cfc.md``).

Time in these models is dimensionless: it is measured in the units the input sampling intervals are
written in (the papers' convention), so every time field here is a plain number.

``params.experiment`` picks one experiment; its block (``bounds``, ``closed_form``, ``speed``, ``xor``) holds
its settings and has defaults, so a scenario writes only what it changes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from neurodyn.errors import FieldIssue
from neurodyn.quantities import NonNegative, Positive
from neurodyn.schema import PositiveInt, StrictModel

HEADS = ("sigmoid", "tanh")
MODES = ("default", "no_gate", "pure")


def _range(v: tuple[float, float], positive: bool = False) -> tuple[float, float]:
    lo, hi = v
    if not lo <= hi:
        raise ValueError("a range [lo, hi] needs lo <= hi")
    if positive and not lo > 0:
        raise ValueError("a range [lo, hi] of positive numbers (lo > 0)")
    return v


def _distinct(v: list) -> list:
    if not v or len(set(v)) != len(v):
        raise ValueError("a non-empty list without repeated values")
    return v


class Network(StrictModel):
    """A random LTC network: Eq. 1 (one reversal ``A_i`` per neuron) or the conductance form the authors train.

    Sigmoid head: every synapse ``j -> i`` (and input ``k -> i``) contributes ``w s(sigma (x_j - mu))`` with
    ``w``, ``sigma``, ``mu`` drawn uniformly from ``weight``, ``slope``, ``centre`` (the ranges ``ncps``
    initialises with). Tanh head (the paper's example): ``f_i = tanh(sum_j G_ji x_j + sum_k Gs_ki I_k)``
    with gains drawn from ``N(0, tanh_gain^2)``.
    """

    neurons: PositiveInt = Field(8, description="number of neurons N")
    inputs: PositiveInt = Field(2, description="number of input channels M")
    form: Literal["eq1", "conductance"] = Field(
        "eq1",
        description="eq1: dx/dt = -(1/tau + f) x + f A with one A_i per neuron; conductance: ncps's form with "
        "cm, gleak, vleak and a reversal (polarity +-1) per synapse",
    )
    tau: tuple[float, float] = Field((0.5, 2.0), description="eq1: range [lo, hi] of the time constants tau_i")
    reversal: tuple[float, float] = Field(
        (-1.0, 1.0), description="eq1: range [lo, hi] of the reversal potentials A_i (the bias vector A)"
    )
    weight: tuple[float, float] = Field(
        (0.001, 1.0), description="sigmoid head: range of the synaptic weights w (>= 0, as the theorems need)"
    )
    slope: tuple[float, float] = Field((3.0, 8.0), description="sigmoid head: range of the sigmoid slopes sigma")
    centre: tuple[float, float] = Field((0.3, 0.8), description="sigmoid head: range of the sigmoid centres mu")
    tanh_gain: NonNegative = Field(
        2.0, description="tanh head: standard deviation of the recurrent and input gains (the paper's example)"
    )
    wiring: Literal["full", "ncp"] = Field(
        "full", description="sigmoid head: every synapse present (full), or the four-layer NCP wiring of ncps's AutoNCP"
    )
    motor: PositiveInt = Field(1, description="ncp wiring: number of motor (output) neurons")
    sparsity: float = Field(0.5, description="ncp wiring: AutoNCP's sparsity (density 1 - sparsity)")

    @field_validator("tau")
    @classmethod
    def _tau(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _range(v, positive=True)

    @field_validator("weight")
    @classmethod
    def _weight(cls, v: tuple[float, float]) -> tuple[float, float]:
        _range(v)
        if v[0] < 0:
            raise ValueError("weights must be >= 0: Theorems 1-2 need f >= 0 (the tanh head shows what breaks)")
        return v

    @field_validator("reversal", "slope", "centre")
    @classmethod
    def _ranges(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _range(v)

    @field_validator("sparsity")
    @classmethod
    def _sparsity(cls, v: float) -> float:
        if not 0 <= v < 1:
            raise ValueError("must be in [0, 1): the density 1 - sparsity must be positive")
        return v

    @model_validator(mode="after")
    def _ncp_layers(self) -> Network:
        if self.wiring == "ncp" and self.neurons < self.motor + 2:
            raise FieldIssue(
                "neurons",
                self.neurons,
                f"ncp wiring needs at least motor + 2 = {self.motor + 2} (a command and an inter neuron)",
            )
        return self


class Inputs(StrictModel):
    """A random input sequence: ``samples`` values per channel, uniform in ``[-amplitude, amplitude]``, each
    held for ``period * U(1 - jitter, 1 + jitter)`` (irregular sampling when ``jitter > 0``)."""

    samples: PositiveInt = Field(50, description="number of input samples T")
    period: Positive = Field(1.0, description="mean time between samples (the time each sample is held)")
    jitter: NonNegative = Field(
        0.0, description="irregular sampling: each interval is period * U(1 - jitter, 1 + jitter)"
    )
    amplitude: NonNegative = Field(1.0, description="inputs are uniform in [-amplitude, amplitude]")

    @field_validator("jitter")
    @classmethod
    def _jitter(cls, v: float) -> float:
        if not v < 1:
            raise ValueError("must be in [0, 1) so that every interval stays positive")
        return v


class Bounds(StrictModel):
    """Theorems 1-2 under the adaptive, fused and explicit-Euler solutions of random networks."""

    network: Network = Field(Network(), description="the random networks")
    inputs: Inputs = Field(Inputs(), description="the input sequence of each network")
    networks: PositiveInt = Field(4, description="number of random networks per head")
    heads: list[Literal["sigmoid", "tanh"]] = Field(
        ["sigmoid", "tanh"], description="heads f to run: sigmoid (f >= 0, the theorems' setting), tanh (the example)"
    )
    unfolds: list[PositiveInt] = Field(
        [1, 2, 6, 24], description="sub-steps L per input sample of the fused and Euler solutions"
    )
    rtol: Positive = Field(1e-10, description="relative tolerance of the adaptive solution (scipy DOP853)")
    atol: Positive = Field(1e-12, description="absolute tolerance of the adaptive solution")
    blowup: Positive = Field(1e6, description="a state beyond this magnitude stops that solution (recorded as such)")

    @field_validator("heads", "unfolds")
    @classmethod
    def _distinct(cls, v: list) -> list:
        return _distinct(v)


class InputShape(StrictModel):
    """A scalar input ``I(t)``: constant ``level``; ``sine`` ``level + amplitude sin(omega t)``; ``step`` from
    ``level`` to ``after`` at ``at``."""

    kind: Literal["constant", "sine", "step"] = Field(description="input shape")
    level: float = Field(0.5, description="constant value, sine offset, or the value before the step")
    amplitude: float = Field(1.0, description="sine: amplitude")
    omega: float = Field(2.0, description="sine: angular frequency")
    after: float = Field(-1.0, description="step: value after the step")
    at: NonNegative = Field(2.0, description="step: time of the step")


class ClosedForm(StrictModel):
    """Lemma 1 of the CfC paper for one cell: the closed form against an accurate ODE solution."""

    x0: float = Field(-1.0, description="initial state x(0)")
    A: float = Field(1.5, description="reversal A (the equilibrium of the symmetrised ODE)")
    w_tau: Positive = Field(0.5, description="leak rate w_tau")
    gain: float = Field(2.0, description="f(I) = sigmoid(gain I + bias)")
    bias: float = Field(-0.5, description="f(I) = sigmoid(gain I + bias)")
    duration: Positive = Field(10.0, description="time span of the comparison")
    points: PositiveInt = Field(401, description="number of times compared, evenly spaced on [0, duration]")
    shapes: list[InputShape] = Field(
        [InputShape(kind="constant"), InputShape(kind="sine", level=0.0), InputShape(kind="step")],
        description="the input shapes compared",
    )
    rtol: Positive = Field(1e-12, description="relative tolerance of the accurate solution (scipy DOP853)")
    atol: Positive = Field(1e-14, description="absolute tolerance of the accurate solution")

    @model_validator(mode="after")
    def _distinct_kinds(self) -> ClosedForm:
        kinds = [s.kind for s in self.shapes]
        if not kinds or len(set(kinds)) != len(kinds):
            raise FieldIssue("shapes", kinds, "a non-empty list with each kind (constant, sine, step) at most once")
        if self.points < 2:
            raise FieldIssue("points", self.points, "at least 2")
        return self


class Speed(StrictModel):
    """Wall time per sequence at equal accuracy: CfC, the fused LTC at the L the error law needs, adaptive."""

    network: Network = Field(Network(neurons=32, inputs=4), description="the LTC network (sigmoid head)")
    inputs: Inputs = Field(Inputs(samples=100, jitter=0.5), description="the input sequence")
    unfolds: list[PositiveInt] = Field([1, 2, 4, 8, 16], description="L values the first-order error law is fitted on")
    target_error: Positive = Field(1e-3, description="the accuracy every solver must reach (max |x - x_ref|)")
    rtols: list[Positive] = Field(
        [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8], description="RK45 tolerances tried, loosest first"
    )
    backbone: PositiveInt = Field(128, description="CfC backbone units (ncps default)")
    repeats: PositiveInt = Field(5, description="timed repetitions (the fastest is kept)")


class Xor(StrictModel):
    """Bit-stream XOR (the CfC paper's Table 4) trained by exact BPTT."""

    encoding: list[Literal["equidistant", "event"]] = Field(
        ["event", "equidistant"], description="input encodings: one event per bit, or one event per change of bit"
    )
    models: list[Literal["cfc", "no_gate", "pure", "ltc"]] = Field(
        ["cfc", "ltc"], description="models trained side by side"
    )
    pad: int = Field(16, ge=3, description="sequence padding: sequences have 2 to pad - 1 bits (the authors: 32)")
    hidden: PositiveInt = Field(32, description="hidden state size of the CfC models")
    ltc_hidden: PositiveInt = Field(8, description="number of LTC neurons (its cost grows as their square)")
    backbone: PositiveInt = Field(32, description="CfC backbone units")
    unfolds: PositiveInt = Field(6, description="LTC fused-solver unfolds per sample")
    ltc_time_offset: NonNegative = Field(
        0.0,
        description="the LTC's sub-step is (elapsed + offset) / L: 0 as ncps, 1 as the authors' PyTorch code, "
        "1e-3 as their TensorFlow code",
    )
    train: PositiveInt = Field(4000, description="training sequences")
    test: PositiveInt = Field(1000, description="test sequences")
    epochs: PositiveInt = Field(25, description="training epochs")
    batch: PositiveInt = Field(64, description="minibatch size")
    lr: Positive = Field(0.01, description="Adam learning rate")
    seeds: list[int] = Field([1], description="training seeds (one run per seed)")

    @field_validator("encoding", "models", "seeds")
    @classmethod
    def _distinct(cls, v: list) -> list:
        return _distinct(v)


class LTCParams(StrictModel):
    """Parameters of an ``ltc_cfc`` scenario (see module docstring)."""

    experiment: Literal["bounds", "closed_form", "speed", "xor"] = Field(
        description="bounds: Theorems 1-2; closed_form: Lemma 1; speed: time at equal accuracy; xor: bit-stream XOR"
    )
    bounds: Bounds = Field(Bounds(), description="settings of the bounds experiment")
    closed_form: ClosedForm = Field(ClosedForm(), description="settings of the closed_form experiment")
    speed: Speed = Field(Speed(), description="settings of the speed experiment")
    xor: Xor = Field(Xor(), description="settings of the xor experiment")
