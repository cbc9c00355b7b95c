"""The ``xor`` experiment: the bit-stream XOR task of the CfC paper (Table 4), trained by exact BPTT in Numba.

Data (generated offline, as ``XORData`` of the authors' ``irregular_sampled_datasets.py`` does): a sequence of
``randint(2, pad)`` fair random bits, label = parity of the number of 1-bits. ``equidistant``: one event per
bit, elapsed time 1. ``event``: an event only when the bit changes, carrying the new bit and the number of
steps since the previous event; a final event flushes the trailing run (at most ``pad - 1`` change events).
Elapsed times are divided by ``pad``; padded positions are not run. The generator draws from
``numpy.random.RandomState`` with the authors' seeds (training 1234984, test 48736), so the first sequences of
each split are the authors' first sequences.

Models: the CfC cell in its three modes (``cfc``, ``no_gate``, ``pure``; ReLU backbone as the authors' XOR
configuration) and the conductance-form LTC with ``unfolds`` fused sub-steps per sample (``ltc``), each read
out by ``logit = w . x_T + b`` and trained on the binary cross-entropy with Adam (gradient norm clipped at 1)
through :mod:`.kernels`' hand-written backward passes. After every step the LTC's weights, ``cm`` and
``gleak`` are clipped at 0 (ncps's constraint). A module of its own: the data generator, the parameter layout
and the training loop are this experiment's alone.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.families.ltc_cfc import kernels as K
from neurodyn.families.ltc_cfc.build import TAG_TRAIN, LTCBuilt, stream
from neurodyn.families.ltc_cfc.params import Xor
from neurodyn.schema import var_attrs
from neurodyn.stepping import Status, run_chunked

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.progress import Progress

#: the authors' seeds of the training and test splits
TRAIN_SEED, TEST_SEED = 1234984, 48736
#: gradient-norm clipping (the authors' clipnorm)
CLIP = 1.0


@dataclass
class XorSplit:
    """A split of the XOR task: inputs ``(S, P, 1)``, elapsed ``(S, P)``, valid lengths ``(S,)``, labels ``(S,)``."""

    inputs: np.ndarray
    elapsed: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray


def xor_split(size: int, seed: int, pad: int, event: bool) -> XorSplit:
    """``size`` sequences of the XOR task (see module docstring)."""
    rng = np.random.RandomState(seed)
    inputs = np.zeros((size, pad, 1))
    elapsed = np.zeros((size, pad))
    lengths = np.zeros(size, dtype=np.int64)
    labels = np.zeros(size)
    for s in range(size):
        length = rng.randint(low=2, high=pad)
        last, w, counter, ones = -1, 0, 0, 0
        bit = 0
        for _ in range(length):
            counter += 1
            bit = int(rng.randint(low=0, high=2))
            ones += bit
            if not event or bit != last:
                inputs[s, w, 0] = bit
                elapsed[s, w] = counter
                w += 1
                counter = 0
                if event and w >= pad - 1:
                    break
            last = bit
        if event and counter > 0:
            inputs[s, w, 0] = bit
            elapsed[s, w] = counter
            w += 1
        lengths[s] = w
        labels[s] = ones % 2
    return XorSplit(inputs, elapsed / pad, lengths, labels)


class Layout:
    """A model's parameters as one flat vector, with the views the kernels take (named tuples of views)."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]):
        self.shapes = shapes
        self.offsets: dict[str, int] = {}
        n = 0
        for name, shape in shapes.items():
            self.offsets[name] = n
            n += int(np.prod(shape))
        self.size = n

    def view(self, flat: np.ndarray, name: str) -> np.ndarray:
        """The parameter ``name`` as a view into ``flat``."""
        o = self.offsets[name]
        shape = self.shapes[name]
        return flat[o : o + int(np.prod(shape))].reshape(shape)


