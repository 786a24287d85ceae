"""Triton kernels of the low-precision table: gather + dequantize, sum pooling, and the fused row update.

Numerical contract (the same on a GPU and under ``TRITON_INTERPRET=1``):

* **No FMA contraction.** Every launch passes ``enable_fp_fusion=False``, so each ``a * b + c``
  rounds twice, exactly as the torch reference does (``python -m lptsim.ctr.kernels.aot``
  checks the PTX holds no ``fma.rn``). Divisions and square roots are correctly rounded
  (``div_rn``, ``sqrt_rn``), never fast-math approximations.
* **Reductions in a fixed, sequential order.** Row sums (Adagrad's mean of g², ALPT's step
  gradient) run over the columns 0, 1, ..., D-1 starting from 0, and duplicate ids' gradients
  are summed in their order in the batch (a stable sort keeps it), starting from 0. The
  reference (``backend="torch"``) sums in the same order (``ordered_row_sum``, and its
  lookup's backward), so codes, steps and optimizer state match **bit for bit**.
* Scalars that depend on the training step (Adam bias corrections, the SR seed) are derived
  on the device, inside the kernels, from the module's counters, never read back to the host; the bias
  corrections by the contract's float64 binary powering (:func:`lptsim.ctr.contract.bias_correction`), the
  reference's very loop.
* Random draws follow :mod:`lptsim.ctr.contract`: every draw of update ``t`` is keyed by
  ``step_seed(seed, t)`` (:func:`_splitmix64` on the device) and counted in its stream's own range
  (the stream bases below are the contract's, imported, never retyped).
* bfloat16 steps and optimizer state are computed in float32 and stored with the reference's
  stochastic rounding (:func:`lptsim.quant.floats.stochastic_cast`: the update's key, the buffer's
  stream, the global element as counter); float16 state is not covered.

Layout: the update kernel gives each program ``BLOCK`` sorted positions, one per lane (one or
two warps), and loops over the columns; the rows of a block are independent lanes, so the
row sums are sequential per lane. Codes of any width 1-8 are read and written as the LSB-first
bit stream of :func:`lptsim.quant.pack` (a code may straddle two bytes for 3/5/6/7 bits).
SR uses ``tl.philox`` with the mapping of :mod:`lptsim.quant.philox` (key = the update's key,
counter = the write-back stream's base + global element ``(row + row_offset) * dim + col``, split into
two 32-bit words) and
rounds up when ``U < frac(v)`` with ``U = (r >> 8) * 2**-24``; DR rounds up when
``frac(v) >= 1/2`` (ties go up: ``floor(v + 1/2)``).

Offsets are 64-bit wherever a product can pass 2**31 (row * bytes, position * dim). Integer
values that change during training (the seed, the step count, ``row_offset``) live in device
tensors, so they are neither specialized by Triton (an int argument equal to 1 becomes a
constant) nor read on the host; the one int argument, ``n``, is ``do_not_specialize``.
"""

from __future__ import annotations

from lptsim.ctr.kernels.version import check_triton

check_triton()  # a clear message for an old Triton (MIN_TRITON), not a failure deep inside a kernel

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from lptsim.ctr.contract import OPT_CODE, POWER_BITS, ROW_BETAS, STEP_BETAS, STEP_KIND, STEP_MODE, Stream, counter_base  # noqa: E402

