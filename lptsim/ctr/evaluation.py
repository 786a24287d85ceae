"""Scoring a model on a split (AUC and log loss over all ranks), and the error that stops training."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import log_loss, roc_auc_score
from torch import nn

from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.parallel import Local


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite or exploding loss); the last good checkpoint is left intact."""


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
