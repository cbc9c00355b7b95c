"""Numba kernels: the LTC network's right-hand side, its fused and explicit-Euler unfolding with the bound
checks of Theorems 1-2, and the CfC cell in its published variants.

LTC network (Hasani et al. 2021, Eq. 1, in the conductance form the authors train; ``papers/ltc_cfc.md`` §1-2).
For neuron ``i`` with presynaptic neurons ``j`` and inputs ``k``, the network is written as

    cm_i dx_i/dt = gl_i (vl_i - x_i) + d_i(x, I) - g_i(x, I) x_i,

with a total synaptic conductance ``g_i`` and drive ``d_i``. Two heads give ``g`` and ``d``:

``sigmoid`` (head code 0, the theorems' setting)
    ``g_i = sum_j W_ji s(sig_ji (x_j - mu_ji)) + sum_k Ws_ki s(sigs_ki (I_k - mus_ki))`` with the logistic
    ``s`` and weights ``W >= 0``, and ``d_i`` the same sum with each term multiplied by its reversal
    ``E_ji`` (``Es_ki``). Eq. 1 (``dx/dt = -(1/tau + f) x + f A``) is the case ``cm = 1``, ``gl = 1/tau``,
    ``vl = 0``, every reversal of neuron ``i`` equal to ``A_i``; then ``f_i = g_i``.
``tanh`` (head code 1, the paper's example head)
    ``f_i = tanh(sum_j W_ji x_j + sum_k Ws_ki I_k + bias_i)``, ``g_i = f_i``, ``d_i = f_i A_i``. ``f`` takes
    negative values, so the theorems' condition ``f >= 0`` fails.

Fused step (Eq. 3, f at the old state): ``x <- (cm/dt x + gl vl + d) / (cm/dt + gl + g)``; explicit Euler:
``x <- x + dt (gl (vl - x) + d - g x) / cm``. Input sample ``n`` holds for ``elapsed[n]`` and is unfolded into
``L`` equal sub-steps.

CfC cell (Hasani et al. 2022, Eq. 10, as ``ncps.CfCCell``): backbone ``z = act(Wbb [I, x] + bbb)``, heads
``ff1 = W1 z + b1``, ``ff2 = W2 z + b2``, ``t_a = Wa z + ba``, ``t_b = Wb z + bb``, gate
``sigma(t_a t + t_b)``; modes ``default`` ``x = tanh(ff1) (1 - gate) + gate tanh(ff2)``, ``no_gate``
``x = tanh(ff1) + gate tanh(ff2)``, ``pure`` (Cf-S) ``x = A - A exp(-t (|w_tau| + |ff1|)) ff1``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

#: head codes of :attr:`Net.head`
HEAD_CODES = {"sigmoid": 0, "tanh": 1}
#: scheme codes of :func:`unfold`
SCHEME_CODES = {"fused": 0, "euler": 1}
#: CfC mode codes of :attr:`Cell.mode`
MODE_CODES = {"default": 0, "no_gate": 1, "pure": 2}
#: backbone activation codes of :attr:`Cell.act`
ACT_CODES = {"lecun_tanh": 0, "relu": 1, "tanh": 2}
#: relative margin below which a state or rate counts as outside its bound: the fused step's convex combination
#: can land a rounding error beyond a reversal it converges to
ROUNDING = 1e-12
#: columns of the statistics array of :func:`unfold`
STATS = ("state_violations", "state_margin", "rate_violations", "rate_margin", "checks", "nonfinite")


class Net(NamedTuple):
    """An LTC network's parameters (see module docstring); synapse arrays are ``(pre, post)``."""

    cm: np.ndarray  #: (N,) membrane capacitance (1 in Eq. 1)
    gl: np.ndarray  #: (N,) leak conductance (1/tau in Eq. 1)
    vl: np.ndarray  #: (N,) leak reversal (0 in Eq. 1)
    W: np.ndarray  #: (N, N) recurrent weights (tanh head: recurrent gains)
    sig: np.ndarray  #: (N, N) recurrent sigmoid slopes
    mu: np.ndarray  #: (N, N) recurrent sigmoid centres
    E: np.ndarray  #: (N, N) recurrent reversals
    Ws: np.ndarray  #: (M, N) sensory weights (tanh head: input gains)
    sigs: np.ndarray  #: (M, N) sensory sigmoid slopes
    mus: np.ndarray  #: (M, N) sensory sigmoid centres
    Es: np.ndarray  #: (M, N) sensory reversals
    A: np.ndarray  #: (N,) reversal of the tanh head
    bias: np.ndarray  #: (N,) bias of the tanh head
    head: int  #: :data:`HEAD_CODES`


