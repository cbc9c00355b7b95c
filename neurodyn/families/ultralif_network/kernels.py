"""Numba kernels: forward pass and exact BPTT backward pass of feed-forward spiking networks, the Adam
step, and the single-neuron trajectories of the bounds experiment.

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

The kernels take their arrays bundled in Numba named tuples: the network (:class:`Net`), the neuron model
(:class:`Neuron`), a minibatch's work arrays (:class:`Buffers`), the optimiser (:class:`Adam`) and a
trajectory's outputs (:class:`Trajectory`). The integer codes of ``Neuron.kind`` and
``Neuron.surrogate`` are :data:`~.params.KIND_CODES` and :data:`~.params.SURROGATE_CODES`.

:func:`batch_forward_backward` has no serial twin: it runs its ``prange`` loops on however many threads
:func:`neurodyn.stepping.kernel_threads` allows (one by default), and its results do not depend on that
number.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from neurodyn.families.ultralif_network.fastmath import fexp, flog1p01, flog1p02, fsigmoid

#: LLVM may fuse a * b + c into one FMA instruction (one rounding instead of two); no other fast-math
#: licence, so results change only at the rounding level, and stay bitwise reproducible on one machine
CONTRACT = {"contract"}
#: parallelise the explicit ``prange`` loops only: with ``parallel=True`` Numba also turns every array
#: fill, allocation and reduction into its own parallel region, and with 2 threads those many tiny regions
#: (hundreds per minibatch) made the kernel 3-4x slower than with one
PRANGE_ONLY = {
    "prange": True,
    "comprehension": False,
    "reduction": False,
    "inplace_binop": False,
    "setitem": False,
    "numpy": False,
    "stencil": False,
    "fusion": False,
}


class Net(NamedTuple):
    """A network's parameters and their layout."""

    params: np.ndarray  #: (n_params,) float64 flat parameter vector
    offs: np.ndarray  #: (L + 1, 4) int64 offsets (W, b, log_eps, tau_param) per hidden layer, then the readout
    sizes: np.ndarray  #: (L + 2,) int64 [n_in, hidden..., n_out]


class Neuron(NamedTuple):
    """The neuron model of every hidden layer."""

    kind: int  #: neuron kind code (``KIND_CODES``)
    surrogate: int  #: surrogate gradient code (``SURROGATE_CODES``) of the hard-threshold kinds
    surrogate_k: float  #: sharpness of the surrogate
    smooth: int  #: 1: the hard-threshold kinds' forward spike is the surrogate's primitive (gradient checks)
    theta: float  #: threshold
    v_reset: float  #: reset value
    eps_lo: float  #: lower clamp of eps = exp(log_eps)
    eps_hi: float  #: upper clamp of eps


class Buffers(NamedTuple):
    """Per-sample work arrays of one minibatch (first axis: the sample); H is the widest hidden layer."""

    VOLD: np.ndarray  #: (B, L, T, H) membrane potential before the step
    CUR: np.ndarray  #: (B, L, T, H) input current
    PRE: np.ndarray  #: (B, L, T, H) pre-spike potential P
    S: np.ndarray  #: (B, L, T, H) spikes
    AUX: np.ndarray  #: (B, L, T, 4, H) softmax weights and LSE value of the LSE kinds
    DS: np.ndarray  #: (B, L, T, H) dLoss/ds of the backward pass
    logits: np.ndarray  #: (B, n_out)
    loss: np.ndarray  #: (B,) loss of each sample
    ce: np.ndarray  #: (B,) cross-entropy of each sample


class Adam(NamedTuple):
    """Adam's moment estimates and settings, and the projection of log_eps after each step."""

    m: np.ndarray  #: first moments
    v: np.ndarray  #: second moments
    mask: np.ndarray  #: int8, 1 for the parameters the optimiser updates
    beta1: float
    beta2: float
    eps: float  #: Adam's denominator offset
    log_eps_idx: np.ndarray  #: positions of the log_eps entries
    log_lo: float  #: log eps_lo
    log_hi: float  #: log eps_hi


