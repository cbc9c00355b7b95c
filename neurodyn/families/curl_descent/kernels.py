"""Numba kernels of ``curl_descent``: the population flow (RK4, projection, blow-up guard), its Benettin
twin, and mini-batch training as the authors simulate it.

Arrays are bundled in ``NamedTuple``s (Numba accepts them as arguments): :class:`FlowState`,
:class:`FlowConsts`, :class:`FlowWork`, :class:`FlowRec` for the flow, :class:`Net`, :class:`Data`,
:class:`TrainConsts`, :class:`TrainRec` for training. Every kernel advances a chunk of steps (or epochs)
and is driven by :func:`neurodyn.stepping.run_chunked` from :mod:`.engine`.

Population flow of the linear network (P -> infinity limit of the update; derivation in
``docs/curl_descent.md``), with ``v = W1^T w2`` and ``e = s^2 (v - v*)``::

    dW1/dt = -eta w2 e^T D1,        dw2/dt = -eta D2 W1 e.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

#: floating-point licences of the hot loops: reassociation lets LLVM vectorise the dot products (results
#: change in the last bits only); no "nnan"/"ninf", so the finiteness checks keep their meaning
FAST = {"reassoc", "nsz", "contract"}
#: activation codes shared with :mod:`.build`
LINEAR, TANH, RELU = 0, 1, 2


class FlowState(NamedTuple):
    """The flow's state, advanced in place."""

    W1: np.ndarray  #: (N, M) input-to-hidden weights
    w2: np.ndarray  #: (N,) readout weights
    norm0: np.ndarray  #: (2,) initial |W1|_F and |w2| (projection target and blow-up reference)
    diverged: np.ndarray  #: (1,) int64: step at which the blow-up guard fired, -1 while finite


class FlowConsts(NamedTuple):
    """Constants of one flow run."""

    d1: np.ndarray  #: (M,) +-1: rule signs of the input neurons
    d2: np.ndarray  #: (N,) +-1: rule signs of the hidden neurons
    vstar: np.ndarray  #: (M,) teacher's end-to-end map v* = W1*^T w2*
    s2: float  #: input variance
    eta: float  #: learning rate
    dt: float  #: RK4 step
    projection: bool  #: rescale to the initial norms after every step
    blowup: float  #: blow-up factor of the guard


class FlowWork(NamedTuple):
    """Scratch arrays of an RK4 step (allocated once per run)."""

    kW: np.ndarray  #: (4, N, M) stage slopes of W1
    kw: np.ndarray  #: (4, N) stage slopes of w2
    W1s: np.ndarray  #: (N, M) stage point
    w2s: np.ndarray  #: (N,) stage point
    e: np.ndarray  #: (M,) error vector


class FlowRec(NamedTuple):
    """What a flow run records every ``every`` steps (sample ``k`` is step ``k * every``)."""

    every: int
    loss: np.ndarray  #: (S,) population loss L = s^2/2 |v - v*|^2
    signed_norm: np.ndarray  #: (S,) C = sum_m d1_m |W1[:, m]|^2 - sum_n d2_n w2_n^2
    matrix_drift: np.ndarray  #: (S,) |W1 D1 W1^T - w2 w2^T - (same at t = 0)|_F
    weights: np.ndarray  #: (S, N*M + N) W1 (row-major) then w2
    M0: np.ndarray  #: (N, N) the matrix invariant at t = 0


@njit(cache=True, boundscheck=False, fastmath=FAST)
def flow_field(W1, w2, c: FlowConsts, e, dW1, dw2):
    """Write the flow's velocity at (W1, w2) into (dW1, dw2); ``e`` is scratch (returns the loss)."""
    N, M = W1.shape
    loss = 0.0
    for m in range(M):
        v = 0.0
        for n in range(N):
            v += W1[n, m] * w2[n]
        e[m] = c.s2 * (v - c.vstar[m])
        loss += (v - c.vstar[m]) ** 2
    for n in range(N):
        acc = 0.0
        for m in range(M):
            dW1[n, m] = -c.eta * w2[n] * e[m] * c.d1[m]
            acc += W1[n, m] * e[m]
        dw2[n] = -c.eta * c.d2[n] * acc
    return 0.5 * c.s2 * loss


@njit(cache=True, boundscheck=False, fastmath=FAST)
def rk4_step(W1, w2, c: FlowConsts, wk: FlowWork):
    """One classical RK4 step of the flow in place (stage weights 1/6, 1/3, 1/3, 1/6)."""
    N, M = W1.shape
    h = c.dt
    flow_field(W1, w2, c, wk.e, wk.kW[0], wk.kw[0])
    for stage, frac in ((1, 0.5), (2, 0.5), (3, 1.0)):
        for n in range(N):
            for m in range(M):
                wk.W1s[n, m] = W1[n, m] + frac * h * wk.kW[stage - 1, n, m]
            wk.w2s[n] = w2[n] + frac * h * wk.kw[stage - 1, n]
        flow_field(wk.W1s, wk.w2s, c, wk.e, wk.kW[stage], wk.kw[stage])
    for n in range(N):
        for m in range(M):
            W1[n, m] += h / 6.0 * (wk.kW[0, n, m] + 2.0 * wk.kW[1, n, m] + 2.0 * wk.kW[2, n, m] + wk.kW[3, n, m])
        w2[n] += h / 6.0 * (wk.kw[0, n] + 2.0 * wk.kw[1, n] + 2.0 * wk.kw[2, n] + wk.kw[3, n])