class Bounds(NamedTuple):
    """Theorems 1-2's box for every neuron, in the rate form ``1/tau_sys = (gl + g)/cm``."""

    lo: np.ndarray  #: (N,) lower state bound
    hi: np.ndarray  #: (N,) upper state bound
    rate_lo: np.ndarray  #: (N,) gl/cm = 1/tau (Theorem 1's upper bound on tau_sys)
    rate_hi: np.ndarray  #: (N,) (gl + W)/cm = 1/tau + W (Theorem 1's lower bound on tau_sys)


class Cell(NamedTuple):
    """A CfC cell's parameters (see module docstring); weights are ``(fan_in, fan_out)``."""

    Wbb: np.ndarray  #: (M + N, B) backbone weights on [input, state]
    bbb: np.ndarray  #: (B,)
    W1: np.ndarray  #: (B, N)
    b1: np.ndarray  #: (N,)
    W2: np.ndarray  #: (B, N)
    b2: np.ndarray  #: (N,)
    Wa: np.ndarray  #: (B, N)
    ba: np.ndarray  #: (N,)
    Wb: np.ndarray  #: (B, N)
    bb: np.ndarray  #: (N,)
    A: np.ndarray  #: (N,) Cf-S reversal
    wtau: np.ndarray  #: (N,) Cf-S leak rate
    mode: int  #: :data:`MODE_CODES`
    act: int  #: :data:`ACT_CODES`


@njit(cache=True)
def logistic(u: float) -> float:
    """The logistic sigmoid, stable for either sign of ``u``."""
    if u >= 0.0:
        return 1.0 / (1.0 + math.exp(-u))
    e = math.exp(u)
    return e / (1.0 + e)


@njit(cache=True)
def conductance(net: Net, x: np.ndarray, inp: np.ndarray, g: np.ndarray, d: np.ndarray) -> None:
    """The total synaptic conductance ``g`` and drive ``d`` of every neuron at state ``x`` and input ``inp``."""
    N = x.shape[0]
    M = inp.shape[0]
    if net.head == 0:
        # presynaptic index outer: rows of the (pre, post) arrays are contiguous; each neuron's sums still
        # run over j (then k) in increasing order
        g[:] = 0.0
        d[:] = 0.0
        for j in range(N):
            xj = x[j]
            for i in range(N):
                w = net.W[j, i] * logistic(net.sig[j, i] * (xj - net.mu[j, i]))
                g[i] += w
                d[i] += w * net.E[j, i]
        for k in range(M):
            ik = inp[k]
            for i in range(N):
                w = net.Ws[k, i] * logistic(net.sigs[k, i] * (ik - net.mus[k, i]))
                g[i] += w
                d[i] += w * net.Es[k, i]
    else:
        for i in range(N):
            u = net.bias[i]
            for j in range(N):
                u += net.W[j, i] * x[j]
            for k in range(M):
                u += net.Ws[k, i] * inp[k]
            f = math.tanh(u)
            g[i] = f
            d[i] = f * net.A[i]


@njit(cache=True)
def rhs(net: Net, x: np.ndarray, inp: np.ndarray, out: np.ndarray) -> None:
    """``dx/dt`` of the LTC network into ``out``."""
    N = x.shape[0]
    g = np.empty(N)
    d = np.empty(N)
    conductance(net, x, inp, g, d)
    for i in range(N):
        out[i] = (net.gl[i] * (net.vl[i] - x[i]) + d[i] - g[i] * x[i]) / net.cm[i]


@njit(cache=True)
def check_state(bounds: Bounds, x: np.ndarray, stats: np.ndarray) -> None:
    """Add state ``x``'s bound violations to ``stats`` and lower its relative margin (negative = outside)."""
    for i in range(x.shape[0]):
        width = bounds.hi[i] - bounds.lo[i]
        m = min(x[i] - bounds.lo[i], bounds.hi[i] - x[i]) / width if width > 0 else 0.0
        if not math.isfinite(x[i]):
            m = -math.inf
        if m < -ROUNDING:
            stats[0] += 1.0
        if m < stats[1]:
            stats[1] = m


