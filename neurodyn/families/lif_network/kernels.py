"""Numba kernels of ``lif_network``: the time loop, the connectivity generators and the ISI running sums.

Every kernel of the family lives here and nothing else does; the arrays they read are built once by
:mod:`.build` (:class:`NeuronConsts`, :class:`Synapses`, :class:`Inputs`) and per run by :mod:`.engine`
(:class:`State`, :class:`Recording`). The time loop's arguments come bundled in these named tuples, whose
fields are plain arrays or integers, so new parameter values or a different network never force a
recompile: there is one compiled specialisation of :func:`advance`.

One step ``m`` (time ``t_m = m dt``), in the order of Brian2's default schedule:

1. record probes (``v`` and the synaptic channels at ``t_m``, before the update, as Brian2's StateMonitor
   at ``start``);
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
``dt >> tau_m``, see :func:`.build.current_kernel`) and the noise term is the exact Ornstein-Uhlenbeck
increment of ``tau_m dv = ... dt + sigma sqrt(tau_m) dW``.

*Conductance mode* (a group that receives a conductance channel): exponential Euler with every synaptic
variable frozen at its start-of-step value (Brian2's ``exponential_euler``):
``A = v_rest + drive + noise_mu + sum_cur x + sum_cond (g/g_L) E``, ``B = 1 + sum_cond g/g_L``,
``v <- A/B + (v - A/B) exp(-B dt / tau_m)`` (+ the same noise increment as above, using the leak time
constant: an approximation when noise and conductances are combined).

*Alpha and biexponential channels* (groups receiving one go through :func:`_update_shaped`): the channel
``x`` and its rise variable ``h`` (``dx/dt = -x/tau + h``, ``dh/dt = -h/tau_rise``) are advanced exactly,
``h <- h exp(-dt/tau_rise)``, ``x <- x exp(-dt/tau) + k h``, and in exact mode ``v`` gets the exact
response to both, ``K_x x + K_h h`` (:func:`.build.shaped_consts`); in conductance mode they are frozen
over the step as every other channel.

*Adaptive groups* (``adaptation:``, :func:`_update_adaptive`): ``u = v - v_rest`` and the adaptation
current ``w`` form the linear system ``dz/dt = A z + e (drive + I_exp + sum_c x_c) / tau_m`` with
``A = [[-1/tau_m, -1/(g_L tau_m)], [a/tau_w, -1/tau_w]]``. Without conductance channels it is propagated
exactly over the step: ``z <- P z + Q (drive + I_exp) + sum_c K_c x_c`` with ``P = exp(A dt)`` and
``Q``, ``K_c`` the exact responses to a constant and to an exponentially decaying input (per group,
:func:`.build.adaptation_consts`). This is exact for the adaptive LIF neuron (``delta_T = 0``); with
``delta_T > 0`` the spike-initiation term ``I_exp = delta_T exp((v - v_T)/delta_T)`` is frozen at its
start-of-step value and acts on ``v`` only within the step (exponential Euler for the nonlinearity;
``w`` sees it through ``v`` from the next step on, so the step in which ``v`` runs away to the spike does
not kick ``w`` by a ``dt``-dependent amount). With conductance channels every
synaptic variable and ``I_exp`` are frozen and the 2x2 system (its leak ``B = 1 + sum g/g_L``) is
propagated exactly per neuron (closed-form 2x2 matrix exponential). While refractory ``v`` stays clamped
and ``w`` relaxes exactly towards ``a (v - v_rest)``. A spike adds ``b`` to ``w`` (with the reset).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from neurodyn.stepping import Status

#: synaptic channel kinds (``Channel.kind``): a current added to ``v``, or a conductance towards a reversal
KIND_CURRENT = 0
KIND_CONDUCTANCE = 1
#: the rise variable ``h`` of an alpha/biexponential channel (``dx/dt = -x/tau + h``, ``dh/dt = -h/tau_rise``)
KIND_RISE = 2


# --------------------------------------------------------------------------- the time loop's arguments


class NeuronConsts(NamedTuple):
    """Constants of the neurons and of their synaptic channels (built once, never written by the kernel).

    Neurons come in groups: maximal runs of consecutive neurons sharing every constant, never straddling a
    population. The ``g_*`` arrays hold one value per group, so the update loops run over contiguous
    index ranges with scalar coefficients, which LLVM vectorises.
    """

    #: reset potential per neuron (V)
    v_reset: np.ndarray
    #: first and one-past-last global neuron index of each group
    g_start: np.ndarray
    g_stop: np.ndarray
    #: refractory period (steps)
    g_ref: np.ndarray
    #: asymptotic potential ``v_rest + drive + noise_mu`` (V)
    g_vinf: np.ndarray
    #: membrane propagator ``exp(-dt / tau_m)``
    g_decay: np.ndarray
    #: threshold (V)
    g_thr: np.ndarray
    #: standard deviation of the exact one-step noise increment (V)
    g_noise: np.ndarray
    #: ``dt / tau_m``
    g_dt_tau: np.ndarray
    #: ``1 / g_leak`` (1/S)
    g_inv_gl: np.ndarray
    #: whether the group receives a conductance channel (exponential Euler) or not (exact update)
    g_cond: np.ndarray
    #: number of channels the group receives; ``g_ch[g, :g_nch[g]]`` lists them (others stay zero there)
    g_nch: np.ndarray
    g_ch: np.ndarray
    #: exact one-step current kernel ``K`` of the group's ``k``-th channel, ``g_kern[g, k]``
    g_kern: np.ndarray
    #: per channel: kind (:data:`KIND_CURRENT` or :data:`KIND_CONDUCTANCE`), decay ``exp(-dt / tau)``,
    #: reversal potential (V; 0 for current channels)
    ch_kind: np.ndarray
    ch_decay: np.ndarray
    ch_rev: np.ndarray
    #: whether the group has adaptation (:func:`_update_adaptive`); the plain LIF path never reads the rest
    g_adapt: np.ndarray = np.zeros(0, dtype=np.bool_)
    #: per group the adaptive update's constants, columns ``AD_*`` (:func:`.build.adaptation_consts`)
    g_ad: np.ndarray = np.zeros((0, 13))
    #: exact one-step response of ``(u, w)`` to a unit exponential current on the group's ``k``-th channel,
    #: ``g_akern[g, k, 0]`` (``u``) and ``g_akern[g, k, 1]`` (``w``); used by groups without conductances
    g_akern: np.ndarray = np.zeros((0, 1, 2))
    #: whether the group receives an alpha/biexponential channel (:func:`_update_shaped`)
    g_shaped: np.ndarray = np.zeros(0, dtype=np.bool_)
    #: ``g_adapt | g_shaped``: the groups the main loop leaves to :func:`_special_groups`
    g_special: np.ndarray = np.zeros(0, dtype=np.bool_)
    #: per channel: the channel a rise variable feeds (-1: none) and the exact one-step coupling
    #: ``int_0^dt exp(-(dt - s)/tau) exp(-s/tau_rise) ds`` (``x <- x exp(-dt/tau) + k h``)
    ch_feed: np.ndarray = np.zeros(0, dtype=np.int64)
    ch_feed_k: np.ndarray = np.zeros(0)


#: columns of :attr:`NeuronConsts.g_ad`: the propagator ``P = exp(A dt)`` (row major), the response ``Q``
#: to a unit constant input, ``delta_T``, ``v_T``, ``exp(-dt/tau_w)``, ``a``, ``b``, ``dt/tau_w``, ``v_rest``
AD_P00, AD_P01, AD_P10, AD_P11, AD_Q0, AD_Q1, AD_DT, AD_VT, AD_EW, AD_A, AD_B, AD_DTW, AD_VREST = range(13)


class Synapses(NamedTuple):
    """The projections' synapses: per-projection constants and every projection's CSR arrays, concatenated.

    Projection ``p``'s rows start at ``indptr[pr_indptr_off[p]]`` (one row per presynaptic neuron) and its
    column indices (local postsynaptic indices) at ``indices[pr_indices_off[p]]``; a delayed projection's
    ring buffer (``delay + 1`` slots of ``n_post`` values) starts at ``State.ring[pr_ring_off[p]]``.
    """

    pr_pre_start: np.ndarray
    pr_n_pre: np.ndarray
    pr_post_start: np.ndarray
    pr_n_post: np.ndarray
    #: V (current channel) or S (conductance channel) added per spike
    pr_weight: np.ndarray
    pr_channel: np.ndarray
    #: transmission delay (steps)
    pr_delay: np.ndarray
    pr_indptr_off: np.ndarray
    pr_indices_off: np.ndarray
    pr_ring_off: np.ndarray
    #: int64 row pointers of every projection, concatenated
    indptr: np.ndarray
    #: int32 local postsynaptic indices of every projection, concatenated (4 bytes per synapse)
    indices: np.ndarray


class Inputs(NamedTuple):
    """Poisson drives: each adds Poisson(``po_lam``) counts times ``po_weight`` per step to a channel of the
    neurons ``po_start .. po_stop-1``; counts with a tabulated CDF (``po_cdf[po_cdf_off[k]:po_cdf_off[k+1]]``,
    empty for large means) are drawn by inverse transform, the others by ``Generator.poisson``."""

    po_start: np.ndarray
    po_stop: np.ndarray
    #: mean count per neuron and step, ``rate n_sources dt``
    po_lam: np.ndarray
    po_weight: np.ndarray
    po_channel: np.ndarray
    po_cdf_off: np.ndarray
    po_cdf: np.ndarray


class State(NamedTuple):
    """What the kernel advances (fresh for every run), and its scratch arrays."""

    #: membrane potential per neuron (V)
    v: np.ndarray
    #: step of each neuron's last spike (a large negative number before the first)
    last_spike: np.ndarray
    #: synaptic channel variables, ``x[channel, neuron]`` (V or S)
    x: np.ndarray
    #: delay ring buffers of every delayed projection, concatenated
    ring: np.ndarray
    #: scratch: the neurons that fired this step, and two per-neuron work arrays
    fired: np.ndarray
    tmp: np.ndarray
    tmp2: np.ndarray
    #: adaptation current per neuron (A; zero in populations without adaptation)
    w: np.ndarray


class Recording(NamedTuple):
    """Where the kernel records: the state probes and the spike buffer (drained by the engine between calls).

    Column ``q`` of the probe samples neuron ``probe_idx[q]``'s ``v`` (``probe_var[q] = -1``), its adaptation
    current ``w`` (``probe_var[q] = -2``) or its synaptic channel ``probe_var[q]``
    (``State.x[probe_var[q], probe_idx[q]]``). The probe sample of step ``m`` goes
    to row ``m // probe_every - probe_row0[0]`` of ``probe_buf`` (a
    streamed run reuses a small buffer and moves ``probe_row0`` on; the engine keeps every call within its
    rows).
    """

    probe_idx: np.ndarray
    probe_var: np.ndarray
    probe_every: int
    probe_row0: np.ndarray
    probe_buf: np.ndarray
    spk_step: np.ndarray
    spk_idx: np.ndarray


# --------------------------------------------------------------------------- the time loop


@numba.njit(cache=True, nogil=True)
def advance(
    start: int,
    stop: int,
    rng: np.random.Generator,
    state: State,
    neurons: NeuronConsts,
    net: Synapses,
    inputs: Inputs,
    rec: Recording,
) -> tuple[int, int, int, int]:
    """Advance steps ``start .. stop-1``; see the module docstring for one step.

    Returns
    -------
    (status, next_step, n_spikes, bad_neuron)
        ``status`` is ``Status.OK``, ``Status.NAN`` (``bad_neuron`` has a non-finite ``v``) or
        ``Status.BUFFER_FULL`` (the spike buffer could be overrun by the next step: call again from
        ``next_step`` after draining ``rec.spk_step/spk_idx``);
        ``n_spikes`` spikes were written to the spike buffers.
    """
    # the named tuples unpacked to locals once: the loops below read plain arrays and scalars
    v = state.v
    last_spike = state.last_spike
    x = state.x
    ring = state.ring
    fired = state.fired
    tmp = state.tmp
    tmp2 = state.tmp2
    w_ad = state.w
    v_reset = neurons.v_reset
    g_start = neurons.g_start
    g_stop = neurons.g_stop
    g_ref = neurons.g_ref
    g_vinf = neurons.g_vinf
    g_decay = neurons.g_decay
    g_thr = neurons.g_thr
    g_noise = neurons.g_noise
    g_dt_tau = neurons.g_dt_tau
    g_inv_gl = neurons.g_inv_gl
    g_cond = neurons.g_cond
    g_nch = neurons.g_nch
    g_ch = neurons.g_ch
    g_kern = neurons.g_kern
    ch_kind = neurons.ch_kind
    ch_decay = neurons.ch_decay
    ch_rev = neurons.ch_rev
    g_special = neurons.g_special
    n_special = 0
    for g in range(g_special.size):
        n_special += 1 if g_special[g] else 0
    pr_pre_start = net.pr_pre_start
    pr_n_pre = net.pr_n_pre
    pr_post_start = net.pr_post_start
    pr_n_post = net.pr_n_post
    pr_weight = net.pr_weight
    pr_channel = net.pr_channel
    pr_delay = net.pr_delay
    pr_indptr_off = net.pr_indptr_off
    pr_indices_off = net.pr_indices_off
    pr_ring_off = net.pr_ring_off
    indptr = net.indptr
    indices = net.indices
    po_start = inputs.po_start
    po_stop = inputs.po_stop
    po_lam = inputs.po_lam
    po_weight = inputs.po_weight
    po_channel = inputs.po_channel
    po_cdf_off = inputs.po_cdf_off
    po_cdf = inputs.po_cdf
    probe_idx = rec.probe_idx
    probe_var = rec.probe_var
    probe_every = rec.probe_every
    probe_row0 = rec.probe_row0
    probe_buf = rec.probe_buf
    spk_step = rec.spk_step
    spk_idx = rec.spk_idx
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
                c = probe_var[q]
                if c >= 0:
                    probe_buf[row, q] = x[c, probe_idx[q]]
                else:
                    probe_buf[row, q] = v[probe_idx[q]] if c == -1 else w_ad[probe_idx[q]]
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
            # adaptive and alpha/biexponential groups are updated by _special_groups, after this loop
            if g_special[g]:
                continue
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
        if n_special > 0:
            n_fired, bad = _special_groups(m, x, neurons, v, w_ad, last_spike, tmp, tmp2, fired, n_fired, rng)
            if bad >= 0:
                return Status.NAN, m, n_spk, bad
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


@numba.njit(cache=True, nogil=True)
def _special_groups(
    m: int,
    x: np.ndarray,
    neurons: NeuronConsts,
    v: np.ndarray,
    w: np.ndarray,
    last_spike: np.ndarray,
    tmp: np.ndarray,
    tmp2: np.ndarray,
    fired: np.ndarray,
    n_fired: int,
    rng: np.random.Generator,
) -> tuple[int, int]:
    """Steps 2 and 3 (update, threshold) of the adaptive and alpha/biexponential groups, after the plain ones.

    Kept out of :func:`advance`'s group loop so that the plain LIF loop compiles as before. A spike of an
    adaptive neuron adds ``b`` to its ``w`` here (part of the reset; ``w`` plays no part in the delivery).
    Returns the new count of fired neurons and the global index of a neuron whose ``v`` or ``w`` became
    non-finite (else -1).
    """
    for g in range(neurons.g_start.size):
        if not neurons.g_special[g]:
            continue
        s = neurons.g_start[g]
        e = neurons.g_stop[g]
        ref = neurons.g_ref[g]
        vv = v[s:e]
        if neurons.g_adapt[g]:
            bad = _update_adaptive(m, s, e, g, ref, x, neurons, vv, w[s:e], last_spike[s:e], tmp[s:e], tmp2[s:e], rng)
            if bad >= 0:
                return n_fired, s + bad
        else:
            _update_shaped(m, s, e, g, ref, x, neurons, vv, w[s:e], last_spike[s:e], tmp[s:e], tmp2[s:e], rng)
        thr = neurons.g_thr[g]
        f0 = n_fired
        for i in range(e - s):
            vi = vv[i]
            if not vi < thr:
                if vi >= thr:
                    fired[n_fired] = s + i
                    n_fired += 1
                else:
                    return n_fired, s + i
        if neurons.g_adapt[g]:
            b = neurons.g_ad[g, AD_B]
            for f in range(f0, n_fired):
                w[fired[f]] += b
    return n_fired, -1


@numba.njit(cache=True, nogil=True)
def _update_adaptive(
    m: int,
    s: int,
    e: int,
    g: int,
    ref: int,
    x: np.ndarray,
    neurons: NeuronConsts,
    v: np.ndarray,
    w: np.ndarray,
    last_spike: np.ndarray,
    acc_u: np.ndarray,
    acc_w: np.ndarray,
    rng: np.random.Generator,
) -> int:
    """Update ``v`` and ``w`` of adaptive group ``g`` (arrays sliced to it, ``s:e``) over one step.

    See the module docstring (*Adaptive groups*). Returns the group-local index of a neuron whose ``w``
    became non-finite, else -1 (a non-finite ``v`` is caught by the threshold test).
    """
    ad = neurons.g_ad[g]
    p00, p01, p10, p11 = ad[AD_P00], ad[AD_P01], ad[AD_P10], ad[AD_P11]
    q0, q1 = ad[AD_Q0], ad[AD_Q1]
    delta_t, v_t, e_w, a, dt_tw, v_rest = ad[AD_DT], ad[AD_VT], ad[AD_EW], ad[AD_A], ad[AD_DTW], ad[AD_VREST]
    vinf = neurons.g_vinf[g]
    noise = neurons.g_noise[g]
    nch = neurons.g_nch[g]
    chans = neurons.g_ch[g]
    ch_kind, ch_rev = neurons.ch_kind, neurons.ch_rev
    ne = v.size
    # noise first (the same draws, in the same order, as the plain LIF path)
    for i in range(ne):
        acc_u[i] = noise * rng.standard_normal() if noise > 0.0 else 0.0
    if not neurons.g_cond[g]:
        for i in range(ne):
            acc_w[i] = 0.0
        for k in range(nch):
            c = chans[k]
            ku = neurons.g_akern[g, k, 0]
            kw = neurons.g_akern[g, k, 1]
            xc = x[c, s:e]
            for i in range(ne):
                acc_u[i] += ku * xc[i]
                acc_w[i] += kw * xc[i]
        _advance_channels(s, e, chans, nch, x, neurons)
        drive = vinf - v_rest
        for i in range(ne):
            vi = v[i]
            wi = w[i]
            u = vi - v_rest
            i_exp = delta_t * math.exp((vi - v_t) / delta_t) if delta_t > 0.0 else 0.0
            if m - last_spike[i] >= ref:
                # the spike-initiation term moves v only: in the step where v runs away it would otherwise
                # kick w by an amount that depends on dt (w sees it through v from the next step on)
                v[i] = v_rest + p00 * u + p01 * wi + q0 * (drive + i_exp) + acc_u[i]
                w[i] = p10 * u + p11 * wi + q1 * drive + acc_w[i]
            else:
                w[i] = a * u + (wi - a * u) * e_w
    else:
        inv_gl = neurons.g_inv_gl[g]
        dt_tm = neurons.g_dt_tau[g]
        # frozen synaptic input: a (in acc_w) and leak factor B (in bb, reusing acc_u after the noise is kept)
        noise_draw = acc_u.copy() if noise > 0.0 else acc_u[:0]
        for i in range(ne):
            acc_w[i] = vinf
            acc_u[i] = 1.0
        for k in range(nch):
            c = chans[k]
            xc = x[c, s:e]
            if ch_kind[c] == KIND_CURRENT:
                for i in range(ne):
                    acc_w[i] += xc[i]
            elif ch_kind[c] == KIND_CONDUCTANCE:
                rev = ch_rev[c]
                for i in range(ne):
                    r = xc[i] * inv_gl
                    acc_w[i] += r * rev
                    acc_u[i] += r
        _advance_channels(s, e, chans, nch, x, neurons)
        ag = a * inv_gl
        for i in range(ne):
            vi = v[i]
            wi = w[i]
            if m - last_spike[i] < ref:
                u = vi - v_rest
                w[i] = a * u + (wi - a * u) * e_w
                continue
            i_exp = delta_t * math.exp((vi - v_t) / delta_t) if delta_t > 0.0 else 0.0
            bb = acc_u[i]
            v_star = (acc_w[i] + ag * v_rest) / (bb + ag)
            w_star = a * (v_star - v_rest)
            # exp(M dt) of M dt = [[-bb dt_tm, -inv_gl dt_tm], [a dt_tw, -dt_tw]] in closed form
            m00, m01, m10, m11 = -bb * dt_tm, -inv_gl * dt_tm, a * dt_tw, -dt_tw
            half = 0.5 * (m00 + m11)
            det = m00 * m11 - m01 * m10
            disc = half * half - det
            if disc > 0.0:
                q = math.sqrt(disc)
                ch = math.cosh(q)
                sh = math.sinh(q) / q if q > 1e-8 else 1.0
            elif disc < 0.0:
                q = math.sqrt(-disc)
                ch = math.cos(q)
                sh = math.sin(q) / q if q > 1e-8 else 1.0
            else:
                ch = 1.0
                sh = 1.0
            eh = math.exp(half)
            e00 = eh * (ch + sh * (m00 - half))
            e01 = eh * sh * m01
            e10 = eh * sh * m10
            e11 = eh * (ch + sh * (m11 - half))
            zu = vi - v_star
            zw = wi - w_star
            # the frozen spike-initiation term, on v only (as above): its exact response is
            # dv* (1 - e00 - a e01) with dv* = i_exp / (B + a/g_L) the shift of the fixed point
            kick = i_exp / (bb + ag) * (1.0 - e00 - a * e01)
            v[i] = v_star + e00 * zu + e01 * zw + kick + (noise_draw[i] if noise > 0.0 else 0.0)
            w[i] = w_star + e10 * zu + e11 * zw
    for i in range(ne):
        if not math.isfinite(w[i]):
            return i
    return -1


@numba.njit(cache=True, nogil=True)
def _advance_channels(s: int, e: int, chans: np.ndarray, nch: int, x: np.ndarray, neurons: NeuronConsts) -> None:
    """Advance a group's channels ``s:e`` exactly over one step: decay, then feed each rise variable in.

    ``x <- x exp(-dt/tau) + k h`` with ``h`` at its start-of-step value, then ``h <- h exp(-dt/tau_rise)``.
    """
    ch_feed, ch_decay = neurons.ch_feed, neurons.ch_decay
    for k in range(nch):
        c = chans[k]
        if ch_feed.size == 0 or ch_feed[c] < 0:
            d = ch_decay[c]
            xc = x[c, s:e]
            for i in range(xc.size):
                xc[i] *= d
    if ch_feed.size == 0:
        return
    for k in range(nch):
        c = chans[k]
        f = ch_feed[c]
        if f >= 0:
            kf = neurons.ch_feed_k[c]
            d = ch_decay[c]
            hc = x[c, s:e]
            xf = x[f, s:e]
            for i in range(hc.size):
                xf[i] += kf * hc[i]
                hc[i] *= d


@numba.njit(cache=True, nogil=True)
def _update_shaped(
    m: int,
    s: int,
    e: int,
    g: int,
    ref: int,
    x: np.ndarray,
    neurons: NeuronConsts,
    v: np.ndarray,
    w: np.ndarray,
    last_spike: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    rng: np.random.Generator,
) -> int:
    """Update ``v`` of a group receiving alpha/biexponential channels (arrays sliced to it, ``s:e``).

    Exact mode (no conductance channel): ``v <- v_inf + (v - v_inf) d_m + sum_rows K_row x_row + noise``,
    the rise rows' ``K`` being the exact response through their channel. Conductance mode: exponential
    Euler with every channel frozen (rise rows do not enter ``v`` directly). ``w`` is unused (the argument
    list is :func:`_update_adaptive`'s); returns -1.
    """
    vinf = neurons.g_vinf[g]
    noise = neurons.g_noise[g]
    nch = neurons.g_nch[g]
    chans = neurons.g_ch[g]
    ch_kind, ch_rev = neurons.ch_kind, neurons.ch_rev
    ne = v.size
    if not neurons.g_cond[g]:
        dm = neurons.g_decay[g]
        for i in range(ne):
            a[i] = noise * rng.standard_normal() if noise > 0.0 else 0.0
        for k in range(nch):
            kc = neurons.g_kern[g, k]
            xc = x[chans[k], s:e]
            for i in range(ne):
                a[i] += kc * xc[i]
        _advance_channels(s, e, chans, nch, x, neurons)
        for i in range(ne):
            vn = vinf + (v[i] - vinf) * dm + a[i]
            v[i] = vn if m - last_spike[i] >= ref else v[i]
        return -1
    inv_gl = neurons.g_inv_gl[g]
    dt_tau = neurons.g_dt_tau[g]
    for i in range(ne):
        a[i] = vinf
        b[i] = 1.0
    for k in range(nch):
        c = chans[k]
        xc = x[c, s:e]
        if ch_kind[c] == KIND_CURRENT:
            for i in range(ne):
                a[i] += xc[i]
        elif ch_kind[c] == KIND_CONDUCTANCE:
            rev = ch_rev[c]
            for i in range(ne):
                r = xc[i] * inv_gl
                a[i] += r * rev
                b[i] += r
    _advance_channels(s, e, chans, nch, x, neurons)
    for i in range(ne):
        target = a[i] / b[i]
        a[i] = target + (v[i] - target) * math.exp(-b[i] * dt_tau)
    if noise > 0.0:
        for i in range(ne):
            a[i] += noise * rng.standard_normal()
    for i in range(ne):
        v[i] = a[i] if m - last_spike[i] >= ref else v[i]
    return -1


# --------------------------------------------------------------------------- connectivity (used by the build)


@numba.njit(cache=True)
def random_p_csr(
    rng: np.random.Generator, n_pre: int, n_post: int, p: float, skip_diag: bool, capacity: int
) -> tuple[np.ndarray, np.ndarray]:
    """CSR of an Erdos-Renyi projection by geometric skipping; grows its buffer if ``capacity`` is short."""
    indptr = np.zeros(n_pre + 1, dtype=np.int64)
    indices = np.empty(max(capacity, 16), dtype=np.int32)
    nnz = 0
    if p <= 0.0:
        return indptr, indices[:0].copy()
    log_q = math.log1p(-p) if p < 1.0 else -np.inf
    for i in range(n_pre):
        # candidates 0..m-1 (the diagonal removed and the rest shifted when autapses are excluded)
        m = n_post - 1 if (skip_diag and i < n_post) else n_post
        j = -1
        while True:
            if p >= 1.0:
                j += 1
            else:
                u = 1.0 - rng.random()  # in (0, 1]
                j += 1 + int(math.floor(math.log(u) / log_q))
            if j >= m:
                break
            jj = j + 1 if (skip_diag and i < n_post and j >= i) else j
            if nnz == indices.size:
                grown = np.empty(indices.size * 2, dtype=np.int32)
                grown[:nnz] = indices[:nnz]
                indices = grown
            indices[nnz] = jj
            nnz += 1
        indptr[i + 1] = nnz
    if nnz >= 0.9 * indices.size:
        return indptr, indices[:nnz]  # the slack is a few sigma: no copy (it would double the peak)
    return indptr, indices[:nnz].copy()


@numba.njit(cache=True)
def fixed_in_degree_csr(
    rng: np.random.Generator, n_pre: int, n_post: int, k: int, skip_diag: bool
) -> tuple[np.ndarray, np.ndarray]:
    """CSR (by presynaptic index) where every target has exactly ``k`` distinct sources (Floyd sampling)."""
    sources = np.empty(n_post * k, dtype=np.int32)
    mark = np.zeros(n_pre, dtype=np.bool_)
    for j in range(n_post):
        diag = skip_diag and j < n_pre
        m = n_pre - 1 if diag else n_pre
        base = j * k
        # Floyd: for t = m-k .. m-1 draw r in [0, t]; take t if r is taken already -> uniform k-subset
        for c in range(k):
            t = m - k + c
            r = rng.integers(0, t + 1)
            if mark[r]:
                r = t
            mark[r] = True
            sources[base + c] = r
        for c in range(k):
            r = sources[base + c]
            mark[r] = False
            if diag and r >= j:
                sources[base + c] = r + 1
    # counting-sort transpose: CSR by presynaptic index, targets ascending within a row
    indptr = np.zeros(n_pre + 1, dtype=np.int64)
    for s in range(sources.size):
        indptr[sources[s] + 1] += 1
    for i in range(n_pre):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    indices = np.empty(sources.size, dtype=np.int32)
    for j in range(n_post):
        for c in range(k):
            i = sources[j * k + c]
            indices[fill[i]] = j
            fill[i] += 1
    return indptr, indices


@numba.njit(cache=True)
def edges_to_csr(pre: np.ndarray, post: np.ndarray, n_pre: int) -> tuple[np.ndarray, np.ndarray]:
    """Counting sort of an edge list into CSR by presynaptic index (stable in the given edge order)."""
    indptr = np.zeros(n_pre + 1, dtype=np.int64)
    for s in range(pre.size):
        indptr[pre[s] + 1] += 1
    for i in range(n_pre):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    indices = np.empty(pre.size, dtype=np.int32)
    for s in range(pre.size):
        indices[fill[pre[s]]] = post[s]
        fill[pre[s]] += 1
    return indptr, indices


# --------------------------------------------------------------------------- spike statistics (used by the dataset)


@numba.njit(cache=True, nogil=True)
def accumulate_isi(
    spike_time: np.ndarray,
    spike_index: np.ndarray,
    t_min: float,
    last: np.ndarray,
    n_isi: np.ndarray,
    s1: np.ndarray,
    s2: np.ndarray,
) -> None:
    """Add the ISIs of time-ordered spikes at ``t >= t_min`` to per-neuron running sums.

    ``last`` holds each neuron's previous spike time in the window (NaN: none yet). The sums grow one ISI
    at a time in time order, exactly as :func:`.dataset.isi_cv`'s ``bincount`` adds them, so the result does not
    depend on how the spikes were split into chunks.
    """
    for k in range(spike_time.size):
        t = spike_time[k]
        if t >= t_min:
            i = spike_index[k]
            prev = last[i]
            if prev == prev:
                isi = t - prev
                s1[i] += isi
                s2[i] += isi * isi
                n_isi[i] += 1
            last[i] = t
