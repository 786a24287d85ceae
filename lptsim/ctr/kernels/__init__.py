"""Fused Triton kernels for LowPrecisionEmbedding (GPU; CPU under TRITON_INTERPRET=1).

``gather_dequant`` and ``fused_update`` read and write the module's own buffers; the module's
torch/numba path is the reference they are tested against.
"""

from __future__ import annotations

import os

import torch


def available(device: torch.device | str | None = None) -> bool:
    """True when Triton is importable and can run here (a CUDA device, or the interpreter)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    on_cuda = device is not None and torch.device(device).type == "cuda"
    return on_cuda or os.environ.get("TRITON_INTERPRET") == "1"


def _layout(emb) -> dict:
    bits = emb.bits
    per = 1 if bits == 8 else 8 // bits
    row_bytes = emb.codes.data.shape[1]
    return dict(D=emb.dim, ROW_BYTES=row_bytes, BITS=bits, PER=per, NB=1 << max(row_bytes - 1, 0).bit_length(),
                STEP_PER_ROW=emb.step.numel() > 1)


def supports(emb) -> bool:
    """Configurations the kernels implement: bits 2/4/8, any row optimizer, float32 state, LPT with a step per
    row or per table, or one-pass ALPT with a step per row and an SGD or Adam step optimizer."""
    return (emb.method in ("lpt-dr", "lpt-sr", "alpt") and emb.bits in (2, 4, 8) and emb.state_dtype == "float32"
            and emb.step_granularity in ("row", "table")
            and (emb.method != "alpt" or (emb.alpt_variant == "one-pass" and emb.step_granularity == "row"
                                          and emb.step_optimizer in ("sgd", "adam"))))


def gather_dequant(emb, ids: torch.Tensor) -> torch.Tensor:
    """FP32 rows (len(ids), dim) of the table for flat ids."""
    from lptsim.ctr.kernels.triton_kernels import gather_dequant_kernel

    ids = ids.reshape(-1).contiguous()
    out = torch.empty(ids.numel(), emb.dim, dtype=torch.float32, device=emb.codes.data.device)
    if ids.numel():
        gather_dequant_kernel[(ids.numel(),)](ids, emb.codes.data, emb.step, out, **_layout(emb))
    return out


def gather_sum(emb, ids: torch.Tensor, bag_starts: torch.Tensor) -> torch.Tensor:
    """Sum-pooled rows per bag (like ``nn.EmbeddingBag(mode="sum")``): bag b holds
    ``ids[bag_starts[b]:bag_starts[b+1]]``; returns (len(bag_starts) - 1, dim) float32."""
    from lptsim.ctr.kernels.triton_kernels import gather_sum_kernel

    ids, bag_starts = ids.reshape(-1).contiguous(), bag_starts.contiguous()
    bags = bag_starts.numel() - 1
    out = torch.empty(bags, emb.dim, dtype=torch.float32, device=emb.codes.data.device)
    if bags > 0:
        gather_sum_kernel[(bags,)](ids, bag_starts, emb.codes.data, emb.step, out, **_layout(emb))
    return out


def gather_sum_reference(emb, ids: torch.Tensor, bag_starts: torch.Tensor) -> torch.Tensor:
    """The torch path of :func:`gather_sum`: dequantize, then add the rows of each bag in order."""
    rows = emb.dequantized_rows(ids.reshape(-1))
    bags = bag_starts.numel() - 1
    out = torch.zeros(bags, emb.dim, dtype=torch.float32, device=rows.device)
    for b in range(bags):
        for k in range(int(bag_starts[b]), int(bag_starts[b + 1])):
            out[b] += rows[k]
    return out


def fused_update(emb, rows: torch.Tensor, grad: torch.Tensor, lr_scale: float, seed_t: int) -> None:
    """Row optimizer + (ALPT) step update + re-quantization of ``rows`` (unique), in place."""
    from lptsim.ctr.kernels.triton_kernels import fused_update_kernel

    if rows.numel() == 0:
        return
    from lptsim.ctr.embedding import STEP_BETAS, STEP_EPS

    opt = emb.row_optimizer
    dummy = emb.step
    b1, b2 = opt.betas
    row_bc1, row_bc2 = opt.next_bias_corrections() if opt.name == "adam" else (1.0, 1.0)
    step_mode = 0
    bc1 = bc2 = 1.0
    if emb.method == "alpt":
        step_mode = 2 if emb.step_optimizer == "adam" else 1
        bc1, bc2 = emb.step_bias_corrections()
    fused_update_kernel[(rows.numel(),)](
        rows.contiguous(), grad.contiguous().float(), emb.codes.data, emb.step,
        opt.sum_sq if opt.name == "adagrad" else dummy,
        opt.exp_avg if opt.name == "adam" else dummy, opt.exp_avg_sq if opt.name == "adam" else dummy,
        emb.step_m if step_mode == 2 else dummy, emb.step_v if step_mode == 2 else dummy,
        opt.lr * lr_scale, opt.eps, b1, 1 - b1, b2, 1 - b2, row_bc1, row_bc2,
        emb.step_lr * emb.step0, emb.grad_scale, emb.min_step, bc1, bc2, STEP_BETAS[0], 1 - STEP_BETAS[0],
        STEP_BETAS[1], 1 - STEP_BETAS[1], STEP_EPS,
        seed_t & 0xFFFFFFFF, seed_t >> 32, emb.row_offset,
        QMIN=float(emb.spec.qmin), QMAX=float(emb.spec.qmax), OPT={"sgd": 0, "adagrad": 1, "adam": 2}[opt.name],
        STEP_MODE=step_mode, STOCHASTIC=emb.method != "lpt-dr", **_layout(emb))
