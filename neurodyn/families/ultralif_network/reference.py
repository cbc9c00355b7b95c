"""Plain NumPy forward and backward pass, vectorised over the batch: a peer for the Numba kernels.

Same equations, parameter layout and loss as :mod:`.kernels`, written the way one would in NumPy (one
matrix product per layer and time step, the batch as the leading axis). Used by the tests as an
independent implementation and by ``benchmarks/bench_ultralif.py`` as the speed baseline. Hard-threshold
kinds use the sigmoid surrogate (sharpness ``spec.surrogate_k``).

An extra module of the family, not part of its run (nothing in the run imports it): it lives beside the
kernels it checks so that both change together.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from neurodyn.families.ultralif_network.build import NetSpec


def _unpack(spec: NetSpec, p: np.ndarray, l: int) -> tuple[np.ndarray, np.ndarray]:
    n_in, n = spec.sizes[l], spec.sizes[l + 1]
    w0, b0 = spec.offs[l, 0], spec.offs[l, 1]
    return p[w0 : w0 + n * n_in].reshape(n, n_in), p[b0 : b0 + n]


def _lse(args: list[np.ndarray], eps: float) -> tuple[np.ndarray, list[np.ndarray]]:
    m = np.maximum.reduce(args)
    e = [np.exp((a - m) / eps) for a in args]
    z = sum(e)
    return m + eps * np.log(z), [ei / z for ei in e]


def loss_and_grad_numpy(
    spec: NetSpec, p: np.ndarray, X: np.ndarray, y: np.ndarray, lam: float = 0.0
) -> tuple[float, np.ndarray]:
    """Mean loss and gradient over the batch; ``X`` (B, T, n_in), ``y`` (B,)."""
    if spec.surrogate != "sigmoid" or spec.kind == "maxplus_lif":
        raise NotImplementedError("the NumPy reference covers lif[sigmoid] and the Ultra kinds")
    B, T, _ = X.shape
    L = spec.n_hidden_layers
    ultra = spec.kind.startswith("ultra")
    diff = spec.kind in ("ultradlif", "ultradplif")
    theta, vr, k = spec.theta, spec.v_reset, spec.surrogate_k
    cache = []
    prev = X
    for l in range(L):
        W, b = _unpack(spec, p, l)
        e_raw = np.exp(p[spec.offs[l, 2]])
        eps = float(np.clip(e_raw, spec.eps_lo, spec.eps_hi))
        tau0 = float(expit(p[spec.offs[l, 3]]))
        ltau = np.log(tau0)
        n = W.shape[0]
        V = np.full((B, n), vr)
        hist = {k_: np.empty((B, T, n)) for k_ in ("vold", "cur", "pre", "s")}
        for t in range(T):
            I = prev[:, t] @ W.T + b
            if spec.kind == "lif":
                P = tau0 * V + I
                s = (P > theta).astype(float) if not spec.smooth else expit(k * (P - theta))
            elif diff:
                P, _ = _lse([np.roll(V, 1, axis=1), V, np.roll(V, -1, axis=1)], eps)
                P = P + ltau + I
                s = expit((P - theta) / eps)
            else:
                P, _ = _lse([V + ltau, I], eps)
                s = expit((P - theta) / eps)
            for k_, v_ in (("vold", V), ("cur", I), ("pre", P), ("s", s)):
                hist[k_][:, t] = v_
            V = P * (1 - s) + vr * s
        cache.append((W, eps, e_raw, tau0, ltau, hist))
        prev = hist["s"]
    Wo, bo = _unpack(spec, p, L)
    sbar = prev.mean(axis=1)
    logits = sbar @ Wo.T + bo
    m = logits.max(axis=1, keepdims=True)
    lz = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    ce = lz - logits[np.arange(B), y]
    n_hidden = sum(spec.sizes[1:-1])
    rate = sum(c[5]["s"].sum(axis=(1, 2)) for c in cache) / (T * n_hidden)
    loss = float((ce + lam * rate).mean())

    g = np.zeros_like(p)
    q = np.exp(logits - lz[:, None])
    q[np.arange(B), y] -= 1.0
    q /= B
    g[spec.offs[L, 0] : spec.offs[L, 1]] = (q.T @ sbar).ravel()
    g[spec.offs[L, 1] :] = q.sum(axis=0)
    dS = np.repeat((q @ Wo)[:, None, :] / T, T, axis=1) + lam / (B * T * n_hidden)
    for l in range(L - 1, -1, -1):
        W, eps, e_raw, tau0, ltau, h = cache[l]
        inp = X if l == 0 else cache[l - 1][5]["s"]
        dv = np.zeros((B, W.shape[0]))
        dW = np.zeros_like(W)
        db = np.zeros(W.shape[0])
        d_eps = d_ltau = d_tau0 = 0.0
        d_prev = np.zeros_like(inp) if l > 0 else None
        for t in range(T - 1, -1, -1):
            s, P, vo, I = h["s"][:, t], h["pre"][:, t], h["vold"][:, t], h["cur"][:, t]
            ds = dS[:, t] + dv * (vr - P)
            dP = dv * (1 - s)
            if ultra:
                dP = dP + ds * s * (1 - s) / eps
                d_eps -= float((ds * s * (1 - s) * (P - theta)).sum()) / eps**2
            else:
                sg = expit(k * (P - theta))
                dP = dP + ds * k * sg * (1 - sg)
            if spec.kind == "lif":
                dv = dP * tau0
                d_tau0 += float((dP * vo).sum())
                dI = dP
            elif diff:
                args = [np.roll(vo, 1, axis=1), vo, np.roll(vo, -1, axis=1)]
                val, w = _lse(args, eps)
                dv = np.roll(dP * w[0], -1, axis=1) + dP * w[1] + np.roll(dP * w[2], 1, axis=1)
                d_ltau += float(dP.sum())
                d_eps += float((dP * (val - sum(wi * a for wi, a in zip(w, args)))).sum()) / eps
                dI = dP
            else:
                a = vo + ltau
                val, (pa, pb) = _lse([a, I], eps)
                dv = dP * pa
                d_ltau += float((dP * pa).sum())
                d_eps += float((dP * (val - pa * a - pb * I)).sum()) / eps
                dI = dP * pb
            dW += dI.T @ inp[:, t]
            db += dI.sum(axis=0)
            if d_prev is not None:
                d_prev[:, t] = dI @ W
        g[spec.offs[l, 0] : spec.offs[l, 1]] = dW.ravel()
        g[spec.offs[l, 1] : spec.offs[l, 2]] = db
        g[spec.offs[l, 3]] = d_tau0 * tau0 * (1 - tau0) + d_ltau * (1 - tau0)
        inside = spec.eps_lo <= e_raw <= spec.eps_hi
        g[spec.offs[l, 2]] = d_eps * e_raw if inside else 0.0
        if d_prev is not None:
            dS = d_prev + lam / (B * T * n_hidden)
    return loss, g
