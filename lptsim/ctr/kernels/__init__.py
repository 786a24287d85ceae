"""Fused Triton kernels for LowPrecisionEmbedding (GPU; CPU under TRITON_INTERPRET=1).

A training step on the kernel path: ``lookup`` checks the ids on the device, sorts them once
(32-bit keys, stable; the permutation and the run bounds serve the whole step) and gathers the rows
(many ids per program); the backward hands the upstream gradient to the table; ``fused_update``
sums each run of equal ids in a fixed chunked order (``segment_sum_kernel``, a few levels of at most
32 additions per lane, so a hot id does not serialise) and applies the row optimizer, the ALPT step
update and the re-quantization in one kernel (two-pass ALPT splits it around the second forward).
Nothing in a step reads a device value on the host (no ``.item()``, no data-dependent sizes such as
``torch.unique``, no host-to-device copies), so a CUDA step never waits for the GPU. The module's
torch path is the reference they are tested against, bit for bit (see
:mod:`lptsim.ctr.kernels.triton_kernels` for the numerical contract).
"""

from __future__ import annotations

import os

import torch

from lptsim.ctr.ordered_sums import SEGMENT_CHUNK

BLOCK = 64  # update: positions per program, two warps, one lane each
CHUNK = SEGMENT_CHUNK  # run sums: additions per lane and level (the reference's ordered_segment_sum)
GATHER_ELEMENTS = 1024  # gather: rows x padded dim per program (16 values a thread: no spills at any dim)
LAUNCH = {"num_warps": 2, "enable_fp_fusion": False}
UPDATE_LAUNCH = dict(LAUNCH, maxnreg=128)  # without a bound ptxas picks 32 registers and spills a few bytes


