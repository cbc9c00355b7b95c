"""Numba kernels of ``lif_network``: the time loop, the connectivity generators and the ISI running sums.

Every kernel of the family lives here and nothing else does; the arrays they read are built once by
:mod:`.build` (:class:`NeuronConsts`, :class:`Synapses`, :class:`Inputs`) and per run by :mod:`.engine`
(:class:`State`, :class:`Recording`, :class:`Parts`). The time loop's arguments come bundled in these
named tuples, whose fields are plain arrays or integers, so new parameter values or a different network
never force a recompile: there is one compiled specialisation of :func:`advance`.

The neurons are split into contiguous parts (:class:`Parts`), one per thread. A step is two functions
over a part: :func:`_update_part` (per group: :func:`_update_current` or :func:`_update_conductance`, then
the threshold) and :func:`_deliver_part` (everything the part's neurons receive, then their reset).
:func:`advance` runs the parts one after another; :func:`advance_team` runs them in threads that meet at
one barrier per step; :func:`advance_threads` opens a parallel region per phase (for TBB). Results are
bitwise the same for any number of parts: each neuron's arithmetic is its own, each target sums its
inputs in the order of the spiking neurons' indices, and each random number is a hash of a counter that
names it (:func:`_counter`), not the next draw of a shared generator.

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
constant: an approximation when noise and conductances are combined). The ``exp`` is glibc's, bit for bit,
in a form LLVM vectorises (:func:`_exp`).


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
import platform
import sys
import types
from collections.abc import Callable
from fractions import Fraction
from typing import Any, NamedTuple

import numba
import numpy as np
from llvmlite import ir as llvm_ir
from numba import prange
from numba.core import cgutils
from numba.extending import intrinsic

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
    #: per projection: its row ``l`` in the plasticity tables ``pl_*`` (-1: static); empty when none is plastic,
    #: and then the kernel never looks at the rest (:func:`_deliver_plastic`, :func:`_potentiate_part`)
    pr_plastic: np.ndarray = np.zeros(0, dtype=np.int64)
    #: per plastic projection: the projection, rule (0 additive, 1 multiplicative), ``A_plus``, ``A_minus``,
    #: ``w_min``, ``w_max``, ``dt/tau_plus``, ``dt/tau_minus``, the factor from weight to channel jump (the
    #: peak normalisation of alpha/biexponential synapses, 1 otherwise), and its offsets into
    #: ``State.syn_w`` (weights, aligned with its ``indices``), the trace arrays and the incoming index
    pl_proj: np.ndarray = np.zeros(0, dtype=np.int64)
    pl_rule: np.ndarray = np.zeros(0, dtype=np.int64)
    pl_a_plus: np.ndarray = np.zeros(0)
    pl_a_minus: np.ndarray = np.zeros(0)
    pl_w_min: np.ndarray = np.zeros(0)
    pl_w_max: np.ndarray = np.zeros(0)
    pl_dt_tau_plus: np.ndarray = np.zeros(0)
    pl_dt_tau_minus: np.ndarray = np.zeros(0)
    pl_scale: np.ndarray = np.zeros(0)
    pl_w_off: np.ndarray = np.zeros(0, dtype=np.int64)
    pl_pre_off: np.ndarray = np.zeros(0, dtype=np.int64)
    pl_post_off: np.ndarray = np.zeros(0, dtype=np.int64)
    pl_in_ptr_off: np.ndarray = np.zeros(0, dtype=np.int64)
    pl_in_off: np.ndarray = np.zeros(0, dtype=np.int64)
    #: per plastic projection: steps from a presynaptic (postsynaptic) spike to its effect on the plasticity,
    #: i.e. its trace's jump and the depression (potentiation) it triggers; 0: at the spike
    pl_d_pre: np.ndarray = np.zeros(0, dtype=np.int64)
    pl_d_post: np.ndarray = np.zeros(0, dtype=np.int64)
    #: incoming index of the plastic projections (CSC): target ``j``'s synapses are entries
    #: ``in_ptr[pl_in_ptr_off[l] + j] .. in_ptr[pl_in_ptr_off[l] + j + 1] - 1`` (from ``pl_in_off[l]``) of
    #: ``in_pos`` (position in the projection's ``indices``) and ``in_src`` (local presynaptic index)
    in_ptr: np.ndarray = np.zeros(0, dtype=np.int64)
    in_pos: np.ndarray = np.zeros(0, dtype=np.int64)
    in_src: np.ndarray = np.zeros(0, dtype=np.int32)


class Inputs(NamedTuple):
    """Poisson drives: each adds Poisson(``po_lam``) counts times ``po_weight`` per step to a channel of the
    neurons ``po_start .. po_stop-1``; counts with a tabulated CDF (``po_cdf[po_cdf_off[k]:po_cdf_off[k+1]]``,
    empty for large means) are drawn by inverse transform, the others by transformed rejection
    (:func:`_poisson_ptrs`)."""

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
    #: scratch: the neurons that fired this step (part ``p`` lists its own from ``Parts.bounds[p]`` on), and
    #: two per-neuron work arrays
    fired: np.ndarray
    tmp: np.ndarray
    tmp2: np.ndarray
    #: key of the dynamics stream (uint64, shape (1,)): every random number is a hash of it and a counter
    key: np.ndarray
    #: adaptation current per neuron (A; zero in populations without adaptation)
    w: np.ndarray
    #: plastic weights, one per synapse of every plastic projection (weight units: V or S)
    syn_w: np.ndarray = np.zeros(0)
    #: presynaptic traces of the plastic projections' sources, one copy per part (``[part, source]``: each part
    #: keeps its own, so no part reads what another writes), each at the step of its last update
    tr_pre: np.ndarray = np.zeros((1, 0))
    last_pre: np.ndarray = np.zeros((1, 0), dtype=np.int64)
    #: postsynaptic traces of the plastic projections' targets (written by the part owning the target)
    tr_post: np.ndarray = np.zeros(0)
    last_post: np.ndarray = np.zeros(0, dtype=np.int64)
    #: the network's spikes of the last ``D`` steps, for plasticity with delays: step ``m``'s in neuron order
    #: in ``hist[m % D, :hist_n[m % D]]`` (``D`` = the longest delay in steps + 1; empty without delays)
    hist: np.ndarray = np.zeros((0, 0), dtype=np.int64)
    hist_n: np.ndarray = np.zeros(0, dtype=np.int64)


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


class Parts(NamedTuple):
    """How a step's work is split into parts, one per thread: part ``p`` owns neurons
    ``bounds[p] .. bounds[p+1]-1``, updates them and writes every synaptic input they receive.

    ``row_split[r, p]`` is where part ``p``'s targets begin in row ``r`` of the concatenated ``indptr``
    (positions as in ``indptr``; ``row_split[r, 0] = indptr[r]``, ``row_split[r, n_parts] = indptr[r + 1]``),
    for projections whose rows list their targets in ascending order (``sorted_rows``); a part scans the
    rows of the other projections whole and keeps its own targets. With one part ``row_split`` is empty.
    """

    bounds: np.ndarray
    row_split: np.ndarray
    sorted_rows: np.ndarray
    #: scratch: spikes and first non-finite neuron (-1: none) of each part in the current step
    n_fired: np.ndarray
    bad: np.ndarray
    #: the thread team's shared words (int64, :data:`CTL_SIZE`): barrier count and generation on their own
    #: cache lines, the spike count, the call's result
    ctl: np.ndarray
    #: the same scratch for odd steps in the thread team (:func:`_team_member`), and the fired lists of odd
    #: steps (``State.fired``'s role): a part may update step ``m + 1`` while another still reads step ``m``'s
    n_fired_odd: np.ndarray = np.zeros(0, dtype=np.int64)
    bad_odd: np.ndarray = np.zeros(0, dtype=np.int64)
    fired_odd: np.ndarray = np.zeros(0, dtype=np.int64)


# --------------------------------------------------------------------------- exact exp, vectorisable


@intrinsic
def _fma(typingctx, a, b, c):  # noqa: ANN001, ANN202  (Numba's intrinsic protocol)
    """``a * b + c`` rounded once (LLVM's ``llvm.fma.f64``: one instruction on FMA hardware)."""
    sig = numba.types.float64(numba.types.float64, numba.types.float64, numba.types.float64)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        f64 = context.get_value_type(numba.types.float64)
        fn = builder.module.declare_intrinsic("llvm.fma", [f64], llvm_ir.FunctionType(f64, [f64, f64, f64]))
        return builder.call(fn, args)

    return sig, codegen


# glibc's exp (2.28+, from ARM's optimized-routines; e_exp.c and e_exp_data.c): exp(x) = 2^(k/N) exp(r)
# with N = 128, x = k ln2/N + r, a table of 2^(j/N) and a degree-5 polynomial of r
_EXP_INV_LN2_N = float.fromhex("0x1.71547652b82fep+7")
_EXP_NEG_LN2_HI_N = float.fromhex("-0x1.62e42fefa0000p-8")
_EXP_NEG_LN2_LO_N = float.fromhex("-0x1.cf79abc9e3b3ap-47")
_EXP_SHIFT = float.fromhex("0x1.8p52")
_EXP_C2 = float.fromhex("0x1.ffffffffffdbdp-2")
_EXP_C3 = float.fromhex("0x1.555555555543cp-3")
_EXP_C4 = float.fromhex("0x1.55555cf172b91p-5")
_EXP_C5 = float.fromhex("0x1.1111167a4d017p-7")
_U7F = np.uint64(127)
_U45 = np.uint64(45)
_U1 = np.uint64(1)


def exp_table() -> np.ndarray:
    """glibc's exp table: for ``j < 128``, ``tab[2j+1] = bits(H_j) - (j << 45)`` with ``H_j = 2^(j/128)``
    rounded to double and ``tab[2j] = bits((2^(j/128) - H_j) / H_j)`` (the relative tail), both correctly
    rounded from a 240-bit fixed-point value (square roots of 2 by integer arithmetic)."""
    bits = 240
    one = 1 << bits
    roots = []  # 2^(1/2^s) for s = 1..7, to 240 bits (truncated: errors ~ 2^-235, far below half an ulp)
    r = 2 << bits
    for _ in range(7):
        r = math.isqrt(r << bits)
        roots.append(r)
    tab = np.empty(256, dtype=np.uint64)
    for j in range(128):
        val = one
        for s in range(7):
            if j >> (6 - s) & 1:
                val = (val * roots[s]) >> bits
        hi = float(Fraction(val, one))
        tail = float(Fraction(val - int(Fraction(hi) * one), one) / Fraction(hi))
        tab[2 * j] = np.float64(tail).view(np.uint64)
        tab[2 * j + 1] = np.float64(hi).view(np.uint64) - np.uint64(j << 45)
    return tab


#: the table of :func:`_exp`, shared by every compiled kernel as a constant
EXP_TABLE = exp_table()


@numba.njit(inline="always")
def _exp(x: float) -> float:
    """``exp(x)`` bit for bit as glibc's (FMA variant) for ``2^-54 <= |x| < 512``, in a form LLVM vectorises.

    Outside that range (and for NaN) the result is not glibc's: callers check :func:`_exp_ok` and call
    ``math.exp`` there.
    """
    kd = _fma(x, _EXP_INV_LN2_N, _EXP_SHIFT)
    ki = np.float64(kd).view(np.uint64)
    kd -= _EXP_SHIFT
    r = _fma(kd, _EXP_NEG_LN2_LO_N, _fma(kd, _EXP_NEG_LN2_HI_N, x))
    idx = (ki & _U7F) << _U1
    tail = np.uint64(EXP_TABLE[idx]).view(np.float64)
    scale = np.uint64(EXP_TABLE[idx + _U1] + (ki << _U45)).view(np.float64)
    r2 = r * r
    tmp = _fma(r2 * r2, _fma(r, _EXP_C5, _EXP_C4), _fma(r2, _fma(r, _EXP_C3, _EXP_C2), tail + r))
    return _fma(scale, tmp, scale)


@numba.njit(inline="always")
def _exp_ok(x: float) -> bool:
    """Whether :func:`_exp` is glibc's ``exp`` at ``x``: ``2^-54 <= |x| < 512`` (false for NaN)."""
    a = abs(x)
    return a >= 5.551115123125783e-17 and a < 512.0


# --------------------------------------------------------------------------- counter-based random numbers

# Every random number of a run is a hash of the run's key and a counter naming what it is for: the step,
# the stream (0: noise; 1 + k: Poisson drive k), the neuron and the draw within that (j < 64). A number
# therefore never depends on which thread draws it, nor on the order of the draws. The hash is SplitMix64
# (Steele, Lea & Flood 2014) at position ``counter``, which passes BigCrush as a sequential generator.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U6 = np.uint64(6)
_U8 = np.uint64(8)
_U11 = np.uint64(11)
_U27 = np.uint64(27)
_U30 = np.uint64(30)
_U31 = np.uint64(31)
_UFF = np.uint64(0xFF)
_M52 = np.uint64(0x000FFFFFFFFFFFFF)
_TWO_M53 = 1.0 / 9007199254740992.0


@numba.njit(inline="always")
def _bits(key: np.uint64, ctr: np.uint64) -> np.uint64:
    """64 random bits: SplitMix64's output at position ``ctr`` of the stream seeded with ``key``."""
    z = key + ctr * _GOLDEN
    z = (z ^ (z >> _U30)) * _MIX1
    z = (z ^ (z >> _U27)) * _MIX2
    return z ^ (z >> _U31)


@numba.njit(inline="always")
def _uniform(key: np.uint64, ctr: np.uint64) -> float:
    """A uniform double in [0, 1) (53 random bits)."""
    return np.float64(_bits(key, ctr) >> _U11) * _TWO_M53


@numba.njit(inline="always")
def _counter(m: int, stream: int, n_streams: int, n: int, i: int) -> np.uint64:
    """First counter of neuron ``i``'s draws for ``stream`` in step ``m`` (64 draws each)."""
    return np.uint64((m * n_streams + stream) * n + i) << _U6


def ziggurat_tables(n: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marsaglia & Tsang's (2000) ziggurat for the normal distribution with 256 layers and 52-bit
    mantissas, as NumPy builds it (``ki``, ``wi``, ``fi``; ``r = 3.6541528853610088``)."""
    r, v = 3.6541528853610088, 0.00492867323399
    m1 = 2.0**52
    ki = np.zeros(n, dtype=np.uint64)
    wi = np.zeros(n)
    fi = np.zeros(n)
    dn = tn = r
    q = v / math.exp(-0.5 * dn * dn)
    ki[0] = np.uint64((dn / q) * m1)
    wi[0], wi[n - 1] = q / m1, dn / m1
    fi[0], fi[n - 1] = 1.0, math.exp(-0.5 * dn * dn)
    for i in range(n - 2, 0, -1):
        dn = math.sqrt(-2.0 * math.log(v / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = np.uint64((dn / tn) * m1)
        tn = dn
        fi[i] = math.exp(-0.5 * dn * dn)
        wi[i] = dn / m1
    return ki, wi, fi


ZIG_K, ZIG_W, ZIG_F = ziggurat_tables()
_ZIG_R = 3.6541528853610088
_ZIG_INV_R = 1.0 / _ZIG_R


@numba.njit(inline="always")
def _normal(key: np.uint64, ctr: np.uint64) -> float:
    """A standard normal variate by the ziggurat, from draws ``ctr, ctr + 1, ...`` (one in 99 % of cases)."""
    j = np.uint64(0)
    while True:
        r = _bits(key, ctr + j)
        j += _U1
        idx = r & _UFF
        r >>= _U8
        rabs = (r >> _U1) & _M52
        x = np.float64(rabs) * ZIG_W[idx]
        if r & _U1:
            x = -x
        if rabs < ZIG_K[idx]:
            return x
        if idx == 0:
            while True:  # the tail beyond r (Marsaglia 1964)
                xx = -_ZIG_INV_R * math.log1p(-_uniform(key, ctr + j))
                yy = -math.log1p(-_uniform(key, ctr + j + _U1))
                j += np.uint64(2)
                if yy + yy > xx * xx:
                    return -(_ZIG_R + xx) if (rabs >> _U8) & _U1 else _ZIG_R + xx
        elif (ZIG_F[idx - 1] - ZIG_F[idx]) * _uniform(key, ctr + j) + ZIG_F[idx] < math.exp(-0.5 * x * x):
            return x
        j += _U1


@numba.njit(inline="always")
def _poisson_ptrs(key: np.uint64, ctr: np.uint64, lam: float) -> int:
    """A Poisson(``lam``) count for ``lam >= 10`` by Hörmann's (1993) transformed rejection (PTRS), as NumPy
    draws large means, from uniforms ``ctr, ctr + 1, ...``."""
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    j = np.uint64(0)
    while True:
        u = _uniform(key, ctr + j) - 0.5
        w = _uniform(key, ctr + j + _U1)
        j += np.uint64(2)
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and w <= vr:
            return int(k)
        if k < 0 or (us < 0.013 and w > us):
            continue
        if math.log(w) + math.log(invalpha) - math.log(a / (us * us) + b) <= -lam + k * loglam - math.lgamma(k + 1):
            return int(k)


# --------------------------------------------------------------------------- the time loop


def _advance(
    start: int,
    stop: int,
    state: State,
    neurons: NeuronConsts,
    net: Synapses,
    inputs: Inputs,
    rec: Recording,
    parts: Parts,
) -> tuple[int, int, int, int]:
    """Advance steps ``start .. stop-1``; see the module docstring for one step.

    Each step runs in two phases over the parts (``prange``: the parts in threads in the compiled twin
    :func:`advance_threads`, one after another in :func:`advance`): update and threshold, then delivery and
    reset; between them and after them, one thread checks for non-finite potentials and records the
    spikes. Every neuron's arithmetic and every target's sum of inputs (in the order of the spiking
    neurons' indices) are the same whatever the parts, so results do not depend on the thread count.

    Returns
    -------
    (status, next_step, n_spikes, bad_neuron)
        ``status`` is ``Status.OK``, ``Status.NAN`` (``bad_neuron`` has a non-finite ``v``) or
        ``Status.BUFFER_FULL`` (the spike buffer could be overrun by the next step: call again from
        ``next_step`` after draining ``rec.spk_step/spk_idx``);
        ``n_spikes`` spikes were written to the spike buffers.
    """
    v = state.v
    x = state.x
    fired = state.fired
    probe_idx = rec.probe_idx
    probe_var = rec.probe_var
    probe_every = rec.probe_every
    probe_buf = rec.probe_buf
    spk_step = rec.spk_step
    spk_idx = rec.spk_idx
    bounds = parts.bounds
    n_fired = parts.n_fired
    bad = parts.bad
    n_parts = bounds.size - 1
    n = v.size
    n_probe = probe_idx.size
    cap = spk_step.size
    n_spk = 0
    for m in range(start, stop):
        if n_spk + n > cap:
            return Status.BUFFER_FULL, m, n_spk, -1
        # 1. probes see the state at t_m
        if n_probe > 0 and m % probe_every == 0:
            row = m // probe_every - rec.probe_row0[0]
            for q in range(n_probe):
                c = probe_var[q]
                i = probe_idx[q]
                probe_buf[row, q] = x[c, i] if c >= 0 else (v[i] if c == -1 else state.w[i])
        # 2.-3. membrane update and threshold, each part its own neurons
        for p in prange(n_parts):
            n_fired[p], bad[p] = _update_part(m, bounds[p], bounds[p + 1], state, neurons, inputs.po_lam.size + 1)
        for p in range(n_parts):
            if bad[p] >= 0:
                return Status.NAN, m, n_spk, bad[p]
        # 4.-5. delivery into each part's own targets, and reset
        for p in prange(n_parts):
            _deliver_part(m, p, state, neurons, net, inputs, parts)
        for p in range(n_parts):
            f0 = bounds[p]
            for f in range(n_fired[p]):
                spk_step[n_spk] = m
                spk_idx[n_spk] = fired[f0 + f]
                n_spk += 1
        _keep_spikes(m, state, parts)
    return Status.OK, stop, n_spk, -1


def _twins(fn: Callable) -> tuple[Callable, Callable]:
    """Compile the time loop twice: parts in threads (``parallel=True``) and one after another.

    Each twin is a copy of ``fn`` under its own name: Numba's on-disk cache files a compiled function by
    module, name and first line and does not key it by the ``parallel`` flag (as in
    :mod:`neurodyn.families.cortical_field.kernels`).
    """

    def renamed(suffix: str) -> types.FunctionType:
        name = fn.__name__.lstrip("_") + suffix
        f = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
        f.__qualname__ = name
        f.__doc__ = fn.__doc__
        return f

    flags = {"cache": True, "nogil": True, "error_model": "numpy"}
    return numba.njit(**flags)(renamed("")), numba.njit(**flags, parallel=True)(renamed("_threads"))


#: the time loop, serial (any number of parts, one after another) and threaded with one parallel region
#: per phase of every step (the fallback of :func:`advance_team` for thread pools that may run two parts
#: on one thread, i.e. TBB)
advance, advance_threads = _twins(_advance)

# --------------------------------------------------------------------------- the thread team

#: layout of ``Parts.ctl``: barrier arrival count and generation (each on its own 64-byte line), the
#: spike count, and the call's result (status, next step, first non-finite neuron)
CTL_COUNT = 0
CTL_GEN = 8
CTL_SLEEPERS = 16
CTL_NSPK = 24
CTL_STATUS = 32
CTL_NEXT = 33
CTL_BAD = 34
#: how long a thread waiting at a barrier spins before it sleeps, in ns (-1: it never sleeps); set per
#: run from ``OMP_WAIT_POLICY`` by :func:`neurodyn.families.lif_network.engine.spin_ns`
CTL_SPIN_NS = 35
CTL_SIZE = 40
#: spins between two looks at the clock while a thread waits at a barrier
_SPINS_PER_LOOK = 64
#: the shortest spin window a barrier adapts down to (ns)
_MIN_SPIN_NS = 2000
#: Linux's ``futex`` system call number on this machine (-1: none; waiting threads then yield their core)
SYS_FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine(), -1) if sys.platform == "linux" else -1
_FUTEX_WAIT_PRIVATE = 128
_FUTEX_WAKE_PRIVATE = 129


def _array_ptr(context, builder, aryty, ary, idx):  # noqa: ANN001, ANN202
    aryobj = context.make_array(aryty)(context, builder, ary)
    return cgutils.get_item_pointer(context, builder, aryty, aryobj, [idx])


@intrinsic
def _atomic_add(typingctx, arr, idx, val):  # noqa: ANN001, ANN202
    """``arr[idx] += val`` as one sequentially consistent atomic operation; returns the old value."""
    sig = numba.types.int64(arr, idx, val)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        ptr = _array_ptr(context, builder, signature.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return sig, codegen


@intrinsic
def _atomic_load(typingctx, arr, idx):  # noqa: ANN001, ANN202
    """``arr[idx]``, read atomically (sequentially consistent)."""
    sig = numba.types.int64(arr, idx)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        return builder.load_atomic(_array_ptr(context, builder, signature.args[0], args[0], args[1]), "seq_cst", 8)

    return sig, codegen


@intrinsic
def _atomic_store(typingctx, arr, idx, val):  # noqa: ANN001, ANN202
    """``arr[idx] = val``, written atomically (sequentially consistent)."""
    sig = numba.types.void(arr, idx, val)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        builder.store_atomic(args[2], _array_ptr(context, builder, signature.args[0], args[0], args[1]), "seq_cst", 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _sched_yield(typingctx):  # noqa: ANN001, ANN202
    """POSIX ``sched_yield()``: let another thread have this core."""
    sig = numba.types.void()

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        fnty = llvm_ir.FunctionType(llvm_ir.IntType(32), [])
        builder.call(cgutils.get_or_insert_function(builder.module, fnty, "sched_yield"), [])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _now_ns(typingctx):  # noqa: ANN001, ANN202
    """POSIX ``clock_gettime(CLOCK_MONOTONIC)`` in nanoseconds (a vDSO call on Linux: tens of ns)."""
    sig = numba.types.int64()

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        i64 = llvm_ir.IntType(64)
        i32 = llvm_ir.IntType(32)
        ts_ty = llvm_ir.LiteralStructType([i64, i64])
        ts = cgutils.alloca_once(builder, ts_ty)
        fnty = llvm_ir.FunctionType(i32, [i32, ts_ty.as_pointer()])
        builder.call(cgutils.get_or_insert_function(builder.module, fnty, "clock_gettime"), [i32(1), ts])
        sec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 0))
        nsec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 1))
        return builder.add(builder.mul(sec, i64(1_000_000_000)), nsec)

    return sig, codegen


@intrinsic
def _futex(typingctx, arr, idx, op, val):  # noqa: ANN001, ANN202
    """Linux ``futex(&arr[idx], op, val)`` on the low 32 bits of an int64 word (little-endian): wait while it
    holds ``val`` (``FUTEX_WAIT_PRIVATE``) or wake up to ``val`` waiters (``FUTEX_WAKE_PRIVATE``)."""
    sig = numba.types.int64(arr, idx, numba.types.int64, numba.types.int64)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        i64 = llvm_ir.IntType(64)
        fn = cgutils.get_or_insert_function(builder.module, llvm_ir.FunctionType(i64, [i64], var_arg=True), "syscall")
        addr = builder.ptrtoint(_array_ptr(context, builder, signature.args[0], args[0], args[1]), i64)
        val = builder.sext(builder.trunc(args[3], llvm_ir.IntType(32)), i64)
        zero = llvm_ir.Constant(i64, 0)
        return builder.call(fn, [llvm_ir.Constant(i64, SYS_FUTEX), addr, args[2], val, zero, zero, zero])

    return sig, codegen


@numba.njit(cache=True, nogil=True)
def _barrier(ctl: np.ndarray, n_parts: int, gen: int, window: int) -> tuple[int, int]:
    """Wait until all ``n_parts`` threads have arrived; ``gen`` is the caller's count of barriers passed.

    The last to arrive resets the count, opens the next generation and wakes the sleepers; the others spin
    for up to ``window`` ns (-1: without limit), then sleep on the generation word (``futex``). Spinning
    keeps a waiting thread ready to go at once, which is what makes steps of tens of microseconds scale (a
    wake-up costs tens of microseconds on a virtual machine); sleeping frees the core, which matters when
    the partner is waiting for one (a machine busy with other jobs), since then the spinning delays the very
    thread it waits for. The window adapts like a congestion window: a wait that ended in sleep divides it
    by four, one that ended while spinning adds 1/32 of the full window (``ctl[CTL_SPIN_NS]``).

    Returns ``gen + 1`` and the caller's window for its next barrier.
    """
    if _atomic_add(ctl, CTL_COUNT, 1) == n_parts - 1:
        _atomic_store(ctl, CTL_COUNT, 0)
        _atomic_add(ctl, CTL_GEN, 1)
        if _atomic_load(ctl, CTL_SLEEPERS) > 0:
            _futex(ctl, CTL_GEN, _FUTEX_WAKE_PRIVATE, 2**31 - 1)
        return gen + 1, window
    full = ctl[CTL_SPIN_NS]
    spins = 0
    deadline = -1
    slept = False
    while _atomic_load(ctl, CTL_GEN) == gen:
        spins += 1
        if window < 0 or spins % _SPINS_PER_LOOK != 0:
            continue
        now = _now_ns()
        if deadline < 0:
            deadline = now + window
        if now < deadline:
            continue
        slept = True
        if SYS_FUTEX < 0:
            _sched_yield()
            continue
        # registered before the last look: a waker that saw no sleeper had opened the generation
        _atomic_add(ctl, CTL_SLEEPERS, 1)
        if _atomic_load(ctl, CTL_GEN) == gen:
            _futex(ctl, CTL_GEN, _FUTEX_WAIT_PRIVATE, gen)
        _atomic_add(ctl, CTL_SLEEPERS, -1)
    if window >= 0:
        window = max(window // 4, min(_MIN_SPIN_NS, full)) if slept else min(window + full // 32, full)
    return gen + 1, window


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _team_member(
    p: int,
    gen: int,
    start: int,
    stop: int,
    state: State,
    neurons: NeuronConsts,
    net: Synapses,
    inputs: Inputs,
    rec: Recording,
    parts: Parts,
) -> None:
    """Part ``p``'s thread for steps ``start .. stop-1`` (see :func:`advance_team`).

    One barrier per step, after the update: a part's delivery of step ``m`` and its update of step ``m + 1``
    touch only its own neurons and synapses, so it goes on without waiting, while the others may still
    read step ``m``'s fired lists; those of odd steps therefore live in ``parts.fired_odd`` (with their
    counts and first non-finite neurons), a view of the state and parts per parity."""
    v = state.v
    x = state.x
    bounds = parts.bounds
    ctl = parts.ctl
    probe_idx = rec.probe_idx
    probe_var = rec.probe_var
    probe_every = rec.probe_every
    probe_buf = rec.probe_buf
    spk_step = rec.spk_step
    spk_idx = rec.spk_idx
    n_parts = bounds.size - 1
    lo = bounds[p]
    hi = bounds[p + 1]
    n = v.size
    n_probe = probe_idx.size
    cap = spk_step.size
    n_streams = inputs.po_lam.size + 1
    odd_state = State(
        state.v,
        state.last_spike,
        state.x,
        state.ring,
        parts.fired_odd,
        state.tmp,
        state.tmp2,
        state.key,
        state.w,
        state.syn_w,
        state.tr_pre,
        state.last_pre,
        state.tr_post,
        state.last_post,
        state.hist,
        state.hist_n,
    )
    odd_parts = Parts(
        bounds,
        parts.row_split,
        parts.sorted_rows,
        parts.n_fired_odd,
        parts.bad_odd,
        ctl,
        parts.n_fired_odd,
        parts.bad_odd,
        parts.fired_odd,
    )
    window = ctl[CTL_SPIN_NS]
    # every thread counts the spikes itself (the same sum of the same counts): all stop at the same step
    n_spk = 0
    m = start
    while True:
        if m >= stop or n_spk + n > cap:
            if p == 0:
                ctl[CTL_STATUS] = Status.OK if m >= stop else Status.BUFFER_FULL
                ctl[CTL_NEXT] = m
                ctl[CTL_NSPK] = n_spk
            return
        st = odd_state if m % 2 else state
        pt = odd_parts if m % 2 else parts
        # 1. probes of this part's neurons: only its own delivery and update write them
        if n_probe > 0 and m % probe_every == 0:
            row = m // probe_every - rec.probe_row0[0]
            for q in range(n_probe):
                i = probe_idx[q]
                if lo <= i < hi:
                    c = probe_var[q]
                    probe_buf[row, q] = x[c, i] if c >= 0 else (v[i] if c == -1 else state.w[i])
        # 2.-3. update and threshold
        pt.n_fired[p], pt.bad[p] = _update_part(m, lo, hi, st, neurons, n_streams)
        gen, window = _barrier(ctl, n_parts, gen, window)
        for pp in range(n_parts):
            if pt.bad[pp] >= 0:
                if p == 0:
                    ctl[CTL_STATUS] = Status.NAN
                    ctl[CTL_NEXT] = m
                    ctl[CTL_BAD] = pt.bad[pp]
                    ctl[CTL_NSPK] = n_spk
                return
        # 4.-5. delivery and reset; thread 0 records the spikes (the lists stay until step m + 2's update)
        _deliver_part(m, p, st, neurons, net, inputs, pt)
        fired = st.fired
        for pp in range(n_parts):
            if p == 0:
                f0 = bounds[pp]
                for f in range(pt.n_fired[pp]):
                    spk_step[n_spk + f] = m
                    spk_idx[n_spk + f] = fired[f0 + f]
            n_spk += pt.n_fired[pp]
        if p == 0:
            _keep_spikes(m, st, pt)
        m += 1


@numba.njit(cache=True, parallel=True)
def _start_pool(out: np.ndarray) -> None:
    for i in prange(out.size):
        out[i] = i


def threading_layer() -> str:
    """Numba's threading layer (``omp``, ``tbb`` or ``workqueue``), starting the thread pool if needed."""
    _start_pool(np.zeros(2))
    return numba.threading_layer()


@numba.njit(cache=True, nogil=True, parallel=True)
def advance_team(
    start: int,
    stop: int,
    state: State,
    neurons: NeuronConsts,
    net: Synapses,
    inputs: Inputs,
    rec: Recording,
    parts: Parts,
) -> tuple[int, int, int, int]:
    """:func:`advance` with one thread per part in a single parallel region for the whole call.

    The threads meet at one barrier per step (after the update) instead of starting and joining the pool
    twice per step, which costs tens of microseconds with passive OpenMP waiting.
    Every part must run on its own thread at the same time (true of the OpenMP and workqueue layers with
    as many threads as parts). Same arguments, results and return value as :func:`advance`.
    """
    ctl = parts.ctl
    n_parts = parts.bounds.size - 1
    ctl[CTL_COUNT] = 0
    ctl[CTL_SLEEPERS] = 0
    ctl[CTL_NSPK] = 0
    ctl[CTL_BAD] = -1
    gen = ctl[CTL_GEN]
    for p in prange(n_parts):
        _team_member(p, gen, start, stop, state, neurons, net, inputs, rec, parts)
    return ctl[CTL_STATUS], ctl[CTL_NEXT], ctl[CTL_NSPK], ctl[CTL_BAD]


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _update_part(m: int, lo: int, hi: int, state: State, neurons: NeuronConsts, n_streams: int) -> tuple[int, int]:
    """Update and threshold the neurons ``lo .. hi-1`` for step ``m``; list the fired ones from ``fired[lo]``.

    Returns the number fired and the first neuron with a non-finite ``v`` (-1: none; the part stops there).
    """
    v = state.v
    fired = state.fired
    g_start = neurons.g_start
    g_stop = neurons.g_stop
    g_thr = neurons.g_thr
    n_f = 0
    for g in range(g_start.size):
        s = max(g_start[g], lo)
        e = min(g_stop[g], hi)
        if s >= e:
            continue
        if neurons.g_special.size and neurons.g_special[g]:  # adaptive or alpha/biexponential: own function
            n_f, b = _special_group(m, s, e, g, lo, n_f, state, neurons, n_streams)
            if b >= 0:
                return n_f, b
            continue
        # 2. membrane update of the group's neurons in this part
        if neurons.g_cond[g]:
            _update_conductance(m, s, e, g, state, neurons, n_streams)
        else:
            _update_current(m, s, e, g, state, neurons, n_streams)
        # 3. threshold (refractory neurons sit at v_reset < v_threshold, so they cannot fire)
        thr = g_thr[g]
        vv = v[s:e]
        for i in range(e - s):
            vi = vv[i]
            if not vi < thr:
                if vi >= thr:
                    fired[lo + n_f] = s + i
                    n_f += 1
                else:
                    return n_f, s + i
    return n_f, -1


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _noise(m: int, s: int, e: int, sigma: float, state: State, n_streams: int, out: np.ndarray) -> None:
    """``out[i] += sigma N(0, 1)`` for neurons ``s .. e-1`` (``out`` sliced to them): stream 0 of step ``m``."""
    key = state.key[0]
    n = state.v.size
    for i in range(e - s):
        out[i] += sigma * _normal(key, _counter(m, 0, n_streams, n, s + i))


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _update_current(m: int, s: int, e: int, g: int, state: State, neurons: NeuronConsts, n_streams: int) -> None:
    """Exact update of group ``g``'s neurons ``s .. e-1``; refractory neurons stay clamped (a select, not a
    branch: vectorises)."""
    ref = neurons.g_ref[g]
    nch = neurons.g_nch[g]
    vinf = neurons.g_vinf[g]
    dm = neurons.g_decay[g]
    noise = neurons.g_noise[g]
    g_ch = neurons.g_ch
    g_kern = neurons.g_kern
    ch_decay = neurons.ch_decay
    x = state.x
    # slices with 0-based loops: Numba then knows indices are non-negative (no wraparound check)
    vv = state.v[s:e]
    ll = state.last_spike[s:e]
    ne = e - s
    if noise > 0.0 or nch > 2:
        # general path: noise and all channels accumulate in tt, then one select pass
        tt = state.tmp[s:e]
        for i in range(ne):
            tt[i] = 0.0
        if noise > 0.0:
            _noise(m, s, e, noise, state, n_streams, tt)
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


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _update_conductance(m: int, s: int, e: int, g: int, state: State, neurons: NeuronConsts, n_streams: int) -> None:
    """Exponential-Euler update of group ``g``'s neurons ``s .. e-1`` with every synaptic variable frozen
    over the step: ``A = v_inf + sum_cur x + sum_cond (g/g_L) E`` and ``B = 1 + sum_cond g/g_L`` summed
    channel by channel, ``v <- A/B + (v - A/B) exp(-B dt/tau_m)`` (+ noise), refractory neurons clamped.

    ``exp`` is :func:`_exp` (glibc's, vectorised) when every argument is in its range, else ``math.exp``.
    Two conductance channels without noise (COBA) run in one fused pass.
    """
    ref = neurons.g_ref[g]
    nch = neurons.g_nch[g]
    vinf = neurons.g_vinf[g]
    dt_tau = neurons.g_dt_tau[g]
    inv_gl = neurons.g_inv_gl[g]
    noise = neurons.g_noise[g]
    chans = neurons.g_ch[g]
    ch_kind = neurons.ch_kind
    ch_decay = neurons.ch_decay
    ch_rev = neurons.ch_rev
    x = state.x
    v = state.v[s:e]
    last_spike = state.last_spike[s:e]
    ne = e - s
    if nch == 2 and noise == 0.0 and ch_kind[chans[0]] == KIND_CONDUCTANCE and ch_kind[chans[1]] == KIND_CONDUCTANCE:
        x0 = x[chans[0], s:e]
        x1 = x[chans[1], s:e]
        ok = True
        for i in range(ne):
            ok &= _exp_ok(-(1.0 + x0[i] * inv_gl + x1[i] * inv_gl) * dt_tau)
        if ok:
            d0 = ch_decay[chans[0]]
            d1 = ch_decay[chans[1]]
            e0 = ch_rev[chans[0]]
            e1 = ch_rev[chans[1]]
            for i in range(ne):
                r0 = x0[i] * inv_gl
                r1 = x1[i] * inv_gl
                a = vinf + r0 * e0 + r1 * e1
                b = 1.0 + r0 + r1
                x0[i] *= d0
                x1[i] *= d1
                target = a / b
                vn = target + (v[i] - target) * _exp(-b * dt_tau)
                v[i] = vn if m - last_spike[i] >= ref else v[i]
            return
    a = state.tmp[s:e]
    b = state.tmp2[s:e]
    for i in range(ne):
        a[i] = vinf
        b[i] = 1.0
    for k in range(nch):
        c = chans[k]
        xc = x[c, s:e]
        if ch_kind[c] == KIND_CURRENT:
            for i in range(ne):
                a[i] += xc[i]
        else:
            rev = ch_rev[c]
            for i in range(ne):
                r = xc[i] * inv_gl
                a[i] += r * rev
                b[i] += r
        d = ch_decay[c]
        for i in range(ne):
            xc[i] *= d
    ok = True
    for i in range(ne):
        ok &= _exp_ok(-b[i] * dt_tau)
    if ok:
        for i in range(ne):
            target = a[i] / b[i]
            a[i] = target + (v[i] - target) * _exp(-b[i] * dt_tau)
    else:
        for i in range(ne):
            target = a[i] / b[i]
            a[i] = target + (v[i] - target) * math.exp(-b[i] * dt_tau)
    if noise > 0.0:
        _noise(m, s, e, noise, state, n_streams, a)
    for i in range(ne):
        v[i] = a[i] if m - last_spike[i] >= ref else v[i]


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _deliver_part(
    m: int, p: int, state: State, neurons: NeuronConsts, net: Synapses, inputs: Inputs, parts: Parts
) -> None:
    """Step 4 and 5 for part ``p``'s neurons: ring-buffer slots due at ``m``, this step's spikes of every part
    (in the order of their indices) and Poisson input into its targets, then its own neurons' reset."""
    x = state.x
    ring = state.ring
    fired = state.fired
    v = state.v
    last_spike = state.last_spike
    v_reset = neurons.v_reset
    pr_delay = net.pr_delay
    pr_n_post = net.pr_n_post
    pr_post_start = net.pr_post_start
    pr_ring_off = net.pr_ring_off
    pr_channel = net.pr_channel
    indptr = net.indptr
    indices = net.indices
    bounds = parts.bounds
    n_fired = parts.n_fired
    row_split = parts.row_split
    n_parts = bounds.size - 1
    lo = bounds[p]
    hi = bounds[p + 1]
    n_proj = pr_delay.size
    total = 0
    for pp in range(n_parts):
        total += n_fired[pp]
    # delayed spikes due now, into this part's targets
    for k in range(n_proj):
        dl = pr_delay[k]
        if dl > 0:
            post0 = pr_post_start[k]
            n_post = pr_n_post[k]
            a = max(lo - post0, 0)
            b = min(hi - post0, n_post)
            if a < b:
                slot = pr_ring_off[k] + (m % (dl + 1)) * n_post
                xc = x[pr_channel[k]]
                for j in range(a, b):
                    xc[post0 + j] += ring[slot + j]
                    ring[slot + j] = 0.0
    # this step's spikes: delay 0 lands in this step, others in their ring slot
    if total > 0:
        for k in range(n_proj):
            post0 = pr_post_start[k]
            n_post = pr_n_post[k]
            a = max(lo - post0, 0)
            b = min(hi - post0, n_post)
            if a >= b:
                continue
            pre0 = net.pr_pre_start[k]
            pre1 = pre0 + net.pr_n_pre[k]
            w = net.pr_weight[k]
            dl = pr_delay[k]
            ip0 = net.pr_indptr_off[k]
            ix0 = net.pr_indices_off[k]
            split = n_parts > 1 and parts.sorted_rows[k]
            whole = a == 0 and b == n_post
            if dl == 0:
                xc = x[pr_channel[k]]
                base = post0
            else:
                xc = ring
                base = pr_ring_off[k] + ((m + dl) % (dl + 1)) * n_post
            if net.pr_plastic.size and net.pr_plastic[k] >= 0:
                _deliver_plastic(m, p, k, net.pr_plastic[k], a, b, xc, base, state, net, parts)
                continue
            for pp in range(n_parts):
                f0 = bounds[pp]
                for f in range(n_fired[pp]):
                    i = fired[f0 + f]
                    if i < pre0 or i >= pre1:
                        continue
                    r = ip0 + i - pre0
                    if whole:
                        for q in range(indptr[r], indptr[r + 1]):
                            xc[base + indices[ix0 + q]] += w
                    elif split:
                        for q in range(row_split[r, p], row_split[r, p + 1]):
                            xc[base + indices[ix0 + q]] += w
                    else:
                        for q in range(indptr[r], indptr[r + 1]):
                            j = indices[ix0 + q]
                            if a <= j < b:
                                xc[base + j] += w
    # spike-timing-dependent plasticity: delayed presynaptic events, then postsynaptic ones
    if net.pl_proj.size:
        _potentiate_part(m, p, state, net, parts)
    # Poisson input: stream 1 + k, one uniform per neuron and step (tabulated CDF) or a few (PTRS)
    n_po = inputs.po_lam.size
    if n_po > 0:
        key = state.key[0]
        n = v.size
        n_streams = n_po + 1
        po_cdf = inputs.po_cdf
        for k in range(n_po):
            lam = inputs.po_lam[k]
            s = max(inputs.po_start[k], lo)
            e = min(inputs.po_stop[k], hi)
            if lam <= 0.0 or s >= e:
                continue
            w = inputs.po_weight[k]
            xc = x[inputs.po_channel[k]]
            c0 = inputs.po_cdf_off[k]
            n_cdf = inputs.po_cdf_off[k + 1] - c0
            if n_cdf > 0:
                # inverse transform through the tabulated CDF
                for i in range(s, e):
                    u = _uniform(key, _counter(m, 1 + k, n_streams, n, i))
                    cnt = 0
                    while cnt < n_cdf and u > po_cdf[c0 + cnt]:
                        cnt += 1
                    if cnt > 0:
                        xc[i] += w * cnt
            else:
                for i in range(s, e):
                    cnt = _poisson_ptrs(key, _counter(m, 1 + k, n_streams, n, i), lam)
                    if cnt > 0:
                        xc[i] += w * cnt
    # 5. reset of this part's neurons that fired
    for f in range(n_fired[p]):
        i = fired[lo + f]
        v[i] = v_reset[i]
        last_spike[i] = m


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _deliver_plastic(
    m: int,
    p: int,
    k: int,
    pl: int,
    a: int,
    b: int,
    xc: np.ndarray,
    base: int,
    state: State,
    net: Synapses,
    parts: Parts,
) -> None:
    """This step's spikes through plastic projection ``k`` (plasticity row ``pl``) into part ``p``'s targets
    ``a .. b-1`` (local): each synapse transmits its own weight into ``xc[base + j]``; without a presynaptic
    delay it is then depressed and the source's trace jumps (:func:`_pre_event`), with one that happens
    ``pl_d_pre`` steps later (:func:`_potentiate_part`). Every synapse written has its target in the part."""
    fired = state.fired
    bounds = parts.bounds
    n_fired = parts.n_fired
    n_parts = bounds.size - 1
    pre0 = net.pr_pre_start[k]
    pre1 = pre0 + net.pr_n_pre[k]
    learn = net.pl_d_pre[pl] == 0
    for pp in range(n_parts):
        f0 = bounds[pp]
        for f in range(n_fired[pp]):
            i = fired[f0 + f]
            if pre0 <= i < pre1:
                _pre_event(m, p, k, pl, i - pre0, a, b, xc, base, True, learn, state, net, parts)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _pre_event(
    m: int,
    p: int,
    k: int,
    pl: int,
    i: int,
    a: int,
    b: int,
    xc: np.ndarray,
    base: int,
    transmit: bool,
    learn: bool,
    state: State,
    net: Synapses,
    parts: Parts,
) -> None:
    """A spike of local source ``i`` of plastic projection ``k`` at the synapses onto part ``p``'s targets
    ``a .. b-1``: transmit each synapse's weight into ``xc[base + j]`` (``transmit``); depress it by
    ``A_minus f(w) x_post`` (the target's trace before this step's postsynaptic events), clipped, then
    raise part ``p``'s copy of the source's trace by 1 (``learn``)."""
    n_parts = parts.bounds.size - 1
    r = net.pr_indptr_off[k] + i
    if n_parts > 1 and parts.sorted_rows[k]:
        q0, q1 = parts.row_split[r, p], parts.row_split[r, p + 1]
    else:
        q0, q1 = net.indptr[r], net.indptr[r + 1]
    indices = net.indices
    ix0 = net.pr_indices_off[k]
    w = state.syn_w
    w0 = net.pl_w_off[pl]
    scale = net.pl_scale[pl]
    a_minus = net.pl_a_minus[pl]
    w_min = net.pl_w_min[pl]
    w_max = net.pl_w_max[pl]
    mult = net.pl_rule[pl] == 1
    inv_range = 1.0 / (w_max - w_min)
    dtm = net.pl_dt_tau_minus[pl]
    tr_post = state.tr_post
    last_post = state.last_post
    po0 = net.pl_post_off[pl]
    for q in range(q0, q1):
        j = indices[ix0 + q]
        if j < a or j >= b:
            continue
        wq = w[w0 + q]
        if transmit:
            xc[base + j] += wq * scale
        if learn:
            tp = tr_post[po0 + j]
            if tp != 0.0:
                tp *= math.exp(-(m - last_post[po0 + j]) * dtm)
                wq -= a_minus * tp * ((wq - w_min) * inv_range if mult else 1.0)
                w[w0 + q] = min(max(wq, w_min), w_max)
    if learn:
        tr_pre = state.tr_pre[p]
        last_pre = state.last_pre[p]
        ii = net.pl_pre_off[pl] + i
        tr_pre[ii] = tr_pre[ii] * math.exp(-(m - last_pre[ii]) * net.pl_dt_tau_plus[pl]) + 1.0
        last_pre[ii] = m


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _potentiate_part(m: int, p: int, state: State, net: Synapses, parts: Parts) -> None:
    """The plasticity events of step ``m`` at part ``p``'s plastic synapses, after this step's transmission.

    First the presynaptic spikes of step ``m - pl_d_pre`` of every projection with a presynaptic delay
    (depression and trace, :func:`_pre_event`); then, as targets of every plastic projection, part ``p``'s
    neurons that fired at step ``m - pl_d_post``: each incoming synapse gains ``A_plus x_pre`` (part ``p``'s
    copy of the source's trace, this step's presynaptic events included), clipped, and the target's
    postsynaptic trace jumps by 1. The spikes of earlier steps come from ``State.hist``."""
    fired = state.fired
    lo = parts.bounds[p]
    hi = parts.bounds[p + 1]
    hist = state.hist
    n_hist = state.hist_n.size
    for pl in range(net.pl_proj.size):
        d = net.pl_d_pre[pl]
        if d == 0 or m < d:
            continue
        k = net.pl_proj[pl]
        post0 = net.pr_post_start[k]
        a = max(lo - post0, 0)
        b = min(hi - post0, net.pr_n_post[k])
        pre0 = net.pr_pre_start[k]
        pre1 = pre0 + net.pr_n_pre[k]
        slot = (m - d) % n_hist
        for f in range(state.hist_n[slot]):
            i = hist[slot, f]
            if pre0 <= i < pre1:
                _pre_event(m, p, k, pl, i - pre0, a, b, state.x[0], 0, False, True, state, net, parts)
    w = state.syn_w
    tr_pre = state.tr_pre[p]
    last_pre = state.last_pre[p]
    tr_post = state.tr_post
    last_post = state.last_post
    for pl in range(net.pl_proj.size):
        d = net.pl_d_post[pl]
        if d > 0 and m < d:
            continue
        if d == 0:
            src = fired
            f0 = lo
            nf = parts.n_fired[p]
        else:
            slot = (m - d) % n_hist
            src = hist[slot]
            f0 = 0
            nf = state.hist_n[slot]
        if nf == 0:
            continue
        k = net.pl_proj[pl]
        post0 = net.pr_post_start[k]
        a = max(lo - post0, 0)
        b = min(hi - post0, net.pr_n_post[k])
        if a >= b:
            continue
        w0 = net.pl_w_off[pl]
        a_plus = net.pl_a_plus[pl]
        w_min = net.pl_w_min[pl]
        w_max = net.pl_w_max[pl]
        dtp = net.pl_dt_tau_plus[pl]
        dtm = net.pl_dt_tau_minus[pl]
        pr0 = net.pl_pre_off[pl]
        po0 = net.pl_post_off[pl]
        c0 = net.pl_in_ptr_off[pl]
        s0 = net.pl_in_off[pl]
        for f in range(nf):
            j = src[f0 + f] - post0
            if j < a or j >= b:
                continue
            for s in range(net.in_ptr[c0 + j], net.in_ptr[c0 + j + 1]):
                ii = pr0 + net.in_src[s0 + s]
                tq = tr_pre[ii]
                if tq != 0.0:
                    tq *= math.exp(-(m - last_pre[ii]) * dtp)
                    q = w0 + net.in_pos[s0 + s]
                    w[q] = min(max(w[q] + a_plus * tq, w_min), w_max)
            jj = po0 + j
            tr_post[jj] = tr_post[jj] * math.exp(-(m - last_post[jj]) * dtm) + 1.0
            last_post[jj] = m


@numba.njit(cache=True, nogil=True, inline="always")
def _keep_spikes(m: int, state: State, parts: Parts) -> None:
    """Step ``m``'s spikes (every part's, in neuron order) into ``State.hist`` when plasticity has delays."""
    n_hist = state.hist_n.size
    if n_hist == 0:
        return
    slot = m % n_hist
    row = state.hist[slot]
    bounds = parts.bounds
    fired = state.fired
    c = 0
    for pp in range(bounds.size - 1):
        f0 = bounds[pp]
        for f in range(parts.n_fired[pp]):
            row[c] = fired[f0 + f]
            c += 1
    state.hist_n[slot] = c


@numba.njit(cache=True)
def row_splits(indptr: np.ndarray, indices: np.ndarray, ix0: int, lo_bounds: np.ndarray, out: np.ndarray) -> bool:
    """Fill ``out[r, k]`` (rows ``r`` of one projection's ``indptr``) with the first position of row ``r`` whose
    target is ``>= lo_bounds[k]``, by binary search; returns False (and leaves ``out`` partial) as soon as
    a row is not in ascending order."""
    n_parts = lo_bounds.size - 1
    for r in range(indptr.size - 1):
        q0 = indptr[r]
        q1 = indptr[r + 1]
        for q in range(q0 + 1, q1):
            if indices[ix0 + q] < indices[ix0 + q - 1]:
                return False
        out[r, 0] = q0
        out[r, n_parts] = q1
        for k in range(1, n_parts):
            lo = q0
            hi = q1
            t = lo_bounds[k]
            while lo < hi:
                mid = (lo + hi) >> 1
                if indices[ix0 + mid] < t:
                    lo = mid + 1
                else:
                    hi = mid
            out[r, k] = lo
    return True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _special_group(
    m: int, s: int, e: int, g: int, lo: int, n_f: int, state: State, neurons: NeuronConsts, n_streams: int
) -> tuple[int, int]:
    """Steps 2 and 3 (update, threshold) of an adaptive or alpha/biexponential group's neurons ``s .. e-1``.

    Called from :func:`_update_part` in group order, so a part lists its fired neurons in index order
    whatever the models; a separate function (not inlined) so that the plain LIF loop compiles as before.
    A spike of an adaptive neuron adds ``b`` to its ``w`` here (part of the reset; ``w`` plays no part in
    the delivery). Returns the new count of the part's fired neurons (listed from ``fired[lo]``) and the
    global index of a neuron whose ``v`` or ``w`` became non-finite (else -1).
    """
    v = state.v
    w = state.w
    fired = state.fired
    ref = neurons.g_ref[g]
    vv = v[s:e]
    ww = w[s:e]
    ll = state.last_spike[s:e]
    t1 = state.tmp[s:e]
    t2 = state.tmp2[s:e]
    if neurons.g_adapt[g]:
        bad = _update_adaptive(m, s, e, g, ref, state.x, neurons, vv, ww, ll, t1, t2, state, n_streams)
        if bad >= 0:
            return n_f, s + bad
    else:
        _update_shaped(m, s, e, g, ref, state.x, neurons, vv, ww, ll, t1, t2, state, n_streams)
    thr = neurons.g_thr[g]
    f0 = n_f
    for i in range(e - s):
        vi = vv[i]
        if not vi < thr:
            if vi >= thr:
                fired[lo + n_f] = s + i
                n_f += 1
            else:
                return n_f, s + i
    if neurons.g_adapt[g]:
        b = neurons.g_ad[g, AD_B]
        for f in range(f0, n_f):
            w[fired[lo + f]] += b
    return n_f, -1


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
    state: State,
    n_streams: int,
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
    ne = v.size
    # noise first (the same draws, in the same order, as the plain LIF path)
    for i in range(ne):
        acc_u[i] = 0.0
    if noise > 0.0:
        _noise(m, s, e, noise, state, n_streams, acc_u)
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
        _frozen_inputs(s, e, chans, nch, x, neurons, vinf, inv_gl, acc_w, acc_u)
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
def _frozen_inputs(
    s: int,
    e: int,
    chans: np.ndarray,
    nch: int,
    x: np.ndarray,
    neurons: NeuronConsts,
    vinf: float,
    inv_gl: float,
    a: np.ndarray,
    b: np.ndarray,
) -> None:
    """The exponential-Euler terms of neurons ``s .. e-1`` with every channel frozen at its start-of-step value:
    ``a = v_inf + sum_cur x + sum_cond (g/g_L) E`` and ``b = 1 + sum_cond g/g_L`` (``a``, ``b`` sliced to them;
    rise variables of alpha/biexponential channels enter neither)."""
    ch_kind, ch_rev = neurons.ch_kind, neurons.ch_rev
    for i in range(e - s):
        a[i] = vinf
        b[i] = 1.0
    for k in range(nch):
        c = chans[k]
        xc = x[c, s:e]
        if ch_kind[c] == KIND_CURRENT:
            for i in range(e - s):
                a[i] += xc[i]
        elif ch_kind[c] == KIND_CONDUCTANCE:
            rev = ch_rev[c]
            for i in range(e - s):
                r = xc[i] * inv_gl
                a[i] += r * rev
                b[i] += r


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
    state: State,
    n_streams: int,
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
    ne = v.size
    if not neurons.g_cond[g]:
        dm = neurons.g_decay[g]
        for i in range(ne):
            a[i] = 0.0
        if noise > 0.0:
            _noise(m, s, e, noise, state, n_streams, a)
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
    _frozen_inputs(s, e, chans, nch, x, neurons, vinf, inv_gl, a, b)
    _advance_channels(s, e, chans, nch, x, neurons)
    for i in range(ne):
        target = a[i] / b[i]
        a[i] = target + (v[i] - target) * math.exp(-b[i] * dt_tau)
    if noise > 0.0:
        _noise(m, s, e, noise, state, n_streams, a)
    for i in range(ne):
        v[i] = a[i] if m - last_spike[i] >= ref else v[i]
    return -1


# --------------------------------------------------------------------------- the plain-LIF time loops
#
# A network without adaptive or alpha/biexponential groups and without plastic projections never reaches
# their functions, but Numba compiles every function a kernel calls: about 10 s of a cold start. So the
# time loops are also compiled with those calls bound to empty stand-ins (copies of the same Python code
# under other names, their globals overridden; each copy has its own entry in Numba's on-disk cache), and
# :func:`.engine.time_loop` picks the plain ones for such networks. Same code, same arithmetic, same results.


@numba.njit(cache=True, nogil=True)
def _no_special_group(
    m: int, s: int, e: int, g: int, lo: int, n_f: int, state: State, neurons: NeuronConsts, n_streams: int
) -> tuple[int, int]:
    return n_f, -1


@numba.njit(cache=True, nogil=True)
def _no_deliver_plastic(
    m: int,
    p: int,
    k: int,
    pl: int,
    a: int,
    b: int,
    xc: np.ndarray,
    base: int,
    state: State,
    net: Synapses,
    parts: Parts,
) -> None:
    return


@numba.njit(cache=True, nogil=True)
def _no_potentiate_part(m: int, p: int, state: State, net: Synapses, parts: Parts) -> None:
    return


def _rebound(dispatcher: Any, suffix: str, overrides: dict[str, Any], **flags: Any) -> Any:
    """A copy of a jitted function's Python code named ``<name><suffix>``, with some globals replaced."""
    fn = dispatcher.py_func
    scope = dict(fn.__globals__)
    scope.update(overrides)
    name = fn.__name__ + suffix
    copy = types.FunctionType(fn.__code__, scope, name, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = name
    copy.__doc__ = fn.__doc__
    options = {k: v for k, v in dispatcher.targetoptions.items() if k not in ("nopython", "boundscheck")}
    return numba.njit(cache=True, **{**options, **flags})(copy)


_update_part_plain = _rebound(_update_part, "_plain", {"_special_group": _no_special_group})
_deliver_part_plain = _rebound(
    _deliver_part, "_plain", {"_deliver_plastic": _no_deliver_plastic, "_potentiate_part": _no_potentiate_part}
)
_PLAIN = {"_update_part": _update_part_plain, "_deliver_part": _deliver_part_plain}
#: the time loops of :func:`advance`, :func:`advance_threads` and :func:`advance_team` for plain LIF networks
advance_plain = _rebound(advance, "_plain", _PLAIN)
advance_threads_plain = _rebound(advance_threads, "_plain", _PLAIN)
advance_team_plain = _rebound(advance_team, "_plain", {"_team_member": _rebound(_team_member, "_plain", _PLAIN)})


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
