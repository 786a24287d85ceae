"""``lptsim verify --power``: the suite tests itself against broken variants.

Variants (see lptsim.theory.registry for how a statement declares what breaks it):

* every statement the checks use, patched *everywhere* it is bound in lptsim (so a statement another statement
  calls is broken there too): exact ones scaled by 2, 1/2, 1.1 and 0.9; approximations and conjectures by 2, 1/2,
  1.25 and 0.8; bounds by 2 and 1/2; a statement used only through its root or sign evaluated with its declared
  argument times 1.1 and 0.9;
* the rounding faults of lptsim.verify.faults, planted at lptsim.quant's core (every simulation, every table).

A variant is *rejected* when at least one check that PASSes on the real code no longer passes its criterion with
it (it FAILs, refuted, or turns INCONCLUSIVE: either way the suite would not have passed the wrong theory). Only
the check's own criterion counts, not its control: a DR check whose SR control turns into DR under a fault has
not rejected the fault. Every variant of a
two-sided statement must be rejected; a bound only in the direction that makes it false (an upper bound halved,
a lower bound doubled), and only when some check of it is tight within 2x. The simulations (and CTR trainings)
of the real run are cached, so a broken prediction re-judges the same measurements; faults re-run everything.

The report is read per check too: which variants each check rejects. A check that cites a statement and rejects
no variant is not discriminating (its PASS means nothing); a check of a definition (no statement) that no fault
reaches rests on its control alone, and is listed as such.
"""

from __future__ import annotations

import functools
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from lptsim import theory
from lptsim.theory.registry import ARGUMENT_FACTORS, SCALES, STATEMENTS, TWO_SIDED
from lptsim.verify import _register_defaults, run_group
from lptsim.verify.core import LOOSE_SLACK, Budget, caching
from lptsim.verify.faults import FAULTS, injected
from lptsim.verify.report import FAIL, PASS, CheckResult


@dataclass
class VariantResult:
    """One broken variant and what the suite made of it."""

    variant: str
    kind: str  # "prediction" or "fault"
    must_reject: bool
    why: str
    failed: list[str] = field(default_factory=list)  # ids of checks that PASS on the real code and fail their criterion
    refuted: list[str] = field(default_factory=list)  # those of them that FAIL (the rest are INCONCLUSIVE)
    statement: str = ""
    groups: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return bool(self.failed)

    @property
    def verdict(self) -> str:
        if self.rejected:
            return "rejected"
        return "NOT REJECTED" if self.must_reject else "not rejected (not counted)"


@dataclass
class CheckPower:
    """What one check rejects."""

    id: str  # noqa: A003
    group: str
    verdict: str  # on the real code
    statements: tuple[str, ...]
    variants: list[str] = field(default_factory=list)  # prediction variants that make it stop passing
    faults: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.verdict != PASS:
            return self.verdict.lower() if self.verdict != "LOOSE" else "loose bound: not a test"
        if self.variants or self.faults:
            return "discriminating"
        return "NOT DISCRIMINATING" if self.statements else "control only (a definition no variant reaches)"


def _bindings(real: Callable) -> list[tuple[Any, str]]:
    """Every (module, attribute) in lptsim that is bound to ``real``."""
    out = []
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not mod_name.startswith("lptsim"):
            continue
        for attr, value in list(vars(mod).items()):
            if value is real:
                out.append((mod, attr))
    return out


@contextmanager
def patched_everywhere(name: str, replacement: Callable) -> Iterator[None]:
    """Replace the statement ``name`` wherever lptsim bound it (its module, lptsim.theory, importers)."""
    real = getattr(theory, name)
    with ExitStack() as stack:
        for mod, attr in _bindings(real):
            stack.enter_context(mock.patch.object(mod, attr, replacement))
        yield


Where = tuple[str, int]  # (group, part index)


