"""Tests of the embedding tables through the public API (LowPrecisionEmbedding, TableOptimizer): storage, memory,
rounding, row updates, ALPT's second pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lptsim.ctr.contract import Stream, counter_base, step_seed
from lptsim.ctr.embedding import METHODS, LowPrecisionEmbedding, low_precision_tables
from lptsim.ctr.models import MODELS, build_model
from lptsim.ctr.table import TableOptimizer
from lptsim.quant import QuantSpec, quantize

LOW = ("lpt-dr", "lpt-sr", "alpt")


def _update(emb, loss_of) -> None:
    """One training step of a table alone: ``loss_of()`` forward, backward, TableOptimizer.step (``loss_of`` is
    also two-pass ALPT's closure)."""
    opt = TableOptimizer(emb)
    loss_of().backward()
    opt.step(loss_of)


def _train_steps(emb, steps: int = 5, seed: int = 0, rows: int = 50) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        ids = torch.randint(0, rows, (32, 3), generator=gen)
        _update(emb, lambda ids=ids: (emb(ids).sum(dim=(1, 2)) ** 2).mean())


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8, 12, 16])
@pytest.mark.parametrize("method", LOW)
def test_memory_bytes_is_what_is_held(bits, method):
    emb = LowPrecisionEmbedding(1000, 16, bits=bits, method=method)
    held = sum(b.numel() * b.element_size() for b in emb.buffers())
    assert emb.memory_bytes() == held
    codes_bytes = emb.codes.data.numel() * emb.codes.data.element_size()
    expected_codes = 1000 * 16 * (1 if bits == 8 else 2 if bits > 8 else bits / 8)
    assert codes_bytes == expected_codes
    # No FP32 table survives: every float buffer is per row (steps, adagrad), never rows x dim.
    for b in emb.buffers():
        if b.is_floating_point():
            assert b.numel() <= 1000


def test_adam_rows_cost_two_floats_per_element():
    emb = LowPrecisionEmbedding(1000, 16, bits=8, method="lpt-sr", optimizer="adam", state_dtype="float32")
    assert emb.memory_bytes() == 1000 * 16 * (1 + 8) + 1000 * 4 + 8 + 8
    half = LowPrecisionEmbedding(1000, 16, bits=8, method="lpt-sr", optimizer="adam")  # the default: bf16 state
    assert half.memory_bytes() == 1000 * 16 * (1 + 4) + 1000 * 2 + 8 + 8
    fp = LowPrecisionEmbedding(1000, 16, method="fp", optimizer="adam")
    assert fp.memory_bytes() == 3 * 4 * 1000 * 16 + 8  # FP32 rows + Adam's two moments + its step count
    lsq = LowPrecisionEmbedding(1000, 16, method="lsq")
    assert lsq.memory_bytes() == 3 * 4 * (1000 * 16 + 1000)  # parameters + the dense Adam's two moments


@pytest.mark.parametrize("method", METHODS)
def test_forward_shape_and_values(method):
    emb = LowPrecisionEmbedding(100, 8, bits=4, method=method)
    ids = torch.tensor([[1, 2, 3], [3, 99, 0]])
    out = emb(ids)
    assert out.shape == (2, 3, 8) and out.dtype == torch.float32
    assert torch.equal(out[0, 2], out[1, 0])  # same id, same row


@pytest.mark.parametrize("row_offset", [0, 100])
def test_codes_follow_the_quant_core(row_offset):
    """One SGD update written back: exactly lptsim.quant's SR of w - lr * g, drawn under the update's key in the
    write-back stream at the global element (SGD written out here: an independent reference)."""
    lr = 0.05
    emb = LowPrecisionEmbedding(64, 16, bits=4, method="lpt-sr", seed=3, state_dtype="float32", optimizer="sgd",
                                lr=lr, init_std=0.05, row_offset=row_offset)
    rows = torch.arange(64)
    w = emb.dequantized_rows(rows)
    up = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    _update(emb, lambda: (emb(rows.view(8, 8)) * up.view(8, 8, 16)).sum())
    w_new = w - lr * up  # distinct ids: each row's gradient is its upstream
    expected = quantize(w_new, emb.step[rows].unsqueeze(1), QuantSpec(4), "stochastic", seed=step_seed(3, 1),
                        offset=(counter_base(Stream.WRITE_BACK) + (rows + row_offset) * 16).numpy())
    assert torch.equal(emb.codes.read(rows), expected)
    nearest = quantize(w_new, emb.step[rows].unsqueeze(1), QuantSpec(4), "nearest")
    assert not torch.equal(expected, nearest)  # the comparison sees the SR draws


