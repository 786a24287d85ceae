"""The kernels' run sums (long_run_kernel + the update kernels' _run_sum) against the reference's fixed order.

The reference is the numba form of ``ordered_segment_sum`` (``_segment_sum_sorted``: the tree of ``chunk``-sized
sequential sums, level after level over the whole batch), independent of the kernels' grouping (plain sums for
short runs, two levels per long-run launch, the last two levels in the update kernel). A chunk smaller than the
package's 32 reaches every path with small batches: several long-run launches (``stride`` > 1, reading the previous
launch's items), items deep inside a run (the in-kernel search for the run's start), runs of exactly chunk,
chunk + 1, chunk**2 and chunk**2 + 1 ids. Comparisons are bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

triton = pytest.importorskip("triton")

import triton.language as tl  # noqa: E402

from lptsim.ctr import kernels  # noqa: E402
from lptsim.ctr.kernels.run_sum_kernels import _run_sum  # noqa: E402
from lptsim.ctr.ordered_sums import _segment_sum_sorted  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@triton.jit
def _sums_kernel(sorted_ptr, perm_ptr, grad_ptr, top_ptr, out_ptr, n, top_stride, D: tl.constexpr, DP: tl.constexpr,
                 CHUNK: tl.constexpr, BLOCK: tl.constexpr, LONG: tl.constexpr):
    """Each run's sum at its head position of ``out`` (the update kernels' first step, alone)."""
    pos = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = pos < n
    key = tl.load(sorted_ptr + pos, mask=live, other=-1).to(tl.int64)
    prev = tl.load(sorted_ptr + pos - 1, mask=live & (pos > 0), other=-1).to(tl.int64)
    head = live & (key != prev)
    acc = _run_sum(sorted_ptr, perm_ptr, grad_ptr, top_ptr, pos, key, head, n, top_stride, D, DP, CHUNK, BLOCK, LONG)
    col = tl.arange(0, DP)[:, None]
    tl.store(out_ptr + pos[None, :] * D + col, acc, mask=head[None, :] & (col < D))


def _kernel_sums(ids: torch.Tensor, values: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(sorted ids, the kernels' sum at each run head (rows elsewhere 0), long-run launches)."""
    n, dim = values.shape
    sorted_ids, perm = torch.sort(ids.to(torch.int32), stable=True)
    sums = kernels.run_sums(sorted_ids, perm, values, chunk=chunk)
    out = torch.zeros(n, dim, device=values.device)
    dp, _ = kernels.gather_block(dim)
    _sums_kernel[(kernels.triton_cdiv(n, 16),)](*sums.args(), out, n, sums.stride, D=dim, DP=dp, CHUNK=chunk,
                                                 BLOCK=16, LONG=sums.long, **kernels.LAUNCH)
    return sorted_ids, out, kernels.long_run_launches(n, chunk)


def _reference(sorted_ids: torch.Tensor, values_sorted: np.ndarray, chunk: int) -> np.ndarray:
    _, counts = torch.unique_consecutive(sorted_ids.cpu(), return_counts=True)
    starts = np.zeros(counts.numel() + 1, dtype=np.int64)
    np.cumsum(counts.numpy(), out=starts[1:])
    return _segment_sum_sorted(values_sorted.copy(), starts, sorted_ids.numel(), chunk)


# Run lengths: "edges", every boundary of the tree (the last run, the largest id, is short: it ends the batch);
# "hot", a batch just below a launch threshold with a run of more than chunk top-level values (the update kernel's
# last level then adds several chunks). Expected long-run launches for each.
BATCHES = {
    ("edges", 2): ([1, 2, 1, 2, 3, 7, 4, 5, 16, 8, 9, 23, 2], 3),
    ("edges", 4): ([1, 2, 3, 4, 5, 11, 16, 17, 54, 64, 65, 269, 3], 2),
    ("edges", 32): ([1, 2, 31, 32, 33, 67, 1024, 1025, 3106, 2], 1),
    ("hot", 2): ([3, 45, 1, 2, 10], 2),  # 61 ids: strides 1, 4 -> top stride 16, 3 values in the 45-run
    ("hot", 4): ([5, 150, 1, 4, 64], 1),  # 224 ids: top stride 16, 10 values in the 150-run, 4 in the 64-run
}
DIM = {("hot", 4): 20}  # rows wider than 16 are loaded by a loop, not unrolled; the others have 3 columns


