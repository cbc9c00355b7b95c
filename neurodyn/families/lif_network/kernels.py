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


class Recording(NamedTuple):
    """Where the kernel records: the state probes and the spike buffer (drained by the engine between calls).

    Column ``q`` of the probe samples neuron ``probe_idx[q]``'s ``v`` (``probe_var[q] = -1``) or its synaptic
    channel ``probe_var[q]`` (``State.x[probe_var[q], probe_idx[q]]``). The probe sample of step ``m`` goes
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
                probe_buf[row, q] = v[probe_idx[q]] if c < 0 else x[c, probe_idx[q]]
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


# --------------------------------------------------------------------------- connectivity (used by the build)

# NumPy's bounded integer sampler as Numba compiles it (see draw_upto); imported here, beside its one user
from numba.np.random.random_methods import buffered_bounded_lemire_uint32  # noqa: E402


@numba.njit(cache=True, nogil=True)
def random_p_csr(
    rng: np.random.Generator, n_pre: int, n_post: int, p: float, skip_diag: bool, out: np.ndarray
) -> tuple[np.ndarray, int]:
    """CSR of an Erdos-Renyi projection by geometric skipping, its indices written into ``out``.

    Returns ``(indptr, nnz)``; ``nnz = -1`` when ``out`` is too short (the caller then draws again from the
    generator's earlier state into a longer one).
    """
    indptr = np.zeros(n_pre + 1, dtype=np.int64)
    nnz = 0
    if p <= 0.0:
        return indptr, 0
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
            if nnz == out.size:
                return indptr, -1
            out[nnz] = jj
            nnz += 1
        indptr[i + 1] = nnz
    return indptr, nnz


@numba.njit(cache=True, nogil=True)
def draw_upto(rng: np.random.Generator, t: int) -> int:
    """A uniform integer in ``[0, t]``: the number ``rng.integers(0, t + 1)`` gives, from the same draws.

    Numba's scalar ``Generator.integers`` allocates a one-element array per call (about 3x the cost of the
    draw); this calls the bounded sampler it ends in (NumPy's buffered Lemire rejection on 32-bit draws)
    directly, so the stream and the generator's state afterwards are exactly those of ``integers``.
    """
    if t == 0:
        return 0  # integers(0, 1) returns 0 without drawing
    if t < 0xFFFFFFFF:
        return np.int64(buffered_bounded_lemire_uint32(rng.bit_generator, t))
    return rng.integers(0, t + 1)


@numba.njit(cache=True, nogil=True)
def _floyd_sources(
    rng: np.random.Generator, j: int, n_pre: int, k: int, skip_diag: bool, mark: np.ndarray, drawn: np.ndarray
) -> None:
    """The ``k`` distinct sources of target ``j``, drawn into ``drawn`` (Floyd: an exact uniform k-subset)."""
    diag = skip_diag and j < n_pre
    m = n_pre - 1 if diag else n_pre
    # for t = m-k .. m-1 draw r in [0, t]; take t if r is taken already
    for c in range(k):
        t = m - k + c
        r = draw_upto(rng, t)
        if mark[r]:
            r = t
        mark[r] = True
        drawn[c] = r
    for c in range(k):
        r = drawn[c]
        mark[r] = False
        if diag and r >= j:  # candidates skip the diagonal
            drawn[c] = r + 1


@numba.njit(cache=True, nogil=True)
def fixed_in_degree_csr(
    counter: np.random.Generator,
    rng: np.random.Generator,
    n_pre: int,
    n_post: int,
    k: int,
    skip_diag: bool,
    out: np.ndarray,
) -> np.ndarray:
    """CSR (by presynaptic index) where every target has exactly ``k`` distinct sources; indices into ``out``.

    The sources are drawn twice from the same stream: ``counter`` (a copy of ``rng``'s state) counts the
    synapses of every source, then ``rng`` draws the same sources again and writes each target straight
    into its source's row. No per-synapse buffer besides ``out`` (``n_post * k`` entries), targets ascending
    within a row; ``rng`` ends where one pass leaves it.
    """
    indptr = np.zeros(n_pre + 1, dtype=np.int64)
    mark = np.zeros(n_pre, dtype=np.bool_)
    drawn = np.empty(k, dtype=np.int64)
    for j in range(n_post):
        _floyd_sources(counter, j, n_pre, k, skip_diag, mark, drawn)
        for c in range(k):
            indptr[drawn[c] + 1] += 1
    for i in range(n_pre):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    for j in range(n_post):
        _floyd_sources(rng, j, n_pre, k, skip_diag, mark, drawn)
        for c in range(k):
            i = drawn[c]
            out[fill[i]] = j
            fill[i] += 1
    return indptr


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
