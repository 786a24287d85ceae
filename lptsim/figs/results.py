"""Figures drawn from the verification results alone (each check keeps the series behind its verdict, and the
setting it ran in under ``data["setting"]``, which the caption prints)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lptsim.figs.common import (
    ALPHA,
    DELTA,
    EXCESS,
    METHOD_COLORS,
    Drawn,
    log_ticks,
    num,
    panels,
    save,
    setting,
    slack_panel,
    slack_title,
    style,
    with_slack,
)
from lptsim.verify.report import CheckResult

# Which checks each figure shows, by the start of their ids: `lptsim verify --explain` names the figure and
# `lptsim figs` lists the ids in its index. The sweep figures (lptsim.figs.sweeps) run their own simulations of
# the same statements.
FIGURES: dict[str, tuple[str, ...]] = {
    "dr_stall_distance": ("dr.stop-", "dr.stall-radius"),
    "floor_vs_delta": ("sr.floor-",),
    "stationary_double_well": ("sr.dw-",),
    "bounds_vs_measured": ("sr.li-",),
    "rates": ("sr.rate-",),
    "decaying_alpha": ("sr.decay-",),
    "averaging": ("sr.avg",),
    "dr_bounds": ("dr.upper-", "dr.escape"),
    "stalls": ("optim.sgd-stall-time", "optim.adagrad-", "optim.adam-attained"),
    "ctr_checks": ("ctr.dr-freezes", "ctr.dr-first-step", "ctr.lpt-sr-train", "ctr.regime-"),
    "ctr_sparse": ("ctr.sparse-",),
    "regimes": ("dr.regA-proven", "dr.regA-dr-stuck", "dr.regA-sr-meanfield", "dr.regB-", "dr.dither-"),
    "regime_map": ("dr.regA-", "dr.regB-ratio"),
    "adam_freeze": ("optim.adam-frozen", "optim.adam-dr-worst"),
    "optimal_step": ("methods.sr4-chain", "methods.delta-star", "methods.alpt-"),
    "loss_curves": (),
    "sparse_frequency": ("sparse.",),
}


def figure_for(result: CheckResult) -> str | None:
    """The figure (``lptsim verify --out`` or ``lptsim figs``) that shows this check, or None."""
    for stem, prefixes in FIGURES.items():
        if prefixes and result.id.startswith(prefixes):
            where = "lptsim figs" if stem in SWEEP_STEMS else "lptsim verify --out DIR and lptsim figs"
            return f"{stem}.png (written by {where})"
    return None


SWEEP_STEMS = ("regimes", "regime_map", "adam_freeze", "optimal_step", "loss_curves")


def _find(results: list[CheckResult], prefix: str) -> list[CheckResult]:
    return [r for r in results if r.id.startswith(prefix) and r.data]


def _setting(r: CheckResult) -> str:
    return setting(**r.data.get("setting", {}))


def _loglog_points(ax: plt.Axes, x: object, y: object, theory: object, label: str, theory_label: str) -> None:
    ax.loglog(x, y, "o", label=label, zorder=3)
    ax.loglog(x, theory, "-", color="gray", label=theory_label)


def fig_stall(results: list[CheckResult]) -> Drawn | None:
    """Where DR stops: the largest stopped |e| against alpha and against Delta, with r = Delta/(2 alpha mu)."""
    found = _find(results, "dr.stop-point")
    if not found:
        return None
    d = found[0].data
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    _loglog_points(axes[0], d["x"], d["y"], d["theory_curve"], "measured", r"$r = \Delta/(2\alpha\mu)$")
    axes[0].set(xlabel=rf"learning rate {ALPHA} ($\Delta$ = 0.01)", ylabel=r"largest stopped $|w - w^*|$",
                title=r"DR stops just inside $r$ (slope $-1$ in $\alpha$)")
    _loglog_points(axes[1], d["x_delta"], d["y_delta"], d["theory_curve_delta"], "measured", r"$r$")
    axes[1].set(xlabel=rf"grid step {DELTA} ($\alpha$ = 0.02)", ylabel=r"largest stopped $|w - w^*|$",
                title=rf"... and $r$ grows with {DELTA} (slope 1)")
    for ax in axes:
        log_ticks(ax)
        ax.legend()
    return Drawn("dr_stall_distance", fig, "Exact gradients, constant step: DR's iterate stops at the outermost grid "
                 r"point inside the stall radius $r = \Delta/(2\alpha\mu)$ (points: the largest stopped distance over "
                 r"the coordinates; line: $r$). " + _setting(found[0]), tuple(r.name for r in found))


def fig_floors(results: list[CheckResult]) -> Drawn | None:
    """SR's error floors against Delta: noiseless (slope 2) and noisy, small updates (slope 1)."""
    sel = [(r, t, th) for p, t, th in (
        ("sr.floor-exact", "SR, exact gradients", r"$\frac{\mu}{2}\sum_i \Delta^2 p_i(1-p_i)$"),
        ("sr.floor-noisy-slope", r"SR, $\alpha\sigma \ll \Delta$", r"$d\,\Delta\,\mathbb{E}|g|/4$"))
        for r in _find(results, p)]
    if not sel:
        return None
    fig, axes = plt.subplots(1, len(sel), figsize=(4.8 * len(sel), 3.8), squeeze=False)
    captions = []
    for ax, (r, title, theory) in zip(axes[0], sel, strict=True):
        label = r"measured, $\alpha$ = 0.1" if "exact" in r.id else r"measured, $\alpha\sigma = \Delta/10$"
        _loglog_points(ax, r.data["x"], r.data["y"], r.data["theory_curve"], label, f"theory: {theory}")
        if "y_other_alpha" in r.data:
            ax.loglog(r.data["x"], r.data["y_other_alpha"], "s", mfc="none", label=r"measured, $\alpha\sigma = "
                      r"\Delta/20$")
        slope, ci = (r.data["slope"], r.data["slope_ci"]) if "slope" in r.data else (r.measured, r.ci)
        ax.set(xlabel=rf"grid step {DELTA}", ylabel=rf"stationary {EXCESS}",
               title=f"{title}: slope {slope:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]")
        ax.set_xlim(0.8 * min(r.data["x"]), 1.25 * max(r.data["x"]))
        log_ticks(ax)
        ax.legend(loc="upper left")
        captions.append(f"{title.replace('SR, ', '')}: {_setting(r)}")
    return Drawn("floor_vs_delta", fig, "SR's error floor against the grid step: slope 2 with exact gradients "
                 "(left), slope 1 when the updates are far below the grid (right); bracket: the slope's 95% interval."
                 "\n" + "\n".join(captions), tuple(r.name for r, _, _ in sel))


