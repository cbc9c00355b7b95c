"""Numba kernels: forward pass and exact BPTT backward pass of feed-forward spiking networks.

Network (papers/ultralif.md, "Network"): hidden layers ``l = 1..L`` driven by the current
``I_l(t) = W_l s_{l-1}(t) + b_l`` (``s_0 = x``, the encoded input), output
``y = b_out + (1/T) sum_t W_out s_L(t)``, loss ``CE(y, label) + lambda * mean hidden spike value``.

Neuron kinds (state ``V``, pre-spike potential ``P``, spike ``s``, soft reset
``V <- P (1 - s) + V_reset s``; ``tau0 = sigmoid(tau_param)``; ``eps = clip(exp(log_eps), eps_lo, eps_hi)``):

============  =====================================================  ==============================
kind          pre-spike potential P(t)                               spike s(t)
============  =====================================================  ==============================
lif           tau0 V + I                                             H(P - theta)   (surrogate grad)
maxplus_lif   max(V + log tau0, I)                 (paper Eq. 9)     H(P - theta)   (surrogate grad)
ultralif      LSE_eps(V + log tau0, I)             (paper Def. 4.1)  sigmoid((P - theta) / eps)
ultradlif     LSE_eps(V_{i-1}, V_i, V_{i+1}) + log tau0 + I_i        sigmoid((P - theta) / eps)
ultraplif     as ultralif, tau_param learned
ultradplif    as ultradlif, tau_param learned
============  =====================================================  ==============================

The backward pass is hand-written: per sample, reverse time through the reset, the spike function, the
LSE (its gradient is a softmax) and the leak, layer by layer from the output down. For ``lif`` and
``maxplus_lif`` the derivative of H is replaced by a surrogate (``sigmoid(k x)`` or ATan). With
``smooth=1`` the *forward* spike of those kinds is the surrogate's primitive instead of H, so the same
backward code is then the exact gradient of a smooth network: that is how the tests check it against
finite differences.

Parameters live in one flat float64 vector; ``offs[l] = (W, b, log_eps, tau_param)`` offsets of hidden
layer ``l`` and ``offs[L] = (W_out, b_out, -1, -1)``. Weights are row-major ``(n_out_of_layer, n_in)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from neurodyn.families.ultralif_network.names import KIND_CODES, SURROGATE_CODES  # noqa: F401 (re-export)

LOG2 = math.log(2.0)


@njit(cache=True)
def sigmoid(x: float) -> float:
    """Logistic function, evaluated without overflow for either sign of ``x``."""
    if x >= 0.0:
        z = math.exp(-x)
        return 1.0 / (1.0 + z)
    z = math.exp(x)
    return z / (1.0 + z)


@njit(cache=True)
def lse2(a: float, b: float, eps: float) -> tuple[float, float, float]:
    """``eps log(e^{a/eps} + e^{b/eps})`` and its gradient (the softmax weights of a and b).

    The larger argument is subtracted before exponentiating, so no overflow for any eps > 0.
    """
    # the larger term contributes exp(0) = 1: one exp and one log1p
    if a >= b:
        e = math.exp((b - a) / eps)
        z = 1.0 + e
        return a + eps * math.log1p(e), 1.0 / z, e / z
    e = math.exp((a - b) / eps)
    z = 1.0 + e
    return b + eps * math.log1p(e), e / z, 1.0 / z


@njit(cache=True)
def lse3(a: float, b: float, c: float, eps: float) -> tuple[float, float, float, float]:
    """Three-term stable LSE_eps and its softmax weights."""
    m = a
    if b > m:
        m = b
    if c > m:
        m = c
    ea = math.exp((a - m) / eps)
    eb = math.exp((b - m) / eps)
    ec = math.exp((c - m) / eps)
    s = ea + eb + ec
    return m + eps * math.log(s), ea / s, eb / s, ec / s


@njit(cache=True)
def lse_vec(x: np.ndarray, eps: float) -> float:
    """``eps log sum_i exp(x_i / eps)`` of a vector, computed stably."""
    m = x.max()
    acc = 0.0
    for v in x:
        acc += math.exp((v - m) / eps)
    return m + eps * math.log(acc)


@njit(cache=True)
def surrogate(x: float, code: int, k: float) -> tuple[float, float]:
    """Smooth stand-in for H(x): ``(primitive, derivative)``.

    ``code 0``: sigmoid(k x), derivative k s (1 - s) (the paper's baseline, k = 10).
    ``code 1``: ATan, 1/2 + arctan(pi k x / 2) / pi, derivative (k/2) / (1 + (pi k x / 2)^2)
    (Fang et al. 2021; snnTorch's ``atan`` with alpha = k).
    """
    if code == 0:
        s = sigmoid(k * x)
        return s, k * s * (1.0 - s)
    u = 0.5 * math.pi * k * x
    return 0.5 + math.atan(u) / math.pi, 0.5 * k / (1.0 + u * u)


@njit(cache=True)
def layer_eps(params: np.ndarray, off: int, eps_lo: float, eps_hi: float) -> tuple[float, float]:
    """``(eps, d eps / d log_eps)``: eps = clip(exp(log_eps)); the derivative is 0 where clipped."""
    e = math.exp(params[off])
    if e < eps_lo:
        return eps_lo, 0.0
    if e > eps_hi:
        return eps_hi, 0.0
    return e, e


@njit(cache=True)
def _forward_sample(params, offs, sizes, kind, sg, sg_k, smooth, theta, v_reset, eps_lo, eps_hi,
                    x, VOLD, CUR, PRE, S, AUX, logits):
    """Forward pass of one sample; fills the per-layer histories and the output logits.

    x : (T, n_in). VOLD/CUR/PRE/S : (L, T, H) state before the step, input current, pre-spike
    potential, spike; AUX : (L, T, H, 4) softmax weights and value of the LSE (reused by the backward
    pass instead of recomputing the exponentials).
    potential, spike. logits : (n_out,).
    """
    T = x.shape[0]
    L = sizes.shape[0] - 2
    ultra = kind >= 2
    diff = kind == 3 or kind == 5
    act = np.empty(sizes[:L + 1].max(), dtype=np.int64)
    aval = np.empty(sizes[:L + 1].max())
    for l in range(L):
        n_prev = sizes[l]
        n = sizes[l + 1]
        w0 = offs[l, 0]
        b0 = offs[l, 1]
        eps, _ = layer_eps(params, offs[l, 2], eps_lo, eps_hi)
        tau0 = sigmoid(params[offs[l, 3]])
        ltau = math.log(tau0)
        v = np.full(n, v_reset)
        for t in range(T):
            # event-driven input: only presynaptic neurons with a non-zero spike contribute (binary
            # spikes of lif/maxplus and rate-coded inputs are sparse; soft Ultra spikes rarely are 0)
            nnz = 0
            for j in range(n_prev):
                val = x[t, j] if l == 0 else S[l - 1, t, j]
                if val != 0.0:
                    act[nnz] = j
                    aval[nnz] = val
                    nnz += 1
            for i in range(n):
                acc = params[b0 + i]
                row = w0 + i * n_prev
                for k in range(nnz):
                    acc += params[row + act[k]] * aval[k]
                CUR[l, t, i] = acc
                VOLD[l, t, i] = v[i]
            for i in range(n):
                I = CUR[l, t, i]
                if kind == 0:
                    P = tau0 * v[i] + I
                elif kind == 1:
                    P = max(v[i] + ltau, I)
                elif diff:
                    val, w0_, w1_, w2_ = lse3(v[(i - 1) % n], v[i], v[(i + 1) % n], eps)
                    AUX[l, t, i, 0] = w0_
                    AUX[l, t, i, 1] = w1_
                    AUX[l, t, i, 2] = w2_
                    AUX[l, t, i, 3] = val
                    P = val + ltau + I
                else:
                    P, w0_, w1_ = lse2(v[i] + ltau, I, eps)
                    AUX[l, t, i, 0] = w0_
                    AUX[l, t, i, 1] = w1_
                    AUX[l, t, i, 3] = P
                if ultra:
                    s = sigmoid((P - theta) / eps)
                elif smooth:
                    s, _ = surrogate(P - theta, sg, sg_k)
                else:
                    s = 1.0 if P > theta else 0.0
                PRE[l, t, i] = P
                S[l, t, i] = s
            for i in range(n):
                s = S[l, t, i]
                v[i] = PRE[l, t, i] * (1.0 - s) + v_reset * s
    n_out = sizes[L + 1]
    nL = sizes[L]
    wo = offs[L, 0]
    bo = offs[L, 1]
    # time-average first: one (n_out x nL) product instead of T of them
    sbar = np.zeros(nL)
    for t in range(T):
        for i in range(nL):
            sbar[i] += S[L - 1, t, i]
    for k in range(n_out):
        acc = 0.0
        for i in range(nL):
            acc += params[wo + k * nL + i] * sbar[i]
        logits[k] = params[bo + k] + acc / T


@njit(cache=True)
def _loss_sample(logits, label, S, sizes, T, lam):
    """Cross-entropy on the logits plus ``lam`` times the sample's mean hidden spike value."""
    m = logits.max()
    z = 0.0
    for k in range(logits.shape[0]):
        z += math.exp(logits[k] - m)
    ce = m + math.log(z) - logits[label]
    L = sizes.shape[0] - 2
    tot = 0.0
    nh = 0
    for l in range(L):
        n = sizes[l + 1]
        nh += n
        for t in range(T):
            for i in range(n):
                tot += S[l, t, i]
    return ce + lam * tot / (T * nh), ce


@njit(cache=True)
def _backward_sample(params, offs, sizes, kind, sg, sg_k, theta, v_reset, eps_lo, eps_hi, lam,
                     x, label, VOLD, CUR, PRE, S, AUX, DS, logits, g):
    """Exact gradient of the sample loss w.r.t. every parameter, accumulated into ``g``.

    DS is scratch (L, T, H): gradient of the loss w.r.t. each spike value.
    """
    T = x.shape[0]
    L = sizes.shape[0] - 2
    ultra = kind >= 2
    diff = kind == 3 or kind == 5
    n_out = sizes[L + 1]
    nL = sizes[L]
    wo = offs[L, 0]
    bo = offs[L, 1]
    # softmax - onehot
    m = logits.max()
    q = np.empty(n_out)
    z = 0.0
    for k in range(n_out):
        q[k] = math.exp(logits[k] - m)
        z += q[k]
    for k in range(n_out):
        q[k] /= z
    q[label] -= 1.0
    nh = 0
    for l in range(L):
        nh += sizes[l + 1]
    drate = lam / (T * nh)
    for l in range(L):
        for t in range(T):
            for i in range(sizes[l + 1]):
                DS[l, t, i] = drate
    sbar = np.zeros(nL)
    for t in range(T):
        for i in range(nL):
            sbar[i] += S[L - 1, t, i]
    for k in range(n_out):
        g[bo + k] += q[k]
        for i in range(nL):
            g[wo + k * nL + i] += q[k] * sbar[i] / T
    # dLoss/ds_L(t) from the readout is the same at every t
    for i in range(nL):
        acc = 0.0
        for k in range(n_out):
            acc += params[wo + k * nL + i] * q[k]
        for t in range(T):
            DS[L - 1, t, i] += acc / T

    act = np.empty(sizes[:L + 1].max(), dtype=np.int64)
    aval = np.empty(sizes[:L + 1].max())
    for l in range(L - 1, -1, -1):
        n_prev = sizes[l]
        n = sizes[l + 1]
        w0 = offs[l, 0]
        b0 = offs[l, 1]
        eps, deps_dlog = layer_eps(params, offs[l, 2], eps_lo, eps_hi)
        tau0 = sigmoid(params[offs[l, 3]])
        ltau = math.log(tau0)
        dv = np.zeros(n)      # dLoss / dV(t+1)
        dvold = np.zeros(n)   # dLoss / dV(t)
        dI = np.zeros(n)
        d_eps = 0.0
        d_ltau = 0.0   # through log tau0 (max-plus / LSE kinds)
        d_tau0 = 0.0   # through tau0 itself (lif)
        for t in range(T - 1, -1, -1):
            for i in range(n):
                dvold[i] = 0.0
            for i in range(n):
                s = S[l, t, i]
                P = PRE[l, t, i]
                # V(t+1) = P (1 - s) + v_reset s, s = s(P)
                ds_tot = DS[l, t, i] + dv[i] * (v_reset - P)
                dP = dv[i] * (1.0 - s)
                if ultra:
                    dP += ds_tot * s * (1.0 - s) / eps
                    d_eps -= ds_tot * s * (1.0 - s) * (P - theta) / (eps * eps)
                else:
                    _, dsdp = surrogate(P - theta, sg, sg_k)
                    dP += ds_tot * dsdp
                vo = VOLD[l, t, i]
                I = CUR[l, t, i]
                if kind == 0:
                    dvold[i] += dP * tau0
                    d_tau0 += dP * vo
                    dI[i] = dP
                elif kind == 1:
                    if vo + ltau >= I:
                        dvold[i] += dP
                        d_ltau += dP
                        dI[i] = 0.0
                    else:
                        dI[i] = dP
                elif diff:
                    im = (i - 1) % n
                    ip = (i + 1) % n
                    a = VOLD[l, t, im]
                    c = VOLD[l, t, ip]
                    pa = AUX[l, t, i, 0]
                    pb = AUX[l, t, i, 1]
                    pc = AUX[l, t, i, 2]
                    val = AUX[l, t, i, 3]
                    dvold[im] += dP * pa
                    dvold[i] += dP * pb
                    dvold[ip] += dP * pc
                    d_ltau += dP
                    d_eps += dP * (val - pa * a - pb * vo - pc * c) / eps
                    dI[i] = dP
                else:
                    a = vo + ltau
                    pa = AUX[l, t, i, 0]
                    pb = AUX[l, t, i, 1]
                    val = AUX[l, t, i, 3]
                    dvold[i] += dP * pa
                    d_ltau += dP * pa
                    d_eps += dP * (val - pa * a - pb * I) / eps
                    dI[i] = dP * pb
            for i in range(n):
                dv[i] = dvold[i]
            # I = W s_prev + b: dW only at active inputs; dS_prev for every presynaptic neuron
            nnz = 0
            for j in range(n_prev):
                val = x[t, j] if l == 0 else S[l - 1, t, j]
                if val != 0.0:
                    act[nnz] = j
                    aval[nnz] = val
                    nnz += 1
            for i in range(n):
                di = dI[i]
                if di == 0.0:
                    continue
                g[b0 + i] += di
                row = w0 + i * n_prev
                for k in range(nnz):
                    g[row + act[k]] += di * aval[k]
                if l > 0:
                    for j in range(n_prev):
                        DS[l - 1, t, j] += di * params[row + j]
        # tau0 = sigmoid(tp): d tau0/d tp = tau0 (1 - tau0); d log tau0 / d tp = 1 - tau0
        g[offs[l, 3]] += d_tau0 * tau0 * (1.0 - tau0) + d_ltau * (1.0 - tau0)
        g[offs[l, 2]] += d_eps * deps_dlog


@njit(cache=True, parallel=True)
def batch_forward_backward(params, offs, sizes, kind, sg, sg_k, smooth, theta, v_reset, eps_lo, eps_hi,
                           lam, X, labels, need_grad, VOLD, CUR, PRE, S, AUX, DS, logits, loss, ce, G):
    """Forward (and, if ``need_grad``, backward) pass of a minibatch, one sample per thread.

    Every sample writes only its own rows (``logits[b]``, ``loss[b]``, ``G[b]``...), so the result does
    not depend on the number of threads; the caller sums ``G`` over the batch in a fixed order.

    Parameters
    ----------
    X : (B, T, n_in) float64 encoded input.
    labels : (B,) int64.
    VOLD, CUR, PRE, S, DS : (B, L, T, H) workspaces (H = widest hidden layer); AUX : (B, L, T, H, 4).
    logits : (B, n_out); loss, ce : (B,); G : (B, n_params) per-sample gradients (zeroed here).
    """
    B = X.shape[0]
    T = X.shape[1]
    for b in prange(B):
        _forward_sample(params, offs, sizes, kind, sg, sg_k, smooth, theta, v_reset, eps_lo, eps_hi,
                        X[b], VOLD[b], CUR[b], PRE[b], S[b], AUX[b], logits[b])
        loss[b], ce[b] = _loss_sample(logits[b], labels[b], S[b], sizes, T, lam)
        if need_grad:
            G[b, :] = 0.0
            _backward_sample(params, offs, sizes, kind, sg, sg_k, theta, v_reset, eps_lo, eps_hi, lam,
                             X[b], labels[b], VOLD[b], CUR[b], PRE[b], S[b], AUX[b], DS[b], logits[b],
                             G[b])


@njit(cache=True)
def adam_step(params, grad, m, v, mask, lr, beta1, beta2, eps_adam, step, log_eps_idx, log_lo, log_hi):
    """One Adam update of the masked parameters, then project log_eps into [log eps_lo, log eps_hi].

    The projection keeps a clipped eps from losing its gradient for good (with a plain clamp in the
    forward pass, a log_eps that drifted out of range would never come back).
    """
    c1 = 1.0 - beta1 ** step
    c2 = 1.0 - beta2 ** step
    for k in range(params.shape[0]):
        if mask[k] == 0:
            continue
        gk = grad[k]
        m[k] = beta1 * m[k] + (1.0 - beta1) * gk
        v[k] = beta2 * v[k] + (1.0 - beta2) * gk * gk
        params[k] -= lr * (m[k] / c1) / (math.sqrt(v[k] / c2) + eps_adam)
    for idx in log_eps_idx:
        if params[idx] < log_lo:
            params[idx] = log_lo
        elif params[idx] > log_hi:
            params[idx] = log_hi
