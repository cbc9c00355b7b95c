"""Block-parallel Gaussian streams of the ``sync_learners`` kernels.

Drawing the noise dominates an Euler-Maruyama step of this family (one Gaussian per coordinate per
learner, a handful of flops besides). Numba's ``np.random.Generator.standard_normal`` costs ~3 ns of CPU
a draw (PCG64 behind a function pointer, one draw per call) and one generator cannot be shared by threads
without making the result depend on the scheduling. This module gives every *block* of learners its own stream:

* **Uniform bits**: xoshiro256++ (Blackman & Vigna, "Scrambled linear pseudorandom number generators",
  ACM TOMS 47, 2021), run as :data:`LANES` independent generators per stream, advanced together: the
  update (adds, xors, shifts and rotations, no multiply) is one loop over the lanes, which LLVM
  vectorises (~0.5 ns per 64-bit word instead of ~1.2 ns for a scalar generator). State: a uint64 array
  ``(streams, 4, LANES)`` owned by the caller and advanced in place by the kernels.
* **Seeding**: the lanes' 256-bit states are consecutive raw outputs of one PCG64 generator seeded
  by the run's noise ``SeedSequence`` (itself spawned from ``run.seed``); xoshiro256++ has period
  2^256 - 1, so lanes started at unrelated points do not overlap in any feasible run. A state of all
  zeros (the one forbidden xoshiro state) is replaced.
* **Normals**: the 256-layer ziggurat of Marsaglia & Tsang (J. Stat. Softw. 5(8), 2000) with tables built
  here from its constants ``r = 3.6541528853610088``, ``v = 0.00492867323399``, using independent bits of
  one 64-bit word for the layer (8 bits), the sign (1 bit) and the magnitude (52 bits) (avoiding the
  index/value correlation of the original 32-bit version, Leong et al., J. Stat. Softw. 12(7), 2005).
  98.5% of draws take the fast path (one table lookup, one multiply, one compare); the wedges and the
  tail (Marsaglia's exponential method) are exact, so the output is N(0, 1) to within the 52-bit
  resolution of the magnitude.

Because the learner -> block -> stream assignment depends only on the problem size (never on the
thread count) and each block consumes its stream sequentially, the kernels give bitwise identical
output for any ``NUMBA_NUM_THREADS``.

A module of its own beside :mod:`.kernels`: the generator is independent of the model (no learner, loss or
graph appears here), has its own literature and its own statistical tests and benchmark, and the kernels
use it only through :func:`take_normals` and the :class:`Streams` they are handed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

#: independent xoshiro256++ generators per stream, advanced together (a SIMD-friendly loop over lanes)
LANES = 256
#: normals produced per batch: a block fills this many at a time (a multiple of LANES)
BATCH = LANES

_ZIG_R = 3.6541528853610088
_ZIG_V = 0.00492867323399
_M = 2.0**52


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tables ``k`` (fast-accept thresholds, in units of 2^-52), ``w`` (x per magnitude unit), ``f``.

    Layer ``i >= 1`` is the rectangle ``[0, x_i] x [f(x_i), f(x_{i-1})]`` (``x_0 = 0``, ``x_255 = r``),
    layer 0 the base strip of area ``v`` including the tail beyond ``r``; see Marsaglia & Tsang (2000).
    """
    k = np.zeros(256)
    w = np.zeros(256)
    f = np.zeros(256)
    dn = tn = _ZIG_R
    q = _ZIG_V / math.exp(-0.5 * dn * dn)
    k[0] = math.floor(dn / q * _M)
    k[1] = 0.0
    w[0] = q / _M
    w[255] = dn / _M
    f[0] = 1.0
    f[255] = math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(_ZIG_V / dn + math.exp(-0.5 * dn * dn)))
        k[i + 1] = math.floor(dn / tn * _M)
        tn = dn
        f[i] = math.exp(-0.5 * dn * dn)
        w[i] = dn / _M
    return k, w, f


