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


def _grid(n: int, width: float = 4.4, height: float = 3.5) -> tuple[plt.Figure, np.ndarray]:
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes.ravel()


def _loglog_points(ax: plt.Axes, x: object, y: object, theory: object, label: str, theory_label: str) -> None:
    ax.loglog(x, y, "o", label=label)
    ax.loglog(x, theory, "-", color="gray", label=theory_label)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels collide on short log axes


def fig_stall(results: list[CheckResult], out: Path) -> list[Path]:
    """Where DR stops: the largest stopped |e| against alpha and against Delta, with r = Delta/(2 alpha mu)."""
    found = _find(results, "DR stops at the predicted grid point")
    if not found:
        return []
    d = found[0].data
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    _loglog_points(axes[0], d["x"], d["y"], d["theory_curve"], "measured", "r = Delta/(2 alpha mu)")
    axes[0].set(xlabel="learning rate alpha (Delta = 0.01)", ylabel="largest stopped |w - w*|",
                title="DR stops just inside r (slope -1)")
    _loglog_points(axes[1], d["x_delta"], d["y_delta"], d["theory_curve_delta"], "measured", "r")
    axes[1].set(xlabel="grid step Delta (alpha = 0.02)", title="... and r grows with Delta (slope 1)")
    axes[0].legend(fontsize=8)
    return _save(fig, out, "dr_stall_distance")


def fig_floors(results: list[CheckResult], out: Path) -> list[Path]:
    """SR's error floors against Delta: noiseless (slope 2) and noisy, small updates (slope 1)."""
    panels = [(r, t) for p, t in (("SR noiseless floor: slope", "SR, exact gradients: mu/2 sum Delta^2 p(1-p)"),
                                  ("SR noisy floor: slope", "SR, alpha sigma << Delta: d Delta E|g|/4"))
              for r in _find(results, p)]
    if not panels:
        return []
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6))
    for ax, (r, title) in zip(np.atleast_1d(axes), panels, strict=True):
        _loglog_points(ax, r.data["x"], r.data["y"], r.data["theory_curve"], "measured", "theory")
        if "y_other_alpha" in r.data:
            ax.loglog(r.data["x"], r.data["y_other_alpha"], "s", mfc="none", label="measured, alpha / 2")
        ax.set(xlabel="grid step Delta", ylabel="stationary F - F*",
               title=f"{title}\nslope {r.measured:.2f} [{r.ci[0]:.2f}, {r.ci[1]:.2f}]")
        ax.legend(fontsize=8)
    return _save(fig, out, "floor_vs_delta")


def fig_stationary(results: list[CheckResult], out: Path) -> list[Path]:
    """SR's stationary law on the double well against its exact chain, and SGD's against its own."""
    found = _find(results, "SR stationary E(|w|-1)^2")
    if not found:
        return []
    laws = found[0].data["laws"]
    fig, axes = plt.subplots(1, len(laws), figsize=(5 * len(laws), 3.6), sharey=True)
    for ax, law in zip(np.atleast_1d(axes), laws, strict=True):
        grid = np.asarray(law["grid"])
        delta = float(grid[1] - grid[0])
        ax.bar(grid, np.asarray(law["exact"]) / delta, width=delta * 0.9, alpha=0.35, label="SR, exact chain")
        ax.plot(grid, np.asarray(law["simulated"]) / delta, "o", ms=3, label="SR, simulated")
        edges = np.asarray(law["sgd_edges"])
        ax.plot(0.5 * (edges[1:] + edges[:-1]), law["sgd_density"], color="black", lw=1, label="SGD, simulated")
        ax.plot(law["sgd_x"], law["sgd_exact"], color="tab:orange", lw=1, ls="--", label="SGD, exact chain")
        ax.set(xlim=(-2, 2), xlabel="w", ylabel="density", title=f"alpha = {law['alpha']:g}")
        ax.legend(fontsize=7)
    return _save(fig, out, "stationary_double_well")


def fig_bounds(results: list[CheckResult], out: Path) -> list[Path]:
    """Each Li et al. bound against SR's measured curve and DR's (the bound cannot tell them apart)."""
    names = ("SR strongly convex bound", "SR convex bound", "SR nonconvex bound")
    found = [r for p in names for r in _find(results, p)]
    if not found:
        return []
    fig, axes = _grid(len(found))
    for ax, r in zip(axes, found, strict=False):
        ax.loglog(r.data["x"], r.data["y"], label="SR measured")
        ax.loglog(r.data["x"], r.data["dr"], color=METHOD_COLORS["dr"], alpha=0.7, label="DR measured")
        ax.loglog(r.data["x"], r.data["bound"], "--", color="gray", label="bound")
        ax.set(xlabel="iteration T", title=f"{r.name.replace('SR ', '')}\nslack {r.slack:.3g}x",
               ylabel="excess / min E||grad||^2")
        ax.legend(fontsize=7)
    return _save(fig, out, "bounds_vs_measured")