def cfc_layout(M: int, N: int, B: int) -> Layout:
    """Parameters of a CfC cell and its readout."""
    shapes = {"Wbb": (M + N, B), "bbb": (B,)}
    for h in ("1", "2", "a", "b"):
        shapes[f"W{h}"] = (B, N)
        shapes[f"b{h}"] = (N,)
    shapes.update({"A": (N,), "wtau": (N,), "wout": (N,), "bout": (1,)})
    return Layout(shapes)


def ltc_layout(M: int, N: int) -> Layout:
    """Parameters of a conductance-form LTC and its readout."""
    shapes: dict[str, tuple[int, ...]] = {"cm": (N,), "gl": (N,), "vl": (N,)}
    for name in ("W", "sig", "mu", "E"):
        shapes[name] = (N, N)
    for name in ("Ws", "sigs", "mus", "Es"):
        shapes[name] = (M, N)
    shapes.update({"wout": (N,), "bout": (1,)})
    return Layout(shapes)


def cfc_views(lay: Layout, flat: np.ndarray, mode: str, act: str) -> tuple[K.Cell, K.Readout]:
    """The CfC cell and readout whose arrays are views into ``flat``."""
    v = lay.view
    cell = K.Cell(
        v(flat, "Wbb"),
        v(flat, "bbb"),
        v(flat, "W1"),
        v(flat, "b1"),
        v(flat, "W2"),
        v(flat, "b2"),
        v(flat, "Wa"),
        v(flat, "ba"),
        v(flat, "Wb"),
        v(flat, "bb"),
        v(flat, "A"),
        v(flat, "wtau"),
        K.MODE_CODES[mode],
        K.ACT_CODES[act],
    )
    return cell, K.Readout(v(flat, "wout"), v(flat, "bout"))


def ltc_views(lay: Layout, flat: np.ndarray) -> tuple[K.Net, K.Readout]:
    """The LTC network (sigmoid head) and readout whose arrays are views into ``flat``."""
    v = lay.view
    N = lay.shapes["cm"][0]
    net = K.Net(
        v(flat, "cm"),
        v(flat, "gl"),
        v(flat, "vl"),
        v(flat, "W"),
        v(flat, "sig"),
        v(flat, "mu"),
        v(flat, "E"),
        v(flat, "Ws"),
        v(flat, "sigs"),
        v(flat, "mus"),
        v(flat, "Es"),
        np.zeros(N),
        np.zeros(N),
        K.HEAD_CODES["sigmoid"],
    )
    return net, K.Readout(v(flat, "wout"), v(flat, "bout"))


def init_cfc(lay: Layout, rng: np.random.Generator) -> np.ndarray:
    """ncps's initialisation: Glorot-uniform weights, PyTorch's default biases U(+-1/sqrt(fan_in)); Cf-S A = 1,
    w_tau = 0."""
    flat = np.zeros(lay.size)
    for name, shape in lay.shapes.items():
        view = lay.view(flat, name)
        if len(shape) == 2:
            a = math.sqrt(6.0 / (shape[0] + shape[1]))
            view[:] = rng.uniform(-a, a, size=shape)
    B = lay.shapes["bbb"][0]
    M_N = lay.shapes["Wbb"][0]
    N = lay.shapes["b1"][0]
    lay.view(flat, "bbb")[:] = rng.uniform(-1, 1, B) / math.sqrt(M_N)
    for h in ("1", "2", "a", "b"):
        lay.view(flat, f"b{h}")[:] = rng.uniform(-1, 1, N) / math.sqrt(B)
    lay.view(flat, "A")[:] = 1.0
    a = math.sqrt(6.0 / (N + 1))
    lay.view(flat, "wout")[:] = rng.uniform(-a, a, N)
    return flat


