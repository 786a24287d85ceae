"""A table's training state: the row optimizer's buffers, ALPT's step-optimizer buffers, and their 16-bit writes.

The state lives in the table (a buffer per quantity, checkpointed and sharded by rows with the table, as in
FBGEMM's table-batched embeddings); the :class:`~lptsim.ctr.table.optim.TableOptimizer` owns the
hyperparameters and drives the updates.
"""

from __future__ import annotations

import torch
from torch import nn

from lptsim.ctr.contract import ROW_OPTIMIZERS, STEP_OPTIMIZERS, Stream, counter_base
from lptsim.quant.floats import float_dtype, stochastic_cast

# Buffer name -> the stream its 16-bit writes draw from.
ROW_STREAMS = {"sum_sq": Stream.ROW_SUM_SQ, "exp_avg": Stream.ROW_EXP_AVG, "exp_avg_sq": Stream.ROW_EXP_AVG_SQ}
STEP_STREAMS = {"sum_sq": Stream.STEP_SUM_SQ, "m": Stream.STEP_M, "v": Stream.STEP_V}


class RowState(nn.Module):
    """The row optimizer's state: nothing (sgd), one value per row (row-wise adagrad: ``sum_sq``), or two per
    element and a global step count (adam: ``exp_avg``, ``exp_avg_sq``, ``steps``). Buffers an optimizer does
    not use are None (and absent from the state dict)."""

    def __init__(self, optimizer: str, rows: int, dim: int, state_dtype: str):
        super().__init__()
        if optimizer not in ROW_OPTIMIZERS:
            raise ValueError(f"row optimizer must be one of {ROW_OPTIMIZERS}, got {optimizer!r}")
        self.optimizer = optimizer
        dtype = float_dtype(state_dtype)
        adagrad, adam = optimizer == "adagrad", optimizer == "adam"
        self.register_buffer("sum_sq", torch.zeros(rows, dtype=dtype) if adagrad else None)
        self.register_buffer("exp_avg", torch.zeros(rows, dim, dtype=dtype) if adam else None)
        self.register_buffer("exp_avg_sq", torch.zeros(rows, dim, dtype=dtype) if adam else None)
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64) if adam else None)


class StepState(nn.Module):
    """ALPT's step-optimizer state, one entry per step: nothing (sgd, or fixed steps: ``optimizer=None``),
    ``sum_sq`` (adagrad), ``m`` and ``v`` (adam, whose bias corrections count the table's updates)."""

    def __init__(self, optimizer: str | None, steps: int, state_dtype: str):
        super().__init__()
        if optimizer not in (*STEP_OPTIMIZERS, None):
            raise ValueError(f"step_optimizer must be one of {STEP_OPTIMIZERS}, got {optimizer!r}")
        self.optimizer = optimizer
        dtype = float_dtype(state_dtype)
        adagrad, adam = optimizer == "adagrad", optimizer == "adam"
        self.register_buffer("sum_sq", torch.zeros(steps, dtype=dtype) if adagrad else None)
        self.register_buffer("m", torch.zeros(steps, dtype=dtype) if adam else None)
        self.register_buffer("v", torch.zeros(steps, dtype=dtype) if adam else None)


def state_tensors(table) -> dict[str, torch.Tensor]:
    """Every tensor a low-precision table's training changes, by name: codes, steps, the update counter, the row
    optimizer's and ALPT's step optimizer's buffers (moments, accumulators, Adam's step count). What an exactness
    check compares, so that none is left out."""
    out = {"codes": table.codes.data, "steps": table.step}
    if table.updates is not None:
        out["updates"] = table.updates
    for module in ("row_state", "step_state"):
        for name, buf in getattr(table, module).named_buffers():
            out[f"{module}.{name}"] = buf
    return out


def state_differences(ref, other) -> dict[str, int]:
    """Per state tensor (:func:`state_tensors`), how many elements of ``other`` differ from ``ref`` bit for bit
    (floats compared as their bits: -0.0 is not 0.0); -1 for a tensor missing or of another shape or dtype."""
    return tensor_differences(state_tensors(ref), state_tensors(other))


