"""Step granularity, initial rounding, the step's optimizer, 16-bit state and memory_plan.

References: hand-counted bytes, torch.optim.Adagrad, the chain rule for a shared step (sum of the per-row
gradients), and the binomial statistics of stochastic rounding (4-sigma bounds).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from lptsim.ctr.embedding import LowPrecisionEmbedding
from lptsim.ctr.memory import memory_plan
from lptsim.ctr.table import TableOptimizer, normal_rows
from lptsim.quant.floats import stochastic_cast

SIGMAS = 4.0


# -- memory ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "bits", "optimizer", "step_optimizer", "granularity", "state_dtype"), [
    cfg for cfg in itertools.product(["fp", "lpt-sr", "alpt", "lsq", "pact"], [2, 3, 8, 12],
                                     ["sgd", "adagrad", "adam"], ["adam", "adagrad", "sgd"],
                                     ["row", "field", "table"], ["float32", "bfloat16"])
    if cfg[0] == "alpt" or (cfg[3] == "adam" and (cfg[0] != "fp" or cfg[4] == "row"))])
def test_memory_plan_matches_allocated_tables(method, bits, optimizer, step_optimizer, granularity, state_dtype):
    emb = LowPrecisionEmbedding(37, 7, bits=bits, method=method, optimizer=optimizer, step_optimizer=step_optimizer,
                                step_granularity=granularity, field_starts=[0, 5, 11], state_dtype=state_dtype)
    plan = memory_plan(37, 7, bits, method, optimizer, step_optimizer, granularity, num_fields=3,
                       state_dtype=state_dtype)
    assert plan.total == emb.memory_bytes()


def test_memory_plan_by_hand():
    """2-bit, dim 16: 4 B of codes per row; with bf16 step, row-wise Adagrad and Adagrad on the step, 6 B more."""
    rows = 1000
    lean = memory_plan(rows, 16, 2, "alpt", "adagrad", "adagrad", "row", state_dtype="bfloat16")
    assert (lean.table, lean.steps, lean.row_state, lean.step_state) == (4 * rows, 2 * rows, 2 * rows, 2 * rows)
    assert lean.counters == 8
    old = memory_plan(rows, 16, 2, "alpt", "adagrad", "adam", "row")
    assert old.total - old.table == 16 * rows + 8  # the 16 B/row beside the codes
    fp_adam = memory_plan(rows, 16, 8, "fp", "adam")
    assert fp_adam.total == 64 * rows + 2 * 64 * rows + 8
    # the Criteo-size figures: 0.68 GB for ALPT-2 as it was, 0.41 GB for codes + step + row-wise Adagrad
    criteo = 33_760_000
    assert memory_plan(criteo, 16, 2, "alpt", "adagrad", "adam").total / 1e9 == pytest.approx(0.68, abs=0.005)
    assert memory_plan(criteo, 16, 2, "alpt", "adagrad", "sgd").total / 1e9 == pytest.approx(0.41, abs=0.005)
    with pytest.raises(ValueError, match="step_optimizer"):
        memory_plan(rows, 16, 2, step_optimizer="rmsprop")


# -- 16-bit state -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_stochastic_cast_is_unbiased(dtype):
    n = 100_000
    x = torch.full((n,), 0.3 + 1e-4, dtype=torch.float32)
    y = stochastic_cast(x, dtype, seed=5, counters=np.arange(n, dtype=np.uint64))
    lo, hi = y.min().double(), y.max().double()
    assert set(y.unique().tolist()) == {lo.item(), hi.item()}  # only the two neighbours
    assert lo < x[0].double() < hi
    p = (x[0].double() - lo) / (hi - lo)
    sigma = math.sqrt(p * (1 - p) / n) * (hi - lo)
    assert abs(y.double().mean() - x[0].double()) < SIGMAS * sigma
    nearest = x.to(dtype).double().mean()  # the control: round-to-nearest is biased by far more than 4 sigma
    assert abs(nearest - x[0].double()) > SIGMAS * sigma


def test_stochastic_cast_keeps_representable_values_and_is_keyed():
    x = torch.tensor([1.0, -2.5, 0.0, 3.0e38, float("inf")])
    y = stochastic_cast(x, torch.bfloat16, seed=1, counters=np.arange(5, dtype=np.uint64))
    assert y[:3].tolist() == [1.0, -2.5, 0.0] and math.isinf(y[4].item())
    z = torch.rand(64) * 1e-3
    a = stochastic_cast(z, torch.float16, seed=9, counters=np.arange(64, dtype=np.uint64))
    b = torch.cat([stochastic_cast(z[:10], torch.float16, 9, np.arange(10, dtype=np.uint64)),
                   stochastic_cast(z[10:], torch.float16, 9, np.arange(10, 64, dtype=np.uint64))])
    assert torch.equal(a, b)  # chunking does not change the draws


def test_bf16_adagrad_state_keeps_small_increments():
    """An Adagrad accumulator of 1.0 grows by 1e-3 per step: bf16 round-to-nearest loses every increment
    (spacing 2^-7); SR keeps them on average."""
    rows, steps = 2000, 20
    emb = LowPrecisionEmbedding(rows, 4, bits=8, method="lpt-sr", optimizer="adagrad", state_dtype="bfloat16")
    emb.row_state.sum_sq.fill_(1.0)
    opt = TableOptimizer(emb)
    ids = torch.arange(rows)
    g = torch.full((rows, 4), math.sqrt(1e-3))
    for _ in range(steps):
        (emb(ids) * g).sum().backward()  # distinct ids: each row's gradient is g
        opt.step()
    mean = emb.row_state.sum_sq.double().mean().item()
    expected = 1.0 + steps * 1e-3
    spacing = 2.0**-7
    sigma = spacing / 2 * math.sqrt(steps / rows)  # each write adds at most Var = spacing^2/4
    assert abs(mean - expected) < SIGMAS * sigma
    assert abs(1.0 - expected) > SIGMAS * sigma  # the control: nearest rounding would stay at 1.0


# -- initial rounding -------------------------------------------------------------------------------------------
def test_stochastic_initial_rounding_is_unbiased_and_sharded_alike():
    rows, dim, std = 4000, 16, 2e-3
    nearest = LowPrecisionEmbedding(rows, dim, bits=2, method="lpt-sr", init_std=std, init_rounding="nearest")
    sr = LowPrecisionEmbedding(rows, dim, bits=2, method="lpt-sr", init_std=std, init_rounding="stochastic")
    ids = torch.arange(rows)
    init = normal_rows(0, 0, rows, dim, std)
    step = sr.step0
    assert torch.count_nonzero(nearest.codes.read(ids)) == 0  # the control: every 2-bit row starts at zero
    err = (sr.dequantized_rows(ids) - init).double()
    p = (init / step).abs().double()  # |x| < step/2: rounds away from 0 with probability |x|/step
    sigma = step * torch.sqrt((p * (1 - p)).sum()).item()
    assert abs(err.sum().item()) < SIGMAS * sigma
    shard = LowPrecisionEmbedding(1000, dim, bits=2, method="lpt-sr", init_std=std, init_rounding="stochastic",
                                  row_offset=1500)
    assert torch.equal(shard.codes.read(torch.arange(1000)), sr.codes.read(torch.arange(1500, 2500)))


# -- step granularity -------------------------------------------------------------------------------------------
def _one_update(emb, ids: torch.Tensor, grad_of_rows: torch.Tensor) -> None:
    assert not emb.config.two_pass  # one-pass ALPT: the first backward's gradient, no closure
    opt = TableOptimizer(emb)
    (emb(ids) * grad_of_rows).sum().backward()
    opt.step()


@pytest.mark.parametrize("granularity", ["table", "field"])
def test_shared_step_gets_the_sum_of_its_rows_gradients(granularity):
    """With SGD on the steps, a shared step moves by the sum of the moves the per-row steps make."""
    starts = [0, 8, 20]
    kw = dict(bits=4, method="alpt", step_optimizer="sgd", step_lr=0.5, field_starts=starts, init_std=0.02,
              alpt_variant="one-pass", state_dtype="float32")
    per_row = LowPrecisionEmbedding(30, 6, step_granularity="row", **kw)
    shared = LowPrecisionEmbedding(30, 6, step_granularity=granularity, **kw)
    ids = torch.tensor([1, 3, 9, 12, 25, 29])
    g = torch.randn(len(ids), 6, generator=torch.Generator().manual_seed(0))
    before_row, before_shared = per_row.step.clone(), shared.step.clone()
    _one_update(per_row, ids, g)
    _one_update(shared, ids, g)
    moves = per_row.step - before_row
    owner = torch.zeros(30, dtype=torch.long) if granularity == "table" else \
        torch.searchsorted(torch.tensor(starts), torch.arange(30), right=True) - 1
    expected = torch.zeros_like(before_shared).index_add_(0, owner, moves)
    torch.testing.assert_close(shared.step - before_shared, expected, rtol=1e-5, atol=1e-9)
    assert expected.abs().min() > 0  # every shared step moved: the comparison is not 0 == 0
    # fixed-step LPT with a shared step: the forward uses it
    lpt = LowPrecisionEmbedding(30, 6, bits=4, method="lpt-dr", step_granularity=granularity, field_starts=starts)
    assert lpt.step.numel() == (1 if granularity == "table" else 3)


def test_step_adagrad_matches_torch_optim():
    """The step's Adagrad against torch.optim.Adagrad, fed the gradient the SGD variant reveals."""
    kw = dict(bits=4, method="alpt", init_std=0.02, alpt_variant="one-pass", step_lr=0.1, state_dtype="float32")
    ids = torch.tensor([0, 2, 5, 7])
    g = torch.randn(len(ids), 8, generator=torch.Generator().manual_seed(1))
    sgd = LowPrecisionEmbedding(10, 8, step_optimizer="sgd", **kw)
    before = sgd.step.clone()
    _one_update(sgd, ids, g)
    lr = kw["step_lr"] * sgd.step0
    grad = (before - sgd.step) / lr  # SGD: step -= lr * grad
    ada = LowPrecisionEmbedding(10, 8, step_optimizer="adagrad", **kw)
    _one_update(ada, ids, g)
    ref = before.clone().requires_grad_(True)
    opt = torch.optim.Adagrad([ref], lr=lr, eps=1e-12)
    ref.grad = grad
    opt.step()
    torch.testing.assert_close(ada.step, ref.detach().clamp_min(1e-8), rtol=1e-5, atol=1e-10)
    torch.testing.assert_close(ada.step_state.sum_sq, opt.state[ref]["sum"], rtol=1e-5, atol=1e-14)


