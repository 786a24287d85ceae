"""Launchers of the fused Triton kernels (GPU; CPU under TRITON_INTERPRET=1) for a low-precision table.

The launchers see a table only through a :class:`KernelTable`: its tensors and its static layout, named (the Triton
backend, :mod:`lptsim.ctr.table.backends.triton_launch`, builds it once per placement). A training step: ``lookup``
gathers the rows (many ids per program) in a kernel that also checks the ids and writes them as 32-bit keys, then
sorts the keys once (stable; the permutation serves the whole step; runs are found by comparing neighbouring
keys, no search); the backward hands the upstream gradient to the step's :class:`Pending`; ``fused_update`` sums
the runs longer than 32 ids in 1024-id pieces (``long_run_kernel``, so a hot id does not serialise), then one
kernel sums each run in the reference's fixed order, applies the row optimizer, the ALPT step update and the
re-quantization (two-pass ALPT splits it around the second forward). A one-pass step is 6 launches: gather,
the id assert, sort, long runs, update, the write-back counter (:mod:`lptsim.ctr.kernels.census` counts them).
Nothing in a step reads a device value on the host (no ``.item()``, no data-dependent
sizes such as ``torch.unique``, no host-to-device copies), so a CUDA step never waits for the GPU. The torch
reference (:mod:`lptsim.ctr.table.backends.torch_reference`) is what they are tested against, bit for bit (the
numerical contract: :mod:`lptsim.ctr.contract` and :mod:`lptsim.ctr.kernels.triton_kernels`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from lptsim.ctr.contract import ROW_BETAS, STEP_BETAS, STEP_EPS
from lptsim.ctr.kernels.version import MIN_TRITON as MIN_TRITON
from lptsim.ctr.kernels.version import check_triton as check_triton
from lptsim.ctr.kernels.version import triton_problem
from lptsim.ctr.ordered_sums import SEGMENT_CHUNK

BLOCK = 64  # update: positions per program (two warps, one lane each) at dims up to 16; fewer above (update_block)
CHUNK = SEGMENT_CHUNK  # run sums: additions per lane and level (the reference's ordered_segment_sum)
TILE, WIDE_TILE = 1024, 256  # update: elements of a [positions, padded dim] tile up to / above dim 16 (update_block)
GATHER_ELEMENTS = 1024  # gather: rows x padded dim per program (16 values a thread: no spills at any dim)
LAUNCH = {"num_warps": 2, "enable_fp_fusion": False}
# Update and long-run kernels: without a bound ptxas picks too few registers (32 for the update kernel, 80 for
# long_run at dim 40 under Triton 3.6 on sm_80) and spills a few bytes.
UPDATE_LAUNCH = dict(LAUNCH, maxnreg=128)
MAX_ROWS = 2**31  # ids are sorted as 32-bit keys


@dataclass(frozen=True)
class KernelTable:
    """What the kernels read and write of one table, and its static layout (contract codes, not names)."""

    codes: torch.Tensor  # (rows, row_bytes) int8 / packed uint8
    steps: torch.Tensor  # (num_steps,) float32 or bfloat16
    field_starts: torch.Tensor | None  # global first row of each field (step_kind 2), else None
    key: torch.Tensor  # int64 [seed as a signed 64-bit value, row_offset] on the table's device
    id_ok: torch.Tensor  # int32 (1,): 1 until a lookup meets an id outside [0, rows) (then asserted on the device)
    updates: torch.Tensor  # int64 scalar: write-backs done
    sum_sq: torch.Tensor | None  # row-wise Adagrad
    exp_avg: torch.Tensor | None  # Adam on the rows
    exp_avg_sq: torch.Tensor | None
    adam_steps: torch.Tensor | None  # Adam's global step count (int64 scalar)
    step_m: torch.Tensor | None  # ALPT's step state: Adam's m, or Adagrad's sum of squares
    step_v: torch.Tensor | None  # Adam's v
    row_offset: int
    dim: int
    padded: int  # codes per stored row (whole bytes)
    bits: int
    qmin: int
    qmax: int
    step_kind: int  # contract.STEP_KIND
    opt: int  # contract.OPT_CODE
    step_mode: int  # contract.STEP_MODE
    stochastic: bool  # SR write-back (else round to nearest)
    bf16: bool  # steps and state in bfloat16 (else float32)
    eps: float
    grad_scale: float
    min_step: float

    @property
    def layout(self) -> dict:
        return dict(D=self.dim, ROW_BYTES=self.codes.shape[1], BITS=self.bits, STEP_KIND=self.step_kind)


@dataclass
class Pending:
    """One training lookup's sorted ids (32-bit keys) and the sort's permutation (sorted position -> batch
    position); ``grad`` arrives with the backward."""

    sorted: torch.Tensor
    perm: torch.Tensor
    grad: torch.Tensor | None = None
    wnew: torch.Tensor | None = None  # two-pass ALPT: the staged rows, one per sorted position
    head_of: torch.Tensor | None = None  # two-pass ALPT: batch position -> the head of its run
    dr_rows: torch.Tensor | None = None  # two-pass ALPT: the second pass's rows (one per sorted position)
    grad_hat: torch.Tensor | None = None  # two-pass ALPT: the second pass's upstream gradient (batch order)


def gather_block(dim: int) -> tuple[int, int]:
    """(padded dim, ids per program) of the gather kernel for rows of ``dim``."""
    dp = 1 << max(dim - 1, 0).bit_length()
    return dp, max(1, min(64, GATHER_ELEMENTS // dp))


def update_block(dim: int) -> int:
    """Positions per program of the update kernels for rows of ``dim``: at most BLOCK, in [positions, padded dim]
    tiles (the run sums and the updated rows, in registers) of TILE elements up to dim 16 and WIDE_TILE above.
    Found with ``python -m lptsim.ctr.kernels.aot`` under Triton 3.6 and 3.9: tiles of 512 or 1024 elements spill
    in the one-pass Adam kernels at dims 40-128."""
    dp, _ = gather_block(dim)
    return max(1, min(BLOCK, (TILE if dp <= 16 else WIDE_TILE) // dp))


def long_run_launch(dim: int) -> dict:
    """Launch options of ``long_run_kernel``: its [32, padded dim] tiles over two warps up to dim 64, four at 128
    (with two, dim 128 spills on sm_90), and at most 128 registers, as the update kernel: without the bound, Triton
    3.6's ptxas capped dim 40 at 80 registers on sm_80 and spilled 8 bytes (the full AOT table, 2026-12-07)."""
    dp, _ = gather_block(dim)
    return dict(UPDATE_LAUNCH, num_warps=max(2, min(8, CHUNK * dp // 1024)))


def available(device: torch.device | str | None = None) -> bool:
    """True when a recent enough Triton is importable and can run here (a CUDA device, or the interpreter)."""
    if triton_problem():
        return False
    on_cuda = device is not None and torch.device(device).type == "cuda"
    return on_cuda or os.environ.get("TRITON_INTERPRET") == "1"


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def step_index(view: KernelTable, rows: torch.Tensor) -> torch.Tensor:
    """The entry of ``view.steps`` each of ``rows`` (local, any integer dtype) uses, as int64."""
    if view.step_kind == 1:
        return rows.long()
    if view.step_kind == 0:
        return torch.zeros_like(rows, dtype=torch.long)
    return torch.searchsorted(view.field_starts, rows.long() + view.row_offset, right=True) - 1


def _step_idx_arg(view: KernelTable, rows: torch.Tensor) -> torch.Tensor:
    """The kernels' ``step_idx`` argument: per-position indices for indexed steps (ignored otherwise)."""
    return step_index(view, rows) if view.step_kind == 2 else view.steps


def gather_dequant(view: KernelTable, ids: torch.Tensor, keys: torch.Tensor | None = None) -> torch.Tensor:
    """FP32 rows (len(ids), dim) of the table for flat ids; with ``keys`` (int32, len(ids)) also the ids as 32-bit
    keys. The ids are checked in the same kernel: one outside [0, rows) raises (asynchronously, on the device: no
    host sync) "embedding id outside [0, rows)". On a GPU the failed assert ends the CUDA context; check ids on the
    host before the transfer (the CSV/array readers do) for a friendlier error."""
    from lptsim.ctr.kernels.triton_kernels import gather_dequant_kernel

    ids = ids.reshape(-1).contiguous()
    n, rows = ids.numel(), view.codes.shape[0]
    out = torch.empty(n, view.dim, dtype=torch.float32, device=view.codes.device)
    if n:
        dp, block = gather_block(view.dim)
        gather_dequant_kernel[(triton_cdiv(n, block),)](
            ids, view.codes, view.steps, _step_idx_arg(view, ids), out, out if keys is None else keys, view.id_ok,
            n, rows, DP=dp, BLOCK=block, KEYS=keys is not None, **view.layout, **LAUNCH)
        torch._assert_async(view.id_ok, f"embedding id outside [0, {rows})")
    return out


def gather_sum(view: KernelTable, ids: torch.Tensor, bag_starts: torch.Tensor) -> torch.Tensor:
    """Sum-pooled rows per bag (like ``nn.EmbeddingBag(mode="sum")``): bag b holds
    ``ids[bag_starts[b]:bag_starts[b+1]]``; returns (len(bag_starts) - 1, dim) float32, added in bag order."""
    from lptsim.ctr.kernels.triton_kernels import gather_sum_kernel

    ids, bag_starts = ids.reshape(-1).contiguous(), bag_starts.contiguous()
    bags = bag_starts.numel() - 1
    out = torch.empty(bags, view.dim, dtype=torch.float32, device=view.codes.device)
    if bags > 0:
        dp, _ = gather_block(view.dim)
        gather_sum_kernel[(bags,)](ids, bag_starts, view.codes, view.steps, _step_idx_arg(view, ids), out, DP=dp,
                                   **view.layout, **LAUNCH)
    return out


class _Lookup(torch.autograd.Function):
    """Rows for ids; the backward stores the upstream gradient in ``pending`` (the TableOptimizer reads it)."""

    @staticmethod
    def forward(ctx, anchor, view, ids, pending, keys):  # noqa: D102
        ctx.pending = pending
        return gather_dequant(view, ids, keys)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        ctx.pending.grad = grad.contiguous()
        return None, None, None, None, None


def lookup(view: KernelTable, ids: torch.Tensor, training: bool) -> tuple[torch.Tensor, Pending | None]:
    """(rows of the flat ids, the step's Pending or None). A training lookup: the gather kernel checks the ids and
    writes them as 32-bit keys, then one stable sort of the keys (torch's: int64 permutation)."""
    flat = ids.reshape(-1)
    if not training:
        return gather_dequant(view, flat), None
    keys = torch.empty(flat.numel(), dtype=torch.int32, device=flat.device)  # tables below MAX_ROWS rows
    pending = Pending(keys, keys)  # filled below, once the gather has written the keys
    anchor = torch.empty(0, device=flat.device, requires_grad=True)
    rows = _Lookup.apply(anchor, view, flat, pending, keys)
    pending.sorted, pending.perm = torch.sort(keys, stable=True)
    return rows, pending


def long_run_launches(n: int, chunk: int = CHUNK) -> int:
    """Launches of ``long_run_kernel`` for a batch of ``n`` ids: none when no run can pass CHUNK ids; else the
    least m >= 1 with CHUNK**(2m + 2) >= n (each launch adds two levels of the tree, the update kernels the last
    two). One up to 2**20 ids (the goal's 319,488), two up to 2**30."""
    if n <= chunk:
        return 0
    launches, span = 1, chunk**4
    while span < n:
        launches, span = launches + 1, span * chunk**2
    return launches


@dataclass
class RunSums:
    """What the update kernels need to sum each run of ``sorted``: the values (``grad``, (n, dim) float32, batch
    order), ``perm``, and the long runs' partial sums ``top`` (``stride`` ranks apart; ``long``: any launch)."""

    sorted: torch.Tensor
    perm: torch.Tensor
    grad: torch.Tensor
    top: torch.Tensor
    stride: int
    long: bool

    def args(self) -> tuple:
        return self.sorted, self.perm, self.grad, self.top


def run_sums(sorted_keys: torch.Tensor, perm: torch.Tensor, grad: torch.Tensor, chunk: int = CHUNK) -> RunSums:
    """Launch ``long_run_kernel`` as often as the batch needs (:func:`long_run_launches`): the partial sums of
    the runs longer than CHUNK, two tree levels per launch, into buffers of 2 * ceil(n / CHUNK) rows. (``chunk``
    other than CHUNK: only for tests, which reach several launches with small batches.)"""
    from lptsim.ctr.kernels.run_sum_kernels import long_run_kernel

    n, dim = grad.shape
    top, stride = grad, 1
    launches = long_run_launches(n, chunk)
    if launches:
        dp, _ = gather_block(dim)
        windows = triton_cdiv(n, chunk)
        for level in range(launches):
            out = torch.empty(2 * windows, dim, device=grad.device)
            long_run_kernel[(windows,)](sorted_keys, perm, top, out, n, stride, FIRST=level == 0, D=dim, DP=dp,
                                        CHUNK=chunk, **long_run_launch(dim))
            top, stride = out, stride * chunk**2
    return RunSums(sorted_keys, perm, grad, top, stride, launches > 0)


def _grad_rows(grad: torch.Tensor | None, n: int, dim: int, device) -> torch.Tensor:
    return torch.zeros(n, dim, device=device) if grad is None else grad.reshape(n, dim).float().contiguous()


def _launch(view: KernelTable, pending: Pending, grad: torch.Tensor, wnew: torch.Tensor, lr: float, step_lr: float,
            phase: int) -> None:
    """Run sums of ``grad`` (n, dim; batch order), then the update kernel in ``phase`` (0 one-pass, 1 two-pass
    stage, 2 two-pass commit). Advances the counters on the device: Adam's step count with the row optimizer
    (phases 0, 1), ``updates`` with the write-back (phases 0, 2). Shared ALPT steps split phases 0 and 2 into
    the kernel's phases (1,) 3 and 4 around :func:`_update_shared_steps`."""
    n = grad.shape[0]
    dev = pending.sorted.device
    if view.adam_steps is not None and phase != 2:
        view.adam_steps.add_(1)
    sums = run_sums(pending.sorted, pending.perm, grad)
    args = (view, sums, wnew)
    if phase == 1 or view.step_mode == 0 or view.step_kind == 1:  # no step shared by many rows
        _update_kernel(*args, wnew, lr, step_lr, phase)
    else:
        if phase == 0:
            _update_kernel(*args, wnew, lr, step_lr, 1)
        gstep = torch.zeros(n, device=dev)
        _update_kernel(*args, gstep, lr, step_lr, 3)
        _update_shared_steps(view, pending.sorted, gstep, step_lr)
        _update_kernel(*args, gstep, lr, step_lr, 4)
    if phase != 1:
        view.updates.add_(1)


def _update_kernel(view: KernelTable, sums: RunSums, wnew: torch.Tensor, gstep: torch.Tensor, lr: float,
                   step_lr: float, phase: int) -> None:
    """One launch of ``fused_update_kernel`` in ``phase`` (see its docstring)."""
    from lptsim.ctr.kernels.update_kernels import fused_update_kernel

    n, dim = sums.grad.shape
    dummy = view.steps
    (b1, b2), (sb1, sb2) = ROW_BETAS, STEP_BETAS
    block = update_block(dim)
    fused_update_kernel[(triton_cdiv(n, block),)](
        *sums.args(), wnew, gstep, view.codes, view.steps, _step_idx_arg(view, sums.sorted),
        _or(view.sum_sq, dummy), _or(view.exp_avg, dummy), _or(view.exp_avg_sq, dummy), _or(view.step_m, dummy),
        _or(view.step_v, dummy), view.key, view.updates, _or(view.adam_steps, view.updates), n, sums.stride,
        lr, view.eps, b1, 1 - b1, b2, 1 - b2, step_lr, view.grad_scale, view.min_step,
        sb1, 1 - sb1, sb2, 1 - sb2, STEP_EPS,
        PADDED=view.padded, QMIN=float(view.qmin), QMAX=float(view.qmax), OPT=view.opt, STEP_MODE=view.step_mode,
        STOCHASTIC=view.stochastic, BLOCK=block, DP=gather_block(dim)[0], CHUNK=CHUNK, LONG=sums.long, PHASE=phase,
        BF16=view.bf16, **view.layout, **UPDATE_LAUNCH)


def _or(t: torch.Tensor | None, dummy: torch.Tensor) -> torch.Tensor:
    return dummy if t is None else t


def _update_shared_steps(view: KernelTable, sorted_ids: torch.Tensor, gstep: torch.Tensor, step_lr: float) -> None:
    """Shared ALPT steps from the rows' step gradients ``gstep`` (at each run head of ``sorted_ids``): summed
    per step in the fixed order of ``ordered_segment_sum`` over the rows in ascending order (the reference's),
    then the step optimizer. All on the device: the other positions get the key ``num_steps``, sorted last."""
    from lptsim.ctr.kernels.update_kernels import shared_step_kernel

    n = sorted_ids.numel()
    rows = sorted_ids.long()
    head = torch.ones(n, dtype=torch.bool, device=rows.device)
    head[1:] = rows[1:] != rows[:-1]
    num_steps = view.steps.numel()
    keys = torch.where(head, step_index(view, rows), num_steps).to(torch.int32)
    skeys, perm = torch.sort(keys, stable=True)
    sums = run_sums(skeys, perm, gstep.view(n, 1))
    sb1, sb2 = STEP_BETAS
    shared_step_kernel[(triton_cdiv(n, BLOCK),)](
        *sums.args(), view.steps, _or(view.step_m, view.steps), _or(view.step_v, view.steps), view.key,
        view.updates, n, num_steps, sums.stride, step_lr, view.min_step, sb1, 1 - sb1, sb2, 1 - sb2, STEP_EPS,
        STEP_MODE=view.step_mode, BF16=view.bf16, BLOCK=BLOCK, CHUNK=CHUNK, LONG=sums.long, **LAUNCH)


def fused_update(view: KernelTable, pending: Pending, lr: float, step_lr: float) -> None:
    """Row optimizer + (ALPT, one pass) step update + re-quantization of the rows of ``pending``, in place."""
    n = pending.sorted.numel()
    if n:
        grad = _grad_rows(pending.grad, n, view.dim, pending.sorted.device)
        shared = view.step_mode != 0 and view.step_kind != 1  # the rows are staged around the shared steps
        wnew = torch.empty(n, view.dim, device=grad.device) if shared else grad  # else unused (registers)
        _launch(view, pending, grad, wnew, lr, step_lr, phase=0)


def stage_two_pass(view: KernelTable, pending: Pending, lr: float) -> torch.Tensor:
    """Two-pass ALPT after the first backward: the row optimizer (state updated, rows not yet written).

    Returns the second pass's rows, one per sorted position (meaningful at the heads of runs): the updated
    rows rounded to nearest on the current steps, ``dequantize(quantize(w_new, step, "nearest"), step)``."""
    n, dim = pending.sorted.numel(), view.dim
    dev = pending.sorted.device
    pending.wnew = wnew = torch.zeros(n, dim, device=dev)
    if n == 0:
        pending.head_of = torch.zeros(0, dtype=torch.long, device=dev)
        return wnew
    _launch(view, pending, _grad_rows(pending.grad, n, dim, dev), wnew, lr, 0.0, phase=1)
    step = view.steps[step_index(view, pending.sorted)].float().unsqueeze(1)
    v = wnew / step
    f = torch.floor(v)
    codes = (f + (v - f >= 0.5).float()).clamp_(view.qmin, view.qmax)
    positions = torch.arange(n, device=dev)
    inv_perm = torch.empty_like(positions).scatter_(0, pending.perm, positions)
    head = torch.ones(n, dtype=torch.bool, device=dev)
    head[1:] = pending.sorted[1:] != pending.sorted[:-1]
    starts = torch.where(head, positions, 0).cummax(0).values  # each sorted position's run head
    pending.head_of = starts[inv_perm]  # batch position -> head of its run
    return codes * step


def commit_two_pass(view: KernelTable, pending: Pending, grad_hat: torch.Tensor | None, step_lr: float) -> None:
    """Two-pass ALPT after the second backward: steps from ``grad_hat`` (the second pass's upstream gradient
    per lookup, batch order), then the staged rows re-quantized on the new steps and written back."""
    n = pending.sorted.numel()
    if n:
        grad = _grad_rows(grad_hat if grad_hat is not None else pending.grad, n, view.dim, pending.wnew.device)
        _launch(view, pending, grad, pending.wnew, 0.0, step_lr, phase=2)


class SecondPassRows(torch.autograd.Function):
    """The second pass's lookup: ``rows[head_of]``; the gradient handed to ``rows`` is the upstream gradient
    per lookup in batch order (same shape), which ``commit_two_pass`` sums by run."""

    @staticmethod
    def forward(ctx, rows, head_of):  # noqa: D102
        return rows[head_of]

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return grad.contiguous(), None
