"""What an ``eqprop`` run decides and builds once, before it trains or relaxes anything.

:func:`check` makes every refusal from the validated scenario alone (the digits' sizes, the minibatch
against the training set, the finite-difference budget, the memory estimate) and allocates nothing, so
``neurodyn validate`` and the sweep planner can call it alone. :func:`build` then constructs, once:

* the network's layout (:class:`Layout`: where each layer and weight matrix lives in the flat arrays);
* for ``train``: the digits split (:class:`Digits`), each seed's Glorot-uniform starting weights and its
  random streams (:class:`SeedStart`), and the learning rates per unit (:class:`TrainingSetup`);
* for ``gradient_theorem`` and ``bptt_match``: the small network and batch of random examples both
  experiments differentiate (:class:`GradientProblem`).

This module imports neither Numba nor scikit-learn at import time (the digits load inside :func:`build`),
so checking a scenario stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from neurodyn.errors import ResourceError, ScenarioError
from neurodyn.families.base import Built
from neurodyn.families.eqprop.dataset import CURVES
from neurodyn.resources import require_memory

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.eqprop.params import Data, EqPropParams, GradientExperiment
    from neurodyn.scenario import Scenario

#: inputs and classes of scikit-learn's bundled digits (8 x 8 images of 0..9)
N_FEATURES = 64
N_CLASSES = 10
#: examples in scikit-learn's bundled digits
N_DIGITS = 1797
#: largest network of the gradient-theorem experiment (two relaxations per parameter)
MAX_FD_PARAMS = 20_000


# --------------------------------------------------------------------------- network layout


@dataclass(frozen=True)
class Layout:
    """Row offsets of the layers in a state array and of the weight matrices in the flat vector.

    Attributes
    ----------
    layers : tuple of int
        Units per layer, input first.
    off : ndarray of int64
        Layer ``k`` is rows ``off[k]:off[k+1]``.
    woff : ndarray of int64
        ``W_k`` (shape ``(layers[k], layers[k+1])``) is ``Wf[woff[k]:woff[k+1]]``.
    """

    layers: tuple[int, ...]
    off: np.ndarray
    woff: np.ndarray

    @property
    def n_units(self) -> int:
        """Total number of units, input included."""
        return int(self.off[-1])

    @property
    def n_weights(self) -> int:
        """Total number of weights."""
        return int(self.woff[-1])

    def weights(self, Wf: np.ndarray) -> list[np.ndarray]:
        """The weight matrices as a list of 2-D views of ``Wf``."""
        return [
            Wf[self.woff[k] : self.woff[k + 1]].reshape(self.layers[k], self.layers[k + 1])
            for k in range(len(self.layers) - 1)
        ]

    def biases(self, bf: np.ndarray) -> list[np.ndarray]:
        """The bias vector of every non-input layer (views of ``bf``)."""
        return [bf[self.off[k] : self.off[k + 1]] for k in range(1, len(self.layers))]


def make_layout(layers: list[int] | tuple[int, ...]) -> Layout:
    """Offsets for the given layer sizes."""
    sizes = np.asarray(layers, dtype=np.int64)
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    wsz = sizes[:-1] * sizes[1:]
    woff = np.concatenate([[0], np.cumsum(wsz)]).astype(np.int64)
    return Layout(tuple(int(x) for x in layers), off, woff)


def glorot_uniform(layout: Layout, rng: np.random.Generator, gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Glorot-uniform weights ``U(-a, a)``, ``a = gain sqrt(6 / (fan_in + fan_out))``; zero biases.

    Returns
    -------
    (ndarray, ndarray)
        The flat weight vector and the per-unit bias vector (length ``layout.n_units``).
    """
    Wf = np.empty(layout.n_weights)
    for k, W in enumerate(layout.weights(Wf)):
        a = gain * np.sqrt(6.0 / (layout.layers[k] + layout.layers[k + 1]))
        W[:] = rng.uniform(-a, a, size=W.shape)
    return Wf, np.zeros(layout.n_units)


def per_unit_bias_rates(layout: Layout, lr_w: list[float]) -> np.ndarray:
    """Bias learning rate of every unit: a layer's bias uses the rate of the weight matrix feeding it."""
    lr_b = np.zeros(layout.n_units)
    for k in range(1, len(layout.layers)):
        lr_b[layout.off[k] : layout.off[k + 1]] = lr_w[k - 1]
    return lr_b


# --------------------------------------------------------------------------- training: data and starts


class Digits(NamedTuple):
    """scikit-learn's digits scaled to [0, 1] and split once; one column per example."""

    X_train: np.ndarray  #: (64, n_train) pixel intensities
    D_train: np.ndarray  #: (10, n_train) one-hot targets
    y_train: np.ndarray  #: (n_train,) labels
    X_test: np.ndarray  #: (64, n_test)
    D_test: np.ndarray  #: (10, n_test)
    y_test: np.ndarray  #: (n_test,)