class Trajectory(NamedTuple):
    """Outputs of :func:`trajectories`, each ``(steps, n)``."""

    P: np.ndarray  #: pre-spike potentials
    S: np.ndarray  #: spikes
    slope: np.ndarray  #: dV(t+1)/dP(t) of the reset map


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


@njit(cache=True, error_model="numpy")
def surrogate(x: float, code: int, k: float) -> tuple[float, float]:
    """Smooth stand-in for H(x): ``(primitive, derivative)``.

    ``code 0``: sigmoid(k x), derivative k s (1 - s) (the paper's baseline, k = 10).
    ``code 1``: ATan, 1/2 + arctan(pi k x / 2) / pi, derivative (k/2) / (1 + (pi k x / 2)^2)
    (Fang et al. 2021; snnTorch's ``atan`` with alpha = k).
    """
    if code == 0:
        s = fsigmoid(k * x)
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


@njit(cache=True, error_model="numpy")
def _layer_input(X, S, l, n_prev):
    """Input of hidden layer ``l`` for the whole batch as one C-contiguous ``(B*T, n_prev)`` matrix.

    Row ``b*T + t`` holds sample b at step t: layer 0 reads the encoded input (a free reshape), deeper
    layers a copy of the previous layer's spikes (the workspace pads layers to the widest one).
    """
    B, T = X.shape[0], X.shape[1]
    if l == 0:
        return X.reshape((B * T, X.shape[2]))
    out = np.empty((B * T, n_prev))
    for b in range(B):
        for t in range(T):
            for j in range(n_prev):
                out[b * T + t, j] = S[b, l - 1, t, j]
    return out


@njit(cache=True, error_model="numpy")
def _weights(params, off, n, n_in):
    """Row-major ``(n, n_in)`` weight matrix starting at ``params[off]`` (a contiguous copy for BLAS)."""
    return np.ascontiguousarray(params[off : off + n * n_in]).reshape((n, n_in))


#: below this fraction of non-zero inputs the synaptic products skip zeros instead of calling BLAS
#: (rate-coded digits: ~15% ones; binary lif spikes are sparse too; soft Ultra spikes are dense)
SPARSE_FRACTION = 0.25


@njit(cache=True, error_model="numpy")
def _sparse_input(inp):
    """True when fewer than :data:`SPARSE_FRACTION` of the entries of ``inp`` are non-zero."""
    nnz = 0
    for v in inp.ravel():
        nnz += v != 0.0  # branch-free count (random zeros would defeat branch prediction)
    return nnz < SPARSE_FRACTION * inp.size


