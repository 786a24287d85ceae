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
from sklearn.metrics import log_loss, roc_auc_score
from torch import nn
from tqdm.auto import tqdm

from lptsim.atomic import save_torch_atomic, write_json_atomic, write_text_atomic
from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.embedding import embedding_factory, low_precision_tables, second_pass
from lptsim.ctr.models import build_model


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
def evaluate(model: nn.Module, data: PreparedData, split: str, batch_size: int, device: str) -> dict[str, float]:
    """AUC (scikit-learn) and log loss on a split, in eval mode."""
    model.eval()
    preds, labels = [], []
    for ids, y in data.batches(split, batch_size):
        preds.append(torch.sigmoid(model(ids.to(device))).cpu().double().numpy())
        labels.append(y.numpy())
    p, y = np.concatenate(preds), np.concatenate(labels)
    if y.size == 0 or y.min() == y.max():
        raise ValueError(f"split {split!r} needs both classes to compute AUC (rows: {y.size})")
    return {"auc": float(roc_auc_score(y, p)), "logloss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)))}


def make_model(cfg: TrainConfig, data: PreparedData) -> nn.Module:
    """The model with the configured embedding method."""
    factory = embedding_factory(cfg.method, bits=cfg.bits, seed=cfg.seed, **cfg.embedding_options)
    return build_model(cfg.model, data.num_embeddings, data.num_fields, dim=cfg.dim, embedding=factory,
                       hidden=cfg.hidden, dropout=cfg.dropout, batch_norm=cfg.batch_norm,
                       cross_layers=cfg.cross_layers)


def _dense_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters trained by the dense Adam (low-precision tables hold buffers and update their own rows)."""
    return [p for p in model.parameters() if p.requires_grad]


def train(data: PreparedData, cfg: TrainConfig, out: str | Path, resume: bool = False,
          progress: bool = True) -> dict:
    """Train, checkpointing each epoch into ``out``; return the final metrics (also ``out/metrics.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, data).to(cfg.device)
    optimizer = torch.optim.Adam(_dense_parameters(model), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.lr_milestones),
                                                     gamma=cfg.lr_gamma)
    state = {"epoch": 0, "history": [], "best_auc": -math.inf, "best_epoch": 0, "bad_epochs": 0,
             "train_seconds": 0.0, "samples": 0}
    if resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=cfg.device, weights_only=False)
        mutable = {"epochs", "device"}  # a resumed run may be extended or moved
        if {k: v for k, v in ckpt["config"].items() if k not in mutable} != {
                k: v for k, v in asdict(cfg).items() if k not in mutable}:
            raise ValueError(f"{ckpt_path}: saved with a different configuration; use another --out or the same "
                             f"options (saved: {ckpt['config']})")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["torch_rng"])
        state = ckpt["state"]
    elif ckpt_path.exists() and not resume:
        raise ValueError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    loss_fn = nn.BCEWithLogitsLoss()
    tables = low_precision_tables(model)
    n_train = data.labels["train"].shape[0]
    stop = state["bad_epochs"] >= cfg.patience
    while state["epoch"] < cfg.epochs and not stop:
        epoch = state["epoch"] + 1
        model.train()
        start = time.perf_counter()
        total, count = 0.0, 0
        bar = tqdm(total=n_train, desc=f"epoch {epoch}/{cfg.epochs}", unit="rows", disable=not progress, leave=False)
        for step, (ids, y) in enumerate(data.batches("train", cfg.batch_size, shuffle=True, seed=cfg.seed,
                                                     epoch=epoch)):
            ids, y = ids.to(cfg.device), y.to(cfg.device)
            rng_before = torch.get_rng_state()
            loss = loss_fn(model(ids), y)
            if not torch.isfinite(loss):
                raise TrainingError(f"non-finite loss ({loss.item()}) at epoch {epoch}, step {step}; stopped. "
                                    f"The last good checkpoint (epoch {state['epoch']}) is {ckpt_path}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # Low-precision tables update their own rows: full-precision step, (ALPT) step sizes, write-back.
            for t in tables:
                t.stage(lr_scale=optimizer.param_groups[0]["lr"] / cfg.lr)
            if any(t.needs_second_pass for t in tables):
                second_pass(model, lambda ids=ids, y=y: loss_fn(model(ids), y),
                            [t for t in tables if t.needs_second_pass], rng_before)
            optimizer.step()
            for t in tables:
                t.commit()
            total += loss.item() * y.numel()
            count += y.numel()
            bar.update(y.numel())
            bar.set_postfix(loss=f"{total / count:.4f}")
        bar.close()
        seconds = time.perf_counter() - start
        lr_used = optimizer.param_groups[0]["lr"]
        scheduler.step()
        val = evaluate(model, data, "val", cfg.batch_size * 4, cfg.device)
        state["train_seconds"] += seconds
        state["samples"] += count
        improved = val["auc"] > state["best_auc"]
        if improved:
            state.update(best_auc=val["auc"], best_epoch=epoch, bad_epochs=0)
            save_torch_atomic(model.state_dict(), out / "best.pt")
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        state["history"].append({"epoch": epoch, "train_logloss": total / count, "val_auc": val["auc"],
                                 "val_logloss": val["logloss"], "lr": lr_used,
                                 "seconds": round(seconds, 3), "samples_per_s": round(count / seconds, 1)})
        save_torch_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(), "state": state,
                      "config": asdict(cfg)}, ckpt_path)
        _write_logs(state["history"], out)
        if progress:
            print(f"epoch {epoch}: train logloss {total / count:.4f}, val AUC {val['auc']:.4f}, "
                  f"val logloss {val['logloss']:.4f}{' *' if improved else ''}")
        stop = state["bad_epochs"] >= cfg.patience
    model.load_state_dict(torch.load(out / "best.pt", map_location=cfg.device, weights_only=True))
    test = evaluate(model, data, "test", cfg.batch_size * 4, cfg.device)
    metrics = {"test_auc": test["auc"], "test_logloss": test["logloss"], "best_epoch": state["best_epoch"],
               "best_val_auc": state["best_auc"], "epochs_run": state["epoch"],
               "train_samples_per_s": state["samples"] / max(state["train_seconds"], 1e-9),
               "config": asdict(cfg), "data": str(data.root)}
    emb = getattr(model, "embedding", None) or getattr(model, "linear", None)
    if hasattr(emb, "memory_bytes"):
        metrics.update(embedding_bytes=int(emb.memory_bytes()), table_bytes=int(emb.table_bytes()),
                       fp32_table_bytes=int(emb.fp32_bytes()))
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def _write_logs(history: list[dict], out: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(out / "log.csv", buf.getvalue())
    write_text_atomic(out / "log.json", json.dumps(history, indent=2))
