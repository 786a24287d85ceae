"""Falsifiable checks: each runs an experiment, compares it with a prediction and gives a verdict."""

from __future__ import annotations

from collections.abc import Callable

from lptsim.verify.report import CheckResult, table

# name -> runner(full) -> results. Later groups (simulation, theory) register here too.
GROUPS: dict[str, Callable[[bool], list[CheckResult]]] = {}


def _register_defaults() -> None:
    from lptsim.verify import quant_checks, sim_checks

    GROUPS.setdefault("quant", quant_checks.run)
    GROUPS.setdefault("sim", sim_checks.run)


def run_all(full: bool = False, groups: list[str] | None = None, progress: bool = True) -> list[CheckResult]:
    """Run the selected check groups (all by default) and return their results in order."""
    from tqdm.auto import tqdm

    _register_defaults()
    names = list(GROUPS) if groups is None else groups
    unknown = [g for g in names if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown check group(s) {unknown}; available: {sorted(GROUPS)}")
    results: list[CheckResult] = []
    for name in tqdm(names, desc="verify", disable=not progress, leave=False):
        results.extend(GROUPS[name](full))
    return results


__all__ = ["CheckResult", "run_all", "table", "GROUPS"]
