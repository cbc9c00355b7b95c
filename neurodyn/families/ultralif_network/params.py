"""Scenario schema of the ``ultralif_network`` family.

Two experiments share one schema:

* ``experiment: train`` (default) trains one feed-forward network per (neuron model, sparsity lambda,
  seed) on ``dataset`` (``digits`` or ``events``) and records per-epoch curves. The lists ``kinds``,
  ``surrogates``, ``sparsity`` and ``seeds`` become dimensions of the result, so one run yields
  mean ± std comparisons.
* ``experiment: bounds`` drives single neurons with bounded random input for ``bounds.steps`` steps at
  every ``bounds.eps`` and measures the distance to the max-plus limit against the paper's bounds.

Neuron constants (``theta``, ``tau0``, ``v_reset``) are dimensionless (the paper's units).

The neuron kinds and surrogate gradients a scenario may name are defined here with the integer codes the
kernels take (:data:`KIND_CODES`, :data:`SURROGATE_CODES`): one home for the names, importable without
compiling anything.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from neurodyn.errors import FieldIssue, did_you_mean
from neurodyn.schema import StrictModel

#: neuron kind -> integer code passed to the kernels
KIND_CODES: dict[str, int] = {
    "lif": 0,
    "maxplus_lif": 1,
    "ultralif": 2,
    "ultradlif": 3,
    "ultraplif": 4,
    "ultradplif": 5,
}
#: surrogate gradient -> integer code
SURROGATE_CODES: dict[str, int] = {"sigmoid": 0, "atan": 1}
#: kinds with a hard threshold, trained with a surrogate gradient
SURROGATE_KINDS = ("lif", "maxplus_lif")
DATASETS = ("digits", "events")
KINDS = tuple(KIND_CODES)


class EventsTask(StrictModel):
    """The generated temporal task (see :func:`~.data.generate_events`)."""

    n_train: int = Field(1200, ge=10, description="event streams in the training set")
    n_test: int = Field(600, ge=10, description="event streams in the test set")
    n_groups: int = Field(4, ge=2, le=7, description="channel groups whose burst order is the class")
    channels_per_group: int = Field(8, ge=1, description="input channels per group")
    n_classes: int = Field(6, ge=2, description="classes: distinct burst orders of the groups (at most n_groups!)")
    events_per_channel: float = Field(2.0, gt=0, description="mean events per channel in its group's burst")
    burst_width: float = Field(
        0.5, gt=0, le=1, description="burst window, as a fraction of one slot (1 / n_groups of the stream)"
    )
    jitter: float = Field(0.2, ge=0, le=0.5, description="burst start shifted by U(-jitter, jitter) slots")
    noise_events: float = Field(0.5, ge=0, description="mean background events per channel per stream")
    data_seed: int = Field(0, ge=0, description="seed of the generated streams (the same task for every run)")

    @model_validator(mode="after")
    def _classes(self) -> EventsTask:
        if self.n_classes > math.factorial(self.n_groups):
            raise FieldIssue(
                "n_classes",
                self.n_classes,
                f"at most n_groups! = {math.factorial(self.n_groups)} distinct firing orders",
            )
        return self


class BoundsConfig(StrictModel):
    """The eps sweep of the bounds experiment."""

    eps: list[float] = Field(
        [2.0, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02], description="temperatures eps of the soft maximum to sweep (each > 0)"
    )
    steps: int = Field(50, ge=1, description="time steps per trajectory")
    n_neurons: int = Field(
        200, ge=3, description="independent single UltraLIF neurons, and the size of the UltraDLIF ring"
    )
    input_low: float = Field(
        -1.0, description="lower end of the input I(t) ~ U(input_low, input_high), per neuron and step"
    )
    input_high: float = Field(1.0, description="upper end of the input I(t) ~ U(input_low, input_high)")
    n_samples: int = Field(20000, ge=10, description="random vectors for the LSE and sigmoid lemmas")
    lse_terms: int = Field(5, ge=1, description="length n of the LSE argument vectors (Lemma 3.2)")

    @field_validator("eps")
    @classmethod
    def _eps(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("a non-empty list of positive temperatures, e.g. [1, 0.1, 0.01]")
        for i, e in enumerate(v):
            if not e > 0:
                raise FieldIssue(str(i), e, "eps must be > 0 (the temperature of the soft maximum)")
        return v

    @model_validator(mode="after")
    def _input(self) -> BoundsConfig:
        if not self.input_low < self.input_high:
            raise FieldIssue("input_high", self.input_high, f"must exceed input_low ({self.input_low:g})")
        return self


class UltraLIFParams(StrictModel):
    """Parameters of an ``ultralif_network`` run (defaults: the paper's, papers/ultralif.md)."""

    experiment: Literal["train", "bounds"] = Field(
        "train",
        description="train (networks on a dataset, per-epoch curves) or bounds (single neurons against their "
        "max-plus limits as eps -> 0)",
    )
    dataset: str = Field(
        "digits", description="digits (scikit-learn's 8x8 digits, rate coded) or events (generated event streams)"
    )
    kinds: list[str] = Field(
        ["ultralif"], description="neuron kinds to train, each a model of the result's model dimension"
    )
    surrogates: list[str] = Field(
        ["sigmoid"],
        description="surrogate gradients (sigmoid, atan) of the hard-threshold kinds lif and maxplus_lif; one "
        "model per surrogate",
    )
    seeds: list[int] | None = Field(
        None, description="training seeds, one run per seed (initial weights, order, encoding); default [run.seed]"
    )
    sparsity: list[float] = Field(
        [0.0], description="sparsity weights lambda of the loss L = CE + lambda * mean spike rate"
    )
    hidden: list[int] = Field([64], description="widths of the hidden spiking layers")
    T: int = Field(10, description="time steps per sample")
    eps: float = Field(1.0, description="initial temperature eps = exp(log_eps) of the soft maximum")
    learn_eps: bool = Field(True, description="train eps of the Ultra kinds (one per hidden layer)")
    eps_min: float = Field(0.1, description="lower clamp of eps during training")
    eps_max: float = Field(20.0, description="upper clamp of eps during training")
    theta: float = Field(0.5, description="firing threshold of the membrane potential (dimensionless)")
    tau0: float = Field(
        0.9, description="leak factor tau0 = 1 - dt/tau_m per step, in (0, 1) (initial value for P kinds)"
    )
    v_reset: float = Field(0.0, description="reset potential after a spike (below theta)")
    sigmoid_sharpness: float = Field(10.0, gt=0, description="slope k of the sigmoid surrogate sigmoid(k x)")
    atan_alpha: float = Field(2.0, gt=0, description="sharpness alpha of the ATan surrogate")
    input_gain: float = Field(
        0.5, gt=0, le=1, description="Bernoulli rate coding of digits: P(spike) = input_gain * pixel intensity"
    )
    batch_size: int = Field(128, ge=1, description="samples per minibatch")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate at the start of the cosine schedule")
    epochs: int = Field(30, ge=1, description="passes over the training set (run.epochs overrides it)")
    test_repeats: int = Field(
        1, ge=1, description="digits: independent rate encodings of the test set averaged in the test figures"
    )
    test_fraction: float = Field(
        0.25, gt=0, lt=1, description="digits: fraction of the images held out as the fixed test split"
    )
    events: EventsTask = Field(EventsTask(), description="the generated event-stream task (dataset: events)")
    bounds: BoundsConfig = Field(BoundsConfig(), description="the eps sweep of experiment bounds")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        if v not in DATASETS:
            raise ValueError(f"unknown dataset{did_you_mean(v, DATASETS)}; allowed: {', '.join(DATASETS)}")
        return v

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError(f"a non-empty list of neuron kinds from: {', '.join(KINDS)}")
        for i, k in enumerate(v):
            if k not in KINDS:
                raise FieldIssue(
                    str(i), k, f"unknown neuron kind{did_you_mean(str(k), KINDS)}; allowed: {', '.join(KINDS)}"
                )
        if len(set(v)) != len(v):
            raise ValueError("neuron kinds must not repeat")
        return v

    @field_validator("surrogates")
    @classmethod
    def _surrogates(cls, v: list[str]) -> list[str]:
        allowed = tuple(SURROGATE_CODES)
        if not v or len(set(v)) != len(v):
            raise ValueError(f"a non-empty list of distinct surrogates from: {', '.join(allowed)}")
        for i, k in enumerate(v):
            if k not in allowed:
                raise FieldIssue(
                    str(i), k, f"unknown surrogate{did_you_mean(str(k), allowed)}; allowed: {', '.join(allowed)}"
                )
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or len(set(v)) != len(v) or min(v) < 0):
            raise ValueError("a non-empty list of distinct non-negative integers")
        return v

    @field_validator("sparsity")
    @classmethod
    def _sparsity(cls, v: list[float]) -> list[float]:
        if not v or len(set(v)) != len(v) or min(v) < 0:
            raise ValueError("a non-empty list of distinct lambdas >= 0, e.g. [0, 0.01, 0.1]")
        return v

    @field_validator("hidden")
    @classmethod
    def _hidden(cls, v: list[int]) -> list[int]:
        if not v or min(v) < 1:
            raise ValueError("a non-empty list of hidden layer widths >= 1, e.g. [64]")
        return v

    @field_validator("T")
    @classmethod
    def _T(cls, v: int) -> int:
        if v < 1:
            raise ValueError("the number of time steps must be an integer >= 1")
        return v

    @field_validator("eps", "eps_min", "eps_max")
    @classmethod
    def _eps(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("eps must be > 0 (the temperature of the soft maximum)")
        return v

    @field_validator("tau0")
    @classmethod
    def _tau0(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError("the leak factor tau0 = 1 - dt/tau_m must lie in (0, 1)")
        return v

    @model_validator(mode="after")
    def _eps_range(self) -> UltraLIFParams:
        if not self.eps_min < self.eps_max:
            raise FieldIssue("eps_max", self.eps_max, f"must exceed eps_min ({self.eps_min:g})")
        if not self.eps_min <= self.eps <= self.eps_max:
            raise FieldIssue("eps", self.eps, f"must lie in [eps_min, eps_max] = [{self.eps_min:g}, {self.eps_max:g}]")
        if not self.v_reset < self.theta:
            raise FieldIssue("v_reset", self.v_reset, f"must be below theta ({self.theta:g})")
        return self

    def model_labels(self) -> list[tuple[str, str, str]]:
        """``(label, kind, surrogate)`` per trained model: surrogate kinds once per surrogate."""
        out = []
        for k in self.kinds:
            if k in SURROGATE_KINDS:
                out += [(f"{k}[{s}]", k, s) for s in self.surrogates]
            else:
                out.append((k, k, self.surrogates[0]))
        return out
