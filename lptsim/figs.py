"""Figures: drawn from the verification results plus two sweeps (loss curves, regime map).

Every figure is written as PNG and PDF. ``make_all`` regenerates all of them.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from lptsim.sim import problems, simulate  # noqa: E402
from lptsim.verify.report import CheckResult  # noqa: E402

METHOD_COLORS = {"fp": "black", "dr": "tab:red", "sr": "tab:blue", "bc": "tab:green", "alpt": "tab:purple"}


def _style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def _save(fig: plt.Figure, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.tight_layout()
    for p in paths:
        fig.savefig(p, dpi=160)
    plt.close(fig)
    return paths


def _find(results: list[CheckResult], prefix: str) -> list[CheckResult]:
    return [r for r in results if r.name.startswith(prefix) and r.data]


def _slope_panel(ax: plt.Axes, r: CheckResult, xlabel: str, ylabel: str, title: str) -> None:
    x, y = np.asarray(r.data["x"]), np.asarray(r.data["y"])
    ax.loglog(x, y, "o", label="measured")
    if "y_other_alpha" in r.data:
        ax.loglog(x, r.data["y_other_alpha"], "s", mfc="none", label="measured, other alpha")
    if "predicted" in r.data:
        ax.loglog(x, r.data["predicted"], "-", color="gray", label="theory")
    slope, lo, hi = r.measured
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels collide on short log axes
    ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{title}\nslope {slope:.2f} [{lo:.2f}, {hi:.2f}]")
    ax.legend(fontsize=8)


def fig_floors(results: list[CheckResult], out: Path) -> list[Path]:
    """Error floor against Delta (log-log) with the fitted slopes."""
    panels = [("SR noiseless floor vs Delta", "SR, exact gradients (slope 2)"),
              ("SR noisy floor vs Delta", "SR, noisy, alpha sigma = Delta/10 (slope 1)"),
              ("BC: quantized minus FP floor", "BC: deployed minus FP (slope 2)")]
    found = [(r[0], t) for p, t in panels if (r := _find(results, p))]
    if not found:
        return []
    fig, axes = plt.subplots(1, len(found), figsize=(4.2 * len(found), 3.6))
    for ax, (r, title) in zip(np.atleast_1d(axes), found, strict=True):
        _slope_panel(ax, r, "grid step Delta", "excess loss F - F*", title)
    return _save(fig, out, "floor_vs_delta")


def fig_stall(results: list[CheckResult], out: Path) -> list[Path]:
    """DR stall distance against alpha and against Delta."""
    found = _find(results, "DR stall distance")
    if not found:
        return []
    fig, axes = plt.subplots(1, len(found), figsize=(4.2 * len(found), 3.6))
    for ax, r in zip(np.atleast_1d(axes), found, strict=True):
        what = "learning rate alpha" if "alpha" in r.name else "grid step Delta"
        _slope_panel(ax, r, what, "stall distance per coordinate", r.name)
    return _save(fig, out, "dr_stall_distance")


def fig_stationary(results: list[CheckResult], out: Path) -> list[Path]:
    """SR's stationary law on the double well against the exact chain, with SGD's density."""
    found = _find(results, "SR stationary law")
    if not found:
        return []
    fig, axes = plt.subplots(1, len(found), figsize=(5 * len(found), 3.6), sharey=True)
    for ax, r in zip(np.atleast_1d(axes), found, strict=True):
        grid, delta = np.asarray(r.data["grid"]), float(np.diff(r.data["grid"][:2])[0])
        ax.bar(grid, np.asarray(r.data["exact"]) / delta, width=delta * 0.9, alpha=0.35, label="SR exact chain")
        ax.plot(grid, np.asarray(r.data["simulated"]) / delta, "o", ms=3, label="SR simulated")
        edges = np.asarray(r.data["sgd_edges"])
        ax.plot(0.5 * (edges[1:] + edges[:-1]), r.data["sgd_density"], color="black", lw=1, label="SGD (FP)")
        ax.set(xlim=(-2, 2), xlabel="w", ylabel="density", title=f"alpha = {r.data['alpha']:g} (TV {r.measured:.3f})")
        ax.legend(fontsize=8)
    return _save(fig, out, "stationary_double_well")


def fig_bounds(results: list[CheckResult], out: Path) -> list[Path]:
    """Each SR bound against the measured curve."""
    found = _find(results, "SR strongly convex bound") + _find(results, "SR convex bound") + _find(
        results, "SR nonconvex bound")
    if not found:
        return []
    cols = min(3, len(found))
    rows = -(-len(found) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, r in zip(axes.ravel(), found, strict=False):
        ax.loglog(r.data["x"], r.data["y"], label="measured")
        ax.loglog(r.data["x"], r.data["bound"], "--", color="gray", label="bound")
        ax.set(xlabel="iteration T", title=r.name.replace("SR ", ""), ylabel="excess / min E||grad||^2")
        ax.legend(fontsize=8)
    for ax in axes.ravel()[len(found):]:
        ax.axis("off")
    return _save(fig, out, "bounds_vs_measured")


def fig_rates(results: list[CheckResult], out: Path) -> list[Path]:
    """Rates before the floor: FP under both schedules, SR against FP."""
    found = _find(results, "FP rate") + _find(results, "SR tracks FP")
    if not found:
        return []
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for r in found:
        if "fp" in r.data:
            ax.loglog(r.data["x"], r.data["sr"], label="SR, inv_sqrt")
            ax.axhline(r.data["floor"], color="gray", ls=":", label="SR floor (theory)")
        else:
            ax.loglog(r.data["x"], r.data["y"], "--", label=f"{r.name} (slope {r.measured[0]:.2f})")
    ax.set(xlabel="iteration t", ylabel="excess F(w_t) - F*", title="Rates before the floor")
    ax.legend(fontsize=7)
    return _save(fig, out, "rates")


def fig_loss_curves(out: Path, seeds: int = 8, iters: int = 3000, progress: bool = True) -> list[Path]:
    """Loss against iteration for FP/DR/SR/BC/ALPT at 2, 4 and 8 bits, convex and nonconvex."""
    cases = [("quadratic (convex)", problems.quadratic(d=30, mu=1.0, L=4.0, noise=0.5, seed=0), 0.05),
             ("matrix factorisation (nonconvex)", problems.matrix_factorization(seed=0), 0.5)]
    fig, axes = plt.subplots(len(cases), 3, figsize=(12, 6.5), sharex=True)
    bar = tqdm(total=len(cases) * 3 * 5, desc="loss curves", disable=not progress, leave=False)
    for row, (label, prob, lr) in enumerate(cases):
        span = float(np.max(np.abs(prob.w_star)))
        for col, bits in enumerate((2, 4, 8)):
            step = span / (2 ** (bits - 1) - 1)
            ax = axes[row, col]
            for method in ("fp", "dr", "sr", "bc", "alpt"):
                tr = simulate(prob, method, step=step, lr=lr, iters=iters, seeds=seeds, bits=bits,
                              **({"step_lr": 0.01} if method == "alpt" else {}))
                y = tr.mean("excess_quantized") if method == "bc" else tr.mean()
                ax.loglog(tr.iters, np.maximum(y, 1e-12), color=METHOD_COLORS[method], label=method)
                bar.update()
            ax.set(title=f"{label}, {bits} bits", xlabel="iteration", ylabel="F - F*")
    bar.close()
    axes[0, 0].legend(fontsize=8)
    return _save(fig, out, "loss_curves")


def regime_map(deltas: np.ndarray, ratios: np.ndarray, seeds: int = 8, d: int = 20,
               progress: bool = True) -> np.ndarray:
    """DR / SR final excess on a noisy quadratic for each (Delta, alpha sigma / Delta)."""
    sigma = 1.0
    prob = problems.quadratic(d=d, mu=1.0, L=1.0, noise=sigma, seed=1)
    grid = np.empty((deltas.size, ratios.size))
    bar = tqdm(total=grid.size, desc="regime map", disable=not progress, leave=False)
    for i, dl in enumerate(deltas):
        for j, r in enumerate(ratios):
            alpha = r * dl / sigma
            T = int(min(20_000, 8 / alpha))  # noqa: N806
            rec = np.unique(np.linspace(3 * T // 4, T, 50).astype(int))
            kw = dict(step=dl, lr=alpha, iters=T, seeds=seeds, record_at=rec)
            dr = simulate(prob, "dr", **kw).excess.mean()
            sr = simulate(prob, "sr", **kw).excess.mean()
            grid[i, j] = dr / sr
            bar.update()
    bar.close()
    return grid


def fig_regime_map(out: Path, seeds: int = 8, progress: bool = True) -> list[Path]:
    """Heatmap of DR/SR final error over alpha sigma / Delta and Delta."""
    deltas = np.geomspace(0.005, 0.1, 5)
    ratios = np.geomspace(0.05, 5, 7)
    grid = regime_map(deltas, ratios, seeds=seeds, progress=progress)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    sns.heatmap(np.log10(grid), ax=ax, cmap="RdBu_r", center=0, annot=np.round(grid, 1), fmt="g",
                xticklabels=[f"{r:.2g}" for r in ratios], yticklabels=[f"{d:.3g}" for d in deltas],
                cbar_kws={"label": "log10(DR / SR final excess)"})
    ax.set(xlabel="alpha sigma / Delta (update noise against the grid)", ylabel="grid step Delta",
           title="DR / SR final error: red, SR wins; white, a tie; blue, DR wins")
    return _save(fig, out, "regime_map")


def figures_from_results(results: list[CheckResult], out: Path) -> list[Path]:
    """The figures that the verification results alone determine."""
    _style()
    paths: list[Path] = []
    for fn in (fig_floors, fig_stall, fig_stationary, fig_bounds, fig_rates):
        paths += fn(results, out)
    return paths


def make_all(out: Path, full: bool = False, progress: bool = True) -> list[Path]:
    """Run the simulation checks and both sweeps; write every figure to ``out``."""
    from lptsim.verify import run_all

    results = run_all(full=full, groups=["sim"], progress=progress)
    paths = figures_from_results(results, out)
    seeds = 24 if full else 8
    paths += fig_loss_curves(out, seeds=seeds, iters=10_000 if full else 3000, progress=progress)
    paths += fig_regime_map(out, seeds=seeds, progress=progress)
    return paths
