"""Protocol knobs of the trainer, each against an independent reference: dense init statistics, the L2
gradient in closed form, torch's own clip_grad_norm_, FuxiCTR's reduce-on-plateau rule, BatchNorm
statistics computed directly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import lptsim.ctr.train as train_module
from lptsim.ctr import checkpoint
from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.data.synthetic import SyntheticSpec, synthetic_prepared
from lptsim.ctr.embedding import LowPrecisionEmbedding
from lptsim.ctr.models import build_model, init_dense
from lptsim.ctr.parallel import Local
from lptsim.ctr.protocol import TouchedRowsL2, clip_gradients, make_scheduler, refresh_batch_norm
from lptsim.ctr.table import TableOptimizer
from lptsim.ctr.train import TrainConfig, make_model, train


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> PreparedData:
    prepared, _ = synthetic_prepared(tmp_path_factory.mktemp("syn"), SyntheticSpec(rows=2000, seed=5))
    return PreparedData.load(prepared)


@pytest.mark.parametrize("scheme", ["xavier_normal", "kaiming"])
def test_dense_init_matches_its_distribution(scheme):
    torch.manual_seed(0)
    model = build_model("dcn", 1000, 25, dim=16, hidden=(400, 400), cross_layers=2)
    init_dense(model, scheme)
    width = 25 * 16
    layers = [(m.weight, m.in_features, m.out_features, m.bias) for m in model.modules() if isinstance(m, nn.Linear)]
    layers += [(w.view(1, -1), width, 1, None) for w in model.cross_w]
    for w, fan_in, fan_out, bias in layers:
        std = math.sqrt(2 / (fan_in + fan_out)) if scheme == "xavier_normal" else math.sqrt(2 / fan_in)
        n = w.numel()
        # sample std of n normals: relative standard error 1/sqrt(2n); 4 sigma
        w = w.detach()
        assert float(w.std()) == pytest.approx(std, rel=4 / math.sqrt(2 * n))
        assert abs(float(w.mean())) < 4 * std / math.sqrt(n)
        if bias is not None:
            assert torch.count_nonzero(bias) == 0


def test_torch_init_leaves_the_model_alone():
    torch.manual_seed(0)
    a = build_model("dnn", 100, 5, hidden=(8,))
    torch.manual_seed(0)
    b = build_model("dnn", 100, 5, hidden=(8,))
    init_dense(b, "torch")
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), k


@pytest.mark.parametrize("method,bits", [("fp", 8), ("lpt-sr", 4), ("alpt", 2)])
def test_l2_adds_lambda_w_to_each_touched_rows_gradient(method, bits):
    lam = 0.3
    ids = torch.tensor([[3, 7, 3], [7, 9, 11]])
    head = torch.randn(6 * 4, generator=torch.Generator().manual_seed(0))
    grads, values = [], []
    for with_l2 in (False, True):
        table = LowPrecisionEmbedding(50, 4, method=method, bits=bits, init_std=0.1, seed=1).train()
        l2 = TouchedRowsL2([table], lam if with_l2 else 0.0)
        out = table(ids)
        penalty = l2.penalty()
        (out.flatten() @ head + penalty).backward()
        (touched,) = TableOptimizer(table).touched_rows()
        grads.append(touched.grad.clone())
        values.append((touched.rows, touched.values.clone(), penalty))
    rows, w, penalty = values[1]
    assert rows.tolist() == [3, 7, 9, 11]
    np.testing.assert_allclose(grads[1] - grads[0], lam * w, rtol=1e-6, atol=1e-7)
    assert float(penalty.detach()) == pytest.approx(0.5 * lam * float((w.double() ** 2).sum()), rel=1e-6)


def test_trainer_l2_and_table_weight_decay_in_closed_form(data, tmp_path):
    """One SGD step on the whole training split: the table moves by -lr * lambda * w0 more on touched rows."""
    n = data.labels["train"].shape[0]
    base = dict(model="lr", epochs=1, batch_size=n, method="fp", embedding_options={"optimizer": "sgd", "lr": 0.5},
                seed=3)
    tables = {}
    for name, extra in (("plain", {}), ("l2", {"embedding_l2": 0.1}), ("wd", {"weight_decay": 0.1})):
        train(data, TrainConfig(**base, **extra), tmp_path / name, progress=False)
        tables[name] = checkpoint.load(tmp_path / name / "checkpoint.pt")["model"]["linear.weight"]
    torch.manual_seed(3)
    w0 = make_model(TrainConfig(**base), data).linear.weight
    touched = np.zeros(data.num_embeddings, bool)
    touched[np.unique(np.asarray(data.ids["train"]))] = True
    diff = (tables["l2"] - tables["plain"]).numpy()
    # both runs round their new rows to float32: a few ulps of the largest row value
    ulps = 4 * np.finfo(np.float32).eps * float(tables["plain"].abs().max())
    np.testing.assert_allclose(diff[touched], (-0.5 * 0.1 * w0).detach().numpy()[touched], rtol=0, atol=ulps)
    assert np.abs(diff[touched]).max() > 100 * ulps  # the term is well above that noise
    assert np.all(diff[~touched] == 0)
    assert torch.equal(tables["wd"], tables["l2"])  # weight decay reaches the table as the same term


def test_weight_decay_groups(data):
    torch.manual_seed(0)
    model = make_model(TrainConfig(model="dnn", hidden=(8,), method="lsq", bits=4), data)
    groups = train_module.parameter_groups(model, 3e-6)
    table = {id(p) for p in model.embedding.parameters()}
    assert groups[0]["weight_decay"] == 3e-6 and not any(id(p) in table for p in groups[0]["params"])
    assert groups[1]["weight_decay"] == 0 and {id(p) for p in groups[1]["params"]} == table
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("max_norm", [1e-3, 6.0, 1e3])  # 6: just above the norm (about 4.6), no scaling
def test_clip_gradients_matches_torch(max_norm):
    gen = torch.Generator().manual_seed(0)
    ours = [torch.zeros(s, requires_grad=True) for s in ((3, 4), (5,), (2, 2))]
    ref = [torch.zeros(s, requires_grad=True) for s in ((3, 4), (5,), (2, 2))]
    for a, b in zip(ours, ref, strict=True):
        a.grad = torch.randn(a.shape, generator=gen)
        b.grad = a.grad.clone()
    norm = clip_gradients([a.grad for a in ours], max_norm)
    ref_norm = torch.nn.utils.clip_grad_norm_(ref, max_norm)
    assert norm == pytest.approx(float(ref_norm), rel=1e-6)
    assert max_norm != 6.0 or 1 < max_norm / norm < 2  # the case where only "never scale up" keeps grads as they are
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a.grad, b.grad)


def test_trainer_clip_covers_dense_and_touched_rows(data):
    torch.manual_seed(0)
    model = make_model(TrainConfig(model="dnn", hidden=(8,), method="lpt-sr", bits=4), data).train()
    ids = torch.as_tensor(np.array(data.ids["train"][:64]), dtype=torch.int64)
    y = torch.as_tensor(np.array(data.labels["train"][:64]), dtype=torch.float32)
    table_opt = TableOptimizer(model)
    train_module.batch_loss(model(ids), y, 1, 64).backward()
    grads = [p.grad for p in train_module.dense_parameters(model)] + [t.grad for t in table_opt.touched_rows()]
    assert len(grads) == len(train_module.dense_parameters(model)) + 1  # the dense layers and the table's rows
    holders = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for h, g in zip(holders, grads, strict=True):
        h.grad = g.clone()
    ref_norm = torch.nn.utils.clip_grad_norm_(holders, 0.01)
    assert float(ref_norm) > 0.01  # the clip acts
    train_module.clip_touched(model, table_opt, 0.01, Local())
    for g, h in zip(grads, holders, strict=True):
        torch.testing.assert_close(g, h.grad)
    # the clipped row gradient is what the update reads: the step moves the rows by -lr * clipped gradient
    (touched,) = table_opt.touched_rows()
    assert touched.grad is grads[-1]


def _fuxictr_lrs(aucs, lr, factor=0.1, min_lr=1e-6, min_delta=1e-6):
    """FuxiCTR 2.x checkpoint_and_earlystop: every epoch without a gain of min_delta multiplies the lr by factor."""
    best, out = -math.inf, []
    for auc in aucs:
        out.append(lr)
        if auc < best + min_delta:
            lr = max(lr * factor, min_lr)
        else:
            best = auc
    return out


def test_plateau_schedule_follows_fuxictr_rule():
    aucs = [0.70, 0.71, 0.7100005, 0.705, 0.72, 0.72, 0.69, 0.68, 0.67]
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
    sched = make_scheduler("plateau", opt, (), 0.1, 0, 1e-6)
    lrs = []
    for auc in aucs:
        lrs.append(opt.param_groups[0]["lr"])
        sched.step(auc)
    np.testing.assert_allclose(lrs, _fuxictr_lrs(aucs, 1e-3), rtol=1e-9)
    assert min(lrs) == pytest.approx(1e-6)  # the floor is reached and held


def test_trainer_plateau_and_no_shuffle(data, tmp_path, monkeypatch):
    orders = []
    real = Local.batches

    def spy(self, data_, split, batch_size, shuffle=False, seed=0, epoch=0, skip=0):
        if split == "train":
            orders.append(shuffle)
        return real(self, data_, split, batch_size, shuffle=shuffle, seed=seed, epoch=epoch, skip=skip)

    monkeypatch.setattr(Local, "batches", spy)
    cfg = TrainConfig(model="dnn", hidden=(16,), epochs=4, patience=4, batch_size=256, lr=1e-2,
                      lr_schedule="plateau", shuffle=False, embedding_options={"lr": 0.1})
    train(data, cfg, tmp_path, progress=False)
    log = json.loads((tmp_path / "log.json").read_text())
    lrs = [row["lr"] for row in log]
    assert lrs == pytest.approx(_fuxictr_lrs([row["val_auc"] for row in log], 1e-2))
    assert lrs[-1] < lrs[0]  # the plateau rule acted in this run (it overfits the small split)
    assert orders == [False] * 4


def test_refresh_batch_norm_gives_the_training_statistics(data):
    torch.manual_seed(0)
    model = make_model(TrainConfig(model="dnn", hidden=(6, 5), batch_norm=True), data)
    ids = torch.as_tensor(np.array(data.ids["train"]), dtype=torch.int64)
    with torch.no_grad():
        model.mlp[1].running_mean.fill_(7.0)
        h = model.mlp[0](model.embedding(ids).flatten(1)).double()
    assert refresh_batch_norm(model, [ids[:1000], ids[1000:]]) == 2
    bn = model.mlp[1]
    ref_mean = (h[:1000].mean(0) + h[1000:].mean(0)) / 2
    ref_var = (h[:1000].var(0) + h[1000:].var(0)) / 2  # unbiased, averaged over the two batches
    torch.testing.assert_close(bn.running_mean.double(), ref_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var.double(), ref_var, rtol=1e-5, atol=1e-6)
    assert bn.momentum == 0.1 and int(bn.num_batches_tracked) == 2


def test_trainer_refreshes_before_evaluation(data, tmp_path):
    n = data.labels["train"].shape[0]
    cfg = TrainConfig(model="dnn", hidden=(6,), batch_norm=True, bn_refresh=True, epochs=1, batch_size=n // 4 + 1)
    train(data, cfg, tmp_path, progress=False)
    state = checkpoint.load(tmp_path / "best.pt")["model"]
    torch.manual_seed(0)
    model = make_model(cfg, data)
    model.load_state_dict(state)
    ids = torch.as_tensor(np.array(data.ids["train"]), dtype=torch.int64)  # one refresh batch (4 x batch size)
    with torch.no_grad():
        h = model.mlp[0](model.embedding(ids).flatten(1)).double()
    torch.testing.assert_close(state["mlp.1.running_mean"].double(), h.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(state["mlp.1.running_var"].double(), h.var(0), rtol=1e-5, atol=1e-6)


def test_resume_with_every_knob_matches_an_uninterrupted_run(data, tmp_path):
    """The plateau scheduler's state, BatchNorm refresh, L2 and clipping all survive a stop and resume."""
    base = dict(model="dnn", hidden=(16,), patience=4, batch_size=256, lr=1e-2, lr_schedule="plateau",
                batch_norm=True, bn_refresh=True, embedding_l2=1e-3, grad_clip=1.0, dense_init="torch")
    whole = train(data, TrainConfig(**base, epochs=4), tmp_path / "a", progress=False)
    train(data, TrainConfig(**base, epochs=2), tmp_path / "b", progress=False)
    resumed = train(data, TrainConfig(**base, epochs=4), tmp_path / "b", resume=True, progress=False)
    assert whole["test_auc"] == resumed["test_auc"] and whole["test_logloss"] == resumed["test_logloss"]
    logs = [json.loads((tmp_path / r / "log.json").read_text()) for r in ("a", "b")]
    assert [r["lr"] for r in logs[0]] == [r["lr"] for r in logs[1]]
    assert len({r["lr"] for r in logs[0]}) > 1  # the schedule acted inside the compared epochs


def test_runs_recorded_before_the_knobs_still_resume(data, tmp_path):
    cfg = TrainConfig(model="lr", epochs=1, batch_size=512, dense_init="torch")  # as such runs were
    train(data, cfg, tmp_path, progress=False)
    new_keys = set(train_module.LEGACY)
    record = json.loads((tmp_path / "run.json").read_text())
    record["config"] = {k: v for k, v in record["config"].items() if k not in new_keys}
    (tmp_path / "run.json").write_text(json.dumps(record))
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        if (tmp_path / name).exists():
            payload = checkpoint.load(tmp_path / name)
            payload["config"] = {k: v for k, v in payload["config"].items() if k not in new_keys}
            checkpoint.save(payload, tmp_path / name)
    with pytest.raises(ValueError, match="dense_init 'torch' there, 'xavier_normal' here"):
        train(data, TrainConfig(model="lr", epochs=2, batch_size=512), tmp_path, resume=True, progress=False)
    metrics = train(data, TrainConfig(model="lr", epochs=2, batch_size=512, dense_init="torch"), tmp_path,
                    resume=True, progress=False)
    assert metrics["epochs_run"] == 2
