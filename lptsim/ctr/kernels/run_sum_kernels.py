"""Run sums of the step: each run of equal sorted ids' gradients added in the reference's fixed order.

The order (:func:`lptsim.ctr.ordered_sums.ordered_segment_sum`) is a tree over a run's ranks: level 0 adds ranks
32j .. 32j + 31 in order from 0; level k adds 32 consecutive sums of level k - 1, in order, from 0; the run's sum
is its rank 0's after the last level. A run of R ids needs only ceil(log32 R) levels: more levels add +0, which
changes nothing (a sum that starts from +0 is never -0 under round-to-nearest, and x + 0 = x for every other x).
So a run's sum can be built from any grouping of these chunks, as long as each chunk is added in order from 0.

Two pieces, no search and no compaction (the sorted keys say where runs start and end):

* :func:`_run_sum`, inlined in the update kernels: each run head's lane sums its run. A run of at most 32 ids
  (all but a few hundred at the goal shape) is summed plainly from the gradient rows; a longer one adds the
  partial sums of :func:`long_run_kernel` (the top two levels, 32 x 32 of them at most).
* :func:`long_run_kernel`: one program per 32 sorted positions. An item is 1024 consecutive ranks of a run
  longer than 32, starting at a rank that is a multiple of 1024 (times ``stride``): a [32, D] tile in which lane l
  adds chunk l (32 ranks, in order), then the 32 chunk sums added in order. Every item is its own program's work,
  so a hot id (12,848 copies at the goal shape: 13 items) spreads over 13 programs, each 32 sequential steps deep.
  A 32-position window holds at most two items (a run's head item, and one deep in the run it starts inside:
  a long run's items are >= 1024 apart and its head is > 32 after the previous run's last item), so each item
  has its own slot: (position // 32) * 2 + (rank > 0). Batches above 2**20 ids launch it again on its own
  output (``stride`` 1024, then 2**20, ...) so that the update kernel's two levels always finish the sum.

Rows and columns are taken out of a tile exactly by ``tl.sum(tl.where(select, tile, 0.0))``: the other terms are +0
and the selected value is never -0 (a sum started from +0 never is; an updated row ``w - x`` with ``w = code * step``,
a code's +0 times a positive step, is -0 only if ``w`` is), so the result is the value itself, bit for bit.
"""

from __future__ import annotations

from lptsim.ctr.kernels.version import check_triton

check_triton()

import triton  # noqa: E402
import triton.language as tl  # noqa: E402


@triton.jit
def _col(tile, c, DP: tl.constexpr):
    """Column ``c`` (of every lane) of a [DP, lanes] float32 tile, exactly (the other terms are +0; the value is
    never -0). The tiles are [columns, lanes], lanes fastest: each thread holds its lane's whole row, so this is a
    few register selects, no shuffles."""
    return tl.sum(tl.where(tl.arange(0, DP)[:, None] == c, tile, 0.0), axis=0)


@triton.jit
def _row(ptr, idx, mask, D: tl.constexpr, DP: tl.constexpr, BLOCK: tl.constexpr):
    """[DP, BLOCK]: row ``idx`` (int64, one per lane) of a (rows, D) float32 buffer, 0 in the padding columns and
    where ``mask`` is off. Loaded column by column (1-D loads), so the tile keeps the default layout, lanes
    fastest: each thread holds its lane's whole row and taking a column out (:func:`_col`) needs no shuffles
    (a 2-D load would hand the tile a columns-fastest layout, for coalescing)."""
    cols = tl.arange(0, DP)[:, None]
    tile = tl.zeros((DP, BLOCK), dtype=tl.float32)
    if DP <= 16:  # unrolled: each select is a register move
        for c in tl.static_range(D):
            tile = tl.where(cols == c, tl.load(ptr + idx * D + c, mask=mask, other=0.0)[None, :], tile)
    else:  # a loop: unrolling 128 columns made each update kernel take ~20 s to compile
        for c in range(D):
            tile = tl.where(cols == c, tl.load(ptr + idx * D + c, mask=mask, other=0.0)[None, :], tile)
    return tile