def fig_stationary(results: list[CheckResult]) -> Drawn | None:
    """SR's stationary law on the double well against its exact chain, and SGD's against its own."""
    found = _find(results, "sr.dw-sr")
    if not found:
        return None
    laws = found[0].data["laws"]
    fig, axes = plt.subplots(1, len(laws), figsize=(5 * len(laws), 3.6), sharey=True, squeeze=False)
    for ax, law in zip(axes[0], laws, strict=True):
        grid = np.asarray(law["grid"])
        delta = float(grid[1] - grid[0])
        ax.bar(grid, np.asarray(law["exact"]) / delta, width=delta * 0.9, alpha=0.35, label="SR, exact chain")
        ax.plot(grid, np.asarray(law["simulated"]) / delta, "o", ms=3, label="SR, simulated")
        edges = np.asarray(law["sgd_edges"])
        ax.plot(0.5 * (edges[1:] + edges[:-1]), law["sgd_density"], color="black", lw=1, label="SGD, simulated")
        ax.plot(law["sgd_x"], law["sgd_exact"], color="tab:orange", lw=1, ls="--", label="SGD, exact chain")
        ax.set(xlim=(-2, 2), xlabel=r"$w$", ylabel="density", title=rf"$\alpha$ = {num(law['alpha'])}")
        ax.legend(loc="upper center", fontsize=6.5)
    return Drawn("stationary_double_well", fig, r"Double well $F(w)$ with minima at $\pm 1$: at a smaller step "
                 r"SGD's stationary law sharpens at the minima while SR's (on the same grid) does not: its chain's "
                 r"moves are proportional to $\alpha$, which cancels from detailed balance. " + _setting(found[0]),
                 tuple(r.name for r in found))


