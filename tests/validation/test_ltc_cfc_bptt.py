"""The exact BPTT gradients of the ``ltc_cfc`` XOR models against central finite differences of the loss, and the
XOR generator against the task's definition."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.families.ltc_cfc.params import Xor
from neurodyn.families.ltc_cfc.xor import Model, xor_split


def loss_and_grad(model: Model, data, idx):
    model.grad[:] = 0.0
    logits = np.zeros(data.labels.shape[0])
    loss = model.batch(data, idx, True, logits)
    return loss, model.grad.copy()


@pytest.mark.parametrize("kind", ["cfc", "no_gate", "pure", "ltc", "ltc_offset"])
@pytest.mark.parametrize("encoding", ["event", "equidistant"])
def test_bptt_gradient_matches_finite_differences(kind, encoding):
    offset = 1.0 if kind == "ltc_offset" else 0.0
    kind = kind.removesuffix("_offset")
    x = Xor(hidden=3, ltc_hidden=3, backbone=4, unfolds=2, pad=8, ltc_time_offset=offset)
    data = xor_split(4, 11, 8, encoding == "event")
    model = Model(kind, x, np.random.default_rng(3))
    if kind == "pure":  # away from |w_tau| = 0, where the absolute value has no derivative
        model.layout.view(model.theta, "wtau")[:] = 0.3
    idx = np.arange(4, dtype=np.int64)
    _, grad = loss_and_grad(model, data, idx)
    h = 1e-6
    fd = np.empty_like(grad)
    logits = np.zeros(4)
    for p in range(model.theta.size):
        old = model.theta[p]
        model.theta[p] = old + h
        up = model.batch(data, idx, False, logits)
        model.theta[p] = old - h
        down = model.batch(data, idx, False, logits)
        model.theta[p] = old
        fd[p] = (up - down) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


def test_xor_labels_are_the_parity_of_the_bits_and_events_mark_changes():
    pad = 32
    dense = xor_split(200, 1234984, pad, event=False)
    event = xor_split(200, 1234984, pad, event=True)
    assert np.array_equal(dense.labels, event.labels)  # the same bits: one RandomState stream
    for s in range(200):
        n = dense.lengths[s]
        bits = dense.inputs[s, :n, 0]
        assert 2 <= n < pad and dense.labels[s] == bits.sum() % 2
        assert np.allclose(dense.elapsed[s, :n], 1 / pad)
        # events: the bit at every change, with the steps since the previous event; they cover every bit
        m = event.lengths[s]
        steps = np.rint(event.elapsed[s, :m] * pad).astype(int)
        assert steps.sum() == n
        rebuilt = np.concatenate([np.full(k, b) for k, b in zip(steps, event.inputs[s, :m, 0])])
        # each event's bit holds from the event on: shift by one run to compare with the bits
        changes = np.flatnonzero(np.diff(np.concatenate([[-1], bits])) != 0)
        assert np.array_equal(event.inputs[s, : len(changes), 0], bits[changes])
        assert rebuilt.size == n
