"""Figures drawn from the verification results alone (each check keeps the series behind its verdict)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lptsim.figs.common import METHOD_COLORS, panels, quiet_minor_ticks, save, style
from lptsim.verify.report import CheckResult

# Which checks each figure draws (by the start of their names): `lptsim verify --explain` names the figure.
FIGURES: dict[str, tuple[str, ...]] = {
    "dr_stall_distance": ("DR stops at the predicted grid point",),
    "floor_vs_delta": ("SR noiseless floor /", "SR noisy floor: slope"),
    "stationary_double_well": ("SR stationary E(|w|-1)^2",),
    "bounds_vs_measured": ("SR strongly convex bound", "SR convex bound", "SR nonconvex bound"),
    "rates": ("SGD rate",),
    "decaying_alpha": ("Decaying alpha: SR / mean-field",),
    "averaging": ("Averaged SR iterate",),
    "dr_bounds": ("DR upper bound", "DR escape probability"),
    "stalls": ("SGD + DR: last move", "Adagrad + DR: fraction", "Adam's step"),
    "ctr_checks": ("CTR: DR freezes", "CTR: LPT-SR excess", "CTR regime A", "CTR: ALPT's steps"),
    "sparse_frequency": ("Sparse DR: fraction", "Sparse SR:", "Sparse DR: mean", "Sparse: DR and SR cross",
                         "Sparse ALPT"),
}


def figure_for(result: CheckResult) -> str | None:
    """The figure (``lptsim verify --out`` or ``lptsim figs``) that shows this check, or None."""
    for stem, prefixes in FIGURES.items():
        if result.name.startswith(prefixes):
            return f"{stem}.png (written by lptsim verify --out DIR and lptsim figs)"
    return None


def _find(results: list[CheckResult], prefix: str) -> list[CheckResult]:
    return [r for r in results if r.name.startswith(prefix) and r.data]


def _loglog_points(ax: plt.Axes, x: object, y: object, theory: object, label: str, theory_label: str) -> None:
    ax.loglog(x, y, "o", label=label)
    ax.loglog(x, theory, "-", color="gray", label=theory_label)
    quiet_minor_ticks(ax)


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
    return save(fig, out, "dr_stall_distance")


def fig_floors(results: list[CheckResult], out: Path) -> list[Path]:
    """SR's error floors against Delta: noiseless (slope 2) and noisy, small updates (slope 1)."""
    panels = [(r, t) for p, t in (("SR noiseless floor /", "SR, exact gradients: mu/2 sum Delta^2 p(1-p)"),
                                  ("SR noisy floor: slope", "SR, alpha sigma << Delta: d Delta E|g|/4"))
              for r in _find(results, p)]
    if not panels:
        return []
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6))
    for ax, (r, title) in zip(np.atleast_1d(axes), panels, strict=True):
        _loglog_points(ax, r.data["x"], r.data["y"], r.data["theory_curve"], "measured", "theory")
        if "y_other_alpha" in r.data:
            ax.loglog(r.data["x"], r.data["y_other_alpha"], "s", mfc="none", label="measured, alpha / 2")
        slope, ci = (r.data["slope"], r.data["slope_ci"]) if "slope" in r.data else (r.measured, r.ci)
        ax.set(xlabel="grid step Delta", ylabel="stationary F - F*",
               title=f"{title}\nslope {slope:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]")
        ax.legend(fontsize=8)
    return save(fig, out, "floor_vs_delta")


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
    return save(fig, out, "stationary_double_well")


def fig_bounds(results: list[CheckResult], out: Path) -> list[Path]:
    """Each Li et al. bound against SR's measured curve and DR's (the bound cannot tell them apart)."""
    names = ("SR strongly convex bound", "SR convex bound", "SR nonconvex bound")
    found = [r for p in names for r in _find(results, p)]
    if not found:
        return []
    fig, axes = panels(len(found))
    for ax, r in zip(axes, found, strict=False):
        ax.loglog(r.data["x"], r.data["y"], label="SR measured")
        ax.loglog(r.data["x"], r.data["dr"], color=METHOD_COLORS["dr"], alpha=0.7, label="DR measured")
        ax.loglog(r.data["x"], r.data["bound"], "--", color="gray", label="bound")
        ax.set(xlabel="iteration T", title=f"{r.name.replace('SR ', '')}\nslack {r.slack:.3g}x",
               ylabel="excess / min E||grad||^2")
        ax.legend(fontsize=7)
    return save(fig, out, "bounds_vs_measured")


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
    return save(fig, out, "decaying_alpha")


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
    return save(fig, out, "averaging")


def fig_dr_bounds(results: list[CheckResult], out: Path) -> list[Path]:
    """DR's upper bounds against measurement, and its one-step escape probability."""
    ups = _find(results, "DR upper bound")
    esc = _find(results, "DR escape probability")
    if not ups and not esc:
        return []
    fig, axes = panels(len(ups) + len(esc))
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
    return save(fig, out, "dr_bounds")


