"""Every bound and prediction in lptsim.theory is a *statement*: a function with its kind, source
and assumptions attached, so reports can say where a number comes from and ``lptsim verify
--power`` can break each one on purpose.

Kinds (``kind=``), and the broken variants ``--power`` makes of each (all of them must be rejected,
i.e. some check that passes with the statement must stop passing):

* ``exact``: equals the quantity it predicts under its assumptions (checked two-sided, band about
  5%); variants x2, x1/2, x1.1, x0.9;
* ``approximation``: a derived first-order or mean-field value, checked two-sided with the
  tolerance its derivation allows (10-15%); variants x2, x1/2, x1.25, x0.8;
* ``conjecture``: an observation we could not derive, checked as such; variants as approximations;
* ``upper bound`` / ``lower bound``: holds always under its assumptions, possibly loosely
  (checked one-sided, its slack printed); variants x2 and x1/2, of which only the one that makes
  the bound false (an upper bound halved, a lower bound doubled) must be rejected, and only when
  the bound is tight within 2x (a looser one is reported as "holds, slack Nx: not a test").

How a statement is used (``use=``) decides whether scaling can break it:

* ``"value"`` (the default): checks compare its value with a measurement; scaling it is a break.
* ``"root"``: only where it crosses zero matters (e.g. a mean gradient whose root is a fixed point);
  ``"sign"``: only its sign or a threshold crossing matters. Scaling leaves either unchanged, so the
  statement names a numeric argument (``vary=``) that ``--power`` multiplies by 1.1 and by 0.9: that
  moves its root or threshold by about 10%, and both variants must be rejected.

Register with the decorator; nothing else is needed for ``--power`` to find and break it::

    @statement("exact", "derived here (docs/theory.md 10.1)", ("assumption", ...))
    def my_prediction(...): ...

    @statement("approximation", "derived here (...)", (...), use="root", vary="delta")
    def my_mean_gradient(w_star, delta, ...): ...   # --power evaluates it at delta x 1.1 and x 0.9
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

KINDS = ("exact", "approximation", "upper bound", "lower bound", "conjecture")
TWO_SIDED = ("exact", "approximation", "conjecture")
USES = ("value", "root", "sign")
# The factors --power scales a value-use statement by, per kind.
SCALES = {"exact": (2.0, 0.5, 1.1, 0.9), "approximation": (2.0, 0.5, 1.25, 0.8), "conjecture": (2.0, 0.5, 1.25, 0.8),
          "upper bound": (2.0, 0.5), "lower bound": (2.0, 0.5)}
ARGUMENT_FACTORS = (1.1, 0.9)  # a root- or sign-use statement's argument ``vary`` is multiplied by these

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class Statement:
    """What a theory function claims: its kind, where it comes from, when it holds, and how checks use it."""

    name: str
    kind: str
    source: str
    assumptions: tuple[str, ...]
    summary: str
    use: str = "value"
    vary: str | None = None


STATEMENTS: dict[str, Statement] = {}


def statement(kind: str, source: str, assumptions: tuple[str, ...] = (), *, use: str = "value",
              vary: str | None = None) -> Callable[[F], F]:
    """Register a theory function as a statement (see the module docstring for kinds, uses and variants)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if use not in USES:
        raise ValueError(f"use must be one of {USES}, got {use!r}")
    if (use != "value") != (vary is not None):
        raise ValueError("a statement used through its root or sign names the argument --power varies (vary=...); "
                         "a value-use statement does not")

    def register(fn: F) -> F:
        if vary is not None and vary not in fn.__code__.co_varnames[: fn.__code__.co_argcount]:
            raise ValueError(f"{fn.__name__} has no argument {vary!r} to vary")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else fn.__name__
        st = Statement(fn.__name__, kind, source, tuple(assumptions), summary, use, vary)
        STATEMENTS[fn.__name__] = st
        fn.statement = st  # type: ignore[attr-defined]
        return fn

    return register