ZIG_K, ZIG_W, ZIG_F = _ziggurat_tables()


def lane_states(seed: np.random.SeedSequence | int, count: int) -> np.ndarray:
    """Independent xoshiro256++ states for ``count`` streams, shape ``(count, 4, LANES)`` uint64.

    Parameters
    ----------
    seed : SeedSequence or int
        Root of the streams. Its PCG64 generator's raw output, taken in order, gives the 256-bit state
        of every lane of every stream (stream ``b`` gets words ``b * 4 * LANES`` onwards). Spawning a
        SeedSequence per stream would cost ~0.2 ms per stream (1024 hashed words), which dominated small
        runs with many trials; one PCG64 (period 2^128) fills them at ~1 ns a word.
    count : int
        Number of streams (trials x learner blocks, plus one per trial for shared noise); depends on the
        problem size only.
    """
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    # a fresh SeedSequence with the same entropy and key: PCG64(ss) would otherwise be the same anyway,
    # but this keeps ``seed`` itself untouched
    root = np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key)
    out = np.random.PCG64(root).random_raw(count * 4 * LANES).astype(np.uint64).reshape(count, 4, LANES)
    zero = ~out.any(axis=1)  # (count, LANES): the all-zero state never leaves zero
    out[:, 0, :][zero] = np.uint64(0x9E3779B97F4A7C15)
    return out


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def _step(a0, a1, a2, a3):
    """One xoshiro256++ step: (output, new state)."""
    res = _rotl(a0 + a3, 23) + a0
    t = a1 << np.uint64(17)
    a2 ^= a0
    a3 ^= a1
    a1 ^= a2
    a0 ^= a3
    a2 ^= t
    return res, a0, a1, a2, _rotl(a3, 45)


@njit(cache=True, boundscheck=False)
def _fill_lanes(s0, s1, s2, s3, out):
    """One output of every lane into ``out``; no cross-lane dependency: vectorises."""
    for lane in range(s0.shape[0]):
        a0 = s0[lane]
        a1 = s1[lane]
        a2 = s2[lane]
        a3 = s3[lane]
        out[lane] = _rotl(a0 + a3, 23) + a0
        t = a1 << np.uint64(17)
        a2 ^= a0
        a3 ^= a1
        a1 ^= a2
        a0 ^= a3
        a2 ^= t
        s0[lane] = a0
        s1[lane] = a1
        s2[lane] = a2
        s3[lane] = _rotl(a3, 45)


@njit(cache=True)
def fill_uint64(state, b, out, n):
    """Write ``n`` (a multiple of :data:`LANES`) xoshiro256++ outputs of stream ``b`` into ``out``.

    Output ``c * LANES + l`` is the ``c``-th output of lane ``l``.
    """
    s = state[b]
    for off in range(0, n, LANES):
        _fill_lanes(s[0], s[1], s[2], s[3], out[off : off + LANES])


@njit(cache=True, inline="always")
def _next_lane0(state, b):
    """One xoshiro256++ output of lane 0 of stream ``b`` (used by the ziggurat's rare slow path)."""
    s = state[b]
    res, s[0, 0], s[1, 0], s[2, 0], s[3, 0] = _step(s[0, 0], s[1, 0], s[2, 0], s[3, 0])
    return res


