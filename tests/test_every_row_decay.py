"""The lazy every-row weight decay (TableConfig.every_row_decay) against its independent reference: torch.optim's
SGD and Adam with ``weight_decay`` on a dense FP32 table, which decay (and, for Adam, move by the moments) every
row at every step. The lazy table replays a row's missed updates when it is next looked up; every lookup and the
flushed table must equal the dense one. Control: decay on the touched rows only is far from it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from lptsim.ctr.embedding import LowPrecisionEmbedding
from lptsim.ctr.runstore import RunWarning
from lptsim.ctr.table import TableOptimizer
from lptsim.ctr.table.backends import BackendError
from lptsim.ctr.train import warn_few_steps

ROWS, DIM, WD, STEPS = 40, 4, 0.05, 30
LR = {"sgd": 0.1, "adam": 0.01}
TOL = {"rtol": 2e-5, "atol": 1e-7}  # float32 rounding of ~30 replayed updates, in a different operation order


def batches():
    gen = torch.Generator().manual_seed(0)
    for _ in range(STEPS):  # 6 ids of 40 rows: most rows miss most updates, some miss many in a row
        yield torch.randint(0, ROWS, (6,), generator=gen), torch.randn(6, DIM, generator=gen)


def lazy_table(optimizer: str, decay: float) -> tuple[torch.nn.Module, TableOptimizer]:
    emb = LowPrecisionEmbedding(ROWS, DIM, method="fp", optimizer=optimizer, lr=LR[optimizer], init_std=0.1,
                                every_row_decay=decay, seed=3)
    return emb, TableOptimizer(emb)


def train(emb, opt, steps, extra_loss=None, start=0):
    for i, (ids, c) in enumerate(steps):
        if start + i == STEPS // 2:  # the schedule changes the lr mid-run: replays must use each update's own lr
            opt.param_groups[0]["lr"] /= 3
        out = emb(ids)
        loss = (out * c).sum() + (extra_loss(emb, ids) if extra_loss else 0)
        loss.backward()
        opt.step()
        yield out.detach()


def dense_reference(optimizer: str, w0: torch.Tensor):
    ref = torch.nn.Parameter(w0.clone())
    cls = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
    opt = cls([ref], lr=LR[optimizer], weight_decay=WD)
    outs = []
    for i, (ids, c) in enumerate(batches()):
        if i == STEPS // 2:
            opt.param_groups[0]["lr"] /= 3
        opt.zero_grad()
        out = F.embedding(ids, ref)  # dense gradient: zeros outside the batch, then + WD * w on every row
        (out * c).sum().backward()
        opt.step()
        outs.append(out.detach())
    return ref.detach(), outs


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_lazy_every_row_decay_equals_dense_decay(optimizer):
    emb, opt = lazy_table(optimizer, WD)
    ref, ref_outs = dense_reference(optimizer, emb.weight.clone())
    outs = list(train(emb, opt, batches()))
    for i, (a, b) in enumerate(zip(outs, ref_outs, strict=True)):  # every lookup sees the rows as dense left them
        torch.testing.assert_close(a, b, **TOL, msg=lambda m, i=i: f"lookup at update {i + 1}: {m}")
    opt.flush()
    torch.testing.assert_close(emb.weight, ref, **TOL)
    # control: the decay on the touched rows only (the gradient term lptsim applied before) misses it by far
    touched, topt = lazy_table(optimizer, 0.0)
    def l2(emb, ids):
        return 0.5 * WD * emb(torch.unique(ids)).pow(2).sum()
    list(train(touched, topt, batches(), extra_loss=l2))
    gap = (touched.weight - ref).abs().max()
    assert gap > 1000 * (TOL["atol"] + TOL["rtol"] * ref.abs().max()), float(gap)


def test_every_row_decay_resumes_exactly_from_a_state_dict():
    emb, opt = lazy_table("adam", WD)
    steps = list(batches())
    list(train(emb, opt, steps[:20]))
    copy, copt = lazy_table("adam", WD)
    copy.load_state_dict(emb.state_dict())  # the clocks and the lr history (20 entries) come along
    copt.load_state_dict(opt.state_dict())
    assert copy.decay.lrs.shape == (20,)
    list(train(emb, opt, steps[20:], start=20))
    list(train(copy, copt, steps[20:], start=20))
    opt.flush()
    copt.flush()
    assert torch.equal(emb.weight, copy.weight)


def test_every_row_decay_on_a_quantized_table_flushes_every_row():
    # SGD: a missed update multiplies a row by 1 - lr * wd = 0.995, so the rows that missed updates shrink (Adam's
    # momentum could move them either way)
    emb = LowPrecisionEmbedding(ROWS, DIM, method="alpt", bits=8, optimizer="sgd", lr=0.1, init_std=0.02,
                                alpt_variant="one-pass", every_row_decay=WD, seed=3)
    opt = TableOptimizer(emb)
    list(train(emb, opt, batches()))
    stale = emb.decay.row_clock < STEPS
    assert 0 < int(stale.sum()) < ROWS
    before = emb.dequantized_rows(torch.arange(ROWS)).clone()
    opt.flush()
    assert bool((emb.decay.row_clock == STEPS).all())
    after = emb.dequantized_rows(torch.arange(ROWS))
    assert torch.equal(after[~stale], before[~stale])  # up-to-date rows are not rewritten
    assert after[stale].abs().sum() < 0.99 * before[stale].abs().sum()


def test_every_row_decay_refusals():
    with pytest.raises(ValueError, match="every_row_decay needs row optimizer"):
        LowPrecisionEmbedding(ROWS, DIM, method="fp", optimizer="adagrad", every_row_decay=WD)
    with pytest.raises(BackendError, match="every_row_decay"):
        LowPrecisionEmbedding(ROWS, DIM, method="alpt", optimizer="adam", every_row_decay=WD, backend="triton")
    with pytest.raises(ValueError, match="lsq/pact"):
        LowPrecisionEmbedding(ROWS, DIM, method="lsq", optimizer="adam", every_row_decay=WD)


def test_few_steps_per_epoch_warn():
    with pytest.warns(RunWarning, match="only 1 step .*--batch-size 400"):
        assert warn_few_steps(8003, 10_000) == 1
    with pytest.warns(RunWarning, match="only 19 steps"):
        warn_few_steps(19 * 256, 256)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_few_steps(20 * 256, 256) == 20


def test_training_with_every_row_decay_saves_every_row_up_to_date(tmp_path):
    from lptsim.ctr.data.dataset import PreparedData
    from lptsim.ctr.data.synthetic import SyntheticSpec, synthetic_prepared
    from lptsim.ctr.inference import load_run
    from lptsim.ctr.train import TrainConfig, train

    prepared, _ = synthetic_prepared(tmp_path / "syn", SyntheticSpec(rows=2000, seed=2))
    cfg = TrainConfig(model="lr", epochs=1, batch_size=1000, weight_decay=1e-3, table_decay="every-row",
                      embedding_options={"optimizer": "adam"})
    assert cfg.table_config().every_row_decay == 1e-3
    with pytest.warns(RunWarning, match="only 2 steps"):  # 1,600-odd training rows at batch 1,000
        train(PreparedData.load(prepared), cfg, tmp_path / "run", progress=False)
    model, _, _ = load_run(tmp_path / "run")
    clock = model.linear.decay  # the LR model's one table
    assert int(clock.clock) == 2 and bool((clock.row_clock == clock.clock).all())  # flushed before it was saved
    # QAT weights: the dense Adam decays every row itself (weight in the decayed group, no lazy clock)
    import lptsim.ctr.train as train_module
    from lptsim.ctr.train import make_model
    qat = TrainConfig(model="lr", method="lsq", bits=4, weight_decay=1e-3, table_decay="every-row")
    assert qat.table_config().every_row_decay == 0
    model = make_model(qat, PreparedData.load(prepared))
    groups = train_module.parameter_groups(model, 1e-3, every_row=True)
    assert any(p is model.linear.weight for p in groups[0]["params"]) and groups[0]["weight_decay"] == 1e-3
    assert all(p is not model.linear.weight for p in groups[1]["params"])
