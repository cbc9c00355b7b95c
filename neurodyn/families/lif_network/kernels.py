"""Numba kernels of the ``lif_network`` engine: one kernel advances the whole network by a chunk of steps.

Everything the kernel needs is a plain array or scalar (per-neuron parameters, per-channel constants,
projections flattened into concatenated CSR arrays with per-projection offsets), so new parameter values
or a different network never force a recompile: there is one compiled specialisation.

One step ``m`` (time ``t_m = m dt``), in the order of Brian2's default schedule:

1. record probes (``v`` at ``t_m``, before the update, as Brian2's StateMonitor at ``start``);
2. update ``v`` over ``[t_m, t_m + dt]`` unless refractory (``m - last_spike < ref_steps``), then decay the
   synaptic channels exactly;
3. threshold ``v >= v_threshold`` -> spike recorded at ``t_m``;
4. deliver: ring-buffer slots due at ``m``, this step's spikes through every projection (delay 0 lands in
   this step), Poisson input counts;
5. reset ``v = v_reset`` for the neurons that fired.

Subthreshold update
-------------------
*Exact mode* (a group that receives no conductance channel): with ``v_inf = v_rest + drive + noise_mu``
and ``d_m = exp(-dt/tau_m)``

    v <- v_inf + (v - v_inf) d_m + sum_c K_c x_c + sigma sqrt((1 - d_m^2) / 2) N(0, 1)

where ``K_c = (1/tau_m) int_0^dt exp(-(dt-s)/tau_m) exp(-s/tau_c) ds`` is the exact response of ``v`` to an
exponentially decaying current over one step (well conditioned for ``tau_c -> tau_m`` and for
``dt >> tau_m``, see :func:`current_kernel`) and the noise term is the exact Ornstein-Uhlenbeck increment of
``tau_m dv = ... dt + sigma sqrt(tau_m) dW``.

*Conductance mode* (a group that receives a conductance channel): exponential Euler with every synaptic
variable frozen at its start-of-step value (Brian2's ``exponential_euler``):
``A = v_rest + drive + noise_mu + sum_cur x + sum_cond (g/g_L) E``, ``B = 1 + sum_cond g/g_L``,
``v <- A/B + (v - A/B) exp(-B dt / tau_m)`` (+ the same noise increment as above, using the leak time
constant: an approximation when noise and conductances are combined).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from neurodyn.stepping import Status

#: synaptic channel kinds (``Channel.kind``): a current added to ``v``, or a conductance towards a reversal
KIND_CURRENT = 0
KIND_CONDUCTANCE = 1


#: Poisson counts with a mean up to this are drawn by table lookup (faster than Generator.poisson)
POISSON_TABLE_MAX_MEAN = 30.0


def poisson_cdf_table(lam: float) -> np.ndarray:
    """CDF of Poisson(lam) at 0, 1, ... until it exceeds ``1 - 1e-16`` (empty if ``lam`` is too large).

    A uniform ``u`` maps to the count ``#{k : cdf[k] < u}``: exact inverse-transform sampling, except
    that the tail beyond the table (probability < 1e-16) is folded into its last entry.
    """
    if not 0.0 < lam <= POISSON_TABLE_MAX_MEAN:
        return np.zeros(0)
    # pmf by the recurrence p_k = p_{k-1} lam / k (e^{-30} does not underflow); past the mode the terms
    # shrink at least geometrically, so stopping at a term below 1e-17 leaves a tail below ~1e-16
    pmf = math.exp(-lam)
    cdf = [pmf]
    k = 0
    while k < lam or pmf > 1e-17:
        k += 1
        pmf *= lam / k
        cdf.append(cdf[-1] + pmf)
    out = np.array(cdf)
    out[-1] = 1.0
    return out


def current_kernel(dt: float, tau_m: np.ndarray, tau_c: float) -> np.ndarray:
    """Exact one-step response of ``v`` to a unit exponential current, ``K = (1/tau_m) int_0^dt ...``.

    ``K = (dt/tau_m) exp(-dt/tau_m) * expm1(a dt) / (a dt)`` with ``a = 1/tau_m - 1/tau_c``; this equals
    ``tau_c/(tau_c - tau_m) (exp(-dt/tau_c) - exp(-dt/tau_m))`` and tends to ``(dt/tau_m) exp(-dt/tau_m)``
    as ``tau_c -> tau_m`` without the cancellation of the difference form. For ``|a dt| >= 1`` the
    difference form is used instead (no cancellation there, and ``expm1`` would overflow for
    ``dt >> tau_m``).
    """
    tau_m = np.asarray(tau_m, dtype=np.float64)
    a_dt = dt * (1.0 / tau_m - 1.0 / tau_c)
    near = np.abs(a_dt) < 1.0
    # |a dt| < 1: expm1 form (no cancellation as tau_c -> tau_m); otherwise the difference form, which
    # is then well conditioned and does not overflow when dt >> tau_m
    safe = np.where(near & (a_dt != 0.0), a_dt, 1.0)
    ratio = np.where(a_dt == 0.0, 1.0, np.expm1(safe) / safe)
    k_near = dt / tau_m * np.exp(-dt / tau_m) * ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        k_far = tau_c / (tau_c - tau_m) * (np.exp(-dt / tau_c) - np.exp(-dt / tau_m))
    return np.where(near, k_near, k_far)


@numba.njit(cache=True, nogil=True)
def advance(
    start: int,
    stop: int,
    rng: np.random.Generator,
    # neuron state
    v: np.ndarray,
    last_spike: np.ndarray,
    v_reset: np.ndarray,
    # per-group (population) constants
    g_start: np.ndarray,
    g_stop: np.ndarray,
    g_ref: np.ndarray,
    g_vinf: np.ndarray,
    g_decay: np.ndarray,
    g_thr: np.ndarray,
    g_noise: np.ndarray,
    g_dt_tau: np.ndarray,
    g_inv_gl: np.ndarray,
    g_cond: np.ndarray,
    g_nch: np.ndarray,
    g_ch: np.ndarray,
    g_kern: np.ndarray,
    # channels
    x: np.ndarray,
    ch_kind: np.ndarray,
    ch_decay: np.ndarray,
    ch_rev: np.ndarray,
    # projections
    pr_pre_start: np.ndarray,
    pr_n_pre: np.ndarray,
    pr_post_start: np.ndarray,
    pr_n_post: np.ndarray,
    pr_weight: np.ndarray,
    pr_channel: np.ndarray,
    pr_delay: np.ndarray,
    pr_indptr_off: np.ndarray,
    pr_indices_off: np.ndarray,
    pr_ring_off: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    ring: np.ndarray,
    # Poisson inputs
    po_start: np.ndarray,
    po_stop: np.ndarray,
    po_lam: np.ndarray,
    po_weight: np.ndarray,
    po_channel: np.ndarray,
    po_cdf_off: np.ndarray,
    po_cdf: np.ndarray,
    # recording
    probe_idx: np.ndarray,
    probe_every: int,
    probe_row0: np.ndarray,
    probe_buf: np.ndarray,
    spk_step: np.ndarray,
    spk_idx: np.ndarray,
    fired: np.ndarray,
    tmp: np.ndarray,
    tmp2: np.ndarray,
) -> tuple[int, int, int, int]:
    """Advance steps ``start .. stop-1``; see the module docstring for one step.

    Neurons come in groups (populations) sharing their constants, so the update loops run over
    contiguous index ranges with scalar coefficients, which LLVM vectorises. ``g_ch[g, :g_nch[g]]`` lists
    the channels group ``g`` receives (the others stay zero there and are skipped) and ``g_kern[g, k]``
    is the exact current kernel of its ``k``-th channel. The probe sample of step ``m`` goes to row
    ``m // probe_every - probe_row0[0]`` of ``probe_buf`` (a streamed run reuses a small buffer; the
    caller keeps every call within its rows).

    Returns
    -------
    (status, next_step, n_spikes, bad_neuron)
        ``status`` is ``Status.OK``, ``Status.NAN`` (``bad_neuron`` has a non-finite ``v``) or
        ``Status.BUFFER_FULL`` (the spike buffer could be overrun by the next step: call again from
        ``next_step`` after draining ``spk_step/spk_idx``);
        ``n_spikes`` spikes were written to the spike buffers.
    """
    n = v.size
    n_groups = g_start.size
    n_proj = pr_weight.size
    n_po = po_lam.size
    n_probe = probe_idx.size
    cap = spk_step.size
    n_spk = 0
    for m in range(start, stop):
        if n_spk + n > cap:
            return Status.BUFFER_FULL, m, n_spk, -1
        # 1. probes see the state at t_m
        if n_probe > 0 and m % probe_every == 0:
            row = m // probe_every - probe_row0[0]
            for q in range(n_probe):
                probe_buf[row, q] = v[probe_idx[q]]
        n_fired = 0
        for g in range(n_groups):
            s = g_start[g]
            e = g_stop[g]
            ref = g_ref[g]
            nch = g_nch[g]
            # slices with 0-based loops: Numba then knows indices are non-negative (no wraparound check)
            vv = v[s:e]
            ll = last_spike[s:e]
            tt = tmp[s:e]
            ne = e - s
            # 2. membrane update; refractory neurons stay clamped (a select, not a branch: vectorises)
            if g_cond[g]:
                _update_conductance(
                    m,
                    s,
                    e,
                    ref,
                    g_vinf[g],
                    g_dt_tau[g],
                    g_inv_gl[g],
                    g_noise[g],
                    g_ch[g],
                    nch,
                    x,
                    ch_kind,
                    ch_decay,
                    ch_rev,
                    vv,
                    ll,
                    tt,
                    tmp2[s:e],
                    rng,
                )
            else:
                vinf = g_vinf[g]
                dm = g_decay[g]
                if g_noise[g] > 0.0 or nch > 2:
                    # general path: noise and all channels accumulate in tmp, then one select pass
                    ns = g_noise[g]
                    if ns > 0.0:
                        for i in range(ne):
                            tt[i] = ns * rng.standard_normal()
                    else:
                        for i in range(ne):
                            tt[i] = 0.0
                    for k in range(nch):
                        c = g_ch[g, k]
                        kc = g_kern[g, k]
                        d = ch_decay[c]
                        xc = x[c, s:e]
                        for i in range(ne):
                            tt[i] += kc * xc[i]
                            xc[i] *= d
                    for i in range(ne):
                        vn = vinf + (vv[i] - vinf) * dm + tt[i]
                        vv[i] = vn if m - ll[i] >= ref else vv[i]
                elif nch == 0:
                    # fused single passes for the common noiseless cases (CUBA: two channels)
                    for i in range(ne):
                        vn = vinf + (vv[i] - vinf) * dm
                        vv[i] = vn if m - ll[i] >= ref else vv[i]
                elif nch == 1:
                    x0 = x[g_ch[g, 0], s:e]
                    k0 = g_kern[g, 0]
                    d0 = ch_decay[g_ch[g, 0]]
                    for i in range(ne):
                        vn = vinf + (vv[i] - vinf) * dm + k0 * x0[i]
                        x0[i] *= d0
                        vv[i] = vn if m - ll[i] >= ref else vv[i]
                else:
                    x0 = x[g_ch[g, 0], s:e]
                    k0 = g_kern[g, 0]
                    d0 = ch_decay[g_ch[g, 0]]
                    x1 = x[g_ch[g, 1], s:e]
                    k1 = g_kern[g, 1]
                    d1 = ch_decay[g_ch[g, 1]]
                    for i in range(ne):
                        vn = vinf + (vv[i] - vinf) * dm + k0 * x0[i] + k1 * x1[i]
                        x0[i] *= d0
                        x1[i] *= d1
                        vv[i] = vn if m - ll[i] >= ref else vv[i]
            # 3. threshold (refractory neurons sit at v_reset < v_threshold, so they cannot fire)
            thr = g_thr[g]
            for i in range(ne):
                vi = vv[i]
                if not vi < thr:
                    if vi >= thr:
                        fired[n_fired] = s + i
                        n_fired += 1
                    else:
                        return Status.NAN, m, n_spk, s + i
        # 4. delivery: delayed spikes due now, then this step's spikes, then Poisson input
        for p in range(n_proj):
            dl = pr_delay[p]
            if dl > 0:
                n_post = pr_n_post[p]
                slot = pr_ring_off[p] + (m % (dl + 1)) * n_post
                xc = x[pr_channel[p]]
                post0 = pr_post_start[p]
                for j in range(n_post):
                    xc[post0 + j] += ring[slot + j]
                    ring[slot + j] = 0.0
        if n_fired > 0:
            for p in range(n_proj):
                pre0 = pr_pre_start[p]
                pre1 = pre0 + pr_n_pre[p]
                w = pr_weight[p]
                dl = pr_delay[p]
                ip0 = pr_indptr_off[p]
                ix0 = pr_indices_off[p]
                if dl == 0:
                    xc = x[pr_channel[p]]
                    base = pr_post_start[p]
                else:
                    xc = ring
                    base = pr_ring_off[p] + ((m + dl) % (dl + 1)) * pr_n_post[p]
                for f in range(n_fired):
                    i = fired[f]
                    if i < pre0 or i >= pre1:
                        continue
                    r = ip0 + i - pre0
                    for q in range(indptr[r], indptr[r + 1]):
                        xc[base + indices[ix0 + q]] += w
        for k in range(n_po):
            lam = po_lam[k]
            if lam <= 0.0:
                continue
            w = po_weight[k]
            xc = x[po_channel[k]][po_start[k] : po_stop[k]]
            c0 = po_cdf_off[k]
            n_cdf = po_cdf_off[k + 1] - c0
            if n_cdf > 0:
                # inverse transform through the tabulated CDF: one uniform per neuron and step
                for i in range(xc.size):
                    u = rng.random()
                    cnt = 0
                    while cnt < n_cdf and u > po_cdf[c0 + cnt]:
                        cnt += 1
                    if cnt > 0:
                        xc[i] += w * cnt
            else:
                for i in range(xc.size):
                    cnt = rng.poisson(lam)
                    if cnt > 0:
                        xc[i] += w * cnt
        # 5. reset and spike recording
        for f in range(n_fired):
            i = fired[f]
            v[i] = v_reset[i]
            last_spike[i] = m
            spk_step[n_spk] = m
            spk_idx[n_spk] = i
            n_spk += 1
    return Status.OK, stop, n_spk, -1


@numba.njit(cache=True, nogil=True)
def _update_conductance(
    m: int,
    s: int,
    e: int,
    ref: int,
    vinf: float,
    dt_tau: float,
    inv_gl: float,
    noise: float,
    chans: np.ndarray,
    nch: int,
    x: np.ndarray,
    ch_kind: np.ndarray,
    ch_decay: np.ndarray,
    ch_rev: np.ndarray,
    v: np.ndarray,
    last_spike: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Exponential-Euler update of one group (arrays sliced to it) with conductances frozen over the step."""
    for i in range(v.size):
        a[i] = vinf
        b[i] = 1.0
    for k in range(nch):
        c = chans[k]
        xc = x[c, s:e]
        if ch_kind[c] == KIND_CURRENT:
            for i in range(v.size):
                a[i] += xc[i]
        else:
            rev = ch_rev[c]
            for i in range(v.size):
                r = xc[i] * inv_gl
                a[i] += r * rev
                b[i] += r
        d = ch_decay[c]
        for i in range(v.size):
            xc[i] *= d
    for i in range(v.size):
        target = a[i] / b[i]
        a[i] = target + (v[i] - target) * math.exp(-b[i] * dt_tau)
    if noise > 0.0:
        for i in range(v.size):
            a[i] += noise * rng.standard_normal()
    for i in range(v.size):
        v[i] = a[i] if m - last_spike[i] >= ref else v[i]
