"""TableConfig: everything that defines how an embedding table is stored and trained, validated once.

A method name is decoded here, once, into what it means (``quantized``, ``write_rounding``, ``learns_steps``,
``two_pass``, ``qat``); the rest of the code asks those questions instead of comparing method strings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from lptsim.ctr.contract import DEFAULT_ROW_LR, MAX_INDEX, ROW_OPTIMIZERS, STEP_OPTIMIZERS
from lptsim.quant import QuantSpec
from lptsim.quant.floats import FLOAT_DTYPES

METHODS = ("fp", "lpt-dr", "lpt-sr", "alpt", "lsq", "pact")
QUANTIZED = ("lpt-dr", "lpt-sr", "alpt")  # stored as codes + steps, updated by the TableOptimizer
QAT = ("lsq", "pact")  # FP32 weights fake-quantized in the forward pass, trained by the dense optimizer
STEP_GRANULARITIES = ("row", "field", "table")
INIT_ROUNDINGS = ("nearest", "stochastic")
ALPT_VARIANTS = ("two-pass", "one-pass")
BACKENDS = ("auto", "torch", "triton")
QAT_INITS = ("weights", "clip")
DECAY_OPTIMIZERS = ("sgd", "adam")  # row optimizers whose every-row decay the tables replay
STATE_DTYPES = tuple(FLOAT_DTYPES)


def _choice(name: str, value: object, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _number(name: str, value: object, lower: float, strict: bool, optional: bool = False) -> None:
    if value is None and optional:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < lower or (strict and value == lower):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {lower:g}, got {value!r}")


@dataclass(frozen=True)
class TableConfig:
    """How a table is stored and trained.

    Args:
        method: ``fp`` (FP32 rows, the baseline), ``lpt-dr`` / ``lpt-sr`` (fixed steps, written back with
            round-to-nearest / stochastic rounding), ``alpt`` (learned steps, the paper's Algorithm 1), or the QAT
            baselines ``lsq`` / ``pact`` (FP32 weights fake-quantized in the forward pass).
        bits: code width, 1..16 (ignored by ``fp``).
        optimizer: the row optimizer: ``sgd``, row-wise ``adagrad`` (default) or ``adam`` (global step count).
        lr: its learning rate (default by optimizer: sgd 0.1, adagrad 0.01, adam 1e-3).
        init_std: rows start as N(0, init_std^2) (FuxiCTR's 1e-4), then become codes.
        clip: the range the initial codes cover: the initial step is ``clip / 2**(bits-1)``.
        step_granularity: one step per ``row`` (default), per ``field`` (needs ``field_starts``) or per ``table``.
        field_starts: the global row where each field's ids start (the feature map's offsets).
        step_lr, step_optimizer: ALPT's step update, learning rate ``step_lr * initial step``: ``adam``
            (default), ``adagrad`` or ``sgd``.
        grad_scale: ALPT/LSQ step-gradient scale; default 1/sqrt(dim * qmax) (LSQ's).
        min_step: steps are clamped to at least this.
        alpt_variant: ``two-pass`` (the paper: the step gradient from a second forward pass on the updated rows
            rounded to nearest) or ``one-pass`` (from the first backward, what a fused kernel computes).
        seed: the table's seed (every random draw: see :mod:`lptsim.ctr.contract`).
        backend: ``auto`` (Triton kernels for CUDA tables they cover, the torch reference otherwise), ``torch`` or
            ``triton`` (an error when the kernels do not cover the configuration).
        init_rounding: ``stochastic`` (default) or ``nearest``: how the initial rows become codes.
        state_dtype: ``float32``, ``bfloat16`` or ``float16`` for the steps and all optimizer state, 16-bit state
            written with unbiased stochastic rounding; default ``bfloat16`` for the low-precision methods,
            ``float32`` for ``fp``.
        every_row_decay: coupled weight decay ``wd`` on every row at every update, as a dense optimizer applies
            it (``g + wd * w`` for every row, the batch's or not; under Adam a row outside the batch also keeps
            moving by its moments). Applied exactly but lazily: a row replays the updates it missed when it is
            next looked up, and :meth:`~lptsim.ctr.table.TableOptimizer.flush` brings every row up to date (before
            an evaluation or a checkpoint). Row optimizers ``sgd`` and ``adam``; the torch backend only.
        qat_init: ``lsq``/``pact`` only: ``weights`` (default; LSQ's ``2 <|w|> / sqrt(Qp)``, see
            :mod:`lptsim.ctr.qat`) or ``clip`` (the fixed step ``clip / 2**(bits-1)``, which starts dead when
            ``init_std`` is small; kept to reproduce older runs).
    """

    method: str = "alpt"
    bits: int = 8
    optimizer: str = "adagrad"
    lr: float | None = None
    init_std: float = 1e-4
    clip: float = 0.05
    step_granularity: str = "row"
    field_starts: tuple[int, ...] | None = None
    step_lr: float = 1e-2
    step_optimizer: str = "adam"
    grad_scale: float | None = None
    min_step: float = 1e-8
    alpt_variant: str = "two-pass"
    seed: int = 0
    backend: str = "auto"
    init_rounding: str = "stochastic"
    state_dtype: str | None = None
    qat_init: str = "weights"
    every_row_decay: float = 0.0

    def __post_init__(self) -> None:
        _choice("method", self.method, METHODS)
        QuantSpec(self.bits)  # "bits must be ..." with the allowed range
        _choice("optimizer", self.optimizer, ROW_OPTIMIZERS)
        _choice("step_optimizer", self.step_optimizer, STEP_OPTIMIZERS)
        _choice("step_granularity", self.step_granularity, STEP_GRANULARITIES)
        _choice("alpt_variant", self.alpt_variant, ALPT_VARIANTS)
        _choice("backend", self.backend, BACKENDS)
        _choice("init_rounding", self.init_rounding, INIT_ROUNDINGS)
        _choice("qat_init", self.qat_init, QAT_INITS)
        if self.state_dtype is not None:
            _choice("state_dtype", self.state_dtype, STATE_DTYPES)
        if self.lr is not None and not (isinstance(self.lr, int | float) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"embedding lr must be a finite number > 0, got {self.lr!r}")
        _number("init_std", self.init_std, 0.0, strict=False)
        _number("clip", self.clip, 0.0, strict=True)
        _number("step_lr", self.step_lr, 0.0, strict=False)
        _number("min_step", self.min_step, 0.0, strict=True)
        _number("grad_scale", self.grad_scale, 0.0, strict=True, optional=True)
        _number("every_row_decay", self.every_row_decay, 0.0, strict=False)
        if self.every_row_decay > 0 and self.optimizer not in DECAY_OPTIMIZERS:
            raise ValueError(f"every_row_decay needs row optimizer 'sgd' or 'adam' (a dense row-wise Adagrad is not "
                             f"what any peer runs), got optimizer={self.optimizer!r}")
        if self.every_row_decay > 0 and self.qat:
            raise ValueError("every_row_decay is for row-trained tables; the lsq/pact weights are trained by the dense "
                             "Adam (give them weight decay there)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.field_starts is not None:
            starts = tuple(int(s) for s in self.field_starts)
            if not starts or starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
                raise ValueError("field_starts must be increasing global rows starting at 0 (the feature map's "
                                 f"offsets), got {self.field_starts!r}")
            object.__setattr__(self, "field_starts", starts)

    # -- what the method means ---------------------------------------------------------------------------------
    @property
    def quantized(self) -> bool:
        """Stored as integer codes and steps (LPT, ALPT)."""
        return self.method in QUANTIZED

    @property
    def qat(self) -> bool:
        """A QAT baseline (FP32 weights trained by the dense optimizer), not a row-trained table."""
        return self.method in QAT

    @property
    def write_rounding(self) -> str | None:
        """How updated rows become codes: ``nearest``, ``stochastic``, or None (FP32 rows, written as they are)."""
        return None if not self.quantized else "nearest" if self.method == "lpt-dr" else "stochastic"

    @property
    def learns_steps(self) -> bool:
        """ALPT: the steps are trained (by ``step_optimizer``) with the LSQ gradient."""
        return self.method == "alpt"

    @property
    def two_pass(self) -> bool:
        """ALPT's step gradient comes from a second forward pass (the TableOptimizer needs a closure)."""
        return self.learns_steps and self.alpt_variant == "two-pass"

    # -- resolved values ---------------------------------------------------------------------------------------
    @property
    def spec(self) -> QuantSpec:
        return QuantSpec(self.bits)

    @property
    def row_lr(self) -> float:
        """The row optimizer's learning rate (``lr``, or the optimizer's default)."""
        return DEFAULT_ROW_LR[self.optimizer] if self.lr is None else float(self.lr)

    @property
    def state(self) -> str:
        """The dtype name of the steps and optimizer state (``state_dtype`` or the method's default)."""
        if self.state_dtype is not None:
            return self.state_dtype
        return "bfloat16" if self.quantized else "float32"

    @property
    def step0(self) -> float:
        """The initial step, ``clip / 2**(bits-1)``."""
        return float(self.clip) / 2 ** (self.bits - 1)

    def step_grad_scale(self, dim: int) -> float:
        """The step-gradient scale for rows of ``dim`` values (``grad_scale`` or LSQ's 1/sqrt(dim * qmax))."""
        return self.grad_scale if self.grad_scale is not None else 1.0 / math.sqrt(dim * max(self.spec.qmax, 1))

    def num_steps(self, num_embeddings: int) -> int:
        """How many step entries a table of ``num_embeddings`` rows holds."""
        return {"row": num_embeddings, "table": 1, "field": len(self.field_starts or ())}[self.step_granularity]

    def check_shape(self, num_embeddings: int, dim: int, row_offset: int = 0) -> None:
        """Refuse a table this configuration cannot build: no ``field_starts`` for steps per field (a run fills
        them in from its data), or more elements than the random streams can count."""
        if self.step_granularity == "field" and self.quantized and self.field_starts is None:
            raise ValueError("step_granularity='field' needs field_starts: increasing global rows starting at 0 "
                             "(the feature map's offsets)")
        if num_embeddings < 1 or dim < 1:
            raise ValueError(f"num_embeddings and dim must be >= 1, got {num_embeddings}, {dim}")
        if row_offset < 0 or 2 * (row_offset + num_embeddings) * dim > MAX_INDEX:
            raise ValueError(f"a table of {num_embeddings} x {dim} at row {row_offset} has more elements than its "
                             "random streams can index (2**55)")

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def options(cls) -> dict[str, object]:
        """Every option with its default."""
        return {f.name: f.default for f in fields(cls)}

    @classmethod
    def from_options(cls, options: Mapping[str, object], source: str = "table options") -> TableConfig:
        """A config from a mapping (a TOML table, flags); an unknown key is an error naming it and ``source``."""
        known = cls.options()
        unknown = [k for k in options if k not in known]
        if unknown:
            raise ValueError(f"{source}: unknown option {unknown[0]!r}; known: {', '.join(sorted(known))}")
        try:
            return cls(**options)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    def replace(self, **changes: object) -> TableConfig:
        """A copy with ``changes`` (validated again)."""
        return replace(self, **changes)
