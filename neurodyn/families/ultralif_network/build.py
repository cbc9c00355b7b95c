"""What an ``ultralif_network`` run decides and builds once, before it trains or sweeps eps.

:func:`check` makes the refusals the run would make (the memory estimate) from the validated scenario
alone and allocates nothing; ``neurodyn validate`` and the sweep planner call it alone. :func:`build` then
constructs, once:

* for ``train``: the task (:mod:`.data`: the digits split or the generated event streams) and, for every
  trained model, its network (:class:`NetSpec`: architecture, neuron constants, parameter layout);
  each training run initialises its parameters from its own seed (:func:`.engine.train`);
* for ``bounds``: the random vectors and input currents the eps sweep measures on (:class:`BoundsInputs`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from neurodyn.families.base import Built
from neurodyn.families.ultralif_network.data import Task, load_digits_split, load_events
from neurodyn.families.ultralif_network.dataset import EPOCH_ATTRS
from neurodyn.resources import require_memory

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.ultralif_network.params import UltraLIFParams
    from neurodyn.scenario import Scenario

ULTRA_KINDS = ("ultralif", "ultradlif", "ultraplif", "ultradplif")
#: kinds whose tau0 = sigmoid(tau_param) is learned (the "P" variants)
LEARN_TAU_KINDS = ("ultraplif", "ultradplif")
#: inputs and classes of scikit-learn's digits
DIGITS_SIZES = (64, 10)


# --------------------------------------------------------------------------- one network


@dataclass
class NetSpec:
    """Architecture and fixed neuron constants of one network.

    Parameters
    ----------
    sizes : list of int
        ``[n_in, hidden_1, ..., hidden_L, n_out]``.
    kind : str
        Neuron kind (a key of :data:`~.params.KIND_CODES`).
    surrogate : str
        ``sigmoid`` or ``atan`` (used by ``lif`` and ``maxplus_lif`` only).
    surrogate_k : float
        Sharpness of the surrogate (10 for sigmoid as in the paper, alpha = 2 for ATan).
    theta, v_reset : float
        Threshold and reset value.
    eps_lo, eps_hi : float
        Clamp range of eps = exp(log_eps).
    smooth : bool
        Surrogate kinds only: forward spike = surrogate primitive (used by the gradient check).
    """

    sizes: list[int]
    kind: str
    surrogate: str = "sigmoid"
    surrogate_k: float = 10.0
    theta: float = 0.5
    v_reset: float = 0.0
    eps_lo: float = 0.1
    eps_hi: float = 20.0
    smooth: bool = False
    offs: np.ndarray = field(init=False)
    n_params: int = field(init=False)

    def __post_init__(self) -> None:
        L = len(self.sizes) - 2
        offs = np.full((L + 1, 4), -1, dtype=np.int64)
        k = 0
        for l in range(L):
            n_in, n = self.sizes[l], self.sizes[l + 1]
            offs[l] = (k, k + n * n_in, k + n * n_in + n, k + n * n_in + n + 1)
            k += n * n_in + n + 2
        offs[L, 0] = k
        offs[L, 1] = k + self.sizes[-1] * self.sizes[-2]
        self.n_params = int(offs[L, 1] + self.sizes[-1])
        self.offs = offs

    @property
    def n_hidden_layers(self) -> int:
        """Number of hidden (spiking) layers L."""
        return len(self.sizes) - 2

    def init(self, rng: np.random.Generator, eps0: float, tau0: float) -> np.ndarray:
        """Flat parameter vector: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's
        ``nn.Linear`` default), ``log_eps = log eps0``, ``tau_param = logit(tau0)``."""
        p = np.empty(self.n_params)
        L = self.n_hidden_layers
        for l in range(L + 1):
            n_in, n = self.sizes[l], self.sizes[l + 1]
            bound = 1.0 / math.sqrt(n_in)
            w0, b0 = self.offs[l, 0], self.offs[l, 1]
            p[w0 : w0 + n * n_in] = rng.uniform(-bound, bound, n * n_in)
            p[b0 : b0 + n] = rng.uniform(-bound, bound, n)
            if l < L:
                p[self.offs[l, 2]] = math.log(eps0)
                p[self.offs[l, 3]] = math.log(tau0 / (1.0 - tau0))
        return p

    def train_mask(self, learn_eps: bool) -> np.ndarray:
        """1 for parameters the optimiser updates: eps only for Ultra kinds, tau only for P kinds."""
        mask = np.ones(self.n_params, dtype=np.int8)
        for l in range(self.n_hidden_layers):
            if not (learn_eps and self.kind in ULTRA_KINDS):
                mask[self.offs[l, 2]] = 0
            if self.kind not in LEARN_TAU_KINDS:
                mask[self.offs[l, 3]] = 0
        return mask

    def log_eps_index(self) -> np.ndarray:
        """Positions of the log_eps entries."""
        return self.offs[:-1, 2].copy()

    def tau_index(self) -> np.ndarray:
        """Positions of the tau_param entries."""
        return self.offs[:-1, 3].copy()


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and encoding settings of one training run."""

    T: int
    epochs: int
    batch_size: int = 128
    lr: float = 1e-3
    lam: float = 0.0
    learn_eps: bool = True
    eps0: float = 1.0
    tau0: float = 0.9
    input_gain: float = 0.5
    test_repeats: int = 1
    beta1: float = 0.9
    beta2: float = 0.999
    adam_eps: float = 1e-8


