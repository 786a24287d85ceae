"""A table's keyed initial rows built on its device: the values and codes the CPU builds, without the CPU.

The CPU initialisation (:func:`lptsim.ctr.table.store.normal_rows`, then
:func:`~lptsim.ctr.table.store.initial_codes`) costs about 4.6 s per million rows, eight minutes for Criteo's
33.76M: too long for a first GPU run. :func:`device_initial_rows` computes the same thing in one kernel per chunk
of rows: element ``e`` (global, ``row * dim + col``) takes the Philox uniforms at counters ``2e`` and ``2e + 1`` of
the ``INIT_VALUES`` stream, Box-Muller in float64 (``sqrt(-2 log(1 - u1)) cos(2 pi u2)``; ``1 - u1`` is exact, so
this is the CPU's ``log1p(-u1)`` of the same number), rounded to float32 and scaled by ``init_std`` in float32;
the code rounds ``value / step0`` (a correctly rounded float32 division) to nearest or with SR at counter ``e`` of
the ``INIT_ROUNDING`` stream, clipped to the code range. Under ``TRITON_INTERPRET=1`` the float64 functions are
numpy's, so the rows equal the CPU's bit for bit (tested); on a GPU they are libdevice's, correct to an ulp of
float64, so a value can differ from the CPU's only where the float64 result lies within an ulp of a float32
rounding boundary (about one element in 2**28; ``benchmarks/gpu_first_run.py`` counts them).
"""

from __future__ import annotations

import torch

from lptsim.ctr.contract import INIT_UPDATE, Stream, counter_base
from lptsim.ctr.kernels.triton_kernels import _splitmix64, _uniform, tl, triton
from lptsim.quant.rounding import RoundingRule, active_rule

INIT_VALUES = tl.constexpr(counter_base(Stream.INIT_VALUES))
INIT_ROUNDING = tl.constexpr(counter_base(Stream.INIT_ROUNDING))
BLOCK = 1024  # output elements per program
CHUNK_ROWS = 1 << 22  # rows per launch: bounds the int16 scratch of the codes (128 MiB at dim 16)
INIT_LAUNCH = {"num_warps": 4, "enable_fp_fusion": False}  # one element a lane; no contraction (the CPU's roundings)


@triton.jit(do_not_specialize=["n"])
def _init_kernel(out_ptr, key_ptr, n, std, step0, qmin, qmax, INIT_UPDATE_T: tl.constexpr, DIM: tl.constexpr,
                 PADDED: tl.constexpr, QUANT: tl.constexpr, STOCHASTIC: tl.constexpr, BLOCK: tl.constexpr):
    """Element i of the (rows, PADDED) output: the value (QUANT False, float32) or the code (int16) of local row
    i // PADDED, column i % PADDED (0 in the padding columns). key_ptr: int64 [seed, first global row]."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    row = i // PADDED + tl.load(key_ptr + 1)
    col = i % PADDED
    e = (row * DIM + col).to(tl.uint64)
    key = _splitmix64(tl.load(key_ptr), INIT_UPDATE_T)
    u1 = _uniform(key, e * 2 + INIT_VALUES).to(tl.float64)
    u2 = _uniform(key, e * 2 + 1 + INIT_VALUES).to(tl.float64)
    normal = tl.sqrt(-2.0 * tl.log(1.0 - u1)) * tl.cos(6.283185307179586 * u2)
    value = normal.to(tl.float32) * std
    if QUANT:
        v = tl.math.div_rn(value, step0)
        f = tl.floor(v)
        p = v - f
        if STOCHASTIC:
            up = _uniform(key, e + INIT_ROUNDING) < p
        else:
            up = p >= 0.5
        code = tl.minimum(tl.maximum(tl.where(up, f + 1.0, f), qmin), qmax)
        tl.store(out_ptr + i, tl.where(col < DIM, code, 0.0).to(tl.int16), mask=mask)
    else:
        tl.store(out_ptr + i, value, mask=mask)


@triton.jit(do_not_specialize=["n"])
def libdevice_part_kernel(u_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """The float64 functions of :func:`_init_kernel` alone (no arithmetic of ours that could contract), for the
    AOT check: on a GPU, libdevice's ``log`` and ``cos`` carry their own ``fma.rn`` (part of their algorithms) and
    ``cos`` a small stack frame (its argument reduction's slow path, never taken for arguments in [0, 2 pi)); the
    init kernel may have exactly these and nothing more (lptsim.ctr.kernels.aot)."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    u1 = tl.load(u_ptr + i, mask=mask, other=0.5)
    u2 = tl.load(u_ptr + n + i, mask=mask, other=0.5)
    tl.store(out_ptr + i, tl.sqrt(tl.log(u1)) * tl.cos(u2), mask=mask)


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """(rows, padded) signed codes as a CodeStore's rows on their device: int8 at 8 bits, else the LSB-first bit
    stream of :func:`lptsim.quant.pack`, row by row (a padded row is whole bytes)."""
    if bits == 8:
        return codes.to(torch.int8)
    rows, padded = codes.shape
    unsigned = codes.to(torch.int32) & ((1 << bits) - 1)
    shifts = torch.arange(bits, device=codes.device, dtype=torch.int32)
    stream = ((unsigned.unsqueeze(-1) >> shifts) & 1).reshape(rows, padded * bits // 8, 8)  # bit k of code j
    weights = torch.tensor([1 << k for k in range(8)], device=codes.device, dtype=torch.int32)
    return (stream * weights).sum(-1).to(torch.uint8)


def device_initial_rows(config, num_embeddings: int, dim: int, padded: int, row_offset: int,
                        device: torch.device | str) -> torch.Tensor:
    """The initial table of ``config`` built on ``device`` by the kernel: float32 values ``(rows, dim)`` for a
    full-precision table, else the CodeStore's stored rows (packed below 8 bits). Equal to the CPU's
    ``normal_rows`` / ``initial_codes`` (see the module docstring for the one caveat on a GPU)."""
    if active_rule() != RoundingRule():
        raise ValueError("device_initial_rows follows the default rounding rule only; a patched rule (--power) "
                         "builds tables on the CPU")
    device = torch.device(device)
    seed = config.seed % 2**64
    quant = config.quantized
    width = padded if quant else dim
    parts = []
    for first in range(0, num_embeddings, CHUNK_ROWS):
        rows = min(CHUNK_ROWS, num_embeddings - first)
        key = torch.tensor([seed - 2**64 if seed >= 2**63 else seed, row_offset + first], dtype=torch.int64,
                           device=device)
        out = torch.empty(rows, width, dtype=torch.int16 if quant else torch.float32, device=device)
        n = out.numel()
        if n:
            _init_kernel[(triton.cdiv(n, BLOCK),)](
                out, key, n, float(config.init_std), float(config.step0) if quant else 1.0,
                float(config.spec.qmin) if quant else 0.0, float(config.spec.qmax) if quant else 0.0,
                INIT_UPDATE_T=INIT_UPDATE, DIM=dim, PADDED=width, QUANT=quant,
                STOCHASTIC=config.init_rounding == "stochastic", BLOCK=BLOCK, **INIT_LAUNCH)
        if quant and config.bits > 8:
            parts.append(out)
        elif quant:
            parts.append(pack_codes(out, config.bits))
        else:
            parts.append(out)
    return torch.cat(parts) if len(parts) != 1 else parts[0]
