"""Triton kernels of the table's update: the fused row update (row optimizer, ALPT's step, re-quantization) and
the update of steps shared by many rows. The numerical contract is :mod:`lptsim.ctr.kernels.triton_kernels`'s;
each run of equal ids' gradients is summed inside the kernel by :func:`~lptsim.ctr.kernels.run_sum_kernels._run_sum`
in the reference's fixed order, so no run sums go through memory.

Layout: each program gives ``BLOCK`` sorted positions one lane each (up to 64, two warps); the run sums are a
[DP, BLOCK] tile in registers (lanes fastest: a thread holds its lane's row), the row sums run over the columns
0, 1, ..., D - 1 (each taken from the tile exactly).
``BLOCK`` shrinks with the dim (:func:`lptsim.ctr.kernels.update_block`) so the tiles stay in registers.
"""

from __future__ import annotations

from lptsim.ctr.kernels.version import check_triton

check_triton()

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from lptsim.ctr.kernels.run_sum_kernels import _col, _run_sum  # noqa: E402
from lptsim.ctr.kernels.triton_kernels import (  # noqa: E402
    OPT_ADAGRAD,
    OPT_ADAM,
    OPT_SGD,
    ROW_B1,
    ROW_B2,
    ROW_EXP_AVG,
    ROW_EXP_AVG_SQ,
    ROW_SUM_SQ,
    STEP_ADAGRAD,
    STEP_B1,
    STEP_B2,
    STEP_FIXED,
    STEP_ITSELF,
    STEP_M,
    STEP_SGD,
    STEP_SUM_SQ,
    STEP_V,
    WRITE_BACK,
    _bias_correction,
    _code,
    _put,
    _splitmix64,
    _step_of,
)


@triton.jit
def _step_update(step, gs, sidx, mask, index, steps_ptr, step_m_ptr, step_v_ptr, t, ukey, step_lr, min_step,
                 sb1, one_minus_sb1, sb2, one_minus_sb2, step_eps, STEP_MODE: tl.constexpr, BF16: tl.constexpr):
    """ALPT's step update (SGD, Adagrad, Adam) of the steps at ``sidx`` from their gradient ``gs``; stores state
    and step (16-bit writes drawn under the update's key ``ukey`` at each buffer's stream + ``index``) and returns
    the step the codes are made with (the stored one). ``t``: this update's number (Adam's bias corrections)."""
    if STEP_MODE == STEP_SGD:
        new_step = step - step_lr * gs
    elif STEP_MODE == STEP_ADAGRAD:  # Adagrad on the step: one accumulator per step (in step_m)
        sacc = tl.load(step_m_ptr + sidx, mask=mask, other=0.0).to(tl.float32) + gs * gs
        _put(step_m_ptr + sidx, sacc, mask, ukey, index + STEP_SUM_SQ, BF16)
        new_step = step - tl.math.div_rn(step_lr * gs, tl.math.sqrt_rn(sacc) + step_eps)
    else:
        bc1 = _bias_correction(STEP_B1, t)
        bc2 = _bias_correction(STEP_B2, t)
        m = tl.load(step_m_ptr + sidx, mask=mask, other=0.0).to(tl.float32) * sb1 + one_minus_sb1 * gs
        s2 = tl.load(step_v_ptr + sidx, mask=mask, other=0.0).to(tl.float32) * sb2 + one_minus_sb2 * gs * gs
        _put(step_m_ptr + sidx, m, mask, ukey, index + STEP_M, BF16)
        _put(step_v_ptr + sidx, s2, mask, ukey, index + STEP_V, BF16)
        new_step = step - tl.math.div_rn(step_lr * tl.math.div_rn(m, bc1),
                                         tl.math.sqrt_rn(tl.math.div_rn(s2, bc2)) + step_eps)
    step = tl.maximum(new_step, min_step)
    _put(steps_ptr + sidx, step, mask, ukey, index + STEP_ITSELF, BF16)
    if BF16:  # the codes are made with the stored (rounded) step
        step = tl.load(steps_ptr + sidx, mask=mask, other=1.0).to(tl.float32)
    return step