OPT_SGD = tl.constexpr(OPT_CODE["sgd"])  # the contract's codes, as compile-time constants
OPT_ADAGRAD = tl.constexpr(OPT_CODE["adagrad"])
OPT_ADAM = tl.constexpr(OPT_CODE["adam"])
STEP_FIXED = tl.constexpr(STEP_MODE[None])
STEP_SGD = tl.constexpr(STEP_MODE["sgd"])
STEP_ADAGRAD = tl.constexpr(STEP_MODE["adagrad"])
STEP_TABLE = tl.constexpr(STEP_KIND["table"])
STEP_ROW = tl.constexpr(STEP_KIND["row"])
# The first counter of each stream (add them to a tensor, tensor first: constexpr + tensor stays a constexpr).
WRITE_BACK = tl.constexpr(counter_base(Stream.WRITE_BACK))
ROW_SUM_SQ = tl.constexpr(counter_base(Stream.ROW_SUM_SQ))
ROW_EXP_AVG = tl.constexpr(counter_base(Stream.ROW_EXP_AVG))
ROW_EXP_AVG_SQ = tl.constexpr(counter_base(Stream.ROW_EXP_AVG_SQ))
STEP_SUM_SQ = tl.constexpr(counter_base(Stream.STEP_SUM_SQ))
STEP_M = tl.constexpr(counter_base(Stream.STEP_M))
STEP_V = tl.constexpr(counter_base(Stream.STEP_V))
STEP_ITSELF = tl.constexpr(counter_base(Stream.STEP))
ROW_B1, ROW_B2 = tl.constexpr(ROW_BETAS[0]), tl.constexpr(ROW_BETAS[1])  # float64 constants of the powering
STEP_B1, STEP_B2 = tl.constexpr(STEP_BETAS[0]), tl.constexpr(STEP_BETAS[1])
BITS_OF_T = tl.constexpr(POWER_BITS)


@triton.jit
def _bias_correction(beta: tl.constexpr, t):
    """lptsim.ctr.contract.bias_correction: ``1 - beta**t`` by binary powering in float64, rounded to float32
    (scalar ``t``, an int64 step count read from the device: no host value, no extra launch)."""
    p = tl.full((), 1.0, tl.float64)
    b = tl.full((), beta, tl.float64)
    e = t.to(tl.int64)
    for _ in range(BITS_OF_T):
        p = tl.where((e & 1) != 0, p * b, p)
        b = b * b
        e = e >> 1
    return (1.0 - p).to(tl.float32)


@triton.jit
def _splitmix64(seed, t):
    """lptsim.ctr.contract.step_seed(seed, t) in uint64 arithmetic: the key of update t."""
    z = tl.cast(seed, tl.uint64) * 0x9E3779B97F4A7C15 + tl.cast(t, tl.uint64) + 1
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    return z ^ (z >> 31)


@triton.jit
def _code(codes_ptr, row, col, mask, ROW_BYTES: tl.constexpr, BITS: tl.constexpr):
    """Signed code (int32) of ``(row, col)``; ``row`` int64, ``col`` a column index (tensor or scalar)."""
    base = codes_ptr + row * ROW_BYTES
    if BITS == 8:
        return tl.load(base + col, mask=mask, other=0).to(tl.int32)
    bit = col * BITS
    byte = bit >> 3
    word = tl.load(base + byte, mask=mask, other=0).to(tl.int32) & 0xFF
    if 8 % BITS != 0:  # the code may continue in the next byte
        nxt = tl.load(base + byte + 1, mask=mask & (byte + 1 < ROW_BYTES), other=0).to(tl.int32) & 0xFF
        word = word | (nxt << 8)
    u = (word >> (bit & 7)) & ((1 << BITS) - 1)
    return tl.where(u >= (1 << (BITS - 1)), u - (1 << BITS), u)


@triton.jit
def _step_of(steps_ptr, step_idx_ptr, pos, row, mask, STEP_KIND: tl.constexpr):
    if STEP_KIND == STEP_TABLE:
        s = tl.load(steps_ptr + row * 0, mask=mask, other=1.0)
    elif STEP_KIND == STEP_ROW:
        s = tl.load(steps_ptr + row, mask=mask, other=1.0)
    else:
        s = tl.load(steps_ptr + tl.load(step_idx_ptr + pos, mask=mask, other=0).to(tl.int64), mask=mask, other=1.0)
    return s.to(tl.float32)


@triton.jit
def _uniform(seed, counter):
    """The Philox uniform of lptsim.quant.philox at a uint64 ``counter`` (tensor) under a uint64 ``seed``."""
    zero = tl.zeros(counter.shape, dtype=tl.uint32)
    r0, _, _, _ = tl.philox(seed, (counter & 0xFFFFFFFF).to(tl.uint32), (counter >> 32).to(tl.uint32), zero, zero)
    return (r0 >> 8).to(tl.float32) * 5.9604644775390625e-08


