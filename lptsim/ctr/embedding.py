"""Embedding tables for the CTR models, built from one :class:`~lptsim.ctr.table.TableConfig`.

The front door to :mod:`lptsim.ctr.table` (the low-precision table and its optimizer) and :mod:`lptsim.ctr.qat`
(the QAT baselines). Methods (``method=``):

* ``fp``: the FP32 baseline, updated by the same row optimizer as the LPT methods;
* ``lpt-dr`` / ``lpt-sr``: LPT with fixed steps, written back with round-to-nearest / stochastic rounding;
* ``alpt``: the paper's Algorithm 1, learned steps (``alpt_variant`` ``two-pass`` or ``one-pass``);
* ``lsq`` / ``pact``: QAT baselines with FP32 weights, fake-quantized in the forward pass.

The first four are :class:`~lptsim.ctr.table.LowPrecisionTable` modules, updated by a
:class:`~lptsim.ctr.table.TableOptimizer`; the QAT ones are trained by the dense optimizer.

>>> import torch
>>> from lptsim.ctr.embedding import LowPrecisionEmbedding
>>> emb = LowPrecisionEmbedding(1000, 16, bits=8, method="alpt")
>>> emb(torch.tensor([[1, 2], [3, 4]])).shape
torch.Size([2, 2, 16])
>>> emb.memory_bytes()
24008
"""

from __future__ import annotations

import torch
from torch import nn

from lptsim.ctr.contract import ROW_OPTIMIZERS, step_seed, table_seed
from lptsim.ctr.qat import QAT_EMBEDDINGS
from lptsim.ctr.table import LowPrecisionTable, TableConfig, tables_of
from lptsim.ctr.table.base import EmbeddingTable
from lptsim.ctr.table.config import METHODS
from lptsim.ctr.table.store import normal_rows

EMBEDDINGS = EmbeddingTable  # every module make_embedding returns is one


def make_embedding(num_embeddings: int, dim: int, config: TableConfig, row_offset: int = 0,
                   device: torch.device | str | None = None) -> nn.Module:
    """The table ``config`` describes: a LowPrecisionTable, or a QAT embedding for ``lsq`` / ``pact``. With a CUDA
    ``device`` a LowPrecisionTable is built there, its initial rows by the keyed kernel (the CPU's values)."""
    if config.qat:
        table = QAT_EMBEDDINGS[config.method](num_embeddings, dim, config, row_offset)
        return table if device is None else table.to(device)
    return LowPrecisionTable(num_embeddings, dim, config, row_offset, device=device)


def LowPrecisionEmbedding(num_embeddings: int, dim: int, bits: int = 8, method: str = "alpt",  # noqa: N802
                          row_offset: int = 0, device: torch.device | str | None = None,
                          **options: object) -> nn.Module:
    """An embedding table like ``nn.Embedding`` (ids (...) -> float (..., dim)) with ``memory_bytes()``: the short
    form of ``make_embedding(num_embeddings, dim, TableConfig(method=method, bits=bits, **options))``.

    ``options`` are :class:`~lptsim.ctr.table.TableConfig` fields (optimizer, lr, init_std, clip,
    step_granularity, field_starts, step_lr, step_optimizer, grad_scale, min_step, alpt_variant, seed, backend,
    init_rounding, state_dtype); an unknown one is an error naming it. ``device``: build the table there (see
    :func:`make_embedding`).
    """
    config = TableConfig.from_options({"method": method, "bits": bits, **options}, "LowPrecisionEmbedding")
    return make_embedding(num_embeddings, dim, config, row_offset, device=device)


class TableFactory:
    """What a model calls for each of its tables, ``factory(num_embeddings, dim, name, row_offset=0)``: the table
    ``config`` describes, seeded from ``config.seed`` (the run's) and the table's ``name``
    (:func:`~lptsim.ctr.contract.table_seed`), so every way of building the model gets the same tables."""

    def __init__(self, config: TableConfig):
        self.config = config

    def __call__(self, num_embeddings: int, dim: int, name: str, row_offset: int = 0,
                 device: torch.device | str | None = None) -> nn.Module:
        config = self.config.replace(seed=table_seed(self.config.seed, name))
        return make_embedding(num_embeddings, dim, config, row_offset, device=device)


def embedding_factory(method: str, bits: int = 8, seed: int = 0, **options: object) -> TableFactory:
    """A :class:`TableFactory` for these settings (``seed`` is the run's; each table derives its own)."""
    return TableFactory(TableConfig.from_options({"method": method, "bits": bits, "seed": seed, **options},
                                                 "embedding options"))


def low_precision_tables(model: nn.Module) -> list[LowPrecisionTable]:
    """The row-trained tables of a model (the ones a TableOptimizer updates)."""
    return tables_of(model)


__all__ = ["EMBEDDINGS", "LowPrecisionEmbedding", "METHODS", "ROW_OPTIMIZERS", "TableFactory", "embedding_factory",
           "low_precision_tables", "make_embedding", "normal_rows", "step_seed"]
