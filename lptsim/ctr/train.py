"""The trainer: plain loop, Adam, step decay, early stopping on validation AUC, safe checkpoints.

A run folder holds ``run.json`` (the configuration and the data it trains on, written first),
``checkpoint.pt`` (after every epoch; the one before is kept as ``checkpoint.prev.pt``),
``best.pt`` (weights at the best validation AUC), ``log.csv`` / ``log.json`` (one row per
epoch) and, at the end, ``metrics.json``. Checkpoints hold tensors and plain values only and
carry a checksum (lptsim.ctr.checkpoint). ``resume=True`` checks ``run.json`` against the
options before any tensor is read, then continues from ``checkpoint.pt`` (or, if that file is
damaged, from the previous one); on the CPU the result equals an uninterrupted run (data order
depends only on (seed, epoch); the torch RNG state is checkpointed).

Training stops with :class:`TrainingError` when the loss is not finite or explodes (the mean of
the last batches exceeds ``DIVERGENCE_FACTOR`` times the log loss of a constant predictor).

Protocol options (peers' settings; see lptsim.ctr.protocol and lptsim.ctr.presets): dense
initialisation, embedding L2 on the touched rows, weight decay (dense Adam's coupled decay; for the
tables the same ``wd * w`` on the touched rows' gradient), gradient-norm clipping over the dense
gradients and the touched rows' gradients together, step or reduce-on-plateau learning rate (the
tables' row optimizers follow the same lr ratio), shuffling, BatchNorm, and a BatchNorm-statistics
refresh (one train-mode pass over the training split without updates) before each evaluation.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
import warnings
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from sklearn.metrics import log_loss, roc_auc_score
from torch import nn
from tqdm.auto import tqdm

from lptsim import __version__
from lptsim.atomic import write_json_atomic, write_text_atomic
from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.data.prepare import SPLITS, split_problems
from lptsim.ctr.embedding import embedding_factory, low_precision_tables, second_pass
from lptsim.ctr.models import DENSE_INITS, build_model, init_dense
from lptsim.ctr.parallel import Local
from lptsim.ctr.protocol import TouchedRowsL2, clip_gradients, embedding_modules, make_scheduler, refresh_batch_norm
from lptsim.outdir import claim

DIVERGENCE_FACTOR = 10.0  # stop when the recent loss is this many times a constant predictor's
DIVERGENCE_WINDOW = 20  # batches averaged for that test
MUTABLE = ("epochs", "device")  # options a resumed run may change (extend it, move it)
# Options added after runs were first recorded, with the behaviour those runs had (for resuming them).
LEGACY = {"dense_init": "torch", "embedding_l2": 0.0, "weight_decay": 0.0, "grad_clip": 0.0, "lr_schedule": "step",
          "plateau_patience": 0, "min_lr": 1e-6, "shuffle": True, "bn_refresh": False}
LR_SCHEDULES = ("step", "plateau", "none")


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite or exploding loss); the last good checkpoint is left intact."""


class RunWarning(UserWarning):
    """Something a user should know about a run that still goes on (e.g. resumed from an older checkpoint)."""


def check_device(device: str) -> None:
    """Refuse a device torch cannot use here, with a message that says what is available."""
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {device!r} is not a device name torch knows; use cpu, cuda or cuda:N") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: torch sees no CUDA GPU on this machine; use --device cpu")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                             f"numbered from 0")
    elif d.type != "cpu":
        raise ValueError(f"device {device!r}: lptsim trains on cpu or cuda")


