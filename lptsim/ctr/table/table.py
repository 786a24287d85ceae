"""LowPrecisionTable: an embedding table whose forward looks rows up and records the rows it touched.

What it holds: a code store (or, for the ``fp`` baseline, FP32 rows), the steps of its granularity, the row
optimizer's state and ALPT's step state (:mod:`lptsim.ctr.table.state`), and two counters. What it does: the
forward pass, like ``nn.Embedding`` (ids (...) -> float (..., dim)); in training with gradients on, it also
records the rows a batch touched. The update of those rows (row optimizer, ALPT's step update, the write-back)
belongs to :class:`~lptsim.ctr.table.optim.TableOptimizer`, and runs on the backend chosen once per placement
(:mod:`lptsim.ctr.table.backends`). Low-precision tables keep no FP32 copy: only the rows of a batch are ever
dequantized.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from lptsim.ctr.contract import step_seed
from lptsim.ctr.table.backends import check_backend, choose_backend
from lptsim.ctr.table.base import EmbeddingTable
from lptsim.ctr.table.config import TableConfig
from lptsim.ctr.table.state import DecayClock, RowState, StepState, migrate_table_state
from lptsim.ctr.table.store import CodeStore, initial_codes, initial_rows_on, normal_rows
from lptsim.quant.floats import float_dtype


class LowPrecisionTable(EmbeddingTable):
    """A (num_embeddings, dim) table configured by a :class:`TableConfig` (methods fp, lpt-dr, lpt-sr, alpt).

    ``row_offset`` is the global index of this table's row 0 (a shard of a larger table): initial values and
    every random draw are keyed by global row, so shards reproduce the whole table.
    """

    def __init__(self, num_embeddings: int, dim: int, config: TableConfig, row_offset: int = 0,
                 device: torch.device | str | None = None):
        if config.qat:
            raise ValueError(f"method {config.method!r} is a QAT embedding (lptsim.ctr.qat), not a row-trained table")
        super().__init__(num_embeddings, dim, config, row_offset)
        check_backend(config, num_embeddings)
        state = float_dtype(config.state)
        # device: build there, the initial rows by the keyed kernel (the CPU's values, without the CPU's minutes)
        on_device = device is not None and torch.device(device).type != "cpu"
        if on_device:
            rows0 = initial_rows_on(device, config, num_embeddings, dim, self.row_offset)
        else:
            rows0 = normal_rows(config.seed, self.row_offset, num_embeddings, dim, config.init_std)
        n_steps = config.num_steps(num_embeddings)
        field = config.quantized and config.step_granularity == "field"
        self.register_buffer("field_starts", torch.as_tensor(config.field_starts, dtype=torch.int64) if field else None)
        if config.quantized:
            self.register_buffer("step", torch.full((n_steps,), config.step0, dtype=state))
            self.codes = CodeStore(0 if on_device else num_embeddings, dim, config.bits)
            if on_device:
                self.codes.data = rows0
            else:
                self.codes.write(torch.arange(num_embeddings), initial_codes(rows0, config, self.row_offset))
        else:  # FP32 rows in a buffer, updated by the same row optimizer as LPT: a fair baseline
            self.register_buffer("weight", rows0)
        counted = config.quantized or config.state != "float32"  # the counter keys SR draws
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64) if counted else None)
        self.row_state = RowState(config.optimizer, num_embeddings, dim, config.state)
        self.step_state = StepState(config.step_optimizer if config.learns_steps else None, n_steps, config.state)
        # the lazy every-row decay's clocks (TableConfig.every_row_decay), None without it
        self.decay = DecayClock(num_embeddings) if config.every_row_decay > 0 else None
        self.touched = None  # the record of the last training lookup, until the TableOptimizer takes it
        self._rows_of = None  # ALPT's second pass: the lookup that replaces the stored rows
        self._backend = None
        if on_device:
            self.to(device)

    # -- placement and backend --------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return (self.codes.data if self.config.quantized else self.weight).device

    @property
    def backend(self):
        """The backend (torch reference or Triton) serving this table where it lies; chosen on first use."""
        if self._backend is None:
            self._backend = choose_backend(self, self.device)
        return self._backend

    def _apply(self, fn, recurse: bool = True):
        self._backend = None  # moved or cast: choose again where it now lies
        return super()._apply(fn, recurse)

    # -- lookups ----------------------------------------------------------------------------------------------------
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self._rows_of is not None:
            return self._rows_of(ids)
        record = torch.is_grad_enabled() and self.training
        rows, touched = self.backend.lookup(ids, record)
        if touched is not None:
            self.touched = touched
        return rows

    def take_touched(self):
        """The record of the last training lookup (None if none), cleared: the TableOptimizer's input."""
        touched, self.touched = self.touched, None
        return touched

    @contextmanager
    def replaying(self, rows_of):
        """Within the block, the forward returns ``rows_of(ids)`` instead of the stored rows (ALPT's second pass)."""
        self._rows_of = rows_of
        try:
            yield
        finally:
            self._rows_of = None

    def dequantized_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """FP32 values of ``rows`` (local ids; only these rows are materialised)."""
        return self.backend.gather(rows)

    def step_index(self, rows: torch.Tensor) -> torch.Tensor:
        """The entry of ``self.step`` each of ``rows`` (local ids) uses."""
        granularity = self.config.step_granularity
        if granularity == "row":
            return rows
        if granularity == "table":
            return torch.zeros_like(rows)
        return torch.searchsorted(self.field_starts, rows + self.row_offset, right=True) - 1

    def steps_of(self, rows: torch.Tensor) -> torch.Tensor:
        """The step of each of ``rows``, as float32."""
        return self.step[self.step_index(rows)].float()

    def state_key(self) -> int:
        """The Philox key of the update in progress, for 16-bit state writes (0, and no host read, for float32)."""
        if self.config.state == "float32":
            return 0
        return step_seed(self.config.seed, int(self.updates) + 1)

    # -- memory -----------------------------------------------------------------------------------------------------
    def memory_bytes(self) -> int:
        """Bytes held for the table, its steps and its optimizer state: exactly the module's buffers."""
        return sum(b.numel() * b.element_size() for b in self.buffers())

    def table_bytes(self) -> int:
        """Bytes of the table itself (codes and steps, or the FP32 rows): what inference keeps."""
        if not self.config.quantized:
            return self.weight.numel() * self.weight.element_size()
        return self.codes.nbytes() + self.step.numel() * self.step.element_size()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        migrate_table_state(state_dict, prefix)  # a table saved by lptsim 0.1.0 (same values, older names)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
