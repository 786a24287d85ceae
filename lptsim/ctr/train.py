"""The trainer: plain loop, Adam, step decay, early stopping on validation AUC, atomic checkpoints.

A run folder holds ``checkpoint.pt`` (after every epoch, written atomically), ``best.pt``
(weights at the best validation AUC), ``log.csv`` / ``log.json`` (one row per epoch) and,
at the end, ``metrics.json``. ``resume=True`` continues from ``checkpoint.pt``; on the CPU
the result equals an uninterrupted run (data order depends only on (seed, epoch); the
torch RNG state is checkpointed).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from sklearn.metrics import log_loss, roc_auc_score
from torch import nn
from tqdm.auto import tqdm

from lptsim.atomic import write_json_atomic, write_text_atomic
from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.embedding import embedding_factory, low_precision_tables, second_pass
from lptsim.ctr.models import build_model
from lptsim.ctr.parallel import Local


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the last good checkpoint is left intact."""


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
    lr_gamma: float = 0.1
    patience: int = 2  # epochs without a better validation AUC before stopping
    seed: int = 0
    device: str = "cpu"
    embedding_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        self.lr_milestones = tuple(self.lr_milestones)
        for name in ("epochs", "batch_size", "dim", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


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
    p, y = ctx.gather(np.concatenate(preds), np.concatenate(labels))
    if y.size == 0 or y.min() == y.max():
        raise ValueError(f"split {split!r} needs both classes to compute AUC (rows: {y.size})")
    return {"auc": float(roc_auc_score(y, p)), "logloss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)))}


def make_model(cfg: TrainConfig, data: PreparedData, ctx: Local | None = None) -> nn.Module:
    """The model with the configured embedding method (tables sharded by ``ctx`` when distributed)."""
    factory = embedding_factory(cfg.method, bits=cfg.bits, seed=cfg.seed, **cfg.embedding_options)
    return build_model(cfg.model, data.num_embeddings, data.num_fields, dim=cfg.dim,
                       embedding=(ctx or Local()).embedding(factory), hidden=cfg.hidden, dropout=cfg.dropout,
                       batch_norm=cfg.batch_norm, cross_layers=cfg.cross_layers)


def _dense_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters trained by the dense Adam (low-precision tables hold buffers and update their own rows)."""
    return [p for p in model.parameters() if p.requires_grad]


def _batch_loss(logits: torch.Tensor, y: torch.Tensor, world: int, global_n: int) -> torch.Tensor:
    """This rank's share of the global batch's mean log loss (DDP's averaging then gives the mean)."""
    return F.binary_cross_entropy_with_logits(logits, y, reduction="sum") * (world / global_n)


def train(data: PreparedData, cfg: TrainConfig, out: str | Path, resume: bool = False,
          progress: bool = True, ctx: Local | None = None) -> dict:
    """Train, checkpointing each epoch into ``out``; return the final metrics (also ``out/metrics.json``).

    ``ctx`` spreads the run over processes (lptsim.ctr.parallel); the default is one process.
    """
    ctx = ctx or Local()
    progress = progress and ctx.main
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, data, ctx).to(cfg.device)
    wrapped = ctx.wrap(model)
    optimizer = torch.optim.Adam(_dense_parameters(model), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.lr_milestones),
                                                     gamma=cfg.lr_gamma)
    state = {"epoch": 0, "history": [], "best_auc": -math.inf, "best_epoch": 0, "bad_epochs": 0,
             "train_seconds": 0.0, "samples": 0}
    if resume and ctx.exists(out, "checkpoint"):
        ckpt = ctx.load(out, "checkpoint", model, cfg.device)
        mutable = {"epochs", "device"}  # a resumed run may be extended or moved
        if {k: v for k, v in ckpt["config"].items() if k not in mutable} != {
                k: v for k, v in asdict(cfg).items() if k not in mutable}:
            raise ValueError(f"{out}: checkpoint saved with a different configuration; use another --out or the "
                             f"same options (saved: {ckpt['config']})")
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["torch_rng"])
        state = ckpt["state"]
    elif ctx.exists(out, "checkpoint") and not resume:
        raise ValueError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    tables = low_precision_tables(model)
    n_train = data.labels["train"].shape[0]
    stop = state["bad_epochs"] >= cfg.patience
    while state["epoch"] < cfg.epochs and not stop:
        epoch = state["epoch"] + 1
        wrapped.train()
        start = time.perf_counter()
        total, count = 0.0, 0
        bar = tqdm(total=n_train, desc=f"epoch {epoch}/{cfg.epochs}", unit="rows", disable=not progress, leave=False)
        batches = ctx.batches(data, "train", cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch)
        for step, (ids, y, global_n) in enumerate(batches):
            ids, y = ids.to(cfg.device), y.to(cfg.device)
            rng_before = torch.get_rng_state()
            loss = _batch_loss(wrapped(ids), y, ctx.world, global_n)
            if not torch.isfinite(loss):
                raise TrainingError(f"non-finite loss ({loss.item()}) at epoch {epoch}, step {step}; stopped. "
                                    f"The last good checkpoint (epoch {state['epoch']}) is in {out}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # Low-precision tables update their own rows: full-precision step, (ALPT) step sizes, write-back.
            for t in tables:
                t.stage(lr_scale=optimizer.param_groups[0]["lr"] / cfg.lr)
            if any(t.needs_second_pass for t in tables):
                second_pass(model, lambda ids=ids, y=y, n=global_n: _batch_loss(model(ids), y, ctx.world, n),
                            [t for t in tables if t.needs_second_pass], rng_before)
            optimizer.step()
            for t in tables:
                t.commit()
            total += loss.item() * global_n / ctx.world
            count += y.numel()
            bar.update(global_n)
            bar.set_postfix(loss=f"{total / max(count, 1):.4f}")
        bar.close()
        seconds = time.perf_counter() - start
        total, count = ctx.sum(total, count)
        lr_used = optimizer.param_groups[0]["lr"]
        scheduler.step()
        val = evaluate(model, data, "val", cfg.batch_size * 4, cfg.device, ctx)
        state["train_seconds"] += seconds
        state["samples"] += count
        improved = val["auc"] > state["best_auc"]
        if improved:
            state.update(best_auc=val["auc"], best_epoch=epoch, bad_epochs=0)
            ctx.save(out, "best", model, {})
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        state["history"].append({"epoch": epoch, "train_logloss": total / count, "val_auc": val["auc"],
                                 "val_logloss": val["logloss"], "lr": lr_used,
                                 "seconds": round(seconds, 3), "samples_per_s": round(count / seconds, 1)})
        ctx.save(out, "checkpoint", model, {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                            "torch_rng": torch.get_rng_state(), "state": state,
                                            "config": asdict(cfg)})
        if ctx.main:
            _write_logs(state["history"], out)
        if progress:
            print(f"epoch {epoch}: train logloss {total / count:.4f}, val AUC {val['auc']:.4f}, "
                  f"val logloss {val['logloss']:.4f}{' *' if improved else ''}")
        stop = state["bad_epochs"] >= cfg.patience
    ctx.load(out, "best", model, cfg.device)
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


def _write_logs(history: list[dict], out: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(out / "log.csv", buf.getvalue())
    write_text_atomic(out / "log.json", json.dumps(history, indent=2))