@njit(cache=True)
def check_rate(net: Net, bounds: Bounds, g: np.ndarray, stats: np.ndarray) -> None:
    """Add the violations of Theorem 1 by ``1/tau_sys = (gl + g)/cm`` to ``stats``, lower its relative margin."""
    for i in range(g.shape[0]):
        rate = (net.gl[i] + g[i]) / net.cm[i]
        width = bounds.rate_hi[i] - bounds.rate_lo[i]
        m = min(rate - bounds.rate_lo[i], bounds.rate_hi[i] - rate) / width if width > 0 else 0.0
        if not math.isfinite(rate):
            m = -math.inf
        if m < -ROUNDING:
            stats[2] += 1.0
        if m < stats[3]:
            stats[3] = m


@njit(cache=True)
def unfold(
    net: Net,
    bounds: Bounds,
    x: np.ndarray,
    inputs: np.ndarray,
    elapsed: np.ndarray,
    L: int,
    scheme: int,
    first: int,
    n: int,
    xs: np.ndarray,
    stats: np.ndarray,
    blowup: float,
) -> int:
    """Advance ``x`` over input samples ``first .. first + n - 1``, ``L`` sub-steps each, checking the bounds.

    Parameters
    ----------
    x : ndarray
        (N,) state, advanced in place.
    inputs, elapsed : ndarray
        (T, M) input samples and (T,) the time each one holds.
    scheme : int
        :data:`SCHEME_CODES`: the fused step (Eq. 3) or explicit Euler.
    xs : ndarray
        (T, N) the state after each sample (written for the samples run).
    stats : ndarray
        (6,) running statistics, columns :data:`STATS`; the state is checked after every sub-step and the
        rate at every state where f is evaluated.
    blowup : float
        A state beyond this magnitude (or non-finite) stops the run: the rest of ``xs`` stays NaN.

    Returns
    -------
    int
        0 when the samples ran, 1 when the state left ``[-blowup, blowup]`` or became non-finite.
    """
    N = x.shape[0]
    g = np.empty(N)
    d = np.empty(N)
    for s in range(first, first + n):
        dt = elapsed[s] / L
        inp = inputs[s]
        for _ in range(L):
            conductance(net, x, inp, g, d)
            check_rate(net, bounds, g, stats)
            for i in range(N):
                if scheme == 0:
                    x[i] = (net.cm[i] / dt * x[i] + net.gl[i] * net.vl[i] + d[i]) / (net.cm[i] / dt + net.gl[i] + g[i])
                else:
                    x[i] = x[i] + dt * (net.gl[i] * (net.vl[i] - x[i]) + d[i] - g[i] * x[i]) / net.cm[i]
            check_state(bounds, x, stats)
            stats[4] += N
            for i in range(N):
                if not (abs(x[i]) <= blowup):
                    stats[5] = 1.0
                    return 1
        xs[s] = x
    return 0


@njit(cache=True)
def cfc_step(cell: Cell, inp: np.ndarray, x: np.ndarray, t: float, work: np.ndarray, out: np.ndarray) -> None:
    """One CfC update: the new state ``out`` from input ``inp``, state ``x`` and elapsed time ``t``.

    ``work`` (B + 4 N,) is work space: the backbone's output ``z`` and the heads ``ff1, ff2, t_a, t_b`` on
    return. The products run row by row over the ``(fan_in, fan_out)`` weights (contiguous in memory).
    """
    M = inp.shape[0]
    N = x.shape[0]
    B = cell.bbb.shape[0]
    z = work[:B]
    f1 = work[B : B + N]
    f2 = work[B + N : B + 2 * N]
    ta = work[B + 2 * N : B + 3 * N]
    tb = work[B + 3 * N : B + 4 * N]
    z[:] = cell.bbb
    for k in range(M):
        for b in range(B):
            z[b] += cell.Wbb[k, b] * inp[k]
    for j in range(N):
        for b in range(B):
            z[b] += cell.Wbb[M + j, b] * x[j]
    for b in range(B):
        u = z[b]
        if cell.act == 0:
            z[b] = 1.7159 * math.tanh(0.666 * u)
        elif cell.act == 1:
            z[b] = u if u > 0.0 else 0.0
        else:
            z[b] = math.tanh(u)
    f1[:] = cell.b1
    for b in range(B):
        for i in range(N):
            f1[i] += cell.W1[b, i] * z[b]
    if cell.mode == 2:
        for i in range(N):
            out[i] = cell.A[i] - cell.A[i] * math.exp(-t * (abs(cell.wtau[i]) + abs(f1[i]))) * f1[i]
        return
    f2[:] = cell.b2
    ta[:] = cell.ba
    tb[:] = cell.bb
    for b in range(B):
        for i in range(N):
            f2[i] += cell.W2[b, i] * z[b]
            ta[i] += cell.Wa[b, i] * z[b]
            tb[i] += cell.Wb[b, i] * z[b]
    for i in range(N):
        gate = logistic(ta[i] * t + tb[i])
        if cell.mode == 0:
            out[i] = math.tanh(f1[i]) * (1.0 - gate) + gate * math.tanh(f2[i])
        else:
            out[i] = math.tanh(f1[i]) + gate * math.tanh(f2[i])


