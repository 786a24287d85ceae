"""Structural bounds on one training step of the kernels: device launches and scratch bytes per step.

Counted by observation (lptsim.ctr.kernels.census: every Triton launch and every dispatched torch operator), under
the interpreter here, for the goal's configuration (one-pass ALPT-2, the table defaults: bfloat16 state, row-wise
Adagrad rows, Adam steps). docs/scaling.md turns these counts into the step-time model. Before issue 27 the same
step issued 23 launches at this batch (25 at the goal batch) and 216 scratch bytes per id; after its first changes
10 launches at the goal batch (a searchsorted and four segment-sum levels) and 212 bytes per id.
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
# sort, the long runs' partial sums (one launch up to 2**20 ids), the update kernel (which sums the runs), the
# write-back counter: 6 at any batch of 33 to 2**20 ids, the goal's included.
LAUNCHES = 6
# Scratch per id: keys (4), sorted keys (4), the sort's int64 permutation (8), the gathered rows (the forward's
# output, 4 * DIM); per 32 ids, two rows of long-run partial sums (2 * 4 * DIM). No run sums or staged rows.
SCRATCH_PER_ID = 4 + 4 + 8 + 4 * DIM


def _scratch_bound(n: int) -> int:
    return SCRATCH_PER_ID * n + 2 * -(-n // 32) * 4 * DIM


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
    assert census.launches["triton:long_run_kernel"] == kernels.long_run_launches(n) == 1
    assert census.total_launches <= LAUNCHES, dict(census.launches)
    assert census.launches["triton:gather_dequant_kernel"] == 1 and census.launches["aten:sort"] == 1
    assert census.launches["triton:fused_update_kernel"] == 1
    assert not any(k in census.launches for k in ("aten:min", "aten:max", "aten:pow", "aten:cat", "aten:_to_copy",
                                                  "aten:searchsorted"))
    assert census.scratch_bytes <= _scratch_bound(n), (census.scratch_bytes, n)
    # At the goal batch (8,192 x 39 ids) the same launches: one long-run launch; 80 + 4 bytes per id at dim 16.
    assert kernels.long_run_launches(8192 * 39) == 1


def test_kernel_census_sees_launches_and_bytes():
    """The census can fail: the torch reference's step issues far more launches and allocates more per id."""
    census, n = _census("torch")
    assert census.total_launches > 3 * LAUNCHES
    with pytest.raises(AssertionError):
        assert census.scratch_bytes <= _scratch_bound(n)
