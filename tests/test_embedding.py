"""Tests of LowPrecisionEmbedding: storage, memory, rounding, row updates, ALPT's second pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lptsim.ctr.embedding import METHODS, LowPrecisionEmbedding, low_precision_tables, second_pass, step_seed
from lptsim.ctr.models import MODELS, build_model
from lptsim.quant import QuantSpec, quantize

LOW = ("lpt-dr", "lpt-sr", "alpt")


def _train_steps(emb: LowPrecisionEmbedding, steps: int = 5, seed: int = 0, rows: int = 50) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        ids = torch.randint(0, rows, (32, 3), generator=gen)
        out = emb(ids)
        (out.sum(dim=(1, 2)) ** 2).mean().backward()
        emb.apply_update()


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


def test_codes_follow_the_quant_core():
    emb = LowPrecisionEmbedding(64, 16, bits=4, method="lpt-sr", seed=3, state_dtype="float32")
    ids = torch.arange(64).view(8, 8)
    out = emb(ids)
    (out * torch.linspace(-1, 1, 16)).sum().backward()
    rows, leaf = emb._pending
    w_new = emb.row_optimizer.update(rows, leaf.detach(), leaf.grad)  # the update emb will make
    emb.row_optimizer = _Replay(w_new)  # replay it so the module writes exactly these values
    emb.apply_update()
    expected = quantize(w_new, emb.step[rows].unsqueeze(1), QuantSpec(4), "stochastic", seed=step_seed(3, 1),
                        offset=(rows * 16).numpy())
    assert torch.equal(emb.codes.read(rows), expected)


class _Replay(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = w

    def update(self, rows, w, g, lr_scale=1.0, stream=0):
        return self.w


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
    (emb(ids) * torch.linspace(-1, 1, 8)).sum().backward()  # a gradient that does not vanish at 0
    emb.apply_update()
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
        for _ in range(20):
            emb(torch.arange(20)).sum().backward()  # gradient 1 per element: update 1e-5 << step/2 = 2e-4
            emb.apply_update()
        assert (not torch.equal(emb.codes.data, start)) == moved


def test_alpt_step_grows_when_rows_clip():
    """Rows pushed far beyond the code range: the LSQ gradient enlarges their steps."""
    emb = LowPrecisionEmbedding(10, 16, bits=2, method="alpt", optimizer="sgd", lr=1.0, alpt_variant="one-pass")
    start = emb.step.clone()
    for _ in range(30):
        out = emb(torch.arange(10))
        (-(out.sum())).backward()  # push every weight up, far past qmax * step
        emb.apply_update()
    assert torch.all(emb.step > start)


def test_second_pass_leaves_batchnorm_and_rng_alone():
    torch.manual_seed(0)
    model = build_model("dnn", 200, 4, dim=8, hidden=(16,), batch_norm=True, dropout=0.5,
                        embedding=lambda n, d: LowPrecisionEmbedding(n, d, bits=4, method="alpt"))
    model.train()
    ids = torch.randint(0, 200, (64, 4))
    y = torch.randint(0, 2, (64,)).float()
    loss_fn = nn.BCEWithLogitsLoss()
    rng_before = torch.get_rng_state()
    loss = loss_fn(model(ids), y)
    loss.backward()
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm1d))
    stats = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    rng_after = torch.get_rng_state()
    tables = low_precision_tables(model)
    for t in tables:
        t.stage()
    second_pass(model, lambda: loss_fn(model(ids), y), tables, rng_before)
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    assert int(bn.num_batches_tracked) == int(stats[2]) == 1
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, [p for p in model.parameters() if p.grad is not None],
                                                          strict=True))
    assert torch.equal(torch.get_rng_state(), rng_after)
    assert tables[0]._staged["grad_hat"].abs().sum() > 0


def test_second_pass_sees_the_same_dropout_draws():
    """With unchanged rows the second pass reproduces the first: same dropout masks, same gradient."""
    torch.manual_seed(1)
    model = build_model("dnn", 50, 3, dim=4, hidden=(8,), dropout=0.5,
                        embedding=lambda n, d: LowPrecisionEmbedding(n, d, bits=8, method="alpt", lr=1e-12,
                                                                     optimizer="sgd"))
    ids = torch.randint(0, 50, (16, 3))
    y = torch.ones(16)
    loss_fn = nn.BCEWithLogitsLoss()
    rng = torch.get_rng_state()
    loss_fn(model(ids), y).backward()
    (table,) = low_precision_tables(model)
    first_grad = table._pending[1].grad.clone()
    table.stage()
    second_pass(model, lambda: loss_fn(model(ids), y), [table], rng)
    torch.testing.assert_close(table._staged["grad_hat"], first_grad)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("method", ["fp", "alpt"])
def test_every_model_takes_the_embedding(name, method):
    model = build_model(name, 300, 5, dim=8, hidden=(16, 16),
                        embedding=lambda n, d: LowPrecisionEmbedding(n, d, bits=4, method=method))
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
    (whole(ids) * up).sum().backward()
    whole.apply_update()
    (lo(ids[:3:2]) * up[:3:2]).sum().backward()
    lo.apply_update()
    (hi(ids[[1, 3]] - 25) * up[[1, 3]]).sum().backward()
    hi.apply_update()
    assert torch.equal(whole.codes.data, torch.cat([lo.codes.data, hi.codes.data]))


def test_normal_rows_are_standard_normal():
    from lptsim.ctr.embedding import normal_rows

    z = normal_rows(3, 0, 20_000, 8, 1.0).numpy().ravel()
    assert abs(z.mean()) <= 4 / np.sqrt(z.size) and abs(z.var() - 1) <= 4 * np.sqrt(2 / z.size)


def test_step_seed_spreads():
    seeds = {step_seed(0, t) for t in range(1000)} | {step_seed(1, t) for t in range(1000)}
    assert len(seeds) == 2000 and all(0 <= s < 2**64 for s in seeds)
    assert np.std([s / 2**64 for s in seeds]) == pytest.approx(np.sqrt(1 / 12), abs=0.02)
