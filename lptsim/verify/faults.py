"""Broken roundings for ``lptsim verify --power``: the suite must reject each of them.

A fault is a :class:`~lptsim.quant.rounding.RoundingRule` planted at the one decision every rounding in lptsim
makes (:func:`lptsim.quant.rounding.round_up`, read through :func:`~lptsim.quant.rounding.active_rule` at each
call): ``quantize`` wherever it was imported, the simulator's write-back (``grid_values``, ALPT's fused kernel),
the CTR table's store path (its torch backend calls ``quantize``) and its 16-bit state (``stochastic_cast``).
The Triton kernels draw in the kernel and are not reached (they are checked bit for bit against the torch path
elsewhere). Nothing changes outside the ``with`` block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from lptsim.quant.rounding import RoundingRule, rounding_rule


@dataclass(frozen=True)
class Fault:
    """A planted rounding bug: its rule, what it breaks, and what of SR it keeps."""

    rule: RoundingRule
    what: str
    keeps: str  # what SR still has under the fault: which property the checks that catch it rely on


FAULTS: dict[str, Fault] = {
    "SR->DR": Fault(RoundingRule(sr_as_nearest=True), "every stochastic rounding rounds to nearest instead",
                    "nothing: no randomness, no unbiasedness"),
    "U+0.05": Fault(RoundingRule(u_shift=0.05), "SR computes floor(v + U + 0.05): rounds up 5 points too often "
                    "(a bias of Delta/20)", "its randomness, not its unbiasedness"),
    "SR-8bit": Fault(RoundingRule(sr_bits=8), "SR with 8 random bits: U truncated to floor(256 U)/256 "
                     "(a bias in [0, Delta/256))", "its randomness and almost all of its unbiasedness"),
    "DR-ties-down": Fault(RoundingRule(ties_down=True), "DR rounds an exact tie v = k + 1/2 down (floor(v + 1/2) "
                          "rounds it up)", "all of SR (only DR changes)"),
}


@contextmanager
def injected(name: str) -> Iterator[None]:
    """Run the block with the named fault planted in lptsim's rounding core."""
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; known: {sorted(FAULTS)}")
    with rounding_rule(FAULTS[name].rule):
        yield
