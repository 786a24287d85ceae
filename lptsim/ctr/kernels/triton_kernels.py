"""Triton kernels for LowPrecisionEmbedding: gather + dequantize, and the fused row update.

They must equal the torch/numba path of :class:`LowPrecisionEmbedding` (the reference): codes
bit for bit, floats within float32 rounding. SR uses ``tl.philox`` with the mapping of
:mod:`lptsim.quant.philox` (key = seed, counter = (row * dim + col) split into two 32-bit
words), and the same "round up when U < frac(v)" comparison, with U = (r >> 8) * 2**-24.
Divisions and square roots are correctly rounded (``div_rn``, ``sqrt_rn``) so GPU results
do not depend on fast-math approximations. Codes live in 2-D blocks (bytes, codes per byte)
so packed 4- and 2-bit rows are read and written a byte at a time.

Under ``TRITON_INTERPRET=1`` these run on the CPU (that is how CI tests them).
"""

from __future__ import annotations

import triton
import triton.language as tl

OPT_SGD, OPT_ADAGRAD = 0, 1
STEP_FIXED, STEP_SGD, STEP_ADAM = 0, 1, 2


@triton.jit
def _load_codes(codes_ptr, row, ROW_BYTES: tl.constexpr, BITS: tl.constexpr, PER: tl.constexpr,
                NB: tl.constexpr):
    """Codes of one row as float32 in a (NB, PER) block: column = byte * PER + slot."""
    b = tl.arange(0, NB)[:, None]
    j = tl.arange(0, PER)[None, :]
    bmask = b < ROW_BYTES
    if BITS == 8:
        c = tl.load(codes_ptr + row * ROW_BYTES + b + j * 0, mask=bmask, other=0).to(tl.int32)
    else:
        byte = tl.load(codes_ptr + row * ROW_BYTES + b + j * 0, mask=bmask, other=0).to(tl.int32)
        u = (byte >> (j * BITS)) & ((1 << BITS) - 1)
        c = tl.where(u >= (1 << (BITS - 1)), u - (1 << BITS), u)
    return c.to(tl.float32)


@triton.jit
def gather_dequant_kernel(ids_ptr, codes_ptr, steps_ptr, out_ptr, D: tl.constexpr, ROW_BYTES: tl.constexpr,
                          BITS: tl.constexpr, PER: tl.constexpr, NB: tl.constexpr, STEP_PER_ROW: tl.constexpr):
    """out[i, :] = step[id] * codes[id, :] for id = ids[i] (one program per looked-up id)."""
    i = tl.program_id(0)
    row = tl.load(ids_ptr + i).to(tl.int64)
    c = _load_codes(codes_ptr, row, ROW_BYTES, BITS, PER, NB)
    step = tl.load(steps_ptr + row) if STEP_PER_ROW else tl.load(steps_ptr)
    col = tl.arange(0, NB)[:, None] * PER + tl.arange(0, PER)[None, :]
    tl.store(out_ptr + i * D + col, c * step, mask=col < D)


@triton.jit
def gather_sum_kernel(ids_ptr, bag_starts_ptr, codes_ptr, steps_ptr, out_ptr, D: tl.constexpr,
                      ROW_BYTES: tl.constexpr, BITS: tl.constexpr, PER: tl.constexpr, NB: tl.constexpr,
                      STEP_PER_ROW: tl.constexpr):
    """Sum pooling: out[b, :] = sum of the dequantized rows of ids[bag_starts[b]:bag_starts[b+1]]."""
    bag = tl.program_id(0)
    start = tl.load(bag_starts_ptr + bag)
    stop = tl.load(bag_starts_ptr + bag + 1)
    col = tl.arange(0, NB)[:, None] * PER + tl.arange(0, PER)[None, :]
    acc = tl.zeros((NB, PER), dtype=tl.float32)
    for k in range(start, stop):
        row = tl.load(ids_ptr + k).to(tl.int64)
        step = tl.load(steps_ptr + row) if STEP_PER_ROW else tl.load(steps_ptr)
        acc += _load_codes(codes_ptr, row, ROW_BYTES, BITS, PER, NB) * step
    tl.store(out_ptr + bag * D + col, acc, mask=col < D)