@njit(cache=True, error_model="numpy")
def _active(inp, r, act):
    """Indices of the non-zero entries of row ``r`` of ``inp`` into ``act``; returns their number.

    Branch-free (the index is always written, the count advances only for non-zeros): with ~15% random
    ones a data-dependent branch would be mispredicted often.
    """
    nnz = 0
    for j in range(inp.shape[1]):
        act[nnz] = j
        nnz += inp[r, j] != 0.0
    return nnz


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def _input_current(inp, W):
    """``inp @ W.T``, (R, n_in) x (n, n_in) -> (R, n): BLAS, or a sum over non-zero inputs when sparse.

    The sparse form adds the rows of ``W.T`` of the active inputs (a contiguous, vectorised loop over the
    n outputs), doing ~15% of the multiply-adds of the dense product for rate-coded input.
    """
    if not _sparse_input(inp):
        return np.dot(inp, W.T)
    R, n_in = inp.shape
    n = W.shape[0]
    WT = np.ascontiguousarray(W.T)
    C = np.zeros((R, n))
    act = np.empty(n_in, dtype=np.int64)
    for r in range(R):
        nnz = _active(inp, r, act)
        k = 0
        # four active inputs per pass over the output row: a quarter of the loads and stores of C
        while k + 4 <= nnz:
            j0, j1, j2, j3 = act[k], act[k + 1], act[k + 2], act[k + 3]
            v0, v1, v2, v3 = inp[r, j0], inp[r, j1], inp[r, j2], inp[r, j3]
            for i in range(n):
                C[r, i] += (v0 * WT[j0, i] + v1 * WT[j1, i]) + (v2 * WT[j2, i] + v3 * WT[j3, i])
            k += 4
        while k < nnz:
            j = act[k]
            val = inp[r, j]
            for i in range(n):
                C[r, i] += val * WT[j, i]
            k += 1
    return C


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def _weight_grad(DI, inp):
    """``DI.T @ inp``, (R, n) and (R, n_in) -> (n, n_in), the weight gradient summed over rows.

    Sparse input: accumulate ``val * DI[r]`` into row j of the transposed gradient for the active inputs
    only, rows in order (deterministic).
    """
    if not _sparse_input(inp):
        return np.dot(DI.T, inp)
    R, n_in = inp.shape
    n = DI.shape[1]
    GT = np.zeros((n_in, n))
    act = np.empty(n_in, dtype=np.int64)
    for r in range(R):
        nnz = _active(inp, r, act)
        for k in range(nnz):
            j = act[k]
            val = inp[r, j]
            for i in range(n):
                GT[j, i] += val * DI[r, i]
    return np.ascontiguousarray(GT.T)


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def _forward_layer(
    b: int,
    l: int,
    n: int,
    neuron: Neuron,
    eps: float,
    ltau: float,
    tau0: float,
    C: np.ndarray,
    bias: np.ndarray,
    buf: Buffers,
) -> None:
    """Time loop of hidden layer ``l`` for sample ``b``; the input current ``C + bias`` is precomputed.

    The neuron loop has no calls and no branches between kinds, so LLVM vectorises it (the Ultra kinds
    use :mod:`.fastmath`). Writes the histories VOLD/CUR/PRE/S of ``buf`` and, for the LSE kinds, AUX
    (softmax weights and LSE value).
    """
    kind, sg, sg_k, smooth = neuron.kind, neuron.surrogate, neuron.surrogate_k, neuron.smooth
    theta, v_reset = neuron.theta, neuron.v_reset
    VOLD, CUR, PRE, S, AUX = buf.VOLD, buf.CUR, buf.PRE, buf.S, buf.AUX
    T = VOLD.shape[2]
    inv_eps = 1.0 / eps
    v = np.full(n, v_reset)
    vp = np.empty(n + 2)
    tmp = np.empty((8, n))
    for t in range(T):
        row = b * T + t
        if kind == 2 or kind == 4:
            # LSE of two terms: max + eps log1p(exp(-|a - I| / eps)), softmax weights 1/z and e/z.
            # This loop reads C, bias, v and writes only v and the scratch rows: with the histories
            # written here too, LLVM needs more runtime alias checks than it allows and stays scalar.
            for i in range(n):
                I = C[row, i] + bias[i]
                vo = v[i]
                a = vo + ltau
                d = a - I
                e = fexp(-abs(d) * inv_eps)
                r = 1.0 / (1.0 + e)
                er = e * r
                P = max(a, I) + eps * flog1p01(e)
                s = fsigmoid((P - theta) * inv_eps)
                tmp[0, i] = I
                tmp[1, i] = vo
                tmp[2, i] = P
                tmp[3, i] = s
                tmp[4, i] = r if d >= 0.0 else er
                tmp[5, i] = er if d >= 0.0 else r
                v[i] = P * (1.0 - s) + v_reset * s
            # one destination per copy loop: each is then a plain vectorised copy
            for i in range(n):
                CUR[b, l, t, i] = tmp[0, i]
            for i in range(n):
                VOLD[b, l, t, i] = tmp[1, i]
            for i in range(n):
                PRE[b, l, t, i] = tmp[2, i]
            for i in range(n):
                S[b, l, t, i] = tmp[3, i]
            for i in range(n):
                AUX[b, l, t, 0, i] = tmp[4, i]
            for i in range(n):
                AUX[b, l, t, 1, i] = tmp[5, i]
        elif kind == 3 or kind == 5:
            # ring neighbours from a padded copy (contiguous loads); the term equal to the max
            # contributes exactly 1, so z - 1 is exact and log z = log1p(z - 1) on [0, 2]
            vp[0] = v[n - 1]
            for i in range(n):
                vp[i + 1] = v[i]
            vp[n + 1] = v[0]
            for i in range(n):
                I = C[row, i] + bias[i]
                a = vp[i]
                vo = vp[i + 1]
                c = vp[i + 2]
                m = max(max(a, vo), c)
                ea = fexp((a - m) * inv_eps)
                eb = fexp((vo - m) * inv_eps)
                ec = fexp((c - m) * inv_eps)
                z = ea + eb + ec
                r = 1.0 / z
                val = m + eps * flog1p02(z - 1.0)
                P = val + ltau + I
                tmp[0, i] = I
                tmp[1, i] = vo
                tmp[2, i] = P
                tmp[3, i] = fsigmoid((P - theta) * inv_eps)
                tmp[4, i] = ea * r
                tmp[5, i] = eb * r
                tmp[6, i] = ec * r
                tmp[7, i] = val
            for i in range(n):
                s = tmp[3, i]
                v[i] = tmp[2, i] * (1.0 - s) + v_reset * s
            for i in range(n):
                CUR[b, l, t, i] = tmp[0, i]
            for i in range(n):
                VOLD[b, l, t, i] = tmp[1, i]
            for i in range(n):
                PRE[b, l, t, i] = tmp[2, i]
            for i in range(n):
                S[b, l, t, i] = tmp[3, i]
            for k in range(4):
                for i in range(n):
                    AUX[b, l, t, k, i] = tmp[4 + k, i]
        else:
            for i in range(n):
                I = C[row, i] + bias[i]
                vo = v[i]
                P = tau0 * vo + I if kind == 0 else max(vo + ltau, I)
                if smooth:
                    s, _ = surrogate(P - theta, sg, sg_k)
                else:
                    s = 1.0 if P > theta else 0.0
                CUR[b, l, t, i] = I
                VOLD[b, l, t, i] = vo
                PRE[b, l, t, i] = P
                S[b, l, t, i] = s
                v[i] = P * (1.0 - s) + v_reset * s


