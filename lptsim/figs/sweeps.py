"""Figures that run their own sweeps: loss curves, the regime map with its predicted boundary, DR against SR
across regimes with every bound, DR under Adam, and the best fixed step.

Each figure is two functions: ``sweep_*`` runs the simulations and returns plain data (lists and numbers, which
``lptsim figs`` stores in figs_data.json so that ``lptsim figs --redraw`` redraws without simulating), and
``draw_*`` turns that data into a ``Drawn``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
from tqdm.auto import tqdm

from lptsim.figs.common import (
    DELTA,
    EXCESS,
    METHOD_COLORS,
    METHOD_LABELS,
    RATIO,
    Drawn,
    log_ticks,
    num,
    save,
    setting,
    style,
)
from lptsim.sim import problems, simulate

Data = dict[str, Any]


def _plain(v: Any) -> Any:
    """numpy values to lists and floats, so that the data is JSON."""
    if isinstance(v, dict):
        return {k: _plain(u) for k, u in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(u) for u in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


# Loss curves ----------------------------------------------------------------------------------------------

def sweep_loss_curves(seeds: int = 8, iters: int = 3000, progress: bool = True) -> Data:
    """Loss against iteration for FP/DR/SR/BC/ALPT at 2, 4 and 8 bits, convex and nonconvex."""
    cases = [("quadratic (convex)", problems.quadratic(d=30, mu=1.0, L=4.0, noise=0.5, seed=0), 0.05, 30),
             ("matrix factorisation (nonconvex)", problems.matrix_factorization(seed=0), 0.5, None)]
    out: Data = {"seeds": seeds, "iters": iters, "cases": []}
    bar = tqdm(total=len(cases) * 3 * 5, desc="loss curves", disable=not progress, leave=False)
    for label, prob, lr, d in cases:
        span = float(np.max(np.abs(prob.w_star)))
        case = {"label": label, "lr": lr, "d": d or int(np.size(prob.w_star)), "panels": []}
        for bits in (2, 4, 8):
            step = span / (2 ** (bits - 1) - 1)
            curves = {}
            for method in ("fp", "dr", "sr", "bc", "alpt"):
                tr = simulate(prob, method, step=step, lr=lr, iters=iters, seeds=seeds, bits=bits,
                              **({"step_lr": 0.01} if method == "alpt" else {}))
                y = tr.mean("excess_quantized") if method == "bc" else tr.mean()
                curves[method] = np.maximum(y, 1e-12)
                bar.update()
            case["panels"].append({"bits": bits, "step": step, "x": tr.iters, "curves": curves})
        out["cases"].append(case)
    bar.close()
    return _plain(out)


def draw_loss_curves(data: Data) -> Drawn:
    cases = data["cases"]
    fig, axes = plt.subplots(len(cases), 3, figsize=(12, 3.3 * len(cases) + 0.4), sharex=True, squeeze=False)
    for row, case in enumerate(cases):
        for col, panel in enumerate(case["panels"]):
            ax = axes[row, col]
            for method, y in panel["curves"].items():
                ax.loglog(panel["x"], y, color=METHOD_COLORS[method], label=METHOD_LABELS[method])
            ax.set(title=f"{case['label']}, {panel['bits']} bits", ylabel=EXCESS if col == 0 else None)
            if row == len(cases) - 1:
                ax.set_xlabel("iteration $t$")
            log_ticks(ax)
    axes[0, 0].legend(loc="lower left", ncol=2)
    parts = [f"{c['label']}: d = {c['d']}, α = {c['lr']}" for c in cases]
    return Drawn("loss_curves", fig, "Excess loss against iteration for full precision and the four low-precision "
                 "methods, with the grid step set so that the bits span the optimum (BC: the loss of its rounded "
                 "weights). " + "; ".join(parts) + f"; {data['iters']} iterations, {data['seeds']} seeds.")


# The regime map -------------------------------------------------------------------------------------------

def _regime_setting(sigma: float = 1.0, d: int = 20) -> problems.Quadratic:
    return problems.quadratic(d=d, mu=1.0, L=1.0, noise=sigma, seed=1)


def _horizon(alpha: float) -> int:
    return int(min(20_000, 8 / alpha))


def regime_map(deltas: np.ndarray, ratios: np.ndarray, seeds: int = 8, d: int = 20,
               progress: bool = True) -> np.ndarray:
    """DR / SR final excess on a noisy quadratic for each (Delta, alpha sigma / Delta)."""
    sigma = 1.0
    prob = _regime_setting(sigma, d)
    grid = np.empty((deltas.size, ratios.size))
    bar = tqdm(total=grid.size, desc="regime map", disable=not progress, leave=False)
    for i, dl in enumerate(deltas):
        for j, r in enumerate(ratios):
            alpha = r * dl / sigma
            T = _horizon(alpha)  # noqa: N806
            rec = np.unique(np.linspace(3 * T // 4, T, 50).astype(int))
            kw = dict(step=dl, lr=alpha, iters=T, seeds=seeds, record_at=rec)
            dr = simulate(prob, "dr", **kw).excess.mean()
            sr = simulate(prob, "sr", **kw).excess.mean()
            grid[i, j] = dr / sr
            bar.update()
    bar.close()
    return grid


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


def sweep_regime_map(seeds: int = 8, progress: bool = True, deltas: np.ndarray | None = None,
                     ratios: np.ndarray | None = None, d: int = 20) -> Data:
    """The DR / SR grid over (Delta, alpha sigma / Delta) and both predicted boundaries in each row."""
    deltas = np.geomspace(0.005, 0.1, 5) if deltas is None else deltas
    ratios = np.geomspace(0.05, 5, 7) if ratios is None else ratios
    grid = regime_map(deltas, ratios, seeds=seeds, d=d, progress=progress)
    fine = np.geomspace(ratios[0], ratios[-1], 40)
    bounds = [regime_boundaries(float(dl), fine, d=d) for dl in deltas]
    return _plain({"deltas": deltas, "ratios": ratios, "grid": grid, "proof": [b[0] for b in bounds],
                   "moves": [b[1] for b in bounds], "seeds": seeds, "d": d, "sigma": 1.0})


def _edge(x: float, ratios: np.ndarray) -> float:
    """The cell edge nearest x on the heatmap's axis (cell j spans [j, j + 1]; edges halfway in log ratio)."""
    logs = np.log(ratios)
    edges = np.concatenate([[logs[0] - (logs[1] - logs[0]) / 2], (logs[1:] + logs[:-1]) / 2,
                            [logs[-1] + (logs[-1] - logs[-2]) / 2]])
    return float(np.argmin(np.abs(edges - np.log(x))))


