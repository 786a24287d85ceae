"""Check results and how a person reads them: a verdict table that fits the terminal (120 columns on one line
per check, narrower terminals on two), the summary line, and ``--explain`` for one check.

Verdicts (decided in lptsim.verify.core from confidence intervals):

* ``PASS``: the interval lies inside the predicted band and the control FAILs;
* ``FAIL``: refuted, the interval lies entirely outside the band;
* ``INCONCLUSIVE``: the interval covers the band and outside it (or the control's does); it says how many
  more replicates would decide;
* ``NOT DISCRIMINATING``: the check passes, but so does its control: it could not have failed;
* ``LOOSE``: a bound that holds with slack of 2x or more: "holds, slack Nx: not a test", counted apart.
"""

from __future__ import annotations

import math
import shutil
import textwrap
from dataclasses import asdict, dataclass, field, fields
from typing import Any

PASS, FAIL, INCONCLUSIVE, BLIND, LOOSE = "PASS", "FAIL", "INCONCLUSIVE", "NOT DISCRIMINATING", "LOOSE"
OUTCOMES = (PASS, FAIL, INCONCLUSIVE, BLIND, LOOSE)


@dataclass
class ControlResult:
    """The same measurement where the claim must NOT hold; its ``outcome`` must come out FAIL."""

    what: str
    measured: Any
    predicted: Any
    passed: bool
    ci: tuple[float, float] | None = None
    outcome: str = ""  # PASS / FAIL / INCONCLUSIVE under the check's criterion
    shown: str = ""  # its band, as the table shows it
    hull: tuple[float, float, float, float] | None = None

    @property
    def verdict(self) -> str:
        return self.outcome or (PASS if self.passed else FAIL)


@dataclass
class CheckResult:
    """One falsifiable check. ``passed`` = its verdict is PASS (the criterion holds AND the control fails).

    ``outcome`` is the verdict (see the module docstring); ``more`` the factor by which an INCONCLUSIVE check's
    replicates would have to grow to decide; ``intervals`` and ``alpha`` the distinct random intervals it judged
    (check and control) and their summed error probabilities, for the family-wise level.
    """

    name: str
    measured: Any
    predicted: Any
    criterion: str
    passed: bool
    note: str = ""
    refuted: bool = False  # the statement is refuted (verdict FAIL)
    data: dict[str, Any] = field(default_factory=dict)  # series behind the verdict, for figures
    source: str = ""
    kind: str = ""
    ci: tuple[float, float] | None = None
    slack: float | None = None  # bounds: bound / measured (upper) or measured / bound (lower)
    control: ControlResult | None = None
    main_passed: bool | None = None
    id: str = ""  # noqa: A003 - the short name the table and --explain use
    outcome: str = ""
    more: float | None = None
    replicates: int | None = None
    intervals: int = 0
    alpha: float = 0.0
    statements: tuple[str, ...] = ()
    shown: str = ""  # the prediction with its band, as the table shows it
    hull: tuple[float, float, float, float] | None = None  # curves: value range and CI range
    bound: bool = False
    group: str = ""
    family: tuple[tuple[str, int, float], ...] = ()  # (key, count, error probability) of each distinct interval

    @property
    def discriminating(self) -> bool:
        """False when the control passes too (the check could not have failed)."""
        return self.control is None or self.control.verdict != PASS

    @property
    def verdict(self) -> str:
        return self.outcome or (PASS if self.passed else FAIL)

    @property
    def ok(self) -> bool:
        """PASS, or a loose bound that holds (not a test, but nothing wrong)."""
        return self.verdict in (PASS, LOOSE)

    def more_text(self) -> str:
        """For INCONCLUSIVE: how many more replicates would decide it (the interval shrinks like 1/sqrt(n))."""
        if self.verdict != INCONCLUSIVE or self.more is None:
            return ""
        if not math.isfinite(self.more):
            return "the estimate sits on the band's edge: no number of replicates decides it"
        n = self.replicates
        count = f" ({n} -> {math.ceil(n * self.more)})" if n else ""
        return f"about {self.more:.2g}x the replicates{count} would decide it"

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> CheckResult:
        """The inverse of ``to_json`` (verify.json, figs_data.json): derived keys are dropped, tuples restored."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in payload.items() if k in names}
        ctrl = kw.get("control")
        if isinstance(ctrl, dict):
            known = {f.name for f in fields(ControlResult)}
            kw["control"] = ControlResult(**{k: v for k, v in ctrl.items() if k in known})
        for key in ("ci", "hull", "statements"):
            if isinstance(kw.get(key), list):
                kw[key] = tuple(kw[key])
        kw["family"] = tuple(tuple(f) for f in kw.get("family", ()))
        return cls(**kw)

    def to_json(self) -> dict[str, Any]:
        out = {k: _plain(v) for k, v in asdict(self).items()}
        out["discriminating"] = self.discriminating
        out["verdict"] = self.verdict
        out["decide_with"] = self.more_text()
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


def fmt(v: Any, digits: int = 4) -> str:
    """Compact text for a measured or predicted value (``digits`` significant digits)."""
    v = _plain(v)
    if isinstance(v, bool) or isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    if isinstance(v, list):
        return "[" + ", ".join(fmt(u, digits) for u in v) + "]"
    return str(v)


def _g(v: float) -> str:
    return f"{v:.3g}"


def fmt_measured(r: CheckResult | ControlResult, slack: float | None = None, digits: int = 4) -> str:
    """The measured value with its confidence interval (a curve: its range and the range of its intervals)."""
    if isinstance(r, CheckResult) and r.verdict == LOOSE:
        return f"holds, slack {r.slack:.3g}×: not a test"
    if r.hull is not None and slack is not None and math.isfinite(slack):  # a bound along a curve: its slack says it
        return f"slack {slack:.3g}× ({_points(r)})"
    if r.hull is not None and isinstance(r.measured, list) and r.hull[2:] == r.hull[:2]:  # a few exact values
        return fmt(r.measured, digits)
    if r.hull is not None:
        vmin, vmax, lo, hi = r.hull
        text = (_g(vmin) if vmin == vmax else f"{_g(vmin)}..{_g(vmax)}") + ("" if lo == vmin and hi == vmax
                                                                           else f" [{_g(lo)}, {_g(hi)}]")
    elif r.ci is None or r.ci[0] == r.ci[1]:
        text = fmt(r.measured, digits)
    else:
        text = f"{fmt(r.measured, digits)} [{fmt(r.ci[0], digits)}, {fmt(r.ci[1], digits)}]"
    if slack is not None and math.isfinite(slack):
        text += f", slack {slack:.3g}×"
    return text


def _points(r: CheckResult | ControlResult) -> str:
    n = r.data.get("ci_lo") if isinstance(r, CheckResult) else None
    return f"{len(n)} pts" if n is not None else "the curve"


def fmt_control(r: CheckResult) -> str:
    """The control's verdict first (it must be FAIL), then what it is."""
    if r.control is None:
        return "-"
    verdict = r.control.verdict
    return f"{verdict}{' (!)' if verdict == PASS else ''} ({r.control.what})"