@njit(cache=True)
def cfc_sequence(cell: Cell, x: np.ndarray, inputs: np.ndarray, elapsed: np.ndarray, xs: np.ndarray) -> None:
    """Run the CfC cell over a sequence from state ``x`` (advanced in place); ``xs`` (T, N) gets every state."""
    N = x.shape[0]
    work = np.empty(cell.bbb.shape[0] + 4 * N)
    new = np.empty(N)
    for s in range(inputs.shape[0]):
        cfc_step(cell, inputs[s], x, elapsed[s], work, new)
        x[:] = new
        xs[s] = x


# Dormand & Prince (1980) 5(4) tableau, as scipy's RK45: the adaptive solver of the speed comparison
_DP_C = np.array([0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0])
_DP_A = np.array(
    [
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [1.0 / 5.0, 0.0, 0.0, 0.0, 0.0],
        [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0],
        [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0],
        [19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0, 0.0],
        [9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
    ]
)
_DP_B = np.array([35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0])
_DP_E = np.array([-71.0 / 57600.0, 0.0, 71.0 / 16695.0, -71.0 / 1920.0, 17253.0 / 339200.0, -22.0 / 525.0, 1.0 / 40.0])


@njit(cache=True)
def rk45_sequence(
    net: Net, x: np.ndarray, inputs: np.ndarray, elapsed: np.ndarray, rtol: float, atol: float, xs: np.ndarray
) -> int:
    """The LTC network over a sequence with the adaptive Dormand-Prince 5(4) method (scipy RK45's scheme:
    RMS error norm, safety 0.9, step factor in [0.2, 10], first-same-as-last), restarted at every sample
    (the input jumps there) with the step size carried over. Returns the number of right-hand-side calls."""
    N = x.shape[0]
    k = np.empty((7, N))
    y = np.empty(N)
    y_new = np.empty(N)
    nfev = 0
    h = elapsed[0] * 0.1
    for s in range(inputs.shape[0]):
        inp = inputs[s]
        t = 0.0
        span = elapsed[s]
        rhs(net, x, inp, k[0])
        nfev += 1
        while t < span:
            h = min(h, span - t)
            for stage in range(1, 6):
                for i in range(N):
                    acc = x[i]
                    for j in range(stage):
                        acc += h * _DP_A[stage, j] * k[j, i]
                    y[i] = acc
                rhs(net, y, inp, k[stage])
            for i in range(N):
                acc = x[i]
                for j in range(6):
                    acc += h * _DP_B[j] * k[j, i]
                y_new[i] = acc
            rhs(net, y_new, inp, k[6])
            nfev += 6
            err = 0.0
            for i in range(N):
                e = 0.0
                for j in range(7):
                    e += _DP_E[j] * k[j, i]
                sc = atol + rtol * max(abs(x[i]), abs(y_new[i]))
                err += (h * e / sc) ** 2
            err = math.sqrt(err / N)
            if err <= 1.0:
                t += h
                x[:] = y_new
                k[0] = k[6]
                factor = 10.0 if err == 0.0 else min(10.0, 0.9 * err**-0.2)
            else:
                factor = max(0.2, 0.9 * err**-0.2)
            h *= factor
        xs[s] = x
    return nfev


# --------------------------------------------------------------------------- exact BPTT (bit-stream XOR)
#
# Every trained model ends in a linear readout ``logit = wout . x_T + bout`` of its last valid state and the
# binary cross-entropy ``softplus(logit) - y logit``. The backward passes below are hand-written: per sequence,
# the forward states are stored, then time is reversed through the readout and every step (the CfC update, or
# the L fused LTC sub-steps of each sample), accumulating into gradient arrays of the same layout as the
# parameters (the tests check them against central finite differences).

#: added to the fused step's denominator, as ncps does (the trained cm and gleak are clipped at 0)
LTC_EPS = 1e-8


class Readout(NamedTuple):
    """The linear readout of the last state."""

    w: np.ndarray  #: (N,)
    b: np.ndarray  #: (1,)


@njit(cache=True)
def _act(u: float, act: int) -> float:
    if act == 0:
        return 1.7159 * math.tanh(0.666 * u)
    if act == 1:
        return u if u > 0.0 else 0.0
    return math.tanh(u)


@njit(cache=True)
def _act_prime(u: float, act: int) -> float:
    if act == 0:
        th = math.tanh(0.666 * u)
        return 1.7159 * 0.666 * (1.0 - th * th)
    if act == 1:
        return 1.0 if u > 0.0 else 0.0
    th = math.tanh(u)
    return 1.0 - th * th


@njit(cache=True)
def cfc_step_back(
    cell: Cell, grad: Cell, inp: np.ndarray, x: np.ndarray, t: float, dnew: np.ndarray, dx: np.ndarray
) -> None:
    """Backward of :func:`cfc_step` at input ``inp``, state ``x``, time ``t``: given ``dL/dx_new`` (``dnew``),
    add the parameter gradients into ``grad`` and write ``dL/dx`` into ``dx``."""
    M = inp.shape[0]
    N = x.shape[0]
    B = cell.bbb.shape[0]
    u = np.empty(B)
    z = np.empty(B)
    for b in range(B):
        acc = cell.bbb[b]
        for k in range(M):
            acc += cell.Wbb[k, b] * inp[k]
        for j in range(N):
            acc += cell.Wbb[M + j, b] * x[j]
        u[b] = acc
        z[b] = _act(acc, cell.act)
    dz = np.zeros(B)
    for i in range(N):
        a1 = cell.b1[i]
        for b in range(B):
            a1 += cell.W1[b, i] * z[b]
        if cell.mode == 2:
            rate = abs(cell.wtau[i]) + abs(a1)
            e = math.exp(-t * rate)
            A = cell.A[i]
            grad.A[i] += dnew[i] * (1.0 - e * a1)
            d_e = -dnew[i] * A * a1
            da1 = -dnew[i] * A * e - d_e * e * t * np.sign(a1)
            grad.wtau[i] += -d_e * e * t * np.sign(cell.wtau[i])
            grad.b1[i] += da1
            for b in range(B):
                grad.W1[b, i] += da1 * z[b]
                dz[b] += cell.W1[b, i] * da1
            continue
        a2 = cell.b2[i]
        ta = cell.ba[i]
        tb = cell.bb[i]
        for b in range(B):
            a2 += cell.W2[b, i] * z[b]
            ta += cell.Wa[b, i] * z[b]
            tb += cell.Wb[b, i] * z[b]
        h1 = math.tanh(a1)
        h2 = math.tanh(a2)
        g = logistic(ta * t + tb)
        if cell.mode == 0:
            dh1 = dnew[i] * (1.0 - g)
            dg = dnew[i] * (h2 - h1)
        else:
            dh1 = dnew[i]
            dg = dnew[i] * h2
        dh2 = dnew[i] * g
        da1 = dh1 * (1.0 - h1 * h1)
        da2 = dh2 * (1.0 - h2 * h2)
        dpre = dg * g * (1.0 - g)
        dta = dpre * t
        grad.b1[i] += da1
        grad.b2[i] += da2
        grad.ba[i] += dta
        grad.bb[i] += dpre
        for b in range(B):
            grad.W1[b, i] += da1 * z[b]
            grad.W2[b, i] += da2 * z[b]
            grad.Wa[b, i] += dta * z[b]
            grad.Wb[b, i] += dpre * z[b]
            dz[b] += cell.W1[b, i] * da1 + cell.W2[b, i] * da2 + cell.Wa[b, i] * dta + cell.Wb[b, i] * dpre
    dx[:] = 0.0
    for b in range(B):
        du = dz[b] * _act_prime(u[b], cell.act)
        grad.bbb[b] += du
        for k in range(M):
            grad.Wbb[k, b] += du * inp[k]
        for j in range(N):
            grad.Wbb[M + j, b] += du * x[j]
            dx[j] += cell.Wbb[M + j, b] * du


@njit(cache=True)
def _bce(logit: float, y: float) -> float:
    """softplus(logit) - y logit, stable for either sign."""
    return max(logit, 0.0) + math.log1p(math.exp(-abs(logit))) - y * logit


@njit(cache=True)
def cfc_batch(
    cell: Cell,
    out: Readout,
    grad: Cell,
    gout: Readout,
    inputs: np.ndarray,
    elapsed: np.ndarray,
    lengths: np.ndarray,
    labels: np.ndarray,
    idx: np.ndarray,
    backward: bool,
    logits: np.ndarray,
) -> float:
    """Loss summed over sequences ``idx`` (inputs ``(S, P, M)``, elapsed ``(S, P)``, valid ``lengths``); their
    logits into ``logits[idx]``; with ``backward`` the summed exact gradients are added into ``grad``/``gout``."""
    N = out.w.shape[0]
    P = inputs.shape[1]
    xs = np.zeros((P + 1, N))
    work = np.empty(cell.bbb.shape[0] + 4 * N)
    d = np.empty(N)
    dprev = np.empty(N)
    total = 0.0
    for q in range(idx.shape[0]):
        s = idx[q]
        n = lengths[s]
        xs[0] = 0.0
        for k in range(n):
            cfc_step(cell, inputs[s, k], xs[k], elapsed[s, k], work, xs[k + 1])
        logit = out.b[0]
        for i in range(N):
            logit += out.w[i] * xs[n, i]
        logits[s] = logit
        total += _bce(logit, labels[s])
        if not backward:
            continue
        dlogit = logistic(logit) - labels[s]
        gout.b[0] += dlogit
        for i in range(N):
            gout.w[i] += dlogit * xs[n, i]
            d[i] = dlogit * out.w[i]
        for k in range(n - 1, -1, -1):
            cfc_step_back(cell, grad, inputs[s, k], xs[k], elapsed[s, k], d, dprev)
            d[:] = dprev
    return total


@njit(cache=True)
def ltc_substep(
    net: Net, x: np.ndarray, inp: np.ndarray, dt: float, g: np.ndarray, d: np.ndarray, new: np.ndarray
) -> None:
    """One fused sub-step of the conductance-form LTC (with ncps's ``1e-8`` in the denominator) into ``new``."""
    conductance(net, x, inp, g, d)
    for i in range(x.shape[0]):
        new[i] = (net.cm[i] / dt * x[i] + net.gl[i] * net.vl[i] + d[i]) / (net.cm[i] / dt + net.gl[i] + g[i] + LTC_EPS)


@njit(cache=True)
def ltc_substep_back(
    net: Net, grad: Net, x: np.ndarray, inp: np.ndarray, dt: float, dnew: np.ndarray, dx: np.ndarray
) -> None:
    """Backward of :func:`ltc_substep` (sigmoid head) at state ``x``: given ``dL/dx_new``, add the parameter
    gradients into ``grad`` and write ``dL/dx`` into ``dx``."""
    N = x.shape[0]
    M = inp.shape[0]
    g = np.empty(N)
    dd = np.empty(N)
    conductance(net, x, inp, g, dd)
    dnum = np.empty(N)
    dden = np.empty(N)
    for i in range(N):
        den = net.cm[i] / dt + net.gl[i] + g[i] + LTC_EPS
        num = net.cm[i] / dt * x[i] + net.gl[i] * net.vl[i] + dd[i]
        dnum[i] = dnew[i] / den
        dden[i] = -dnew[i] * num / (den * den)
        dx[i] = dnum[i] * net.cm[i] / dt
        grad.cm[i] += (dnum[i] * x[i] + dden[i]) / dt
        grad.gl[i] += dnum[i] * net.vl[i] + dden[i]
        grad.vl[i] += dnum[i] * net.gl[i]
    _synapses_back(net.W, net.E, net.sig, net.mu, grad.W, grad.E, grad.sig, grad.mu, x, dnum, dden, dx)
    d_inp = np.zeros(M)  # the inputs are data: their gradient is dropped
    _synapses_back(net.Ws, net.Es, net.sigs, net.mus, grad.Ws, grad.Es, grad.sigs, grad.mus, inp, dnum, dden, d_inp)


@njit(cache=True, inline="always")
def _synapses_back(
    W: np.ndarray,
    E: np.ndarray,
    sig: np.ndarray,
    mu: np.ndarray,
    gW: np.ndarray,
    gE: np.ndarray,
    gsig: np.ndarray,
    gmu: np.ndarray,
    pre: np.ndarray,
    dnum: np.ndarray,
    dden: np.ndarray,
    dpre_out: np.ndarray,
) -> None:
    """Backward of one set of sigmoid synapses (recurrent or sensory) of :func:`ltc_substep`: from the
    gradients of the fused step's numerator and denominator, add the gradients of ``W``, ``E``, ``sig`` and
    ``mu`` into ``gW`` .. ``gmu`` and those of the presynaptic values ``pre`` into ``dpre_out``."""
    for j in range(pre.shape[0]):
        for i in range(dnum.shape[0]):
            s = logistic(sig[j, i] * (pre[j] - mu[j, i]))
            coef = dnum[i] * E[j, i] + dden[i]
            gW[j, i] += coef * s
            gE[j, i] += dnum[i] * W[j, i] * s
            dpre = coef * W[j, i] * s * (1.0 - s)
            gsig[j, i] += dpre * (pre[j] - mu[j, i])
            gmu[j, i] -= dpre * sig[j, i]
            dpre_out[j] += dpre * sig[j, i]


@njit(cache=True)
def ltc_batch(
    net: Net,
    out: Readout,
    grad: Net,
    gout: Readout,
    inputs: np.ndarray,
    elapsed: np.ndarray,
    lengths: np.ndarray,
    labels: np.ndarray,
    idx: np.ndarray,
    L: int,
    offset: float,
    backward: bool,
    logits: np.ndarray,
) -> float:
    """As :func:`cfc_batch` for the conductance-form LTC unfolded ``L`` fused sub-steps per sample, each of
    ``dt = (elapsed + offset) / L``."""
    N = out.w.shape[0]
    P = inputs.shape[1]
    xs = np.zeros((P * L + 1, N))
    g = np.empty(N)
    dd = np.empty(N)
    d = np.empty(N)
    dprev = np.empty(N)
    total = 0.0
    for q in range(idx.shape[0]):
        s = idx[q]
        n = lengths[s]
        xs[0] = 0.0
        for k in range(n):
            dt = (elapsed[s, k] + offset) / L
            for r in range(L):
                c = k * L + r
                ltc_substep(net, xs[c], inputs[s, k], dt, g, dd, xs[c + 1])
        logit = out.b[0]
        for i in range(N):
            logit += out.w[i] * xs[n * L, i]
        logits[s] = logit
        total += _bce(logit, labels[s])
        if not backward:
            continue
        dlogit = logistic(logit) - labels[s]
        gout.b[0] += dlogit
        for i in range(N):
            gout.w[i] += dlogit * xs[n * L, i]
            d[i] = dlogit * out.w[i]
        for k in range(n - 1, -1, -1):
            dt = (elapsed[s, k] + offset) / L
            for r in range(L - 1, -1, -1):
                c = k * L + r
                ltc_substep_back(net, grad, xs[c], inputs[s, k], dt, d, dprev)
                d[:] = dprev
    return total


@njit(cache=True)
def adam_step(
    theta: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, step: int, lr: float, clip: float
) -> None:
    """One Adam step (beta 0.9, 0.999, eps 1e-8) on the flat parameters, the gradient clipped to norm ``clip``."""
    norm = 0.0
    for p in range(theta.shape[0]):
        norm += grad[p] * grad[p]
    norm = math.sqrt(norm)
    scale = clip / norm if norm > clip else 1.0
    c1 = 1.0 - 0.9**step
    c2 = 1.0 - 0.999**step
    for p in range(theta.shape[0]):
        gp = grad[p] * scale
        m[p] = 0.9 * m[p] + 0.1 * gp
        v[p] = 0.999 * v[p] + 0.001 * gp * gp
        theta[p] -= lr * (m[p] / c1) / (math.sqrt(v[p] / c2) + 1e-8)