@njit(cache=True, error_model="numpy")
def _loss_sample(logits, label, S, sizes, T, lam):
    """Cross-entropy on the logits plus ``lam`` times the sample's mean hidden spike value."""
    m = logits.max()
    z = 0.0
    for k in range(logits.shape[0]):
        z += math.exp(logits[k] - m)
    ce = m + math.log(z) - logits[label]
    if lam == 0.0:
        return ce, ce  # ce + 0 * rate: skip summing the spikes
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


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def _backward_layer(
    b: int,
    l: int,
    n: int,
    neuron: Neuron,
    eps: float,
    ltau: float,
    tau0: float,
    buf: Buffers,
    DI: np.ndarray,
    part: np.ndarray,
) -> None:
    """Reverse time loop of hidden layer ``l`` for sample ``b``.

    Takes ``buf.DS`` (dLoss/ds of this layer, including the paths through later layers) and writes the
    gradient w.r.t. the input current into ``DI[b*T + t]``; the weight, bias and previous-layer gradients
    are then matrix products over the whole batch. ``part[b] = (d eps, d log tau0, d tau0)`` of this
    sample, summed by the caller in sample order (the same sum for any number of threads).
    """
    kind, sg, sg_k = neuron.kind, neuron.surrogate, neuron.surrogate_k
    theta, v_reset = neuron.theta, neuron.v_reset
    VOLD, CUR, PRE, S, AUX, DS = buf.VOLD, buf.CUR, buf.PRE, buf.S, buf.AUX, buf.DS
    T = VOLD.shape[2]
    ultra = kind >= 2
    diff = kind == 3 or kind == 5
    dv = np.zeros(n)  # dLoss / dV(t+1)
    dvold = np.zeros(n)  # dLoss / dV(t)
    d_eps = 0.0
    d_ltau = 0.0  # through log tau0 (max-plus / LSE kinds)
    d_tau0 = 0.0  # through tau0 itself (lif)
    if kind == 2 or kind == 4:
        # Vectorisable form of the general loop below (same formulas): this step's history rows are
        # first copied into one scratch array, and d eps / d log tau0 are accumulated per neuron (summed
        # over neurons at the end), so the neuron loop has no scalar reduction and few arrays to alias.
        wk = np.empty((7, n))
        acc = np.zeros((2, n))
        inv_eps = 1.0 / eps
        inv_eps2 = 1.0 / (eps * eps)
        for t in range(T - 1, -1, -1):
            row = b * T + t
            for i in range(n):
                wk[0, i] = S[b, l, t, i]
            for i in range(n):
                wk[1, i] = PRE[b, l, t, i]
            for i in range(n):
                wk[2, i] = DS[b, l, t, i]
            for i in range(n):
                wk[3, i] = VOLD[b, l, t, i]
            for i in range(n):
                wk[4, i] = CUR[b, l, t, i]
            for i in range(n):
                wk[5, i] = AUX[b, l, t, 0, i]
            for i in range(n):
                wk[6, i] = AUX[b, l, t, 1, i]
            for i in range(n):
                s = wk[0, i]
                P = wk[1, i]
                dvi = dv[i]
                ds_tot = wk[2, i] + dvi * (v_reset - P)
                q = ds_tot * s * (1.0 - s)
                dP = dvi * (1.0 - s) + q * inv_eps
                pa = wk[5, i]
                pb = wk[6, i]
                # P is the LSE value: d P / d eps = (P - pa a - pb I) / eps
                acc[0, i] += dP * (P - pa * (wk[3, i] + ltau) - pb * wk[4, i]) * inv_eps - q * (P - theta) * inv_eps2
                acc[1, i] += dP * pa
                dv[i] = dP * pa
                DI[row, i] = dP * pb
        for i in range(n):
            d_eps += acc[0, i]
            d_ltau += acc[1, i]
        part[b, 0] = d_eps
        part[b, 1] = d_ltau
        part[b, 2] = d_tau0
        return
    if kind == 0:
        # lif: the same scratch / per-neuron accumulator form as the Ultra kinds above
        wk = np.empty((4, n))
        acc = np.zeros(n)
        for t in range(T - 1, -1, -1):
            row = b * T + t
            for i in range(n):
                wk[0, i] = S[b, l, t, i]
            for i in range(n):
                wk[1, i] = PRE[b, l, t, i]
            for i in range(n):
                wk[2, i] = DS[b, l, t, i]
            for i in range(n):
                wk[3, i] = VOLD[b, l, t, i]
            for i in range(n):
                s = wk[0, i]
                P = wk[1, i]
                dvi = dv[i]
                ds_tot = wk[2, i] + dvi * (v_reset - P)
                _, dsdp = surrogate(P - theta, sg, sg_k)
                dP = dvi * (1.0 - s) + ds_tot * dsdp
                acc[i] += dP * wk[3, i]
                dv[i] = dP * tau0
                DI[row, i] = dP
        for i in range(n):
            d_tau0 += acc[i]
        part[b, 0] = d_eps
        part[b, 1] = d_ltau
        part[b, 2] = d_tau0
        return
    for t in range(T - 1, -1, -1):
        row = b * T + t
        for i in range(n):
            dvold[i] = 0.0
        for i in range(n):
            s = S[b, l, t, i]
            P = PRE[b, l, t, i]
            # V(t+1) = P (1 - s) + v_reset s, s = s(P)
            ds_tot = DS[b, l, t, i] + dv[i] * (v_reset - P)
            dP = dv[i] * (1.0 - s)
            if ultra:
                dP += ds_tot * s * (1.0 - s) / eps
                d_eps -= ds_tot * s * (1.0 - s) * (P - theta) / (eps * eps)
            else:
                _, dsdp = surrogate(P - theta, sg, sg_k)
                dP += ds_tot * dsdp
            vo = VOLD[b, l, t, i]
            I = CUR[b, l, t, i]
            if kind == 0:
                dvold[i] += dP * tau0
                d_tau0 += dP * vo
                DI[row, i] = dP
            elif kind == 1:
                if vo + ltau >= I:
                    dvold[i] += dP
                    d_ltau += dP
                    DI[row, i] = 0.0
                else:
                    DI[row, i] = dP
            elif diff:
                im = i - 1 if i > 0 else n - 1
                ip = i + 1 if i < n - 1 else 0
                a = VOLD[b, l, t, im]
                c = VOLD[b, l, t, ip]
                pa = AUX[b, l, t, 0, i]
                pb = AUX[b, l, t, 1, i]
                pc = AUX[b, l, t, 2, i]
                val = AUX[b, l, t, 3, i]
                dvold[im] += dP * pa
                dvold[i] += dP * pb
                dvold[ip] += dP * pc
                d_ltau += dP
                d_eps += dP * (val - pa * a - pb * vo - pc * c) / eps
                DI[row, i] = dP
            else:
                a = vo + ltau
                pa = AUX[b, l, t, 0, i]
                pb = AUX[b, l, t, 1, i]
                dvold[i] += dP * pa
                d_ltau += dP * pa
                d_eps += dP * (P - pa * a - pb * I) / eps  # P is the LSE value
                DI[row, i] = dP * pb
        for i in range(n):
            dv[i] = dvold[i]
    part[b, 0] = d_eps
    part[b, 1] = d_ltau
    part[b, 2] = d_tau0


