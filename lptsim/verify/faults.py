"""Broken variants of the rounding for ``lptsim verify --power``: the suite must reject each of them.

The faults replace ``quantize`` where the checks and the simulator call it; production code is
untouched outside the ``with`` block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

import numpy as np

from lptsim import quant

FAULTS = {
    "SR replaced by DR": "every stochastic rounding rounds to nearest instead",
    "SR with U biased by 0.05": "stochastic rounding rounds up 5 percentage points too often (bias Delta/20)",
}
# Modules that bind quantize at import time and whose stochastic roundings the checks exercise.
_CONSUMERS = ("lptsim.sim.methods", "lptsim.verify.quant_checks")


def _faulty(name: str) -> Callable[..., Any]:
    real = quant.quantize

    def quantize(x: Any, step: Any, spec: Any, rounding: str = "nearest", seed: int = 0, offset: Any = 0) -> Any:
        if rounding != "stochastic":
            return real(x, step, spec, rounding, seed, offset)
        if name == "SR replaced by DR":
            return real(x, step, spec, "nearest", seed, offset)
        # floor(x/step + U + 0.05): the same draws, shifted
        return real(np.asarray(x) + 0.05 * np.asarray(step), step, spec, "stochastic", seed, offset)

    return quantize


@contextmanager
def injected(name: str) -> Iterator[None]:
    """Run the block with the named fault in every consumer of ``quantize``."""
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; known: {sorted(FAULTS)}")
    import importlib

    with ExitStack() as stack:
        for module in _CONSUMERS:
            stack.enter_context(mock.patch.object(importlib.import_module(module), "quantize", _faulty(name)))
        yield
