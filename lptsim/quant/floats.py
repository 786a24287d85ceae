"""Stochastic rounding of float32 values to a narrower float format (bfloat16, float16).

Optimizer states and steps kept in 16 bits would lose every update smaller than half their
spacing if written with round-to-nearest (the same stall as DR on codes). Rounding to one of
the two neighbouring representable values with probability proportional to proximity keeps
the stored value unbiased: ``E[stochastic_cast(x)] = x`` for ``x`` inside the format's range.
Draws come from the Philox stream of :mod:`lptsim.quant.philox` at caller-given counters, so
they are reproducible and independent of batching; the decision is :func:`lptsim.quant.rounding.sr_round_up`,
the one every SR in lptsim makes. It uses the 24-bit uniform; the fraction ``(x - lo) / (hi - lo)`` of a
float32 value between two bfloat16 (float16) neighbours has at most 16 (13) significant bits, so the
rounding is exactly unbiased, not just to within ``2^-24`` of a spacing (docs/theory.md 10.4).
"""

from __future__ import annotations

import numpy as np
import torch

from lptsim.quant import rounding

FLOAT_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def float_dtype(name: str) -> torch.dtype:
    """The torch dtype for a state-dtype name (``float32``, ``bfloat16``, ``float16``)."""
    if name not in FLOAT_DTYPES:
        raise ValueError(f"state_dtype must be one of {sorted(FLOAT_DTYPES)}, got {name!r}")
    return FLOAT_DTYPES[name]


def stochastic_cast(x: torch.Tensor, dtype: torch.dtype, seed: int, counters: np.ndarray | torch.Tensor
                    ) -> torch.Tensor:
    """``x`` rounded stochastically to ``dtype``; element ``i`` draws its uniform at ``counters[i]``.

    Returns ``x.to(dtype)`` unchanged for float32. Values beyond the format's largest finite
    value saturate to it; non-finite values pass through.
    """
    if dtype == torch.float32:
        return x.to(torch.float32)
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"stochastic_cast rounds to bfloat16 or float16, got {dtype}")
    counters = counters.cpu().numpy() if isinstance(counters, torch.Tensor) else np.asarray(counters)
    if counters.shape != tuple(x.shape):
        raise ValueError(f"counters shape {counters.shape} != x shape {tuple(x.shape)}")
    xd = x.detach().to("cpu", torch.float64)
    nearest = x.detach().cpu().to(dtype)
    finfo = torch.finfo(dtype)
    nearest = nearest.clamp(-finfo.max, finfo.max)  # saturate instead of rounding to inf
    below = nearest.to(torch.float64) <= xd
    lo = torch.where(below, nearest, torch.nextafter(nearest, torch.full_like(nearest, -float("inf"))))
    hi = torch.where(below, torch.nextafter(nearest, torch.full_like(nearest, float("inf"))), nearest)
    lo_d, hi_d = lo.to(torch.float64), hi.to(torch.float64)
    frac = ((xd - lo_d) / (hi_d - lo_d)).nan_to_num(0.0)
    up = torch.from_numpy(rounding.sr_round_up(frac.numpy(), seed, counters))
    out = torch.where(up, hi, lo)
    out = torch.where(torch.isfinite(xd), out, x.detach().cpu().to(dtype))
    return out.to(x.device)