def load_digits(data: Data) -> Digits:
    """Digits scaled to [0, 1], split once (stratified, ``data.split_seed``), one column per example."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    X, y = sklearn_digits(return_X_y=True)
    X = X / 16.0  # pixel intensities are 0..16
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=data.test_fraction, random_state=data.split_seed, stratify=y)
    return Digits(
        np.ascontiguousarray(Xtr.T),
        _one_hot(ytr),
        ytr.astype(np.int64),
        np.ascontiguousarray(Xte.T),
        _one_hot(yte),
        yte.astype(np.int64),
    )


def _one_hot(y: np.ndarray) -> np.ndarray:
    D = np.zeros((N_CLASSES, y.size))
    D[y, np.arange(y.size)] = 1.0
    return D


def rule_names(p: EqPropParams) -> list[str]:
    """Values of the ``rule`` dimension: ``ep_<estimator>`` per estimator, then ``bp``.

    (Not called ``method``: that name would clash with the keyword of ``Dataset.sel``.)
    """
    t = p.training
    assert t is not None
    return [f"ep_{est}" for est in t.estimators] + (["bp"] if t.backprop else [])


@dataclass(frozen=True)
class SeedStart:
    """Where every rule of one seed starts: the same Glorot-uniform weights, and one random stream per rule
    (its example order and beta signs)."""

    seed: int
    Wf: np.ndarray
    bf: np.ndarray
    streams: tuple[np.random.SeedSequence, ...]


@dataclass(frozen=True)
class TrainingSetup:
    """Everything the ``train`` experiment builds before its first epoch."""

    digits: Digits
    rules: tuple[str, ...]
    starts: tuple[SeedStart, ...]
    epochs: int
    #: EP learning rates: one per weight matrix, one per unit (the bias of the layer it feeds)
    lr_w: np.ndarray
    lr_b: np.ndarray
    #: backprop's learning rates (``training.bp_lr``, default ``training.lr``), likewise
    bp_lr_w: np.ndarray
    bp_lr_b: np.ndarray


def _training_setup(p: EqPropParams, layout: Layout, run_seed: int, epochs: int) -> TrainingSetup:
    t = p.training
    assert t is not None
    rules = rule_names(p)
    seeds = list(t.seeds) if t.seeds is not None else [run_seed]
    starts = []
    for seed in seeds:
        init_ss, *rule_ss = np.random.SeedSequence(seed).spawn(1 + len(rules))
        Wf, bf = glorot_uniform(layout, np.random.default_rng(init_ss), p.init_gain)
        starts.append(SeedStart(seed, Wf, bf, tuple(rule_ss)))
    bp_rates = t.bp_lr or t.lr
    return TrainingSetup(
        digits=load_digits(p.data),
        rules=tuple(rules),
        starts=tuple(starts),
        epochs=epochs,
        lr_w=np.asarray(t.lr, dtype=float),
        lr_b=per_unit_bias_rates(layout, t.lr),
        bp_lr_w=np.asarray(bp_rates, dtype=float),
        bp_lr_b=per_unit_bias_rates(layout, bp_rates),
    )


# --------------------------------------------------------------------------- gradient experiments


@dataclass(frozen=True)
class GradientProblem:
    """The network and batch of the gradient experiments.

    Glorot-uniform weights and zero biases, random inputs (uniform in [0, 1]) and random one-hot targets,
    all from one seed (``run.seed``).
    """

    layout: Layout
    Wf: np.ndarray
    bf: np.ndarray
    X: np.ndarray  #: (n_in, n_examples) inputs
    D: np.ndarray  #: (n_out, n_examples) one-hot targets

    @classmethod
    def draw(cls, p: EqPropParams, n_examples: int, seed: int) -> GradientProblem:
        """Draw the weights (first stream spawned from ``seed``) and the batch (second stream)."""
        layout = make_layout(p.layers)
        init_ss, data_ss = np.random.SeedSequence(seed).spawn(2)
        Wf, bf = glorot_uniform(layout, np.random.default_rng(init_ss), p.init_gain)
        rng = np.random.default_rng(data_ss)
        n_in, n_out = p.layers[0], p.layers[-1]
        X = rng.uniform(0.0, 1.0, size=(n_in, n_examples))
        D = np.zeros((n_out, n_examples))
        D[rng.integers(0, n_out, n_examples), np.arange(n_examples)] = 1.0
        return cls(layout, Wf, bf, X, D)

    def zero_state(self) -> np.ndarray:
        """The input clamped, every other unit at 0."""
        S = np.zeros((self.layout.n_units, self.X.shape[1]))
        S[: self.X.shape[0]] = self.X
        return S

    def param_mask(self) -> np.ndarray:
        """Which entries of ``concat(Wf, bf)`` are parameters (the input rows of ``bf`` are not)."""
        mask = np.ones(self.layout.n_weights + self.layout.n_units, dtype=bool)
        mask[self.layout.n_weights : self.layout.n_weights + self.layout.layers[0]] = False
        return mask

    def param_groups(self) -> np.ndarray:
        """Name of the tensor each parameter belongs to (``W_0``, ``W_1``, ..., ``b_1``, ...)."""
        lay = self.layout
        names = [f"W_{k}" for k in range(len(lay.layers) - 1) for _ in range(lay.woff[k], lay.woff[k + 1])]
        names += [f"b_{k}" for k in range(1, len(lay.layers)) for _ in range(lay.off[k], lay.off[k + 1])]
        return np.array(names)


def gradient_experiment(p: EqPropParams) -> GradientExperiment:
    """The settings of the scenario's gradient experiment (``theorem`` or ``bptt``)."""
    ex = p.theorem if p.experiment == "gradient_theorem" else p.bptt
    assert ex is not None
    return ex


