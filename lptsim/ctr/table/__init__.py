"""The low-precision table and its training contract, in one home.

Layers, bottom up (each imports only those below it):

* :mod:`lptsim.ctr.contract` (beside this package, since the Triton kernels below the table import it too): the
  numbers both backends share (named random streams, optimizer codes, betas and eps);
* :mod:`~lptsim.ctr.table.config`: :class:`TableConfig`, validated once;
* :mod:`~lptsim.ctr.table.store` and :mod:`~lptsim.ctr.table.state`: codes, initial rows, optimizer state;
* :mod:`~lptsim.ctr.table.base`: :class:`EmbeddingTable`, what every table shares (the QAT ones of
  :mod:`lptsim.ctr.qat` too): config, shape, id checks, memory accounting;
* :mod:`~lptsim.ctr.table.backends`: the torch reference and the Triton launcher, chosen once per placement;
* :mod:`~lptsim.ctr.table.table`: :class:`LowPrecisionTable`, the module (forward; records touched rows);
* :mod:`~lptsim.ctr.table.optim`: :class:`TableOptimizer`, a ``torch.optim.Optimizer`` whose ``step(closure)`` runs
  ALPT's passes.

>>> import torch
>>> from lptsim.ctr.table import LowPrecisionTable, TableConfig, TableOptimizer
>>> table = LowPrecisionTable(1000, 16, TableConfig(method="alpt", bits=4, alpt_variant="one-pass"))
>>> opt = TableOptimizer(table)
>>> table(torch.tensor([[3, 7]])).sum().backward()
>>> opt.step()
"""

from lptsim.ctr.contract import step_seed, table_seed
from lptsim.ctr.table.backends import BackendError
from lptsim.ctr.table.base import EmbeddingTable
from lptsim.ctr.table.config import METHODS, QAT, QUANTIZED, TableConfig
from lptsim.ctr.table.optim import TableOptimizer, TouchedRows, tables_of
from lptsim.ctr.table.store import normal_rows
from lptsim.ctr.table.table import LowPrecisionTable

__all__ = ["BackendError", "EmbeddingTable", "LowPrecisionTable", "METHODS", "QAT", "QUANTIZED", "TableConfig",
           "TableOptimizer", "TouchedRows", "normal_rows", "step_seed", "table_seed", "tables_of"]
