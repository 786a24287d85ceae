"""Training-protocol pieces the peers use: embedding L2 on touched rows, gradient-norm clipping over dense
parameters and table rows, learning-rate schedules, and a BatchNorm-statistics refresh.

Embedding L2 (FuxiCTR's ``embedding_regularizer``, restricted to the rows a batch touches): the loss
gains ``lambda/2 * sum over the batch's distinct rows r of ||E_r||^2``, so each touched row's gradient
gains ``lambda * E_r`` and untouched rows are left alone (FuxiCTR's version adds ``lambda * E`` to every
row at every step, which a sparse row update cannot do). The term is computed on the looked-up
values of each table (forward hooks), so it reaches every method the same way: the leaf that a
low-precision table updates its rows from, or the FP32 weight of the QAT methods. In a distributed
run each rank adds the term for the rows its part of the batch touched, so a row touched by k ranks'
parts gets k times ``lambda * E_r`` (one process: exactly once). The ALPT step-gradient pass sees the
data loss only.
"""

from __future__ import annotations

import math
from collections import Counter

import torch
from torch import nn


class TouchedRowsL2:
    """``lambda/2 * sum ||row||^2`` over the distinct rows each hooked table looked up in the current batch.

    Call :meth:`clear` before a batch's forward pass and :meth:`penalty` after it.
    """

    def __init__(self, tables: list[nn.Module], lam: float):
        self.lam = float(lam)
        self.looked_up: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.handles = [t.register_forward_hook(self._hook) for t in tables] if self.lam > 0 else []

    def _hook(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if module.training and torch.is_grad_enabled():
            self.looked_up.append((inputs[0], output))

    def clear(self) -> None:
        self.looked_up = []

    def penalty(self) -> torch.Tensor | float:
        """The term for the forward passes since :meth:`clear` (0.0 when lambda is 0)."""
        total: torch.Tensor | float = 0.0
        for ids, out in self.looked_up:
            flat = ids.reshape(-1)
            values = out.reshape(flat.numel(), -1)
            total = total + 0.5 * self.lam * values[first_occurrences(flat)].pow(2).sum()
        self.looked_up = []
        return total

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def first_occurrences(flat: torch.Tensor) -> torch.Tensor:
    """Positions of the first occurrence of each distinct value of a 1-d tensor."""
    _, inverse = torch.unique(flat, return_inverse=True)
    pos = torch.arange(flat.numel(), device=flat.device)
    first = torch.full((int(inverse.max()) + 1 if flat.numel() else 0,), flat.numel(), dtype=pos.dtype,
                       device=flat.device)
    return first.scatter_reduce_(0, inverse, pos, reduce="amin")


def embedding_modules(model: nn.Module) -> list[nn.Module]:
    """The model's tables: the main embedding and the first-order table (when the model has one)."""
    return [m for m in (getattr(model, "embedding", None), getattr(model, "linear", None)) if m is not None]


def clip_gradients(grads: list[torch.Tensor], max_norm: float, total_sq_extra: float = 0.0) -> float:
    """Scale the gradient tensors ``grads`` in place so their joint 2-norm is at most ``max_norm``; return the norm
    before.

    The same rule as ``torch.nn.utils.clip_grad_norm_`` (coefficient ``max_norm / (norm + 1e-6)``,
    capped at 1). ``total_sq_extra`` adds squared norms held elsewhere (other ranks' table shards).
    """
    sq = sum(float(g.detach().double().pow(2).sum()) for g in grads) + total_sq_extra
    norm = math.sqrt(sq)
    coef = max_norm / (norm + 1e-6)
    if coef < 1:
        for g in grads:
            g.mul_(coef)
    return norm


def make_scheduler(kind: str, optimizer: torch.optim.Optimizer, milestones: tuple[int, ...], gamma: float,
                   patience: int, min_lr: float | list[float]):
    """``step`` (divide by 1/gamma after the milestone epochs), ``plateau`` (FuxiCTR's reduce-on-plateau on
    validation AUC: times gamma after ``patience`` + 1 epochs without an AUC gain over 1e-6, not below
    ``min_lr``, one value or one per parameter group) or ``none``."""
    if kind == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=gamma, patience=patience,
                                                          threshold=1e-6, threshold_mode="abs", min_lr=min_lr)
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones) if kind == "step" else [],
                                                gamma=gamma)


@torch.no_grad()
def refresh_batch_norm(model: nn.Module, batches) -> int:
    """Recompute every BatchNorm's running statistics from one train-mode pass over ``batches`` (ids tensors),
    without touching any weight: the statistics become the average over the batches of the batch mean and
    (unbiased) variance. Returns the number of BatchNorm layers refreshed (0: nothing to do, no pass made)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    was_training = model.training
    model.train()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    try:
        for ids in batches:
            model(ids)
    finally:
        for m, mom in zip(norms, momenta, strict=True):
            m.momentum = mom
        model.train(was_training)
    return len(norms)


def plain_schedule(state: dict) -> dict:
    """A scheduler's state with plain values only (MultiStepLR's milestones are a Counter)."""
    return {**state, "milestones": dict(state["milestones"])} if "milestones" in state else state


def counter_schedule(state: dict) -> dict:
    return {**state, "milestones": Counter(state["milestones"])} if "milestones" in state else state