@njit(cache=True, parallel=PRANGE_ONLY, error_model="numpy")
def batch_forward_backward(
    net: Net,
    neuron: Neuron,
    X: np.ndarray,
    labels: np.ndarray,
    lam: float,
    need_grad: bool,
    buf: Buffers,
    grad: np.ndarray,
) -> None:
    """Forward (and, if ``need_grad``, backward) pass of a minibatch; ``grad`` gets the batch *sum*.

    Layer by layer over the whole batch: the synaptic products of all samples and steps are single BLAS
    matrix products ((B*T, n_in) x (n_in, n) forward; dI^T x input and dI x W backward), the time
    recurrences run one sample per thread (``prange``). Every per-sample quantity is written to its own
    rows and the scalar gradients are summed in sample order, so the result does not depend on the
    number of Numba threads.

    Parameters
    ----------
    net : Net
        Parameters and layout.
    neuron : Neuron
        The hidden layers' neuron model.
    X : (B, T, n_in) float64
        Encoded input, C-contiguous.
    labels : (B,) int64
    lam : float
        Sparsity weight lambda of the loss.
    need_grad : bool
        Run the backward pass.
    buf : Buffers
        Work arrays of at least B samples; logits, loss and ce are the per-sample results.
    grad : (n_params,) float64
        Overwritten with the summed gradient when ``need_grad``.
    """
    params, offs, sizes = net.params, net.offs, net.sizes
    eps_lo, eps_hi = neuron.eps_lo, neuron.eps_hi
    S, DS, logits, loss, ce = buf.S, buf.DS, buf.logits, buf.loss, buf.ce
    B = X.shape[0]
    T = X.shape[1]
    L = sizes.shape[0] - 2
    for l in range(L):
        n_prev = sizes[l]
        n = sizes[l + 1]
        W = _weights(params, offs[l, 0], n, n_prev)
        C = _input_current(_layer_input(X, S, l, n_prev), W)
        bias = params[offs[l, 1] : offs[l, 1] + n].copy()
        eps, _ = layer_eps(params, offs[l, 2], eps_lo, eps_hi)
        tau0 = sigmoid(params[offs[l, 3]])
        ltau = math.log(tau0)
        for b in prange(B):
            _forward_layer(b, l, n, neuron, eps, ltau, tau0, C, bias, buf)
    n_out = sizes[L + 1]
    nL = sizes[L]
    wo = offs[L, 0]
    bo = offs[L, 1]
    Wo = _weights(params, wo, n_out, nL)
    # time-average first: one (n_out x nL) product instead of T of them
    sbar = np.zeros((B, nL))
    for b in range(B):
        for t in range(T):
            for i in range(nL):
                sbar[b, i] += S[b, L - 1, t, i]
    Z = np.dot(sbar, Wo.T)
    for b in range(B):
        for k in range(n_out):
            logits[b, k] = params[bo + k] + Z[b, k] / T
        loss[b], ce[b] = _loss_sample(logits[b], labels[b], S[b], sizes, T, lam)
    if not need_grad:
        return
    grad[:] = 0.0
    # softmax - onehot
    q = np.empty((B, n_out))
    for b in range(B):
        m = logits[b].max()
        z = 0.0
        for k in range(n_out):
            q[b, k] = math.exp(logits[b, k] - m)
            z += q[b, k]
        for k in range(n_out):
            q[b, k] /= z
        q[b, labels[b]] -= 1.0
    gWo = np.dot(q.T, sbar)
    for k in range(n_out):
        for b in range(B):
            grad[bo + k] += q[b, k]
        for i in range(nL):
            grad[wo + k * nL + i] = gWo[k, i] / T
    nh = 0
    for l in range(L):
        nh += sizes[l + 1]
    drate = lam / (T * nh)
    # dLoss/ds_L(t) from the readout is the same at every t
    dsL = np.dot(q, Wo)
    for b in range(B):
        for l in range(L - 1):
            DS[b, l] = drate
        for t in range(T):
            for i in range(nL):
                DS[b, L - 1, t, i] = drate + dsL[b, i] / T
    part = np.empty((B, 3))
    for l in range(L - 1, -1, -1):
        n_prev = sizes[l]
        n = sizes[l + 1]
        w0 = offs[l, 0]
        b0 = offs[l, 1]
        eps, deps_dlog = layer_eps(params, offs[l, 2], eps_lo, eps_hi)
        tau0 = sigmoid(params[offs[l, 3]])
        ltau = math.log(tau0)
        DI = np.empty((B * T, n))
        for b in prange(B):
            _backward_layer(b, l, n, neuron, eps, ltau, tau0, buf, DI, part)
        # I = W s_prev + b over all samples and steps: dW = DI^T x input, dS_prev = DI x W
        gW = _weight_grad(DI, _layer_input(X, S, l, n_prev))
        for i in range(n):
            for j in range(n_prev):
                grad[w0 + i * n_prev + j] = gW[i, j]
        for r in range(B * T):
            for i in range(n):
                grad[b0 + i] += DI[r, i]
        d_eps = 0.0
        d_ltau = 0.0
        d_tau0 = 0.0
        for b in range(B):
            d_eps += part[b, 0]
            d_ltau += part[b, 1]
            d_tau0 += part[b, 2]
        # tau0 = sigmoid(tp): d tau0/d tp = tau0 (1 - tau0); d log tau0 / d tp = 1 - tau0
        grad[offs[l, 3]] = d_tau0 * tau0 * (1.0 - tau0) + d_ltau * (1.0 - tau0)
        grad[offs[l, 2]] = d_eps * deps_dlog
        if l > 0:
            dprev = np.dot(DI, _weights(params, w0, n, n_prev))
            for b in range(B):
                for t in range(T):
                    for j in range(n_prev):
                        DS[b, l - 1, t, j] += dprev[b * T + t, j]


