"""Check results: what was measured, what was predicted, the criterion fixed beforehand, the verdict."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class CheckResult:
    """One falsifiable check. ``passed`` is decided by ``criterion`` alone.

    ``refuted`` marks a claim from the literature that the check found not to hold
    (kept visible instead of deleted); the explanation goes in ``note``.
    """

    name: str
    measured: Any
    predicted: Any
    criterion: str
    passed: bool
    note: str = ""
    refuted: bool = False
    data: dict[str, Any] = field(default_factory=dict)  # series behind the verdict, for figures

    def to_json(self) -> dict[str, Any]:
        return {k: _plain(v) for k, v in asdict(self).items()}


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
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(fmt(u) for u in v) + "]"
    return str(v)


def table(results: list[CheckResult]) -> str:
    """A plain-text table: check, measured, predicted, criterion, verdict."""
    rows = [("check", "measured", "predicted", "criterion", "verdict")]
    for r in results:
        verdict = "PASS" if r.passed else "FAIL"
        if r.refuted:
            verdict += " (claim refuted)"
        rows.append((r.name, fmt(r.measured), fmt(r.predicted), r.criterion, verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