@dataclass
class TrainConfig:
    """Everything that defines a run (saved in the checkpoint and in metrics.json)."""

    model: str = "dcn"
    method: str = "fp"
    bits: int = 8
    dim: int = 16
    hidden: tuple[int, ...] = (400, 400, 400)
    dropout: float = 0.0
    batch_norm: bool = False
    cross_layers: int = 3
    epochs: int = 10
    batch_size: int = 2048
    lr: float = 1e-3
    lr_milestones: tuple[int, ...] = (6, 9)  # divide the lr by 10 after these epochs (1-based)
    lr_gamma: float = 0.1  # the factor of both schedules
    patience: int = 2  # epochs without a better validation AUC before stopping
    seed: int = 0
    device: str = "cpu"
    embedding_options: dict = field(default_factory=dict)  # LowPrecisionEmbedding keyword arguments
    # torch | xavier_normal | kaiming (lptsim.ctr.models.init_dense). Xavier-normal (FuxiCTR's) by measurement:
    # on the shared Criteo sample it beat torch's default by 0.009 AUC (DNN) and 0.002 (DCN), 3 seeds each
    # (analysis/results/ctr/PRACTICE.md); runs recorded before this option existed used torch's default.
    dense_init: str = "xavier_normal"
    embedding_l2: float = 0.0  # lambda of lambda/2 * ||E_r||^2 over the rows a batch touches
    weight_decay: float = 0.0  # Adam's coupled decay on dense weights; the same on the touched table rows
    grad_clip: float = 0.0  # max 2-norm of the dense and touched-row gradients together; 0: no clipping
    lr_schedule: str = "step"  # step (lr_milestones) | plateau (validation AUC) | none
    plateau_patience: int = 0  # plateau: epochs without a gain before the lr drops (FuxiCTR: 0)
    min_lr: float = 1e-6  # plateau: the lr floor
    shuffle: bool = True  # reshuffle the training rows every epoch (False: file order)
    bn_refresh: bool = False  # recompute BatchNorm statistics with one pass over train before each evaluation

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        self.lr_milestones = tuple(self.lr_milestones)
        for name in ("epochs", "batch_size", "dim", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "lr_gamma"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if any(h < 1 for h in self.hidden) or any(m < 1 for m in self.lr_milestones):
            raise ValueError(f"hidden sizes and lr milestones must be >= 1, got {self.hidden} and "
                             f"{self.lr_milestones}")
        for name in ("embedding_l2", "weight_decay", "grad_clip", "min_lr"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.dense_init not in DENSE_INITS:
            raise ValueError(f"dense_init must be one of {DENSE_INITS}, got {self.dense_init!r}")
        if self.plateau_patience < 0 or self.cross_layers < 0:
            raise ValueError("plateau_patience and cross_layers must be >= 0")
        if not isinstance(self.embedding_options, dict):
            raise ValueError(f"embedding_options must be a table of LowPrecisionEmbedding options, got "
                             f"{self.embedding_options!r}")
        check_device(self.device)


@torch.no_grad()
def evaluate(model: nn.Module, data: PreparedData, split: str, batch_size: int, device: str,
             ctx: Local | None = None) -> dict[str, float]:
    """AUC (scikit-learn) and log loss on a split, in eval mode (over all ranks' parts)."""
    ctx = ctx or Local()
    model.eval()
    preds, labels = [], []
    for ids, y, _ in ctx.batches(data, split, batch_size):
        preds.append(torch.sigmoid(model(ids.to(device))).cpu().double().numpy())
        labels.append(y.numpy())
    p, y = ctx.gather(np.concatenate(preds) if preds else np.zeros(0), np.concatenate(labels) if labels else
                      np.zeros(0))
    if y.size == 0 or y.min() == y.max():
        raise ValueError(f"split {split!r} needs both classes to compute AUC (rows: {y.size})")
    if not np.isfinite(p).all():
        raise TrainingError(f"the model's predictions on the {split} split are not finite (the weights diverged)")
    return auc_logloss(y, p)


def auc_logloss(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC (scikit-learn) and log loss (probabilities clipped to [1e-7, 1 - 1e-7]) of ``p`` for labels ``y``."""
    return {"auc": float(roc_auc_score(y, p)), "logloss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)))}


def make_model(cfg: TrainConfig, data: PreparedData, ctx: Local | None = None) -> nn.Module:
    """The model with the configured embedding method (tables sharded by ``ctx`` when distributed)."""
    options = dict(cfg.embedding_options)
    if options.get("step_granularity") == "field":  # steps shared by the rows of a field: its boundaries
        options.setdefault("field_starts", list(data.feature_map["offsets"])[: data.num_fields])
    factory = embedding_factory(cfg.method, bits=cfg.bits, seed=cfg.seed, **options)
    model = build_model(cfg.model, data.num_embeddings, data.num_fields, dim=cfg.dim,
                        embedding=(ctx or Local()).embedding(factory), hidden=cfg.hidden, dropout=cfg.dropout,
                        batch_norm=cfg.batch_norm, cross_layers=cfg.cross_layers)
    init_dense(model, cfg.dense_init)
    return model


def _dense_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters trained by the dense Adam (low-precision tables hold buffers and update their own rows)."""
    return [p for p in model.parameters() if p.requires_grad]


def _parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Adam's groups: dense layers with ``weight_decay``; parameters inside tables (QAT weights, whose decay
    is the touched-row term, and their steps) without."""
    in_tables = {id(p) for t in embedding_modules(model) for p in t.parameters()}
    params = _dense_parameters(model)
    dense = [p for p in params if id(p) not in in_tables]
    tables = [p for p in params if id(p) in in_tables]
    return [g for g in ({"params": dense, "weight_decay": weight_decay}, {"params": tables, "weight_decay": 0.0})
            if g["params"]]


def _row_leaves(tables: list) -> list[torch.Tensor]:
    """The looked-up rows whose ``.grad`` a low-precision table updates itself from (after backward)."""
    if any(isinstance(getattr(t, "_pending", None), dict) for t in tables):  # the Triton path sums rows in-kernel
        raise ValueError("grad_clip is not supported for tables on the Triton kernel path (a CUDA table with "
                         "backend 'auto' or 'triton'); use backend 'torch' or grad_clip 0")
    return [t._pending[1] for t in tables if getattr(t, "_pending", None) is not None]


def _batch_loss(logits: torch.Tensor, y: torch.Tensor, world: int, global_n: int) -> torch.Tensor:
    """This rank's share of the global batch's mean log loss (DDP's averaging then gives the mean)."""
    return F.binary_cross_entropy_with_logits(logits, y, reduction="sum") * (world / global_n)


def train(data: PreparedData, cfg: TrainConfig, out: str | Path, resume: bool = False,
          progress: bool = True, ctx: Local | None = None, force: bool = False, echo: bool | None = None,
          tensorboard: bool = False) -> dict:
    """Train, checkpointing each epoch into ``out``; return the final metrics (also ``out/metrics.json``).

    ``ctx`` spreads the run over processes (lptsim.ctr.parallel); the default is one process.
    ``out`` must be a new or empty folder or a run folder (``force``: any folder). ``progress``:
    progress bars; ``echo``: the per-epoch summary lines (default: as ``progress``);
    ``tensorboard``: also log each epoch to ``out/tensorboard`` (skipped with a warning when the
    tensorboard package is absent).
    """
    ctx = ctx or Local()
    echo = (progress if echo is None else echo) and ctx.main
    progress = progress and ctx.main
    out = Path(out)
    reference = _check_splits(data)
    if ctx.main:
        claim(out, "run", force=force)
    ctx.barrier()
    run = _run_record(cfg, data)
    _check_run_folder(out, run, resume, ctx)
    ctx.barrier()  # every rank has checked the folder before run.json is (re)written
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, data, ctx).to(cfg.device)
    wrapped = ctx.wrap(model)
    optimizer = torch.optim.Adam(_parameter_groups(model, cfg.weight_decay), lr=cfg.lr)
    scheduler = make_scheduler(cfg.lr_schedule, optimizer, cfg.lr_milestones, cfg.lr_gamma, cfg.plateau_patience,
                               cfg.min_lr)
    state = {"epoch": 0, "history": [], "best_auc": -math.inf, "best_epoch": 0, "bad_epochs": 0,
             "train_seconds": 0.0, "samples": 0}
    if resume and ctx.exists(out, "checkpoint"):
        ckpt, skipped = ctx.load(out, "checkpoint", model, cfg.device, accept=lambda p: _config_differs(p, run))
        if skipped:
            warnings.warn(f"{skipped}; resumed from the previous checkpoint (epoch {ckpt['state']['epoch']})",
                          RunWarning, stacklevel=2)
        optimizer.load_state_dict(ckpt["optimizer"])
        sched = ckpt["scheduler"]
        scheduler.load_state_dict({**sched, "milestones": Counter(sched["milestones"])} if "milestones" in sched
                                  else sched)
        torch.set_rng_state(ckpt["torch_rng"])
        state = ckpt["state"]
        if state["best_epoch"]:  # the best weights must be there for the final evaluation: check them now
            ctx.load(out, "best", model, cfg.device, accept=_epoch_is(state["best_epoch"]), apply=False)
    elif resume:
        warnings.warn(f"{out}: the run has no finished epoch yet; starting it from epoch 1", RunWarning, stacklevel=2)
    if ctx.main:
        write_json_atomic(out / "run.json", run)
    tables = low_precision_tables(model)
    l2 = TouchedRowsL2(embedding_modules(model), cfg.embedding_l2 + cfg.weight_decay)
    board = _tensorboard(out) if tensorboard and ctx.main else None
    n_train = data.labels["train"].shape[0]
    recent: deque[float] = deque(maxlen=DIVERGENCE_WINDOW)
    stop = state["bad_epochs"] >= cfg.patience
    while state["epoch"] < cfg.epochs and not stop:
        epoch = state["epoch"] + 1
        wrapped.train()
        start = time.perf_counter()
        total, count = 0.0, 0
        bar = tqdm(total=n_train, desc=f"epoch {epoch}/{cfg.epochs}", unit="rows", disable=not progress, leave=False)
        batches = ctx.batches(data, "train", cfg.batch_size, shuffle=cfg.shuffle, seed=cfg.seed, epoch=epoch)
        for step, (ids, y, global_n) in enumerate(batches):
            ids, y = ids.to(cfg.device), y.to(cfg.device)
            rng_before = torch.get_rng_state()
            l2.clear()
            loss = _batch_loss(wrapped(ids), y, ctx.world, global_n)
            value = loss.item()  # the step's one host sync (the data loss: what is logged and checked)
            if not math.isfinite(value):
                raise TrainingError(f"non-finite loss ({value}) at epoch {epoch}, step {step}; stopped. "
                                    + _last_good(out, state, ctx))
            if ctx.world == 1:  # one process decides alone; ranks compare at the end of the epoch
                recent.append(value)
                if len(recent) == recent.maxlen:
                    _check_divergence(sum(recent) / len(recent), f"the mean log loss of the last {len(recent)} "
                                      "batches", reference, cfg, out, state, ctx, f"epoch {epoch}, step {step}")
            optimizer.zero_grad(set_to_none=True)
            (loss + l2.penalty() * ctx.world).backward()
            if cfg.grad_clip > 0:
                _clip(model, tables, cfg.grad_clip, ctx)
            # Low-precision tables update their own rows: full-precision step, (ALPT) step sizes, write-back.
            for t in tables:
                t.stage(lr_scale=optimizer.param_groups[0]["lr"] / cfg.lr)
            if any(t.needs_second_pass for t in tables):
                second_pass(model, lambda ids=ids, y=y, n=global_n: _batch_loss(model(ids), y, ctx.world, n),
                            [t for t in tables if t.needs_second_pass], rng_before)
            optimizer.step()
            for t in tables:
                t.commit()
            total += value * global_n / ctx.world
            count += y.numel()
            bar.update(global_n)
            bar.set_postfix(loss=f"{total / max(count, 1):.4f}")
        bar.close()
        seconds = time.perf_counter() - start
        total, count = ctx.sum(total, count)
        _check_divergence(total / count, "the epoch's train log loss", reference, cfg, out, state, ctx,
                          f"the end of epoch {epoch}")
        lr_used = optimizer.param_groups[0]["lr"]
        if cfg.lr_schedule != "plateau":
            scheduler.step()
        if cfg.bn_refresh:
            refresh_batch_norm(model, (ids.to(cfg.device) for ids, _, _ in ctx.batches(data, "train",
                                                                                       cfg.batch_size * 4)))
        val = evaluate(model, data, "val", cfg.batch_size * 4, cfg.device, ctx)
        if cfg.lr_schedule == "plateau":
            scheduler.step(val["auc"])
        state["train_seconds"] += seconds
        state["samples"] += count
        improved = val["auc"] > state["best_auc"]
        if improved:
            state.update(best_auc=val["auc"], best_epoch=epoch, bad_epochs=0)
            ctx.save(out, "best", model, {"epoch": epoch})
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        state["history"].append({"epoch": epoch, "train_logloss": total / count, "val_auc": val["auc"],
                                 "val_logloss": val["logloss"], "lr": lr_used,
                                 "seconds": round(seconds, 3), "samples_per_s": round(count / seconds, 1)})
        sched = scheduler.state_dict()
        if "milestones" in sched:
            sched = {**sched, "milestones": dict(sched["milestones"])}
        ctx.save(out, "checkpoint", model, {"optimizer": optimizer.state_dict(), "scheduler": sched,
                                            "torch_rng": torch.get_rng_state(), "state": state,
                                            "config": asdict(cfg), "data": run["data"]})
        if ctx.main:
            _write_logs(state["history"], out)
        if board is not None:
            for key, value in state["history"][-1].items():
                if key != "epoch":
                    board.add_scalar(key, value, epoch)
            board.flush()
        if echo:
            print(f"epoch {epoch}: train logloss {total / count:.4f}, val AUC {val['auc']:.4f}, "
                  f"val logloss {val['logloss']:.4f}{' *' if improved else ''}")
        stop = state["bad_epochs"] >= cfg.patience
    l2.remove()
    if board is not None:
        board.close()
    ctx.load(out, "best", model, cfg.device, accept=_epoch_is(state["best_epoch"]))
    test = evaluate(model, data, "test", cfg.batch_size * 4, cfg.device, ctx)
    metrics = {"test_auc": test["auc"], "test_logloss": test["logloss"], "best_epoch": state["best_epoch"],
               "best_val_auc": state["best_auc"], "epochs_run": state["epoch"],
               "train_samples_per_s": state["samples"] / max(state["train_seconds"], 1e-9),
               "config": asdict(cfg), "data": str(data.root), "world_size": ctx.world}
    emb = getattr(model, "embedding", None) or getattr(model, "linear", None)
    if hasattr(emb, "memory_bytes"):
        metrics.update(embedding_bytes=int(emb.memory_bytes()), table_bytes=int(emb.table_bytes()),
                       fp32_table_bytes=int(emb.fp32_bytes()))
    if ctx.main:
        write_json_atomic(out / "metrics.json", metrics)
    ctx.barrier()
    return metrics


def _clip(model: nn.Module, tables: list, max_norm: float, ctx: Local) -> None:
    """Clip the dense gradients (the same on every rank after DDP) and the touched rows' gradients (this
    rank's shard; their squared norms summed over ranks) to one joint norm."""
    leaves = _row_leaves(tables)
    if ctx.world == 1:
        clip_gradients([*_dense_parameters(model), *leaves], max_norm)
        return
    local = sum(float(leaf.grad.double().pow(2).sum()) for leaf in leaves if leaf.grad is not None)
    (everyone,) = ctx.sum(local)
    clip_gradients([*_dense_parameters(model), *leaves], max_norm, total_sq_extra=everyone - local)


def _tensorboard(out: Path):
    """A SummaryWriter on ``out/tensorboard``, or None (with a warning) when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn("--tensorboard: the tensorboard package is not installed (pip install tensorboard); "
                      "logging to log.csv only", RunWarning, stacklevel=3)
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))


def _plain(value):
    """``value`` as JSON would give it back (tuples -> lists), for comparing configurations."""
    return json.loads(json.dumps(value))


def data_fingerprint(data: PreparedData) -> dict:
    """What identifies the prepared data a run trains on (not where it lies)."""
    m, fm = data.manifest, data.feature_map
    return _plain({"sha256": m.get("sha256"), "rows": m.get("rows"), "options": m.get("options"),
                   "fields": fm["fields"], "vocab_sizes": fm["vocab_sizes"]})


def _run_record(cfg: TrainConfig, data: PreparedData) -> dict:
    return {"config": _plain(asdict(cfg)), "data": data_fingerprint(data), "data_path": str(Path(data.root).resolve()),
            "lptsim_version": __version__}


def _differences(saved: dict, now: dict, skip: tuple[str, ...] = ()) -> list[str]:
    keys = [k for k in dict.fromkeys([*saved, *now]) if k not in skip and saved.get(k) != now.get(k)]
    return [f"{k} {saved.get(k)!r} there, {now.get(k)!r} here" for k in keys]


def _check_run_folder(out: Path, run: dict, resume: bool, ctx: Local) -> None:
    """Before any tensor is read: is there a run, and was it started with these options and this data?"""
    record = out / "run.json"
    holds_run = record.exists() or ctx.exists(out, "checkpoint")
    if not resume:
        if holds_run:
            raise ValueError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        return
    if not holds_run:
        raise ValueError(f"{out} holds no run to resume (no run.json or checkpoint); drop --resume to start one")
    try:
        saved = json.loads(record.read_text())
        assert isinstance(saved, dict) and isinstance(saved["config"], dict) and isinstance(saved["data"], dict)
    except (OSError, ValueError, AssertionError, KeyError):
        raise ValueError(f"{record}: missing or damaged, so the run's options are unknown; start a new run in "
                         "another folder") from None
    why = _differences({**LEGACY, **saved["config"]}, run["config"], skip=MUTABLE)
    if why:
        raise ValueError(f"{out}: the run there has a different configuration ({'; '.join(why)}); resume with the "
                         "same options or use another --out")
    if saved["data"] != run["data"]:
        why = _differences(saved["data"], run["data"])
        raise ValueError(f"{out}: the run there was trained on other data ({'; '.join(why)[:300]}); resume with "
                         "the same --data or use another --out")


def _config_differs(payload: dict, run: dict) -> str | None:
    """Why a checkpoint does not belong to this run, or None."""
    why = _differences({**LEGACY, **_plain(payload.get("config", {}))}, run["config"], skip=MUTABLE)
    if why or _plain(payload.get("data")) != run["data"]:
        return "saved by a run with other options or data" + (f" ({'; '.join(why)})" if why else "")
    return None


def _epoch_is(epoch: int):
    return lambda p: None if p.get("epoch") == epoch else f"holds epoch {p.get('epoch')}, not the best epoch {epoch}"


def _check_splits(data: PreparedData) -> float:
    """Refuse data that cannot train and evaluate; return the log loss of always predicting the base rate."""
    counts = []
    for s in SPLITS:
        c = np.bincount(np.asarray(data.labels[s]), minlength=2)
        if c.size > 2:
            raise ValueError(f"{data.root / f'{s}_labels.npy'}: holds labels other than 0 and 1; prepare the data "
                             "again")
        counts.append(c)
    problems = split_problems(np.array(counts))
    if problems:
        raise ValueError(f"{data.root}: {problems[0]}; training needs rows of both classes in train, val and test "
                         "(prepare more lines)")
    p = counts[0][1] / counts[0].sum()
    return float(-(p * math.log(p) + (1 - p) * math.log(1 - p)))


def _last_good(out: Path, state: dict, ctx: Local) -> str:
    if state["epoch"] and ctx.exists(out, "checkpoint"):
        return f"The last good checkpoint (epoch {state['epoch']}) is {ctx.describe(out, 'checkpoint')}."
    return f"No epoch finished, so {out} holds no checkpoint."


def _check_divergence(mean: float, what: str, reference: float, cfg: TrainConfig, out: Path, state: dict,
                      ctx: Local, where: str) -> None:
    """Stop when a mean log loss is over DIVERGENCE_FACTOR x that of a constant predictor (or not finite)."""
    if not mean <= DIVERGENCE_FACTOR * max(reference, math.log(2)):
        raise TrainingError(f"training diverged at {where}: {what} is {mean:.3g}, over {DIVERGENCE_FACTOR:g}x that of "
                            f"always predicting the base rate ({reference:.3f}); lower --lr (now {cfg.lr:g}). "
                            + _last_good(out, state, ctx))


def _write_logs(history: list[dict], out: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(out / "log.csv", buf.getvalue())
    write_text_atomic(out / "log.json", json.dumps(history, indent=2))