def rows(results: list[CheckResult]) -> list[tuple[str, ...]]:
    """One tuple of cells per check: id, prediction, measured [CI], verdict, control."""
    return [(r.id or r.name, r.shown or fmt(r.predicted, 3), fmt_measured(r, r.slack if r.bound else None, 3),
             _verdict_cell(r), fmt_control(r)) for r in results]


def _verdict_cell(r: CheckResult) -> str:
    if r.verdict == INCONCLUSIVE and r.more is not None:
        return f"INCONCLUSIVE ({'∞' if not math.isfinite(r.more) else f'x{r.more:.2g}'})"
    return r.verdict


HEADER = ("check", "predicted", "measured [CI]", "verdict", "control (must FAIL)")
# widest a column may grow before it is cut with "…" (the full text is in --explain and verify.json)
_CAPS = (21, 19, 29, 19, 22)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def terminal_width(default: int = 120) -> int:
    """The terminal's width (COLUMNS wins; ``default`` when the output is not a terminal)."""
    return shutil.get_terminal_size((default, 24)).columns


def table(results: list[CheckResult], width: int | None = None) -> str:
    """The verdict table, fitted to ``width`` columns (default: the terminal's).

    One line per check when the columns fit (they do at 120); otherwise two lines per check: the id, verdict
    and control, then the prediction and the measurement, indented.
    """
    width = terminal_width() if width is None else width
    body = rows(results)
    widths = [min(max(len(row[i]) for row in [HEADER, *body]), cap) for i, cap in enumerate(_CAPS)]
    if sum(widths) + 2 * (len(widths) - 1) <= width:
        widths[-1] = min(max(len(row[-1]) for row in [HEADER, *body]), width - sum(widths[:-1]) - 8)
        lines = ["  ".join(_cut(c, w).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in [HEADER, *body]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)
    id_w = min(max(len(row[0]) for row in body), 22, max(width - 30, 8))
    lines = [_cut(f"{'check'.ljust(id_w)}  verdict; control (must FAIL)", width),
             _cut("    predicted  |  measured [CI]", width), "-" * min(width, 80)]
    for cid, pred, meas, verdict, ctrl in body:
        lines.append(_cut(f"{_cut(cid, id_w).ljust(id_w)}  {verdict}; {ctrl}", width))
        lines.append(_cut(f"    {pred}  |  {meas}", width))
    return "\n".join(lines)


def counts(results: list[CheckResult]) -> dict[str, int]:
    """How many checks have each verdict."""
    out = dict.fromkeys(OUTCOMES, 0)
    for r in results:
        out[r.verdict] = out.get(r.verdict, 0) + 1
    return out


def summary(results: list[CheckResult]) -> str:
    """'N PASS, N FAIL, N INCONCLUSIVE, N NOT DISCRIMINATING; N loose bounds hold (not tests)'."""
    c = counts(results)
    text = f"{c[PASS]} PASS, {c[FAIL]} FAIL, {c[INCONCLUSIVE]} INCONCLUSIVE, {c[BLIND]} NOT DISCRIMINATING"
    loose = [r.slack for r in results if r.verdict == LOOSE and r.slack is not None]
    if loose:
        span = f"{min(loose):.2g}" if len(loose) == 1 else f"{min(loose):.2g}-{max(loose):.2g}"
        text += f"; {len(loose)} loose bound{'s' if len(loose) > 1 else ''} hold (slack {span}×: not tests)"
    return text


def exit_code(results: list[CheckResult]) -> int:
    """0 when every check PASSes (or is a loose bound that holds); 1 on any FAIL or NOT DISCRIMINATING check;
    3 when the only other verdicts are INCONCLUSIVE."""
    c = counts(results)
    if c[FAIL] or c[BLIND]:
        return 1
    return 3 if c[INCONCLUSIVE] else 0


def inconclusive_notes(results: list[CheckResult]) -> list[str]:
    """One line per INCONCLUSIVE check: what would decide it."""
    return [f"{r.id or r.name}: {r.more_text()}" for r in results if r.verdict == INCONCLUSIVE]


def explain(r: CheckResult, statements: dict[str, Any] | None = None, figure: str | None = None,
            width: int = 100) -> str:
    """Everything about one check: its full name, statement(s), source, assumptions, the prediction and its band,
    the measurement with its interval, the control, the note and the figure that shows it."""
    def block(label: str, text: str) -> list[str]:
        wrapped = textwrap.wrap(text, width=max(width - 14, 30)) or [""]
        return [f"  {label:<12}{wrapped[0]}", *[" " * 14 + w for w in wrapped[1:]]]

    lines = [f"{r.id}: {r.name}", *block("verdict", r.verdict + (f" ({r.more_text()})" if r.more_text() else ""))]
    for name in r.statements:
        st = (statements or {}).get(name)
        if st is not None:
            lines += block("statement", f"lptsim.theory.{name} ({st.kind}): {st.summary}")
            lines += block("assumptions", "; ".join(st.assumptions) or "-")
    lines += block("source", r.source or "-")
    lines += block("kind", r.kind or "-")
    lines += block("predicted", f"{r.shown or fmt(r.predicted)}  [{r.criterion}]  (full: {fmt(r.predicted)})")
    level = "" if r.replicates is None else f"; {r.replicates} replicates"
    measured = fmt_measured(r)
    lo, hi = r.data.get("ci_lo"), r.data.get("ci_hi")
    if lo is not None and len(lo) <= 8 and isinstance(r.measured, list):  # a short curve: every point
        measured = ", ".join(f"{fmt(v)} [{fmt(a)}, {fmt(c)}]" for v, a, c in zip(r.measured, lo, hi, strict=True))
    lines += block("measured", f"{measured}{level}"
                   + ("" if r.slack is None or not math.isfinite(r.slack) else f"; slack {r.slack:.3g}×"))
    if r.control is not None:
        c = r.control
        lines += block("control", f"{c.what}: measured {fmt_measured(c)} against {c.shown or fmt(c.predicted)} "
                                  f"-> {c.verdict} (it must FAIL)")
    lines += block("intervals", f"{r.intervals} random interval(s) judged, error probability {r.alpha:.2g} in all")
    if r.note:
        lines += block("note", r.note)
    lines += block("figure", figure or "none")
    return "\n".join(lines)