@njit(cache=True)
def _norms(W1, w2):
    a = 0.0
    for x in W1.ravel():
        a += x * x
    b = 0.0
    for x in w2:
        b += x * x
    return np.sqrt(a), np.sqrt(b)


@njit(cache=True)
def project_and_guard(W1, w2, c: FlowConsts, norm0) -> bool:
    """Rescale to the initial norms (with ``c.projection``); False when the blow-up guard fires."""
    a, b = _norms(W1, w2)
    if not (np.isfinite(a) and np.isfinite(b)) or a > c.blowup * norm0[0] or b > c.blowup * norm0[1]:
        return False
    if c.projection:
        if a > 0.0:
            W1 *= norm0[0] / a
        if b > 0.0:
            w2 *= norm0[1] / b
    return True


@njit(cache=True)
def _record(W1, w2, c: FlowConsts, wk: FlowWork, rec: FlowRec, k):
    N, M = W1.shape
    rec.loss[k] = flow_field(W1, w2, c, wk.e, wk.W1s, wk.w2s)
    s = 0.0
    for m in range(M):
        col = 0.0
        for n in range(N):
            col += W1[n, m] * W1[n, m]
        s += c.d1[m] * col
    for n in range(N):
        s -= c.d2[n] * w2[n] * w2[n]
    rec.signed_norm[k] = s
    drift = 0.0
    for i in range(N):
        for j in range(N):
            x = 0.0
            for m in range(M):
                x += W1[i, m] * c.d1[m] * W1[j, m]
            x -= w2[i] * w2[j] + rec.M0[i, j]
            drift += x * x
    rec.matrix_drift[k] = np.sqrt(drift)
    rec.weights[k, : N * M] = W1.ravel()
    rec.weights[k, N * M :] = w2