@triton.jit
def fused_update_kernel(rows_ptr, grad_ptr, codes_ptr, steps_ptr, sum_sq_ptr, exp_avg_ptr, exp_avg_sq_ptr,
                        step_m_ptr, step_v_ptr, lr, eps, b1, one_minus_b1, b2, one_minus_b2, row_bc1, row_bc2,
                        step_lr, grad_scale, min_step, bc1, bc2, sb1, one_minus_sb1, sb2, one_minus_sb2, step_eps,
                        seed_lo, seed_hi, row_offset,
                        D: tl.constexpr, ROW_BYTES: tl.constexpr, BITS: tl.constexpr, PER: tl.constexpr,
                        NB: tl.constexpr, QMIN: tl.constexpr, QMAX: tl.constexpr, OPT: tl.constexpr,
                        STEP_MODE: tl.constexpr, STOCHASTIC: tl.constexpr, STEP_PER_ROW: tl.constexpr):
    """One program per unique touched row: row optimizer (SGD, row-wise Adagrad, Adam), (ALPT) step
    update, re-quantize, write back."""
    pid = tl.program_id(0)
    row = tl.load(rows_ptr + pid).to(tl.int64)
    b = tl.arange(0, NB)[:, None]
    j = tl.arange(0, PER)[None, :]
    col = b * PER + j
    valid = col < D
    step = tl.load(steps_ptr + row) if STEP_PER_ROW else tl.load(steps_ptr)
    w = _load_codes(codes_ptr, row, ROW_BYTES, BITS, PER, NB) * step
    g = tl.load(grad_ptr + pid * D + col, mask=valid, other=0.0)
    if OPT == 0:
        w_new = w - lr * g
    elif OPT == 1:
        acc = tl.load(sum_sq_ptr + row) + tl.math.div_rn(tl.sum(tl.sum(g * g, axis=1), axis=0), D * 1.0)
        tl.store(sum_sq_ptr + row, acc)
        w_new = w - tl.math.div_rn(lr * g, tl.math.sqrt_rn(acc) + eps)
    else:  # Adam, two states per element, bias corrections for the global step passed in
        m = tl.load(exp_avg_ptr + row * D + col, mask=valid, other=0.0) * b1 + one_minus_b1 * g
        v2 = tl.load(exp_avg_sq_ptr + row * D + col, mask=valid, other=0.0) * b2 + one_minus_b2 * g * g
        tl.store(exp_avg_ptr + row * D + col, m, mask=valid)
        tl.store(exp_avg_sq_ptr + row * D + col, v2, mask=valid)
        w_new = w - tl.math.div_rn(lr * tl.math.div_rn(m, row_bc1),
                                   tl.math.sqrt_rn(tl.math.div_rn(v2, row_bc2)) + eps)
    w_new = tl.where(valid, w_new, 0.0)
    if STEP_MODE != 0:  # ALPT, one-pass form: LSQ gradient of the updated rows times the upstream gradient
        v = tl.math.div_rn(w_new, step)
        f = tl.floor(v)
        rnd = f + tl.where(v - f >= 0.5, 1.0, 0.0)
        rnd = tl.minimum(tl.maximum(rnd, QMIN), QMAX)
        inside = (v > QMIN) & (v < QMAX)
        lsq = rnd - tl.where(inside, v, 0.0)
        gs = tl.sum(tl.sum(g * lsq, axis=1), axis=0) * grad_scale
        if STEP_MODE == 1:
            new_step = step - step_lr * gs
        else:
            m = tl.load(step_m_ptr + row) * sb1 + one_minus_sb1 * gs
            s2 = tl.load(step_v_ptr + row) * sb2 + one_minus_sb2 * gs * gs
            tl.store(step_m_ptr + row, m)
            tl.store(step_v_ptr + row, s2)
            new_step = step - tl.math.div_rn(step_lr * tl.math.div_rn(m, bc1),
                                             tl.math.sqrt_rn(tl.math.div_rn(s2, bc2)) + step_eps)
        step = tl.maximum(new_step, min_step)
        tl.store(steps_ptr + row, step)
    v = tl.math.div_rn(w_new, step)
    f = tl.floor(v)
    p = v - f
    if STOCHASTIC:
        counter = (row + row_offset).to(tl.uint64) * D + col.to(tl.uint64)
        c0 = (counter & 0xFFFFFFFF).to(tl.uint32)
        c1 = (counter >> 32).to(tl.uint32)
        zero = tl.zeros_like(c0)
        seed = (seed_hi.to(tl.uint64) << 32) | seed_lo.to(tl.uint64)
        r0, _, _, _ = tl.philox(seed, c0, c1, zero, zero)
        up = ((r0 >> 8).to(tl.float32) * 5.9604644775390625e-08) < p
    else:
        up = p >= 0.5
    code = tl.minimum(tl.maximum(f + tl.where(up, 1.0, 0.0), QMIN), QMAX).to(tl.int32)
    code = tl.where(valid, code, 0)
    bmask = b < ROW_BYTES
    if BITS == 8:
        tl.store(codes_ptr + row * ROW_BYTES + b + j * 0, code.to(tl.int8), mask=bmask)
    else:
        byte = tl.sum((code & ((1 << BITS) - 1)) << (j * BITS), axis=1)
        tl.store(codes_ptr + row * ROW_BYTES + tl.arange(0, NB), byte.to(tl.uint8), mask=tl.arange(0, NB) < ROW_BYTES)
