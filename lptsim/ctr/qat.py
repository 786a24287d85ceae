"""QAT embeddings, the baselines apart from the low-precision table: FP32 weights fake-quantized in the forward.

``lsq`` (Esser et al., 2020): a learned step per row, with LSQ's step gradient; ``pact`` (Choi et al., 2018): a
learned clip ``alpha`` per table and step ``alpha / qmax``. Both
keep FP32 parameters, trained by the model's dense optimizer (Adam); the codes come from :mod:`lptsim.quant`
(nearest). They take the same :class:`~lptsim.ctr.table.TableConfig` as the tables (options that concern row
training are ignored) and start from the same initial rows.

Initial steps (``qat_init``). ``weights`` (default) follows the LSQ paper: a row's step starts at
``2 <|w|> / sqrt(Qp)`` (``Qp = qmax``, at least 1), its mean magnitude. That can never start dead: a row's
largest magnitude is at least its mean, so it is at least ``step * sqrt(Qp) / 2 >= step / 2`` and rounds to a
nonzero code (equality needs every element of the row equal in magnitude and a tie at exactly half a step). A
fixed step ``clip / 2^(bits-1)`` (``qat_init="clip"``, lptsim 0.2's rule, kept to reproduce old runs) is far
above rows drawn with a small ``init_std`` (1e-4 against 0.05 / 8 at 4 bits): every code is 0 and the model's
input is all zeros until Adam has pushed weights past half a step. PACT's clip starts at ``qmax`` times LSQ's
step taken over the table's expected magnitude ``init_std * sqrt(2 / pi)`` (a number every shard of a table
agrees on), or at ``clip`` under ``qat_init="clip"``.

As in the LSQ paper, LSQ's step is itself the learned parameter, moved by the optimizer in the weights' units:
from a 1e-4 initialisation the weights grow by about the learning rate per Adam step, and a step that could only
move relative to its tiny start (``step_init * scale``) left 99.3% of the codes saturated at +-qmax after one
epoch on the shared sample. PACT's one clip per table stays relative (see :class:`PACTEmbedding`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lptsim.ctr.table.backends import check_backend
from lptsim.ctr.table.base import EmbeddingTable
from lptsim.ctr.table.config import TableConfig
from lptsim.ctr.table.store import normal_rows
from lptsim.quant import dequantize, lsq_step_grad, quantize


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
    """PACT: clip to [-alpha, alpha], quantize with step alpha/qmax; STE inside."""

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


class QATEmbedding(EmbeddingTable):
    """Shared by LSQ and PACT: FP32 weights (rows start as the tables' do) and their memory accounting."""

    def __init__(self, num_embeddings: int, dim: int, config: TableConfig, row_offset: int = 0):
        super().__init__(num_embeddings, dim, config, row_offset)
        check_backend(config, num_embeddings)  # backend='triton' cannot serve a QAT embedding: say so
        self.clip, self.min_step = float(config.clip), config.min_step
        self.weight = nn.Parameter(normal_rows(config.seed, self.row_offset, num_embeddings, dim, config.init_std))

    def memory_bytes(self) -> int:
        """FP32 parameters plus the dense Adam's two state tensors per parameter (held by the trainer's optimizer,
        counted here): 3x the parameter bytes."""
        return 3 * self.table_bytes()

    def table_bytes(self) -> int:
        """The FP32 parameters (what the model holds)."""
        return sum(p.numel() * p.element_size() for p in self.parameters())


class LSQEmbedding(QATEmbedding):
    """LSQ: a learned step per row, clamped to ``min_step``. ``qat_init="weights"`` (the paper's): the parameter
    ``step`` is the step itself, starting at :func:`lsq_initial_steps`, so Adam moves it in the weights' units;
    ``"clip"`` (lptsim 0.2): ``step0 * step_scale`` with ``step_scale`` starting at 1 (a relative move per step)."""

    def __init__(self, num_embeddings: int, dim: int, config: TableConfig, row_offset: int = 0):
        super().__init__(num_embeddings, dim, config, row_offset)
        self.paper = config.qat_init == "weights"
        if self.paper:
            self.step = nn.Parameter(lsq_initial_steps(self.weight.detach(), self.spec).clamp_min(self.min_step))
        else:
            self.step_scale = nn.Parameter(torch.ones(num_embeddings))

    def steps(self) -> torch.Tensor:
        return (self.step if self.paper else self.step0 * self.step_scale).clamp_min(self.min_step)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        old = state_dict.get(prefix + "step_scale")
        if self.paper and old is not None:  # saved by lptsim 0.2 (relative steps): the same steps, as steps
            state_dict[prefix + "step"] = self.step0 * state_dict.pop(prefix + "step_scale")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.check_ids(ids)
        step_rows = F.embedding(ids, self.steps().unsqueeze(1)).squeeze(-1)
        return _FakeQuantLSQ.apply(F.embedding(ids, self.weight), step_rows, self.spec, self.grad_scale)


class PACTEmbedding(QATEmbedding):
    """PACT: one learned clip per table, ``alpha_init * alpha_scale`` (``alpha_scale`` starts at 1, so Adam moves the
    clip relative to its start), clamped to ``min_step``. ``alpha_init``: ``qmax`` LSQ steps of the expected
    magnitude (``qat_init="weights"``) or ``clip`` (``"clip"``, lptsim 0.2). Unlike LSQ's per-row steps, this one
    scalar stays relative: an absolute clip of 4e-4 moved by Adam's 1e-3 per step went below zero at the first step
    that pushed it down, and the table died (test AUC 0.5000 at 1 epoch on the shared sample)."""

    def __init__(self, num_embeddings: int, dim: int, config: TableConfig, row_offset: int = 0):
        super().__init__(num_embeddings, dim, config, row_offset)
        self.alpha_scale = nn.Parameter(torch.ones(()))
        if config.qat_init == "weights":  # the same number on every shard of a table
            qp = max(self.spec.qmax, 1)
            init = qp * 2 * config.init_std * math.sqrt(2 / math.pi) / math.sqrt(qp)
        else:
            init = self.clip
        self.register_buffer("alpha_init", torch.tensor(max(init, self.min_step), dtype=torch.float32))

    def alpha(self) -> torch.Tensor:
        return (self.alpha_init * self.alpha_scale).clamp_min(self.min_step)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # saved by lptsim 0.2: its clip started at ``clip``
        state_dict.setdefault(prefix + "alpha_init", torch.tensor(self.clip, dtype=torch.float32))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.check_ids(ids)
        return _FakeQuantPACT.apply(F.embedding(ids, self.weight), self.alpha(), self.spec)


def lsq_initial_steps(weight: torch.Tensor, spec) -> torch.Tensor:
    """LSQ's initial step for each row of ``weight`` (rows, dim): ``2 * mean |w| / sqrt(Qp)``, ``Qp = max(qmax, 1)``
    (Esser et al., 2020, section 2.1, taken per row because lptsim's LSQ learns a step per row)."""
    return 2 * weight.abs().mean(dim=1) / math.sqrt(max(spec.qmax, 1))


QAT_EMBEDDINGS = {"lsq": LSQEmbedding, "pact": PACTEmbedding}
