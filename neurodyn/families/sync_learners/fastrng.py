"""Fast Gaussian noise for the ``sync_learners`` kernels: xoshiro256** with a 256-layer ziggurat.

Drawing normals dominates an Euler-Maruyama step (one per learner and coordinate). Numba's
``np.random.Generator.standard_normal`` calls the bit generator through a function pointer for every draw;
this inlinable version is 2-3x faster. Streams are seeded from the scenario's ``np.random.Generator``
(:func:`seed_state`), so a seed still gives bitwise-identical runs whatever the chunking.

* xoshiro256** (Blackman & Vigna 2018, https://prng.di.unimi.it/): 256-bit state, period 2^256 - 1,
  passes BigCrush; all output bits are usable.
* Ziggurat (Marsaglia & Tsang 2000, J. Stat. Softw. 5(8)) with 256 layers and NumPy's table
  construction and sampling logic (52-bit uniforms, exact tail by Marsaglia's method).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_R = 3.6541528853610088  # start of the tail
_V = 4.92867323399e-3  # area of each layer


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m1 = 2.0**52
    ki = np.zeros(256, dtype=np.int64)
    wi = np.zeros(256)
    fi = np.zeros(256)
    dn = tn = _R
    q = _V / math.exp(-0.5 * dn * dn)
    ki[0] = int((dn / q) * m1)
    ki[1] = 0
    wi[0] = q / m1
    wi[255] = dn / m1
    fi[0] = 1.0
    fi[255] = math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(_V / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = int((dn / tn) * m1)
        tn = dn
        fi[i] = math.exp(-0.5 * dn * dn)
        wi[i] = dn / m1
    return ki, wi, fi


KI, WI, FI = _tables()
_U5, _U9, _U7, _U45, _U17 = np.uint64(5), np.uint64(9), np.uint64(7), np.uint64(45), np.uint64(17)
_U57, _U19 = np.uint64(57), np.uint64(19)
_U8, _U1, _U11, _MASK8 = np.uint64(8), np.uint64(1), np.uint64(11), np.uint64(0xFF)
_MASK52 = np.uint64(0x000FFFFFFFFFFFFF)


def seed_state(rng: np.random.Generator) -> np.ndarray:
    """A fresh xoshiro256** state (4 uint64, not all zero) drawn from ``rng``."""
    s = rng.integers(1, 2**63 - 1, size=4, dtype=np.int64).astype(np.uint64)
    return s


@njit(cache=True, inline="always")
def next_u64(s):
    """Next 64-bit output of xoshiro256** with state ``s`` (advanced in place)."""
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    x = s1 * _U5
    result = ((x << _U7) | (x >> _U57)) * _U9
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << _U45) | (s3 >> _U19)
    s[0], s[1], s[2], s[3] = s0, s1, s2, s3
    return result


@njit(cache=True, inline="always")
def next_double(s):
    """Uniform double in [0, 1) with 53 random bits."""
    return np.float64(next_u64(s) >> _U11) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _normal_slow(s, idx, x, rabs):
    if idx == 0:  # tail beyond R (Marsaglia 1964)
        while True:
            xx = -(1.0 / _R) * math.log1p(-next_double(s))
            yy = -math.log1p(-next_double(s))
            if yy + yy > xx * xx:
                return -(_R + xx) if (rabs >> 8) & 1 else _R + xx
    if (FI[idx - 1] - FI[idx]) * next_double(s) + FI[idx] < math.exp(-0.5 * x * x):
        return x
    return np.nan  # rejected: the caller draws again


@njit(cache=True, inline="always")
def normal(s):
    """One standard normal draw (ziggurat)."""
    while True:
        r = next_u64(s)
        idx = np.int64(r & _MASK8)
        r >>= _U8
        sign = r & _U1
        rabs = np.int64((r >> _U1) & _MASK52)
        x = rabs * WI[idx]
        if sign:
            x = -x
        if rabs < KI[idx]:
            return x  # inside the layer's rectangle: ~99% of draws
        y = _normal_slow(s, idx, x, rabs)
        if not np.isnan(y):
            return y


@njit(cache=True)
def fill_normal(s, out):
    """Fill a 1-D array with standard normals (for tests and benchmarks)."""
    for i in range(out.shape[0]):
        out[i] = normal(s)
