"""Falsifiable checks: each runs an experiment, compares it with a prediction made before the run, and gives a
verdict from a confidence interval; each has a control where the claim must not hold, shown failing."""

from __future__ import annotations

import re
from collections.abc import Callable

from lptsim.verify.core import Budget, caching
from lptsim.verify.report import CheckResult, table

# name -> runner(budget) -> results. Later groups (e.g. ctr) register here too.
GROUPS: dict[str, Callable[[Budget], list[CheckResult]]] = {}
# name -> the group's parts (each a runner of a few checks), optional: with them --power re-runs only the parts a
# broken statement reaches instead of the whole group. A group's parts must give the group's results in order.
PARTS: dict[str, tuple[Callable[[Budget], list[CheckResult]], ...]] = {}
DEFAULT_GROUPS = ("quant", "dr", "sr", "optim", "methods")


def _register_defaults() -> None:
    from lptsim.verify import (
        ctr_checks,
        dr_checks,
        method_checks,
        optim_checks,
        quant_checks,
        sparse_checks,
        sr_checks,
    )

    GROUPS.setdefault("quant", quant_checks.run)
    GROUPS.setdefault("dr", dr_checks.run_group)
    GROUPS.setdefault("sr", sr_checks.run_group)
    GROUPS.setdefault("optim", optim_checks.run_group)
    GROUPS.setdefault("methods", method_checks.run_group)
    GROUPS.setdefault("ctr", ctr_checks.run_group)  # trains CTR models: run it with --group ctr
    GROUPS.setdefault("sparse", sparse_checks.run_group)  # sparse tables per frequency bucket: --group sparse
    PARTS.setdefault("sparse", sparse_checks.PARTS)
    for name, module in (("quant", quant_checks), ("dr", dr_checks), ("sr", sr_checks), ("optim", optim_checks),
                         ("methods", method_checks)):
        PARTS.setdefault(name, module.PARTS)


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
            results.extend(run_group(name, b))
    return results


def run_group(name: str, b: Budget, parts: set[int] | None = None,
              on_part: Callable[[int], None] | None = None) -> list[CheckResult]:
    """One group's checks, each tagged with its group and a short id (``group.slug``, unique within the group).

    ``parts``: run only these parts of the group (indices into ``PARTS[name]``); ``on_part(i)`` is called before
    part i runs (``--power`` records which parts call which statements). A group without parts runs whole (part 0).
    """
    _register_defaults()
    if name not in GROUPS:
        raise ValueError(f"unknown check group {name!r}; available: {sorted(GROUPS)}")
    if name in PARTS and (parts is not None or on_part is not None):
        out = []
        for i, part in enumerate(PARTS[name]):
            if parts is None or i in parts:
                if on_part:
                    on_part(i)
                out += part(b)
    else:
        if on_part:
            on_part(0)
        out = GROUPS[name](b)
    taken: set[str] = set()
    for r in out:
        r.group = name
        r.id = r.id or f"{name}.{_slug(r.name)}"
        base, k = r.id, 2
        while r.id in taken:
            r.id, k = f"{base}-{k}", k + 1
        taken.add(r.id)
    return out


_STOP = {"the", "a", "an", "of", "at", "in", "on", "to", "by", "and", "its", "is", "ctr", "than", "for", "with"}


def _slug(name: str, words: int = 3) -> str:
    """A short id from a check's name: its first few significant words ('CTR: DR freezes exactly ...' ->
    'dr-freezes-exactly')."""
    tokens = [t for t in re.findall(r"[a-z0-9]+", name.lower()) if t not in _STOP]
    return "-".join(tokens[:words])[:22] or "check"


def find(results: list[CheckResult], check_id: str) -> CheckResult:
    """The result with this id; ValueError listing the ids when there is none."""
    for r in results:
        if r.id == check_id:
            return r
    raise ValueError(f"no check with id {check_id!r}; ids: {', '.join(r.id for r in results)}")


def group_of(check_id: str) -> str:
    """The group a check id belongs to (its prefix), checked against the known groups."""
    _register_defaults()
    group = check_id.split(".", 1)[0]
    if group not in GROUPS:
        raise ValueError(f"check id {check_id!r} names no group; groups: {sorted(GROUPS)} (ids look like 'dr.escape')")
    return group


__all__ = ["Budget", "CheckResult", "DEFAULT_GROUPS", "GROUPS", "PARTS", "budget", "find", "group_of", "run_all",
           "run_group", "table"]
