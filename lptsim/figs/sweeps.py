"""Figures that run their own sweeps: loss curves, the regime map with its predicted boundary, DR against SR
across regimes with every bound, DR under adaptive optimizers, and the best fixed step."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from tqdm.auto import tqdm

from lptsim.figs.common import METHOD_COLORS, save
from lptsim.sim import problems, simulate


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
    return save(fig, out, "loss_curves")


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
    """Heatmap of DR/SR final error over alpha sigma / Delta and Delta, with the predicted boundaries drawn in."""
    deltas = np.geomspace(0.005, 0.1, 5)
    ratios = np.geomspace(0.05, 5, 7)
    grid = regime_map(deltas, ratios, seeds=seeds, progress=progress)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    sns.heatmap(np.log10(grid), ax=ax, cmap="RdBu_r", center=0, annot=np.round(grid, 1), fmt="g",
                xticklabels=[f"{r:.2g}" for r in ratios], yticklabels=[f"{d:.3g}" for d in deltas],
                cbar_kws={"label": "log10(DR / SR final excess)"})
    fine = np.geomspace(ratios[0], ratios[-1], 40)
    lines: dict[str, list[tuple[float, float]]] = {"proof": [], "moves": []}
    for row, delta in enumerate(deltas):
        for key, x in zip(lines, regime_boundaries(delta, fine), strict=True):
            if np.isfinite(x):  # cell centres sit at index + 0.5 on a log scale of the ratio
                lines[key].append((np.interp(np.log(x), np.log(ratios), np.arange(ratios.size) + 0.5), row + 0.5))
    for key, style_, label in (("proof", "-", "predicted: SR provably better left of this line (2.6, 3.4)"),
                               ("moves", "--", "predicted: DR leaves its start right of this line (2.5)")):
        if lines[key]:
            xs, ys = zip(*lines[key], strict=True)
            ax.plot(xs, ys, style_, color="black", lw=1.5, label=label)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.18))
    ax.set(xlabel="alpha sigma / Delta (update noise against the grid)", ylabel="grid step Delta",
           title="DR / SR final error: red, SR wins; white, a tie; blue, DR wins")
    return save(fig, out, "regime_map")


def _regime_setting(sigma: float = 1.0, d: int = 20) -> problems.Quadratic:
    return problems.quadratic(d=d, mu=1.0, L=1.0, noise=sigma, seed=1)


def _horizon(alpha: float) -> int:
    return int(min(20_000, 8 / alpha))


def regime_boundaries(delta: float, ratios: np.ndarray, sigma: float = 1.0, d: int = 20) -> tuple[float, float]:
    """Predicted boundaries in alpha sigma / Delta on the regime map's problem (start 0, horizon min(20000, 8/alpha)):
    left of the first SR provably ends below DR (DR's lower bound over SR's upper bound > 1); right of the second
    DR is expected to leave its start at least once."""
    from lptsim import theory

    prob = _regime_setting(sigma, d)
    proof, moves = [], []
    for r in ratios:
        alpha = r * delta / sigma
        T = _horizon(alpha)  # noqa: N806
        proof.append(theory.provable_advantage(prob.w0, prob.w_star, delta, alpha, 1.0, sigma, T))
        moves.append(theory.expected_dr_escapes(prob.w0, prob.w_star, delta, alpha, 1.0, sigma, T))
    return theory.crossing(ratios, np.array(proof)), theory.crossing(ratios, np.array(moves))


def fig_regimes(out: Path, seeds: int = 8, progress: bool = True, delta: float = 0.05) -> list[Path]:
    """DR and SR across alpha sigma / Delta at one Delta, with every bound and prediction and both predicted
    boundaries: regime A (SR provably wins) on the left, regime B (noise dithers DR) on the right."""
    from lptsim import theory

    sigma, d = 1.0, 20
    prob = _regime_setting(sigma, d)
    ratios = np.geomspace(0.03, 3, 11)
    rows = {k: [] for k in ("dr", "sr", "sr_mf", "sr_up", "dr_low", "dr_up", "dr_dither", "sr_dither")}
    for r in tqdm(ratios, desc="regimes", disable=not progress, leave=False):
        alpha = r * delta / sigma
        T = _horizon(alpha)  # noqa: N806
        rec = np.unique(np.linspace(3 * T // 4, T, 50).astype(int))
        kw = dict(step=delta, lr=alpha, iters=T, seeds=seeds, record_at=rec, seed=2)
        rows["dr"].append(simulate(prob, "dr", **kw).excess.mean())
        rows["sr"].append(simulate(prob, "sr", **kw).excess.mean())
        rows["sr_mf"].append(np.mean(theory.sr_meanfield_excess(prob.w0, prob.w_star, delta, alpha, 1.0, sigma, T=T,
                                                                 record_at=rec)))
        rows["sr_up"].append(theory.sr_excess_upper_bound(prob.w0, prob.w_star, delta, alpha, 1.0, sigma, T=T)[0])
        rows["dr_low"].append(theory.dr_noisy_excess_lower_bound(prob.w0, prob.w_star, delta, alpha, 1.0, sigma, T))
        rows["dr_up"].append(theory.dr_excess_upper_bound(prob.w0, prob.w_star, delta, alpha, 1.0, sigma, T=T)[0])
        rows["dr_dither"].append(theory.dr_dither_excess(d, delta, alpha, 1.0, sigma))
        rows["sr_dither"].append(theory.sr_dither_excess(d, delta, alpha, 1.0, sigma))
    v = {k: np.array(x) for k, x in rows.items()}
    proof, moves = regime_boundaries(delta, ratios, sigma, d)
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    ax.loglog(ratios, v["dr"], "o-", color=METHOD_COLORS["dr"], label="DR measured")
    ax.loglog(ratios, v["sr"], "o-", color=METHOD_COLORS["sr"], label="SR measured")
    ax.loglog(ratios, v["sr_mf"], "--", color=METHOD_COLORS["sr"], label="SR mean field (3.3)")
    ax.loglog(ratios, v["sr_up"], ":", color=METHOD_COLORS["sr"], label="SR upper bound (3.4)")
    low = np.where(v["dr_low"] > 0, v["dr_low"], np.nan)
    ax.loglog(ratios, low, "v:", color=METHOD_COLORS["dr"], ms=4, label="DR lower bound (2.6)")
    ax.loglog(ratios, v["dr_up"], "^:", color=METHOD_COLORS["dr"], ms=4, label="DR upper bound (2.4)")
    b = ratios >= 1
    ax.loglog(ratios[b], v["dr_dither"][b], "--", color=METHOD_COLORS["dr"], label="DR dither (2.7)")
    top = 20 * max(v["dr"].max(), v["sr"].max())
    ax.set_ylim(0.3 * min(v["dr"].min(), v["sr"].min()), top)
    if np.isfinite(proof):
        ax.axvspan(ratios[0], proof, color=METHOD_COLORS["sr"], alpha=0.08)
        ax.text(np.sqrt(ratios[0] * proof), top / 2, "SR provably\nbetter (A)", fontsize=7, ha="center", va="top")
    if np.isfinite(moves):
        ax.axvline(moves, color="gray", lw=1, ls="--")
        ax.text(moves * 1.1, top / 2, "right of the dashed line:\nDR expected to leave its start", fontsize=7,
                va="top")
    ax.set(xlabel="alpha sigma / Delta", ylabel="final F - F*",
           title=f"DR against SR, Delta = {delta}: regime A (left) and B (right)")
    ax.legend(fontsize=6, ncol=2, loc="lower left")
    return save(fig, out, "regimes")


def fig_adam_freeze(out: Path, seeds: int = 8, progress: bool = True) -> list[Path]:
    """Adam + DR: the fraction of coordinates that never move against alpha / Delta; exact gradients freeze
    exactly below alpha = Delta/2, noisy ones at least below Delta/(2 c_T)."""
    from lptsim import theory

    delta, d, T = 0.01, 50, 300  # noqa: N806
    factors = np.linspace(0.05, 1.2, 24)
    exact = problems.quadratic(d=d, mu=1.0, L=1.0, noise=0.0, seed=3)
    noisy = problems.quadratic(d=d, mu=1.0, L=1.0, noise=1.0, seed=3)
    curves = {"exact gradients": [], "noise 1": []}
    for f in tqdm(factors, desc="adam", disable=not progress, leave=False):
        for label, prob in (("exact gradients", exact), ("noise 1", noisy)):
            tr = simulate(prob, "dr", step=delta, lr=f * delta, iters=T, seeds=seeds if prob.noise else 1,
                          exact_grad=prob.noise == 0, record_at=[T], optimizer="adam", seed=4)
            curves[label].append(np.mean(tr.final_weights == 0.0))
    c_max = float(np.max(theory.adam_step_bound(np.arange(1, T + 1))))
    fig, ax = plt.subplots(figsize=(5.4, 3.6))
    for label, y in curves.items():
        ax.plot(factors, y, "o-", ms=3, label=f"DR + Adam, {label}")
    ax.axvline(0.5, color="gray", ls="--", label="alpha = Delta/2 (8.1)")
    ax.axvline(1 / (2 * c_max), color="gray", ls=":", label=f"alpha = Delta/(2 c_T), c_T = {c_max:.1f} (8.2)")
    ax.set(xlabel="alpha / Delta", ylabel="fraction never moved", title="Adam freezes DR when alpha < Delta/2")
    ax.legend(fontsize=7)
    return save(fig, out, "adam_freeze")


def fig_optimal_step(out: Path, seeds: int = 8, progress: bool = True) -> list[Path]:
    """The stationary excess of 4-bit SR-LPT against its step (exact chains and simulation), Delta*, and where
    ALPT's learned step settles (predicted and measured, from 10x too large and 10x too small)."""
    from lptsim import theory

    mu, sigma, alpha, bits, T = 1.0, 0.1, 0.1, 4, 6000  # noqa: N806
    prob = problems.quadratic(d=30, mu=mu, L=mu, noise=sigma, seed=12)
    best = theory.optimal_step(prob.w_star, bits, alpha, mu, sigma)
    fixed = theory.alpt_fixed_step(prob.w_star, bits, alpha, mu, sigma)
    fine = best * np.geomspace(0.5, 2.5, 50)
    exact = [theory.sr_clipped_stationary_excess(prob.w_star, s, bits, alpha, mu, sigma) for s in fine]
    points = best * np.geomspace(0.5, 2.5, 8)
    rec = np.unique(np.linspace(T // 2, T, 50).astype(int))
    measured = [simulate(prob, "sr", step=s, lr=alpha, iters=T, seeds=seeds, bits=bits, record_at=rec,
                         seed=5).excess.mean()
                for s in tqdm(points, desc="optimal step", disable=not progress, leave=False)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].loglog(fine, exact, color="gray", label="exact chains (7.1)")
    axes[0].loglog(points, measured, "o", color=METHOD_COLORS["sr"], label="SR simulated")
    axes[0].axvline(best, color="black", ls="--", label=f"Delta* = {best:.3g} (7.2)")
    axes[0].axvline(fixed, color=METHOD_COLORS["alpt"], ls=":", label=f"ALPT's fixed point = {fixed:.3g} (7.3)")
    axes[0].set(xlabel="step Delta", ylabel="stationary F - F*", title="4-bit SR-LPT: clipping against rounding")
    axes[0].legend(fontsize=7)
    rec2 = np.unique(np.geomspace(1, T, 60).astype(int))
    for factor, ls in ((10.0, "-"), (0.1, "-.")):
        tr = simulate(prob, "alpt", step=best * factor, step_lr=0.02, lr=alpha, iters=T, seeds=seeds, bits=bits,
                      record_at=rec2, seed=6)
        axes[1].loglog(rec2, tr.step.mean(axis=0), ls, color=METHOD_COLORS["alpt"],
                       label=f"ALPT from {factor:g} Delta*")
    axes[1].axhline(best, color="black", ls="--", label="Delta*")
    axes[1].axhline(fixed, color=METHOD_COLORS["alpt"], ls=":", label="ALPT's predicted fixed point")
    axes[1].set(xlabel="iteration", ylabel="learned step", title="ALPT settles at its fixed point, not at Delta*")
    axes[1].legend(fontsize=7)
    return save(fig, out, "optimal_step")