@contextmanager
def _recording(used: dict[str, set[Where]], where: list[Where]) -> Iterator[None]:
    """Record which statements the running part calls (where[0] names it), directly or through another one."""
    with ExitStack() as stack:
        for name in STATEMENTS:
            real = getattr(theory, name)

            @functools.wraps(real)
            def spy(*a: Any, _name: str = name, _real: Callable = real, **k: Any) -> Any:
                used.setdefault(_name, set()).add(where[0])
                return _real(*a, **k)

            stack.enter_context(patched_everywhere(name, spy))
        yield


def _scaled(real: Callable, factor: float) -> Callable:
    @functools.wraps(real)
    def broken(*a: Any, **k: Any) -> Any:
        return real(*a, **k) * factor

    return broken


def _argument_scaled(real: Callable, arg: str, factor: float) -> Callable:
    sig = inspect.signature(real)

    @functools.wraps(real)
    def broken(*a: Any, **k: Any) -> Any:
        bound = sig.bind(*a, **k)
        bound.arguments[arg] = bound.arguments[arg] * factor
        return real(*bound.args, **bound.kwargs)

    return broken


@contextmanager
def _ctr_trainings_cached() -> Iterator[None]:
    """Re-judging a prediction of the ctr group re-uses its trainings (as the simulations are re-used)."""
    from lptsim.verify import ctr_checks, ctr_sparse

    real, real_tracked = ctr_checks._train, ctr_sparse._tracked
    memo: dict[str, Any] = {}

    def cached(s: Any, name: str, cfg: Any) -> Any:
        key = f"{s.label}|{name}|{cfg!r}"
        if key not in memo:
            memo[key] = real(s, name, cfg)
        return memo[key]

    def tracked(s: Any, name: str, cfg: Any, *a: Any, **k: Any) -> Any:  # the step-by-step runs (ctr_sparse)
        key = f"{s.label}|tracked|{name}|{cfg!r}|{a!r}|{sorted(k.items())!r}"
        if key not in memo:
            memo[key] = real_tracked(s, name, cfg, *a, **k)
        return memo[key]

    with mock.patch.object(ctr_checks, "_train", cached), mock.patch.object(ctr_sparse, "_tracked", tracked):
        yield


def _fmt_factor(f: float) -> str:
    return {0.5: "½"}.get(f, f"{f:g}")


def plan(used: dict[str, set[Where]], slack: dict[str, float]
         ) -> list[tuple[str, str, bool, str, list[Where], Callable]]:
    """(label, statement, must reject, why, parts, broken function) for every variant of every statement used."""
    out = []
    for name in sorted(used):
        st = STATEMENTS[name]
        real = getattr(theory, name)
        groups = sorted(used[name])
        if st.use != "value":
            for f in ARGUMENT_FACTORS:
                out.append((f"{name}({st.vary} ×{f:g})", name, True,
                            f"{st.kind} used through its {st.use}: {st.vary} x{f:g} moves it",
                            groups, _argument_scaled(real, st.vary or "", f)))
            continue
        for f in SCALES[st.kind]:
            must, why = True, f"{st.kind}: checked two-sided"
            if st.kind not in TWO_SIDED:
                breaks = (f < 1) == (st.kind == "upper bound")
                s = slack.get(name, float("inf"))
                must = breaks and s < LOOSE_SLACK
                why = (f"{st.kind} x{f:g} is still a valid bound" if not breaks else
                       f"{st.kind}, tightest slack {s:.3g}: " + ("tight, must fail" if must else "loose: not a test"))
            out.append((f"{name} ×{_fmt_factor(f)}", name, must, why, groups, _scaled(real, f)))
    return out


def _slack_by_statement(results: list[CheckResult]) -> dict[str, float]:
    """The smallest slack among the bound checks that cite each bound statement."""
    out: dict[str, float] = {}
    for r in results:
        # a bound checked two-sided (its attainment) and passing is tight: slack 1
        slack = r.slack if r.bound else (1.0 if r.verdict == PASS else None)
        if slack is None:
            continue
        for name in r.statements:
            if STATEMENTS[name].kind in ("upper bound", "lower bound"):
                out[name] = min(out.get(name, float("inf")), slack)
    return out


