"""Scenario schema of the ``sync_learners`` family.

Model (Bouvrie & Slotine 2011, as reconstructed in ``papers/synchronized_learners.md``): ``n`` learners
``x_i in R^d`` run noisy gradient dynamics on a loss ``f`` and are coupled diffusively on a graph,

    dx_i = ( -grad f(x_i) + k sum_j A_ij (x_j - x_i) ) dt + sigma dW_i,

with optionally correlated noise ``dW_i = sqrt(1 - rho) dB_i + sqrt(rho) dB_0`` (``rho`` =
``noise_correlation``, ``dB_0`` shared by all learners). Time is in seconds (``run.duration``/``run.dt``),
so curvatures and ``k`` are rates in 1/s and ``sigma`` is in (units of x)/sqrt(s).

``n``, ``k`` and ``topology`` accept lists: one run then simulates every combination (dims ``topology``,
``n``, ``k`` of the result), so a whole comparison lives in one file.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from neurodyn.errors import FieldIssue, did_you_mean
from neurodyn.quantities import NonNegative, Positive, Time
from neurodyn.schema import PositiveInt, StrictModel


class Topology(StrictModel):
    """A coupling graph: a generator (alias or networkx function) with ``args``, or an ``edges`` list.

    ``weight`` scales every edge; ``weights: [lo, hi]`` draws each edge weight uniformly from
    ``[lo, hi]`` (seeded by ``run.seed``); an edge list may give a third element per edge as its weight.
    """

    generator: str | None = Field(
        None,
        description="graph generator: an alias (complete, ring, star, path, grid, torus, small_world, "
        "random_regular, erdos_renyi, barabasi_albert) or a networkx generator function name",
    )
    args: dict[str, Any] = Field({}, description="keyword arguments of the generator (n is filled in)")
    edges: list[list[float]] | None = Field(
        None, description="explicit edge list [[i, j], [i, j, weight], ...] instead of a generator"
    )
    weight: Positive = Field(1.0, description="coupling weight of every edge (multiplies edge-list weights)")
    weights: tuple[float, float] | None = Field(
        None, description="draw each edge weight uniformly from [lo, hi] (seeded by run.seed)"
    )
    label: str | None = Field(None, description="name of this topology in the result (default: the generator)")

    @field_validator("generator")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        from neurodyn.families.sync_learners.graphs import ALIASES, all_names, generator_names

        if v is not None and v not in ALIASES and v not in generator_names():
            raise ValueError(
                f"unknown topology{did_you_mean(v, all_names())}; use an alias "
                f"({', '.join(ALIASES)}), a networkx generator such as watts_strogatz_graph, "
                "or edges: [[i, j], ...]"
            )
        return v

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0 < v[0] <= v[1]:
            raise ValueError("weights: [lo, hi] needs 0 < lo <= hi")
        return v

    @field_validator("edges")
    @classmethod
    def _edges(cls, v: list[list[float]] | None) -> list[list[float]] | None:
        if v is None:
            return v
        for e, edge in enumerate(v):
            if len(edge) not in (2, 3) or any(float(x) != int(x) for x in edge[:2]):
                raise FieldIssue(str(e), edge, "an edge is [i, j] or [i, j, weight] with integer node indices")
            if len(edge) == 3 and not edge[2] > 0:
                raise FieldIssue(str(e), edge, "edge weights must be positive")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> Topology:
        if (self.generator is None) == (self.edges is None):
            raise ValueError("give exactly one of generator (e.g. ring, watts_strogatz_graph) or edges")
        if self.edges is not None and self.args:
            raise FieldIssue("args", self.args, "args only go with a generator")
        return self

    @property
    def generator_name(self) -> str:
        """The generator (or ``edges``) for messages."""
        return self.generator or "edge list"

    @property
    def label_or_name(self) -> str:
        """Coordinate label: ``label``, else the generator name, else ``edges``."""
        return self.label or self.generator or "edges"


class Quadratic(StrictModel):
    """``f(x) = 1/2 (x - c)^T H (x - c)``; ``hessian`` is a scalar, a diagonal (list) or a full matrix."""

    kind: Literal["quadratic"] = Field("quadratic", description="loss kind")
    hessian: float | list[float] | list[list[float]] = Field(
        1.0, description="Hessian H (1/s): one curvature, a diagonal of d curvatures, or a d x d matrix"
    )
    center: float | list[float] = Field(0.0, description="minimiser c: one value for every coordinate, or d values")


class LogCosh(StrictModel):
    """``f(x) = sum_m s^2 log cosh((x_m - c_m)/s) + mu/2 ||x - c||^2``; Hessian in ``[mu, 1 + mu]``."""

    kind: Literal["logcosh"] = Field(description="loss kind")
    scale: Positive = Field(
        1.0, description="scale s of the log-cosh term (units of x): quadratic inside, linear beyond"
    )
    mu: NonNegative = Field(0.1, description="curvature of the added quadratic (1/s): the strong-convexity modulus")
    center: float | list[float] = Field(0.0, description="minimiser c: one value for every coordinate, or d values")


class DoubleWell(StrictModel):
    """``f(x) = sum_m barrier ((x_m / width)^2 - 1)^2``: minima at ``+-width``, barrier height ``barrier``."""

    kind: Literal["double_well"] = Field(description="loss kind")
    barrier: Positive = Field(
        1.0, description="barrier height of f between the two minima of each coordinate (units of x^2/s)"
    )
    width: Positive = Field(1.0, description="position +-width of the minima of each coordinate (units of x)")


class Logistic(StrictModel):
    """L2-regularised logistic regression on a generated two-class Gaussian dataset.

    Classes ``y = +-1`` with equal probability, features ``z ~ N(y (separation/2) u, I_d)`` for a random
    unit vector ``u`` (``data_seed``); ``f(w) = mean log(1 + exp(-y w.z)) + reg/2 ||w||^2``. The Bayes
    error is ``Phi(-separation/2)``.
    """

    kind: Literal["logistic"] = Field(description="loss kind")
    samples: PositiveInt = Field(200, description="number of training samples (the full batch of every gradient)")
    test_samples: PositiveInt = Field(5000, description="number of test samples the test errors are measured on")
    separation: NonNegative = Field(
        2.0, description="distance between the two class means, in feature standard deviations"
    )
    reg: float = Field(0.01, description="L2 regularisation strength (1/s; the loss's strong-convexity modulus)")
    data_seed: int = Field(0, description="seed of the generated training and test sets")

    @field_validator("reg")
    @classmethod
    def _reg(cls, v: float) -> float:
        if v < 0:
            raise ValueError("must be >= 0")
        return v


Loss = Annotated[Quadratic | LogCosh | DoubleWell | Logistic, Field(discriminator="kind")]


def _as_list(v: Any) -> Any:
    return v if isinstance(v, list) else [v]


class SyncParams(StrictModel):
    """Parameters of a ``sync_learners`` scenario (see module docstring for the model)."""

    n: list[int] = Field([10], description="number of learners (a list runs every value)")
    d: PositiveInt = Field(2, description="dimension of each learner's state")
    k: list[float] = Field([0.5], description="coupling strength (1/s; a list runs every value)")
    sigma: float = Field(1.0, description="noise amplitude (units of x per sqrt(s))")
    noise_correlation: float = Field(
        0.0, description="correlation rho of the noise between learners (0: independent, 1: one common noise)"
    )
    loss: Loss = Field(
        Quadratic(), description="loss f every learner descends: quadratic, logcosh, double_well or logistic"
    )
    topology: list[Topology] = Field(
        [Topology(generator="complete")], description="coupling graphs (a list runs every one)"
    )
    trials: PositiveInt = Field(100, description="independent trials, simulated together in one kernel")
    integrator: Literal["euler_maruyama", "exact"] = Field(
        "euler_maruyama",
        description="Euler-Maruyama (any loss) or the exact Ornstein-Uhlenbeck step (quadratic loss, any dt)",
    )
    init_spread: float = Field(
        0.0, description="standard deviation of the learners' initial scatter around x_ref + init_offset"
    )
    init_offset: float | list[float] = Field(
        0.0, description="initial displacement from the loss minimiser x_ref: one value or d values"
    )
    burn_in: Time | None = Field(
        None, description="time before the time averages start (default: a fifth of the duration)"
    )
    allow_disconnected: bool = Field(
        False,
        description="run disconnected graphs even when the spread bound needs lambda_2 > 0 (the bound is then NaN)",
    )

    @field_validator("n", mode="before")
    @classmethod
    def _n_list(cls, v: Any) -> Any:
        v = _as_list(v)
        for x in v:
            if isinstance(x, bool) or not isinstance(x, int) or x < 2:
                raise ValueError("n must be an integer >= 2 (or a list of them)")
        if len(set(v)) != len(v) or not v:
            raise ValueError("a non-empty list without repeated values")
        return v

    @field_validator("k", mode="before")
    @classmethod
    def _k_list(cls, v: Any) -> Any:
        v = _as_list(v)
        for x in v:
            # NaN and infinities go on to the finite-float check of list[float], which names them (k.0 = nan)
            if isinstance(x, bool) or not isinstance(x, int | float) or (math.isfinite(x) and x < 0):
                raise ValueError("k must be a coupling strength >= 0 (or a list of them)")
        if len(set(v)) != len(v) or not v:
            raise ValueError("a non-empty list without repeated values")
        return [float(x) for x in v]

    @field_validator("topology", mode="before")
    @classmethod
    def _topo_list(cls, v: Any) -> Any:
        v = _as_list(v)
        if not v:
            raise ValueError("at least one topology")
        return [{"generator": t} if isinstance(t, str) else t for t in v]

    @field_validator("d")
    @classmethod
    def _d_fits(cls, v: int) -> int:
        # the losses hold a few dense d x d matrices (Hessians, the stationary covariance): refuse a d whose
        # matrices cannot fit before this model's own checks allocate one
        from neurodyn.resources import memory_shortfall

        text = memory_shortfall(4 * 8.0 * v * v, f"the loss's d x d matrices, 4 x {v}^2 x 8 B")
        if text is not None:
            raise ValueError(text)
        return v

    @field_validator("sigma")
    @classmethod
    def _sigma(cls, v: float) -> float:
        if not v >= 0:
            raise ValueError("must be a noise amplitude >= 0")
        return v

    @field_validator("noise_correlation")
    @classmethod
    def _rho(cls, v: float) -> float:
        if not 0 <= v <= 1:
            raise ValueError("must be a correlation in [0, 1]")
        return v

    @field_validator("init_spread")
    @classmethod
    def _spread(cls, v: float) -> float:
        if not v >= 0:
            raise ValueError("must be >= 0")
        return v

    @field_validator("burn_in")
    @classmethod
    def _burn(cls, v: float | None) -> float | None:
        if v is not None and v < 0:
            raise ValueError("must be a non-negative time")
        return v

    @model_validator(mode="after")
    def _shapes(self) -> SyncParams:
        d = self.d
        labels = [t.label_or_name for t in self.topology]
        for i, lab in enumerate(labels):
            if labels.index(lab) != i:
                raise FieldIssue(f"topology.{i}.label", lab, "topology labels must be unique; add label: <name>")
        loss = self.loss
        for name in ("center",):
            if hasattr(loss, name):
                _vector(getattr(loss, name), d, f"loss.{name}")
        _vector(self.init_offset, d, "init_offset")
        if isinstance(loss, Quadratic):
            hess = hessian_matrix(loss.hessian, d)
            if np.any(~np.isfinite(hess)) or not np.allclose(hess, hess.T):
                raise FieldIssue("loss.hessian", loss.hessian, "a symmetric matrix")
            if np.linalg.eigvalsh(hess)[0] <= 0:
                raise FieldIssue("loss.hessian", loss.hessian, "must be positive definite (all curvatures > 0)")
        elif self.integrator == "exact":
            raise FieldIssue(
                "integrator",
                "exact",
                f"the exact Ornstein-Uhlenbeck step needs a quadratic loss, not {loss.kind}; use euler_maruyama",
            )
        return self


def _vector(v: float | list[float], d: int, path: str) -> np.ndarray:
    if isinstance(v, list):
        if len(v) != d:
            raise FieldIssue(path, v, f"a number or a list of d = {d} numbers")
        return np.asarray(v, dtype=float)
    return np.full(d, float(v))


def vector(v: float | list[float], d: int) -> np.ndarray:
    """A scalar-or-list parameter as a length-``d`` float array."""
    return _vector(v, d, "")


def hessian_matrix(h: float | list[float] | list[list[float]], d: int) -> np.ndarray:
    """The quadratic loss's Hessian as a ``(d, d)`` array (scalar -> ``h I``, list -> diagonal)."""
    if isinstance(h, int | float):
        return float(h) * np.eye(d)
    if h and isinstance(h[0], list):
        arr = np.asarray(h, dtype=float)
        if arr.shape != (d, d):
            raise FieldIssue("loss.hessian", h, f"a {d}x{d} matrix (d = {d})")
        return arr
    if len(h) != d:
        raise FieldIssue("loss.hessian", h, f"a number, a diagonal of d = {d} numbers, or a {d}x{d} matrix")
    return np.diag(np.asarray(h, dtype=float))


class SyncRecord(StrictModel):
    """What a ``sync_learners`` run records besides the time-averaged statistics."""

    every: Time | None = Field(
        None, description="interval of the spread and error time traces (default: duration / 200)"
    )
    trajectories: Annotated[int, Field(ge=0)] = Field(
        4, description="number of learners whose trajectories (first trial, first two coordinates) are stored"
    )
    stats_every: Time | None = Field(
        None, description="interval between samples of the time-averaged statistics (default: every step)"
    )
    batches: Annotated[int, Field(ge=1)] = Field(
        10, description="independent batches of trials for the transient-rate fit (its spread across batches)"
    )

    @field_validator("every", "stats_every")
    @classmethod
    def _every_positive(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError("a positive time of at least run.dt (a zero or negative interval is not a sampling)")
        return v
