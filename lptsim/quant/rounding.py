"""quantize / dequantize: the one place where values are rounded onto a grid.

Both roundings split ``v = x / step`` (computed in the input's float type) into
``f = floor(v)`` and the exact fractional part ``p = v - f``, then round up when

* ``"nearest"`` (the paper's DR, ``floor(v + 1/2)``): ``p >= 1/2``;
* ``"stochastic"`` (SR, ``floor(v + U)``): ``U < p``, with ``U`` the 24-bit Philox
  uniform at counter ``offset + i`` (see :mod:`lptsim.quant.philox`).

Comparing against ``p`` instead of forming ``v + U`` avoids a floating-point rounding
of the sum, so grid points are exact fixed points and every backend (numpy, torch,
Triton) can produce identical codes. One numba kernel serves numpy and CPU torch.

The decision itself (:func:`round_up`) takes a :class:`RoundingRule`, which every entry point
(:func:`quantize`, :func:`grid_values`, the simulator's ALPT write-back, the 16-bit
:func:`~lptsim.quant.floats.stochastic_cast`) reads from :func:`active_rule` at each call. Production
code never changes it: it is :data:`EXACT` (24 random bits, no bias). :func:`rounding_rule` swaps it
for a block, to study few-bit SR (``RoundingRule(sr_bits=8)``) or to plant the faults of
``lptsim verify --power`` at the one place every rounding goes through.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numba as nb
import numpy as np

from lptsim.quant import _arrays
from lptsim.quant.philox import UNIFORM_BITS, check_seed_offset, flat_counters, uniform_at
from lptsim.quant.spec import QuantSpec

ROUNDINGS = ("nearest", "stochastic")
# Codes of the unbounded grid (spec=None) are clipped here so they fit int64.
UNBOUNDED_LIMIT = float(2**62)
# Below this many elements the threads' start-up costs more than it saves (and with other busy
# processes, e.g. parallel test workers, small parallel calls slow down badly).
_PARALLEL_MIN = 1 << 16
_SCALAR_BLOCK = 4096


class RoundingRule(NamedTuple):
    """How :func:`round_up` decides between ``floor(v)`` and ``floor(v) + 1`` (``p = v - floor(v)``).

    ``EXACT`` is the definition: SR rounds up iff ``U < p`` with the 24-bit Philox uniform ``U``,
    DR iff ``p >= 1/2``. Other rules exist to be studied or planted, never to be configured:

    * ``sr_bits = k < 24``: SR with k random bits, ``U`` truncated to ``floor(U 2^k) / 2^k``
      (few-bit SR: it rounds up with probability ``ceil(p 2^k) / 2^k``, a bias below ``2^-k`` steps);
    * ``u_shift = s``: SR rounds up iff ``U - s < p``, i.e. ``floor(v + U + s)``: a bias of ``+s`` steps;
    * ``sr_as_nearest``: SR rounds to nearest instead;
    * ``ties_down``: DR rounds a tie ``p = 1/2`` down (``ceil(v - 1/2)``) instead of up.
    """

    sr_bits: int = UNIFORM_BITS
    u_shift: float = 0.0
    sr_as_nearest: bool = False
    ties_down: bool = False

    def args(self) -> tuple[int, float, bool, bool]:
        """The rule as the plain tuple the numba kernels take."""
        if not 1 <= int(self.sr_bits) <= UNIFORM_BITS:
            raise ValueError(f"sr_bits must be in [1, {UNIFORM_BITS}], got {self.sr_bits}")
        return int(self.sr_bits), float(self.u_shift), bool(self.sr_as_nearest), bool(self.ties_down)


EXACT = RoundingRule()
_active = EXACT


def active_rule() -> RoundingRule:
    """The rule every rounding in lptsim applies right now (:data:`EXACT` outside :func:`rounding_rule`).

    Every entry point calls this at each call (a lookup of this module's global), so a rule set by
    :func:`rounding_rule` reaches callers that imported ``quantize`` or ``grid_values`` by name.
    """
    return _active


@contextmanager
def rounding_rule(rule: RoundingRule) -> Iterator[None]:
    """Run the block with every rounding of lptsim following ``rule`` (few-bit SR, or a planted fault)."""
    global _active
    rule.args()  # validate before switching
    outer, _active = _active, rule
    try:
        yield
    finally:
        _active = outer


@nb.njit(inline="always", cache=True)
def round_up(p, stochastic, seed, counter, rule):
    """The one decision every rounding in lptsim makes: go from floor(v) to floor(v) + 1, given p = frac(v)?"""
    bits, shift, as_nearest, ties_down = rule
    if stochastic and not as_nearest:
        u = uniform_at(seed, counter)
        if bits < UNIFORM_BITS:  # few-bit SR: keep the top `bits` bits of the uniform
            scale = 2.0**bits
            u = np.floor(u * scale) / scale
        return u - shift < p
    if ties_down:
        return p > 0.5
    return p >= 0.5


@nb.njit(cache=True)
def _round_up_many(p, seed, counters, rule, out):
    for i in range(p.size):
        out[i] = round_up(p[i], True, seed, counters[i], rule)


def sr_round_up(p: np.ndarray, seed: int, counters: np.ndarray) -> np.ndarray:
    """For fractional positions ``p`` in [0, 1): does SR (under the active rule) round up, element ``i`` drawing at
    ``counters[i]``? The decision :func:`quantize` makes, for callers that round onto another grid (16-bit floats)."""
    s, _ = check_seed_offset(seed, 0, 1)
    cf, _ = flat_counters(counters)
    pf = np.ascontiguousarray(p, dtype=np.float64).reshape(-1)
    if pf.size != cf.size:
        raise ValueError(f"p has {pf.size} elements but counters {cf.size}")
    out = np.empty(pf.size, dtype=np.bool_)
    _round_up_many(pf, s, cf, active_rule().args(), out)
    return out.reshape(np.shape(p))


@nb.njit(inline="always", cache=True)
def _round_one(x, step, stochastic, seed, counter, qmin, qmax, rule):
    v = x / step
    f = np.floor(v)
    p = v - f
    up = round_up(p, stochastic, seed, counter, rule)
    c = f + 1.0 if up else f
    if c < qmin:
        c = qmin
    if c > qmax:
        c = qmax
    return c


@nb.njit(inline="always", cache=True)
def _round_group(x, steps, g, group, stochastic, seed, offset, qmin, qmax, rule, out):
    """Round the elements of group g (they share steps[g]); return how many were non-finite."""
    bad = 0
    step = steps[g]
    start = g * group
    stop = min(start + group, x.size)
    for i in range(start, stop):
        xi = x[i]
        if not np.isfinite(xi):
            bad += 1
            continue
        out[i] = _round_one(xi, step, stochastic, seed, offset + np.uint64(i), qmin, qmax, rule)
    return bad


@nb.njit(parallel=True, cache=True)
def _round_parallel(x, steps, group, stochastic, seed, offset, qmin, qmax, rule, out):
    bad = 0
    for g in nb.prange(steps.size):
        bad += _round_group(x, steps, g, group, stochastic, seed, offset, qmin, qmax, rule, out)
    return bad


@nb.njit(cache=True)
def _round_serial(x, steps, group, stochastic, seed, offset, qmin, qmax, rule, out):
    bad = 0
    for g in range(steps.size):
        bad += _round_group(x, steps, g, group, stochastic, seed, offset, qmin, qmax, rule, out)
    return bad


@nb.njit(inline="always", cache=True)
def _round_row(x, steps, row_offsets, r, stochastic, seed, qmin, qmax, rule, out):
    bad = 0
    for j in range(x.shape[1]):
        xi = x[r, j]
        if not np.isfinite(xi):
            bad += 1
            continue
        out[r, j] = _round_one(xi, steps[r], stochastic, seed, row_offsets[r] + np.uint64(j), qmin, qmax, rule)
    return bad


@nb.njit(parallel=True, cache=True)
def _round_rows_parallel(x, steps, row_offsets, stochastic, seed, qmin, qmax, rule, out):
    """x (rows, cols): element (r, j) uses steps[r] and SR counter row_offsets[r] + j."""
    bad = 0
    for r in nb.prange(x.shape[0]):
        bad += _round_row(x, steps, row_offsets, r, stochastic, seed, qmin, qmax, rule, out)
    return bad


@nb.njit(cache=True)
def _round_rows_serial(x, steps, row_offsets, stochastic, seed, qmin, qmax, rule, out):
    bad = 0
    for r in range(x.shape[0]):
        bad += _round_row(x, steps, row_offsets, r, stochastic, seed, qmin, qmax, rule, out)
    return bad


@nb.njit(cache=True)
def _grid_values_rows(x, steps, stochastic, seed, offset, qmin, qmax, rule, out):
    """out[r, j] = steps[r] * code of x[r, j]; SR counter offset + r * cols + j; NaN for non-finite x."""
    cols = x.shape[1]
    for r in range(x.shape[0]):
        for j in range(cols):
            xi = x[r, j]
            if not np.isfinite(xi):
                out[r, j] = np.nan
            else:
                counter = offset + np.uint64(r * cols + j)
                out[r, j] = steps[r] * _round_one(xi, steps[r], stochastic, seed, counter, qmin, qmax, rule)


def grid_values(x: np.ndarray, steps: np.ndarray, spec: QuantSpec | None, rounding: str, seed: int,
                offset: int) -> np.ndarray:
    """``step * quantize(x, step, ...)`` for a trusted 2-D float64 ``x`` with one positive step per row.

    The simulator's fast path: the same rounding (``_round_one``) and the same SR counters as
    :func:`quantize` with ``step`` of shape (rows, 1), without its per-call validation; a
    non-finite element becomes NaN (the caller reports the divergence) instead of an error.
    """
    stochastic = _check_rounding(rounding)
    qmin, qmax = (-UNBOUNDED_LIMIT, UNBOUNDED_LIMIT) if spec is None else (float(spec.qmin), float(spec.qmax))
    seed_u, offset_u = check_seed_offset(seed, offset, x.size)
    out = np.empty_like(x)
    _grid_values_rows(x, steps, stochastic, seed_u, offset_u, qmin, qmax, active_rule().args(), out)
    return out


def _check_rounding(rounding: str) -> bool:
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    return rounding == "stochastic"


def _checked_steps(step: Any, dtype: np.dtype) -> np.ndarray:
    """``step`` as a non-empty array of ``dtype``; ValueError unless every step is finite and > 0."""
    s = np.asarray(_arrays.to_numpy(step), dtype=dtype)
    if s.size == 0:
        raise ValueError("step must not be empty")
    if not ((s > 0) & (s < np.inf)).all():  # NaN fails both
        raise ValueError("step must be finite and > 0 everywhere")
    return s


def _steps_for(step: Any, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, int]:
    """Flatten ``step`` to (steps, group): element i of x uses ``steps[i // group]``."""
    n = math.prod(shape)
    if isinstance(step, (float, int)) and not isinstance(step, bool):  # skips the array checks (simulator)
        if not (0 < step < math.inf):
            raise ValueError(f"step must be finite and > 0, got {step}")
        one = step
    else:
        s = _checked_steps(step, dtype)
        one = s.reshape(-1)[0] if s.size == 1 else None
    if one is not None:  # one step: cut x into blocks anyway so threads can share the work
        return np.full(max(-(-n // _SCALAR_BLOCK), 1), one, dtype=dtype), _SCALAR_BLOCK
    if s.ndim > len(shape):
        raise ValueError(f"step of shape {s.shape} would enlarge x of shape {shape}")
    padded = (1,) * (len(shape) - s.ndim) + s.shape
    for ds, dx in zip(padded, shape, strict=True):
        if ds not in (1, dx):
            what = "would enlarge" if dx == 1 else "does not broadcast to"
            raise ValueError(f"step of shape {s.shape} {what} x of shape {shape}")
    # Per-row style steps (a prefix of x's dims, then ones) need no expansion.
    k = max((i + 1 for i, d in enumerate(padded) if d != 1), default=0)
    group = math.prod(shape[k:])
    if padded[:k] == tuple(shape[:k]) and group >= 8:
        return s.reshape(-1), group
    return np.ascontiguousarray(np.broadcast_to(s.reshape(padded), shape)).reshape(-1), 1


def quantize(
    x: Any,
    step: Any,
    spec: QuantSpec | None,
    rounding: str = "nearest",
    seed: int = 0,
    offset: int = 0,
) -> Any:
    """Round ``x / step`` to integer codes, clipped to ``spec``'s range.

    Args:
        x: float numpy array or torch tensor (float64 is computed in float64, every
            other float type in float32).
        step: positive step size: a scalar or anything that broadcasts to ``x``
            without enlarging it (per-row steps: shape ``(n, 1)``).
        spec: the code range; ``None`` means an unbounded grid (codes as int64).
        rounding: ``"nearest"`` (DR, ``floor(v + 1/2)``) or ``"stochastic"`` (SR).
        seed: SR stream, an integer in ``[0, 2**64)``.
        offset: SR counter of element 0; element ``i`` (flattened, row-major) uses
            counter ``offset + i``, so chunks with matching offsets reproduce one call.
            An integer array of length ``x.shape[0]`` instead gives each row its own
            first counter (element ``j`` of row ``r`` uses ``offset[r] + j``): an embedding
            keys draws by global row, whatever rows share the call. Steps must then be
            scalar or per row.

    Returns:
        Codes of ``x``'s shape and library (numpy in, numpy out; torch in, torch out on
        the same device): int8 up to 8 bits, int16 up to 16, int64 for ``spec=None``.

    Raises:
        ValueError: unknown rounding, bad seed or offset, non-positive or non-finite
            step, or non-finite ``x``.
    """
    stochastic = _check_rounding(rounding)
    xs, like = _arrays.float_numpy(x, "x")
    n = xs.size
    if spec is None:
        qmin, qmax, code_dtype = -UNBOUNDED_LIMIT, UNBOUNDED_LIMIT, np.dtype(np.int64)
    else:
        qmin, qmax, code_dtype = float(spec.qmin), float(spec.qmax), spec.code_dtype
    if not isinstance(offset, (int, np.integer)):
        return _arrays.like(_quantize_rows(xs, step, offset, stochastic, seed, qmin, qmax, code_dtype), like)
    seed_u, offset_u = check_seed_offset(seed, offset, n)
    steps, group = _steps_for(step, xs.shape, xs.dtype)
    flat = xs.reshape(-1)
    out = np.empty(n, dtype=code_dtype)
    kernel = _round_parallel if n >= _PARALLEL_MIN else _round_serial
    bad = kernel(flat, steps, group, stochastic, seed_u, offset_u, qmin, qmax, active_rule().args(), out)
    if bad:
        raise ValueError(f"x has {bad} non-finite value(s) (NaN or inf); quantize needs finite input")
    return _arrays.like(out.reshape(xs.shape), like)


def _quantize_rows(xs: np.ndarray, step: Any, offset: Any, stochastic: bool, seed: int, qmin: float, qmax: float,
                   code_dtype: np.dtype) -> np.ndarray:
    """quantize() with one SR counter offset per row (see its ``offset`` argument)."""
    if xs.ndim == 0:
        raise ValueError("per-row offsets need x with at least one dimension")
    rows = xs.shape[0]
    offsets = np.asarray(_arrays.to_numpy(offset))
    if offsets.shape != (rows,) or not np.issubdtype(offsets.dtype, np.integer):
        raise ValueError(f"offset must be an integer or an integer array of shape ({rows},), got {offsets.shape}")
    x2 = xs.reshape(rows, -1)
    cols = x2.shape[1]
    if rows and (offsets.min() < 0 or int(offsets.max()) + max(cols - 1, 0) >= 2**64):
        raise ValueError("per-row offsets must be >= 0 and leave room for the row's elements below 2**64")
    seed_u, _ = check_seed_offset(seed, 0, 0)
    steps = _checked_steps(step, xs.dtype)
    if steps.size == 1:
        steps = np.full(rows, steps.reshape(-1)[0], dtype=xs.dtype)
    elif steps.size == rows and steps.shape[:1] == (rows,):
        steps = np.ascontiguousarray(steps.reshape(rows))
    else:
        raise ValueError(f"with per-row offsets, step must be a scalar or one step per row, got {steps.shape}")
    out = np.empty(x2.shape, dtype=code_dtype)
    kernel = _round_rows_parallel if x2.size >= _PARALLEL_MIN else _round_rows_serial
    bad = kernel(x2, steps, offsets.astype(np.uint64), stochastic, seed_u, qmin, qmax, active_rule().args(), out)
    if bad:
        raise ValueError(f"x has {bad} non-finite value(s) (NaN or inf); quantize needs finite input")
    return out.reshape(xs.shape)


def dequantize(codes: Any, step: Any) -> Any:
    """Grid values ``step * codes`` (float32, or float64 when ``step`` is float64).

    ``codes`` and ``step`` are both numpy or both torch (a Python float step works with
    either); ``step`` broadcasts as in :func:`quantize`.
    """
    if _arrays.is_torch(codes):
        import torch

        dtype = step.dtype if isinstance(step, torch.Tensor) and step.dtype == torch.float64 else torch.float32
        return codes.to(dtype) * step
    step_arr = np.asarray(step)
    dtype = np.float64 if step_arr.dtype == np.float64 else np.float32
    return np.asarray(codes).astype(dtype) * step_arr.astype(dtype)
