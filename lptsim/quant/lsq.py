"""The LSQ step-size gradient (Esser et al., "Learned Step Size Quantization", ICLR 2020)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lptsim.quant import _arrays
from lptsim.quant.spec import QuantSpec


def lsq_step_grad(x: Any, step: Any, spec: QuantSpec) -> Any:
    """Per-element derivative of ``step * clip(round(x / step))`` with respect to ``step``.

    With ``v = x / step``: ``round(v) - v`` for ``qmin < v < qmax`` (round as in
    ``quantize(..., "nearest")``, the straight-through estimator for round), ``qmin``
    for ``v <= qmin`` and ``qmax`` for ``v >= qmax``. The ALPT scale ``1/sqrt(N*qmax)``
    is applied by the caller, who knows N (elements sharing the step).

    ``x`` and ``step`` are numpy or torch (same library out); step broadcasts to x.
    """
    if _arrays.is_torch(x):
        import torch

        v = x / step
        f = torch.floor(v)
        rounded = f + ((v - f) >= 0.5).to(v.dtype)
        inside = rounded - v
        return torch.where(v <= spec.qmin, torch.full_like(v, spec.qmin),
                           torch.where(v >= spec.qmax, torch.full_like(v, spec.qmax), inside))
    v = np.asarray(x) / np.asarray(step)
    f = np.floor(v)
    rounded = f + ((v - f) >= 0.5)
    return np.where(v <= spec.qmin, float(spec.qmin), np.where(v >= spec.qmax, float(spec.qmax), rounded - v))
