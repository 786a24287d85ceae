"""The torch reference backend: a table's lookup and ALPT's passes in plain torch, on any device.

It is the definition the Triton kernels are tested against bit for bit, so it follows the numerical contract
(:mod:`lptsim.ctr.contract`, :mod:`lptsim.ctr.kernels.triton_kernels`): no fused multiply-adds, sums in the
kernels' fixed order (:mod:`lptsim.ctr.ordered_sums`), correctly rounded square roots and divisions (``div_rn``:
no ``/`` in this module, since CUDA torch divides by a Python number as a multiply by its reciprocal; a test
enforces it), Adam's bias corrections by the contract's binary powering, and every rounding through
:mod:`lptsim.quant` (``quantize`` for codes, ``stochastic_cast`` for 16-bit state). So it is the same arithmetic
on the CPU and on CUDA.

The row optimizers and ALPT's step optimizers are small functions, one per optimizer, chosen by name from
:data:`ROW_UPDATES` and :data:`STEP_UPDATES`: a new optimizer is one more function here and one more branch in
the kernel (with its code in the contract).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lptsim.ctr.contract import (
    ROW_BETAS,
    ROW_EPS,
    STEP_BETAS,
    STEP_EPS,
    Stream,
    bias_correction,
    counter_base,
    step_seed,
    table_seed,
)
from lptsim.ctr.ordered_sums import div_rn, ordered_row_sum, ordered_segment_sum, sqrt_rn
from lptsim.ctr.table.state import RowState, StepState, store_state, stream_counters
from lptsim.quant import dequantize, lsq_step_grad, quantize


@dataclass
class Touched:
    """The reference's record of one training lookup: the distinct rows (ascending) and their values, a gradient
    leaf whose ``.grad`` the backward fills; then what the update's passes stage."""

    rows: torch.Tensor
    leaf: torch.Tensor
    grad: torch.Tensor | None = None  # the first backward's gradient (zeros when the rows got none)
    w_new: torch.Tensor | None = None  # the row optimizer's full-precision result
    codes_dr: torch.Tensor | None = None  # two-pass ALPT: w_new rounded to nearest on the current steps
    grad_hat: torch.Tensor | None = None  # two-pass ALPT: the second pass's gradient


class GatherRows(torch.autograd.Function):
    """``rows[inverse]`` whose backward adds duplicates' gradients in the kernels' fixed order on every
    device (``ordered_segment_sum``; ``F.embedding``'s backward order differs between CPU and CUDA)."""

    @staticmethod
    def forward(ctx, rows, inverse):  # noqa: D102
        ctx.save_for_backward(inverse)
        ctx.num_rows = rows.shape[0]
        return rows[inverse]

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        (inverse,) = ctx.saved_tensors
        g = grad.reshape(-1, grad.shape[-1]).float()
        return ordered_segment_sum(g, inverse.reshape(-1), ctx.num_rows), None


# -- row optimizers: (state, rows, w, g, lr, key, row_offset) -> new rows, state written ---------------------------
def sgd_rows(state: RowState, rows, w, g, lr: float, key: int, row_offset: int) -> torch.Tensor:
    return w - lr * g


def adagrad_rows(state: RowState, rows, w, g, lr: float, key: int, row_offset: int) -> torch.Tensor:
    """Row-wise Adagrad (FBGEMM's): one accumulator per row of the mean squared gradient."""
    acc = state.sum_sq[rows].float() + div_rn(ordered_row_sum(g * g), float(g.shape[1]))
    store_state(state.sum_sq, rows, acc, key, stream_counters(Stream.ROW_SUM_SQ, rows, 1, row_offset))
    return w - div_rn(lr * g, (sqrt_rn(acc) + ROW_EPS).unsqueeze(1))


def adam_rows(state: RowState, rows, w, g, lr: float, key: int, row_offset: int) -> torch.Tensor:
    """Adam with a global step count for the bias corrections (torch.optim.SparseAdam's rule)."""
    b1, b2 = ROW_BETAS
    state.steps += 1
    t = int(state.steps)
    bc1, bc2 = bias_correction(b1, t), bias_correction(b2, t)
    # Plain products and sums (add_(alpha=) and addcmul_ may fuse a multiply-add): the kernels' operations.
    m = state.exp_avg[rows].float() * b1 + (1 - b1) * g
    v = state.exp_avg_sq[rows].float() * b2 + (1 - b2) * g * g
    store_state(state.exp_avg, rows, m, key, stream_counters(Stream.ROW_EXP_AVG, rows, w.shape[1], row_offset))
    store_state(state.exp_avg_sq, rows, v, key, stream_counters(Stream.ROW_EXP_AVG_SQ, rows, w.shape[1], row_offset))
    return w - div_rn(lr * div_rn(m, bc1), sqrt_rn(div_rn(v, bc2)) + ROW_EPS)


ROW_UPDATES = {"sgd": sgd_rows, "adagrad": adagrad_rows, "adam": adam_rows}


