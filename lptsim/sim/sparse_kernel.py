"""The numba kernel of :mod:`lptsim.sim.sparse`: one step of one seed in phases, each a plain loop over the step's
touched rows (slots) and their elements, free of branches in the element loops so that LLVM vectorises them.

Counters. Every draw is a Philox4x32-10 output of :mod:`lptsim.quant.philox` keyed by the seed's key, at the
counter ``stream << 56 | index``, one stream per use, so no two uses share a draw and every draw is fixed by what it
is for (step, row, element), never by how the work is split:

* batch (stream 1): lookup ``i`` of step ``t`` (1-based; ``L`` lookups a step) uses counter ``(t - 1) L + i``: the
  64-bit integer ``X = w0 2^32 + w3`` picks the column ``floor(X size / 2^64)`` of its alias table (exact integer
  arithmetic, no float bias) and the 53-bit uniform ``(w1 2^21 + (w2 >> 11)) 2^-53`` the accept test;
* noise (stream 2): with ``nq = ceil(d / 4)`` counters a row, element ``j`` of row ``r`` at step ``t`` is normal
  ``j // nq`` of counter ``((t - 1) n + r) nq + j % nq`` (:func:`lptsim.sim.noise.normals4`: four a counter);
* labels (stream 3): the logistic loss's ``c``-th lookup of row ``r`` at step ``t`` uses the first word of counter
  ``((t - 1) n + r) L + c``; the fm model's sample ``b`` the first word of ``(t - 1) batch + b``;
* SR write-back (stream 4): element ``j`` of row ``r`` at step ``t`` rounds with ``lptsim.quant``'s own draw, the
  uniform of counter ``((t - 1) n + r) d + j`` (:func:`lptsim.quant.rounding._round_one`).

Cost. Each phase is its own function (so it can be timed and its loops stay simple); per-seed buffers are allocated
once, never per step; per-row work is written out in the loops, since a helper taking arrays costs an atomic
reference-count pair per argument and call. What each phase costs a touched element, and the floor set by the draws
themselves (Philox for SR, Box-Muller for the noise): benchmarks/RESULTS.md, "Sparse simulator".
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from lptsim.ctr.contract import STEP_EPS  # ALPT's step optimizer
from lptsim.quant.lsq import lsq_one
from lptsim.quant.philox import philox4, uniform_at
from lptsim.quant.rounding import EXACT, _round_one
from lptsim.sim.noise import normals4

_SHIFT = 56
_S_BATCH, _S_NOISE, _S_LABEL, _S_SR = 1, 2, 3, 4
_U32 = np.uint64(32)
_EXACT = EXACT.args()  # the production rounding rule, as a compile-time constant of the kernels


@nb.njit(inline="always", cache=True)
def _ctr(stream, index):
    return np.uint64((stream << _SHIFT) | index)


@intrinsic
def _prefetch(typingctx, arr, i, j):  # noqa: ARG001
    """Ask for the cache line of arr[i, j] (2-D) ahead of its use (LLVM's prefetch: a hint, no effect on results)."""
    if not isinstance(arr, types.Array) or arr.ndim != 2:
        return None

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1], args[2]], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        # read, high locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, i, j), codegen


@nb.njit(inline="always", cache=True)
def _prefetch_row(arr, r):
    for j in range(0, arr.shape[1], 8):  # one hint per 64-byte line
        _prefetch(arr, r, j)


@nb.njit(inline="always", cache=True)
def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@nb.njit(cache=True, error_model="numpy")
def draw_batch(key, t, lk_base, lk_size, accept, alias, cols, us, ids):
    """Lookup i of step t: an alias draw within its block [lk_base[i], lk_base[i] + lk_size[i]) (module docstring).
    Two passes (the Philox draws into cols and us, then the table look-ups): so the first one vectorises."""
    lookups = ids.size
    first = _ctr(_S_BATCH, (t - 1) * lookups)
    for i in range(lookups):
        w0, w1, w2, w3 = philox4(key, first + np.uint64(i))
        size = np.uint64(lk_size[i])
        col = (np.uint64(w0) * size + ((np.uint64(w3) * size) >> _U32)) >> _U32  # floor(X size / 2^64)
        cols[i] = lk_base[i] + np.int64(col)
        us[i] = (float(w1) * 2.0**21 + float(w2 >> np.uint32(11))) * 2.0**-53
    for i in range(lookups):
        c = cols[i]
        ids[i] = c if us[i] < accept[c] else lk_base[i] + alias[c]