@triton.jit(do_not_specialize=["n", "top_stride"])
def fused_update_kernel(sorted_ptr, perm_ptr, grad_ptr, top_ptr, wnew_ptr, gstep_ptr, codes_ptr, steps_ptr,
                        step_idx_ptr, sum_sq_ptr, exp_avg_ptr, exp_avg_sq_ptr, step_m_ptr, step_v_ptr,
                        key_ptr, updates_ptr, adam_steps_ptr, n, top_stride,
                        lr, eps, b1, one_minus_b1, b2, one_minus_b2, step_lr, grad_scale, min_step,
                        sb1, one_minus_sb1, sb2, one_minus_sb2, step_eps,
                        D: tl.constexpr, PADDED: tl.constexpr, ROW_BYTES: tl.constexpr, BITS: tl.constexpr,
                        QMIN: tl.constexpr, QMAX: tl.constexpr, OPT: tl.constexpr, STEP_MODE: tl.constexpr,
                        STOCHASTIC: tl.constexpr, STEP_KIND: tl.constexpr, BLOCK: tl.constexpr, DP: tl.constexpr,
                        CHUNK: tl.constexpr, LONG: tl.constexpr, PHASE: tl.constexpr = 0, BF16: tl.constexpr = False):
    """One training step of the rows a batch touched, in place.

    ``sorted`` holds the batch's ids stably sorted, ``perm`` maps sorted positions to batch positions, ``grad``
    holds the upstream gradient rows in batch order. The lane at the head of a run of equal ids owns that row: it
    sums the run's gradient rows in the reference's order (:func:`_run_sum`; runs longer than CHUNK from the
    partial sums in ``top``, ``top_stride`` ranks apart, made by ``long_run_kernel``; ``LONG`` when there can be
    any), applies the row optimizer (SGD, row-wise Adagrad, Adam), (ALPT, one pass) updates the row's step, and
    writes the row back re-quantized. ``key`` = (seed, row_offset); ``updates`` = write-backs done so far (this
    is update ``updates + 1``, keyed ``step_seed(seed, updates + 1)``: also the t of the step Adam's bias
    corrections); ``adam_steps`` = row Adam's step count (already advanced); the bias corrections are computed
    here from these counters. ``PHASE``: 0 the whole one-pass step (the updated rows stay in registers);
    two-pass ALPT runs 1 (row optimizer into ``wnew``, (n, D) float32 staged rows) after the first backward and 2
    (step update from the second pass's gradient, re-quantization of ``wnew``) after the second. A step shared by
    many rows (per field or per table) needs a sum over rows first: phase 3 stores each run head's step gradient
    (from ``wnew`` and the run sums) in ``gstep`` (n,), ``shared_step_kernel`` updates the steps, and phase 4
    re-quantizes ``wnew`` on them.
    """
    pos = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = pos < n
    row = tl.load(sorted_ptr + pos, mask=live, other=0).to(tl.int64)
    prev = tl.load(sorted_ptr + pos - 1, mask=live & (pos > 0), other=-1).to(tl.int64)
    head = live & ((pos == 0) | (row != prev))
    step = _step_of(steps_ptr, step_idx_ptr, pos, row, head, STEP_KIND)
    rglob = (row + tl.load(key_ptr + 1)).to(tl.uint64)  # global row: the index of per-row draws
    t_update = tl.load(updates_ptr) + 1
    ukey = _splitmix64(tl.load(key_ptr), t_update)  # this update's key: all its draws
    cols = tl.arange(0, DP)[:, None]
    if PHASE != 4:  # the run sums, a [DP, BLOCK] tile (phase 4 re-quantizes staged rows: no gradient)
        gt = _run_sum(sorted_ptr, perm_ptr, grad_ptr, top_ptr, pos, row, head, n, top_stride, D, DP, CHUNK, BLOCK,
                      LONG)
    else:
        gt = tl.zeros((DP, BLOCK), dtype=tl.float32)
    wt = tl.zeros((DP, BLOCK), dtype=tl.float32)  # phase 0: the updated rows

    # Pass 1: Adagrad's sum of squares of the row's gradient, columns in order.
    ss = tl.zeros((BLOCK,), dtype=tl.float32)
    for c in range(D):
        g = _col(gt, c, DP)
        ss = ss + g * g
    if OPT == OPT_ADAGRAD and PHASE <= 1:
        acc = tl.load(sum_sq_ptr + row, mask=head, other=0.0).to(tl.float32) + tl.math.div_rn(ss, D * 1.0)
        _put(sum_sq_ptr + row, acc, head, ukey, rglob + ROW_SUM_SQ, BF16)
        denom = tl.math.sqrt_rn(acc) + eps
    if OPT == OPT_ADAM and PHASE <= 1:
        t_rows = tl.load(adam_steps_ptr)
        row_bc1 = _bias_correction(ROW_B1, t_rows)
        row_bc2 = _bias_correction(ROW_B2, t_rows)

    # Pass 2: the row optimizer -> wnew (read back in the commit phase); ALPT's step gradient sum(g * lsq).
    gs = tl.zeros((BLOCK,), dtype=tl.float32)
    for c in range(D):
        g = _col(gt, c, DP)
        cv = tl.zeros((BLOCK,), dtype=tl.int32) + c
        w = _code(codes_ptr, row, cv, head, ROW_BYTES, BITS).to(tl.float32) * step
        if PHASE >= 2:  # two-pass commit (or shared steps): g may be the second pass's gradient, wnew was staged
            w_new = tl.load(wnew_ptr + pos * D + c, mask=head, other=0.0)
        elif OPT == OPT_SGD:
            w_new = w - lr * g
        elif OPT == OPT_ADAGRAD:
            w_new = w - tl.math.div_rn(lr * g, denom)
        else:
            m = tl.load(exp_avg_ptr + row * D + c, mask=head, other=0.0).to(tl.float32) * b1 + one_minus_b1 * g
            v2 = (tl.load(exp_avg_sq_ptr + row * D + c, mask=head, other=0.0).to(tl.float32) * b2
                  + one_minus_b2 * g * g)
            _put(exp_avg_ptr + row * D + c, m, head, ukey, rglob * D + c + ROW_EXP_AVG, BF16)
            _put(exp_avg_sq_ptr + row * D + c, v2, head, ukey, rglob * D + c + ROW_EXP_AVG_SQ, BF16)
            w_new = w - tl.math.div_rn(lr * tl.math.div_rn(m, row_bc1),
                                       tl.math.sqrt_rn(tl.math.div_rn(v2, row_bc2)) + eps)
        if PHASE == 0:
            wt = tl.where(cols == c, w_new[None, :], wt)
        if PHASE == 1:
            tl.store(wnew_ptr + pos * D + c, w_new, mask=head)
        if STEP_MODE != STEP_FIXED and PHASE != 1 and PHASE != 4:  # LSQ gradient of the updated row x upstream
            v = tl.math.div_rn(w_new, step)
            f = tl.floor(v)
            rnd = tl.minimum(tl.maximum(f + tl.where(v - f >= 0.5, 1.0, 0.0), QMIN), QMAX)
            lsq = rnd - tl.where((v > QMIN) & (v < QMAX), v, 0.0)
            gs = gs + g * lsq
    if PHASE == 1:  # two-pass stage: the row optimizer only
        return
    gs = gs * grad_scale
    if PHASE == 3:  # a shared step: the row's step gradient, summed per step by the wrapper
        tl.store(gstep_ptr + pos, gs, mask=head)
        return
    if STEP_MODE != STEP_FIXED and PHASE != 4:
        step = _step_update(step, gs, row, head, rglob, steps_ptr, step_m_ptr, step_v_ptr, t_update, ukey, step_lr,
                            min_step, sb1, one_minus_sb1, sb2, one_minus_sb2, step_eps, STEP_MODE, BF16)

    # Pass 3: re-quantize (DR or SR) and write the row back.
    if STOCHASTIC:
        base = (row + tl.load(key_ptr + 1)).to(tl.uint64) * D + WRITE_BACK
        zero = tl.zeros((BLOCK,), dtype=tl.uint32)
    word = tl.zeros((BLOCK,), dtype=tl.int32)
    for c in range(PADDED):
        cv = tl.zeros((BLOCK,), dtype=tl.int32) + c  # a tensor, also under the interpreter (masks must be)
        inside = cv < D
        if PHASE == 0:
            w_new = _col(wt, c, DP)
        else:
            w_new = tl.load(wnew_ptr + pos * D + c, mask=head & inside, other=0.0)
        v = tl.math.div_rn(w_new, step)
        f = tl.floor(v)
        p = v - f
        if STOCHASTIC:
            counter = base + cv.to(tl.uint64)
            r0, _, _, _ = tl.philox(ukey, (counter & 0xFFFFFFFF).to(tl.uint32), (counter >> 32).to(tl.uint32),
                                    zero, zero)
            up = ((r0 >> 8).to(tl.float32) * 5.9604644775390625e-08) < p
        else:
            up = p >= 0.5
        code = tl.minimum(tl.maximum(f + tl.where(up, 1.0, 0.0), QMIN), QMAX).to(tl.int32)
        code = tl.where(inside, code, 0)
        if BITS == 8:
            tl.store(codes_ptr + row * ROW_BYTES + c, code.to(tl.int8), mask=head & inside)
        else:  # LSB-first bit stream: a byte is stored once its last bit is in
            bit = cv * BITS
            word = word | ((code & ((1 << BITS) - 1)) << (bit & 7))
            full = (bit & 7) + BITS >= 8
            tl.store(codes_ptr + row * ROW_BYTES + (bit >> 3), (word & 0xFF).to(tl.uint8), mask=head & full)
            word = tl.where(full, word >> 8, word)



