"""Gaussian noise from Philox counters, four normals per counter, in branch-free arithmetic that numba vectorises.

One Philox4x32-10 call (:func:`lptsim.quant.philox.philox4`) gives four 32-bit words ``w0..w3``; they make two
Box-Muller pairs, ``(w0, w1)`` and ``(w2, w3)``. A pair ``(wr, wa)`` becomes

    radius  R = sqrt(-2 ln u),      u = (wr + 1/2) 2^-32  in (0, 1)   (so ln 0 never occurs)
    angle   theta = 2 pi a,         a = wa 2^-32          in [0, 1)
    normals (R cos theta, R sin theta)

so the counter's four normals are ``(R0 cos theta0, R0 sin theta0, R1 cos theta1, R1 sin theta1)``: independent
standard normals (the Box-Muller theorem), up to the 2^-32 discreteness of the uniforms (the largest radius is
sqrt(2 ln 2^33) = 6.8).

Why own ``ln``, ``sin`` and ``cos``: numba calls libm's scalar functions one element at a time (about 20 ns a
normal here); the polynomial forms below are plain multiply-adds and selects, which LLVM turns into AVX-512 code,
and they are the same IEEE operations on every machine, so a seed gives the same noise everywhere (vectorised math
libraries such as SVML differ by machine in the last bit). Accuracy (tested against ``math``): within a few units
in the last place of the libm values, far below the 2^-32 resolution of the uniforms.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from lptsim.quant.philox import check_seed_offset, flat_counters, philox4

_TWO_M32 = 2.0**-32
_LN2 = math.log(2.0)
_SQRT2 = math.sqrt(2.0)
_SQRT_HALF = math.sqrt(0.5)
_QUARTER_PI = math.pi / 4
# ln m = 2 atanh(s), s = (m - 1) / (m + 1): the series 2 (s + s^3/3 + ... + s^21/21); |s| <= 0.172 for m in
# [1/sqrt2, sqrt2], so the first omitted term is below 0.172^23 / 23 < 3e-19 relative.
_ATANH = tuple(1.0 / (2 * k + 1) for k in range(11))
# Taylor coefficients of sin (x^1 .. x^15) and cos (x^0 .. x^16) on |x| <= pi/4: first omitted terms
# (pi/4)^17/17! < 5e-17 and (pi/4)^18/18! < 3e-18.
_SIN = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(8))
_COS = tuple((-1) ** k / math.factorial(2 * k) for k in range(9))


@intrinsic
def _f64_bits(typingctx, x):  # noqa: ARG001
    """The IEEE bits of a float64 as an int64 (an LLVM bitcast: no memory round trip, vectorisable)."""
    if not isinstance(x, types.Float) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):  # noqa: ARG001
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, x):  # noqa: ARG001
    """The float64 with the given IEEE bits (int64)."""
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):  # noqa: ARG001
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(x), codegen


@nb.njit(inline="always", cache=True)
def log_positive(x: float) -> float:
    """ln x for a positive normal float64 x, branch-free (x = m 2^e with m in [1/sqrt2, sqrt2), ln m by atanh)."""
    bits = _f64_bits(x)
    e = (bits >> 52) - 1023
    m = _bits_f64((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)  # in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    s = (m - 1.0) / (m + 1.0)
    x2 = s * s
    x4 = x2 * x2
    x8 = x4 * x4
    a = _ATANH  # Estrin's scheme: shorter dependency chains than Horner's, so more of them overlap
    p = ((a[0] + a[1] * x2) + (a[2] + a[3] * x2) * x4) + ((a[4] + a[5] * x2) + (a[6] + a[7] * x2) * x4) * x8 \
        + ((a[8] + a[9] * x2) + a[10] * x4) * (x8 * x8)
    return e * _LN2 + 2.0 * s * p


@nb.njit(inline="always", cache=True)
def cos_sin_turn(wa: np.uint32) -> tuple[float, float]:
    """(cos theta, sin theta) for theta = 2 pi wa 2^-32, branch-free.

    The top two bits of ``wa`` are the quadrant q; the rest place theta = q pi/2 + pi/4 + x with |x| <= pi/4,
    where the Taylor polynomials give cos x and sin x; a rotation by pi/4 and the quadrant's swap and signs follow.
    """
    w = np.uint32(wa)
    q = np.int64(w >> np.uint32(30))
    f = float(w & np.uint32(0x3FFFFFFF)) * 2.0**-30  # in [0, 1): the position within the quadrant
    x = (f - 0.5) * (2.0 * _QUARTER_PI)
    x2 = x * x
    x4 = x2 * x2
    x8 = x4 * x4
    a, b = _SIN, _COS  # Estrin's scheme, as in log_positive
    sp = ((a[0] + a[1] * x2) + (a[2] + a[3] * x2) * x4) + ((a[4] + a[5] * x2) + (a[6] + a[7] * x2) * x4) * x8
    cp = ((b[0] + b[1] * x2) + (b[2] + b[3] * x2) * x4) + ((b[4] + b[5] * x2) + (b[6] + b[7] * x2) * x4) * x8 \
        + b[8] * (x8 * x8)
    s = x * sp
    c = cp
    cq = (c - s) * _SQRT_HALF  # cos(pi/4 + x)
    sq = (c + s) * _SQRT_HALF  # sin(pi/4 + x)
    swap = (q & 1) == 1
    cos_t = sq if swap else cq  # quadrants 1, 3: cos(q pi/2 + y) = -/+ sin y
    sin_t = cq if swap else sq
    cos_t = -cos_t if (q == 1 or q == 2) else cos_t
    sin_t = -sin_t if q >= 2 else sin_t
    return cos_t, sin_t


@nb.njit(inline="always", cache=True)
def box_muller(wr: np.uint32, wa: np.uint32) -> tuple[float, float]:
    """The pair of standard normals of the words (wr, wa): radius from wr, angle from wa (module docstring)."""
    u = (float(wr) + 0.5) * _TWO_M32
    radius = math.sqrt(-2.0 * log_positive(u))
    c, s = cos_sin_turn(wa)
    return radius * c, radius * s


@nb.njit(inline="always", cache=True)
def normals4(seed: np.uint64, counter: np.uint64) -> tuple[float, float, float, float]:
    """The four standard normals of counter ``counter`` of stream ``seed``: Box-Muller on (w0, w1) and (w2, w3)."""
    w0, w1, w2, w3 = philox4(seed, counter)
    z0, z1 = box_muller(w0, w1)
    z2, z3 = box_muller(w2, w3)
    return z0, z1, z2, z3


@nb.njit(cache=True, error_model="numpy")
def _normals_at(seed, counters, out):
    for i in range(counters.size):  # out is (4, n): four flat stores, which vectorise (interleaved ones do not)
        z0, z1, z2, z3 = normals4(seed, counters[i])
        out[0, i] = z0
        out[1, i] = z1
        out[2, i] = z2
        out[3, i] = z3


def normals_at(seed: int, counters: np.ndarray) -> np.ndarray:
    """The four normals of each counter (shape ``counters.shape + (4,)``) of stream ``seed``."""
    s, _ = check_seed_offset(seed, 0, 1)
    flat, shape = flat_counters(counters)
    out = np.empty((4, flat.size))
    _normals_at(s, flat, out)
    return out.T.reshape(shape + (4,))
