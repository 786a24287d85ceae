"""The one style every figure shares: colours, mathtext symbols, readable log axes, the slack of a bound over
its whole curve, a caption line with the setting, and writing PNG + PDF.

A figure is drawn by a function that returns a ``Drawn`` (the matplotlib figure, its caption, the names of
the checks it shows); ``finish`` lays it out with its caption below the panels and ``write`` saves it.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt  # no backend forced: headless runs get Agg, a notebook keeps its inline one
import matplotlib.ticker
import numpy as np
import seaborn as sns

METHOD_COLORS = {"fp": "black", "dr": "tab:red", "sr": "tab:blue", "bc": "tab:green", "alpt": "tab:purple"}
METHOD_LABELS = {"fp": "FP (SGD)", "dr": "DR", "sr": "SR", "bc": "BC", "alpt": "ALPT"}
LEGEND_SIZE = 7
CAPTION_SIZE = 7.5
DPI = 160

# Mathtext for the symbols every label uses, so that no label writes "alpha sigma / Delta" in words.
ALPHA, DELTA, SIGMA, MU = r"$\alpha$", r"$\Delta$", r"$\sigma$", r"$\mu$"
RATIO = r"$\alpha\sigma/\Delta$"
EXCESS = r"$F(w) - F^*$"


@dataclass
class Drawn:
    """A drawn figure, not yet saved: its file stem, the figure, a caption (what it shows, then the setting)
    and the check names it illustrates (``lptsim.figs.index`` turns these into check ids)."""

    name: str
    fig: plt.Figure
    caption: str
    checks: tuple[str, ...] = ()
    paths: list[Path] = field(default_factory=list)


def style() -> None:
    """The shared rcParams: seaborn's white grid, small legends, mathtext in DejaVu (matches the text)."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({"mathtext.fontset": "dejavusans", "legend.fontsize": LEGEND_SIZE,
                         "legend.framealpha": 0.9, "axes.titlesize": 9.5, "axes.labelsize": 9,
                         "xtick.labelsize": 8, "ytick.labelsize": 8, "savefig.dpi": DPI})


def num(v: float, digits: int = 3) -> str:
    """A number for a label: plain below 1e4 and above 1e-3, else a mathtext power of ten."""
    v = float(v)
    if v == 0 or 1e-3 <= abs(v) < 1e5:
        text = f"{v:.{digits}g}"
        return str(round(v)) if "e" in text else text  # 100 with 2 digits is "1e+02"
    e = math.floor(math.log10(abs(v)))
    m = v / 10**e
    mant = f"{m:.{max(digits - 1, 1)}g}"
    return rf"$10^{{{e}}}$" if mant == "1" else rf"${mant}\times10^{{{e}}}$"


def setting(d: int | None = None, delta: float | str | None = None, sigma: float | str | None = None,
            alpha: float | str | None = None, seeds: int | str | None = None, T: int | None = None,  # noqa: N803
            mu: float | None = None, **more: object) -> str:
    """The caption's setting line: "Setting: d = 20, Δ = 0.05, σ = 1, α = 0.1, T = 3000, 8 seeds" (mathtext);
    a string value is printed as given (e.g. "0.5/√t" for a schedule)."""
    parts = []
    for sym, v in (("d", d), (r"\Delta", delta), (r"\sigma", sigma), (r"\alpha", alpha), (r"\mu", mu), ("T", T)):
        if v is not None:
            parts.append(rf"${sym}$ = {v if isinstance(v, str) else num(v)}")
    parts += [f"{k.replace('_', ' ')} {v}" for k, v in more.items()]
    if seeds is not None:  # a string says why there are none (e.g. "deterministic: exact gradients")
        parts.append(seeds if isinstance(seeds, str) else f"{seeds} seed{'s' if seeds != 1 else ''}")
    return "Setting: " + ", ".join(parts) + "."