def fig_stalls(results: list[CheckResult], out: Path) -> list[Path]:
    """DR's stall under the three row optimizers: SGD's stall times in their predicted intervals, the frozen
    fraction under row-wise Adagrad against its prediction, and Adam's step against its bound."""
    sgd = _find(results, "SGD + DR: last move")
    ada = _find(results, "Adagrad + DR: fraction")
    adam = _find(results, "Adam's step")
    if not (sgd or ada or adam):
        return []
    fig, axes = panels(3, width=4.6)
    if sgd:
        d = sgd[0].data
        order = np.argsort(d["upper"])
        x = np.arange(order.size)
        axes[0].fill_between(x, np.asarray(d["lower"])[order], np.asarray(d["upper"])[order], color="gray",
                             alpha=0.3, label="predicted interval (2.8)")
        axes[0].plot(x, np.asarray(d["y"])[order], ".", color=METHOD_COLORS["dr"], label="last move, measured")
        axes[0].set(xlabel="coordinate (sorted)", ylabel="step of the last move", title="SGD + DR: stall times")
        axes[0].legend(fontsize=7)
    if ada:
        d = ada[0].data
        axes[1].plot(d["x"], d["y"], color=METHOD_COLORS["dr"], label="measured")
        axes[1].plot(d["x"], d["theory_curve"], "--", color="gray", label="fraction with N_i < n (8.3)")
        axes[1].set(xlabel="update n", ylabel="fraction frozen", title="row-wise Adagrad + DR")
        axes[1].legend(fontsize=7)
    if adam:
        d = adam[0].data
        axes[2].semilogx(d["x"], d["y"], color=METHOD_COLORS["dr"], lw=0.8, label="gradients ~ (b2/b1)^t")
        if "iid" in d:
            axes[2].semilogx(d["x"], d["iid"], color=METHOD_COLORS["sr"], lw=0.8, label="i.i.d. noise")
        axes[2].semilogx(d["x"], d["bound"], "--", color="gray", label="bound c_t (8.2)")
        axes[2].axhline(1.0, color="black", lw=0.8, ls=":", label="alpha (the folk claim)")
        axes[2].set(xlabel="step t", ylabel="Adam step / alpha", title="Adam's step: worst case and noise")
        axes[2].legend(fontsize=7)
    return save(fig, out, "stalls")


def fig_ctr(results: list[CheckResult], out: Path) -> list[Path]:
    """The CTR checks: where DR freezes, SR's floor against Delta, the two regimes, and ALPT's learned steps."""
    freeze = _find(results, "CTR: DR freezes")
    floor = _find(results, "CTR: LPT-SR excess")
    regimes = _find(results, "CTR regime A")
    alpt = _find(results, "CTR: ALPT's steps")
    if not (freeze or floor or regimes or alpt):
        return []
    fig, axes = panels(4, width=4.6, height=3.8)
    if freeze:
        d = freeze[0].data
        x = np.arange(len(d["cells"]))
        axes[0].bar(x - 0.2, d["frozen"], 0.4, color=METHOD_COLORS["dr"], label="DR")
        axes[0].bar(x + 0.2, d["sr_frozen"], 0.4, color=METHOD_COLORS["sr"], label="SR")
        for i, p in enumerate(d["predicted_class"]):
            axes[0].text(i, 1.03, p, ha="center", fontsize=7)
        axes[0].set_xticks(x, d["cells"], rotation=35, ha="right", fontsize=7)
        axes[0].set(ylim=(0, 1.15), ylabel="touched codes never changed", title="DR freezes where predicted")
        axes[0].legend(fontsize=7, loc="center right")
    if floor:
        d = floor[0].data
        axes[1].loglog(d["x"], d["y"], "o-", color=METHOD_COLORS["sr"], label="LPT-SR")
        ref = np.asarray(d["y"])[0] * np.asarray(d["x"]) / np.asarray(d["x"])[0]
        axes[1].loglog(d["x"], ref, "--", color="gray", label="slope 1 (regime A)")
        axes[1].set(xlabel="Delta", ylabel="excess train log loss over FP",
                    title=f"SR's floor grows like Delta\nslope {floor[0].measured:.2f}")
        quiet_minor_ticks(axes[1])
        axes[1].set_xticks(d["x"], [f"{v:g}" for v in d["x"]])
        axes[1].legend(fontsize=7)
    if regimes:
        d = regimes[0].data
        for i in range(len(d["regime"])):
            axes[2].bar(i - 0.2, np.mean(d["dr"][i]), 0.4, yerr=np.std(d["dr"][i]), color=METHOD_COLORS["dr"],
                        label="DR" if i == 0 else None)
            axes[2].bar(i + 0.2, np.mean(d["sr"][i]), 0.4, yerr=np.std(d["sr"][i]), color=METHOD_COLORS["sr"],
                        label="SR" if i == 0 else None)
        axes[2].set_xticks([0, 1], [f"{r} (lr/Delta {q:.2g})" for r, q in zip(d["regime"], d["ratio"], strict=True)])
        axes[2].set(ylim=(0.45, None), ylabel="test AUC", title="Regimes on a CTR model (Adam)")
        axes[2].legend(fontsize=7)
    if alpt:
        d = alpt[0].data
        axes[3].semilogx(d["grid"], d["val_auc"], "o-", color=METHOD_COLORS["sr"], label="fixed step (LPT-SR)")
        for v in d["learned"]:
            axes[3].axvline(v, color=METHOD_COLORS["alpt"], alpha=0.4, lw=1)
        axes[3].set(xlabel="step", ylabel="validation AUC", title="ALPT's learned steps (purple) vs the grid")
        quiet_minor_ticks(axes[3])
        axes[3].legend(fontsize=7)
    return save(fig, out, "ctr_checks")


