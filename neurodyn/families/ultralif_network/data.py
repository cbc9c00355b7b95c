"""The two classification tasks: scikit-learn's bundled digits (rate coded) and a generated temporal
event-stream task.

Nothing is downloaded: ``load_digits`` ships with scikit-learn, the event task is generated from a seed.
A module of its own beside :mod:`.build` (which calls it once per run): the event task is a small
generative model with its own tests (its class is carried by timing alone), not part of the network.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Task:
    """A classification task split into train and test.

    ``x_*`` are either static intensities in [0, 1] of shape (N, n_in), rate coded every epoch
    (``static=True``), or binary event tensors (N, T, n_in) used as they are.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    static: bool

    @property
    def n_in(self) -> int:
        """Input width."""
        return int(self.x_train.shape[-1])


def load_digits_split(test_fraction: float = 0.25, split_seed: int = 0) -> Task:
    """scikit-learn's 8x8 digits (1797 images) scaled to [0, 1], one fixed stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.data.astype(np.float64) / 16.0
    xtr, xte, ytr, yte = train_test_split(
        x, d.target.astype(np.int64), test_size=test_fraction, random_state=split_seed, stratify=d.target
    )
    return Task("digits", xtr, ytr, xte, yte, 10, static=True)


def rate_encode(x: np.ndarray, T: int, gain: float, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli rate coding: ``x_enc[b, t, j] = 1`` with probability ``gain * x[b, j]``, independently."""
    u = rng.random((x.shape[0], T, x.shape[1]))
    return (u < gain * x[:, None, :]).astype(np.float64)


def event_orders(n_groups: int, n_classes: int, seed: int) -> np.ndarray:
    """The ``n_classes`` firing orders of the channel groups (distinct permutations, seeded choice)."""
    perms = np.array(list(itertools.permutations(range(n_groups))), dtype=np.int64)
    pick = np.random.default_rng(seed).choice(len(perms), size=n_classes, replace=False)
    return perms[np.sort(pick)]


def generate_events(
    n_samples: int,
    n_groups: int,
    channels_per_group: int,
    orders: np.ndarray,
    events_per_channel: float,
    burst_width: float,
    jitter: float,
    noise_events: float,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Event streams on [0, 1) whose class is only the *order* in which channel groups burst.

    Group ``g`` of class ``c`` bursts in slot ``r`` where ``orders[c, r] = g``: each of its channels
    emits Poisson(``events_per_channel``) events uniform in a window of ``burst_width`` slots whose
    start is shifted by U(-jitter, jitter) slots. Every channel also emits Poisson(``noise_events``)
    background events uniform on [0, 1). The number of events per channel has the same distribution in
    every class, so a network that sees only counts (T = 1) is at chance: timing is the signal.

    Returns
    -------
    (list of ndarray, ndarray)
        Per sample an array of shape (n_events, 2) of (time, channel), and the labels.
    """
    n_classes = orders.shape[0]
    n_ch = n_groups * channels_per_group
    slot = 1.0 / n_groups
    labels = rng.integers(0, n_classes, n_samples)
    streams = []
    for c in labels:
        times, chans = [], []
        for r in range(n_groups):
            g = orders[c, r]
            start = (r + 0.5 - 0.5 * burst_width + rng.uniform(-jitter, jitter)) * slot
            for ch in range(g * channels_per_group, (g + 1) * channels_per_group):
                k = rng.poisson(events_per_channel)
                times.append(np.clip(start + rng.random(k) * burst_width * slot, 0.0, math.nextafter(1.0, 0)))
                chans.append(np.full(k, ch))
        k = rng.poisson(noise_events, n_ch)
        chans.append(np.repeat(np.arange(n_ch), k))
        times.append(rng.random(int(k.sum())))
        streams.append(np.column_stack([np.concatenate(times), np.concatenate(chans)]))
    return streams, labels.astype(np.int64)


def bin_events(streams: list[np.ndarray], T: int, n_ch: int) -> np.ndarray:
    """Binary tensor (N, T, n_ch): 1 where a channel had at least one event in a time bin of width 1/T."""
    out = np.zeros((len(streams), T, n_ch))
    for b, ev in enumerate(streams):
        t = np.minimum((ev[:, 0] * T).astype(np.int64), T - 1)
        out[b, t, ev[:, 1].astype(np.int64)] = 1.0
    return out


def load_events(
    T: int,
    n_train: int,
    n_test: int,
    n_groups: int,
    channels_per_group: int,
    n_classes: int,
    events_per_channel: float,
    burst_width: float,
    jitter: float,
    noise_events: float,
    data_seed: int,
) -> Task:
    """The temporal event-stream task binned into ``T`` steps (train and test from disjoint streams)."""
    orders = event_orders(n_groups, n_classes, data_seed)
    rng = np.random.default_rng(np.random.SeedSequence([data_seed, 7]))
    n_ch = n_groups * channels_per_group
    args = (n_groups, channels_per_group, orders, events_per_channel, burst_width, jitter, noise_events, rng)
    s_tr, y_tr = generate_events(n_train, *args)
    s_te, y_te = generate_events(n_test, *args)
    return Task("events", bin_events(s_tr, T, n_ch), y_tr, bin_events(s_te, T, n_ch), y_te, n_classes, static=False)