def fig_bounds(results: list[CheckResult]) -> Drawn | None:
    """Each Li et al. bound against SR's measured curve and DR's, with the slack over the whole curve below."""
    found = _find(results, "sr.li-")
    if not found:
        return None
    cols = min(4, len(found))
    rows = -(-len(found) // cols)
    fig = plt.figure(figsize=(4.3 * cols, 4.4 * rows), layout="constrained")
    grid = fig.add_gridspec(rows, cols)
    for k, r in enumerate(found):
        ax, low = with_slack(fig, grid[divmod(k, cols)])
        x = np.asarray(r.data["x"])
        name = r.name.split(" (")[0].replace("SR ", "").replace(" bound", "")
        who = "BC" if r.id.startswith("sr.li-bc") else "SR"
        color = METHOD_COLORS["bc" if who == "BC" else "sr"]
        ax.loglog(x, r.data["y"], color=color, label=f"{who} measured")
        ax.loglog(x, r.data["dr"], color=METHOD_COLORS["dr"], alpha=0.7, label="DR measured")
        ax.loglog(x, r.data["bound"], "--", color="gray", label="bound")
        what = r"min$_{s\leq t}\,\mathbb{E}\|\nabla F\|^2$" if "ncvx" in r.id else r"$F(\bar w_t) - F^*$"
        ax.set(ylabel=what, title=f"{name} ({r.name.split(' (')[-1].rstrip(')')})")
        ax.legend(loc="best")
        log_ticks(ax, "y")
        least = slack_panel(low, x, r.data["bound"], r.data["y"], color, f"bound / {who}")
        ratio = np.asarray(r.data["bound"]) / np.asarray(r.data["y"])
        low.set(xlabel="iteration $t$", ylabel="slack", ylim=(0.5, max(3.0, 3 * float(np.nanmax(ratio)))))
        slack_title(low, least, float(ratio[-1]))
        log_ticks(low)
    panels_of: dict[str, list[str]] = {}
    for r in found:  # one line per distinct setting, naming its panels
        panels_of.setdefault(_setting(r), []).append(r.name.replace("SR ", "").replace(" bound", ""))
    settings = [f"{', '.join(names)}: {text}" for text, names in panels_of.items()]
    return Drawn("bounds_vs_measured", fig, "Li et al. (2017)'s bounds (dashed) against SR's measured curve and "
                 "DR's. Lower panels: the slack, bound / measured, at every t (1 = tight); the verdict's slack is "
                 "its minimum. DR also stays below each bound, so the bounds cannot tell SR from DR.\n"
                 + "\n".join(settings), tuple(r.name for r in found))


def fig_decaying(results: list[CheckResult]) -> Drawn | None:
    """Decaying alpha: SR follows its mean-field curve to the floor, SGD its exact curve to zero, DR stalls."""
    found = _find(results, "sr.decay-meanfield")
    if not found:
        return None
    d = found[0].data
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.loglog(d["x"], d["y"], color=METHOD_COLORS["sr"], lw=2, label="SR measured")
    ax.loglog(d["x"], d["theory_curve"], "--", color="navy", label="SR mean field (3.3)")
    ax.loglog(d["x"], d["fp"], color=METHOD_COLORS["fp"], lw=2, label="SGD measured")
    ax.loglog(d["x"], d["sgd_curve"], "--", color="gray", label="SGD exact")
    ax.loglog(d["x"], d["dr"], color=METHOD_COLORS["dr"], lw=2, label="DR measured")
    ax.axhline(d["floor"], color=METHOD_COLORS["sr"], ls=":", label=r"SR floor $d\,\Delta\,\mathbb{E}|g|/4$")
    cross = d.get("regime_b_until")
    if cross:  # alpha_t sigma = Delta: regime B before, regime A after
        ax.axvline(cross, color="gray", lw=0.8, label=r"$\alpha_t\sigma = \Delta$ (regime B to the left)")
    ax.set(xlabel="iteration $t$", ylabel=EXCESS, title=r"Decaying step $\alpha_t = \alpha_1/\sqrt{t}$")
    log_ticks(ax)
    ax.legend(loc="upper right", ncol=2)
    ax.set_ylim(None, 6 * max(np.max(d["y"]), np.max(d["dr"])))
    return Drawn("decaying_alpha", fig, r"Why DR ends below SR here without contradicting 'SR beats DR': early on "
                 r"$\alpha_t\sigma > \Delta$ (regime B, left of the line), where the noise dithers DR's rounding and "
                 r"DR moves toward $w^*$ like SGD; as $\alpha_t$ decays DR freezes where it stands, close to $w^*$. "
                 r"SR's floor $d\,\Delta\,\mathbb{E}|g|/4$ does not shrink with $\alpha$, so SR ends above. SR wins "
                 r"in regime A from a start far from $w^*$ (regimes.png). " + _setting(found[0]),
                 tuple(r.name for r in results if r.id.startswith("sr.decay-")))


def fig_averaging(results: list[CheckResult]) -> Drawn | None:
    """Averaged SR iterates lose the rounding floor; the last iterate keeps it."""
    found = _find(results, "sr.avg")
    if not found:
        return None
    d = found[0].data
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    ax.loglog(d["x"], d["y"], "o", color=METHOD_COLORS["sr"], label="averaged SR iterate")
    ax.loglog(d["x"], d["theory_curve"], "--", color="gray", label=r"prediction (falls like $1/T$)")
    ax.loglog(d["x"], d["last"], "s", mfc="none", color=METHOD_COLORS["sr"], label="last SR iterate")
    ax.axhline(d["floor"], color="gray", ls=":", label=r"floor $d\,\Delta\,\mathbb{E}|g|/4$")
    ax.set(xlabel="$T$", ylabel=EXCESS, title=rf"SR with iterate averaging (constant {ALPHA})")
    log_ticks(ax)
    ax.legend(loc="lower left")
    return Drawn("averaging", fig, "The average of SR's iterates has no rounding floor (its excess falls like 1/T); "
                 "the last iterate stays at the floor. " + _setting(found[0]),
                 tuple(r.name for r in results if r.id.startswith("sr.avg")))


def fig_dr_bounds(results: list[CheckResult]) -> Drawn | None:
    """DR's upper bounds against measurement with their slack over the whole curve, and the escape probability."""
    ups = _find(results, "dr.upper-")
    esc = _find(results, "dr.escape")
    if not ups and not esc:
        return None
    cols = len(ups) + len(esc)
    fig = plt.figure(figsize=(4.5 * cols, 5.0), layout="constrained")
    grid = fig.add_gridspec(1, cols)
    for k, r in enumerate(ups):
        ax, low = with_slack(fig, grid[0, k])
        ax.loglog(r.data["x"], r.data["y"], color=METHOD_COLORS["dr"], label="DR measured")
        ax.loglog(r.data["x"], r.data["bound"], "--", color="gray", label="upper bound (2.4)")
        noisy = r.id == "dr.upper-noise"
        ax.set(ylabel=EXCESS, title="DR, noisy gradients" if noisy else "DR, exact gradients")
        if noisy:
            ax.axvspan(min(r.data["x"]), 16, color="gray", alpha=0.12, label=r"judged: $t \leq 16$")
        log_ticks(ax, "y")
        ax.legend(loc="best")
        least = slack_panel(low, r.data["x"], r.data["bound"], r.data["y"], METHOD_COLORS["dr"], "bound / DR")
        end = float(r.data["bound"][-1] / r.data["y"][-1])
        ratio = np.asarray(r.data["bound"]) / np.asarray(r.data["y"])
        low.set(xlabel="iteration $t$", ylabel="slack", ylim=(0.7, max(3.0, 2 * float(np.nanmax(ratio)))))
        slack_title(low, least, end)
        log_ticks(low)
    for k, r in enumerate(esc, start=len(ups)):
        ax = fig.add_subplot(grid[0, k])
        ax.plot(r.data["x"], r.data["y"], "o", ms=3, label="measured")
        ax.plot(r.data["x"], r.data["theory_curve"], color="gray", label=r"$P(|\alpha g| \geq \Delta/2)$")
        ax.set(xlabel="error $e$ of the grid point", ylabel="P(one DR step moves)", title="DR escape probability")
        ax.legend(loc="upper center")
    caption = ("DR's upper bound (2.4) against its measured excess; lower panels: the slack, bound / measured, at "
               "every t (1 = tight). With noise the bound is tight in the transient (the verdict judges t <= 16) "
               "and about 2.7x loose once DR is stationary. Right: one DR step's chance to move.\n"
               + "\n".join(f"{r.id}: {_setting(r)}" for r in ups + esc))
    return Drawn("dr_bounds", fig, caption, tuple(r.name for r in results if r.id.startswith(("dr.upper-",
                                                                                                "dr.escape"))))


def fig_stalls(results: list[CheckResult]) -> Drawn | None:
    """DR's stall under the three row optimizers: SGD's stall times in their predicted intervals, the frozen
    fraction under row-wise Adagrad against its prediction, and Adam's step against its bound."""
    sgd = _find(results, "optim.sgd-stall-time")
    ada = _find(results, "optim.adagrad-frozen")
    adam = _find(results, "optim.adam-attained")
    if not (sgd or ada or adam):
        return None
    fig, axes = panels(3, width=4.6)
    if sgd:
        d = sgd[0].data
        order = np.argsort(d["upper"])
        x = np.arange(order.size)
        axes[0].fill_between(x, np.asarray(d["lower"])[order], np.asarray(d["upper"])[order], color="gray",
                             alpha=0.3, label="predicted interval (2.8)")
        axes[0].plot(x, np.asarray(d["y"])[order], ".", color=METHOD_COLORS["dr"], label="last move, measured")
        axes[0].set(xlabel="coordinate (sorted)", ylabel="step of the last move", title="SGD + DR: stall times")
        axes[0].legend(loc="upper left")
    if ada:
        d = ada[0].data
        axes[1].plot(d["x"], d["y"], color=METHOD_COLORS["dr"], lw=2, label="measured")
        axes[1].plot(d["x"], d["theory_curve"], "--", color="black", label=r"fraction with $N_i < n$ (8.3)")
        axes[1].set(xlabel="update $n$", ylabel="fraction frozen", title="Row-wise Adagrad + DR")
        axes[1].legend(loc="lower right")
    if adam:
        d = adam[0].data
        axes[2].semilogx(d["x"], d["y"], color=METHOD_COLORS["dr"], lw=2, label=r"gradients $\sim (\beta_2/\beta_1)^t$")
        if "iid" in d:
            axes[2].semilogx(d["x"], d["iid"], color=METHOD_COLORS["sr"], lw=0.8, label="i.i.d. noise")
        axes[2].semilogx(d["x"], d["bound"], "--", color="black", label="bound $c_t$ (8.2)")
        axes[2].axhline(1.0, color="gray", lw=0.8, ls=":", label=r"$\alpha$ (the folk claim)")
        axes[2].set(xlabel="step $t$", ylabel=rf"Adam step / {ALPHA}", title="Adam's step: worst case and noise")
        log_ticks(axes[2], "x")
        axes[2].legend(loc="upper left")
    parts = [f"{n}: {_setting(r[0])}" for n, r in (("SGD", sgd), ("Adagrad", ada), ("Adam", adam)) if r]
    return Drawn("stalls", fig, "DR's stall under the row optimizers: SGD's last moves inside their predicted "
                 "intervals; the frozen fraction under row-wise Adagrad; Adam's step reaching its bound c_t under "
                 "adversarial gradients (the worst case equals the bound; the measured line hides the dashed one)."
                 "\n" + "\n".join(parts), tuple(r.name for r in sgd + ada + adam))


def fig_ctr(results: list[CheckResult]) -> Drawn | None:
    """The CTR checks: where DR freezes, SR's floor against Delta, the two regimes, and ALPT's learned steps."""
    freeze = _find(results, "ctr.dr-freeze") or [r for r in results if r.data and "cells" in r.data]
    floor = [r for r in results if r.id.startswith("ctr.") and r.data and "chord" in r.name and "x" in r.data]
    regimes = [r for r in results if r.id.startswith("ctr.") and r.data and "regime" in r.data]
    alpt = [r for r in results if r.id.startswith("ctr.") and r.data and "learned" in r.data]
    if not (freeze or floor or regimes or alpt):
        return None
    fig, axes = panels(4, width=4.8, height=4.0, cols=2)
    if freeze:
        d = freeze[0].data
        x = np.arange(len(d["cells"]))
        axes[0].bar(x - 0.2, d["frozen"], 0.4, color=METHOD_COLORS["dr"], label="LPT-DR")
        axes[0].bar(x + 0.2, d["sr_frozen"], 0.4, color=METHOD_COLORS["sr"], label="LPT-SR")
        for i, p in enumerate(d["predicted_class"]):
            axes[0].text(i, 1.04, p, ha="center", va="bottom", fontsize=6.5)
        axes[0].set_xticks(x, [c.replace(" lr ", "\nlr ") for c in d["cells"]], fontsize=6.5)
        axes[0].set(ylim=(0, 1.3), yticks=[0, 0.25, 0.5, 0.75, 1.0], ylabel="touched codes never changed",
                    title="DR freezes where predicted (above: prediction)")
        axes[0].legend(loc="upper right", ncol=2)
    if floor:
        d = floor[0].data
        x, y = np.asarray(d["x"]), np.asarray(d["y"])
        axes[1].plot(x, y, "o-", color=METHOD_COLORS["sr"], label="LPT-SR")
        axes[1].plot(x, y[0] + (y[1] - y[0]) / (x[1] - x[0]) * (x - x[0]), "--", color="gray",
                     label=rf"linear in {DELTA} (regime A)")
        axes[1].set(xlabel=rf"grid step {DELTA}", ylabel="train log loss",
                    title=f"SR's floor grows like {DELTA}: chord ratio {floor[0].measured:.2f}")
        axes[1].set_xticks(d["x"], [num(v) for v in d["x"]])  # three steps: label each one
        axes[1].legend(loc="upper left")
    if regimes:
        d = regimes[0].data
        for i in range(len(d["regime"])):
            for off, m, lab in ((-0.1, "dr", "LPT-DR"), (0.1, "sr", "LPT-SR")):
                v = np.asarray(d[m][i])
                axes[2].errorbar(i + off, v.mean(), yerr=v.std(), fmt="o", color=METHOD_COLORS[m], capsize=3,
                                 label=f"{lab}: mean and sd" if i == 0 else "_nolegend_")
                axes[2].plot(np.full(v.size, i + off + 0.04), v, ".", ms=3, color=METHOD_COLORS[m], alpha=0.5,
                             label=f"{lab}: each seed" if i == 0 else "_nolegend_")
        axes[2].axhline(0.5, color="gray", lw=0.8, ls=":", label="chance (AUC 0.5)")
        axes[2].set_xticks([0, 1], [f"regime {r}\nlr/{DELTA} = {q:.2g}" for r, q in
                                    zip(d["regime"], d["ratio"], strict=True)])
        axes[2].set(xlim=(-0.5, 1.5), ylim=(0.48, 0.5 + 1.2 * (max(np.max(d["sr"]), np.max(d["dr"])) - 0.5)),
                    ylabel="test AUC", title="Regimes on a CTR model (Adam)")
        axes[2].legend(loc="center")
    if alpt:
        d = alpt[0].data
        axes[3].semilogx(d["grid"], d["val_auc"], "o-", color=METHOD_COLORS["sr"], label="fixed step (LPT-SR)")
        for k, v in enumerate(d["learned"]):
            axes[3].axvline(v, color=METHOD_COLORS["alpt"], alpha=0.5, lw=1, label="ALPT's learned steps" if k == 0
                            else "_nolegend_")  # one entry for all of them
        lo = min(min(d["grid"]), min(d["learned"]))
        hi = max(max(d["grid"]), max(d["learned"]))
        axes[3].set_xlim(lo / 1.3, hi * 1.3)
        axes[3].set(xlabel=rf"table step {DELTA}", ylabel="validation AUC", title="ALPT's learned steps vs the grid")
        log_ticks(axes[3], "x")
        axes[3].legend(loc="lower left")
    found = freeze[:1] + floor[:1] + regimes[:1] + alpt[:1]
    return Drawn("ctr_checks", fig, "The CTR checks: which (bits, optimizer, lr) cells freeze under DR (predicted "
                 "above the bars); LPT-SR's excess loss against the grid step; the two regimes by lr/$\\Delta$ (mean, "
                 "sd, and each seed); ALPT's learned steps against a grid of fixed steps.\n"
                 + "\n".join(f"{r.id}: {_setting(r)}" for r in found),
                 tuple(r.name for r in results if r.id.startswith(FIGURES["ctr_checks"])))


def fig_ctr_sparse(results: list[CheckResult]) -> Drawn | None:
    """The CTR table per frequency bucket: DR's and SR's frozen fractions against the rows' touch counts (prediction
    lines, measurements with their intervals), SR - DR, and lazy Adam's first touch."""
    freeze = [r for r in _find(results, "ctr.sparse-") if "rounding" in r.data]
    first = _find(results, "ctr.sparse-first-touch")
    if not freeze:
        return None
    opts = list(dict.fromkeys(r.data["optimizer"] for r in freeze))
    fig, axes = panels(len(opts) + 1 + bool(first), width=4.0, height=3.4)
    # DR has two predictions: from a frozen table's gradient law (decoupled, solid) and from a DR run's (coupled,
    # dashed); both judge the same measurement, drawn once
    by = {(r.data["optimizer"], r.data["rounding"]): r for r in freeze if r.data.get("law") != "coupled"}
    coupled = {r.data["optimizer"]: r for r in freeze if r.data.get("law") == "coupled"}
    for ax, opt in zip(axes, opts, strict=False):
        for rnd in ("dr", "sr"):
            r = by.get((opt, rnd))
            if r is None:
                continue
            d, c = r.data, METHOD_COLORS[rnd]
            x, y = np.asarray(d["counts"]), np.asarray(r.measured, dtype=float)
            extra = " (decoupled)" if rnd == "dr" and opt in coupled else ""
            ax.semilogx(x, d["pred"], "-", color=c, label=f"{rnd.upper()} predicted{extra}, {r.verdict}")
            if rnd == "dr" and opt in coupled:
                rc = coupled[opt]
                ax.semilogx(x, rc.data["pred"], "--", color=c, label=f"DR predicted (coupled), {rc.verdict}")
            ax.errorbar(x, y, yerr=[y - np.asarray(d["ci_lo"]), np.asarray(d["ci_hi"]) - y], fmt="o", color=c,
                        ms=4, capsize=2, label=f"{rnd.upper()} measured")
        # headroom above 1 for the legend (five entries with both DR predictions), so it covers no data
        ax.set(xlabel="touches per row (bucket mean)", ylabel="fraction never moved", ylim=(-0.03, 1.75),
               yticks=np.linspace(0, 1, 6), title=f"{opt}: frozen fraction per bucket")
        ax.legend(loc="upper right", fontsize=7)
    ax = axes[len(opts)]
    for opt in opts:
        dr, sr = coupled.get(opt, by.get((opt, "dr"))), by.get((opt, "sr"))
        if dr is None or sr is None:
            continue
        x = np.asarray(dr.data["counts"])
        diff = np.asarray(sr.measured, dtype=float) - np.asarray(dr.measured, dtype=float)
        half = np.hypot(np.asarray(sr.data["ci_hi"]) - np.asarray(sr.measured, dtype=float),
                        np.asarray(dr.data["ci_hi"]) - np.asarray(dr.measured, dtype=float))
        line = ax.semilogx(x, np.asarray(sr.data["pred"]) - np.asarray(dr.data["pred"]), "-", label=f"{opt} predicted")
        ax.errorbar(x, diff, yerr=half, fmt="o", ms=4, capsize=2, color=line[0].get_color(), label=f"{opt} measured")
    ax.axhline(0, color="gray", lw=0.6, label="_nolegend_")  # 0: a tie
    ax.set(xlabel="touches per row (bucket mean)", ylabel="SR - DR frozen fraction", title="SR - DR per bucket")
    ax.legend(loc="best")
    if first:
        r = first[0]
        x = np.arange(len(r.data["buckets"]))
        ax = axes[len(opts) + 1]
        ax.plot(x, r.data["pred"], "-", color="gray", label="predicted (lazy Adam, 11.a.1)")
        ax.plot(x, np.asarray(r.measured, dtype=float), "o", color=METHOD_COLORS["dr"],
                label=f"DR measured ({r.verdict})")
        ax.set_xticks(x, r.data["buckets"])
        ax.set(xlabel="touches per row (bucket)", ylabel="frozen at the first touch", ylim=(-0.03, 1.03),
               title="Lazy Adam: the first touch")
        ax.legend(loc="best")
    found = freeze + first
    return Drawn("ctr_sparse", fig, "The CTR table per frequency bucket (touches per row, measured from the data): "
                 "the fraction of elements DR and SR never move under each lazy row optimizer, predicted (lines, "
                 "docs/theory.md 11.b; DR from a frozen table's gradient law, solid, and from a DR run's, dashed) "
                 "and measured (points with their intervals); SR - DR (predicted from the DR run's law where there "
                 "is one); lazy Adam's first touch."
                 "\n" + "\n".join(f"{r.id}: {_setting(r)}" for r in found[:1]), tuple(r.name for r in found))


def fig_rates(results: list[CheckResult]) -> Drawn | None:
    """SGD's last-iterate rates under both schedules."""
    found = _find(results, "sr.rate-")
    if not found:
        return None
    fig, ax = plt.subplots(figsize=(5.4, 3.8))
    names = {"sr.rate-sqrt": r"$\alpha_t = 1/\sqrt{t}$", "sr.rate-inv-t": r"$\alpha_t = 1/(\mu(t+1))$"}
    for r in found:
        slope = r.data.get("slope", r.measured)
        ax.loglog(r.data["x"], r.data["y"], label=f"{names.get(r.id, r.id)} (slope {slope:.2f})")
    ax.set(xlabel="iteration $t$", ylabel=EXCESS, title="Full-precision SGD: last-iterate rates")
    log_ticks(ax)
    ax.legend(loc="lower left")
    return Drawn("rates", fig, "Full-precision SGD's last iterate under the two schedules (slopes about -1/2 and "
                 "-1), the baseline the rounding floors are measured against. " + _setting(found[0]),
                 tuple(r.name for r in found))


def _errorbar(ax: plt.Axes, x: object, y: object, lo: object, hi: object, **kw: object) -> None:
    y, lo, hi = (np.asarray(v, dtype=float) for v in (y, lo, hi))
    ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", capsize=3, **kw)


def fig_sparse(results: list[CheckResult]) -> Drawn | None:
    """The sparse group against row frequency: DR's frozen fraction, SR - DR (with the predicted crossing) and what
    ALPT's table step costs each bucket. Predictions are lines (recomputed on a fine grid of frequencies from the
    checks' parameters), measurements points with their intervals."""
    from lptsim import theory

    frozen, dr = _find(results, "sparse.dr-frozen"), _find(results, "sparse.dr-excess")
    cross, alpt = _find(results, "sparse.crossing"), _find(results, "sparse.alpt-rare-pay")
    if not (frozen and dr):
        return None
    fig, axes = panels(3, width=4.8, height=3.9)
    d = dr[0].data
    w_star, batch, (delta, alpha, mu, sigma), records = (np.asarray(d["w_star"]), d["batch"], d["params"],
                                                        np.asarray(d["records"]))
    fine = np.geomspace(d["x"][0] / 1.5, d["x"][-1] * 1.5, 25)
    f = frozen[0].data
    line = [theory.sparse_dr_frozen_probability(alpha, delta, lam / batch, batch, int(records[-1]), -mu * w_star,
                                                sigma) for lam in fine]
    xlabel = r"lookups of the row per step (batch $\times$ $p$)"
    axes[0].semilogx(fine, line, "-", color="gray", label="predicted (11.b.3)")
    _errorbar(axes[0], f["x"], f["y"], f["ci_lo"], f["ci_hi"], color=METHOD_COLORS["dr"], label="DR, measured")
    axes[0].set(xlabel=xlabel, ylabel="rows never moved", title="DR freezes the rare rows")
    axes[0].legend(loc="best")
    gap = theory.sparse_row_excess(w_star, 0 * w_star, fine / batch, batch, delta, alpha, mu, sigma, records, "sr") - \
        theory.sparse_row_excess(w_star, 0 * w_star, fine / batch, batch, delta, alpha, mu, sigma, records, "dr")
    axes[1].semilogx(fine, gap, "-", color="gray", label="predicted (11.c.1)")
    y = np.asarray(d["sr"]) - np.asarray(d["y"])
    half = np.sqrt((np.asarray(d["sr_hi"]) - np.asarray(d["sr"])) ** 2 + (np.asarray(d["ci_hi"]) - d["y"]) ** 2)
    _errorbar(axes[1], d["x"], y, y - half, y + half, color="black", label="measured")
    if cross:
        c = cross[0].data
        axes[1].axvline(c["px"], color=METHOD_COLORS["alpt"], ls="--", lw=1, label=f"crossing {c['px']:.3g} (11.c.2)")
        sign = np.array([-1.0, 1.0])  # the check measures DR - SR below the crossing, SR - DR above it
        y, lo, hi = (sign * np.asarray(c[k], dtype=float) for k in ("y", "ci_lo", "ci_hi"))
        _errorbar(axes[1], c["x"], y, np.minimum(lo, hi), np.maximum(lo, hi), color=METHOD_COLORS["alpt"],
                  label=r"rows at $p_\times/1.2$, $1.2\,p_\times$")
    axes[1].axhline(0, color="gray", lw=0.6, label="_nolegend_")  # 0: a tie
    axes[1].set_yscale("symlog", linthresh=0.01)
    axes[1].set(xlabel=xlabel, ylabel="SR excess $-$ DR excess", title="SR wins on rare rows, DR on frequent ones")
    axes[1].legend(loc="best")
    for ax in axes[:2]:
        log_ticks(ax, "x")
    if alpt:
        a = alpt[0].data
        axes[2].loglog(a["x"], a["theory_curve"], "-", color="gray", label="predicted at the table's fixed step")
        _errorbar(axes[2], a["x"], a["y"], a["ci_lo"], a["ci_hi"], color=METHOD_COLORS["alpt"],
                  label="ALPT, one step per table")
        axes[2].loglog(a["x"], a["per_row"], "s", mfc="none", color="black", label="ALPT, one step per row")
        axes[2].set(xlabel=xlabel, ylabel="stationary row excess", title="The rare rows pay for the table's step")
        log_ticks(axes[2])
        axes[2].legend(loc="best")
    return Drawn("sparse_frequency", fig, "Sparse rows against how often a batch looks them up: DR freezes the rare "
                 "rows (left); SR's excess minus DR's changes sign at the predicted crossing (middle: SR better "
                 "below 0); with one ALPT step per table the rare rows pay for a step the frequent rows set "
                 "(right). Lines: exact Binomial-mixture chains; points: measured, with 95% intervals. "
                 + _setting(dr[0]), tuple(r.name for r in results if r.id.startswith("sparse.")))


RESULT_FIGURES: tuple[Callable[[list[CheckResult]], Drawn | None], ...] = (
    fig_floors, fig_stall, fig_stationary, fig_bounds, fig_rates, fig_decaying, fig_averaging, fig_dr_bounds,
    fig_stalls, fig_ctr, fig_ctr_sparse, fig_sparse)


def draw_from_results(results: list[CheckResult]) -> list[Drawn]:
    """Every figure the results determine, drawn but not laid out or saved."""
    style()
    return [d for fn in RESULT_FIGURES if (d := fn(results)) is not None]


def figures_from_results(results: list[CheckResult], out: Path) -> list[Path]:
    """Write the figures that the verification results alone determine (PNG + PDF)."""
    return [p for d in draw_from_results(results) for p in save(d, out)]
