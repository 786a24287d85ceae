"""TableOptimizer: the update of every low-precision table of a model, as one torch.optim.Optimizer.

Like TorchRec's fused embedding optimizers it owns the hyperparameters (``param_groups``: one group per table,
with its row learning rate ``lr`` and ALPT's absolute step learning rate ``step_lr``, so any
``torch.optim.lr_scheduler`` drives the tables) while the state it updates lives in the tables (checkpointed and
sharded with them). ``step(closure)`` runs ALPT's passes over the rows each table touched since the last step:

1. **stage**: the row optimizer on the touched rows (their full-precision update, not yet written);
2. **second pass** (two-pass ALPT only): ``closure()`` evaluates the same batch again, the tables now returning the
   staged rows rounded to nearest; the step gradient is taken from it. BatchNorm statistics, other buffers and the
   RNG are left as they were, and the dense parameters' gradients are not touched;
3. **commit**: the step update (ALPT) and the write-back (re-quantized with the table's rounding).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from lptsim.ctr.table.table import LowPrecisionTable


@dataclass(frozen=True)
class TouchedRows:
    """The rows a table looked up in the current step: distinct local ids, their values, and their summed
    gradient (None before the backward). ``grad`` is the tensor the update reads: scale it in place to clip it."""

    table: LowPrecisionTable
    rows: torch.Tensor
    values: torch.Tensor
    grad: torch.Tensor | None


def tables_of(module: nn.Module) -> list[LowPrecisionTable]:
    """The low-precision tables inside ``module`` (itself included), in module order."""
    return [m for m in module.modules() if isinstance(m, LowPrecisionTable)]


class TableOptimizer(torch.optim.Optimizer):
    """The optimizer of the tables of ``module`` (a model, or one table).

    ``lr`` overrides every table's row learning rate (default: each table's ``config.row_lr``). ``module`` is also
    what ALPT's second pass keeps unchanged: pass the model whose forward the closure runs. A module without
    tables gets an optimizer with one empty group that does nothing.
    """

    def __init__(self, module: nn.Module, lr: float | None = None):
        self.module, self.tables = module, tables_of(module)
        groups = [{"params": _tensors(t), "lr": t.config.row_lr if lr is None else float(lr),
                   "step_lr": t.config.step_lr * t.config.step0} for t in self.tables]
        super().__init__(groups or [{"params": [], "lr": 0.0, "step_lr": 0.0}], {})

    def touched_rows(self) -> list[TouchedRows]:
        """The rows each table touched since the last step, with their values and gradients (for clipping, and for
        any term on the touched rows). Raises on the Triton path, whose gradients are summed inside the kernels."""
        out = []
        for t in self.tables:
            if t.touched is not None:
                out.append(TouchedRows(t, *t.backend.row_grads(t.touched)))
        return out

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> None:
        """Update the rows every table touched since the last step (stage, second pass, commit).

        ``closure()`` must return the loss of the same batch, evaluated again with the same random draws (restore
        the RNG state from before the first forward), without calling ``backward``. Only two-pass ALPT needs it.
        """
        work = [(t, g, t.take_touched()) for t, g in zip(self.tables, self.param_groups, strict=False)]
        work = [(t, g, touched) for t, g, touched in work if touched is not None]
        for t, group, touched in work:
            t.backend.stage(touched, group)
        two_pass = [(t, touched) for t, _, touched in work if t.config.two_pass]
        if two_pass:
            if closure is None:
                raise ValueError("two-pass ALPT needs TableOptimizer.step(closure): a function returning the loss of "
                                 "the same batch (same random draws); or use alpt_variant='one-pass'")
            self._second_pass(closure, two_pass)
        for t, group, touched in work:
            t.backend.commit(touched, group)

    @torch.no_grad()
    def flush(self) -> None:
        """Bring every row of the tables with an every-row decay up to date (``TableConfig.every_row_decay``: rows
        catch up lazily when looked up in training; call this before reading the whole table: evaluation,
        checkpoints, export). Does nothing for the other tables."""
        for t in self.tables:
            if t.decay is not None:
                t.backend.flush()

    def _second_pass(self, closure: Callable[[], torch.Tensor], pending: list) -> None:
        passes = [t.backend.second_pass(touched) for t, touched in pending]
        leaves = [leaf for leaf, _ in passes]
        with frozen_state(self.module, self.tables), ExitStack() as stack:
            for (t, _), (_, rows_of) in zip(pending, passes, strict=True):
                stack.enter_context(t.replaying(rows_of))
            with torch.enable_grad():
                grads = torch.autograd.grad(closure(), leaves, allow_unused=True)
        for (_, touched), leaf, g in zip(pending, leaves, grads, strict=True):
            touched.grad_hat = g if g is not None else torch.zeros_like(leaf)


def _tensors(table: LowPrecisionTable) -> list[torch.Tensor]:
    """What a table's group updates: its codes (or FP32 rows) and its steps."""
    if not table.config.quantized:
        return [table.weight]
    return [table.codes.data, table.step]


@contextmanager
def frozen_state(module: nn.Module, tables: list[LowPrecisionTable]):
    """A block that changes no state of ``module`` outside ``tables``: buffers (BatchNorm statistics) and the RNG
    (CPU, and CUDA where initialised) are restored at its end."""
    inside = {id(m) for t in tables for m in t.modules()}
    saved = [(b, b.detach().clone()) for m in module.modules() if id(m) not in inside
             for b in m.buffers(recurse=False)]
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            for b, copy in saved:
                b.copy_(copy)


def rng_state() -> tuple:
    """The RNG state a forward pass draws from (CPU, and CUDA where initialised): for a second-pass closure."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def set_rng_state(state: tuple) -> None:
    """Restore an :func:`rng_state`."""
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)
