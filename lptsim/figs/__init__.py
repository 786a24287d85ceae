"""Figures, as PNG and PDF: from the verification results (lptsim.figs.results) and from sweeps of their own
(lptsim.figs.sweeps), in one style (lptsim.figs.common). ``make_all`` regenerates every one, stores what they
are drawn from (figs_data.json) and writes index.md; ``draw_all`` redraws from stored data in seconds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lptsim.figs.common import METHOD_COLORS, Drawn, finish, save, style
from lptsim.figs.index import DATA_FILE, load_data, save_data, write_index
from lptsim.figs.results import FIGURES, draw_from_results, figure_for, figures_from_results
from lptsim.figs.sweeps import (
    SWEEPS,
    fig_adam_freeze,
    fig_loss_curves,
    fig_optimal_step,
    fig_regime_map,
    fig_regimes,
    regime_boundaries,
    regime_map,
)
from lptsim.verify.report import CheckResult

GROUPS = ["dr", "sr", "optim", "methods", "sparse"]


def draw_all(results: list[CheckResult], sweeps: dict[str, Any]) -> list[Drawn]:
    """Every figure the results and the sweep data determine, laid out with its caption (not saved)."""
    style()
    drawn = draw_from_results(results) + [SWEEPS[name][1](data) for name, data in sweeps.items() if name in SWEEPS]
    return [finish(d) for d in drawn]


def write_all(out: Path, results: list[CheckResult], sweeps: dict[str, Any], header: str = "") -> list[Path]:
    """Draw every figure into ``out`` (PNG + PDF) and write index.md; returns the figure files and the index."""
    from lptsim.figs.common import write

    drawn = draw_all(results, sweeps)
    paths = [p for d in drawn for p in write(d, out)]
    return [*paths, write_index(out, drawn, results, header)]


def make_all(out: Path, full: bool = False, progress: bool = True, redraw: bool = False,
             ctr: bool = False) -> list[Path]:
    """Run the simulation checks (and the CTR checks with ``ctr``) and every sweep, store their data in
    ``out/figs_data.json``, and write every figure and index.md to ``out``. With ``redraw``, draw from the
    stored data instead of simulating."""
    from lptsim.verify import run_all

    if redraw:
        results, sweeps, meta = load_data(out / DATA_FILE)
    else:
        start = time.perf_counter()
        seeds = 24 if full else 8
        meta = {"full": full, "seeds": seeds, "groups": GROUPS + (["ctr"] if ctr else [])}
        results = run_all(full=full, groups=meta["groups"], progress=progress)
        sweeps: dict[str, Any] = {}
        save_data(out / DATA_FILE, results, sweeps, meta)  # the checks' data survive a cut sweep
        for name, (sweep, _) in SWEEPS.items():
            kw = {"iters": 10_000 if full else 3000} if name == "loss_curves" else {}
            sweeps[name] = sweep(seeds=seeds, progress=progress, **kw)
            save_data(out / DATA_FILE, results, sweeps, meta)
        meta["seconds"] = round(time.perf_counter() - start)
        save_data(out / DATA_FILE, results, sweeps, meta)
    header = (f"Written by `lptsim figs` ({'full' if meta.get('full') else 'default'} budget: sweeps with "
              f"{meta.get('seeds', '?')} seeds; check groups {', '.join(meta.get('groups', GROUPS))}).")
    return write_all(out, results, sweeps, header)


__all__ = ["DATA_FILE", "FIGURES", "METHOD_COLORS", "SWEEPS", "Drawn", "draw_all", "draw_from_results",
           "fig_adam_freeze", "fig_loss_curves", "fig_optimal_step", "fig_regime_map", "fig_regimes", "figure_for",
           "figures_from_results", "load_data", "make_all", "regime_boundaries", "regime_map", "save", "save_data",
           "write_all"]