# -- ALPT's step optimizers: (state, steps, idx, g, lr, t, key, offset) -> new steps (before the clamp) ----------
def sgd_steps(state: StepState, step, idx, g, lr: float, t: int, key: int, offset: int) -> torch.Tensor:
    return step - lr * g


def adagrad_steps(state: StepState, step, idx, g, lr: float, t: int, key: int, offset: int) -> torch.Tensor:
    acc = state.sum_sq[idx].float() + g * g
    store_state(state.sum_sq, idx, acc, key, stream_counters(Stream.STEP_SUM_SQ, idx, 1, offset))
    return step - div_rn(lr * g, sqrt_rn(acc) + STEP_EPS)


def adam_steps(state: StepState, step, idx, g, lr: float, t: int, key: int, offset: int) -> torch.Tensor:
    """Adam whose bias corrections count the table's updates (t = this update)."""
    b1, b2 = STEP_BETAS
    bc1, bc2 = bias_correction(b1, t), bias_correction(b2, t)
    m = state.m[idx].float() * b1 + (1 - b1) * g
    v = state.v[idx].float() * b2 + (1 - b2) * g * g
    store_state(state.m, idx, m, key, stream_counters(Stream.STEP_M, idx, 1, offset))
    store_state(state.v, idx, v, key, stream_counters(Stream.STEP_V, idx, 1, offset))
    return step - div_rn(lr * div_rn(m, bc1), sqrt_rn(div_rn(v, bc2)) + STEP_EPS)


STEP_UPDATES = {"sgd": sgd_steps, "adagrad": adagrad_steps, "adam": adam_steps}