def tensor_differences(ref: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> dict[str, int]:
    """:func:`state_differences` of two dicts of named tensors (e.g. snapshots of :func:`state_tensors`)."""
    bits = {2: torch.int16, 4: torch.int32, 8: torch.int64}
    out = {}
    for name, a in ref.items():
        b = other.get(name)
        if b is None or b.shape != a.shape or b.dtype != a.dtype:
            out[name] = -1
            continue
        a, b = a.detach().cpu(), b.detach().cpu()
        if a.is_floating_point():
            a, b = a.view(bits[a.element_size()]), b.view(bits[b.element_size()])
        out[name] = int((a != b).sum())
    return out


class DecayClock(nn.Module):
    """What the lazy every-row decay needs (``TableConfig.every_row_decay``): the table's update count ``clock``,
    the update each row was last brought up to (``row_clock``), and the row learning rate of every update so far
    (``lrs``, float64, one entry per update: the schedule may change it between updates)."""

    def __init__(self, rows: int):
        super().__init__()
        self.register_buffer("clock", torch.zeros((), dtype=torch.int64))
        self.register_buffer("row_clock", torch.zeros(rows, dtype=torch.int64))
        self.register_buffer("lrs", torch.zeros(0, dtype=torch.float64))

    def record(self, rows: torch.Tensor, lr: float) -> None:
        """One update done, at ``lr``; ``rows`` (local ids) are up to date after it."""
        n = int(self.clock)
        if n >= self.lrs.numel():  # full: double it (a copy per update would cost the whole history every step)
            grown = torch.zeros(max(64, 2 * n), dtype=torch.float64, device=self.lrs.device)
            grown[:n] = self.lrs[:n]
            self.lrs = grown
        self.lrs[n] = lr
        self.clock += 1
        self.row_clock[rows] = self.clock

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "lrs"] = self.lrs[: int(self.clock)].clone()  # the history, not the spare capacity

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "lrs")
        if saved is not None:  # the history's length is the run's number of updates: take the saved one's
            self.lrs = torch.zeros_like(saved, device=self.lrs.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def stream_counters(stream: Stream, index: torch.Tensor, width: int, offset: int = 0) -> torch.Tensor:
    """Counters of ``stream`` for the global elements ``(offset + index) * width + col`` (shape (len, width))."""
    base = (index.to(torch.int64).cpu() + offset) * width + counter_base(stream)
    return base.unsqueeze(1) + torch.arange(width)


def store_state(buf: torch.Tensor, index: torch.Tensor, value: torch.Tensor, key: int, counters: torch.Tensor) -> None:
    """Write float32 ``value`` into state ``buf`` at ``index``: a plain copy for a float32 buffer, unbiased stochastic
    rounding (lptsim.quant.floats.stochastic_cast) for a 16-bit one, drawn under the update's ``key`` at
    ``counters`` (the buffer's stream, the global index)."""
    if buf.dtype != torch.float32:
        value = stochastic_cast(value, buf.dtype, key, counters.reshape(value.shape))
    buf[index] = value


# -- checkpoints written by lptsim 0.1.0 ------------------------------------------------------------------------
TABLE_FORMAT = 2  # 1: lptsim 0.1.0 (LowPrecisionEmbedding with a RowOptimizer submodule)
_RENAMED = {"row_optimizer.": "row_state.", "step_m": "step_state.m", "step_v": "step_state.v",
            "step_sum_sq": "step_state.sum_sq"}


def migrate_table_state(state: dict, prefix: str = "") -> list[str]:
    """Rename, in place, the keys of a table written by lptsim 0.1.0 (table format 1) under ``prefix`` to this
    release's names (the values mean the same); return the old keys renamed."""
    renamed = []
    for key in [k for k in state if k.startswith(prefix)]:
        local = key[len(prefix):]
        for old, new in _RENAMED.items():
            if local == old or (old.endswith(".") and local.startswith(old)):
                target = prefix + new + local[len(old):]
                if target not in state:
                    state[target] = state.pop(key)
                    renamed.append(key)
                break
    return renamed
