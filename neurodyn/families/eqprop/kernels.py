"""Numba kernels of the ``eqprop`` family: relaxation, the EP gradient estimator, BPTT, backprop.

Every kernel takes the network as one :class:`Net` (a Numba named tuple: the parameters, their layout and
the codes of rho and of the cost), the states ``S`` it works on and, where a cost is involved, the one-hot
targets ``D`` of the batch. States and targets stay separate arguments because they change from call to
call (free, nudged and symmetric states of one minibatch) while the network does not. Memory layout:

* ``off`` (int64, ``n_layers + 1``): layer ``k`` occupies rows ``off[k]:off[k+1]`` of a state array;
  layer 0 is the clamped input, the last layer the output.
* States ``S`` are ``(n_units_total, batch)`` C arrays: one *column* per example, so a layer is a block
  of contiguous rows and the matrix products below are plain BLAS calls on contiguous blocks.
* ``Wf`` (flat float64) holds ``W_k`` (shape ``(N_k, N_{k+1})``, C order) at ``Wf[woff[k]:woff[k+1]]``.
  ``bf`` (length ``n_units_total``) holds one bias per unit (the input rows are unused).
* ``rho`` selects rho: 0 hard sigmoid ``clip(s, 0, 1)``, 1 ``tanh``, 2 ``clip(s/2, 0, 1)``.
* ``cost`` selects C: 0 squared error on the output *states* (the output layer is part of the energy),
  1 softmax cross-entropy of a readout ``z = W_L^T rho(h_L) + b`` (the output layer is not relaxed).

Energy (Scellier & Bengio 2017), over the relaxed layers ``k >= 1``::

    E(s) = 1/2 sum_k ||s_k||^2 - sum_k rho(s_k)^T W_k rho(s_{k+1}) - sum_k b_k^T rho(s_k)

with the input's activation taken as the input itself (``rho(s_0) = x``). The relaxation is
``s <- P(s - eps dF/ds)`` with ``F = E + beta C`` and ``P`` the projection onto the interval where rho is
not flat ([0, 1] for the hard sigmoid, [0, 2] for ``clip(s/2, 0, 1)``, none for tanh).

No kernel here has a parallel twin: a minibatch is a handful of columns, its products go to BLAS (one
thread, see :mod:`.engine`), and the examples of a minibatch are coupled through the weight update.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

RHO_HARD_SIGMOID = 0
RHO_TANH = 1
RHO_CLIP_HALF = 2
COST_MSE = 0
COST_SOFTMAX_CE = 1


class Net(NamedTuple):
    """A layered network as every kernel sees it (a Numba named tuple, so it passes into a kernel whole).

    Kernels that train update ``Wf`` and ``bf`` in place.
    """

    Wf: np.ndarray  #: flat float64 weights: ``W_k`` (shape ``(N_k, N_{k+1})``, C order) at ``Wf[woff[k]:woff[k+1]]``
    bf: np.ndarray  #: one bias per unit, input rows unused
    woff: np.ndarray  #: int64 offsets of the weight matrices in ``Wf``
    off: np.ndarray  #: int64 offsets of the layers in a state array (layer 0 is the input)
    rho: int  #: activation code (RHO_*)
    cost: int  #: cost code (COST_*)


class Examples(NamedTuple):
    """Examples as columns: inputs and one-hot targets."""

    X: np.ndarray  #: (n_in, n) inputs
    D: np.ndarray  #: (n_out, n) one-hot targets


class Rates(NamedTuple):
    """Learning rates of one training rule."""

    w: np.ndarray  #: one rate per weight matrix
    b: np.ndarray  #: one rate per unit (a layer's bias uses the rate of the matrix feeding it)


class EPSchedule(NamedTuple):
    """How EP trains on one minibatch: its size, the nudging and the two relaxation phases."""

    batch: int  #: examples per minibatch (the last partial minibatch is dropped)
    beta: float  #: nudging strength; its sign per minibatch comes separately
    symmetric: bool  #: symmetric estimate (s_+beta vs s_-beta) instead of one-sided (s_beta vs s_0)
    eps: float  #: relaxation step size
    n_free: int  #: at most this many free-phase steps
    n_nudged: int  #: nudged-phase steps
    tol: float  #: the free phase stops once the largest projected force is below tol
    persistent: bool  #: warm-start each example's free phase from its last free state


# --------------------------------------------------------------------------- activation


@njit(cache=True, inline="always")
def _rho(x: float, kind: int) -> float:
    if kind == RHO_TANH:
        return math.tanh(x)
    if kind == RHO_HARD_SIGMOID:
        return min(max(x, 0.0), 1.0)
    return min(max(0.5 * x, 0.0), 1.0)


@njit(cache=True, inline="always")
def _drho(x: float, kind: int) -> float:
    # Inclusive at the kinks: the projected dynamics keeps states inside the closed interval, and
    # an inclusive derivative makes the boundary a fixed point only when the force pushes outwards.
    if kind == RHO_TANH:
        t = math.tanh(x)
        return 1.0 - t * t
    if kind == RHO_HARD_SIGMOID:
        return 1.0 if 0.0 <= x <= 1.0 else 0.0
    return 0.5 if 0.0 <= x <= 2.0 else 0.0


@njit(cache=True, inline="always")
def _d2rho(x: float, kind: int) -> float:
    if kind == RHO_TANH:
        t = math.tanh(x)
        return -2.0 * t * (1.0 - t * t)
    return 0.0


@njit(cache=True)
def clip_bounds(kind: int) -> tuple[float, float]:
    """Interval the states are projected onto (infinite for tanh)."""
    if kind == RHO_HARD_SIGMOID:
        return 0.0, 1.0
    if kind == RHO_CLIP_HALF:
        return 0.0, 2.0
    return -np.inf, np.inf


@njit(cache=True)
def fill_rho(S: np.ndarray, R: np.ndarray, net: Net) -> None:
    """``R = rho(S)`` for the relaxed rows; the input rows are copied (``rho(s_0) = x``)."""
    n_in = net.off[1]
    for i in range(S.shape[0]):
        if i < n_in:
            for j in range(S.shape[1]):
                R[i, j] = S[i, j]
        else:
            for j in range(S.shape[1]):
                R[i, j] = _rho(S[i, j], net.rho)


@njit(cache=True)
def weight(net: Net, k: int) -> np.ndarray:
    """View of ``W_k`` (shape ``(N_k, N_{k+1})``) inside the flat weight vector."""
    off = net.off
    return net.Wf[net.woff[k] : net.woff[k + 1]].reshape((off[k + 1] - off[k], off[k + 2] - off[k + 1]))


@njit(cache=True)
def _top(net: Net) -> int:
    """Index of the last relaxed layer: the output (squared error) or the last hidden layer (readout)."""
    nl = net.off.shape[0] - 1
    return nl - 1 if net.cost == COST_MSE else nl - 2


@njit(cache=True)
def _from_below(net: Net, X: np.ndarray, n: int) -> np.ndarray:
    """``W_{n-1}^T x_{n-1}``: what layer ``n`` receives from the layer below (``x`` a state-shaped array)."""
    return np.dot(weight(net, n - 1).T, X[net.off[n - 1] : net.off[n]])


@njit(cache=True)
def _from_above(net: Net, X: np.ndarray, n: int) -> np.ndarray:
    """``W_n x_{n+1}``: what layer ``n`` receives from the layer above (``x`` a state-shaped array)."""
    return np.dot(weight(net, n), X[net.off[n + 1] : net.off[n + 2]])


@njit(cache=True)
def _layer_outer(P: np.ndarray, Q: np.ndarray, off: np.ndarray, k: int) -> np.ndarray:
    """``p_k q_{k+1}^T`` summed over the batch: the shape of ``W_k`` (``p``, ``q`` state-shaped arrays)."""
    return np.dot(P[off[k] : off[k + 1]], Q[off[k + 1] : off[k + 2]].T)


@njit(cache=True)
def _add_bias(U: np.ndarray, bf: np.ndarray, a: int) -> None:
    """``U += b`` in place, for the layer whose units start at row ``a`` of the state arrays."""
    for i in range(U.shape[0]):
        for j in range(U.shape[1]):
            U[i, j] += bf[a + i]


@njit(cache=True)
def _axpy(g: np.ndarray, c: float, M: np.ndarray) -> None:
    """``g += c * M.ravel()`` (``g`` a flat slice, e.g. one weight matrix inside ``Wf`` or ``gW``)."""
    flat = M.ravel()
    for i in range(flat.shape[0]):
        g[i] += c * flat[i]


@njit(cache=True, inline="always")
def _row_sum(A: np.ndarray, i: int) -> float:
    """Sum over the batch (columns) of row ``i``, left to right."""
    acc = 0.0
    for j in range(A.shape[1]):
        acc += A[i, j]
    return acc


@njit(cache=True, inline="always")
def _argmax_col(Y: np.ndarray, o: int, n: int, j: int) -> int:
    """Index of the largest of ``Y[o:o+n, j]`` (the first one on ties)."""
    best = 0
    for i in range(1, n):
        if Y[o + i, j] > Y[o + best, j]:
            best = i
    return best


@njit(cache=True)
def _n_wrong(Y: np.ndarray, o: int, Db: np.ndarray) -> int:
    """Number of columns whose argmax of the output rows ``Y[o:o+n_out]`` misses the one-hot target."""
    wrong = 0
    for j in range(Db.shape[1]):
        if _argmax_col(Y, o, Db.shape[0], j) != _argmax_col(Db, 0, Db.shape[0], j):
            wrong += 1
    return wrong


@njit(cache=True)
def _gather(src: np.ndarray, perm: np.ndarray, start: int, dst: np.ndarray) -> None:
    """Minibatch columns: ``dst[i, j] = src[i, perm[start + j]]`` for the rows of ``src``."""
    for j in range(dst.shape[1]):
        e = perm[start + j]
        for i in range(src.shape[0]):
            dst[i, j] = src[i, e]


@njit(cache=True)
def softmax_cols(Z: np.ndarray) -> np.ndarray:
    """Column-wise softmax (numerically stable)."""
    P = np.empty_like(Z)
    for j in range(Z.shape[1]):
        m = Z[0, j]
        for i in range(1, Z.shape[0]):
            m = max(m, Z[i, j])
        tot = 0.0
        for i in range(Z.shape[0]):
            P[i, j] = math.exp(Z[i, j] - m)
            tot += P[i, j]
        for i in range(Z.shape[0]):
            P[i, j] /= tot
    return P


@njit(cache=True)
def readout(R: np.ndarray, net: Net) -> np.ndarray:
    """Softmax probabilities of the cross-entropy readout from the last hidden layer."""
    off = net.off
    L = off.shape[0] - 3  # index of the last hidden layer
    Z = np.dot(weight(net, L).T, R[off[L] : off[L + 1]])
    _add_bias(Z, net.bf, off[L + 1])
    return softmax_cols(Z)


# --------------------------------------------------------------------------- energy and cost


@njit(cache=True)
def energy_cost(S: np.ndarray, net: Net, D: np.ndarray, E: np.ndarray, C: np.ndarray) -> None:
    """Per-example energy ``E`` and cost ``C`` (written into the 1-D arrays ``E`` and ``C``)."""
    off, bf = net.off, net.bf
    nl = off.shape[0] - 1
    top = _top(net)
    R = np.empty_like(S)
    fill_rho(S, R, net)
    B = S.shape[1]
    for j in range(B):
        E[j] = 0.0
        C[j] = 0.0
    for i in range(off[1], off[top + 1]):
        for j in range(B):
            E[j] += 0.5 * S[i, j] * S[i, j] - bf[i] * R[i, j]
    for k in range(top):
        WR = _from_above(net, R, k)
        for i in range(WR.shape[0]):
            for j in range(B):
                E[j] -= R[off[k] + i, j] * WR[i, j]
    if net.cost == COST_MSE:
        for i in range(D.shape[0]):
            for j in range(B):
                d = S[off[nl - 1] + i, j] - D[i, j]
                C[j] += 0.5 * d * d
    else:
        P = readout(R, net)
        for i in range(D.shape[0]):
            for j in range(B):
                if D[i, j] > 0.0:
                    C[j] -= D[i, j] * math.log(max(P[i, j], 1e-300))


# --------------------------------------------------------------------------- relaxation


@njit(cache=True)
def input_drive(S: np.ndarray, net: Net) -> np.ndarray:
    """``W_0^T x + b_1``: the clamped input's constant contribution to the first hidden layer's net input."""
    U = _from_below(net, S, 1)
    _add_bias(U, net.bf, net.off[1])
    return U


@njit(cache=True)
def force(S: np.ndarray, R: np.ndarray, net: Net, D: np.ndarray, beta: float, drive: np.ndarray, G: np.ndarray) -> None:
    """``G = dF/ds`` for the relaxed rows (``F = E + beta C``), from states ``S`` and ``R = rho(S)``.

    ``drive`` is :func:`input_drive` (computed once per relaxation: the input is clamped).
    """
    off, kind = net.off, net.rho
    nl = off.shape[0] - 1
    top = _top(net)
    B = S.shape[1]
    for n in range(1, top + 1):
        a, b = off[n], off[n + 1]
        # u_n = W_{n-1}^T rho(s_{n-1}) + W_n rho(s_{n+1}) + b_n : the net input of layer n
        if n == 1:
            U = drive.copy()
        else:
            U = _from_below(net, R, n)
            _add_bias(U, net.bf, a)
        if n < top:
            U += _from_above(net, R, n)
        for i in range(b - a):
            for j in range(B):
                G[a + i, j] = S[a + i, j] - _drho(S[a + i, j], kind) * U[i, j]
    if beta != 0.0:
        if net.cost == COST_MSE:
            a = off[nl - 1]
            for i in range(D.shape[0]):
                for j in range(B):
                    G[a + i, j] += beta * (S[a + i, j] - D[i, j])
        else:
            P = readout(R, net)
            P -= D
            a = off[top]
            V = np.dot(weight(net, top), P)  # dC/drho(h_L); P is batch-shaped, not state-shaped
            for i in range(V.shape[0]):
                for j in range(B):
                    G[a + i, j] += beta * _drho(S[a + i, j], kind) * V[i, j]


@njit(cache=True)
def relax(S: np.ndarray, net: Net, D: np.ndarray, beta: float, eps: float, n_max: int, tol: float) -> tuple[int, float]:
    """Relax ``S`` in place by projected gradient descent on ``F = E + beta C`` with step ``eps``.

    Runs until the largest projected force ``|P(s - eps dF/ds) - s| / eps`` over the batch falls below
    ``tol`` (checked before every step, so a converged state costs no step) or ``n_max`` steps.

    Returns
    -------
    (int, float)
        Steps taken and the final largest projected force (the residual).
    """
    off = net.off
    nl = off.shape[0] - 1
    top = _top(net)
    lo, hi = clip_bounds(net.rho)
    R = np.empty_like(S)
    G = np.empty_like(S)
    a, b = off[1], off[top + 1]
    B = S.shape[1]
    drive = input_drive(S, net)
    steps = 0
    res = np.inf
    while True:
        fill_rho(S, R, net)
        force(S, R, net, D, beta, drive, G)
        res = 0.0
        for i in range(a, b):
            for j in range(B):
                new = min(max(S[i, j] - eps * G[i, j], lo), hi)
                G[i, j] = new
                res = max(res, abs(new - S[i, j]))
        res /= eps
        if res < tol or steps >= n_max:
            break
        for i in range(a, b):
            for j in range(B):
                S[i, j] = G[i, j]
        steps += 1
    if net.cost == COST_SOFTMAX_CE:  # keep the readout rows in sync with the relaxed hidden state
        fill_rho(S, R, net)
        S[off[nl - 1] : off[nl]] = readout(R, net)
    return steps, res


# --------------------------------------------------------------------------- EP estimator


@njit(cache=True)
def param_force(
    S: np.ndarray, beta: float, net: Net, D: np.ndarray, gW: np.ndarray, gb: np.ndarray, scale: float
) -> None:
    """Accumulate ``scale * dF/dtheta(S, beta)`` (batch mean) into ``gW`` and ``gb``.

    ``dE/dW_k = -rho(s_k) rho(s_{k+1})^T`` and ``dE/db_k = -rho(s_k)``; with the cross-entropy readout
    the readout parameters enter ``F`` only through ``beta C``.
    """
    off, woff = net.off, net.woff
    top = _top(net)
    B = S.shape[1]
    R = np.empty_like(S)
    fill_rho(S, R, net)
    c = scale / B
    # (g - c x) == (g + (-c) x) to the bit: negation is exact in IEEE arithmetic
    for k in range(top):
        _axpy(gW[woff[k] : woff[k + 1]], -c, _layer_outer(R, R, off, k))
    for i in range(off[1], off[top + 1]):
        gb[i] -= c * _row_sum(R, i)
    if net.cost == COST_SOFTMAX_CE and beta != 0.0:
        P = readout(R, net)
        P -= D
        cb = c * beta
        _axpy(gW[woff[top] : woff[top + 1]], cb, np.dot(R[off[top] : off[top + 1]], P.T))
        for i in range(P.shape[0]):
            gb[off[top + 1] + i] += cb * _row_sum(P, i)


@njit(cache=True)
def ep_gradient(
    Sa: np.ndarray, beta_a: float, Sb: np.ndarray, beta_b: float, denom: float, net: Net, D: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """EP estimate of ``dJ/dtheta``: ``(dF/dtheta(Sa, beta_a) - dF/dtheta(Sb, beta_b)) / denom``.

    One-sided: ``(S_beta, beta, S_0, 0, beta)``; symmetric: ``(S_+, beta, S_-, -beta, 2 beta)``.
    """
    gW = np.zeros_like(net.Wf)
    gb = np.zeros_like(net.bf)
    param_force(Sa, beta_a, net, D, gW, gb, 1.0 / denom)
    param_force(Sb, beta_b, net, D, gW, gb, -1.0 / denom)
    return gW, gb


# --------------------------------------------------------------------------- training epoch


@njit(cache=True)
def train_epoch(
    net: Net,
    data: Examples,
    particles: np.ndarray,
    perm: np.ndarray,
    signs: np.ndarray,
    rates: Rates,
    ep: EPSchedule,
    stats: np.ndarray,
) -> None:
    """One epoch of EP training (``net``'s weights updated in place after every minibatch).

    Parameters
    ----------
    net : Net
        The network; its ``Wf`` and ``bf`` are trained.
    data : Examples
        Inputs ``(n_in, n)`` and one-hot targets ``(n_out, n)``, one column per example.
    particles : (n_units, n)
        Free states of every example, warm-starting its next free phase when ``ep.persistent``.
    perm : (n,) int
        Example order; the last partial minibatch is dropped.
    signs : (n_batches,) float
        Sign of beta for each minibatch (+-1).
    rates : Rates
        Learning rate of each weight matrix and of each unit's bias.
    ep : EPSchedule
        Minibatch size, nudging and relaxation phases.
    stats : (n_batches, 5)
        Written per minibatch: free steps, free residual, mean energy at the free state,
        number of misclassified examples, mean cost at the free state.
    """
    X, D = data.X, data.D
    off, woff, Wf, bf = net.off, net.woff, net.Wf, net.bf
    batch = ep.batch
    nl = off.shape[0] - 1
    n_units = off[nl]
    n_batches = perm.shape[0] // batch
    S0 = np.empty((n_units, batch))
    Sp = np.empty((n_units, batch))
    Sm = np.empty((n_units, batch))
    Db = np.empty((D.shape[0], batch))
    Ebuf = np.empty(batch)
    Cbuf = np.empty(batch)
    o = off[nl - 1]
    for bi in range(n_batches):
        _gather(X, perm, bi * batch, S0)  # the clamped input rows
        if ep.persistent:
            _gather(particles[X.shape[0] :], perm, bi * batch, S0[X.shape[0] :])
        else:
            S0[X.shape[0] :] = 0.0
        _gather(D, perm, bi * batch, Db)
        steps, res = relax(S0, net, Db, 0.0, ep.eps, ep.n_free, ep.tol)
        energy_cost(S0, net, Db, Ebuf, Cbuf)
        wrong = _n_wrong(S0, o, Db)
        if ep.persistent:
            for j in range(batch):
                particles[:, perm[bi * batch + j]] = S0[:, j]
        stats[bi, 0] = steps
        stats[bi, 1] = res
        stats[bi, 2] = Ebuf.mean()
        stats[bi, 3] = wrong
        stats[bi, 4] = Cbuf.mean()
        b_signed = ep.beta * signs[bi]
        Sp[:] = S0
        relax(Sp, net, Db, b_signed, ep.eps, ep.n_nudged, 0.0)
        if ep.symmetric:
            Sm[:] = S0
            relax(Sm, net, Db, -b_signed, ep.eps, ep.n_nudged, 0.0)
            gW, gb = ep_gradient(Sp, b_signed, Sm, -b_signed, 2.0 * b_signed, net, Db)
        else:
            gW, gb = ep_gradient(Sp, b_signed, S0, 0.0, b_signed, net, Db)
        for k in range(woff.shape[0] - 1):
            for i in range(woff[k], woff[k + 1]):
                Wf[i] -= rates.w[k] * gW[i]
        for i in range(bf.shape[0]):
            bf[i] -= rates.b[i] * gb[i]


@njit(cache=True)
def predict_ep(
    net: Net,
    X: np.ndarray,
    states: np.ndarray,
    eps: float,
    n_max: int,
    tol: float,
    chunk: int,
    out_class: np.ndarray,
    out_steps: np.ndarray,
) -> None:
    """Free-phase prediction (argmax of the output layer) for every column of X, ``chunk`` columns at a time.

    Each column relaxes from ``states`` (zeros for a cold start, the last free states for persistent
    evaluation); the relaxed states are written back into ``states``.
    """
    off = net.off
    nl = off.shape[0] - 1
    n = X.shape[1]
    o = off[nl - 1]
    n_out = off[nl] - o
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        S = states[:, start : start + m].copy()
        S[: X.shape[0]] = X[:, start : start + m]
        Dz = np.zeros((n_out, m))
        steps, _ = relax(S, net, Dz, 0.0, eps, n_max, tol)
        states[:, start : start + m] = S
        for j in range(m):
            out_class[start + j] = _argmax_col(S, o, n_out, j)
            out_steps[start + j] = steps


# --------------------------------------------------------------------------- discrete-time form and BPTT


@njit(cache=True)
def step_map(S: np.ndarray, net: Net, D: np.ndarray, beta: float, eps: float) -> np.ndarray:
    """One step of the prototypical discrete-time form ``s_{t+1} = dPhi/ds(s_t) - eps beta dC/ds(s_t)``.

    With ``Phi = 1/2 ||s||^2 - eps E(s)`` this is ``s - eps dF/ds`` without projection (so it is exactly
    a gradient map, the condition of Ernoult et al. 2019, Theorem 1).
    """
    R = np.empty_like(S)
    G = np.empty_like(S)
    fill_rho(S, R, net)
    force(S, R, net, D, beta, input_drive(S, net), G)
    top = _top(net)
    out = S.copy()
    for i in range(net.off[1], net.off[top + 1]):
        for j in range(S.shape[1]):
            out[i, j] = S[i, j] - eps * G[i, j]
    return out


@njit(cache=True)
def bptt_at_fixed_point(
    S: np.ndarray, net: Net, D: np.ndarray, eps: float, K: int, gS: np.ndarray, gW: np.ndarray, gb: np.ndarray
) -> None:
    """Truncated BPTT of ``L = C(s_T)`` through ``K`` steps of :func:`step_map` that all sit at ``S``.

    When the free phase has converged, ``s_{T-t} = s*`` for ``t <= K``; the step Jacobian is then the
    same at every step and BPTT is ``g_{T-t-1} = J^T g_{T-t}`` with ``g_T = dC/ds(s*)`` (squared-error
    cost on the output states). Writes, for ``t = 0..K-1``, ``gS[t] = dL/ds_{T-t}`` (relaxed rows) and
    ``gW[t], gb[t] = dL/dtheta_{T-t}``: the gradient with respect to the parameters used by the step
    into ``s_{T-t}`` (batch mean).
    """
    off, woff, bf, kind = net.off, net.woff, net.bf, net.rho
    nl = off.shape[0] - 1
    top = nl - 1
    B = S.shape[1]
    R = np.empty_like(S)
    fill_rho(S, R, net)
    dR = np.empty_like(S)
    d2R = np.empty_like(S)
    U = np.zeros_like(S)
    for n in range(1, top + 1):
        a, b = off[n], off[n + 1]
        Un = _from_below(net, R, n)
        if n < top:
            Un += _from_above(net, R, n)
        for i in range(b - a):
            for j in range(B):
                U[a + i, j] = Un[i, j] + bf[a + i]
                dR[a + i, j] = _drho(S[a + i, j], kind)
                d2R[a + i, j] = _d2rho(S[a + i, j], kind)
    g = np.zeros_like(S)
    a0 = off[nl - 1]
    for i in range(D.shape[0]):
        for j in range(B):
            g[a0 + i, j] = (S[a0 + i, j] - D[i, j]) / B
    A = np.zeros_like(S)  # eps rho'(s_n) g'_n : gradient reaching the net input u_n
    gr = np.zeros_like(S)  # gradient with respect to rho(s_n)
    for t in range(K):
        for i in range(off[1], off[top + 1]):
            for j in range(B):
                gS[t, i - off[1], j] = g[i, j] * B
                A[i, j] = eps * dR[i, j] * g[i, j]
        # parameter gradients of the step into s_{T-t}: s'_n = (1-eps) s_n + eps rho'(s_n) (u_n + b_n)
        for k in range(top):
            M = _layer_outer(R, A, off, k)
            if k >= 1:
                M += _layer_outer(A, R, off, k)
            gW[t, woff[k] : woff[k + 1]] = M.ravel()
        for i in range(off[1], off[top + 1]):
            gb[t, i] = _row_sum(A, i)
        # state gradient one step further back: g_n = (1-eps) g'_n + eps rho''(s_n) u_n g'_n
        #                                           + rho'(s_n) [W_{n-1}^T A_{n-1} + W_n A_{n+1}]
        gr[:] = 0.0
        for n in range(1, top + 1):
            a, b = off[n], off[n + 1]
            if n + 1 <= top:
                gr[a:b] += _from_above(net, A, n)
            if n - 1 >= 1:
                gr[a:b] += _from_below(net, A, n)
        for i in range(off[1], off[top + 1]):
            for j in range(B):
                g[i, j] = (1.0 - eps) * g[i, j] + eps * d2R[i, j] * U[i, j] * g[i, j] + dR[i, j] * gr[i, j]


# --------------------------------------------------------------------------- backprop baseline


@njit(cache=True)
def forward(net: Net, X: np.ndarray, Z: np.ndarray, H: np.ndarray) -> None:
    """Feed-forward pass of the backprop baseline: net inputs ``Z`` and activations ``H`` of every layer."""
    off, bf = net.off, net.bf
    nl = off.shape[0] - 1
    H[: off[1]] = X
    for k in range(nl - 1):
        Zk = _from_below(net, H, k + 1)
        a = off[k + 1]
        for i in range(Zk.shape[0]):
            for j in range(Zk.shape[1]):
                Z[a + i, j] = Zk[i, j] + bf[a + i]
                H[a + i, j] = _rho(Z[a + i, j], net.rho)
    o = off[nl - 1]
    if net.cost == COST_SOFTMAX_CE:
        H[o:] = softmax_cols(Z[o:])
    else:
        # Linear output for the squared error: a hard-sigmoid output unit whose net input leaves [0, 1]
        # has zero gradient for good, which stalls backprop (EP's clipped output states do not stall).
        H[o:] = Z[o:]


@njit(cache=True)
def bp_train_epoch(net: Net, data: Examples, perm: np.ndarray, batch: int, rates: Rates, stats: np.ndarray) -> None:
    """One epoch of minibatch SGD with backprop on the feed-forward net of the same architecture.

    ``h_{k+1} = rho(W_k^T h_k + b_{k+1})`` (hidden layers); linear output ``z`` with the squared error,
    ``softmax(z)`` with cross-entropy. ``stats[b] = (misclassified, mean cost)`` per minibatch.
    """
    X, D = data.X, data.D
    off, woff, Wf, bf, kind = net.off, net.woff, net.Wf, net.bf, net.rho
    nl = off.shape[0] - 1
    n_units = off[nl]
    n_batches = perm.shape[0] // batch
    Xb = np.empty((X.shape[0], batch))
    Db = np.empty((D.shape[0], batch))
    Z = np.zeros((n_units, batch))
    H = np.zeros((n_units, batch))
    Dl = np.zeros((n_units, batch))  # dL/dz per layer
    o = off[nl - 1]
    for bi in range(n_batches):
        _gather(X, perm, bi * batch, Xb)
        _gather(D, perm, bi * batch, Db)
        forward(net, Xb, Z, H)
        wrong = _n_wrong(H, o, Db)
        cst = 0.0
        for j in range(batch):
            for i in range(D.shape[0]):
                if net.cost == COST_MSE:
                    d = H[o + i, j] - Db[i, j]
                    cst += 0.5 * d * d
                    Dl[o + i, j] = d / batch
                else:
                    if Db[i, j] > 0.0:
                        cst -= Db[i, j] * math.log(max(H[o + i, j], 1e-300))
                    Dl[o + i, j] = (H[o + i, j] - Db[i, j]) / batch
        stats[bi, 0] = wrong
        stats[bi, 1] = cst / batch
        for k in range(nl - 2, -1, -1):
            if k >= 1:
                back = _from_above(net, Dl, k)
                a = off[k]
                for i in range(back.shape[0]):
                    for j in range(batch):
                        Dl[a + i, j] = back[i, j] * _drho(Z[a + i, j], kind)
            # (w - r x) == (w + (-r) x) to the bit: negation is exact in IEEE arithmetic
            _axpy(Wf[woff[k] : woff[k + 1]], -rates.w[k], _layer_outer(H, Dl, off, k))
            for i in range(off[k + 1], off[k + 2]):
                bf[i] -= rates.b[i] * _row_sum(Dl, i)


@njit(cache=True)
def predict_bp(net: Net, X: np.ndarray, out_class: np.ndarray) -> None:
    """Feed-forward prediction (argmax of the output) for every column of X."""
    off = net.off
    nl = off.shape[0] - 1
    n = X.shape[1]
    Z = np.zeros((off[nl], n))
    H = np.zeros((off[nl], n))
    forward(net, X, Z, H)
    o = off[nl - 1]
    for j in range(n):
        out_class[j] = _argmax_col(H, o, off[nl] - o, j)