@triton.jit(do_not_specialize=["n", "num_steps", "top_stride"])
def shared_step_kernel(keys_ptr, perm_ptr, gstep_ptr, top_ptr, steps_ptr, step_m_ptr, step_v_ptr, key_ptr,
                       updates_ptr, n, num_steps, top_stride, step_lr, min_step, sb1, one_minus_sb1, sb2,
                       one_minus_sb2, step_eps, STEP_MODE: tl.constexpr, BF16: tl.constexpr, BLOCK: tl.constexpr,
                       CHUNK: tl.constexpr, LONG: tl.constexpr):
    """ALPT's update of steps shared by many rows. ``keys`` holds, stably sorted, the step index of each run
    head of the batch (``num_steps`` for the other positions), ``perm`` their positions in ``gstep`` (the rows' step
    gradients). The head of each run of equal keys sums its rows' gradients in the reference's order
    (:func:`_run_sum`, as in ``fused_update_kernel``) and updates the step and its state (16-bit draws at the
    step's index in each stream, as in the reference)."""
    pos = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = pos < n
    sidx = tl.load(keys_ptr + pos, mask=live, other=0).to(tl.int64)
    prev = tl.load(keys_ptr + pos - 1, mask=live & (pos > 0), other=-1).to(tl.int64)
    head = live & ((pos == 0) | (sidx != prev)) & (sidx < num_steps)
    t_update = tl.load(updates_ptr) + 1
    ukey = _splitmix64(tl.load(key_ptr), t_update)  # the update's key, as in fused_update_kernel
    step = tl.load(steps_ptr + sidx, mask=head, other=1.0).to(tl.float32)
    gs = _col(_run_sum(keys_ptr, perm_ptr, gstep_ptr, top_ptr, pos, sidx, head, n, top_stride, 1, 1, CHUNK, BLOCK,
                       LONG), 0, 1)
    _step_update(step, gs, sidx, head, sidx.to(tl.uint64), steps_ptr, step_m_ptr, step_v_ptr, t_update, ukey,
                 step_lr, min_step, sb1, one_minus_sb1, sb2, one_minus_sb2, step_eps, STEP_MODE, BF16)