def init_ltc(lay: Layout, rng: np.random.Generator) -> np.ndarray:
    """ncps's LTCCell initial ranges; reversals of polarity drawn from {-1, +1, +1} (FullyConnected wiring)."""
    flat = np.zeros(lay.size)
    N = lay.shapes["cm"][0]
    ranges = {"gl": (0.001, 1.0), "vl": (-0.2, 0.2), "cm": (0.4, 0.6), "W": (0.001, 1.0), "sig": (3.0, 8.0)}
    ranges.update({"mu": (0.3, 0.8), "Ws": (0.001, 1.0), "sigs": (3.0, 8.0), "mus": (0.3, 0.8)})
    for name, (lo, hi) in ranges.items():
        lay.view(flat, name)[:] = rng.uniform(lo, hi, size=lay.shapes[name])
    for name in ("E", "Es"):
        lay.view(flat, name)[:] = rng.choice(np.array([-1.0, 1.0, 1.0]), size=lay.shapes[name])
    a = math.sqrt(6.0 / (N + 1))
    lay.view(flat, "wout")[:] = rng.uniform(-a, a, N)
    return flat


class Model:
    """One trainable model: its flat parameters, gradient, views, and the batch kernel call."""

    def __init__(self, kind: str, x: Xor, rng: np.random.Generator):
        self.kind = kind
        self.L = x.unfolds
        self.offset = x.ltc_time_offset
        if kind == "ltc":
            self.layout = ltc_layout(1, x.ltc_hidden)
            self.theta = init_ltc(self.layout, rng)
        else:
            self.layout = cfc_layout(1, x.hidden, x.backbone)
            self.theta = init_cfc(self.layout, rng)
        self.grad = np.zeros_like(self.theta)
        self._views()

    def _views(self) -> None:
        if self.kind == "ltc":
            self.model, self.out = ltc_views(self.layout, self.theta)
            self.gmodel, self.gout = ltc_views(self.layout, self.grad)
        else:
            mode = {"cfc": "default", "no_gate": "no_gate", "pure": "pure"}[self.kind]
            self.model, self.out = cfc_views(self.layout, self.theta, mode, "relu")
            self.gmodel, self.gout = cfc_views(self.layout, self.grad, mode, "relu")

    def batch(self, data: XorSplit, idx: np.ndarray, backward: bool, logits: np.ndarray) -> float:
        """Summed loss over ``idx`` (and, with ``backward``, the summed gradient added into :attr:`grad`)."""
        if self.kind == "ltc":
            return K.ltc_batch(
                self.model, self.out, self.gmodel, self.gout, data.inputs, data.elapsed, data.lengths,
                data.labels, idx, self.L, self.offset, backward, logits,
            )  # fmt: skip
        return K.cfc_batch(
            self.model, self.out, self.gmodel, self.gout, data.inputs, data.elapsed, data.lengths,
            data.labels, idx, backward, logits,
        )  # fmt: skip

    def constrain(self) -> None:
        """ncps's constraint on the LTC: weights, sensory weights, cm and gleak clipped at 0."""
        if self.kind == "ltc":
            for name in ("W", "Ws", "cm", "gl"):
                view = self.layout.view(self.theta, name)
                np.maximum(view, 0.0, out=view)


def evaluate(model: Model, data: XorSplit) -> tuple[float, float]:
    """Mean loss and accuracy on a split."""
    logits = np.zeros(data.labels.shape[0])
    loss = model.batch(data, np.arange(data.labels.shape[0], dtype=np.int64), False, logits)
    return loss / data.labels.shape[0], float(np.mean((logits > 0) == (data.labels > 0.5)))


