"""Where a table's rows live: integer codes (packed below 8 bits), and the initial rows they start from.

Every rounding goes through :mod:`lptsim.quant`; the initial values and their rounding draw from the table's
``INIT_VALUES`` and ``INIT_ROUNDING`` streams (:mod:`lptsim.ctr.contract`), keyed by global element, so any
shard of a table starts with exactly the rows the whole table would.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from lptsim.ctr.contract import INIT_UPDATE, Stream, counter_base, step_seed
from lptsim.ctr.table.config import TableConfig
from lptsim.quant import QuantSpec, pack, packed_nbytes, quantize, uniforms, unpack


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
        self.padded_dim = padded_dim(dim, bits) if bits < 8 else dim
        dtype = torch.int8 if bits == 8 else torch.int16 if bits > 8 else torch.uint8
        # Below 8 bits each row is padded to whole bytes, so rows can be gathered and rewritten independently.
        self.register_buffer("data", torch.zeros(rows, code_row_bytes(dim, bits) if bits < 8 else dim, dtype=dtype))

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


def normal_rows(seed: int, start: int, count: int, dim: int, std: float, chunk: int = 1 << 20) -> torch.Tensor:
    """N(0, std^2) initial values of global rows start..start+count-1: Box-Muller on the ``INIT_VALUES`` stream.

    Element ``e`` (global, ``row * dim + col``) takes the uniforms at counters 2e and 2e + 1 of that stream
    (lptsim.quant.uniforms), so any shard of a table gets exactly the rows the whole table would.
    """
    out = np.empty(count * dim, dtype=np.float32)
    key, base = step_seed(seed, INIT_UPDATE), counter_base(Stream.INIT_VALUES)
    for a in range(0, out.size, chunk):
        b = min(a + chunk, out.size)
        u = uniforms(key, base + 2 * (start * dim + a), 2 * (b - a))
        u1, u2 = u[0::2], u[1::2]
        out[a:b] = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2 * np.pi * u2)
    return torch.from_numpy(out).view(count, dim) * std


def initial_codes(values: torch.Tensor, config: TableConfig, row_offset: int) -> torch.Tensor:
    """The codes the initial ``values`` (rows from ``row_offset``) start as, on the initial step: rounded to nearest
    or stochastically with the ``INIT_ROUNDING`` stream (counter: the global element)."""
    offset = counter_base(Stream.INIT_ROUNDING) + row_offset * values.shape[1]
    return quantize(values, config.step0, config.spec, config.init_rounding, seed=step_seed(config.seed, INIT_UPDATE),
                    offset=offset if config.init_rounding == "stochastic" else 0)


def initial_rows_on(device: torch.device | str, config: TableConfig, num_embeddings: int, dim: int,
                    row_offset: int) -> torch.Tensor:
    """The initial table built on ``device`` (CUDA, or the CPU under ``TRITON_INTERPRET=1``) by the keyed kernel
    (:mod:`lptsim.ctr.kernels.init_rows`): the FP32 rows, or the codes as :class:`CodeStore` stores them; the
    values :func:`normal_rows` and :func:`initial_codes` give on the CPU."""
    from lptsim.ctr.kernels import available
    from lptsim.ctr.kernels.init_rows import device_initial_rows

    if not available(torch.device(device)):
        raise ValueError(f"device={str(device)!r}: building a table there needs the Triton kernels (a CUDA device "
                         "with Triton); build it on the CPU and move it with .to(device)")
    padded = padded_dim(dim, config.bits) if config.quantized and config.bits < 8 else dim
    return device_initial_rows(config, num_embeddings, dim, padded, row_offset, device)
