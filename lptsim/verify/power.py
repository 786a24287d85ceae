"""``lptsim verify --power``: the suite tests itself against broken variants.

Variants: each theory statement the checks use, scaled by 2 and by 1/2; SR replaced by DR; SR with
its uniform biased by 0.05. A variant is *rejected* when at least one check that passes on the
real code fails with it. Two-sided statements (exact, approximation, conjecture) must be rejected
in both directions. A bound can only be rejected in one direction (an upper bound halved, a lower
bound doubled) and only when it is tight within 2x; a loose bound's variant is listed with its
slack and not counted (its paired sharp prediction is what can fail). The simulations of the real
run are cached, so a scaled prediction re-judges the same measurements.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from lptsim import theory
from lptsim.theory.registry import STATEMENTS, TWO_SIDED
from lptsim.verify import GROUPS, _register_defaults
from lptsim.verify.core import Budget, caching
from lptsim.verify.faults import FAULTS, injected
from lptsim.verify.report import CheckResult


@dataclass
class VariantResult:
    """One broken variant and what the suite made of it."""

    variant: str
    kind: str  # "prediction" or "fault"
    must_reject: bool
    why: str
    failed: list[str] = field(default_factory=list)  # checks that pass on the real code and fail here

    @property
    def rejected(self) -> bool:
        return bool(self.failed)

    @property
    def verdict(self) -> str:
        if self.rejected:
            return "rejected"
        return "NOT REJECTED" if self.must_reject else "not rejected (expected)"


@contextmanager
def _recording(used: dict[str, set[str]], group: list[str]) -> Iterator[None]:
    """Record which statements the running group calls (group[0] names it)."""
    patches = []
    for name in STATEMENTS:
        real = getattr(theory, name)

        @functools.wraps(real)
        def spy(*a: Any, _name: str = name, _real: Callable = real, **k: Any) -> Any:
            used.setdefault(_name, set()).add(group[0])
            return _real(*a, **k)

        patches.append(mock.patch.object(theory, name, spy))
    for p in patches:
        p.start()
    try:
        yield
    finally:
        for p in patches:
            p.stop()


def _scaled(name: str, factor: float) -> Callable[..., Any]:
    real = getattr(theory, name)

    @functools.wraps(real)
    def broken(*a: Any, **k: Any) -> Any:
        return real(*a, **k) * factor

    return broken


def _run_groups(groups: list[str], b: Budget) -> list[CheckResult]:
    return [r for g in groups for r in GROUPS[g](b)]


def _slack_by_statement(results: list[CheckResult]) -> dict[str, float]:
    """The smallest slack among the bound checks whose source names each bound statement."""
    out: dict[str, float] = {}
    for r in results:
        if r.slack is None:
            continue
        for name, st in STATEMENTS.items():
            if st.kind in ("upper bound", "lower bound") and st.source in r.source:
                out[name] = min(out.get(name, float("inf")), r.slack)
    return out


def run_power(b: Budget, groups: list[str], progress: bool = True) -> tuple[list[CheckResult], list[VariantResult]]:
    """Run the real suite, then every variant; return the real results and one row per variant."""
    from tqdm.auto import tqdm

    _register_defaults()
    used: dict[str, set[str]] = {}
    current = [""]
    baseline: list[CheckResult] = []
    with caching():
        with _recording(used, current):
            for g in groups:
                current[0] = g
                baseline += GROUPS[g](b)
        passing = {r.name for r in baseline if r.passed}
        slack = _slack_by_statement(baseline)
        plan = []
        for name in sorted(used):
            kind = STATEMENTS[name].kind
            for factor in (2.0, 0.5):
                must, why = True, f"{kind}: checked two-sided"
                if kind not in TWO_SIDED:
                    rejectable = (factor < 1) == (kind == "upper bound")
                    s = slack.get(name, float("inf"))
                    must = rejectable and s < 2
                    why = (f"{kind} x{factor:g} is still a valid bound" if not rejectable else
                           f"{kind}, slack {s:.3g}: " + ("tight, must fail" if must else "loose by design"))
                plan.append((f"{name} x{factor:g}", "prediction", must, why, sorted(used[name]),
                             mock.patch.object(theory, name, _scaled(name, factor))))
        rows: list[VariantResult] = []
        for label, kind, must, why, gs, patch in tqdm(plan, desc="power: predictions", disable=not progress,
                                                      leave=False):
            with patch:
                res = _run_groups(gs, b)
            rows.append(VariantResult(label, kind, must, why, [r.name for r in res if r.name in passing
                                                               and not r.passed]))
    for fault, spec in tqdm(FAULTS.items(), desc="power: faults", disable=not progress, leave=False):
        with caching(fresh=True), injected(fault):
            res = _run_groups(groups, b)
        rows.append(VariantResult(fault, "fault", True, spec.what, [r.name for r in res if r.name in passing
                                                              and not r.passed]))
    return baseline, rows


def power_table(rows: list[VariantResult]) -> str:
    """Variant, must it be rejected, how many checks failed (and the first), verdict."""
    body = [("variant", "must reject", "checks failed", "first failing check", "verdict")]
    for r in rows:
        body.append((r.variant, "yes" if r.must_reject else f"no ({r.why})", str(len(r.failed)),
                     r.failed[0] if r.failed else "-", r.verdict))
    widths = [min(max(len(row[i]) for row in body), 64) for i in range(5)]
    lines = ["  ".join((c if len(c) <= w else c[: w - 1] + "~").ljust(w) for c, w in zip(row, widths, strict=True))
             .rstrip() for row in body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