def run_power(b: Budget, groups: list[str], progress: bool = True,
              faults: bool = True) -> tuple[list[CheckResult], list[VariantResult]]:
    """Run the real suite, then every variant; return the real results and one row per variant."""
    from tqdm.auto import tqdm

    _register_defaults()
    used: dict[str, set[Where]] = {}
    current: list[Where] = [("", 0)]
    baseline: list[CheckResult] = []
    with caching(), _ctr_trainings_cached():
        with _recording(used, current):
            for g in groups:
                baseline += run_group(g, b, on_part=lambda i, g=g: current.__setitem__(0, (g, i)))
        passing = {r.id for r in baseline if r.verdict == PASS}
        rows: list[VariantResult] = []
        for label, name, must, why, where, broken in tqdm(plan(used, _slack_by_statement(baseline)),
                                                         desc="power: predictions", disable=not progress, leave=False):
            gs = sorted({g for g, _ in where})
            with patched_everywhere(name, broken):
                res = [r for g in gs for r in run_group(g, b, parts={i for h, i in where if h == g})]
            rows.append(_outcome(label, "prediction", must, why, res, passing, name, gs))
    if faults:
        for fault, spec in tqdm(FAULTS.items(), desc="power: faults", disable=not progress, leave=False):
            with caching(fresh=True), injected(fault):
                res = [r for g in groups for r in run_group(g, b)]
            rows.append(_outcome(fault, "fault", True, spec.what, res, passing, "", list(groups)))
    return baseline, rows


def _outcome(label: str, kind: str, must: bool, why: str, res: list[CheckResult], passing: set[str], name: str,
             groups: list[str]) -> VariantResult:
    lost = [r for r in res if r.id in passing and not r.main_passed]
    return VariantResult(label, kind, must, why, [r.id for r in lost], [r.id for r in lost if r.verdict == FAIL],
                         name, groups)


def per_check(baseline: list[CheckResult], rows: list[VariantResult]) -> list[CheckPower]:
    """For each check of the real run: the variants and faults it rejects."""
    out = {r.id: CheckPower(r.id, r.group, r.verdict, r.statements) for r in baseline}
    for v in rows:
        for cid in v.failed:
            (out[cid].faults if v.kind == "fault" else out[cid].variants).append(v.variant)
    return list(out.values())


# Reports ---------------------------------------------------------------------------------------------------