@njit(cache=True)
def flow_run(st: FlowState, c: FlowConsts, wk: FlowWork, rec: FlowRec, start, n):
    """Advance steps ``start .. start+n-1``; record before every step that is a multiple of ``rec.every``.

    After the blow-up guard fires the state is frozen and
    ``st.diverged[0]`` holds the step.
    """
    for i in range(start, start + n):
        if st.diverged[0] >= 0:
            return
        if i % rec.every == 0 and i // rec.every < rec.loss.shape[0]:
            _record(st.W1, st.w2, c, wk, rec, i // rec.every)
        rk4_step(st.W1, st.w2, c, wk)
        if not project_and_guard(st.W1, st.w2, c, st.norm0):
            st.diverged[0] = i + 1
    end = start + n
    if end % rec.every == 0 and end // rec.every < rec.loss.shape[0] and st.diverged[0] < 0:
        _record(st.W1, st.w2, c, wk, rec, end // rec.every)


@njit(cache=True)
def benettin_run(a: FlowState, b: FlowState, c: FlowConsts, wk: FlowWork, rec: FlowRec, logs, renorm, d0, start, n):
    """Advance trajectory ``a`` and its shadow ``b`` ``n`` steps; every ``renorm`` steps add
    ``log(d / d0)`` to ``logs[(step // renorm) - 1]`` and pull ``b`` back to distance ``d0`` along ``b - a``.
    """
    N, M = a.W1.shape
    for i in range(start, start + n):
        if a.diverged[0] >= 0 or b.diverged[0] >= 0:
            return
        if i % rec.every == 0 and i // rec.every < rec.loss.shape[0]:
            _record(a.W1, a.w2, c, wk, rec, i // rec.every)
        rk4_step(a.W1, a.w2, c, wk)
        if not project_and_guard(a.W1, a.w2, c, a.norm0):
            a.diverged[0] = i + 1
        rk4_step(b.W1, b.w2, c, wk)
        if not project_and_guard(b.W1, b.w2, c, b.norm0):
            b.diverged[0] = i + 1
        if (i + 1) % renorm == 0:
            d = 0.0
            for nn in range(N):
                for m in range(M):
                    d += (b.W1[nn, m] - a.W1[nn, m]) ** 2
                d += (b.w2[nn] - a.w2[nn]) ** 2
            d = np.sqrt(d)
            logs[(i + 1) // renorm - 1] = np.log(d / d0)
            f = d0 / d
            for nn in range(N):
                for m in range(M):
                    b.W1[nn, m] = a.W1[nn, m] + f * (b.W1[nn, m] - a.W1[nn, m])
                b.w2[nn] = a.w2[nn] + f * (b.w2[nn] - a.w2[nn])


# --------------------------------------------------------------------------- mini-batch training


class Net(NamedTuple):
    """A student's weights (advanced in place) and its rule signs."""

    W1: np.ndarray  #: (N, M)
    w2: np.ndarray  #: (N,)
    d1: np.ndarray  #: (M,) +-1
    d2: np.ndarray  #: (N,) +-1
    norm0: np.ndarray  #: (2,) initial |W1|_F, |w2|


class Data(NamedTuple):
    """Inputs (one row per example) and the teacher's outputs."""

    X: np.ndarray  #: (P, M) training inputs
    y: np.ndarray  #: (P,) teacher outputs on X
    Xt: np.ndarray  #: (Pt, M) test inputs
    yt: np.ndarray  #: (Pt,) teacher outputs on Xt


class TrainConsts(NamedTuple):
    """Constants of one training run."""

    act: int  #: LINEAR, TANH or RELU
    eta: float  #: learning rate of one mini-batch update
    batch: int  #: mini-batch size B
    projection: bool  #: rescale to the initial norms after every update


class TrainRec(NamedTuple):
    """Per-epoch errors (index 0: before training)."""

    train_error: np.ndarray  #: (E + 1,) 1/2 mean (y_student - y_teacher)^2 on the training set
    test_error: np.ndarray  #: (E + 1,) the same on the test set


@njit(cache=True, inline="always")
def _phi(x, act):
    if act == TANH:
        return np.tanh(x)
    if act == RELU:
        return x if x > 0.0 else 0.0
    return x


@njit(cache=True, inline="always")
def _dphi(x, act):
    if act == TANH:
        t = np.tanh(x)
        return 1.0 - t * t
    if act == RELU:
        return 1.0 if x > 0.0 else 0.0
    return 1.0


@njit(cache=True, fastmath=FAST)
def forward(W1, w2, X, act, out):
    """Student outputs ``phi(w2 . phi(W1 x))`` for every row of ``X`` into ``out``."""
    N, M = W1.shape
    for p in range(X.shape[0]):
        z = 0.0
        for n in range(N):
            a = 0.0
            for m in range(M):
                a += W1[n, m] * X[p, m]
            z += w2[n] * _phi(a, act)
        out[p] = _phi(z, act)


@njit(cache=True)
def half_mse(W1, w2, X, y, act):
    """1/2 mean squared error of the student on (X, y)."""
    out = np.empty(X.shape[0])
    forward(W1, w2, X, act, out)
    s = 0.0
    for p in range(X.shape[0]):
        s += (out[p] - y[p]) ** 2
    return 0.5 * s / X.shape[0]


@njit(cache=True, fastmath=FAST)
def batch_update(net: Net, X, y, idx, c: TrainConsts, a, h, gW1, gw2):
    """One mini-batch update on rows ``idx`` of ``X`` (the authors' ``col`` mode), then the projection.

    ``e = y_hat - y``, ``delta1 = (w2 e) phi'(a)``; ``Delta w2 = -eta (e h^T) D2 / B``,
    ``Delta W1 = -eta (delta1 x^T) D1 / B``; the output's phi' is left out, as in the authors' code.
    """
    N, M = net.W1.shape
    B = idx.shape[0]
    gW1[:, :] = 0.0
    gw2[:] = 0.0
    for b in range(B):
        p = idx[b]
        z = 0.0
        for n in range(N):
            s = 0.0
            for m in range(M):
                s += net.W1[n, m] * X[p, m]
            a[n] = s
            h[n] = _phi(s, c.act)
            z += net.w2[n] * h[n]
        e = _phi(z, c.act) - y[p]
        for n in range(N):
            gw2[n] += e * h[n]
            d = net.w2[n] * e * _dphi(a[n], c.act)
            for m in range(M):
                gW1[n, m] += d * X[p, m]
    f = -c.eta / B
    for n in range(N):
        for m in range(M):
            net.W1[n, m] += f * gW1[n, m] * net.d1[m]
        net.w2[n] += f * gw2[n] * net.d2[n]
    if c.projection:
        na, nb = _norms(net.W1, net.w2)
        fa, fb = net.norm0[0] / na, net.norm0[1] / nb
        for n in range(N):
            for m in range(M):
                net.W1[n, m] *= fa
            net.w2[n] *= fb


@njit(cache=True)
def train_epochs(net: Net, data: Data, c: TrainConsts, order, rec: TrainRec, first_epoch):
    """Run ``order.shape[0]`` epochs (row ``k``: the example order of epoch ``first_epoch + k``).

    Records the errors after each epoch at ``rec[first_epoch + k + 1]``. Returns False if a weight became
    non-finite.
    """
    N, M = net.W1.shape
    P = data.X.shape[0]
    a = np.empty(N)
    h = np.empty(N)
    gW1 = np.empty((N, M))
    gw2 = np.empty(N)
    for k in range(order.shape[0]):
        for s in range(0, P, c.batch):
            batch_update(net, data.X, data.y, order[k, s : min(s + c.batch, P)], c, a, h, gW1, gw2)
        tr = half_mse(net.W1, net.w2, data.X, data.y, c.act)
        if not np.isfinite(tr):
            return False
        rec.train_error[first_epoch + k + 1] = tr
        rec.test_error[first_epoch + k + 1] = half_mse(net.W1, net.w2, data.Xt, data.yt, c.act)
    return True
