"""The LSQ step-size gradient (Esser et al., "Learned Step Size Quantization", ICLR 2020)."""

from __future__ import annotations

from typing import Any

import numba as nb

from lptsim.quant import _arrays
from lptsim.quant.rounding import quantize
from lptsim.quant.spec import QuantSpec


def lsq_step_grad(x: Any, step: Any, spec: QuantSpec, codes: Any = None) -> Any:
    """Per-element derivative of ``step * clip(round(x / step))`` with respect to ``step``.

    With ``v = x / step``: ``round(v) - v`` for ``qmin < v < qmax`` (the straight-through
    estimator for round), ``qmin`` for ``v <= qmin`` and ``qmax`` for ``v >= qmax``. That is
    ``codes - v * [qmin < v < qmax]`` with ``codes = quantize(x, step, spec, "nearest")``,
    which is how it is computed (so rounding lives in one place). Pass ``codes`` when the
    caller already has them. The ALPT scale ``1/sqrt(N*qmax)`` is applied by the caller,
    who knows N (elements sharing the step).

    ``x`` and ``step`` are numpy or torch (same library out); step broadcasts to x.
    """
    if codes is None:
        codes = quantize(x, step, spec, "nearest")
    v = x / step
    inside = (v > spec.qmin) & (v < spec.qmax)
    if _arrays.is_torch(x):
        return codes.to(v.dtype) - v * inside.to(v.dtype)
    return codes - v * inside


@nb.njit(inline="always", cache=True)
def lsq_one(v: float, code: float, qmin: float, qmax: float) -> float:
    """:func:`lsq_step_grad` for one element, given ``v = x / step`` and its nearest ``code`` (for numba kernels)."""
    return code - v if qmin < v < qmax else code
