"""Falsifiable checks: each runs an experiment, compares it with a prediction made before the run, and gives a
verdict from a confidence interval; each has a control where the claim must not hold, shown failing."""

from __future__ import annotations

from collections.abc import Callable

from lptsim.verify.core import Budget, caching
from lptsim.verify.report import CheckResult, table

# name -> runner(budget) -> results. Later groups (e.g. ctr) register here too.
GROUPS: dict[str, Callable[[Budget], list[CheckResult]]] = {}
DEFAULT_GROUPS = ("quant", "dr", "sr", "optim", "methods")


def _register_defaults() -> None:
    from lptsim.verify import ctr_checks, dr_checks, method_checks, optim_checks, quant_checks, sr_checks

    GROUPS.setdefault("quant", quant_checks.run)
    GROUPS.setdefault("dr", dr_checks.run_group)
    GROUPS.setdefault("sr", sr_checks.run_group)
    GROUPS.setdefault("optim", optim_checks.run_group)
    GROUPS.setdefault("methods", method_checks.run_group)
    GROUPS.setdefault("ctr", ctr_checks.run_group)  # trains CTR models: run it with --group ctr


def budget(full: bool = False, seed: int = 0, data: str | None = None) -> Budget:
    """The default budget (about a minute on 2 cores) or the paper-quality one (``full``); ``data``: the CTR
    checks' prepared folder."""
    return Budget(seeds=60, horizon=3.0, seed=seed, data=data) if full else Budget(seed=seed, data=data)


def run_all(full: bool = False, groups: list[str] | None = None, progress: bool = True, seed: int = 0,
            b: Budget | None = None, data: str | None = None) -> list[CheckResult]:
    """Run the selected check groups (the default groups when None) and return their results in order."""
    from tqdm.auto import tqdm

    _register_defaults()
    names = list(DEFAULT_GROUPS) if groups is None else groups
    unknown = [g for g in names if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown check group(s) {unknown}; available: {sorted(GROUPS)}")
    b = b or budget(full, seed, data)
    results: list[CheckResult] = []
    with caching():  # checks that share a simulation run it once
        for name in tqdm(names, desc="verify", disable=not progress, leave=False):
            results.extend(GROUPS[name](b))
    return results


__all__ = ["Budget", "CheckResult", "DEFAULT_GROUPS", "GROUPS", "budget", "run_all", "table"]