def test_sr_draws_are_keyed_by_global_row():
    """Rows 3 and 5 get the same codes whether updated alone or with other rows."""
    spec = QuantSpec(4)
    w = torch.randn(10, 16) * 0.1
    step = torch.full((10, 1), 0.02)
    rows_all = torch.arange(10)
    alone = torch.tensor([3, 5])
    a = quantize(w, step, spec, "stochastic", seed=9, offset=(rows_all * 16).numpy())
    b = quantize(w[alone], step[alone], spec, "stochastic", seed=9, offset=(alone * 16).numpy())
    assert torch.equal(a[alone], b)


@pytest.mark.parametrize("method", LOW)
def test_same_seed_same_codes(method):
    a, b, c = (LowPrecisionEmbedding(50, 8, bits=4, method=method, seed=s, init_std=0.02) for s in (1, 1, 2))
    for emb in (a, b, c):
        _train_steps(emb)
    assert torch.equal(a.codes.data, b.codes.data) and torch.equal(a.step, b.step)
    assert not torch.equal(a.codes.data, c.codes.data)


@pytest.mark.parametrize("method", LOW)
def test_only_touched_rows_change(method):
    emb = LowPrecisionEmbedding(100, 8, bits=8, method=method, optimizer="adam")
    before_codes, before_step = emb.codes.data.clone(), emb.step.clone()
    ids = torch.tensor([[1, 7], [7, 42]])
    _update(emb, lambda: (emb(ids) * torch.linspace(-1, 1, 8)).sum())  # a gradient that does not vanish at 0
    changed = torch.nonzero((emb.codes.data != before_codes).any(dim=1)).flatten().tolist()
    assert set(changed) <= {1, 7, 42} and changed
    untouched = torch.ones(100, dtype=torch.bool)
    untouched[[1, 7, 42]] = False
    assert torch.equal(emb.step[untouched], before_step[untouched])


def test_out_of_range_ids_raise_index_error():
    emb = LowPrecisionEmbedding(10, 4, method="alpt")
    with pytest.raises(IndexError, match="embedding id 10 "):
        emb(torch.tensor([0, 10]))
    with pytest.raises(IndexError, match="embedding id -1 "):
        emb(torch.tensor([-1, 3]))


@pytest.mark.parametrize("kwargs, match", [
    ({"bits": 0}, "bits"), ({"bits": 17}, "bits"), ({"method": "int8"}, "method"),
    ({"optimizer": "rmsprop"}, "optimizer"), ({"alpt_variant": "three-pass"}, "alpt_variant"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LowPrecisionEmbedding(10, 4, **({"method": "alpt"} | kwargs))


def test_lpt_dr_loses_small_updates_sr_keeps_them():
    """The stagnation story on one table: tiny gradients never move DR codes; SR moves some."""
    for method, moved in (("lpt-dr", False), ("lpt-sr", True)):
        emb = LowPrecisionEmbedding(20, 16, bits=8, method=method, optimizer="sgd", lr=1e-5, init_std=0.0)
        start = emb.codes.data.clone()
        for _ in range(20):  # gradient 1 per element: update 1e-5 << step/2 = 2e-4
            _update(emb, lambda emb=emb: emb(torch.arange(20)).sum())
        assert (not torch.equal(emb.codes.data, start)) == moved


def test_alpt_step_grows_when_rows_clip():
    """Rows pushed far beyond the code range: the LSQ gradient enlarges their steps."""
    emb = LowPrecisionEmbedding(10, 16, bits=2, method="alpt", optimizer="sgd", lr=1.0, alpt_variant="one-pass")
    start = emb.step.clone()
    for _ in range(30):  # push every weight up, far past qmax * step
        _update(emb, lambda: -emb(torch.arange(10)).sum())
    assert torch.all(emb.step > start)


def test_second_pass_leaves_batchnorm_and_rng_alone():
    """TableOptimizer.step(closure): the second pass changes no BatchNorm statistic, dense gradient or RNG state,
    and its gradient reaches the steps (they move)."""
    torch.manual_seed(0)
    model = build_model("dnn", 200, 4, dim=8, hidden=(16,), batch_norm=True, dropout=0.5,
                        embedding=lambda n, d, name: LowPrecisionEmbedding(n, d, bits=4, method="alpt"))
    model.train()
    ids = torch.randint(0, 200, (64, 4))
    y = torch.randint(0, 2, (64,)).float()
    loss_fn = nn.BCEWithLogitsLoss()
    opt = TableOptimizer(model)
    rng_before = torch.get_rng_state()
    loss = loss_fn(model(ids), y)
    loss.backward()
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm1d))
    stats = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    rng_after = torch.get_rng_state()
    (table,) = low_precision_tables(model)
    steps = table.step.clone()
    calls = []

    def closure():
        calls.append(1)
        torch.set_rng_state(rng_before)
        return loss_fn(model(ids), y)

    opt.step(closure)
    assert calls == [1]
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    assert int(bn.num_batches_tracked) == int(stats[2]) == 1
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, [p for p in model.parameters() if p.grad is not None],
                                                          strict=True))
    assert torch.equal(torch.get_rng_state(), rng_after)
    assert not torch.equal(table.step, steps)  # the second pass's gradient moved the touched steps