def gather_block(dim: int) -> tuple[int, int]:
    """(padded dim, ids per program) of the gather kernel for rows of ``dim``."""
    dp = 1 << max(dim - 1, 0).bit_length()
    return dp, max(1, min(64, GATHER_ELEMENTS // dp))


def available(device: torch.device | str | None = None) -> bool:
    """True when Triton is importable and can run here (a CUDA device, or the interpreter)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    on_cuda = device is not None and torch.device(device).type == "cuda"
    return on_cuda or os.environ.get("TRITON_INTERPRET") == "1"


def supports(emb) -> bool:
    """Configurations the kernels implement: bits 1-8, any row optimizer, float32 or bfloat16 state, LPT or
    ALPT (one- or two-pass; SGD, Adam or Adagrad on the steps), a step per row, per field or per table, tables
    below 2**31 rows. (The distributed path refuses shared ALPT steps: their sum would span the shards.)"""
    if emb.method not in ("lpt-dr", "lpt-sr", "alpt") or not 1 <= emb.bits <= 8 or emb.num_embeddings >= 2**31:
        return False
    if getattr(emb, "state_dtype", "float32") not in ("float32", "bfloat16"):
        return False
    if emb.method == "alpt":
        return emb.step_optimizer in ("sgd", "adam", "adagrad")
    return True


def _step_kind(emb) -> int:
    """0: one step per table, 1: one per row, 2: another granularity (the module's ``step_index`` maps rows)."""
    kind = {"table": 0, "row": 1}.get(getattr(emb, "step_granularity", None))
    if kind is not None:
        return kind
    if emb.step.numel() == 1:
        return 0
    return 1 if emb.step.numel() == emb.num_embeddings and not hasattr(emb, "step_index") else 2


def _layout(emb) -> dict:
    return dict(D=emb.dim, ROW_BYTES=emb.codes.data.shape[1], BITS=emb.bits, STEP_KIND=_step_kind(emb))


def _step_idx(emb, rows: torch.Tensor) -> torch.Tensor:
    return emb.step_index(rows) if _step_kind(emb) == 2 else emb.step  # the kernel ignores it otherwise


def _key(emb) -> torch.Tensor:
    """(seed, row_offset) as a device int64 tensor, made once per device (the seed taken mod 2**64)."""
    dev = emb.codes.data.device
    cached = getattr(emb, "_kernel_key", None)
    if cached is None or cached.device != dev:
        seed = emb.seed % 2**64
        seed = seed - 2**64 if seed >= 2**63 else seed
        cached = torch.tensor([seed, emb.row_offset], dtype=torch.int64, device=dev)
        emb._kernel_key = cached
    return cached


def check_ids(emb, ids: torch.Tensor) -> None:
    """Raise (asynchronously, on the device) if an id is outside [0, num_embeddings): no host sync.

    On a GPU a bad id stops the CUDA context with this message at the next synchronisation; check
    ids on the host before the transfer (the CSV/array readers do) for a friendlier error.
    """
    if ids.numel():
        ok = (ids.min() >= 0) & (ids.max() < emb.num_embeddings)
        torch._assert_async(ok, f"embedding id outside [0, {emb.num_embeddings})")


def gather_dequant(emb, ids: torch.Tensor) -> torch.Tensor:
    """FP32 rows (len(ids), dim) of the table for flat ids."""
    from lptsim.ctr.kernels.triton_kernels import gather_dequant_kernel

    ids = ids.reshape(-1).contiguous()
    n = ids.numel()
    out = torch.empty(n, emb.dim, dtype=torch.float32, device=emb.codes.data.device)
    if n:
        dp, block = gather_block(emb.dim)
        gather_dequant_kernel[(triton_cdiv(n, block),)](ids, emb.codes.data, emb.step, _step_idx(emb, ids), out, n,
                                                        DP=dp, BLOCK=block, **_layout(emb), **LAUNCH)
    return out


def gather_sum(emb, ids: torch.Tensor, bag_starts: torch.Tensor) -> torch.Tensor:
    """Sum-pooled rows per bag (like ``nn.EmbeddingBag(mode="sum")``): bag b holds
    ``ids[bag_starts[b]:bag_starts[b+1]]``; returns (len(bag_starts) - 1, dim) float32."""
    from lptsim.ctr.kernels.triton_kernels import gather_sum_kernel

    ids, bag_starts = ids.reshape(-1).contiguous(), bag_starts.contiguous()
    bags = bag_starts.numel() - 1
    out = torch.empty(bags, emb.dim, dtype=torch.float32, device=emb.codes.data.device)
    if bags > 0:
        dp, _ = gather_block(emb.dim)
        gather_sum_kernel[(bags,)](ids, bag_starts, emb.codes.data, emb.step, _step_idx(emb, ids), out, DP=dp,
                                   **_layout(emb), **LAUNCH)
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


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


class _Lookup(torch.autograd.Function):
    """Rows for ids; the backward stores the upstream gradient in ``pending`` (the table updates itself)."""

    @staticmethod
    def forward(ctx, anchor, emb, ids, pending):  # noqa: D102
        ctx.pending = pending
        return gather_dequant(emb, ids)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        ctx.pending["grad"] = grad.contiguous()
        return None, None, None, None


def lookup(emb, ids: torch.Tensor, training: bool) -> tuple[torch.Tensor, dict | None]:
    """(rows of the flat ids, pending state for the update or None); one stable sort of the ids per step."""
    flat = ids.reshape(-1)
    check_ids(emb, flat)
    if not training:
        return gather_dequant(emb, flat), None
    keys = flat.to(torch.int32)  # supports() keeps tables below 2**31 rows
    sorted_ids, perm = torch.sort(keys, stable=True)
    seg_start = torch.searchsorted(sorted_ids, sorted_ids, out_int32=True)
    seg_end = torch.searchsorted(sorted_ids, sorted_ids, right=True, out_int32=True)
    pending = {"sorted": sorted_ids, "perm": perm, "seg_start": seg_start, "seg_end": seg_end, "grad": None}
    anchor = torch.empty(0, device=flat.device, requires_grad=True)
    return _Lookup.apply(anchor, emb, flat, pending), pending


_BETAS: dict = {}  # (betas, device) -> float64 tensor, made once: a host-to-device copy per step would sync


def bias_corrections(betas: tuple[float, float], t: torch.Tensor) -> torch.Tensor:
    """(1 - b1^t, 1 - b2^t) as float32, computed on t's device in float64 (as Python computes ``1 - b**t``)."""
    key = (tuple(betas), str(t.device))
    if key not in _BETAS:
        _BETAS[key] = torch.tensor(betas, dtype=torch.float64, device=t.device)
    return (1 - _BETAS[key] ** t.to(torch.float64)).float()


def segment_levels(n: int) -> int:
    """Levels of the fixed-order run sum for a batch of ``n`` ids: the least L >= 1 with CHUNK**L >= n."""
    levels, span = 1, CHUNK
    while span < n:
        levels, span = levels + 1, span * CHUNK
    return levels


def segment_sums(pending: dict, grad: torch.Tensor, out: torch.Tensor) -> None:
    """Each run's summed gradient at the run's head position of ``out`` (n, dim), in the fixed order of
    :func:`lptsim.ctr.ordered_sums.ordered_segment_sum` (the reference's)."""
    from lptsim.ctr.kernels.triton_kernels import segment_sum_kernel

    n, dim = grad.shape
    dp, block = gather_block(dim)  # the same (padded dim, rows per program) as the gather
    for level in range(segment_levels(n)):
        segment_sum_kernel[(triton_cdiv(n, block),)](pending["seg_start"], pending["seg_end"], pending["perm"], grad,
                                                     out, n, CHUNK**level, FIRST=level == 0, D=dim, DP=dp,
                                                     CHUNK=CHUNK, BLOCK=block, **LAUNCH)


def _grad_rows(grad: torch.Tensor | None, n: int, dim: int, device) -> torch.Tensor:
    return torch.zeros(n, dim, device=device) if grad is None else grad.reshape(n, dim).float().contiguous()


def _shared_steps(emb) -> bool:
    """ALPT with a step shared by many rows: its gradient is a sum over rows, between row update and write-back."""
    return emb.method == "alpt" and _step_kind(emb) != 1


def _step_rows(emb, rows: torch.Tensor) -> torch.Tensor:
    """The entry of ``emb.step`` each of ``rows`` uses (int64)."""
    kind = _step_kind(emb)
    return rows.long() if kind == 1 else torch.zeros_like(rows, dtype=torch.long) if kind == 0 else \
        emb.step_index(rows.long())


def _launch(emb, pending: dict, grad: torch.Tensor, wnew: torch.Tensor, lr_scale: float, phase: int) -> None:
    """Run sums of ``grad`` (n, dim; batch order), then the update kernel in ``phase`` (0 one-pass, 1 two-pass
    stage, 2 two-pass commit). Advances the counters on the device: Adam's ``steps`` with the row optimizer
    (phases 0, 1), ``updates`` with the write-back (phases 0, 2). Shared ALPT steps split phases 0 and 2 into
    the kernel's phases (1,) 3 and 4 around :func:`_update_shared_steps`."""
    from lptsim.ctr.embedding import STEP_BETAS

    sorted_ids = pending["sorted"]
    n, dim = grad.shape
    dev = sorted_ids.device
    opt = emb.row_optimizer
    step_mode = 0
    if emb.method == "alpt":
        step_mode = {"sgd": 1, "adam": 2, "adagrad": 3}[emb.step_optimizer]
    bcs = [torch.ones(2, device=dev), torch.ones(2, device=dev)]
    if opt.name == "adam" and phase != 2:
        opt.steps += 1
        bcs[0] = bias_corrections(opt.betas, opt.steps)
    if step_mode == 2 and phase != 1:
        bcs[1] = bias_corrections(STEP_BETAS, emb.updates + 1)
    bc = torch.cat(bcs)
    gseg = torch.empty(n, dim, device=dev)
    segment_sums(pending, grad, gseg)
    if phase == 1 or not _shared_steps(emb):
        _update_kernel(emb, sorted_ids, gseg, wnew, wnew, bc, lr_scale, step_mode, phase)
    else:
        if phase == 0:
            _update_kernel(emb, sorted_ids, gseg, wnew, wnew, bc, lr_scale, step_mode, 1)
        gstep = torch.zeros(n, device=dev)
        _update_kernel(emb, sorted_ids, gseg, wnew, gstep, bc, lr_scale, step_mode, 3)
        _update_shared_steps(emb, sorted_ids, gstep, bc, step_mode)
        _update_kernel(emb, sorted_ids, gseg, wnew, gstep, bc, lr_scale, step_mode, 4)
    if phase != 1:
        emb.updates += 1


def _update_kernel(emb, sorted_ids: torch.Tensor, gseg: torch.Tensor, wnew: torch.Tensor, gstep: torch.Tensor,
                   bc: torch.Tensor, lr_scale: float, step_mode: int, phase: int) -> None:
    """One launch of ``fused_update_kernel`` in ``phase`` (see its docstring)."""
    from lptsim.ctr.embedding import STEP_BETAS, STEP_EPS
    from lptsim.ctr.kernels.triton_kernels import fused_update_kernel

    n, dim = gseg.shape
    opt = emb.row_optimizer
    dummy = emb.step
    b1, b2 = opt.betas
    fused_update_kernel[(triton_cdiv(n, BLOCK),)](
        sorted_ids, gseg, wnew, gstep, emb.codes.data, emb.step,
        _step_idx(emb, sorted_ids), opt.sum_sq if opt.name == "adagrad" else dummy,
        opt.exp_avg if opt.name == "adam" else dummy, opt.exp_avg_sq if opt.name == "adam" else dummy,
        emb.step_m if step_mode == 2 else emb.step_sum_sq if step_mode == 3 else dummy,
        emb.step_v if step_mode == 2 else dummy,
        _key(emb), emb.updates, bc, n,
        opt.lr * lr_scale, opt.eps, b1, 1 - b1, b2, 1 - b2, emb.step_lr * emb.step0, emb.grad_scale, emb.min_step,
        STEP_BETAS[0], 1 - STEP_BETAS[0], STEP_BETAS[1], 1 - STEP_BETAS[1], STEP_EPS,
        PADDED=getattr(emb.codes, "padded_dim", dim), QMIN=float(emb.spec.qmin), QMAX=float(emb.spec.qmax),
        OPT={"sgd": 0, "adagrad": 1, "adam": 2}[opt.name], STEP_MODE=step_mode, STOCHASTIC=emb.method != "lpt-dr",
        BLOCK=BLOCK, PHASE=phase, BF16=getattr(emb, "state_dtype", "float32") == "bfloat16", **_layout(emb),
        **UPDATE_LAUNCH)


def _update_shared_steps(emb, sorted_ids: torch.Tensor, gstep: torch.Tensor, bc: torch.Tensor,
                         step_mode: int) -> None:
    """Shared ALPT steps from the rows' step gradients ``gstep`` (at each run head of ``sorted_ids``): summed
    per step in the fixed order of ``ordered_segment_sum`` over the rows in ascending order (the reference's),
    then the step optimizer. All on the device: the other positions get the key ``num_steps``, sorted last."""
    from lptsim.ctr.embedding import STEP_BETAS, STEP_EPS
    from lptsim.ctr.kernels.triton_kernels import shared_step_kernel

    n = sorted_ids.numel()
    rows = sorted_ids.long()
    head = torch.ones(n, dtype=torch.bool, device=rows.device)
    head[1:] = rows[1:] != rows[:-1]
    num_steps = emb.step.numel()
    keys = torch.where(head, _step_rows(emb, rows), num_steps).to(torch.int32)
    skeys, perm = torch.sort(keys, stable=True)
    runs = {"perm": perm, "seg_start": torch.searchsorted(skeys, skeys, out_int32=True),
            "seg_end": torch.searchsorted(skeys, skeys, right=True, out_int32=True)}
    gsum = torch.empty(n, 1, device=rows.device)
    segment_sums(runs, gstep.view(n, 1), gsum)
    shared_step_kernel[(triton_cdiv(n, BLOCK),)](
        skeys, gsum, emb.step, emb.step_m if step_mode == 2 else emb.step_sum_sq if step_mode == 3 else emb.step,
        emb.step_v if step_mode == 2 else emb.step, _key(emb), emb.updates, bc, n, num_steps,
        emb.step_lr * emb.step0, emb.min_step, STEP_BETAS[0], 1 - STEP_BETAS[0], STEP_BETAS[1], 1 - STEP_BETAS[1],
        STEP_EPS, STEP_MODE=step_mode, BF16=getattr(emb, "state_dtype", "float32") == "bfloat16", BLOCK=BLOCK,
        **LAUNCH)


def fused_update(emb, pending: dict, lr_scale: float) -> None:
    """Row optimizer + (ALPT, one pass) step update + re-quantization of the rows of ``pending``, in place."""
    n = pending["sorted"].numel()
    if n:
        grad = _grad_rows(pending["grad"], n, emb.dim, pending["sorted"].device)
        _launch(emb, pending, grad, torch.empty(n, emb.dim, device=grad.device), lr_scale, phase=0)


def stage_two_pass(emb, pending: dict, lr_scale: float) -> torch.Tensor:
    """Two-pass ALPT after the first backward: the row optimizer (state updated, rows not yet written).

    Returns the second pass's rows, one per sorted position (meaningful at the heads of runs): the updated
    rows rounded to nearest on the current steps, ``dequantize(quantize(w_new, step, "nearest"), step)``."""
    n, dim = pending["sorted"].numel(), emb.dim
    dev = pending["sorted"].device
    pending["wnew"] = wnew = torch.zeros(n, dim, device=dev)
    if n == 0:
        pending["head_of"] = torch.zeros(0, dtype=torch.long, device=dev)
        return wnew
    _launch(emb, pending, _grad_rows(pending["grad"], n, dim, dev), wnew, lr_scale, phase=1)
    step = emb.step[_step_rows(emb, pending["sorted"])].float().unsqueeze(1)
    v = wnew / step
    f = torch.floor(v)
    codes = (f + (v - f >= 0.5).float()).clamp_(emb.spec.qmin, emb.spec.qmax)
    positions = torch.arange(n, device=dev)
    inv_perm = torch.empty_like(positions).scatter_(0, pending["perm"], positions)
    pending["head_of"] = pending["seg_start"].long()[inv_perm]  # batch position -> head of its run
    return codes * step


def commit_two_pass(emb, pending: dict, grad_hat: torch.Tensor | None) -> None:
    """Two-pass ALPT after the second backward: steps from ``grad_hat`` (the second pass's upstream gradient
    per lookup, batch order), then the staged rows re-quantized on the new steps and written back."""
    n = pending["sorted"].numel()
    if n:
        grad = _grad_rows(grad_hat if grad_hat is not None else pending["grad"], n, emb.dim, pending["wnew"].device)
        _launch(emb, pending, grad, pending["wnew"], 1.0, phase=2)


class SecondPassRows(torch.autograd.Function):
    """The second pass's lookup: ``rows[head_of]``; the gradient handed to ``rows`` is the upstream gradient
    per lookup in batch order (same shape), which ``commit_two_pass`` sums by run."""

    @staticmethod
    def forward(ctx, rows, head_of):  # noqa: D102
        return rows[head_of]

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return grad.contiguous(), None