def train(
    model: Model,
    x: Xor,
    train_set: XorSplit,
    test_set: XorSplit,
    rng: np.random.Generator,
    progress: Progress,
    desc: str,
) -> dict[str, np.ndarray]:
    """Train ``model`` for ``x.epochs`` epochs; per-epoch curves."""
    curves = {name: np.full(x.epochs, np.nan) for name in ("train_loss", "test_loss", "test_accuracy", "epoch_time")}
    m = np.zeros_like(model.theta)
    v = np.zeros_like(model.theta)
    logits = np.zeros(train_set.labels.shape[0])
    step = [0]

    def advance(first: int, n: int) -> tuple[Status, str]:
        for e in range(first, first + n):
            t0 = time.perf_counter()
            perm = rng.permutation(train_set.labels.shape[0]).astype(np.int64)
            total = 0.0
            for b0 in range(0, perm.shape[0], x.batch):
                idx = perm[b0 : b0 + x.batch]
                model.grad[:] = 0.0
                total += model.batch(train_set, idx, True, logits)
                model.grad /= idx.shape[0]
                step[0] += 1
                K.adam_step(model.theta, model.grad, m, v, step[0], x.lr, CLIP)
                model.constrain()
            if not np.all(np.isfinite(model.theta)):
                return Status.NAN, f"{desc}: parameters became non-finite at epoch {e + 1}; lower params.xor.lr"
            curves["epoch_time"][e] = time.perf_counter() - t0
            curves["train_loss"][e] = total / perm.shape[0]
            curves["test_loss"][e], curves["test_accuracy"][e] = evaluate(model, test_set)
        return Status.OK, ""

    run_chunked(x.epochs, advance, progress, desc=desc, chunk_steps=1, unit="epoch")
    return curves


def run_xor(built: LTCBuilt, progress: Progress) -> xr.Dataset:
    """Train every model on every encoding for every seed."""
    x = built.params.xor
    names = ("train_loss", "test_loss", "test_accuracy", "epoch_time")
    shape = (len(x.models), len(x.encoding), len(x.seeds), x.epochs)
    curves = {name: np.full(shape, np.nan) for name in names}
    for ei, enc in enumerate(x.encoding):
        event = enc == "event"
        train_set = xor_split(x.train, TRAIN_SEED, x.pad, event)
        test_set = xor_split(x.test, TEST_SEED, x.pad, event)
        for mi, kind in enumerate(x.models):
            for si, seed in enumerate(x.seeds):
                model = Model(kind, x, stream(seed, TAG_TRAIN, mi, 0))
                got = train(
                    model, x, train_set, test_set, stream(seed, TAG_TRAIN, mi, 1), progress, f"{kind} {enc} seed {seed}"
                )
                for name in names:
                    curves[name][mi, ei, si] = got[name]
    dims = ("model", "encoding", "seed", "epoch")
    long = {
        "train_loss": ("1", "mean binary cross-entropy over the epoch's minibatches"),
        "test_loss": ("1", "binary cross-entropy on the test split at the end of the epoch"),
        "test_accuracy": ("1", "share of test sequences classified correctly at the end of the epoch"),
        "epoch_time": ("s", "wall time of the epoch's training"),
    }
    data = {name: (dims, curves[name], var_attrs(*long[name])) for name in names}
    coords = {
        "model": ("model", list(x.models), var_attrs("1", "model: CfC (default, no_gate, pure = Cf-S) or fused LTC")),
        "encoding": ("encoding", list(x.encoding), var_attrs("1", "input encoding: one event per bit or per change")),
        "seed": ("seed", np.asarray(x.seeds), var_attrs("1", "training seed")),
        "epoch": ("epoch", np.arange(1, x.epochs + 1), var_attrs("1", "epoch")),
    }
    final = 100 * curves["test_accuracy"][..., -1].mean(axis=2)
    lines = [
        f"{kind} {enc}: {final[mi, ei]:.2f} % test accuracy after {x.epochs} epochs "
        f"({np.nanmean(curves['epoch_time'][mi, ei]):.2f} s per epoch)"
        for mi, kind in enumerate(x.models)
        for ei, enc in enumerate(x.encoding)
    ]
    attrs = {
        "experiment": "xor",
        "hidden": x.hidden,
        "ltc_hidden": x.ltc_hidden,
        "pad": x.pad,
        "backbone": x.backbone,
        "train": x.train,
        "test": x.test,
        "unfolds": x.unfolds,
        "ltc_time_offset": x.ltc_time_offset,
        "summary_lines": "\n".join(lines),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)