# --------------------------------------------------------------------------- the two experiments


@dataclass(frozen=True)
class Model:
    """One trained neuron model: its label in the result (``kind`` or ``kind[surrogate]``) and its network."""

    label: str
    spec: NetSpec


@dataclass(frozen=True)
class TrainingSetup:
    """Everything the ``train`` experiment builds before its first epoch."""

    task: Task
    models: tuple[Model, ...]
    seeds: tuple[int, ...]
    epochs: int
    #: the optimiser and encoding of every run, one per sparsity weight lambda
    configs: tuple[TrainConfig, ...]

    @property
    def sizes(self) -> list[int]:
        """``[n_in, hidden..., n_out]`` of every model."""
        return self.models[0].spec.sizes


def _training_setup(p: UltraLIFParams, seeds: list[int], epochs: int) -> TrainingSetup:
    if p.dataset == "digits":
        task = load_digits_split(p.test_fraction)
    else:
        e = p.events
        task = load_events(
            p.T,
            e.n_train,
            e.n_test,
            e.n_groups,
            e.channels_per_group,
            e.n_classes,
            e.events_per_channel,
            e.burst_width,
            e.jitter,
            e.noise_events,
            e.data_seed,
        )
    sizes = [task.n_in, *p.hidden, task.n_classes]
    models = tuple(
        Model(
            label,
            NetSpec(
                sizes,
                kind,
                surrogate=sur,
                surrogate_k=p.sigmoid_sharpness if sur == "sigmoid" else p.atan_alpha,
                theta=p.theta,
                v_reset=p.v_reset,
                eps_lo=p.eps_min,
                eps_hi=p.eps_max,
            ),
        )
        for label, kind, sur in p.model_labels()
    )
    configs = tuple(
        TrainConfig(
            T=p.T,
            epochs=epochs,
            batch_size=p.batch_size,
            lr=p.lr,
            lam=lam,
            learn_eps=p.learn_eps,
            eps0=p.eps,
            tau0=p.tau0,
            input_gain=p.input_gain,
            test_repeats=p.test_repeats,
        )
        for lam in p.sparsity
    )
    return TrainingSetup(task, models, tuple(seeds), epochs, configs)


@dataclass(frozen=True)
class BoundsInputs:
    """The random draws of the bounds experiment, made once from ``run.seed``."""

    x_lse: np.ndarray  #: (n_samples, lse_terms) N(0, 1) vectors for the LSE lemma
    x_sig: np.ndarray  #: (n_samples,) U(-3, 3) points for the sigmoid lemma
    I: np.ndarray  #: (steps, n_neurons) input of the single UltraLIF neurons
    I_ring: np.ndarray  #: (steps, n_neurons) input of the UltraDLIF ring
    #: stream of the random layers of the weight-gradient bound (drawn anew for every eps)
    w_stream: np.random.SeedSequence