def draw_regime_map(data: Data) -> Drawn:
    """Heatmap of DR / SR final excess over alpha sigma / Delta and Delta (a log colour scale labelled in ratios),
    with the predicted boundaries drawn along the cell edges, so that they never cross a cell's value."""
    deltas, ratios, grid = (np.asarray(data[k], dtype=float) for k in ("deltas", "ratios", "grid"))
    fig, ax = plt.subplots(figsize=(7.4, 4.6))
    span = float(max(np.max(np.abs(np.log10(grid))), np.log10(2)))
    norm = matplotlib.colors.LogNorm(10**-span, 10**span)
    mesh = ax.pcolormesh(np.arange(ratios.size + 1), np.arange(deltas.size + 1), grid, cmap="RdBu_r", norm=norm,
                         edgecolors="white", linewidth=0.5)
    for i in range(deltas.size):
        for j in range(ratios.size):
            v = grid[i, j]
            dark = abs(np.log10(v)) > 0.6 * span
            ax.text(j + 0.5, i + 0.5, f"{v:.2g}", ha="center", va="center", fontsize=7.5,
                    color="white" if dark else "black")
    bar = fig.colorbar(mesh, ax=ax, pad=0.02)
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if 10**-span <= t <= 10**span]
    bar.set_ticks(ticks, labels=[f"{t:g}" for t in ticks])
    bar.minorticks_off()
    bar.set_label("DR / SR final excess (log scale)")
    # Both boundaries often fall on the same edge: drawn side by side (0.06 cells apart), each stays visible.
    for key, ls, color, shift, label in (
            ("proof", "-", "black", -0.03, "predicted: SR provably better left of this line (2.6, 3.4)"),
            ("moves", "--", "darkorange", 0.03, "predicted: DR leaves its start right of this line (2.5)")):
        xs, ys = [], []
        for row, x in enumerate(data[key]):
            if x is not None and np.isfinite(x):
                e = _edge(float(x), ratios) + shift
                xs += [e, e, np.nan]
                ys += [row, row + 1, np.nan]
        if xs:
            ax.plot(xs, ys, ls, color=color, lw=2.2, label=label, solid_capstyle="butt")
    ax.set_xticks(np.arange(ratios.size) + 0.5, [f"{r:.2g}" for r in ratios])
    ax.set_yticks(np.arange(deltas.size) + 0.5, [f"{d:.2g}" for d in deltas])
    ax.set(xlim=(0, ratios.size), ylim=(0, deltas.size), xlabel=f"{RATIO} (update noise against the grid)",
           ylabel=f"grid step {DELTA}", title="DR / SR final excess: red, SR better; blue, DR better")
    ax.grid(False)
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.16), fontsize=7, frameon=False)
    exact = ", ".join(f"{num(p, 2)} at {DELTA} = {d:.2g}" for d, p in zip(deltas, data["proof"], strict=True)
                      if p is not None and np.isfinite(p))
    return Drawn("regime_map", fig, r"DR's final excess over SR's on a noisy quadratic, for each grid step and "
                 r"$\alpha\sigma/\Delta$ (above 1: SR better). The predicted boundaries are drawn along the cell edge "
                 rf"nearest the predicted crossing (the proven boundary, row by row: {RATIO} = {exact or 'none'}). "
                 + setting(d=data["d"], sigma=data["sigma"], alpha=r"$r\Delta/\sigma$",
                           T=r"min(20000, 8/$\alpha$)", seeds=data["seeds"]))