def test_defaults_keep_training_state_within_codes_plus_8_bytes_per_row():
    """The chosen defaults (analysis/results/alpt_defaults): stochastic initial rounding and bfloat16 state for the
    low-precision tables, float32 for the FP baseline; ALPT-2 at dim 16 holds codes + at most 8 B/row."""
    rows = 500
    alpt = LowPrecisionEmbedding(rows, 16, bits=2, method="alpt")
    assert alpt.config.init_rounding == "stochastic" and alpt.step.dtype == torch.bfloat16
    assert alpt.row_state.sum_sq.dtype == torch.bfloat16 and alpt.step_state.m.dtype == torch.bfloat16
    codes = rows * 4
    assert alpt.memory_bytes() - codes <= 8 * rows + 16  # + the two int64 counters
    fp = LowPrecisionEmbedding(rows, 16, method="fp")
    assert fp.row_state.sum_sq.dtype == torch.float32


def test_field_granularity_needs_field_starts():
    with pytest.raises(ValueError, match="field_starts"):
        LowPrecisionEmbedding(10, 4, method="alpt", step_granularity="field")
    with pytest.raises(ValueError, match="step_granularity"):
        LowPrecisionEmbedding(10, 4, method="alpt", step_granularity="block")
    with pytest.raises(ValueError, match="state_dtype"):
        LowPrecisionEmbedding(10, 4, method="alpt", state_dtype="float64")