def _bounds_inputs(p: UltraLIFParams, seed: int) -> BoundsInputs:
    b = p.bounds
    streams = np.random.SeedSequence([seed, 1]).spawn(5)
    r_lse, r_sig, r_traj, r_ring = (np.random.default_rng(s) for s in streams[:4])
    return BoundsInputs(
        x_lse=r_lse.normal(0.0, 1.0, (b.n_samples, b.lse_terms)),
        x_sig=r_sig.uniform(-3.0, 3.0, b.n_samples),
        I=r_traj.uniform(b.input_low, b.input_high, (b.steps, b.n_neurons)),
        I_ring=r_ring.uniform(b.input_low, b.input_high, (b.steps, b.n_neurons)),
        w_stream=streams[4],
    )


# --------------------------------------------------------------------------- the built run


@dataclass
class UltraLIFBuilt(Built):
    """An ``ultralif_network`` run, built: the setup of its experiment (exactly one of the two is set)."""

    training: TrainingSetup | None = None
    bounds: BoundsInputs | None = None

    @property
    def params(self) -> UltraLIFParams:
        """The scenario's validated parameters."""
        return self.scenario.params


def epochs_of(scenario: Scenario) -> int:
    """Epochs of a training run: ``run.epochs`` if given, else ``params.epochs``."""
    return scenario.run.epochs or scenario.params.epochs


def seeds_of(scenario: Scenario) -> list[int]:
    """Training seeds: ``params.seeds`` if given, else ``[run.seed]``."""
    p: UltraLIFParams = scenario.params
    return p.seeds if p.seeds is not None else [scenario.run.seed]


def build(scenario: Scenario) -> UltraLIFBuilt:
    """Build the experiment's task and networks, or the bounds experiment's random inputs, once."""
    p: UltraLIFParams = scenario.params
    if p.experiment == "bounds":
        return UltraLIFBuilt(scenario, bounds=_bounds_inputs(p, scenario.run.seed))
    return UltraLIFBuilt(scenario, training=_training_setup(p, seeds_of(scenario), epochs_of(scenario)))


# --------------------------------------------------------------------------- checks


def check(scenario: Scenario) -> None:
    """Refuse a run whose estimated memory does not fit (before anything is allocated)."""
    p: UltraLIFParams = scenario.params
    if p.experiment == "bounds":
        b = p.bounds
        nbytes = 8 * 6 * b.steps * b.n_neurons + 8 * b.n_samples * (b.lse_terms + 1) * 3
        detail = f"6 x {b.steps} steps x {b.n_neurons} neurons x 8 B, {b.n_samples} samples x {b.lse_terms + 1} terms"
        what = "params.bounds"
    else:
        nbytes, detail = _training_memory(p, epochs_of(scenario))
        what = "params.batch_size, params.T, params.hidden, epochs"
    require_memory(nbytes, detail, what=what, hint="reduce batch_size, T, hidden or bounds sizes")


def _training_memory(p: UltraLIFParams, epochs: int) -> tuple[float, str]:
    """Estimated bytes of a training run and what they are made of."""
    if p.dataset == "digits":
        n_in, n_out = DIGITS_SIZES
    else:
        n_in, n_out = p.events.n_groups * p.events.channels_per_group, p.events.n_classes
    sizes = [n_in, *p.hidden, n_out]
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    # workspaces: 5 (B, L, T, H) arrays and one (B, L, T, 4, H); per layer ~3 (B*T, H) temporaries
    # (input, current, dI); one gradient vector
    nbytes = 8 * (p.batch_size * (9 * len(p.hidden) + 3) * p.T * max(p.hidden) + n_params)
    detail = (
        f"workspaces of batch_size {p.batch_size} x {9 * len(p.hidden) + 3} per layer x T {p.T} x hidden "
        f"{max(p.hidden)} x 8 B"
    )
    if p.dataset == "events":
        nbytes += 8 * (p.events.n_train + p.events.n_test) * p.T * n_in
        detail += f", event data {p.events.n_train + p.events.n_test} samples x T x {n_in} inputs x 8 B"
    # the per-epoch records of every (model, sparsity, seed) run
    runs = len(p.model_labels()) * len(p.sparsity) * len(p.seeds if p.seeds is not None else [0])
    nbytes += 8 * runs * epochs * (len(EPOCH_ATTRS) + 2 * len(p.hidden))
    detail += f", epoch records {runs} runs x {epochs} epochs"
    return nbytes, detail