def _grid(body: list[tuple[str, ...]], caps: tuple[int, ...]) -> str:
    widths = [min(max(len(row[i]) for row in body), cap) for i, cap in enumerate(caps)]
    lines = ["  ".join((c if len(c) <= w else c[: w - 1] + "…").ljust(w) for c, w in zip(row, widths, strict=True))
             .rstrip() for row in body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def power_table(rows: list[VariantResult]) -> str:
    """One row per variant: must it be rejected, how many passing checks it breaks (refuted), the first, verdict."""
    body = [("variant", "must reject", "checks lost (refuted)", "first checks lost", "verdict")]
    for r in rows:
        body.append((r.variant, "yes" if r.must_reject else f"no: {r.why}", f"{len(r.failed)} ({len(r.refuted)})",
                     ", ".join(r.failed[:3]) or "-", r.verdict))
    return _grid(body, (46, 40, 21, 44, 26))


def _compress(variants: list[str]) -> str:
    """'a ×2, a ×½, b(delta ×1.1)' -> 'a ×{2, ½}; b(delta ×1.1)'."""
    by: dict[str, list[str]] = {}
    for v in variants:
        head, _, tail = v.rpartition(" ×") if " ×" in v and "(" not in v else (v, "", "")
        by.setdefault(head, []).append(tail)
    return "; ".join(f"{h} ×{{{', '.join(t)}}}" if t != [""] else h for h, t in by.items())


def check_power_table(power: list[CheckPower]) -> str:
    """One row per check: its status and what it rejects."""
    body = [("check", "status", "rejects (predictions; faults)")]
    for c in power:
        rejects = "; ".join(x for x in (_compress(c.variants), ", ".join(c.faults)) if x) or "-"
        body.append((c.id, c.status, rejects))
    return _grid(body, (22, 46, 200))


def fault_group_table(rows: list[VariantResult], baseline: list[CheckResult]) -> str:
    """Fault x check group: how many of the group's passing checks each fault breaks, and which."""
    groups = list(dict.fromkeys(r.group for r in baseline))
    size = {g: sum(1 for r in baseline if r.group == g and r.verdict == PASS) for g in groups}
    lines = []
    for v in (r for r in rows if r.kind == "fault"):
        cells = []
        for g in groups:
            ids = [c for c in v.failed if c.split(".", 1)[0] == g]
            cells.append(f"{g} {len(ids)}/{size[g]}")
        lines.append(f"{v.variant:<13} " + "  ".join(cells))
        for g in groups:
            ids = [c for c in v.failed if c.split(".", 1)[0] == g]
            if ids:
                lines.append(textwrap.fill(f"{g}: {', '.join(ids)}", width=120, initial_indent=" " * 15,
                                           subsequent_indent=" " * 17))
    return "\n".join(lines)


def sr_dependence(power: list[CheckPower]) -> str:
    """Which checks need SR's unbiasedness (they reject U+0.05 or 8-bit SR), which only its presence (they reject
    SR->DR alone), and which do not depend on SR at all."""
    unbiased, present = [], []
    for c in power:
        if c.verdict != PASS:
            continue
        if {"U+0.05", "SR-8bit"} & set(c.faults):
            unbiased.append(c.id)
        elif "SR->DR" in c.faults:
            present.append(c.id)
    return "\n".join(textwrap.fill(text, width=120, subsequent_indent="    ") for text in (
        f"needs SR unbiased ({len(unbiased)}: they reject a biased SR, U+0.05 or 8-bit): {', '.join(unbiased) or '-'}",
        f"needs SR present only ({len(present)}: they reject SR->DR, pass a biased SR): {', '.join(present) or '-'}"))


def _complete(baseline: list[CheckResult]) -> bool:
    """Whether the run covered every default group (only then can a variant no check rejects be blamed on the suite:
    a group left out may be the one that rejects it)."""
    from lptsim.verify import DEFAULT_GROUPS

    return set(DEFAULT_GROUPS) <= {r.group for r in baseline}


def summary(baseline: list[CheckResult], rows: list[VariantResult], power: list[CheckPower]) -> str:
    counted = [r for r in rows if r.must_reject]
    missed = [r.variant for r in counted if not r.rejected]
    scope = "" if _complete(baseline) else (
        f" [this run covers the groups {', '.join(sorted({r.group for r in baseline}))} only: a variant they do not "
        "reject may be rejected by another group; `lptsim verify --power` runs the default groups and decides]")
    blind = [c.id for c in power if c.status == "NOT DISCRIMINATING"]
    control_only = [c.id for c in power if c.status.startswith("control only")]
    passing = sum(r.verdict == PASS for r in baseline)
    return (f"{len(counted) - len(missed)} of {len(counted)} variants that must be rejected were rejected"
            + (f" (NOT rejected: {', '.join(missed)})" if missed else "")
            + f"; {len(rows) - len(counted)} more listed, not counted{scope}.\n"
            f"{passing - len(blind) - len(control_only)} of {passing} passing checks reject at least one variant; "
            f"{len(blind)} not discriminating" + (f" ({', '.join(blind)})" if blind else "")
            + f"; {len(control_only)} definition checks rest on their control alone"
            + (f" ({', '.join(control_only)})" if control_only else "") + ".")


def exit_code(baseline: list[CheckResult], rows: list[VariantResult], power: list[CheckPower]) -> int:
    """1 when a variant that must be rejected was not (judged only when the run covers the default groups) or a
    check is not discriminating; otherwise the real suite's exit status."""
    from lptsim.verify.report import exit_code as verify_exit

    missed = _complete(baseline) and any(r.must_reject and not r.rejected for r in rows)
    if missed or any(c.status == "NOT DISCRIMINATING" for c in power):
        return 1
    return verify_exit(baseline)  # the real suite's own: 0, 1 (a FAIL) or 3 (INCONCLUSIVE only)