@njit(cache=True, inline="always")
def _uniform_open(state, b):
    """Uniform on (0, 1] from 53 bits (never 0, so its log is finite)."""
    return (float(_next_lane0(state, b) >> np.uint64(11)) + 1.0) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _zig_slow(state, b, r, k, w, f):
    """Ziggurat draw for a word ``r`` that failed the fast test: wedge or tail, redrawing as needed."""
    while True:
        idx = np.int64(r & np.uint64(0xFF))
        neg = (r >> np.uint64(8)) & np.uint64(1)
        mag = float(np.int64(r >> np.uint64(12)))  # via int64: a single cvtsi2sd
        if mag < k[idx]:
            x = mag * w[idx]
            return -x if neg else x
        if idx == 0:
            # tail beyond r (Marsaglia 1964): x = r + E1/r accepted when 2 E2 > (E1/r)^2
            while True:
                xt = -math.log(_uniform_open(state, b)) / _ZIG_R
                yt = -math.log(_uniform_open(state, b))
                if yt + yt > xt * xt:
                    break
            x = _ZIG_R + xt
            return -x if neg else x
        x = mag * w[idx]
        if f[idx] + _uniform_open(state, b) * (f[idx - 1] - f[idx]) < math.exp(-0.5 * x * x):
            return -x if neg else x
        r = _next_lane0(state, b)


@njit(cache=True, boundscheck=False)
def fill_normals(state, b, out, bits):
    """Fill ``out`` (length a multiple of :data:`LANES`) with standard normals of stream ``b``.

    ``bits`` is uint64 scratch of the same length. Consumes the stream sequentially, so the values depend
    only on the stream's state.
    """
    n = out.shape[0]
    fill_uint64(state, b, bits, n)
    k, w, f = ZIG_K, ZIG_W, ZIG_F
    for j in range(n):
        r = bits[j]
        idx = np.int64(r & np.uint64(0xFF))
        mag = float(np.int64(r >> np.uint64(12)))  # via int64: a single cvtsi2sd
        if mag < k[idx]:
            x = mag * w[idx]
            out[j] = -x if (r >> np.uint64(8)) & np.uint64(1) else x
        else:
            out[j] = _zig_slow(state, b, r, k, w, f)


@njit(cache=True, boundscheck=False)
def take_normals(streams, b, out, start, count, bits):
    """``out[start:start + count] =`` the next ``count`` normals of stream ``b`` of ``streams`` (:class:`Streams`).

    ``streams.buf[b]`` holds the stream's current batch of :data:`BATCH` normals and ``streams.pos[b]`` the
    index of the next unused one; both persist between calls (and kernel chunks), so the sequence a stream
    delivers does not depend on how the draws are grouped. Whole batches are generated straight into
    ``out`` (the same numbers the buffer would have held). ``bits``: uint64 scratch of length :data:`BATCH`.
    """
    state = streams.state
    pos = streams.pos
    p = pos[b]
    bb = streams.buf[b]
    cnt = min(count, BATCH - p)
    for q in range(cnt):
        out[start + q] = bb[p + q]
    m = cnt
    p += cnt
    while count - m >= BATCH:
        fill_normals(state, b, out[start + m : start + m + BATCH], bits)
        m += BATCH
    if m < count:
        fill_normals(state, b, bb, bits)
        p = count - m
        for q in range(p):
            out[start + m + q] = bb[q]
    pos[b] = p


class Streams(NamedTuple):
    """Per-block Gaussian streams, advanced in place by the kernels (a Numba named tuple: passed whole)."""

    #: xoshiro256++ lane states, ``(streams, 4, LANES)`` uint64 (:func:`lane_states`)
    state: np.ndarray
    #: each stream's current batch of :data:`BATCH` normals, ``(streams, BATCH)``
    buf: np.ndarray
    #: index of each stream's next unused normal in ``buf`` (:data:`BATCH`: the batch is used up)
    pos: np.ndarray


def new_streams(seed: np.random.SeedSequence | int, count: int) -> Streams:
    """``count`` fresh streams rooted at ``seed`` (see :func:`lane_states`), their buffers used up."""
    return Streams(lane_states(seed, count), np.zeros((count, BATCH)), np.full(count, BATCH, dtype=np.int64))


def normals(seed: np.random.SeedSequence | int, size: int) -> np.ndarray:
    """``size`` standard normals from one stream (for tests and diagnostics)."""
    out = np.empty(size)
    take_normals(new_streams(seed, 1), 0, out, 0, size, np.empty(BATCH, dtype=np.uint64))
    return out
