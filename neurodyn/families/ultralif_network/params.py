"""Scenario schema of the ``ultralif_network`` family.

Two experiments share one schema:

* ``experiment: train`` (default) trains one feed-forward network per (neuron model, sparsity lambda,
  seed) on ``dataset`` (``digits`` or ``events``) and records per-epoch curves. The lists ``kinds``,
  ``surrogates``, ``sparsity`` and ``seeds`` become dimensions of the result, so one run yields
  mean ± std comparisons.
* ``experiment: bounds`` drives single neurons with bounded random input for ``bounds.steps`` steps at
  every ``bounds.eps`` and measures the distance to the max-plus limit against the paper's bounds.

Neuron constants (``theta``, ``tau0``, ``v_reset``) are dimensionless (the paper's units).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from neurodyn.errors import FieldIssue, did_you_mean
from neurodyn.families.ultralif_network.names import KIND_CODES, SURROGATE_CODES
from neurodyn.schema import StrictModel

DATASETS = ("digits", "events")
KINDS = tuple(KIND_CODES)


class EventsTask(StrictModel):
    """The generated temporal task (see :func:`~.data.generate_events`)."""

    n_train: int = Field(1200, ge=10)
    n_test: int = Field(600, ge=10)
    n_groups: int = Field(4, ge=2, le=7)
    channels_per_group: int = Field(8, ge=1)
    n_classes: int = Field(6, ge=2)
    #: mean events per channel in its group's burst
    events_per_channel: float = Field(2.0, gt=0)
    #: burst window, as a fraction of one slot (1 / n_groups of the stream)
    burst_width: float = Field(0.5, gt=0, le=1)
    #: burst start shifted by U(-jitter, jitter) slots
    jitter: float = Field(0.2, ge=0, le=0.5)
    #: mean background events per channel per stream
    noise_events: float = Field(0.5, ge=0)
    data_seed: int = Field(0, ge=0)

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

    eps: list[float] = [2.0, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02]
    #: time steps per trajectory
    steps: int = Field(50, ge=1)
    #: independent trajectories (single UltraLIF neurons, and the size of the UltraDLIF ring)
    n_neurons: int = Field(200, ge=3)
    #: input I(t) ~ U(input_low, input_high), i.i.d. per neuron and step
    input_low: float = -1.0
    input_high: float = 1.0
    #: random vectors for the LSE / sigmoid lemmas
    n_samples: int = Field(20000, ge=10)
    #: length n of the LSE argument vectors (Lemma 3.2)
    lse_terms: int = Field(5, ge=1)

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

    experiment: Literal["train", "bounds"] = "train"
    dataset: str = "digits"
    #: neuron kinds to train, each a model of the result's ``model`` dimension
    kinds: list[str] = ["ultralif"]
    #: surrogate gradients for the hard-threshold kinds (lif, maxplus_lif); one model per surrogate
    surrogates: list[str] = ["sigmoid"]
    #: training seeds (default: [run.seed])
    seeds: list[int] | None = None
    #: sparsity weights lambda of L = CE + lambda * mean spike rate
    sparsity: list[float] = [0.0]
    hidden: list[int] = [64]
    #: time steps per sample
    T: int = 10
    #: initial temperature eps = exp(log_eps)
    eps: float = 1.0
    learn_eps: bool = True
    eps_min: float = 0.1
    eps_max: float = 20.0
    theta: float = 0.5
    tau0: float = 0.9
    v_reset: float = 0.0
    sigmoid_sharpness: float = Field(10.0, gt=0)
    atan_alpha: float = Field(2.0, gt=0)
    #: Bernoulli rate coding P(spike) = input_gain * pixel
    input_gain: float = Field(0.5, gt=0, le=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    #: default epoch count (run.epochs overrides it)
    epochs: int = Field(30, ge=1)
    #: digits: independent rate encodings of the test set averaged in the test figures
    test_repeats: int = Field(1, ge=1)
    #: digits: fraction held out as the fixed test split
    test_fraction: float = Field(0.25, gt=0, lt=1)
    events: EventsTask = EventsTask()
    bounds: BoundsConfig = BoundsConfig()

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
            if k in ("lif", "maxplus_lif"):
                out += [(f"{k}[{s}]", k, s) for s in self.surrogates]
            else:
                out.append((k, k, self.surrogates[0]))
        return out