@triton.jit
def _put(ptr, x, mask, seed, counter, BF16: tl.constexpr):
    """Store float32 ``x``; into a bfloat16 buffer with lptsim.quant.floats.stochastic_cast's rounding: up to
    the next bfloat16 with probability (x - lo) / (hi - lo), drawn at ``counter``. (Both neighbours come from
    truncating the float32 bits, so that fraction is exact in float32, as in the float64 reference.)"""
    if BF16:
        bits = x.to(tl.int32, bitcast=True)
        t = bits & -65536
        near = t.to(tl.float32, bitcast=True)  # toward zero
        far = (t + 65536).to(tl.float32, bitcast=True)  # one bfloat16 step away from zero
        lo = tl.where(x >= 0, near, far)
        hi = tl.where(x >= 0, far, near)
        frac = tl.math.div_rn(x - lo, hi - lo)
        out = tl.where(_uniform(seed, counter) < frac, hi, lo)
        out = tl.where((near == x) | (x != x), x, out)  # representable (also 0, inf), NaN
        tl.store(ptr, out.to(tl.bfloat16), mask=mask)
    else:
        tl.store(ptr, x, mask=mask)


@triton.jit(do_not_specialize=["n", "rows"])
def gather_dequant_kernel(ids_ptr, codes_ptr, steps_ptr, step_idx_ptr, out_ptr, keys_ptr, ok_ptr, n, rows,
                          D: tl.constexpr, DP: tl.constexpr, ROW_BYTES: tl.constexpr, BITS: tl.constexpr,
                          STEP_KIND: tl.constexpr, BLOCK: tl.constexpr, KEYS: tl.constexpr = False):
    """out[i, :] = step[id] * codes[id, :] for id = ids[i]; BLOCK ids x DP columns per program.

    Also the step's one id check: an id outside [0, rows) stores 0 in ``ok`` (one int32, which the launcher
    asserts on the device) and reads nothing (its row is 0). With ``KEYS`` (a training lookup) it writes the ids
    as the 32-bit keys the step sorts (``keys``), so the check, the narrowing and the gather read the ids once.
    """
    pos = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = pos < n
    row = tl.load(ids_ptr + pos, mask=live, other=0).to(tl.int64)
    bad = live & ((row < 0) | (row >= rows))
    tl.store(ok_ptr + pos * 0, tl.zeros((BLOCK,), dtype=tl.int32), mask=bad)  # every writer stores 0: no race
    live = live & (bad == 0)
    row = tl.where(live, row, 0)
    if KEYS:
        tl.store(keys_ptr + pos, row.to(tl.int32), mask=live)
    step = _step_of(steps_ptr, step_idx_ptr, pos, row, live, STEP_KIND)
    col = tl.arange(0, DP)[None, :]
    mask = live[:, None] & (col < D)
    c = _code(codes_ptr, row[:, None], col, mask, ROW_BYTES, BITS).to(tl.float32)
    tl.store(out_ptr + pos[:, None] * D + col, c * step[:, None], mask=(pos < n)[:, None] & (col < D))


@triton.jit
def gather_sum_kernel(ids_ptr, bag_starts_ptr, codes_ptr, steps_ptr, step_idx_ptr, out_ptr, D: tl.constexpr,
                      DP: tl.constexpr, ROW_BYTES: tl.constexpr, BITS: tl.constexpr, STEP_KIND: tl.constexpr):
    """Sum pooling: out[b, :] = the dequantized rows of ids[bag_starts[b]:bag_starts[b+1]], added in order."""
    bag = tl.program_id(0).to(tl.int64)
    start = tl.load(bag_starts_ptr + bag).to(tl.int64)
    stop = tl.load(bag_starts_ptr + bag + 1).to(tl.int64)
    col = tl.arange(0, DP)
    cmask = col < D
    acc = tl.zeros((DP,), dtype=tl.float32)
    k = start
    while k < stop:  # not range(start, stop): Triton 3.6's interpreter cannot take loaded bounds (numpy >= 2.4)
        row = tl.load(ids_ptr + k).to(tl.int64)
        step = _step_of(steps_ptr, step_idx_ptr, k, row, True, STEP_KIND)
        acc = acc + _code(codes_ptr, row, col, cmask, ROW_BYTES, BITS).to(tl.float32) * step
        k += 1
    tl.store(out_ptr + bag * D + col, acc, mask=cmask)
