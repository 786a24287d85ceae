"""Counter-based random numbers for stochastic rounding (Philox4x32-10).

Element ``i`` of a quantize call draws from counter ``offset + i`` of stream ``seed``,
so a tensor quantized in chunks (with matching offsets) gets exactly the draws of one
call, and a GPU kernel can reproduce them. Philox4x32 with 10 rounds is the generator
of Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC 2011); it is the
same round function as Triton's ``tl.philox``, so the Triton kernels call that and
match this code bit for bit.

Mapping used here: key ``(k0, k1)`` = low and high 32 bits of ``seed``; counter
``(c0, c1, c2, c3)`` = low and high 32 bits of the element counter, then ``0, 0``.
The first output word ``r`` becomes the uniform ``(r >> 8) * 2**-24``: 24 bits, exact
in float32 and float64, and strictly below 1 (so a grid point always stays put).
"""

from __future__ import annotations

import numba as nb
import numpy as np

PHILOX_ROUND_A = 0xD2511F53
PHILOX_ROUND_B = 0xCD9E8D57
PHILOX_KEY_A = 0x9E3779B9
PHILOX_KEY_B = 0xBB67AE85
PHILOX_ROUNDS = 10
UNIFORM_BITS = 24
UNIFORM_SCALE = 2.0**-UNIFORM_BITS
MAX_U64 = 2**64 - 1

_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


@nb.njit(inline="always", cache=True)
def philox4(seed: np.uint64, counter: np.uint64) -> tuple[np.uint32, np.uint32, np.uint32, np.uint32]:
    """The four 32-bit output words of Philox4x32-10 for ``(seed, counter)`` (the mapping above).

    Stochastic rounding uses only the first (:func:`philox_word`); simulators that need several draws per
    counter (:mod:`lptsim.sim.noise`, the sparse simulator's batch draws) take all four.
    """
    k0 = np.uint32(seed & _M32)
    k1 = np.uint32(seed >> _S32)
    c0 = np.uint32(counter & _M32)
    c1 = np.uint32(counter >> _S32)
    c2 = np.uint32(0)
    c3 = np.uint32(0)
    for _ in range(PHILOX_ROUNDS):
        prod_a = np.uint64(PHILOX_ROUND_A) * np.uint64(c0)
        prod_b = np.uint64(PHILOX_ROUND_B) * np.uint64(c2)
        new_c0 = np.uint32(prod_b >> _S32) ^ c1 ^ k0
        new_c2 = np.uint32(prod_a >> _S32) ^ c3 ^ k1
        c1 = np.uint32(prod_b & _M32)
        c3 = np.uint32(prod_a & _M32)
        c0 = new_c0
        c2 = new_c2
        k0 = np.uint32(k0 + np.uint32(PHILOX_KEY_A))
        k1 = np.uint32(k1 + np.uint32(PHILOX_KEY_B))
    return c0, c1, c2, c3


@nb.njit(inline="always", cache=True)
def philox_word(seed: np.uint64, counter: np.uint64) -> np.uint32:
    """First 32-bit output word of Philox4x32-10 for ``(seed, counter)``."""
    return philox4(seed, counter)[0]


@nb.njit(inline="always", cache=True)
def uniform_at(seed: np.uint64, counter: np.uint64) -> float:
    """The uniform in [0, 1) that stochastic rounding uses at ``(seed, counter)``."""
    return float(philox_word(seed, counter) >> np.uint32(8)) * UNIFORM_SCALE


@nb.njit(cache=True)
def _uniforms(seed: np.uint64, offset: np.uint64, out: np.ndarray) -> None:
    for i in range(out.size):
        out[i] = uniform_at(seed, offset + np.uint64(i))


def check_seed_offset(seed: int, offset: int, n: int) -> tuple[np.uint64, np.uint64]:
    """Validate a stream seed and counter offset for ``n`` draws; return them as uint64."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
        raise ValueError(f"offset must be an integer in [0, 2**64), got {offset!r}")
    if not 0 <= int(seed) <= MAX_U64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    if not 0 <= int(offset) or int(offset) + max(n - 1, 0) > MAX_U64:
        raise ValueError(f"offset must be >= 0 and offset + n - 1 < 2**64, got offset={offset}, n={n}")
    return np.uint64(int(seed)), np.uint64(int(offset))


def uniforms(seed: int, offset: int, n: int) -> np.ndarray:
    """The ``n`` uniforms (float64) at counters ``offset .. offset+n-1`` of stream ``seed``.

    These are exactly the draws ``quantize(..., rounding="stochastic")`` compares with
    the fractional part of each element; exposed for tests and for reproducing draws.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    s, o = check_seed_offset(seed, offset, n)
    out = np.empty(n, dtype=np.float64)
    _uniforms(s, o, out)
    return out


@nb.njit(cache=True)
def _uniforms_at(seed: np.uint64, counters: np.ndarray, out: np.ndarray) -> None:
    for i in range(out.size):
        out[i] = uniform_at(seed, counters[i])


def flat_counters(counters: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """``counters`` as a flat contiguous uint64 array, with their shape; ValueError unless non-negative integers."""
    c = np.asarray(counters)
    if c.dtype.kind not in "iu" or (c.dtype.kind == "i" and c.size and c.min() < 0):
        raise ValueError("counters must be non-negative integers")
    return np.ascontiguousarray(c, dtype=np.uint64).reshape(-1), c.shape


def uniforms_at(seed: int, counters: np.ndarray) -> np.ndarray:
    """Uniforms (float64) of stream ``seed`` at arbitrary counters (any shape, values in [0, 2**64))."""
    s, _ = check_seed_offset(seed, 0, 1)
    flat, shape = flat_counters(counters)
    out = np.empty(flat.size, dtype=np.float64)
    _uniforms_at(s, flat, out)
    return out.reshape(shape)