def panels(n: int, width: float = 4.4, height: float = 3.5, cols: int = 3) -> tuple[plt.Figure, np.ndarray]:
    """n panels, at most ``cols`` a row; unused axes switched off."""
    cols = min(cols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes.ravel()


def _log_text(v: float, _pos: object = None) -> str:
    return num(v, 2)


def log_ticks(ax: plt.Axes, axis: str = "both", min_ticks: int = 3) -> None:
    """Readable ticks on a log axis: decades (10^k) when the axis spans several of them, else 1-2-5 (or every
    integer multiple) so that at least ``min_ticks`` labelled ticks show; no minor labels (they collide)."""
    for name in ("x", "y") if axis == "both" else (axis,):
        a = ax.xaxis if name == "x" else ax.yaxis
        if a.get_scale() != "log":
            continue
        lo, hi = sorted(ax.get_xlim() if name == "x" else ax.get_ylim())
        for subs in ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0), tuple(float(s) for s in range(1, 10))):
            ticks = [m * 10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                     for m in subs if lo <= m * 10.0**e <= hi]
            if len(ticks) >= min_ticks:
                break
        if len(ticks) > 7 and subs == (1.0,):  # many decades: every other one
            ticks = ticks[:: math.ceil(len(ticks) / 6)]
        a.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        a.set_major_formatter(matplotlib.ticker.FuncFormatter(_log_text))
        a.set_minor_locator(matplotlib.ticker.NullLocator())  # the style shows no minor ticks; they cost time


def slack_panel(ax: plt.Axes, x: Sequence[float], bound: Sequence[float], measured: Sequence[float],
                color: str, label: str, upper: bool = True) -> float:
    """The slack of a bound over the whole curve, bound / measured (an upper bound) or measured / bound (a
    lower one), on a log axis with 1 (tight) marked; returns its smallest value (the verdict's slack)."""
    b, m = np.asarray(bound, dtype=float), np.asarray(measured, dtype=float)
    ok = (b > 0) & (m > 0)
    ratio = np.where(ok, b / np.where(ok, m, 1) if upper else m / np.where(ok, b, 1), np.nan)
    ax.plot(np.asarray(x)[ok], ratio[ok], color=color, label=label)
    ax.axhline(1.0, color="black", lw=0.8, ls=":", label="_nolegend_")  # 1 = tight: the caption says so
    ax.set_xscale("log")
    ax.set_yscale("log")
    return float(np.nanmin(ratio)) if ok.any() else float("nan")


def with_slack(fig: plt.Figure, spec: object) -> tuple[plt.Axes, plt.Axes]:
    """A curve panel over its slack panel (sharing t) in one cell of a grid; use with ``layout="constrained"``."""
    inner = spec.subgridspec(2, 1, height_ratios=[2.2, 1], hspace=0.04)
    ax = fig.add_subplot(inner[0])
    low = fig.add_subplot(inner[1], sharex=ax)
    ax.tick_params(labelbottom=False)
    return ax, low


def slack_title(ax: plt.Axes, least: float, end: float) -> None:
    """The slack panel's summary, above it (between the panels, where no data is)."""
    ax.set_title(f"slack: min {least:.3g}x (the verdict's), at the end {end:.3g}x", fontsize=7, loc="right",
                 pad=2)


def finish(drawn: Drawn, width_chars: int | None = None) -> Drawn:
    """Lay the panels out and put the caption below them, wrapped to the figure's width."""
    fig = drawn.fig
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    else:
        fig.canvas.draw()  # a constrained layout is computed at draw time: fix it before the caption goes in
        fig.set_layout_engine("none")
    if drawn.caption:
        chars = width_chars or int(fig.get_figwidth() * 72 / (0.52 * CAPTION_SIZE))
        text = "\n".join(textwrap.fill(p, chars, break_on_hyphens=False) for p in drawn.caption.split("\n"))
        fig.text(0.01, 0.0, text, ha="left", va="top", fontsize=CAPTION_SIZE, color="0.2")
    return drawn


def write(drawn: Drawn, out: Path) -> list[Path]:
    """Write ``name``.png and .pdf into ``out`` (the caption's text also in the PNG's metadata) and close it."""
    out.mkdir(parents=True, exist_ok=True)
    drawn.paths = [out / f"{drawn.name}.png", out / f"{drawn.name}.pdf"]
    for p in drawn.paths:
        meta = {"Description": drawn.caption} if p.suffix == ".png" else {"Subject": drawn.caption}
        drawn.fig.savefig(p, dpi=DPI, bbox_inches="tight", pad_inches=0.08, metadata=meta)
    plt.close(drawn.fig)
    return drawn.paths


def save(drawn: Drawn, out: Path) -> list[Path]:
    """``finish`` then ``write``."""
    return write(finish(drawn), out)