def fig_decaying(results: list[CheckResult], out: Path) -> list[Path]:
    """Decaying alpha: SR follows its mean-field curve to the floor, SGD its exact curve to zero, DR stalls."""
    found = _find(results, "Decaying alpha: SR / mean-field")
    if not found:
        return []
    d = found[0].data
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    ax.loglog(d["x"], d["y"], color=METHOD_COLORS["sr"], label="SR measured")
    ax.loglog(d["x"], d["theory_curve"], "--", color=METHOD_COLORS["sr"], label="SR mean-field")
    ax.loglog(d["x"], d["fp"], color=METHOD_COLORS["fp"], label="SGD measured")
    ax.loglog(d["x"], d["sgd_curve"], "--", color="gray", label="SGD exact")
    ax.loglog(d["x"], d["dr"], color=METHOD_COLORS["dr"], label="DR measured")
    ax.axhline(d["floor"], color=METHOD_COLORS["sr"], ls=":", label="d Delta E|g|/4")
    ax.set(xlabel="iteration t", ylabel="F(w_t) - F*", title="alpha_t = 0.5/sqrt(t)")
    ax.legend(fontsize=7)
    return _save(fig, out, "decaying_alpha")


def fig_averaging(results: list[CheckResult], out: Path) -> list[Path]:
    """Averaged SR iterates lose the rounding floor; the last iterate keeps it."""
    found = _find(results, "Averaged SR iterate")
    if not found:
        return []
    d = found[0].data
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.loglog(d["x"], d["y"], "o", color=METHOD_COLORS["sr"], label="averaged SR iterate")
    ax.loglog(d["x"], d["theory_curve"], "--", color="gray", label="prediction (falls like 1/T)")
    ax.loglog(d["x"], d["last"], "s", mfc="none", color=METHOD_COLORS["sr"], label="last SR iterate")
    ax.axhline(d["floor"], color="gray", ls=":", label="d Delta E|g|/4")
    ax.set(xlabel="T", ylabel="F - F*", title="SR with iterate averaging (constant alpha)")
    ax.legend(fontsize=7)
    return _save(fig, out, "averaging")


def fig_dr_bounds(results: list[CheckResult], out: Path) -> list[Path]:
    """DR's upper bounds against measurement, and its one-step escape probability."""
    ups = _find(results, "DR upper bound")
    esc = _find(results, "DR escape probability")
    if not ups and not esc:
        return []
    fig, axes = _grid(len(ups) + len(esc))
    for ax, r in zip(axes, ups, strict=False):
        ax.loglog(r.data["x"], r.data["y"], color=METHOD_COLORS["dr"], label="DR measured")
        ax.loglog(r.data["x"], r.data["bound"], "--", color="gray", label="upper bound")
        ax.set(xlabel="iteration t", ylabel="F - F*", title=f"{r.name}\nslack {r.slack:.3g}x")
        ax.legend(fontsize=7)
    for ax, r in zip(axes[len(ups):], esc, strict=False):
        ax.plot(r.data["x"], r.data["y"], "o", ms=3, label="measured")
        ax.plot(r.data["x"], r.data["theory_curve"], color="gray", label="P(|alpha g| >= Delta/2)")
        ax.set(xlabel="error e of the grid point", ylabel="P(one DR step moves)", title="DR escape probability")
        ax.legend(fontsize=7)
    return _save(fig, out, "dr_bounds")


def fig_rates(results: list[CheckResult], out: Path) -> list[Path]:
    """SGD's last-iterate rates under both schedules."""
    found = _find(results, "SGD rate")
    if not found:
        return []
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for r in found:
        ax.loglog(r.data["x"], r.data["y"], label=f"{r.name.split('(')[0]} (slope {r.measured:.2f})")
    ax.set(xlabel="iteration t", ylabel="F(w_t) - F*", title="Full-precision rates")
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
    for fn in (fig_floors, fig_stall, fig_stationary, fig_bounds, fig_rates, fig_decaying, fig_averaging,
               fig_dr_bounds):
        paths += fn(results, out)
    return paths


def make_all(out: Path, full: bool = False, progress: bool = True) -> list[Path]:
    """Run the simulation checks and both sweeps; write every figure to ``out``."""
    from lptsim.verify import run_all

    results = run_all(full=full, groups=["dr", "sr", "methods"], progress=progress)
    paths = figures_from_results(results, out)
    seeds = 24 if full else 8
    paths += fig_loss_curves(out, seeds=seeds, iters=10_000 if full else 3000, progress=progress)
    paths += fig_regime_map(out, seeds=seeds, progress=progress)
    return paths