@njit(cache=True)
def adam_step(params: np.ndarray, grad: np.ndarray, adam: Adam, lr: float, step: int) -> None:
    """Adam update number ``step`` (from 1) at rate ``lr`` of the masked parameters, then project log_eps
    into [log eps_lo, log eps_hi].

    The projection keeps a clipped eps from losing its gradient for good (with a plain clamp in the
    forward pass, a log_eps that drifted out of range would never come back).
    """
    m, v, mask, beta1, beta2, eps_adam = adam.m, adam.v, adam.mask, adam.beta1, adam.beta2, adam.eps
    log_lo, log_hi = adam.log_lo, adam.log_hi
    c1 = 1.0 - beta1**step
    c2 = 1.0 - beta2**step
    for k in range(params.shape[0]):
        if mask[k] == 0:
            continue
        gk = grad[k]
        m[k] = beta1 * m[k] + (1.0 - beta1) * gk
        v[k] = beta2 * v[k] + (1.0 - beta2) * gk * gk
        params[k] -= lr * (m[k] / c1) / (math.sqrt(v[k] / c2) + eps_adam)
    for idx in adam.log_eps_idx:
        if params[idx] < log_lo:
            params[idx] = log_lo
        elif params[idx] > log_hi:
            params[idx] = log_hi


