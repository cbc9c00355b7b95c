"""What a ``curl_descent`` run decides and builds once: refusals, teachers, rule signs, kicks, data.

:func:`check` makes every refusal from the validated scenario alone and allocates nothing; :func:`build`
then draws, once, from streams spawned from ``run.seed``:

* the teachers (one per seed, shared by every flip fraction of a sweep, so a sweep changes only ``D``);
* the perturbations of the teacher point (``stability``, ``chaos``) and the Benettin shadow direction;
* for ``saddle_escape``: per (P, seed) the training and test inputs, the teacher's outputs and the
  student's start; GD and curl descent share data, start and example order (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from neurodyn.errors import ScenarioError
from neurodyn.families.base import Built
from neurodyn.resources import require_memory
from neurodyn.stepping import steps

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.curl_descent.params import CurlParams
    from neurodyn.scenario import Scenario

#: activation name -> kernel code (:mod:`.kernels`)
ACTIVATIONS = {"linear": 0, "tanh": 1, "relu": 2}


def flips(size: int, alpha: float) -> np.ndarray:
    """Rule signs of ``size`` neurons: the first ``round(alpha size)`` are -1 (the authors' convention)."""
    d = np.ones(size)
    d[: int(round(alpha * size))] = -1.0
    return d


def teacher(rng: np.random.Generator, inputs: int, hidden: int, init: str = "uniform") -> tuple[np.ndarray, np.ndarray]:
    """A teacher ``(W1*, w2*)``: uniform in +-1/sqrt(fan-in) (or normal with that scale), rescaled to
    ``|W1*|_F = sqrt(N)`` and ``|w2*| = 1`` (so rows of W1* have unit norm on average and rho = |w2|^2 = 1)."""
    if init == "normal":
        W1 = rng.normal(0.0, 1.0 / np.sqrt(inputs), size=(hidden, inputs))
        w2 = rng.normal(0.0, 1.0 / np.sqrt(hidden), size=hidden)
    else:
        W1 = rng.uniform(-1.0 / np.sqrt(inputs), 1.0 / np.sqrt(inputs), size=(hidden, inputs))
        w2 = rng.uniform(-1.0 / np.sqrt(hidden), 1.0 / np.sqrt(hidden), size=hidden)
    return W1 * np.sqrt(hidden) / np.linalg.norm(W1), w2 / np.linalg.norm(w2)


def k_matrix(W1: np.ndarray, w2: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """``K = |w2|^2 D1 + W1^T D2 W1`` (M x M): the flow's Jacobian on the zero-loss manifold is
    ``-eta s^2 K`` transversally (our reconstruction; see ``docs/curl_descent.md``)."""
    return float(w2 @ w2) * np.diag(d1) + W1.T @ (d2[:, None] * W1)


def unit_direction(rng: np.random.Generator, size: int) -> np.ndarray:
    """A uniformly random unit vector."""
    v = rng.standard_normal(size)
    return v / np.linalg.norm(v)


@dataclass
class FlowGrid:
    """Steps and sampling of a flow run."""

    n_steps: int
    every: int

    @property
    def n_samples(self) -> int:
        """Stored samples (step 0 included)."""
        return self.n_steps // self.every + 1


@dataclass
class TrainSet:
    """One (P, seed) training problem: data, teacher outputs, the student's start, the order stream."""

    X: np.ndarray
    y: np.ndarray
    Xt: np.ndarray
    yt: np.ndarray
    W1: np.ndarray
    w2: np.ndarray
    order_seed: np.random.SeedSequence


@dataclass
class CurlBuilt(Built):
    """Teachers, kicks and data of one run (fields unused by an experiment stay empty)."""

    grid: FlowGrid | None = None
    teachers: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    kicks: list[np.ndarray] = field(default_factory=list)
    shadows: list[np.ndarray] = field(default_factory=list)
    boundary_seed: np.random.SeedSequence | None = None
    train_sets: dict[tuple[int, int], TrainSet] = field(default_factory=dict)

    @property
    def params(self) -> CurlParams:
        """The scenario's validated parameters."""
        return self.scenario.params


def flow_grid(p: CurlParams) -> FlowGrid:
    """Steps of the flow and the sampling interval giving about ``flow.samples`` samples."""
    n = steps(p.flow.duration, p.flow.dt, at_least=1)
    return FlowGrid(n, max(1, n // p.flow.samples))


def epochs(scenario: Scenario) -> int:
    """Epochs of a training run: ``run.epochs`` if given, else ``params.training.epochs``."""
    return int(scenario.run.epochs or scenario.params.training.epochs)


def check(scenario: Scenario) -> None:
    """Every refusal of the run, from the scenario alone; the memory estimate."""
    p: CurlParams = scenario.params
    M, N = p.inputs, p.hidden
    if p.experiment in ("stability", "chain", "chaos"):
        grid = flow_grid(p)
        if grid.n_steps > 10**9:
            raise ScenarioError("params.flow.dt", p.flow.dt, f"at most 1e9 steps in flow.duration = {p.flow.duration}")
        if p.experiment == "chain":
            width, cases = 2, len(p.chain.r2)
        else:
            sweep = p.stability if p.experiment == "stability" else p.chaos
            width, cases = N * M + N, p.seeds * len(sweep.layers) * len(sweep.alpha)
        require_memory(8.0 * grid.n_samples * width * cases, "the recorded weights of every flow run")
    if p.experiment == "stability":
        dim = N * M + N
        if dim > 4000:
            raise ScenarioError(
                "params.hidden", N, f"N (M + 1) <= 4000 for the finite-difference Jacobian (here {dim})"
            )
        big = max(p.stability.boundary_inputs / c for c in p.stability.boundary_c) * p.stability.boundary_inputs
        require_memory(8.0 * 3 * big, "the largest teacher of the phase-boundary check")
    if p.experiment == "chaos":
        renorm = steps(p.chaos.renorm_every, p.flow.dt, at_least=1)
        if renorm > flow_grid(p).n_steps:
            raise ScenarioError(
                "params.chaos.renorm_every", p.chaos.renorm_every, f"at most flow.duration = {p.flow.duration}"
            )
    if p.experiment == "saddle_escape":
        t = p.training
        if t.batch > min(t.samples):
            raise ScenarioError("params.training.batch", t.batch, f"at most the smallest P = {min(t.samples)}")
        n_e = epochs(scenario)
        per = max(t.samples) * (M + 2) + t.test_samples * (M + 1)
        require_memory(8.0 * (per * p.seeds + 4 * n_e * len(t.flipped_readout) * p.seeds * len(t.samples)), "data")


def build(scenario: Scenario) -> CurlBuilt:
    """Draw teachers, kicks and data once (see module docstring)."""
    p: CurlParams = scenario.params
    root = np.random.SeedSequence(scenario.run.seed)
    s_teach, s_kick, s_shadow, s_bound, s_train = root.spawn(5)
    built = CurlBuilt(scenario)
    M, N = p.inputs, p.hidden
    if p.experiment in ("stability", "chaos"):
        built.grid = flow_grid(p)
        kick = p.stability.kick if p.experiment == "stability" else p.chaos.kick
        for ts, ks, ss in zip(s_teach.spawn(p.seeds), s_kick.spawn(p.seeds), s_shadow.spawn(p.seeds)):
            built.teachers.append(teacher(np.random.default_rng(ts), M, N, p.teacher_init))
            built.kicks.append(kick * unit_direction(np.random.default_rng(ks), N * M + N))
            built.shadows.append(unit_direction(np.random.default_rng(ss), N * M + N))
        built.boundary_seed = s_bound
    elif p.experiment == "chain":
        built.grid = flow_grid(p)
    elif p.experiment == "saddle_escape":
        t = p.training
        act = ACTIVATIONS[p.activation]
        sd = np.sqrt(p.input_variance)
        for P, sP in zip(t.samples, s_train.spawn(len(t.samples))):
            for seed, ss in enumerate(sP.spawn(p.seeds)):
                s_t, s_x, s_s, s_o = ss.spawn(4)
                W1t, w2t = teacher(np.random.default_rng(s_t), M, N, p.teacher_init)
                rx = np.random.default_rng(s_x)
                X = sd * rx.standard_normal((P, M))
                Xt = sd * rx.standard_normal((t.test_samples, M))
                rs = np.random.default_rng(s_s)
                g = t.init_gain
                W1 = rs.uniform(-g / np.sqrt(M), g / np.sqrt(M), size=(N, M))
                w2 = rs.uniform(-g / np.sqrt(N), g / np.sqrt(N), size=N)
                built.train_sets[(P, seed)] = TrainSet(
                    X, teacher_output(W1t, w2t, X, act), Xt, teacher_output(W1t, w2t, Xt, act), W1, w2, s_o
                )
    return built


def teacher_output(W1: np.ndarray, w2: np.ndarray, X: np.ndarray, act: int) -> np.ndarray:
    """``phi(w2 . phi(W1 x))`` for every row of ``X`` (NumPy; the teacher is evaluated once)."""
    phi = {0: lambda z: z, 1: np.tanh, 2: lambda z: np.maximum(z, 0.0)}[act]
    return phi(phi(X @ W1.T) @ w2)
