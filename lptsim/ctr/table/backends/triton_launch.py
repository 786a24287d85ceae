"""The Triton backend: a table's lookups and ALPT's passes on the fused kernels of :mod:`lptsim.ctr.kernels`.

The table is handed to the launchers as a :class:`~lptsim.ctr.kernels.KernelTable` built here, once per placement:
its tensors and its layout in the contract's codes. :func:`coverage` says which configurations the kernels
implement; a table that asks for ``backend="triton"`` outside them is refused when it is built.
"""

from __future__ import annotations

import torch

from lptsim.ctr import kernels
from lptsim.ctr.contract import OPT_CODE, ROW_EPS, STEP_KIND, STEP_MODE


def coverage(config, num_embeddings: int) -> str | None:
    """Why the kernels cannot serve a table of this configuration, or None when they can.

    They cover LPT and ALPT (one- or two-pass; SGD, Adam or Adagrad on the steps) with 1-8 bit codes, any row
    optimizer, float32 or bfloat16 state, a step per row, per field or per table, tables below 2**31 rows.
    """
    if not config.quantized:
        return f"method {config.method!r} is not a low-precision table (the kernels serve lpt-dr, lpt-sr and alpt)"
    if not 1 <= config.bits <= 8:
        return f"bits={config.bits} (the kernels store 1-8 bit codes)"
    if config.state not in ("float32", "bfloat16"):
        return f"state_dtype={config.state!r} (the kernels keep float32 or bfloat16 state)"
    if config.every_row_decay > 0:
        return "every_row_decay > 0 (the lazy every-row weight decay is replayed by the torch reference only)"
    if num_embeddings >= kernels.MAX_ROWS:
        return f"{num_embeddings} rows (the kernels sort ids as 32-bit keys: below 2**31 rows)"
    return None


def kernel_view(table) -> kernels.KernelTable:
    """The :class:`~lptsim.ctr.kernels.KernelTable` of a low-precision table on its current device."""
    cfg, rs, ss = table.config, table.row_state, table.step_state
    seed = cfg.seed % 2**64
    key = torch.tensor([seed - 2**64 if seed >= 2**63 else seed, table.row_offset], dtype=torch.int64,
                       device=table.codes.data.device)
    return kernels.KernelTable(
        codes=table.codes.data, steps=table.step, field_starts=table.field_starts, key=key,
        id_ok=torch.ones(1, dtype=torch.int32, device=key.device), updates=table.updates,
        sum_sq=rs.sum_sq, exp_avg=rs.exp_avg, exp_avg_sq=rs.exp_avg_sq, adam_steps=rs.steps,
        step_m=ss.m if ss.m is not None else ss.sum_sq, step_v=ss.v,
        row_offset=table.row_offset, dim=table.dim, padded=table.codes.padded_dim, bits=cfg.bits,
        qmin=table.spec.qmin, qmax=table.spec.qmax, step_kind=STEP_KIND[cfg.step_granularity],
        opt=OPT_CODE[cfg.optimizer], step_mode=STEP_MODE[cfg.step_optimizer if cfg.learns_steps else None],
        stochastic=cfg.write_rounding == "stochastic", bf16=cfg.state == "bfloat16", eps=ROW_EPS,
        grad_scale=table.grad_scale, min_step=cfg.min_step)


class TritonBackend:
    """A table's lookups and updates on the Triton kernels (CUDA, or the interpreter)."""

    name = "triton"

    def __init__(self, table):
        self.table = table
        self.view = kernel_view(table)

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        return kernels.gather_dequant(self.view, rows)

    def lookup(self, ids: torch.Tensor, record: bool) -> tuple[torch.Tensor, kernels.Pending | None]:
        rows, pending = kernels.lookup(self.view, ids, record)  # ids checked on the device: no host sync
        return rows.view(*ids.shape, self.table.dim), pending

    def row_grads(self, touched: kernels.Pending):
        raise ValueError("the touched rows' gradients are summed inside the kernels, so clipping cannot see them on "
                         "the Triton path (a CUDA table with backend 'auto' or 'triton'); use backend 'torch' or "
                         "grad_clip 0")

    def stage(self, touched: kernels.Pending, group: dict) -> None:
        """Two-pass ALPT: the row optimizer now, the steps at commit; the other methods do it all at commit."""
        if self.table.config.two_pass:
            touched.dr_rows = kernels.stage_two_pass(self.view, touched, group["lr"])

    def second_pass(self, touched: kernels.Pending):
        leaf = touched.dr_rows.requires_grad_(True)
        dim = self.table.dim
        return leaf, lambda ids: kernels.SecondPassRows.apply(leaf, touched.head_of).view(*ids.shape, dim)

    def commit(self, touched: kernels.Pending, group: dict) -> None:
        if self.table.config.two_pass:  # steps from the second pass's gradient, then the write-back
            kernels.commit_two_pass(self.view, touched, touched.grad_hat, group["step_lr"])
        else:  # one fused kernel; advances the counters on the device
            kernels.fused_update(self.view, touched, group["lr"], group["step_lr"])
