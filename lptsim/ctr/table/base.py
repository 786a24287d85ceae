"""What every embedding table of lptsim shares, the row-trained ones and the QAT baselines alike."""

from __future__ import annotations

import torch
from torch import nn

from lptsim.ctr.table.config import TableConfig


class EmbeddingTable(nn.Module):
    """An embedding table built from a :class:`TableConfig`: ids (...) -> float (..., dim), with its memory."""

    def __init__(self, num_embeddings: int, dim: int, config: TableConfig, row_offset: int = 0):
        super().__init__()
        config.check_shape(num_embeddings, dim, row_offset)
        self.config, self.num_embeddings, self.dim, self.row_offset = config, num_embeddings, dim, int(row_offset)
        self.spec, self.grad_scale = config.spec, config.step_grad_scale(dim)

    @property
    def method(self) -> str:
        return self.config.method

    @property
    def bits(self) -> int:
        return self.config.bits

    @property
    def step0(self) -> float:
        return self.config.step0

    def check_ids(self, ids: torch.Tensor) -> None:
        """IndexError naming the first id outside [0, num_embeddings) (reads the ids on the host)."""
        if ids.numel():
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= self.num_embeddings:
                raise IndexError(f"embedding id {lo if lo < 0 else hi} is outside [0, {self.num_embeddings})")

    def memory_bytes(self) -> int:
        """Bytes held in training for the table, its steps and its optimizer state."""
        raise NotImplementedError

    def table_bytes(self) -> int:
        """Bytes of the table itself: what inference keeps."""
        raise NotImplementedError

    def fp32_bytes(self) -> int:
        """The FP32 table alone (the compression baseline)."""
        return 4 * self.num_embeddings * self.dim

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.dim}, method={self.method!r}, bits={self.bits}"
