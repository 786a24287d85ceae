"""Figures, as PNG and PDF: from the verification results (lptsim.figs.results) and from sweeps of their own
(lptsim.figs.sweeps). ``make_all`` regenerates every one."""

from __future__ import annotations

from pathlib import Path

from lptsim.figs.common import METHOD_COLORS
from lptsim.figs.results import figures_from_results
from lptsim.figs.sweeps import (
    fig_adam_freeze,
    fig_loss_curves,
    fig_optimal_step,
    fig_regime_map,
    fig_regimes,
    regime_boundaries,
    regime_map,
)


def make_all(out: Path, full: bool = False, progress: bool = True) -> list[Path]:
    """Run the simulation checks and every sweep; write every figure to ``out``."""
    from lptsim.verify import run_all

    results = run_all(full=full, groups=["dr", "sr", "optim", "methods", "sparse"], progress=progress)
    paths = figures_from_results(results, out)
    seeds = 24 if full else 8
    paths += fig_loss_curves(out, seeds=seeds, iters=10_000 if full else 3000, progress=progress)
    for sweep in (fig_regime_map, fig_regimes, fig_adam_freeze, fig_optimal_step):
        paths += sweep(out, seeds=seeds, progress=progress)
    return paths


__all__ = ["METHOD_COLORS", "fig_adam_freeze", "fig_loss_curves", "fig_optimal_step", "fig_regime_map", "fig_regimes",
           "figures_from_results", "make_all", "regime_boundaries", "regime_map"]