def _alpt_dnn_steps(variant: str, replay: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(steps before, steps after) one update of a small DNN with dropout 0.5, two- or one-pass ALPT. The row
    update stays below half a step, so the second pass sees the rows the first did."""
    torch.manual_seed(1)
    model = build_model("dnn", 50, 3, dim=4, hidden=(8,), dropout=0.5,
                        embedding=lambda n, d, name: LowPrecisionEmbedding(
                            n, d, bits=8, method="alpt", lr=1e-3, optimizer="sgd", alpt_variant=variant,
                            step_optimizer="sgd", step_lr=10.0, init_std=0.02, state_dtype="float32"))
    ids = torch.randint(0, 50, (16, 3))
    y = torch.ones(16)
    loss_fn = nn.BCEWithLogitsLoss()
    opt = TableOptimizer(model)
    rng = torch.get_rng_state()
    loss_fn(model(ids), y).backward()

    def closure():
        if replay:
            torch.set_rng_state(rng)
        return loss_fn(model(ids), y)

    before = model.embedding.step.clone()
    opt.step(closure)
    return before, model.embedding.step.clone()


def test_second_pass_sees_the_same_dropout_draws():
    """With the rows unchanged by rounding, two-pass ALPT's step gradient equals one-pass's only if the closure
    replays the dropout masks: the steps after the update are then identical; without the replay they differ."""
    before, one = _alpt_dnn_steps("one-pass", replay=True)
    _, two = _alpt_dnn_steps("two-pass", replay=True)
    _, unreplayed = _alpt_dnn_steps("two-pass", replay=False)
    assert not torch.equal(one, before)  # the steps moved: the comparison is not of untouched steps
    assert torch.equal(two, one)
    assert not torch.equal(unreplayed, one)  # the control: other dropout masks, another step gradient


def test_two_pass_alpt_needs_a_closure():
    emb = LowPrecisionEmbedding(10, 4, method="alpt")
    opt = TableOptimizer(emb)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(ValueError, match="two-pass ALPT needs TableOptimizer.step"):
        opt.step()


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("method", ["fp", "alpt"])
def test_every_model_takes_the_embedding(name, method):
    model = build_model(name, 300, 5, dim=8, hidden=(16, 16),
                        embedding=lambda n, d, name: LowPrecisionEmbedding(n, d, bits=4, method=method))
    out = model(torch.randint(0, 300, (7, 5)))
    assert out.shape == (7,) and torch.isfinite(out).all()


def test_shards_reproduce_the_whole_table():
    """Initial rows and SR draws are keyed by global row: two shards equal the unsharded table."""
    whole = LowPrecisionEmbedding(40, 8, bits=4, method="lpt-sr", init_std=0.05, seed=7)
    lo = LowPrecisionEmbedding(25, 8, bits=4, method="lpt-sr", init_std=0.05, seed=7)
    hi = LowPrecisionEmbedding(15, 8, bits=4, method="lpt-sr", init_std=0.05, seed=7, row_offset=25)
    assert torch.equal(whole.codes.data, torch.cat([lo.codes.data, hi.codes.data]))
    ids = torch.tensor([3, 30, 24, 25])
    up = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    _update(whole, lambda: (whole(ids) * up).sum())
    _update(lo, lambda: (lo(ids[:3:2]) * up[:3:2]).sum())
    _update(hi, lambda: (hi(ids[[1, 3]] - 25) * up[[1, 3]]).sum())
    assert torch.equal(whole.codes.data, torch.cat([lo.codes.data, hi.codes.data]))


def test_normal_rows_are_standard_normal():
    from lptsim.ctr.table import normal_rows

    z = normal_rows(3, 0, 20_000, 8, 1.0).numpy().ravel()
    assert abs(z.mean()) <= 4 / np.sqrt(z.size) and abs(z.var() - 1) <= 4 * np.sqrt(2 / z.size)


def test_step_seed_spreads():
    seeds = {step_seed(0, t) for t in range(1000)} | {step_seed(1, t) for t in range(1000)}
    assert len(seeds) == 2000 and all(0 <= s < 2**64 for s in seeds)
    assert np.std([s / 2**64 for s in seeds]) == pytest.approx(np.sqrt(1 / 12), abs=0.02)