def _batch(lengths: list[int], seed: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs of ``lengths`` (ascending ids), ids shuffled; values of mixed magnitudes (so that the order of the
    additions shows in the last bits)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.cat([torch.full((k,), 7 * i + 3) for i, k in enumerate(lengths)])
    ids = ids[torch.randperm(ids.numel(), generator=gen)]
    values = torch.randn(ids.numel(), dim, generator=gen) * 10.0 ** torch.randint(-4, 5, (ids.numel(), dim),
                                                                                generator=gen)
    return ids, values


@pytest.mark.parametrize("kind, chunk", list(BATCHES), ids=[f"{k}-{c}" for k, c in BATCHES])
def test_kernel_run_sums_match_the_reference_order(kind, chunk):
    lengths, want_launches = BATCHES[kind, chunk]
    ids, values = _batch(lengths, seed=chunk, dim=DIM.get((kind, chunk), 3))
    sorted_ids, out, launches = _kernel_sums(ids.to(DEVICE), values.to(DEVICE), chunk)
    assert launches == want_launches
    perm = torch.sort(ids.to(torch.int32), stable=True)[1]
    want = _reference(sorted_ids, values[perm].numpy(), chunk)
    head = torch.ones(ids.numel(), dtype=torch.bool)
    head[1:] = sorted_ids.cpu()[1:] != sorted_ids.cpu()[:-1]
    got = out.cpu()[head].numpy()
    assert np.array_equal(got.view(np.int32), want.view(np.int32))
    # The order shows: a plain in-order sum of each run differs from the tree for some long run.
    starts = head.nonzero().flatten().tolist() + [ids.numel()]
    plain = np.stack([values[perm][s:e].numpy().astype(np.float32).cumsum(0, dtype=np.float32)[-1]
                      for s, e in zip(starts[:-1], starts[1:], strict=True)])
    assert not np.array_equal(plain, want)


def test_long_run_launches():
    assert [kernels.long_run_launches(n) for n in (0, 32, 33, 2**20, 2**20 + 1, 2**30, 2**30 + 1)] == [
        0, 0, 1, 1, 2, 2, 3]
    assert kernels.long_run_launches(8192 * 39) == 1  # the goal batch


def test_kernel_wide_rows_match_the_reference():
    """Rows wider than 16 (update programs of 256 // 32 = 8 positions, rows loaded by a loop): one-pass ALPT with
    Adam rows and steps, bfloat16 state, a run longer than 32; every state tensor bit for bit."""
    from lptsim.ctr.embedding import LowPrecisionEmbedding
    from lptsim.ctr.table import TableOptimizer
    from lptsim.ctr.table.state import state_differences

    assert kernels.update_block(17) == 8
    kw = dict(bits=3, method="alpt", alpt_variant="one-pass", optimizer="adam", lr=0.01, init_std=0.02, seed=3,
              row_offset=11)
    tables = [LowPrecisionEmbedding(30, 17, backend=b, **kw).to(DEVICE) for b in ("torch", "triton")]
    gen = torch.Generator().manual_seed(1)
    for _ in range(1):
        ids = torch.cat([torch.full((34,), 4), torch.randint(0, 30, (6,), generator=gen)])
        ids = ids[torch.randperm(40, generator=gen)].view(20, 2).to(DEVICE)
        up = torch.randn(20, 2, 17, generator=gen).to(DEVICE)
        for emb in tables:
            (emb(ids) * up).sum().backward()
            TableOptimizer(emb).step()
    diff = state_differences(*tables)
    assert not any(diff.values()), diff