# -- the lazy every-row decay (TableConfig.every_row_decay) --------------------------------------------------------
def replay_decay(table, rows: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``rows`` (distinct local ids) with values ``w``, brought up to the table's last update: each row replays, in
    order, the updates it missed as a dense optimizer would have run them on it, with gradient ``wd * w`` only
    (SGD: ``w -= lr_s * wd * w``; Adam: its moments and bias corrections at update ``s``, so a row outside the
    batch also keeps moving by its momentum). Writes the rows' Adam moments and clocks; returns the new values."""
    clock, cfg = table.decay, table.config
    last = clock.row_clock[rows]
    missed = int(clock.clock) - last
    k_max = int(missed.max()) if missed.numel() else 0
    if k_max <= 0:
        return w
    order = torch.argsort(missed, descending=True, stable=True)  # the rows still replaying at pass j: a prefix
    rows, last, w = rows[order], last[order], w[order].clone()
    active = torch.bincount(missed.clamp_min(0), minlength=k_max + 1).flip(0).cumsum(0).flip(0)  # missed >= j
    wd, adam = float(cfg.every_row_decay), cfg.optimizer == "adam"
    rs = table.row_state
    if adam:
        b1, b2 = ROW_BETAS
        m, v = rs.exp_avg[rows].float(), rs.exp_avg_sq[rows].float()
    for j in range(1, k_max + 1):
        n = int(active[j])
        s = last[:n] + j  # the update each of these rows replays (1-based)
        lr = clock.lrs[s - 1].float().unsqueeze(1)
        g = wd * w[:n]
        if adam:
            m[:n] = m[:n] * b1 + (1 - b1) * g
            v[:n] = v[:n] * b2 + (1 - b2) * g * g
            bc1, bc2 = _bias_corrections(b1, s), _bias_corrections(b2, s)
            w[:n] = w[:n] - lr * div_rn(div_rn(m[:n], bc1), sqrt_rn(div_rn(v[:n], bc2)) + ROW_EPS)
        else:
            w[:n] = w[:n] - lr * g
    if adam:
        key = decay_key(table)
        store_state(rs.exp_avg, rows, m, key, stream_counters(Stream.ROW_EXP_AVG, rows, w.shape[1], table.row_offset))
        store_state(rs.exp_avg_sq, rows, v, key,
                    stream_counters(Stream.ROW_EXP_AVG_SQ, rows, w.shape[1], table.row_offset))
    clock.row_clock[rows] = clock.clock
    return w[torch.argsort(order)]


def _bias_corrections(beta: float, steps: torch.Tensor) -> torch.Tensor:
    """(n, 1) float32: :func:`bias_correction` (the kernels' binary powering) at each row's update number."""
    unique, inverse = torch.unique(steps, return_inverse=True)
    values = torch.tensor([bias_correction(beta, int(u)) for u in unique], dtype=torch.float32, device=steps.device)
    return values[inverse].unsqueeze(1)


def decay_key(table) -> int:
    """The Philox key of the decay replay's 16-bit state writes and write-back (its own key: the update's draws
    at the same counters stay independent of it)."""
    return step_seed(table_seed(table.config.seed, "every-row decay"), int(table.decay.clock))


class TorchBackend:
    """A table's lookups and updates in torch (the reference path)."""

    name = "torch"

    def __init__(self, table):
        self.table = table

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """FP32 values of ``rows`` (only these rows are ever materialised)."""
        t = self.table
        if not t.config.quantized:
            return t.weight[rows]
        return dequantize(t.codes.read(rows), t.steps_of(rows).unsqueeze(1))

    def lookup(self, ids: torch.Tensor, record: bool) -> tuple[torch.Tensor, Touched | None]:
        self.table.check_ids(ids)
        uniq, inverse = torch.unique(ids, return_inverse=True)
        rows = self.gather(uniq)
        if record and self.table.decay is not None:  # the rows as a dense optimizer would have left them
            rows = replay_decay(self.table, uniq, rows)
        touched = None
        if record:
            rows.requires_grad_(True)
            touched = Touched(uniq, rows)
        return GatherRows.apply(rows, inverse), touched

    def row_grads(self, touched: Touched) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(distinct rows, their values, their summed gradient or None): the gradient is the tensor the update
        reads, so scaling it in place (clipping) changes the update."""
        return touched.rows, touched.leaf.detach(), touched.leaf.grad

    def stage(self, touched: Touched, group: dict) -> None:
        """After the backward: the row optimizer on the touched rows (state written, rows not yet)."""
        t = self.table
        leaf = touched.leaf
        touched.grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
        grad = touched.grad
        if t.decay is not None:  # coupled decay, as torch.optim's weight_decay (the steps see the data gradient)
            grad = grad + t.config.every_row_decay * leaf.detach()
        touched.w_new = ROW_UPDATES[t.config.optimizer](t.row_state, touched.rows, leaf.detach(), grad,
                                                        group["lr"], t.state_key(), t.row_offset)

    def second_pass(self, touched: Touched):
        """(leaf, rows_of): the staged rows rounded to nearest on the current steps, as a gradient leaf, and the
        lookup that returns them for the same ids (ALPT's second pass)."""
        step = self.table.steps_of(touched.rows).unsqueeze(1)
        touched.codes_dr = quantize(touched.w_new, step, self.table.spec, "nearest")
        leaf = dequantize(touched.codes_dr, step).requires_grad_(True)
        return leaf, lambda ids: GatherRows.apply(leaf, torch.unique(ids, return_inverse=True)[1])

    def commit(self, touched: Touched, group: dict) -> None:
        """Update the steps (ALPT) and write the staged rows back (as codes, or as FP32 rows)."""
        t, rows, w_new = self.table, touched.rows, touched.w_new
        if t.decay is not None:
            t.decay.record(rows, group["lr"])
        if not t.config.quantized:
            t.weight[rows] = w_new
            if t.updates is not None:  # 16-bit state: the counter keys its draws
                t.updates += 1
            return
        if t.config.learns_steps:
            grad = touched.grad_hat if touched.grad_hat is not None else touched.grad
            self._update_steps(rows, w_new, grad, touched.codes_dr, group["step_lr"])
        t.updates += 1
        counters = counter_base(Stream.WRITE_BACK) + ((rows + t.row_offset) * t.dim).cpu().numpy()
        codes = quantize(w_new, t.steps_of(rows).unsqueeze(1), t.spec, t.config.write_rounding,
                         seed=step_seed(t.config.seed, int(t.updates)), offset=counters)
        t.codes.write(rows, codes)

    def flush(self) -> None:
        """Every-row decay: bring every row up to the last update (written back with the table's rounding)."""
        t = self.table
        stale = torch.nonzero(t.decay.row_clock < t.decay.clock).reshape(-1)
        if stale.numel() == 0:
            return
        w = replay_decay(t, stale, self.gather(stale))
        if not t.config.quantized:
            t.weight[stale] = w
            return
        counters = counter_base(Stream.WRITE_BACK) + ((stale + t.row_offset) * t.dim).cpu().numpy()
        codes = quantize(w, t.steps_of(stale).unsqueeze(1), t.spec, t.config.write_rounding, seed=decay_key(t),
                         offset=counters)
        t.codes.write(stale, codes)

    def _update_steps(self, rows, w_new, grad, codes_dr, lr: float) -> None:
        """ALPT: each touched step moves by its step optimizer on the LSQ gradient of its rows (a shared step: the
        sum of its rows' gradients, the chain rule, added in the kernels' fixed order)."""
        t = self.table
        lsq = lsq_step_grad(w_new, t.steps_of(rows).unsqueeze(1), t.spec, codes=codes_dr)
        g = ordered_row_sum(grad * lsq) * t.grad_scale
        idx = t.step_index(rows)
        if t.config.step_granularity != "row":
            sums = ordered_segment_sum(g.unsqueeze(1), idx, t.step.numel())
            idx = torch.unique(idx)
            g = sums[idx, 0]
        offset = t.row_offset if t.config.step_granularity == "row" else 0  # steps shared by shards: by index
        key = t.state_key()
        new = STEP_UPDATES[t.config.step_optimizer](t.step_state, t.step[idx].float(), idx, g, lr,
                                                    int(t.updates) + 1, key, offset)
        store_state(t.step, idx, new.clamp_min(t.config.min_step), key, stream_counters(Stream.STEP, idx, 1, offset))
