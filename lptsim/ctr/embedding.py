"""LowPrecisionEmbedding: tables held as low-bit codes + per-row steps, trained row by row.

Methods (``method=``):

* ``fp``: the FP32 baseline, updated by the same fused row optimizer as the LPT methods.
* ``lpt-dr`` / ``lpt-sr``: LPT with a fixed step (per row, or one per table), written back
  with round-to-nearest / stochastic rounding.
* ``alpt``: the paper's Algorithm 1: learned per-row steps. ``alpt_variant="two-pass"`` takes
  the step gradient from a second forward pass on the round-to-nearest updated rows;
  ``"one-pass"`` reuses the first backward's upstream gradient (what a fused kernel computes).
* ``lsq`` / ``pact``: QAT baselines with FP32 weights, fake-quantized in the forward pass.

Low-precision tables keep no FP32 copy: only the rows of the current batch are dequantized.
Their rows are updated by a fused row optimizer (``sgd``, row-wise ``adagrad`` or ``adam``),
like FBGEMM's table-batched embeddings, after the backward pass. All rounding goes
through :mod:`lptsim.quant`; SR draws are keyed by (seed, training step) and the global
element index ``row * dim + col``, so they do not depend on which rows share a batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lptsim.ctr.ordered_sums import ordered_row_sum, ordered_segment_sum, sqrt_rn
from lptsim.quant import QuantSpec, dequantize, lsq_step_grad, pack, packed_nbytes, quantize, uniforms, unpack
from lptsim.quant.floats import float_dtype, stochastic_cast

METHODS = ("fp", "lpt-dr", "lpt-sr", "alpt", "lsq", "pact")
ROW_OPTIMIZERS = ("sgd", "adagrad", "adam")
DEFAULT_ROW_LR = {"sgd": 0.1, "adagrad": 0.01, "adam": 1e-3}
STEP_BETAS, STEP_EPS = (0.9, 0.999), 1e-12  # Adam on ALPT's step sizes
STEP_OPTIMIZERS = ("adam", "adagrad", "sgd")
STEP_GRANULARITIES = ("row", "field", "table")
INIT_ROUNDINGS = ("nearest", "stochastic")
INIT_STREAM, STATE_STREAM = 2**62, 2**62 + 1  # SR streams of the initial table and of 16-bit state writes


def normal_rows(seed: int, start: int, count: int, dim: int, std: float, chunk: int = 1 << 20) -> torch.Tensor:
    """N(0, std^2) initial values of global rows start..start+count-1, keyed by (seed, global element).

    Box-Muller on Philox uniforms (lptsim.quant.uniforms): any shard of a table gets exactly the
    rows the whole table would have, so the initialisation does not depend on the sharding.
    """
    out = np.empty(count * dim, dtype=np.float32)
    stream = step_seed(seed, 2**62)  # a stream of its own, apart from the SR draws of training steps
    for a in range(0, out.size, chunk):
        b = min(a + chunk, out.size)
        u = uniforms(stream, 2 * (start * dim + a), 2 * (b - a))
        u1, u2 = u[0::2], u[1::2]
        out[a:b] = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2 * np.pi * u2)
    return torch.from_numpy(out).view(count, dim) * std


class _GatherRows(torch.autograd.Function):
    """``rows[inverse]`` whose backward adds duplicates' gradients in the kernels' fixed order on every
    device (:func:`ordered_segment_sum`; ``F.embedding``'s backward order differs between CPU and CUDA)."""

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


def step_seed(seed: int, step: int) -> int:
    """The SR stream of one training step: splitmix64 of (seed, step), an integer in [0, 2**64)."""
    z = (seed * 0x9E3779B97F4A7C15 + step + 1) & (2**64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return z ^ (z >> 31)


def store_state(buf: torch.Tensor, index: torch.Tensor, value: torch.Tensor, stream: int, tag: int,
                counters: torch.Tensor) -> None:
    """Write float32 ``value`` into state ``buf`` at ``index``: a plain copy for a float32 buffer, unbiased
    stochastic rounding for a 16-bit one (draws keyed by the update's stream, the buffer's ``tag`` and each
    element's global ``counters``)."""
    if buf.dtype != torch.float32:
        value = stochastic_cast(value, buf.dtype, step_seed(stream, tag), counters.reshape(value.shape))
    buf[index] = value


def element_counters(rows: torch.Tensor, width: int, row_offset: int = 0) -> torch.Tensor:
    """Global element indices ``(row_offset + row) * width + col`` of ``rows``, shape (len(rows), width)."""
    base = (rows.to(torch.int64).cpu() + row_offset) * width
    return base.unsqueeze(1) + torch.arange(width)


def padded_dim(dim: int, bits: int) -> int:
    """Codes stored per row: ``dim`` rounded up so a packed row fills whole bytes."""
    per_byte = 8 // math.gcd(8, bits)
    return -(-dim // per_byte) * per_byte


def code_row_bytes(dim: int, bits: int) -> int:
    """Bytes of one row of codes: int8 (8 bits), int16 (9-16), packed whole bytes (1-7)."""
    if bits == 8:
        return dim
    return 2 * dim if bits > 8 else packed_nbytes(padded_dim(dim, bits), bits)


class CodeStore(nn.Module):
    """Integer codes of a (rows, dim) table in ``bits`` bits: int8 (8), packed uint8 (1-7), int16 (9-16)."""

    def __init__(self, rows: int, dim: int, bits: int):
        super().__init__()
        self.spec = QuantSpec(bits)
        self.dim, self.bits = dim, bits
        if bits == 8:
            self.register_buffer("data", torch.zeros(rows, dim, dtype=torch.int8))
        elif bits > 8:
            self.register_buffer("data", torch.zeros(rows, dim, dtype=torch.int16))
        else:
            # Pad each row to whole bytes so rows can be gathered and rewritten independently.
            self.padded_dim = padded_dim(dim, bits)
            self.register_buffer("data", torch.zeros(rows, code_row_bytes(dim, bits), dtype=torch.uint8))

    def read(self, rows: torch.Tensor) -> torch.Tensor:
        """Codes of ``rows`` as an integer tensor (len(rows), dim)."""
        if self.bits >= 8:
            return self.data[rows]
        codes = unpack(self.data[rows].cpu(), self.bits, (rows.numel(), self.padded_dim))[:, : self.dim]
        return codes.to(self.data.device)

    def write(self, rows: torch.Tensor, codes: torch.Tensor) -> None:
        """Store ``codes`` (len(rows), dim) for ``rows`` (unique)."""
        if self.bits >= 8:
            self.data[rows] = codes.to(self.data.dtype)
            return
        padded = torch.zeros(rows.numel(), self.padded_dim, dtype=torch.int8)
        padded[:, : self.dim] = codes.cpu()
        self.data[rows] = pack(padded, self.bits).view(rows.numel(), -1).to(self.data.device)

    def nbytes(self) -> int:
        return self.data.numel() * self.data.element_size()


class RowOptimizer(nn.Module):
    """Fused per-row optimizer for the rows a batch touched: sgd, row-wise adagrad (one float per
    row), or adam (two floats per element, with a global step count for bias correction)."""

    def __init__(self, name: str, rows: int, dim: int, lr: float | None, eps: float = 1e-8,
                 betas: tuple[float, float] = (0.9, 0.999), state_dtype: str = "float32", row_offset: int = 0):
        super().__init__()
        if name not in ROW_OPTIMIZERS:
            raise ValueError(f"row optimizer must be one of {ROW_OPTIMIZERS}, got {name!r}")
        self.name, self.lr = name, DEFAULT_ROW_LR[name] if lr is None else float(lr)
        if not self.lr > 0:
            raise ValueError(f"embedding lr must be > 0, got {lr}")
        self.eps, self.betas, self.row_offset = eps, betas, row_offset
        dtype = float_dtype(state_dtype)
        if name == "adagrad":
            self.register_buffer("sum_sq", torch.zeros(rows, dtype=dtype))
        elif name == "adam":
            self.register_buffer("exp_avg", torch.zeros(rows, dim, dtype=dtype))
            self.register_buffer("exp_avg_sq", torch.zeros(rows, dim, dtype=dtype))
            self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def update(self, rows: torch.Tensor, w: torch.Tensor, g: torch.Tensor, lr_scale: float = 1.0,
               stream: int = 0) -> torch.Tensor:
        """New values of ``rows`` given their values ``w`` and gradients ``g``.

        ``stream`` keys the stochastic rounding of 16-bit optimizer state (ignored for float32 state).
        """
        lr = self.lr * lr_scale
        if self.name == "sgd":
            return w - lr * g
        if self.name == "adagrad":
            acc = self.sum_sq[rows].float() + ordered_row_sum(g * g) / g.shape[1]
            store_state(self.sum_sq, rows, acc, stream, 1, element_counters(rows, 1, self.row_offset))
            return w - lr * g / (sqrt_rn(acc) + self.eps).unsqueeze(1)
        b1, b2 = self.betas
        bc1, bc2 = self.next_bias_corrections()
        # Plain products and sums (add_(alpha=) and addcmul_ may fuse a multiply-add): the kernels' operations.
        m = self.exp_avg[rows].float() * b1 + (1 - b1) * g
        v = self.exp_avg_sq[rows].float() * b2 + (1 - b2) * g * g
        counters = element_counters(rows, w.shape[1], self.row_offset)
        store_state(self.exp_avg, rows, m, stream, 2, counters)
        store_state(self.exp_avg_sq, rows, v, stream, 3, counters)
        return w - lr * (m / bc1) / (sqrt_rn(v / bc2) + self.eps)

    def next_bias_corrections(self) -> tuple[float, float]:
        """Adam: advance the global step count; return (1 - b1^t, 1 - b2^t)."""
        self.steps += 1
        t = int(self.steps)
        return 1 - self.betas[0] ** t, 1 - self.betas[1] ** t

    def nbytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self.buffers())


class _FakeQuantLSQ(torch.autograd.Function):
    """LSQ fake quantization: codes by lptsim.quant (nearest), STE for w, LSQ gradient for the step."""

    @staticmethod
    def forward(ctx, w, step, spec, scale):  # noqa: D102
        codes = quantize(w.detach(), step.detach().unsqueeze(-1), spec, "nearest")
        ctx.save_for_backward(w, step, codes)
        ctx.spec, ctx.scale = spec, scale
        return dequantize(codes, step.detach().unsqueeze(-1))

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        w, step, codes = ctx.saved_tensors
        v = w / step.unsqueeze(-1)
        inside = ((v > ctx.spec.qmin) & (v < ctx.spec.qmax)).to(grad.dtype)
        g_step = (grad * lsq_step_grad(w, step.unsqueeze(-1), ctx.spec, codes=codes)).sum(-1) * ctx.scale
        return grad * inside, g_step, None, None


class _FakeQuantPACT(torch.autograd.Function):
    """PACT (Choi et al., 2018): clip to [-alpha, alpha], quantize with step alpha/qmax; STE inside."""

    @staticmethod
    def forward(ctx, w, alpha, spec):  # noqa: D102
        a = alpha.detach()
        step = a / spec.qmax
        clipped = torch.maximum(torch.minimum(w.detach(), a), -a)
        ctx.save_for_backward(w, alpha)
        return dequantize(quantize(clipped, step, spec, "nearest"), step)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        w, alpha = ctx.saved_tensors
        outside = w.abs() >= alpha
        return grad * (~outside), (grad * torch.sign(w) * outside).sum().reshape(alpha.shape), None


class LowPrecisionEmbedding(nn.Module):
    """An embedding table like ``nn.Embedding``: ids (...) -> float (..., dim).

    Args:
        num_embeddings, dim: table shape.
        bits: code width, 1..16 (ignored by ``fp``).
        method: one of ``METHODS`` (see the module docstring).
        optimizer: row optimizer of low-precision tables: ``sgd``, ``adagrad`` (default) or ``adam``.
        lr: row learning rate (default by optimizer: sgd 0.1, adagrad 0.01, adam 1e-3).
        init_std: rows start as N(0, init_std^2), then quantized (FuxiCTR's 1e-4).
        init_rounding: how the initial rows become codes: ``stochastic`` (default; keyed by (seed, global
            element), like every SR draw) or ``nearest``. At 2 bits with a small ``init_std`` nearest
            rounding starts most rows at exactly zero; stochastic keeps their mean (measured: +0.003 AUC at
            2 bits, analysis/results/alpt_defaults).
        clip: initial range covered by the codes; the initial step is ``clip / 2**(bits-1)``.
        step_granularity: one step per ``row`` (default), per ``field`` (needs ``field_starts``) or
            per ``table``, for LPT and ALPT. A shared ALPT step gets the exact chain-rule gradient:
            the sum of the LSQ gradients of the batch's rows using it.
        field_starts: global row where each field's ids start (the feature map's offsets).
        step_lr, step_optimizer: ALPT's step update, with learning rate ``step_lr * initial step``:
            ``adam`` (default; moves a step by about that much per update, two floats per step),
            ``adagrad`` (one float per step) or ``sgd`` (no state). Default step_lr 1e-2.
        state_dtype: ``float32``, ``bfloat16`` or ``float16`` for the steps and every optimizer state (row
            and step); 16-bit state is written with unbiased stochastic rounding. Default: ``bfloat16`` for
            the low-precision methods (training state within codes + 8 B/row at dim 16 with row-wise Adagrad
            and Adam on per-row steps, no measurable AUC cost), ``float32`` for ``fp`` (the baseline). The
            Triton kernels take float32 and bfloat16 state.
        grad_scale: ALPT/LSQ step-gradient scale; default 1/sqrt(dim * qmax) (LSQ's).
        min_step: steps are clamped to at least this.
        alpt_variant: ``two-pass`` (the paper) or ``one-pass`` (fused-kernel form).
        seed: SR stream seed.
        row_offset: global index of this table's row 0 (a shard of a larger table): initial
            values and SR draws are keyed by global row, so shards reproduce the whole table.
        backend: ``auto`` (Triton kernels for CUDA tables, the torch/numba path otherwise),
            ``torch`` (always the reference path) or ``triton`` (always the kernels; on the CPU
            only under ``TRITON_INTERPRET=1``). Kernels cover bits 1-8 with SGD, row-wise
            Adagrad or Adam for LPT and ALPT (one- and two-pass, a step per row, field or table, SGD, Adam
            or Adagrad on the steps), float32 or bfloat16 state; other settings use the reference path.
    """

    def __init__(self, num_embeddings: int, dim: int, bits: int = 8, method: str = "alpt", optimizer: str = "adagrad",
                 lr: float | None = None, init_std: float = 1e-4, clip: float = 0.05, step_granularity: str = "row",
                 field_starts: Sequence[int] | None = None, step_lr: float = 1e-2, step_optimizer: str = "adam",
                 grad_scale: float | None = None, min_step: float = 1e-8, alpt_variant: str = "two-pass",
                 seed: int = 0, backend: str = "auto", row_offset: int = 0, init_rounding: str = "stochastic",
                 state_dtype: str | None = None):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if num_embeddings < 1 or dim < 1:
            raise ValueError(f"num_embeddings and dim must be >= 1, got {num_embeddings}, {dim}")
        if backend not in ("auto", "torch", "triton"):
            raise ValueError(f"backend must be 'auto', 'torch' or 'triton', got {backend!r}")
        self.backend = backend
        if alpt_variant not in ("two-pass", "one-pass"):
            raise ValueError(f"alpt_variant must be 'two-pass' or 'one-pass', got {alpt_variant!r}")
        if step_optimizer not in STEP_OPTIMIZERS:
            raise ValueError(f"step_optimizer must be one of {STEP_OPTIMIZERS}, got {step_optimizer!r}")
        if init_rounding not in INIT_ROUNDINGS:
            raise ValueError(f"init_rounding must be one of {INIT_ROUNDINGS}, got {init_rounding!r}")
        n_steps = _num_steps(step_granularity, num_embeddings, field_starts)
        if state_dtype is None:
            state_dtype = "bfloat16" if method in ("lpt-dr", "lpt-sr", "alpt") else "float32"
        state = float_dtype(state_dtype)
        self.step_granularity, self.init_rounding, self.state_dtype = step_granularity, init_rounding, state_dtype
        self.num_embeddings, self.dim, self.method = num_embeddings, dim, method
        self.clip, self.step0 = float(clip), float(clip) / 2 ** (bits - 1)
        self.spec = QuantSpec(bits)
        self.bits = bits
        self.seed, self.step_lr, self.min_step = seed, step_lr, min_step
        self.alpt_variant, self.step_optimizer = alpt_variant, step_optimizer
        self.grad_scale = grad_scale if grad_scale is not None else 1.0 / math.sqrt(dim * max(self.spec.qmax, 1))
        self.updates_itself = method in ("fp", "lpt-dr", "lpt-sr", "alpt")
        self.row_offset = int(row_offset)
        init = normal_rows(seed, self.row_offset, num_embeddings, dim, init_std)
        step0 = self.step0
        if method == "fp":  # FP32 rows in a buffer, updated by the same row optimizer as LPT: a fair baseline
            self.register_buffer("weight", init)
            self.row_optimizer = RowOptimizer(optimizer, num_embeddings, dim, lr, state_dtype=state_dtype,
                                              row_offset=self.row_offset)
            if state_dtype != "float32":  # keys the SR draws of 16-bit optimizer state
                self.register_buffer("updates", torch.zeros((), dtype=torch.int64))
        elif method == "lsq":  # step = step0 * step_scale: Adam then moves it in relative terms
            self.weight = nn.Parameter(init)
            self.step_scale = nn.Parameter(torch.ones(num_embeddings))
        elif method == "pact":  # alpha = clip * alpha_scale
            self.weight = nn.Parameter(init)
            self.alpha_scale = nn.Parameter(torch.ones(()))
        else:
            if step_granularity == "field":
                self.register_buffer("field_starts", torch.as_tensor(list(field_starts), dtype=torch.int64))
            self.register_buffer("step", torch.full((n_steps,), step0, dtype=state))
            self.codes = CodeStore(num_embeddings, dim, bits)
            stochastic = init_rounding == "stochastic"
            self.codes.write(torch.arange(num_embeddings),
                             quantize(init, step0, self.spec, init_rounding, seed=step_seed(seed, INIT_STREAM),
                                      offset=self.row_offset * dim if stochastic else 0))
            self.row_optimizer = RowOptimizer(optimizer, num_embeddings, dim, lr, state_dtype=state_dtype,
                                              row_offset=self.row_offset)
            self.register_buffer("updates", torch.zeros((), dtype=torch.int64))
            if method == "alpt" and step_optimizer == "adam":
                self.register_buffer("step_m", torch.zeros(n_steps, dtype=state))
                self.register_buffer("step_v", torch.zeros(n_steps, dtype=state))
            elif method == "alpt" and step_optimizer == "adagrad":
                self.register_buffer("step_sum_sq", torch.zeros(n_steps, dtype=state))
        self._pending: tuple[torch.Tensor, torch.Tensor] | dict | None = None  # dict: kernel path
        self._staged: dict | None = None
        self._override: torch.Tensor | None = None

    # -- lookups ---------------------------------------------------------------------------
    def _check_ids(self, ids: torch.Tensor) -> None:
        if ids.numel() == 0:
            return
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= self.num_embeddings:
            bad = lo if lo < 0 else hi
            raise IndexError(f"embedding id {bad} is outside [0, {self.num_embeddings})")

    def step_index(self, rows: torch.Tensor) -> torch.Tensor:
        """The entry of ``self.step`` each of ``rows`` (local ids) uses."""
        if self.step_granularity == "row":
            return rows
        if self.step_granularity == "table":
            return torch.zeros_like(rows)
        return torch.searchsorted(self.field_starts, rows + self.row_offset, right=True) - 1

    def _steps_of(self, rows: torch.Tensor) -> torch.Tensor:
        return self.step[self.step_index(rows)].float()

    def uses_kernels(self) -> bool:
        """Whether this table runs the Triton kernels (see ``backend``)."""
        from lptsim.ctr import kernels

        if self.backend == "torch" or not self.updates_itself or self.method == "fp":
            return False
        if (self.backend == "auto" and not self.codes.data.is_cuda) or not kernels.supports(self):
            return False
        if self.backend == "triton":
            if not kernels.available(self.codes.data.device):
                raise RuntimeError("backend='triton' needs a CUDA device or TRITON_INTERPRET=1")
            return True
        return self.codes.data.is_cuda and kernels.available(self.codes.data.device)

    def dequantized_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """FP32 values of ``rows`` (only these rows are ever materialised)."""
        if self.method == "fp":
            return self.weight[rows]
        if self.uses_kernels():
            from lptsim.ctr import kernels

            return kernels.gather_dequant(self, rows)
        return dequantize(self.codes.read(rows), self._steps_of(rows).unsqueeze(1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if isinstance(self._override, dict):  # kernel path, ALPT's second pass: the DR-rounded updated rows
            from lptsim.ctr import kernels

            ov = self._override
            return kernels.SecondPassRows.apply(ov["leaf"], ov["head_of"]).view(*ids.shape, self.dim)
        if self._override is None and self.uses_kernels():  # ids checked on the device; no host sync
            from lptsim.ctr import kernels

            rows, self._pending = kernels.lookup(self, ids, torch.is_grad_enabled() and self.training)
            return rows.view(*ids.shape, self.dim)
        self._check_ids(ids)
        # QAT parameters are trained by the dense optimizer; clamping keeps them positive.
        if self.method == "lsq":
            step = (self.step0 * self.step_scale).clamp_min(self.min_step)
            step_rows = F.embedding(ids, step.unsqueeze(1)).squeeze(-1)
            return _FakeQuantLSQ.apply(F.embedding(ids, self.weight), step_rows, self.spec, self.grad_scale)
        if self.method == "pact":
            alpha = (self.clip * self.alpha_scale).clamp_min(self.min_step)
            return _FakeQuantPACT.apply(F.embedding(ids, self.weight), alpha, self.spec)
        uniq, inverse = torch.unique(ids, return_inverse=True)
        if self._override is not None:  # ALPT's second pass: the DR-rounded updated rows
            return _GatherRows.apply(self._override, inverse)
        rows = self.dequantized_rows(uniq)
        if torch.is_grad_enabled() and self.training:
            rows.requires_grad_(True)
            self._pending = (uniq, rows)
        return _GatherRows.apply(rows, inverse)

    # -- the fused row update ------------------------------------------------------------------
    @property
    def needs_second_pass(self) -> bool:
        return self.method == "alpt" and self.alpt_variant == "two-pass" and self._staged is not None

    def stage(self, lr_scale: float = 1.0) -> None:
        """After backward: the full-precision update of the touched rows (not yet written)."""
        if self._pending is None:
            return
        if isinstance(self._pending, dict):  # kernel path: the fused kernel does it all in commit()
            pending, self._pending = self._pending, None
            self._staged = {"kernel": pending, "lr_scale": lr_scale}
            if self.method == "alpt" and self.alpt_variant == "two-pass":  # row optimizer now, steps in commit()
                from lptsim.ctr import kernels

                self._staged["dr_rows"] = kernels.stage_two_pass(self, pending, lr_scale)
            return
        rows, leaf = self._pending
        self._pending = None
        grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
        w_new = self.row_optimizer.update(rows, leaf.detach(), grad, lr_scale, stream=self._state_stream())
        self._staged = {"rows": rows, "w_new": w_new, "grad": grad}

    def begin_second_pass(self) -> torch.Tensor:
        """Make forward return the round-to-nearest updated rows; return them as a grad leaf."""
        st = self._staged
        if "kernel" in st:
            leaf = st["dr_rows"].requires_grad_(True)
            self._override = {"leaf": leaf, "head_of": st["kernel"]["head_of"]}
            return leaf
        step = self._steps_of(st["rows"]).unsqueeze(1)
        st["codes_dr"] = quantize(st["w_new"], step, self.spec, "nearest")
        leaf = dequantize(st["codes_dr"], step).requires_grad_(True)
        self._override = leaf
        return leaf

    def end_second_pass(self, grad_hat: torch.Tensor) -> None:
        self._override = None
        self._staged["grad_hat"] = grad_hat

    def commit(self) -> None:
        """Update the steps (ALPT) and write the staged rows back as codes."""
        st = self._staged
        if st is None:
            return
        self._staged = None
        if "kernel" in st:
            from lptsim.ctr import kernels

            if "dr_rows" in st:  # two-pass ALPT: steps from the second pass's gradient, then the write-back
                kernels.commit_two_pass(self, st["kernel"], st.get("grad_hat"))
            else:  # advances the counters on the device
                kernels.fused_update(self, st["kernel"], st["lr_scale"])
            return
        rows, w_new = st["rows"], st["w_new"]
        if self.method == "fp":
            self.weight[rows] = w_new
            if self.state_dtype != "float32":
                self.updates += 1
            return
        if self.method == "alpt":
            self._update_steps(rows, w_new, st.get("grad_hat", st["grad"]), st.get("codes_dr"))
        rounding = "nearest" if self.method == "lpt-dr" else "stochastic"
        self.updates += 1
        codes = quantize(w_new, self._steps_of(rows).unsqueeze(1), self.spec, rounding,
                         seed=step_seed(self.seed, int(self.updates)),
                         offset=((rows + self.row_offset) * self.dim).cpu().numpy())
        self.codes.write(rows, codes)

    def _update_steps(self, rows: torch.Tensor, w_new: torch.Tensor, grad_hat: torch.Tensor,
                      codes_dr: torch.Tensor | None) -> None:
        lsq = lsq_step_grad(w_new, self._steps_of(rows).unsqueeze(1), self.spec, codes=codes_dr)
        g_rows = ordered_row_sum(grad_hat * lsq) * self.grad_scale
        idx = self.step_index(rows)
        if self.step_granularity != "row":  # a shared step: the sum of its rows' gradients (chain rule), added
            # in the kernels' fixed order (rows ascending, chunked tree) so both paths agree bit for bit
            sums = ordered_segment_sum(g_rows.unsqueeze(1), idx, self.step.numel())
            idx = torch.unique(idx)
            g_rows = sums[idx, 0]
        g, step = g_rows, self.step[idx].float()
        lr = self.step_lr * self.step0
        stream = self._state_stream()
        counters = element_counters(idx, 1, self.row_offset if self.step_granularity == "row" else 0)
        if self.step_optimizer == "sgd":
            new = step - lr * g
        elif self.step_optimizer == "adagrad":
            acc = self.step_sum_sq[idx].float() + g * g
            store_state(self.step_sum_sq, idx, acc, stream, 4, counters)
            new = step - lr * g / (sqrt_rn(acc) + STEP_EPS)
        else:
            (b1, b2), (bc1, bc2) = STEP_BETAS, self.step_bias_corrections()
            m = self.step_m[idx].float() * b1 + (1 - b1) * g
            v = self.step_v[idx].float() * b2 + (1 - b2) * g * g
            store_state(self.step_m, idx, m, stream, 5, counters)
            store_state(self.step_v, idx, v, stream, 6, counters)
            new = step - lr * (m / bc1) / (sqrt_rn(v / bc2) + STEP_EPS)
        store_state(self.step, idx, new.clamp_min(self.min_step), stream, 7, counters)

    def _state_stream(self) -> int:
        """The SR stream of this update's 16-bit state writes (0, and no host sync, for float32 state)."""
        if self.state_dtype == "float32":
            return 0
        return step_seed(self.seed, int(self.updates) + 1) ^ STATE_STREAM

    def step_bias_corrections(self) -> tuple[float, float]:
        """Adam bias corrections (1 - b1^t, 1 - b2^t) of the step update in progress (t = updates + 1)."""
        t = int(self.updates) + 1
        return 1 - STEP_BETAS[0] ** t, 1 - STEP_BETAS[1] ** t

    def apply_update(self, lr_scale: float = 1.0) -> None:
        """stage + commit, for the one-step forms (LPT, one-pass ALPT)."""
        self.stage(lr_scale)
        self.commit()

    # -- accounting ------------------------------------------------------------------------
    def memory_bytes(self) -> int:
        """Bytes held for the table, its steps and its optimizer state.

        ``fp`` and the low-precision methods: exactly the module's buffers (rows, steps, row
        optimizer state). ``lsq``/``pact`` keep FP32 parameters trained by the dense Adam, whose
        two state tensors per parameter (held by the trainer's optimizer) are counted here as 2x
        the parameter bytes.
        """
        if not self.updates_itself:
            params = sum(p.numel() * p.element_size() for p in self.parameters())
            return 3 * params
        return sum(b.numel() * b.element_size() for b in self.buffers())

    def table_bytes(self) -> int:
        """Bytes of the table itself (codes and steps, or the FP32 weights): what inference keeps."""
        if self.method == "fp":
            return self.weight.numel() * self.weight.element_size()
        if not self.updates_itself:
            return sum(p.numel() * p.element_size() for p in self.parameters())
        return self.codes.nbytes() + self.step.numel() * self.step.element_size()

    def fp32_bytes(self) -> int:
        """The FP32 table alone (the compression baseline)."""
        return 4 * self.num_embeddings * self.dim


def _num_steps(granularity: str, num_embeddings: int, field_starts: Sequence[int] | None) -> int:
    """How many step entries a table of this granularity holds (validating ``field_starts``)."""
    if granularity not in STEP_GRANULARITIES:
        raise ValueError(f"step_granularity must be one of {STEP_GRANULARITIES}, got {granularity!r}")
    if granularity == "row":
        return num_embeddings
    if granularity == "table":
        return 1
    starts = list(field_starts) if field_starts is not None else []
    if not starts or starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
        raise ValueError("step_granularity='field' needs field_starts: increasing global rows starting at 0 "
                         f"(the feature map's offsets), got {field_starts!r}")
    return len(starts)


def low_precision_tables(model: nn.Module) -> list[LowPrecisionEmbedding]:
    """The self-updating tables of a model."""
    return [m for m in model.modules() if isinstance(m, LowPrecisionEmbedding) and m.updates_itself]


@contextmanager
def _frozen_state(model: nn.Module):
    """Run a forward pass that changes no state: buffers (BatchNorm statistics) and the RNG are restored."""
    saved = [(b, b.detach().clone()) for m in model.modules() if not isinstance(m, (LowPrecisionEmbedding,
                                                                                     CodeStore, RowOptimizer))
             for b in m.buffers(recurse=False)]
    rng = torch.get_rng_state()
    try:
        yield
    finally:
        for b, copy in saved:
            b.copy_(copy)
        torch.set_rng_state(rng)


def second_pass(model: nn.Module, loss_closure, tables: list[LowPrecisionEmbedding], rng_before: torch.Tensor) -> None:
    """ALPT's step-gradient pass: the same batch (same dropout draws) on the DR-rounded updated rows.

    It leaves the dense parameters' gradients, BatchNorm statistics and the RNG as they were.
    """
    with _frozen_state(model):
        torch.set_rng_state(rng_before)
        leaves = [t.begin_second_pass() for t in tables]
        grads = torch.autograd.grad(loss_closure(), leaves, allow_unused=True)
        for t, leaf, g in zip(tables, leaves, grads, strict=True):
            t.end_second_pass(g if g is not None else torch.zeros_like(leaf))


def embedding_factory(method: str, bits: int = 8, seed: int = 0, **options: object):
    """A factory (num_embeddings, dim) -> LowPrecisionEmbedding with these settings (for the models)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    QuantSpec(bits)  # validate early, with the usual message
    counter = iter(range(1 << 30))
    return lambda n, d, row_offset=0: LowPrecisionEmbedding(n, d, bits=bits, method=method,
                                                            seed=seed * 1000 + next(counter), row_offset=row_offset,
                                                            **options)


__all__ = ["LowPrecisionEmbedding", "METHODS", "ROW_OPTIMIZERS", "embedding_factory", "second_pass",
           "low_precision_tables", "step_seed"]