@triton.jit
def _slot(at, rank_is_positive, CHUNK: tl.constexpr):
    """Row of a long-run buffer that holds the item starting at sorted position ``at`` (int64)."""
    return (at // CHUNK) * 2 + rank_is_positive.to(tl.int64)


@triton.jit
def _run_sum(sorted_ptr, perm_ptr, grad_ptr, top_ptr, pos, key, head, n, top_stride, D: tl.constexpr,
             DP: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr, LONG: tl.constexpr):
    """[DP, BLOCK] float32 (columns x lanes): at each ``head`` lane the summed gradient row of its run (sorted
    positions ``pos``, int64; ``key`` the lane's sorted id), in the reference's order; 0 at the other lanes.
    ``grad`` holds the rows in batch order (``perm``: sorted position -> batch position). ``LONG``: a run may be
    longer than CHUNK (then ``top`` holds the run's partial sums at ranks k * ``top_stride``, from
    ``long_run_kernel``)."""
    nxt = tl.load(sorted_ptr + pos + CHUNK, mask=head & (pos + CHUNK < n), other=-1)
    long = head & (nxt == key)  # more than CHUNK copies
    acc = tl.zeros((DP, BLOCK), dtype=tl.float32)
    act = head & (long == 0)
    q = pos
    while tl.max(act.to(tl.int32), axis=0) > 0:  # a short run: its rows in batch order, from 0
        ok = act & (q < n)
        ok = ok & (tl.load(sorted_ptr + q, mask=ok, other=-1) == key)
        src = tl.load(perm_ptr + q, mask=ok, other=0).to(tl.int64)
        acc = tl.where(ok[None, :], acc + _row(grad_ptr, src, ok, D, DP, BLOCK), acc)
        act = ok
        q = q + 1
    if LONG:  # a long run: the top two levels over its partial sums (value k at rank k * top_stride)
        tot = tl.zeros((DP, BLOCK), dtype=tl.float32)
        part = tl.zeros((DP, BLOCK), dtype=tl.float32)
        act = long
        k = pos * 0
        while tl.max(act.to(tl.int32), axis=0) > 0:
            at = pos + k * top_stride
            ok = act & (at < n)
            ok = ok & (tl.load(sorted_ptr + at, mask=ok, other=-1) == key)
            v = _row(top_ptr, _slot(at, k > 0, CHUNK), ok, D, DP, BLOCK)
            part = tl.where(ok[None, :], part + v, part)
            act = ok
            k = k + 1
            flush = (k % CHUNK) == 0  # a chunk of the next level is complete (+0 where the run has ended)
            tot = tl.where(flush[None, :], tot + part, tot)
            part = tl.where(flush[None, :], 0.0, part)
        acc = tl.where(long[None, :], tot + part, acc)
    return acc


@triton.jit
def _item(sorted_ptr, perm_ptr, src_ptr, out_ptr, n, stride, at, start, key, FIRST: tl.constexpr, D: tl.constexpr,
          DP: tl.constexpr, CHUNK: tl.constexpr):
    """The sum of ranks ``at - start`` + stride * (0 .. CHUNK**2 - 1) of the run of ``key`` starting at ``start``
    (two levels of the tree), stored in the item's slot of ``out``. ``FIRST``: the values are the gradient rows
    (via ``perm``); otherwise the previous launch's items (``stride`` apart)."""
    lane = tl.arange(0, CHUNK)[:, None]  # the chunk this lane adds
    col = tl.arange(0, DP)[None, :]
    cmask = col < D
    acc = tl.zeros((CHUNK, DP), dtype=tl.float32)
    for i in range(CHUNK):
        rank = (at - start) + (stride + at * 0) * (lane * CHUNK + i)
        q = start + rank
        ok = q < n
        ok = ok & (tl.load(sorted_ptr + q, mask=ok, other=-1) == key)
        m = ok & cmask
        if FIRST:
            src = tl.load(perm_ptr + q, mask=ok, other=0).to(tl.int64)
            v = tl.load(src_ptr + src * D + col, mask=m, other=0.0)
        else:
            v = tl.load(src_ptr + _slot(q, rank > 0, CHUNK) * D + col, mask=m, other=0.0)
        acc = tl.where(m, acc + v, acc)
    tot = tl.zeros((DP,), dtype=tl.float32)
    for j in range(CHUNK):  # the chunk sums in order, from 0 (the other rows add +0)
        tot = tot + tl.sum(tl.where(lane == j, acc, 0.0), axis=0)
    c = tl.arange(0, DP)
    tl.store(out_ptr + _slot(at, at > start, CHUNK) * D + c, tot, mask=c < D)


@triton.jit(do_not_specialize=["n", "stride"])
def long_run_kernel(sorted_ptr, perm_ptr, src_ptr, out_ptr, n, stride, FIRST: tl.constexpr, D: tl.constexpr,
                    DP: tl.constexpr, CHUNK: tl.constexpr):
    """The items of the runs longer than CHUNK among sorted positions [CHUNK * pid, CHUNK * pid + CHUNK): at
    most a run's head item and one item deep inside the run holding the first position (module docstring)."""
    base = tl.program_id(0).to(tl.int64) * CHUNK
    pos = base + tl.arange(0, CHUNK)
    live = pos < n
    key = tl.load(sorted_ptr + pos, mask=live, other=-1)
    prev = tl.load(sorted_ptr + pos - 1, mask=live & (pos > 0), other=-1)
    nxt = tl.load(sorted_ptr + pos + CHUNK, mask=live & (pos + CHUNK < n), other=-1)
    head_long = live & (key != prev) & (nxt == key)
    if tl.max(head_long.to(tl.int32), axis=0) > 0:
        at = tl.max(tl.where(head_long, pos, -1), axis=0)
        _item(sorted_ptr, perm_ptr, src_ptr, out_ptr, n, stride, at, at, tl.load(sorted_ptr + at), FIRST, D, DP,
              CHUNK)
    span = (stride + base * 0) * (CHUNK * CHUNK)  # ranks per item
    back = tl.load(sorted_ptr + pos - span, mask=live & (pos >= span), other=-1)
    deep = live & (back == key)  # rank >= span: inside the run that holds position `base`
    if tl.max(deep.to(tl.int32), axis=0) > 0:
        k = tl.load(sorted_ptr + base)
        lo = base * 0
        hi = base
        while lo < hi:  # the run's start: the first position whose key is not below k
            mid = (lo + hi) // 2
            below = tl.load(sorted_ptr + mid) < k
            lo = tl.where(below, mid + 1, lo)
            hi = tl.where(below, hi, mid)
        mine = deep & ((pos - lo) % span == 0)
        if tl.max(mine.to(tl.int32), axis=0) > 0:
            at = tl.max(tl.where(mine, pos, -1), axis=0)
            _item(sorted_ptr, perm_ptr, src_ptr, out_ptr, n, stride, at, lo, k, FIRST, D, DP, CHUNK)