@njit(cache=True)
def trajectories(
    I: np.ndarray,
    eps: float,
    tau0: float,
    theta: float,
    v_reset: float,
    diffusion: int,
    reset: int,
    soft: int,
    out: Trajectory,
) -> None:
    """Run ``n`` neurons for ``steps`` steps; write pre-spike potentials, spikes, reset-map slopes into ``out``.

    Parameters
    ----------
    I : (steps, n) input current.
    eps : temperature (used when ``soft``).
    diffusion : 0 single neurons ``P = LSE_eps(V + log tau0, I)`` (max when hard); 1 ring
        ``P_i = LSE_eps(V_{i-1}, V_i, V_{i+1}) + log tau0 + I_i``.
    reset : 1 applies ``V = P (1 - s) + v_reset s``; 0 keeps ``V = P`` (pure max-plus recursion).
    soft : 1 LSE and ``s = sigmoid((P - theta)/eps)``; 0 max and ``s = H(P - theta)``.
    out : Trajectory of (steps, n) arrays; ``slope = dV(t+1)/dP(t)`` of the reset map.
    """
    P, S, slope = out.P, out.S, out.slope
    steps, n = I.shape
    ltau = math.log(tau0)
    v = np.full(n, v_reset)
    for t in range(steps):
        for i in range(n):
            if diffusion:
                a = v[(i - 1) % n]
                b = v[i]
                c = v[(i + 1) % n]
                if soft:
                    p, _, _, _ = lse3(a, b, c, eps)
                else:
                    p = max(a, max(b, c))
                p += ltau + I[t, i]
            else:
                if soft:
                    p, _, _ = lse2(v[i] + ltau, I[t, i], eps)
                else:
                    p = max(v[i] + ltau, I[t, i])
            if soft:
                s = sigmoid((p - theta) / eps)
                slope[t, i] = (1.0 - s) + (v_reset - p) * s * (1.0 - s) / eps
            else:
                s = 1.0 if p > theta else 0.0
                slope[t, i] = 1.0 - s
            P[t, i] = p
            S[t, i] = s
        for i in range(n):
            if reset:
                v[i] = P[t, i] * (1.0 - S[t, i]) + v_reset * S[t, i]
            else:
                v[i] = P[t, i]