# DR against SR across the regimes --------------------------------------------------------------------------

def sweep_regimes(seeds: int = 8, progress: bool = True, delta: float = 0.05,
                  ratios: np.ndarray | None = None) -> Data:
    """DR and SR across alpha sigma / Delta at one Delta, with every bound and prediction and both boundaries."""
    from lptsim import theory

    sigma, d = 1.0, 20
    prob = _regime_setting(sigma, d)
    ratios = np.geomspace(0.03, 3, 11) if ratios is None else ratios
    rows: Data = {k: [] for k in ("dr", "sr", "sr_mf", "sr_up", "dr_low", "dr_up", "dr_dither", "sr_dither")}
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
    proof, moves = regime_boundaries(delta, ratios, sigma, d)
    return _plain({**rows, "ratios": ratios, "proof": proof, "moves": moves, "delta": delta, "sigma": sigma, "d": d,
                   "seeds": seeds})


def draw_regimes(data: Data) -> Drawn:
    """Regime A (SR provably wins) on the left, regime B (noise dithers DR) on the right: the region labels sit
    above the plot, and each prediction under its measurement is a wide pale band, so both stay visible."""
    v = {k: np.asarray(data[k], dtype=float) for k in ("ratios", "dr", "sr", "sr_mf", "sr_up", "dr_low", "dr_up",
                                                       "dr_dither", "sr_dither")}
    ratios, proof, moves = v["ratios"], data["proof"], data["moves"]
    fig, ax = plt.subplots(figsize=(7.6, 4.8))
    wide = dict(lw=7, alpha=0.25, solid_capstyle="round")
    b = ratios >= 1
    ax.loglog(ratios[b], v["dr_dither"][b], color=METHOD_COLORS["dr"], label="DR dither prediction (2.7)", **wide)
    ax.loglog(ratios, v["sr_mf"], color=METHOD_COLORS["sr"], label="SR mean field (3.3)", **wide)
    ax.loglog(ratios, v["dr"], "o-", color=METHOD_COLORS["dr"], ms=4, label="DR measured")
    ax.loglog(ratios, v["sr"], "o-", color=METHOD_COLORS["sr"], ms=4, label="SR measured")
    ax.loglog(ratios, v["sr_up"], ":", color=METHOD_COLORS["sr"], label="SR upper bound (3.4)")
    low = np.where(v["dr_low"] > 0, v["dr_low"], np.nan)
    ax.loglog(ratios, low, "v:", color=METHOD_COLORS["dr"], ms=4, label="DR lower bound (2.6)")
    ax.loglog(ratios, v["dr_up"], "^:", color=METHOD_COLORS["dr"], ms=4, label="DR upper bound (2.4)")
    lo = 0.3 * np.nanmin([v["dr"].min(), v["sr"].min(), np.nanmin(v["sr_mf"])])
    ax.set_ylim(lo, 3 * np.nanmax([v["dr_up"].max(), v["dr"].max(), v["sr_up"].max()]))
    ax.set_xlim(ratios[0] / 1.2, ratios[-1] * 1.2)
    top = dict(xycoords=("data", "axes fraction"), fontsize=7, va="bottom")
    if proof is not None and np.isfinite(proof):
        ax.axvspan(ax.get_xlim()[0], proof, color=METHOD_COLORS["sr"], alpha=0.08, label="regime A: SR provably better")
        ax.annotate("A: SR provably\nbetter", (np.sqrt(ratios[0] * proof), 1.01), ha="center", **top)
    if moves is not None and np.isfinite(moves):
        ax.axvline(moves, color="gray", lw=1, ls="--", label="DR expected to leave its start (right)")
        ax.annotate("DR leaves\nits start", (moves, 1.01), ha="center", **top)
    ax.annotate("B: noise dithers DR", (np.sqrt(ratios[-1] * max(1.0, moves or 1.0)), 1.01), ha="center", **top)
    ax.set(xlabel=RATIO, ylabel=f"final {EXCESS}")
    log_ticks(ax)
    ax.legend(fontsize=6.5, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    return Drawn("regimes", fig, r"DR against SR across $\alpha\sigma/\Delta$ at one grid step, each with its "
                 r"bounds and predictions (pale bands: predictions, points: measured). Left of the proven boundary "
                 r"(regime A, started far from $w^*$) DR's lower bound exceeds SR's upper bound; on the right the "
                 r"noise dithers DR's rounding and DR follows its dither formula, slightly below SR. "
                 + setting(d=data["d"], delta=data["delta"], sigma=data["sigma"], alpha=r"$r\Delta/\sigma$",
                           T=r"min(20000, 8/$\alpha$)", seeds=data["seeds"]))


# Adam freezes DR -------------------------------------------------------------------------------------------

def sweep_adam_freeze(seeds: int = 8, progress: bool = True, factors: np.ndarray | None = None) -> Data:
    """Adam + DR: the fraction of coordinates that never move against alpha / Delta; exact gradients freeze
    exactly below alpha = Delta/2, noisy ones at least below Delta/(2 c_T)."""
    from lptsim import theory

    delta, d, T = 0.01, 50, 300  # noqa: N806
    factors = np.linspace(0.05, 1.2, 24) if factors is None else factors
    exact = problems.quadratic(d=d, mu=1.0, L=1.0, noise=0.0, seed=3)
    noisy = problems.quadratic(d=d, mu=1.0, L=1.0, noise=1.0, seed=3)
    curves: Data = {"exact gradients": [], r"noise $\sigma$ = 1": []}
    for f in tqdm(factors, desc="adam", disable=not progress, leave=False):
        for label, prob in zip(curves, (exact, noisy), strict=True):
            tr = simulate(prob, "dr", step=delta, lr=f * delta, iters=T, seeds=seeds if prob.noise else 1,
                          exact_grad=prob.noise == 0, record_at=[T], optimizer="adam", seed=4)
            curves[label].append(np.mean(tr.final_weights == 0.0))
    c_max = float(np.max(theory.adam_step_bound(np.arange(1, T + 1))))
    return _plain({"factors": factors, "curves": curves, "c_max": c_max, "delta": delta, "d": d, "T": T,
                   "seeds": seeds})


def draw_adam_freeze(data: Data) -> Drawn:
    fig, ax = plt.subplots(figsize=(5.8, 3.9))
    for (label, y), marker in zip(data["curves"].items(), ("o", "s"), strict=False):
        ax.plot(data["factors"], y, marker + "-", ms=3, label=f"DR + Adam, {label}")
    c = data["c_max"]
    ax.axvline(0.5, color="gray", ls="--", label=r"$\alpha = \Delta/2$ (8.1)")
    ax.axvline(1 / (2 * c), color="gray", ls=":", label=rf"$\alpha = \Delta/(2c_T)$, $c_T$ = {c:.1f} (8.2)")
    ax.set(xlabel=r"$\alpha/\Delta$", ylabel="fraction never moved", ylim=(-0.05, 1.15),
           title=r"Adam freezes DR when $\alpha < \Delta/2$")
    ax.legend(loc="upper right")
    return Drawn("adam_freeze", fig, r"Adam's step is about $\alpha$ whatever the gradient, so DR + Adam never "
                 r"moves when $\alpha < \Delta/2$ (exact gradients: exactly; with noise: at least below "
                 r"$\Delta/(2c_T)$). " + setting(d=data["d"], delta=data["delta"], sigma="0 and 1", T=data["T"],
                                                  seeds=data["seeds"]))


# The best fixed step and ALPT's ----------------------------------------------------------------------------

def sweep_optimal_step(seeds: int = 8, progress: bool = True, T: int = 6000) -> Data:  # noqa: N803
    """The stationary excess of 4-bit SR-LPT against its step (exact chains and simulation), Delta*, and where
    ALPT's learned step settles (predicted and measured, from 10x too large and 10x too small)."""
    from lptsim import theory

    mu, sigma, alpha, bits = 1.0, 0.1, 0.1, 4
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
    rec2 = np.unique(np.geomspace(1, T, 60).astype(int))
    learned = {}
    for factor in (10.0, 0.1):
        tr = simulate(prob, "alpt", step=best * factor, step_lr=0.02, lr=alpha, iters=T, seeds=seeds, bits=bits,
                      record_at=rec2, seed=6)
        learned[f"{factor:g}"] = tr.step.mean(axis=0)
    return _plain({"fine": fine, "exact": exact, "points": points, "measured": measured, "best": best,
                   "fixed": fixed, "rec": rec2, "learned": learned, "d": 30, "sigma": sigma, "alpha": alpha,
                   "bits": bits, "T": T, "seeds": seeds})


def draw_optimal_step(data: Data) -> Drawn:
    best, fixed = data["best"], data["fixed"]
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.0))
    axes[0].loglog(data["fine"], data["exact"], color="gray", label="exact chains (7.1)")
    axes[0].loglog(data["points"], data["measured"], "o", color=METHOD_COLORS["sr"], label="SR simulated")
    axes[0].axvline(best, color="black", ls="--", label=rf"$\Delta^*$ = {best:.3g} (7.2)")
    axes[0].axvline(fixed, color=METHOD_COLORS["alpt"], ls=":", label=f"ALPT's fixed point = {fixed:.3g} (7.3)")
    axes[0].set(xlabel=rf"step {DELTA}", ylabel=f"stationary {EXCESS}", title="4-bit SR: clipping against rounding")
    log_ticks(axes[0])
    axes[0].legend(loc="upper center")
    for (factor, y), ls in zip(data["learned"].items(), ("-", "-."), strict=True):
        axes[1].loglog(data["rec"], y, ls, color=METHOD_COLORS["alpt"], label=rf"ALPT from {factor} $\Delta^*$")
    axes[1].axhline(best, color="black", ls="--", label=r"$\Delta^*$")
    axes[1].axhline(fixed, color=METHOD_COLORS["alpt"], ls=":", label="ALPT's predicted fixed point")
    axes[1].set(xlabel="iteration $t$", ylabel="learned step",
                title=r"ALPT settles at its fixed point, not at $\Delta^*$")
    log_ticks(axes[1])
    axes[1].legend(loc="upper right")
    return Drawn("optimal_step", fig, r"Left: 4-bit SR's stationary excess against its step: too small a step "
                 r"clips the weights, too large a one rounds coarsely; $\Delta^*$ balances them. Right: ALPT's "
                 r"learned step from 10x too large and 10x too small settles at its own fixed point, above $\Delta^*$. "
                 + setting(d=data["d"], sigma=data["sigma"], alpha=data["alpha"], T=data["T"], seeds=data["seeds"],
                           bits=data["bits"]))


# name -> (sweep, draw): `lptsim figs` runs each sweep (seeds and progress as keywords) and draws it.
SWEEPS: dict[str, tuple[Callable[..., Data], Callable[[Data], Drawn]]] = {
    "loss_curves": (sweep_loss_curves, draw_loss_curves),
    "regime_map": (sweep_regime_map, draw_regime_map),
    "regimes": (sweep_regimes, draw_regimes),
    "adam_freeze": (sweep_adam_freeze, draw_adam_freeze),
    "optimal_step": (sweep_optimal_step, draw_optimal_step),
}


def _one(name: str) -> Callable[..., list[Path]]:
    sweep, draw = SWEEPS[name]

    def run(out: Path, seeds: int = 8, progress: bool = True, **kw: Any) -> list[Path]:
        style()
        return save(draw(sweep(seeds=seeds, progress=progress, **kw)), out)

    run.__name__ = f"fig_{name}"
    run.__doc__ = f"Run the {name} sweep and write its figure (PNG + PDF) into ``out``."
    return run


fig_loss_curves = _one("loss_curves")
fig_regime_map = _one("regime_map")
fig_regimes = _one("regimes")
fig_adam_freeze = _one("adam_freeze")
fig_optimal_step = _one("optimal_step")