# --------------------------------------------------------------------------- the built run


@dataclass
class EqPropBuilt(Built):
    """An ``eqprop`` run, built: the layout and the experiment's setup (exactly one of the two is set)."""

    layout: Layout
    training: TrainingSetup | None = None
    problem: GradientProblem | None = None

    @property
    def params(self) -> EqPropParams:
        """The scenario's validated parameters."""
        return self.scenario.params


def epochs_of(scenario: Scenario) -> int:
    """Epochs of a training run: ``run.epochs`` if given, else ``params.training.epochs``."""
    t = scenario.params.training
    return int(scenario.run.epochs or t.epochs)


def build(scenario: Scenario) -> EqPropBuilt:
    """Build the layout and the experiment's data, starting weights and streams, once."""
    p: EqPropParams = scenario.params
    layout = make_layout(p.layers)
    if p.experiment == "train":
        return EqPropBuilt(
            scenario, layout, training=_training_setup(p, layout, int(scenario.run.seed), epochs_of(scenario))
        )
    ex = gradient_experiment(p)
    return EqPropBuilt(scenario, layout, problem=GradientProblem.draw(p, ex.n_examples, int(scenario.run.seed)))


# --------------------------------------------------------------------------- checks


def check(scenario: Scenario) -> None:
    """Refuse what the run would refuse: sizes the experiment cannot take, a memory estimate that does not fit."""
    p: EqPropParams = scenario.params
    if p.experiment == "train":
        _check_training(p, epochs_of(scenario))
    else:
        _check_gradient(p)


def _sizes(p: EqPropParams) -> tuple[np.ndarray, float, float, float]:
    """Layer sizes, and the numbers of weights, parameters (weights and non-input biases) and units."""
    sizes = np.asarray(p.layers, dtype=float)
    n_weights = float((sizes[:-1] * sizes[1:]).sum())
    return sizes, n_weights, n_weights + float(sizes[1:].sum()), float(sizes.sum())


def _check_gradient(p: EqPropParams) -> None:
    sizes, _, n_params, n_units = _sizes(p)
    if p.experiment == "gradient_theorem":
        if n_params > MAX_FD_PARAMS:
            raise ResourceError(
                f"params.layers = {p.layers}: {n_params:.0f} parameters; finite "
                f"differences need two relaxations each, so at most {MAX_FD_PARAMS}"
            )
        th = p.theorem
        assert th is not None
        need = 8.0 * (2 * len(th.betas) * n_params + 4 * n_units * th.n_examples + 4 * n_params)
        detail = f"{n_params:.0f} parameters x {len(th.betas)} betas x 2 estimators x 8 B"
    else:
        bp = p.bptt
        assert bp is not None
        n_rel = n_units - sizes[0]
        per_step = n_rel * bp.n_examples + n_params + n_units
        need = 8.0 * bp.steps * (per_step + len(bp.betas) * (n_params + n_rel * bp.n_examples))
        detail = f"{bp.steps} steps x {len(bp.betas)} betas x ({n_params:.0f} parameters + states) x 8 B"
    require_memory(need, detail, what=f"params.layers = {p.layers}", hint="use smaller layers or fewer steps")


def _check_training(p: EqPropParams, epochs: int) -> None:
    if p.layers[0] != N_FEATURES or p.layers[-1] != N_CLASSES:
        raise ScenarioError(
            "params.layers",
            p.layers,
            f"the digits data has {N_FEATURES} inputs and {N_CLASSES} classes: layers must "
            f"start with {N_FEATURES} and end with {N_CLASSES}, e.g. [64, 500, 10]",
        )
    t = p.training
    assert t is not None
    n_train = N_DIGITS - math.ceil(p.data.test_fraction * N_DIGITS)  # as train_test_split
    if t.batch_size > n_train:
        raise ScenarioError(
            "params.training.batch_size", t.batch_size, f"must not exceed the {n_train} training examples"
        )
    _, n_weights, n_params, n_units = _sizes(p)
    n_rules = len(rule_names(p))
    n_seeds = len(t.seeds) if t.seeds is not None else 1
    # weights, gradients and optimiser copies; persistent particles of every train and test example;
    # the stored final weights of every (rule, seed); the learning curves of every (rule, seed, epoch)
    parts = {
        "weights": 4.0 * n_weights,
        "particles": n_units * N_DIGITS,
        "stored weights": n_rules * n_seeds * n_params,
        "curves": (len(CURVES) + 4) * n_rules * n_seeds * epochs,
    }
    detail = ", ".join(f"{k} {v:.3g} x 8 B" for k, v in parts.items())
    require_memory(8.0 * sum(parts.values()), detail, what=f"params.layers = {p.layers}", hint="use smaller layers")
