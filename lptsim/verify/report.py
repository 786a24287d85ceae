"""Check results: the statement's source, what was measured (with its confidence interval), what
was predicted before the run, the criterion, the slack of a bound, the control, the verdict."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ControlResult:
    """The same measurement where the claim must NOT hold; ``passed`` must come out False."""

    what: str
    measured: Any
    predicted: Any
    passed: bool
    ci: tuple[float, float] | None = None


@dataclass
class CheckResult:
    """One falsifiable check. ``passed`` = the criterion holds AND the control fails it.

    ``main_passed`` is the criterion alone. A check whose control also passes cannot tell a true
    statement from a false one: it is reported as not discriminating and counts as a failure.
    ``refuted`` marks a claim from the literature the check found not to hold (kept visible).
    """

    name: str
    measured: Any
    predicted: Any
    criterion: str
    passed: bool
    note: str = ""
    refuted: bool = False
    data: dict[str, Any] = field(default_factory=dict)  # series behind the verdict, for figures
    source: str = ""
    kind: str = ""
    ci: tuple[float, float] | None = None
    slack: float | None = None  # bounds: bound / measured (upper) or measured / bound (lower)
    control: ControlResult | None = None
    main_passed: bool | None = None

    @property
    def discriminating(self) -> bool:
        """False when the control passes too (the check could not have failed)."""
        return self.control is None or not self.control.passed

    @property
    def verdict(self) -> str:
        if self.passed:
            return "PASS"
        if self.main_passed and not self.discriminating:
            return "FAIL (not discriminating)"
        return "FAIL (claim refuted)" if self.refuted else "FAIL"

    def to_json(self) -> dict[str, Any]:
        out = {k: _plain(v) for k, v in asdict(self).items()}
        out["discriminating"] = self.discriminating
        out["verdict"] = self.verdict
        return out


def _plain(v: Any) -> Any:
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        return [_plain(u) for u in v]
    if isinstance(v, dict):
        return {k: _plain(u) for k, u in v.items()}
    return v


def fmt(v: Any) -> str:
    """Compact text for a measured or predicted value."""
    v = _plain(v)
    if isinstance(v, bool) or isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(fmt(u) for u in v) + "]"
    return str(v)


def fmt_measured(r: CheckResult | ControlResult) -> str:
    """The measured value with its confidence interval when it has one."""
    if r.ci is None or r.ci[0] == r.ci[1]:
        return fmt(r.measured)
    return f"{fmt(r.measured)} [{fmt(r.ci[0])}, {fmt(r.ci[1])}]"


def fmt_control(r: CheckResult) -> str:
    if r.control is None:
        return "-"
    c = r.control
    return f"{c.what}: {fmt_measured(c)} -> {'passes (!)' if c.passed else 'fails'}"


def rows(results: list[CheckResult]) -> list[tuple[str, ...]]:
    """One tuple of cells per check: check, source, measured [CI], predicted, criterion, slack, control, verdict."""
    out = []
    for r in results:
        slack = "-" if r.slack is None else f"{r.slack:.3g}x"
        out.append((r.name, r.source, fmt_measured(r), fmt(r.predicted), r.criterion, slack, fmt_control(r),
                    r.verdict))
    return out


HEADER = ("check", "source", "measured [CI]", "predicted", "criterion", "slack", "control (must fail)", "verdict")


def table(results: list[CheckResult]) -> str:
    """A plain-text table with one row per check (wide: each check's source, CI, slack and control)."""
    body = [HEADER, *rows(results)]
    widths = [min(max(len(row[i]) for row in body), 60) for i in range(len(HEADER))]
    lines = []
    for row in body:
        cells = [(c if len(c) <= w else c[: w - 1] + "~").ljust(w) for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