@nb.njit(cache=True, error_model="numpy")
def distinct_rows(ids, nfields, fm, pos, rows, cnt, samp_slot, w, wstar, m1, m2):
    """The step's distinct rows (slots, in order of first lookup) and their lookup counts; pos[r] = r's slot (the
    caller resets it to -1 after the step); fm: samp_slot[b, f] = the slot of sample b's field-f lookup.

    Each new row's entries, teacher and Adam moments are prefetched: most of a step's rows are rare ones, out of
    cache, and the noise draws that come next give the loads time to arrive."""
    nslots = 0
    adam = m1.shape[0] > 0
    for i in range(ids.size):
        r = ids[i]
        p = pos[r]
        if p < 0:
            p = nslots
            pos[r] = p
            rows[p] = r
            cnt[p] = 0
            nslots += 1
            _prefetch_row(w, r)
            _prefetch_row(wstar, r)
            if adam:
                _prefetch_row(m1, r)
                _prefetch_row(m2, r)
        cnt[p] += 1
        if fm:
            samp_slot[i // nfields, i % nfields] = p
    return nslots


@nb.njit(cache=True, error_model="numpy")
def noise(key, t, n, rows, nslots, ctrs, z, xi):
    """xi[s, j] for j < 4 nq (nq = xi.shape[1] // 4): normal j // nq of the noise counter of (t, rows[s], j % nq)
    (module docstring). The normals of all counters are drawn in one flat loop into z (4, counters), which
    vectorises across rows, then copied into the rows (contiguous runs of nq)."""
    nq = xi.shape[1] // 4
    for s in range(nslots):
        base = _ctr(_S_NOISE, ((t - 1) * n + rows[s]) * nq)
        for q in range(nq):
            ctrs[s * nq + q] = base + np.uint64(q)
    for b in range(nslots * nq):
        z0, z1, z2, z3 = normals4(key, ctrs[b])
        z[0, b] = z0
        z[1, b] = z1
        z[2, b] = z2
        z[3, b] = z3
    for s in range(nslots):
        for k in range(4):
            for q in range(nq):
                xi[s, k * nq + q] = z[k, s * nq + q]


@nb.njit(cache=True, error_model="numpy")
def gather_rows(w, rows, nslots, slot_step, vals):
    """vals[s] = the value of row rows[s]: its stored entries (values, or codes) times its step."""
    d = vals.shape[1]
    for s in range(nslots):
        r = rows[s]
        sc = slot_step[s]
        for j in range(d):
            vals[s, j] = w[r, j] * sc


@nb.njit(cache=True, error_model="numpy")
def gradients(loss, rows, cnt, nslots, vals, wstar, mu, sigma, avec, fmc, xi, labels, samp_slot, nsamp, nfields,
              out):
    """The summed gradient of each touched row (slot) at row values ``vals`` (slots x d), with the step's draws
    (noise ``xi``, label counts or labels) fixed, so a second gradient on the same batch reuses them."""
    d = out.shape[1]
    if loss == 0:
        for s in range(nslots):
            k = cnt[s]
            a = k * mu
            b = sigma * math.sqrt(k)
            r = rows[s]
            for j in range(d):
                out[s, j] = a * (vals[s, j] - wstar[r, j]) + b * xi[s, j]
    elif loss == 1:
        for s in range(nslots):
            z = 0.0
            for j in range(d):
                z += vals[s, j] * avec[j]
            r = cnt[s] * _sigmoid(z) - labels[s]
            for j in range(d):
                out[s, j] = r * avec[j]
    else:
        for s in range(nslots):
            for j in range(d):
                out[s, j] = 0.0
        tot = np.empty(d)
        for b in range(nsamp):
            for j in range(d):
                tot[j] = 0.0
            z = 0.0
            sq = 0.0
            for f in range(nfields):
                s = samp_slot[b, f]
                for j in range(d):
                    z += vals[s, j] * avec[j]
                    tot[j] += vals[s, j]
                    sq += vals[s, j] * vals[s, j]
            pair = 0.0
            for j in range(d):
                pair += tot[j] * tot[j]
            z += fmc * 0.5 * (pair - sq)
            r = _sigmoid(z) - labels[b]
            for f in range(nfields):
                s = samp_slot[b, f]
                for j in range(d):
                    out[s, j] += r * (avec[j] + fmc * (tot[j] - vals[s, j]))


@nb.njit(cache=True)
def _teacher_logit(wstar, avec, fmc, ids):
    d = wstar.shape[1]
    z, sq = 0.0, 0.0
    tot = np.zeros(d)
    for f in range(ids.size):
        for j in range(d):
            z += wstar[ids[f], j] * avec[j]
            tot[j] += wstar[ids[f], j]
            sq += wstar[ids[f], j] * wstar[ids[f], j]
    pair = 0.0
    for j in range(d):
        pair += tot[j] * tot[j]
    return z + fmc * 0.5 * (pair - sq)


@nb.njit(cache=True, error_model="numpy")
def labels_for(key, t, loss, n, batch, nfields, rows, cnt, nslots, ids, wstar, avec, fmc, labels):
    """logistic: labels[s] = how many of row rows[s]'s cnt[s] lookups drew y = 1; fm: labels[b] of sample b."""
    lookups = ids.size
    if loss == 1:
        d = wstar.shape[1]
        for s in range(nslots):
            r = rows[s]
            z = 0.0
            for j in range(d):
                z += wstar[r, j] * avec[j]
            pr = _sigmoid(z)
            y = 0.0
            for c in range(cnt[s]):
                if uniform_at(key, _ctr(_S_LABEL, ((t - 1) * n + r) * lookups + c)) < pr:
                    y += 1.0
            labels[s] = y
    else:
        for b in range(batch):
            pr = _sigmoid(_teacher_logit(wstar, avec, fmc, ids[b * nfields:(b + 1) * nfields]))
            labels[b] = 1.0 if uniform_at(key, _ctr(_S_LABEL, (t - 1) * batch + b)) < pr else 0.0


@nb.njit(cache=True, error_model="numpy")
def row_update(opt, t, rows, nslots, vals, g, lr, eps, b1, b2, touches, acc, m1, m2, half):
    """The lazy row optimizer on the touched rows: half[s] = the row's new full-precision value (and its state).

    (Plain loops, no per-row helper taking arrays: each array argument of a call costs an atomic reference count
    increment and decrement, which at 16 elements a row cost ten times the arithmetic.)"""
    d = vals.shape[1]
    for s in range(nslots):
        touches[rows[s]] += 1
    if opt == 0:
        for s in range(nslots):
            for j in range(d):
                half[s, j] = vals[s, j] - lr * g[s, j]
    elif opt == 1:
        for s in range(nslots):
            r = rows[s]
            ss = 0.0
            for j in range(d):
                ss += g[s, j] * g[s, j]
            acc[r] += ss / d
            den = math.sqrt(acc[r]) + eps
            for j in range(d):
                half[s, j] = vals[s, j] - lr * g[s, j] / den
    else:
        bc1_t = 1.0 - b1**t  # lazy Adam's bias corrections (the global count), once a step
        bc2_t = 1.0 - b2**t
        for s in range(nslots):
            r = rows[s]
            tt = touches[r]  # adam_rowstep: the row's own count
            bc1 = bc1_t if opt == 2 else 1.0 - b1**tt
            bc2 = bc2_t if opt == 2 else 1.0 - b2**tt
            for j in range(d):
                mm = m1[r, j] * b1 + (1.0 - b1) * g[s, j]
                vv = m2[r, j] * b2 + (1.0 - b2) * g[s, j] * g[s, j]
                m1[r, j] = mm
                m2[r, j] = vv
                half[s, j] = vals[s, j] - lr * (mm / bc1) / (math.sqrt(vv / bc2) + eps)


@nb.njit(cache=True, error_model="numpy")
def slot_steps(steps, gran, row_field, rows, nslots, slot_idx, slot_step):
    """Each slot's step index (row, field or table) and its step now."""
    for s in range(nslots):
        r = rows[s]
        q = r if gran == 0 else (row_field[r] if gran == 1 else 0)
        slot_idx[s] = q
        slot_step[s] = steps[q]


@nb.njit(cache=True, error_model="numpy")
def alpt_nearest(rows, nslots, slot_step, half, qmin, qmax, rule, codes, vals):
    """ALPT: each touched row's nearest codes on its step and their values (where the step gradient is taken)."""
    d = half.shape[1]
    exact = rule == _EXACT
    for s in range(nslots):
        st = slot_step[s]
        if exact:  # the rule as a constant: vectorised (write_back)
            for j in range(d):
                codes[s, j] = _round_one(half[s, j], st, False, np.uint64(0), np.uint64(0), qmin, qmax, _EXACT)
        else:
            for j in range(d):
                codes[s, j] = _round_one(half[s, j], st, False, np.uint64(0), np.uint64(0), qmin, qmax, rule)
        for j in range(d):
            vals[s, j] = st * codes[s, j]


@nb.njit(cache=True, error_model="numpy")
def alpt_update(t, step_opt, nslots, slot_idx, slot_step, half, codes, g, steps, sgrad, sm, sv, qmin, qmax,
                grad_scale, step_lr, min_step, b1, b2):
    """ALPT's step update from the LSQ gradient (g: the gradient at the nearest codes); a shared step receives the
    sum over its touched rows, once; slot_step then holds the new steps."""
    d = half.shape[1]
    for s in range(nslots):
        st = slot_step[s]
        c = 0.0
        for j in range(d):
            c += g[s, j] * lsq_one(half[s, j] / st, codes[s, j], qmin, qmax)
        sgrad[slot_idx[s]] += c * grad_scale
    for s in range(nslots):
        q = slot_idx[s]
        gs = sgrad[q]
        if gs != gs:  # already applied (a shared step: its summed gradient, once)
            continue
        if step_opt == 0:
            new = steps[q] - step_lr * gs
        else:
            sm[q] = b1 * sm[q] + (1 - b1) * gs
            sv[q] = b2 * sv[q] + (1 - b2) * gs * gs
            new = steps[q] - step_lr * (sm[q] / (1 - b1**t)) / (math.sqrt(sv[q] / (1 - b2**t)) + STEP_EPS)
        steps[q] = max(new, min_step)
        sgrad[q] = np.nan
    for s in range(nslots):
        sgrad[slot_idx[s]] = 0.0
        slot_step[s] = steps[slot_idx[s]]


@nb.njit(cache=True, error_model="numpy")
def write_back(method, key, t, n, rows, nslots, half, slot_step, qmin, qmax, rule, w, last_move, pos):
    """Store the new rows: full precision (fp), or their codes on the slot's grid by DR or SR (SR element j of row r
    at step t: lptsim.quant's draw at counter ((t - 1) n + r) d + j of stream 4); note the rows that changed and
    reset their slots.

    Under the exact rule (always, outside lptsim verify --power's planted faults) the rule is passed as a constant,
    so that LLVM folds its branches and vectorises the element loop (Philox included) across the row."""
    d = half.shape[1]
    exact = rule == _EXACT
    for s in range(nslots):
        r = rows[s]
        moved = 0
        if method == 0:
            for j in range(d):
                x = half[s, j]
                moved += x != w[r, j]
                w[r, j] = x
        else:
            st = slot_step[s]
            base = _ctr(_S_SR, ((t - 1) * n + r) * d)
            if method == 1 and exact:
                for j in range(d):
                    x = _round_one(half[s, j], st, False, key, np.uint64(0), qmin, qmax, _EXACT)
                    moved += x != w[r, j]
                    w[r, j] = x
            elif exact:
                for j in range(d):
                    x = _round_one(half[s, j], st, True, key, base + np.uint64(j), qmin, qmax, _EXACT)
                    moved += x != w[r, j]
                    w[r, j] = x
            else:
                for j in range(d):
                    x = _round_one(half[s, j], st, method != 1, key, base + np.uint64(j), qmin, qmax, rule)
                    moved += x != w[r, j]
                    w[r, j] = x
        if moved:
            last_move[r] = t
        pos[r] = -1

@nb.njit(parallel=True, cache=True, error_model="numpy")
def run(keys, loss, opt, method, gran, step_opt, iters, batch, accept, alias, lk_base, lk_size, row_field, given_ids,
        wstar, mu, sigma, avec, fmc, lr, step_lr, grad_scale, min_step, qmin, qmax, rule, rec, W, steps, touches,  # noqa: N803
        last_move, hist, acc, m1, m2, eps, b1, b2, excess):
    """All seeds (one numba thread each), ``iters`` steps each, in place on W, steps and the records."""
    seeds, n, d = W.shape
    lookups = lk_base.size
    nfields = lookups // batch
    nq = (d + 3) // 4
    for si in nb.prange(seeds):
        key = keys[si]
        w = W[si]
        pos = np.full(n, -1, dtype=np.int32)
        rows = np.empty(lookups, dtype=np.int64)
        cnt = np.zeros(lookups, dtype=np.int64)
        ids = np.empty(lookups, dtype=np.int64)
        cols = np.empty(lookups, dtype=np.int64)
        us = np.empty(lookups)
        samp_slot = np.empty((batch, nfields), dtype=np.int64)
        vals = np.empty((lookups, d))
        g = np.empty((lookups, d))
        half = np.empty((lookups, d))
        xi = np.zeros((lookups, 4 * nq))  # stays zero without noise
        ctrs = np.empty(lookups * nq, dtype=np.uint64)
        z = np.empty((4, lookups * nq))
        codes = np.empty((lookups, d))
        labels = np.zeros(lookups)
        slot_idx = np.zeros(lookups, dtype=np.int64)
        slot_step = np.ones(lookups)
        nsteps = steps.shape[1]
        sgrad = np.zeros(nsteps)
        sm = np.zeros(nsteps)
        sv = np.zeros(nsteps)
        acc_si, m1_si, m2_si = acc[si], m1[si], m2[si]  # (0,) / (0, 0) when the optimizer has no such state
        k_rec = 0
        for t in range(1, iters + 1):
            # 1. the batch and its distinct rows
            if given_ids.shape[0] > 0:
                for i in range(lookups):
                    ids[i] = given_ids[t - 1, i]
            else:
                draw_batch(key, t, lk_base, lk_size, accept, alias, cols, us, ids)
            nslots = distinct_rows(ids, nfields, loss == 2, pos, rows, cnt, samp_slot, w, wstar, m1_si, m2_si)
            # 2. each slot's step (W holds values for fp, codes otherwise: a value is its code times its step *now*,
            # so a shared step that moved since the row's last write-back rescales it, as in the table)
            if method != 0:
                slot_steps(steps[si], gran, row_field, rows, nslots, slot_idx, slot_step)
            if loss == 0 and sigma > 0:  # 3. the step's draws: Gaussian noise, or labels
                noise(key, t, n, rows, nslots, ctrs, z, xi)
            elif loss != 0:
                labels_for(key, t, loss, n, batch, nfields, rows, cnt, nslots, ids, wstar, avec, fmc, labels)
            # 4. each phase over all the step's rows: gradients, the row optimizer (lazy: only touched rows and their
            # state), ALPT's step update (its gradient at the nearest point, same batch and draws), the write-back
            gather_rows(w, rows, nslots, slot_step, vals)
            gradients(loss, rows, cnt, nslots, vals, wstar, mu, sigma, avec, fmc, xi, labels, samp_slot, batch,
                      nfields, g)
            row_update(opt, t, rows, nslots, vals, g, lr, eps, b1, b2, touches[si], acc_si, m1_si, m2_si, half)
            if method == 3:  # ALPT: the step gradient at the nearest point (same batch and draws), the update
                alpt_nearest(rows, nslots, slot_step, half, qmin, qmax, rule, codes, vals)
                gradients(loss, rows, cnt, nslots, vals, wstar, mu, sigma, avec, fmc, xi, labels, samp_slot,
                          batch, nfields, g)
                alpt_update(t, step_opt, nslots, slot_idx, slot_step, half, codes, g, steps[si], sgrad, sm, sv,
                            qmin, qmax, grad_scale, step_lr, min_step, b1, b2)
            write_back(method, key, t, n, rows, nslots, half, slot_step, qmin, qmax, rule, w, last_move[si], pos)
            if k_rec < rec.size and t == rec[k_rec]:
                if hist.shape[2] > 0:
                    for q in range(nsteps):
                        hist[si, k_rec, q] = steps[si, q]
                if excess.shape[1] > 0:  # quadratic: every row's mu/2 ||w - w*||^2 now
                    for r in range(n):
                        sc = 1.0 if method == 0 else steps[si, r if gran == 0 else (row_field[r] if gran == 1 else 0)]
                        e2 = 0.0
                        for j in range(d):
                            e = w[r, j] * sc - wstar[r, j]
                            e2 += e * e
                        excess[si, k_rec, r] = 0.5 * mu * e2
                k_rec += 1
