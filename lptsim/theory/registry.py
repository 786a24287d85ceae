"""Every bound and prediction in lptsim.theory is a *statement*: a function with its kind, source
and assumptions attached, so reports can say where a number comes from and ``lptsim verify
--power`` can break each one on purpose.

Kinds:

* ``exact``: equals the quantity it predicts under its assumptions (checked two-sided);
* ``approximation``: a derived first-order or mean-field value, checked two-sided with the
  tolerance its derivation allows;
* ``upper bound`` / ``lower bound``: holds always under its assumptions, possibly loosely
  (checked one-sided, its slack printed);
* ``conjecture``: an observation we could not derive, checked as such.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

KINDS = ("exact", "approximation", "upper bound", "lower bound", "conjecture")
TWO_SIDED = ("exact", "approximation", "conjecture")

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class Statement:
    """What a theory function claims: its kind, where it comes from, when it holds."""

    name: str
    kind: str
    source: str
    assumptions: tuple[str, ...]
    summary: str


STATEMENTS: dict[str, Statement] = {}


def statement(kind: str, source: str, assumptions: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Register a theory function as a statement (see the module docstring for the kinds)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def register(fn: F) -> F:
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else fn.__name__
        st = Statement(fn.__name__, kind, source, tuple(assumptions), summary)
        STATEMENTS[fn.__name__] = st
        fn.statement = st  # type: ignore[attr-defined]
        return fn

    return register