def fig_rates(results: list[CheckResult], out: Path) -> list[Path]:
    """SGD's last-iterate rates under both schedules."""
    found = _find(results, "SGD rate")
    if not found:
        return []
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for r in found:
        slope = r.data.get("slope", r.measured)
        ax.loglog(r.data["x"], r.data["y"], label=f"{r.name.split(':')[0]} (slope {slope:.2f})")
    ax.set(xlabel="iteration t", ylabel="F(w_t) - F*", title="Full-precision rates")
    ax.legend(fontsize=7)
    return save(fig, out, "rates")


def _errorbar(ax: plt.Axes, x: object, y: object, lo: object, hi: object, **kw: object) -> None:
    y, lo, hi = (np.asarray(v, dtype=float) for v in (y, lo, hi))
    ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", capsize=3, **kw)


def fig_sparse(results: list[CheckResult], out: Path) -> list[Path]:
    """The sparse group against row frequency: DR's frozen fraction, SR - DR (with the predicted crossing) and what
    ALPT's table step costs each bucket. Predictions are lines (recomputed on a fine grid of frequencies from the
    checks' parameters), measurements points with their intervals."""
    from lptsim import theory

    frozen, sr, dr = (_find(results, p) for p in ("Sparse DR: fraction", "Sparse SR:", "Sparse DR: mean"))
    cross, alpt = _find(results, "Sparse: DR and SR cross"), _find(results, "Sparse ALPT, one step per table: mean")
    if not (frozen and dr):
        return []
    fig, axes = panels(3, width=4.6, height=3.8)
    d = dr[0].data
    w_star, batch, (delta, alpha, mu, sigma), records = d["w_star"], d["batch"], d["params"], d["records"]
    fine = np.geomspace(d["x"][0] / 1.5, d["x"][-1] * 1.5, 25)
    f = frozen[0].data
    line = [theory.sparse_dr_frozen_probability(alpha, delta, lam / batch, batch, int(records[-1]), -mu * w_star,
                                                sigma) for lam in fine]
    axes[0].semilogx(fine, line, "-", color="gray", label="predicted (11.b.3)")
    _errorbar(axes[0], f["x"], f["y"], f["ci_lo"], f["ci_hi"], color=METHOD_COLORS["dr"], label="DR, measured")
    axes[0].set(xlabel="lookups of the row per step (batch x p)", ylabel="rows never moved",
                title="DR freezes the rare rows")
    axes[0].legend(fontsize=7)
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
                  label="rows at p_x / 1.2, 1.2 p_x")
    axes[1].axhline(0, color="gray", lw=0.6)
    axes[1].set_yscale("symlog", linthresh=0.01)
    axes[1].set(xlabel="lookups of the row per step (batch x p)", ylabel="SR excess - DR excess",
                title="SR wins on rare rows, DR on frequent ones")
    axes[1].legend(fontsize=7)
    if alpt:
        a = alpt[0].data
        axes[2].loglog(a["x"], a["theory_curve"], "-", color="gray", label="predicted at the table's fixed step")
        _errorbar(axes[2], a["x"], a["y"], a["ci_lo"], a["ci_hi"], color=METHOD_COLORS["alpt"],
                  label="ALPT, one step per table")
        axes[2].loglog(a["x"], a["per_row"], "s", mfc="none", color="black", label="ALPT, one step per row")
        axes[2].set(xlabel="lookups of the row per step (batch x p)", ylabel="stationary row excess",
                    title="The rare rows pay for the table's step")
        quiet_minor_ticks(axes[2])
        axes[2].legend(fontsize=7)
    return save(fig, out, "sparse_frequency")


def figures_from_results(results: list[CheckResult], out: Path) -> list[Path]:
    """The figures that the verification results alone determine."""
    style()
    paths: list[Path] = []
    for fn in (fig_floors, fig_stall, fig_stationary, fig_bounds, fig_rates, fig_decaying, fig_averaging,
               fig_dr_bounds, fig_stalls, fig_ctr, fig_sparse):
        paths += fn(results, out)
    return paths


