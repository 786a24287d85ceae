"""TrainConfig: everything that defines a training run (saved in run.json, the checkpoints and metrics.json).

The tables' options travel as ``embedding_options`` (the ``[embedding_options]`` table of a TOML config, or the
``--emb-*`` flags) and become one frozen, validated :class:`~lptsim.ctr.table.TableConfig`
(:meth:`TrainConfig.table_config`): a bad table option is refused when the run's configuration is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from lptsim.ctr.models import DENSE_INITS
from lptsim.ctr.table import TableConfig

LR_SCHEDULES = ("step", "plateau", "none")
TABLE_DECAYS = ("touched", "every-row")
FP_BITS = 32  # the bits an fp (FP32) run records
# TableConfig fields a run sets itself (the method, bits and seed are TrainConfig's own fields; every_row_decay
# comes from weight_decay and table_decay).
SET_BY_RUN = ("method", "bits", "seed", "every_row_decay")


def check_device(device: str) -> None:
    """Refuse a device torch cannot use here, with a message that says what is available."""
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {device!r} is not a device name torch knows; use cpu, cuda or cuda:N") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: torch sees no CUDA GPU on this machine; use --device cpu")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                             f"numbered from 0")
    elif d.type != "cpu":
        raise ValueError(f"device {device!r}: lptsim trains on cpu or cuda")


@dataclass
class TrainConfig:
    """Everything that defines a run (saved in the checkpoint and in metrics.json)."""

    model: str = "dcn"
    method: str = "fp"
    bits: int = 8
    dim: int = 16
    hidden: tuple[int, ...] = (400, 400, 400)
    dropout: float = 0.0
    batch_norm: bool = False
    cross_layers: int = 3
    epochs: int = 10
    batch_size: int = 2048
    lr: float = 1e-3
    lr_milestones: tuple[int, ...] = (6, 9)  # divide the lr by 10 after these epochs (1-based)
    lr_gamma: float = 0.1  # the factor of both schedules
    patience: int = 2  # epochs without a better validation AUC before stopping
    seed: int = 0
    device: str = "cpu"
    embedding_options: dict = field(default_factory=dict)  # TableConfig options (lptsim.ctr.table)
    # torch | xavier_normal | kaiming (lptsim.ctr.models.init_dense). Xavier-normal (FuxiCTR's) by measurement:
    # on the shared Criteo sample it beat torch's default by 0.009 AUC (DNN) and 0.002 (DCN), 3 seeds each
    # (analysis/results/ctr/PRACTICE.md); runs recorded before this option existed used torch's default.
    dense_init: str = "xavier_normal"
    embedding_l2: float = 0.0  # lambda of lambda/2 * ||E_r||^2 over the rows a batch touches
    weight_decay: float = 0.0  # Adam's coupled decay on dense weights; the same on the table rows (table_decay)
    # where the tables get weight_decay: "touched" (the rows a batch touches, as a gradient term) or "every-row"
    # (every row at every step, as the authors' dense Adam does; exact, replayed lazily: TableConfig.every_row_decay)
    table_decay: str = "touched"
    grad_clip: float = 0.0  # max 2-norm of the dense and touched-row gradients together; 0: no clipping
    lr_schedule: str = "step"  # step (lr_milestones) | plateau (validation AUC) | none
    plateau_patience: int = 0  # plateau: epochs without a gain before the lr drops (FuxiCTR: 0)
    min_lr: float = 1e-6  # plateau: the lr floor
    shuffle: bool = True  # reshuffle the training rows every epoch (False: file order)
    bn_refresh: bool = False  # recompute BatchNorm statistics with one pass over train before each evaluation

    def __post_init__(self) -> None:
        if self.method == "fp":  # FP32 tables: what the run records says 32 bits, whatever --bits said
            self.bits = FP_BITS
        self.hidden = tuple(self.hidden)
        self.lr_milestones = tuple(self.lr_milestones)
        for name in ("epochs", "batch_size", "dim", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "lr_gamma"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if any(h < 1 for h in self.hidden) or any(m < 1 for m in self.lr_milestones):
            raise ValueError(f"hidden sizes and lr milestones must be >= 1, got {self.hidden} and "
                             f"{self.lr_milestones}")
        for name in ("embedding_l2", "weight_decay", "grad_clip", "min_lr"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.table_decay not in TABLE_DECAYS:
            raise ValueError(f"table_decay must be one of {TABLE_DECAYS}, got {self.table_decay!r}")
        if self.dense_init not in DENSE_INITS:
            raise ValueError(f"dense_init must be one of {DENSE_INITS}, got {self.dense_init!r}")
        if self.plateau_patience < 0 or self.cross_layers < 0:
            raise ValueError("plateau_patience and cross_layers must be >= 0")
        if not isinstance(self.embedding_options, dict):
            raise ValueError(f"embedding_options must be a table of TableConfig options, got "
                             f"{self.embedding_options!r}")
        set_here = [k for k in SET_BY_RUN if k in self.embedding_options]
        if set_here:
            raise ValueError(f"embedding_options: {set_here[0]!r} is the run's own setting; set it at the top level")
        self.table_config()  # a bad table option is refused now, with its name
        check_device(self.device)

    def table_config(self) -> TableConfig:
        """The tables' configuration: ``method``, ``bits``, the run's ``seed`` (each table derives its own from it
        and its name) and ``embedding_options``."""
        # every-row decay of the QAT weights is the dense Adam's own (lptsim.ctr.train.parameter_groups)
        every_row = self.table_decay == "every-row" and self.method not in ("lsq", "pact")
        decay = self.weight_decay if every_row else 0.0
        bits = TableConfig.bits if self.method == "fp" else self.bits  # fp tables ignore it
        return TableConfig.from_options({**self.embedding_options, "method": self.method, "bits": bits,
                                         "seed": self.seed, "every_row_decay": decay}, "embedding_options")
