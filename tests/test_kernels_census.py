"""Structural bounds on one training step of the kernels: device launches and scratch bytes per step.

Counted by observation (lptsim.ctr.kernels.census: every Triton launch and every dispatched torch operator), under
the interpreter here, for the goal's configuration (one-pass ALPT-2, the table defaults: bfloat16 state, row-wise
Adagrad rows, Adam steps). docs/scaling.md turns these counts into the step-time model. Before issue 27 the same
step issued 23 launches at this batch (25 at the goal batch) and 216 scratch bytes per id.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

from lptsim.ctr import kernels  # noqa: E402
from lptsim.ctr.embedding import LowPrecisionEmbedding  # noqa: E402
from lptsim.ctr.kernels.census import step_census  # noqa: E402
from lptsim.ctr.table import TableOptimizer  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
ROWS, DIM, BATCH, FIELDS = 2000, 16, 8, 39
# Per step, the goal config: the gather (which checks the ids and writes 32-bit keys) and its device assert, one
# sort, one search for the runs' starts, the segment-sum levels, the update kernel, the write-back counter.
FIXED_LAUNCHES = 6  # everything but the segment-sum levels
# Scratch per id: keys (4), sorted keys (4), the sort's int64 permutation (8), run starts (4), the gathered rows
# (the forward's output, 4 * DIM), the run sums (4 * DIM) and the staged rows (4 * DIM).
SCRATCH_PER_ID = 4 + 4 + 8 + 4 + 3 * 4 * DIM


def _census(backend: str, **options):
    emb = LowPrecisionEmbedding(ROWS, DIM, bits=2, method="alpt", alpt_variant="one-pass", backend=backend,
                                **options).to(DEVICE)
    opt = TableOptimizer(emb)
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(BATCH * FIELDS, generator=gen)
    ids = ((ROWS**u - 1).long() % ROWS).view(BATCH, FIELDS).to(DEVICE)
    up = torch.randn(BATCH, FIELDS, DIM, generator=gen).to(DEVICE)

    def step():
        emb(ids).backward(up)
        opt.step()

    step()  # compile, cache the table's device tensors
    return step_census(step), ids.numel()


def test_kernel_step_launches_and_scratch_bytes():
    census, n = _census("triton")
    levels = kernels.segment_levels(n)
    assert census.launches["triton:segment_sum_kernel"] == levels
    assert census.total_launches <= FIXED_LAUNCHES + levels, dict(census.launches)
    assert census.launches["triton:gather_dequant_kernel"] == 1 and census.launches["aten:sort"] == 1
    assert not any(k in census.launches for k in ("aten:min", "aten:max", "aten:pow", "aten:cat", "aten:_to_copy"))
    assert census.scratch_bytes <= SCRATCH_PER_ID * n + 64, (census.scratch_bytes, n)
    # At the goal batch (8,192 x 39 ids) the sums take 4 levels: 10 launches, 212 bytes per id.
    assert kernels.segment_levels(8192 * 39) == 4


def test_kernel_census_sees_launches_and_bytes():
    """The census can fail: the torch reference's step issues far more launches and allocates more per id."""
    census, n = _census("torch")
    assert census.total_launches > 3 * (FIXED_LAUNCHES + kernels.segment_levels(n))
    with pytest.raises(AssertionError):
        assert census.scratch_bytes <= SCRATCH_PER_ID * n + 64
