"""Dense sub-byte storage of signed codes: ``n`` codes of ``bits`` bits in ceil(n*bits/8) bytes.

Code ``i`` occupies bits ``i*bits .. (i+1)*bits - 1`` of the little-endian bit stream,
as two's complement. With 16-dim rows and any bit width a row is a whole number of
bytes (2*bits), so packed rows can be gathered and rewritten one row at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lptsim.quant import _arrays

PACK_BITS = range(1, 9)


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or int(bits) not in PACK_BITS:
        raise ValueError(f"bits must be an integer in [1, 8] for packing, got {bits!r}")
    return int(bits)


def packed_nbytes(n: int, bits: int) -> int:
    """Bytes that ``n`` packed codes of ``bits`` bits take: ceil(n*bits/8)."""
    return (n * _check_bits(bits) + 7) // 8


def pack(codes: Any, bits: int) -> Any:
    """Pack signed codes in ``[-2**(bits-1), 2**(bits-1) - 1]`` into a uint8 buffer.

    numpy in, numpy out; a torch tensor gives a torch uint8 tensor on its device.
    Raises ValueError for bits outside 1..8 or codes outside the range.
    """
    bits = _check_bits(bits)
    arr = np.asarray(_arrays.to_numpy(codes))
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"codes must be integers, got dtype {arr.dtype}")
    flat = arr.reshape(-1).astype(np.int64)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if flat.size and (flat.min() < lo or flat.max() > hi):
        raise ValueError(f"codes must lie in [{lo}, {hi}] for {bits} bits, got [{flat.min()}, {flat.max()}]")
    unsigned = (flat & ((1 << bits) - 1)).astype(np.uint8)
    if bits == 8:
        buf = unsigned
    elif 8 % bits == 0:  # 1, 2, 4 bits: whole codes per byte, shift-and-or
        per = 8 // bits
        padded = np.zeros(-(-flat.size // per) * per, dtype=np.uint8)
        padded[: flat.size] = unsigned
        groups = padded.reshape(-1, per)
        buf = np.zeros(groups.shape[0], dtype=np.uint8)
        for j in range(per):
            buf |= groups[:, j] << np.uint8(j * bits)
    else:  # 3, 5, 6, 7 bits: codes straddle bytes, go through the bit stream
        bit_idx = np.arange(bits, dtype=np.uint8)
        stream = ((unsigned[:, None] >> bit_idx) & 1).astype(np.uint8).reshape(-1)
        buf = np.packbits(stream, bitorder="little")
    return _arrays.like(np.ascontiguousarray(buf), codes if _arrays.is_torch(codes) else None)


def unpack(buf: Any, bits: int, shape: tuple[int, ...] | int) -> Any:
    """Inverse of :func:`pack`: int8 codes of ``shape`` (numpy or torch, as ``buf``)."""
    bits = _check_bits(bits)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    n = int(np.prod(shape))
    raw = np.asarray(_arrays.to_numpy(buf))
    if raw.dtype != np.uint8:
        raise ValueError(f"buf must be uint8, got dtype {raw.dtype}")
    raw = raw.reshape(-1)
    need = packed_nbytes(n, bits)
    if raw.size < need:
        raise ValueError(f"buf holds {raw.size} bytes; {n} codes of {bits} bits need {need}")
    if bits == 8:
        unsigned = raw[:n]
    elif 8 % bits == 0:
        per = 8 // bits
        shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
        unsigned = ((raw[:need, None] >> shifts) & np.uint8((1 << bits) - 1)).reshape(-1)[:n]
    else:
        stream = np.unpackbits(raw[:need], bitorder="little")[: n * bits].reshape(n, bits)
        unsigned = (stream.astype(np.uint8) << np.arange(bits, dtype=np.uint8)).sum(axis=1, dtype=np.uint8)
    signed = unsigned.astype(np.int16)
    signed -= (signed >= (1 << (bits - 1))).astype(np.int16) << bits
    out = signed.astype(np.int8).reshape(shape)
    return _arrays.like(out, buf if _arrays.is_torch(buf) else None)
