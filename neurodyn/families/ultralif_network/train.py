"""Training: minibatch Adam with a cosine learning-rate schedule, per-epoch records, checkpoints."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neurodyn.errors import SimulationError
from neurodyn.families.ultralif_network.data import Dataset, rate_encode
from neurodyn.families.ultralif_network.kernels import adam_step, sigmoid
from neurodyn.families.ultralif_network.network import NetSpec, Workspace, loss_and_grad
from neurodyn.progress import QUIET, Progress

#: per-epoch quantities recorded for every trained network
EPOCH_VARS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "spike_rate", "synops")


@dataclass
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


@dataclass
class TrainResult:
    """Per-epoch records (``records[name]`` of shape (epochs,)), eps and tau0 per layer and epoch, the
    final parameters."""

    records: dict[str, np.ndarray]
    eps: np.ndarray
    tau0: np.ndarray
    params: np.ndarray


def _inputs(data: Dataset, x: np.ndarray, T: int, gain: float, rng: np.random.Generator) -> np.ndarray:
    return rate_encode(x, T, gain, rng) if data.static else x


def synops_per_sample(spec: NetSpec, X: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Synaptic operations per sample: every spike (weighted by its value, for soft spikes) times the
    fan-out of its layer, summed over time; input spikes count towards the first layer.

    X : (B, T, n_in); S : (B, L, T, H) hidden spikes.
    """
    ops = X.sum(axis=(1, 2)) * spec.sizes[1]
    for l in range(spec.n_hidden_layers):
        n = spec.sizes[l + 1]
        ops = ops + S[:, l, :, :n].sum(axis=(1, 2)) * spec.sizes[l + 2]
    return ops


def evaluate(
    spec: NetSpec,
    params: np.ndarray,
    data: Dataset,
    x: np.ndarray,
    y: np.ndarray,
    cfg: TrainConfig,
    rng: np.random.Generator,
    ws: Workspace,
) -> tuple[float, float, float, float]:
    """Mean cross-entropy, accuracy, mean hidden spike value and synaptic operations per sample.

    Static inputs are encoded ``cfg.test_repeats`` times independently and the figures averaged: each
    pass is an ordinary T-step classification, the repeats only shrink the estimate's sampling noise.
    """
    reps = cfg.test_repeats if data.static else 1
    x = np.concatenate([x] * reps)
    y = np.concatenate([y] * reps)
    n = len(y)
    ce = correct = rate = ops = 0.0
    n_hidden = sum(spec.sizes[1:-1])
    for start in range(0, n, cfg.batch_size):
        idx = slice(start, min(start + cfg.batch_size, n))
        X = _inputs(data, x[idx], cfg.T, cfg.input_gain, rng)
        B = X.shape[0]
        _, _, ws = loss_and_grad(spec, params, X, y[idx], 0.0, need_grad=False, ws=ws)
        ce += ws.ce[:B].sum()
        correct += (ws.logits[:B].argmax(axis=1) == y[idx]).sum()
        S = ws.S[:B]
        spikes = sum(S[:, l, :, : spec.sizes[l + 1]].sum() for l in range(spec.n_hidden_layers))
        rate += spikes / (cfg.T * n_hidden)
        ops += synops_per_sample(spec, X, S).sum()
    return ce / n, correct / n, rate / n, ops / n


def train(
    spec: NetSpec, data: Dataset, cfg: TrainConfig, seed: int, progress: Progress = QUIET, desc: str = "training"
) -> TrainResult:
    """Train one network from ``seed`` and return its per-epoch records and final parameters.

    Randomness comes from three streams spawned from ``seed``: initial weights, (shuffling and input
    encoding) of the training set, and the encoding of the test set (the same every epoch, so epochs are
    compared on identical test inputs). Same seed, same result, bit for bit.
    """
    ss = np.random.SeedSequence(seed)
    rng_init, rng_train, _ = (np.random.default_rng(s) for s in ss.spawn(3))
    test_seed = ss.spawn(1)[0]
    params = spec.init(rng_init, cfg.eps0, cfg.tau0)
    mask = spec.train_mask(cfg.learn_eps)
    log_idx = spec.log_eps_index()
    m = np.zeros_like(params)
    v = np.zeros_like(params)
    n = len(data.y_train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    L = spec.n_hidden_layers
    rec = {k: np.full(cfg.epochs, np.nan) for k in EPOCH_VARS}
    eps_hist = np.full((cfg.epochs, L), np.nan)
    tau_hist = np.full((cfg.epochs, L), np.nan)
    ws = Workspace(spec, min(cfg.batch_size, max(n, len(data.y_test))), cfg.T)
    step = 0
    with progress.task(cfg.epochs, desc, "epoch") as bar:
        for epoch in range(cfg.epochs):
            order = rng_train.permutation(n)
            loss_sum = correct = 0.0
            for start in range(0, n, cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                X = _inputs(data, data.x_train[idx], cfg.T, cfg.input_gain, rng_train)
                loss, grad, ws = loss_and_grad(spec, params, X, data.y_train[idx], cfg.lam, ws=ws)
                if not (np.isfinite(loss) and np.all(np.isfinite(grad))):
                    raise SimulationError(f"{spec.kind}: non-finite loss or gradient in epoch {epoch + 1}")
                B = len(idx)
                loss_sum += loss * B
                correct += (ws.logits[:B].argmax(axis=1) == data.y_train[idx]).sum()
                # cosine schedule from lr to 0 over all steps
                lr = 0.5 * cfg.lr * (1.0 + math.cos(math.pi * step / total))
                step += 1
                adam_step(
                    params,
                    grad,
                    m,
                    v,
                    mask,
                    lr,
                    cfg.beta1,
                    cfg.beta2,
                    cfg.adam_eps,
                    step,
                    log_idx,
                    math.log(spec.eps_lo),
                    math.log(spec.eps_hi),
                )
            rec["train_loss"][epoch] = loss_sum / n
            rec["train_accuracy"][epoch] = correct / n
            ce, acc, rate, ops = evaluate(
                spec, params, data, data.x_test, data.y_test, cfg, np.random.default_rng(test_seed), ws
            )
            rec["test_loss"][epoch], rec["test_accuracy"][epoch] = ce, acc
            rec["spike_rate"][epoch], rec["synops"][epoch] = rate, ops
            eps_hist[epoch] = np.clip(np.exp(params[log_idx]), spec.eps_lo, spec.eps_hi)
            tau_hist[epoch] = [sigmoid(params[i]) for i in spec.tau_index()]
            bar.update(1)
            bar.set(test_acc=f"{acc:.3f}")
    return TrainResult(rec, eps_hist, tau_hist, params)
