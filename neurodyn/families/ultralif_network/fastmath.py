"""Vectorisable ``exp``, ``log1p`` and logistic function for the batch loops of :mod:`.kernels`.

Numba's ``math.exp``/``math.log1p`` lower to scalar libm calls (llvmlite here has no SVML), which stops
LLVM from vectorising the neuron loop and cost ~10 ns each: at batch 128 they were most of the forward
pass. These versions are plain arithmetic, so a loop over neurons compiles to SIMD code.

Accuracy (checked in ``tests/unit/test_ultralif_forward.py``): within a few ulp of libm over the whole
range used, subnormal results included.

A module of its own beside :mod:`.kernels`: a small numerical library (with its own accuracy tests and
an LLVM intrinsic) that knows nothing of neurons.
"""

from __future__ import annotations

import math

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_LOG2E = 1.4426950408889634
# fdlibm's split of ln 2: the high part has 32 trailing zero bits, so k * _LN2_HI is exact for |k| < 2^20
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


@intrinsic
def _bits_to_float(typingctx, x):  # noqa: ARG001 (numba intrinsic signature)
    """Reinterpret the bits of an int64 as a float64 (no conversion)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):  # noqa: ARG001
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@njit(cache=True, inline="always", error_model="numpy")
def _pow2(k: int) -> float:
    """``2.0 ** k`` for -1022 <= k <= 1023, built from the exponent bits."""
    return _bits_to_float((k + 1023) << 52)


@njit(cache=True, inline="always", error_model="numpy")
def fexp(x: float) -> float:
    """``exp(x)``: Cody-Waite reduction ``x = k ln2 + r``, |r| <= ln2/2, then Taylor to degree 13.

    The truncation error r^14/14! < 5e-18 is below half an ulp; Horner's rounding gives ~1 ulp. Results
    from 2^-1075 (rounds to 0) to the overflow limit; 2^k is applied as two factors so that subnormal
    results are produced (and rounded) as by libm.
    """
    x = min(max(x, -746.0), 709.7)
    k = math.floor(x * _LOG2E + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    ki = int(k)
    k1 = ki >> 1
    return p * _pow2(k1) * _pow2(ki - k1)


@njit(cache=True, inline="always", error_model="numpy")
def _atanh_series_below_33(w: float, p: float) -> float:
    """Horner tail of ``atanh(u)/u = sum_k w^k / (2k + 1)``: ``p`` holds the terms from ``u^32`` up."""
    p = p * w + 1.0 / 31.0
    p = p * w + 1.0 / 29.0
    p = p * w + 1.0 / 27.0
    p = p * w + 1.0 / 25.0
    p = p * w + 1.0 / 23.0
    p = p * w + 1.0 / 21.0
    p = p * w + 1.0 / 19.0
    p = p * w + 1.0 / 17.0
    p = p * w + 1.0 / 15.0
    p = p * w + 1.0 / 13.0
    p = p * w + 1.0 / 11.0
    p = p * w + 1.0 / 9.0
    p = p * w + 1.0 / 7.0
    p = p * w + 1.0 / 5.0
    p = p * w + 1.0 / 3.0
    return p * w + 1.0


@njit(cache=True, inline="always", error_model="numpy")
def flog1p01(e: float) -> float:
    """``log1p(e)`` for ``0 <= e <= 1`` (the range met in a two-term LSE).

    ``log1p(e) = 2 atanh(u)``, ``u = e / (2 + e)`` in [0, 1/3]: the odd series to ``u^33`` leaves a
    truncation below 2e-18 relative; ``u`` is formed from ``e`` directly, so small ``e`` keep full
    relative precision (no ``1 + e`` cancellation).
    """
    u = e / (2.0 + e)
    w = u * u
    return 2.0 * u * _atanh_series_below_33(w, 1.0 / 33.0)


@njit(cache=True, inline="always", error_model="numpy")
def flog1p02(x: float) -> float:
    """``log1p(x)`` for ``0 <= x <= 2`` (the log of a three-term LSE sum, ``1 <= 1 + x <= 3``).

    Same series as :func:`flog1p01` with ``u = x / (2 + x)`` in [0, 1/2]: terms to ``u^51`` leave a
    truncation below 5e-18 relative.
    """
    u = x / (2.0 + x)
    w = u * u
    p = 1.0 / 51.0
    p = p * w + 1.0 / 49.0
    p = p * w + 1.0 / 47.0
    p = p * w + 1.0 / 45.0
    p = p * w + 1.0 / 43.0
    p = p * w + 1.0 / 41.0
    p = p * w + 1.0 / 39.0
    p = p * w + 1.0 / 37.0
    p = p * w + 1.0 / 35.0
    return 2.0 * u * _atanh_series_below_33(w, p * w + 1.0 / 33.0)


@njit(cache=True, inline="always", error_model="numpy")
def fsigmoid(x: float) -> float:
    """Logistic function from one :func:`fexp` of ``-|x|`` (no overflow for either sign)."""
    z = fexp(-abs(x))
    r = 1.0 / (1.0 + z)
    return r if x >= 0.0 else z * r
