"""Simulation checks: run the simulator, compare with lptsim.theory, give a verdict.

Every criterion is fixed here, before the run; experiments (horizon, seeds, step sizes)
are chosen so the theory's assumptions hold, and are never tuned against the criterion.
Each function takes a ``Budget`` so ``--full`` runs the same experiment with more seeds
and longer horizons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lptsim import theory
from lptsim.sim import problems, simulate
from lptsim.sim.problems import Problem
from lptsim.verify.report import CheckResult
from lptsim.verify.stats import bootstrap_slope, upper_confidence_limit


@dataclass(frozen=True)
class Budget:
    """Seeds and a horizon multiplier; the default run fits in about a minute on 2 cores."""

    seeds: int = 20
    horizon: float = 1.0

    def iters(self, base: int) -> int:
        return int(base * self.horizon)


def _tail_mean(values: np.ndarray) -> np.ndarray:
    """Per-seed mean over the recorded tail (records are placed in the tail by the caller)."""
    return values.mean(axis=1)


def _tail_records(T: int, start_frac: float = 0.5, count: int = 200) -> np.ndarray:  # noqa: N803
    return np.unique(np.linspace(int(T * start_frac), T, count).astype(int))


def _slope_check(name: str, x: np.ndarray, per_seed: np.ndarray, target: float, tol: float,
                 note: str = "", **data: object) -> CheckResult:
    slope, lo, hi = bootstrap_slope(x, per_seed)
    return CheckResult(name, [slope, lo, hi], target, f"slope in {target} +- {tol} (95% CI shown)",
                       abs(slope - target) <= tol, note=note, data={"x": x, "y": per_seed.mean(axis=0), **data})


# 2. DR stall distance -------------------------------------------------------------------------

def dr_stall(b: Budget) -> list[CheckResult]:
    """DR with exact gradients stalls at Delta/(2 alpha mu): slope -1 in alpha, +1 in Delta."""
    mu, d = 1.0, 100
    prob = problems.quadratic(d=d, mu=mu, L=mu, noise=0.0, seed=2)
    starts = np.random.default_rng(2).uniform(-3, 3, (b.seeds, d))

    def radius(alpha: float, delta: float) -> np.ndarray:
        T = int(8 / (alpha * mu)) + 200  # noqa: N806 - contraction to the stall region
        tr = simulate(prob, "dr", step=delta, lr=alpha, iters=T, seeds=b.seeds, exact_grad=True, w0=starts,
                      record_at=[T])
        err = np.abs(tr.final_weights - prob.w_star)
        moved = np.abs(starts - prob.w_star) > theory.dr_stall_distance(delta, alpha, mu) + delta
        return np.where(moved, err, 0.0).max(axis=1)  # the stall radius, from below within Delta

    alphas, delta = np.array([0.01, 0.02, 0.04, 0.08]), 0.01
    by_alpha = np.stack([radius(a, delta) for a in alphas], axis=1)
    deltas, alpha = np.array([0.005, 0.01, 0.02, 0.04]), 0.02
    by_delta = np.stack([radius(alpha, dl) for dl in deltas], axis=1)
    predicted = theory.dr_stall_distance(delta, alphas, mu)
    within = bool(np.all(by_alpha <= predicted + 1e-9) and np.all(by_alpha >= predicted - delta - 1e-9))
    return [
        _slope_check("DR stall distance vs alpha", alphas, by_alpha, -1.0, 0.05,
                     note=f"Delta={delta}; radius in [r - Delta, r] for every seed: {within}", predicted=predicted),
        _slope_check("DR stall distance vs Delta", deltas, by_delta, 1.0, 0.05, note=f"alpha={alpha}",
                     predicted=theory.dr_stall_distance(deltas, alpha, mu)),
    ]


# 3. Noiseless SR floor ------------------------------------------------------------------------

def sr_noiseless_floor(b: Budget) -> list[CheckResult]:
    """With exact gradients SR's stationary excess is mu/2 sum Delta^2 p(1-p): slope 2 in Delta, no alpha."""
    prob = problems.quadratic(d=100, mu=1.0, L=1.0, noise=0.0, seed=3)
    deltas = np.array([0.005, 0.01, 0.02, 0.04])
    T = b.iters(600)  # noqa: N806

    def floor(alpha: float) -> np.ndarray:
        return np.stack([_tail_mean(simulate(prob, "sr", step=dl, lr=alpha, iters=T, seeds=b.seeds,
                                             exact_grad=True, w0=prob.w_star, record_at=_tail_records(T)).excess)
                         for dl in deltas], axis=1)

    low, high = floor(0.1), floor(0.4)
    predicted = np.array([theory.sr_noiseless_floor(prob.w_star, dl, 1.0) for dl in deltas])
    ratio = float(np.max(np.abs(high.mean(0) / low.mean(0) - 1)))
    match = float(np.max(np.abs(low.mean(0) / predicted - 1)))
    return [
        _slope_check("SR noiseless floor vs Delta", deltas, low, 2.0, 0.1, note="alpha=0.1", predicted=predicted,
                     y_other_alpha=high.mean(0)),
        CheckResult("SR noiseless floor: alpha 0.1 vs 0.4 (max rel. diff)", ratio, 0.0, "<= 0.05", ratio <= 0.05),
        CheckResult("SR noiseless floor vs mu/2 sum Delta^2 p(1-p) (max rel. err)", match, 0.0, "<= 0.05",
                    match <= 0.05),
    ]


# 4. Noisy SR floor, small updates ---------------------------------------------------------------

def sr_noisy_floor(b: Budget) -> list[CheckResult]:
    """alpha sigma << Delta: excess = d Delta E|g|/4, slope 1 in Delta, independent of alpha."""
    d, sigma = 50, 1.0
    prob = problems.quadratic(d=d, mu=1.0, L=1.0, noise=sigma, seed=4)
    deltas = np.array([0.005, 0.01, 0.02, 0.04])

    def floor(ratio: float) -> np.ndarray:  # ratio = Delta / (alpha sigma)
        cols = []
        for dl in deltas:
            alpha = dl / (ratio * sigma)
            T = b.iters(int(8 / alpha))  # noqa: N806 - several relaxation times 1/(alpha mu)
            tr = simulate(prob, "sr", step=dl, lr=alpha, iters=T, seeds=b.seeds, w0=prob.w_star, seed=4,
                          record_at=_tail_records(T, 0.25, 400))
            cols.append(_tail_mean(tr.excess))
        return np.stack(cols, axis=1)

    r10, r20 = floor(10.0), floor(20.0)
    predicted = theory.sr_small_update_floor(d, deltas, theory.expected_abs_gaussian(sigma))
    match = float(np.max(np.abs(r10.mean(0) / predicted - 1)))
    alpha_dep = float(np.max(np.abs(r20.mean(0) / r10.mean(0) - 1)))
    return [
        _slope_check("SR noisy floor vs Delta (alpha sigma = Delta/10)", deltas, r10, 1.0, 0.1, predicted=predicted,
                     y_other_alpha=r20.mean(0)),
        CheckResult("SR noisy floor vs d Delta E|g|/4 (max rel. err)", match, 0.0, "<= 0.2", match <= 0.2),
        CheckResult("SR noisy floor: alpha vs alpha/2 (max rel. diff)", alpha_dep, 0.0, "<= 0.15",
                    alpha_dep <= 0.15),
    ]


# 5. SR bounds at every recorded T ---------------------------------------------------------------

def _measured_G(prob: Problem, weights: np.ndarray, seed: int = 0) -> float:  # noqa: N802
    """sqrt of the largest mean E||g||^2 over the recorded points (16 oracle draws each)."""
    rng = np.random.default_rng(seed)
    s, r, d = weights.shape
    flat = weights.reshape(-1, d)
    sq = np.mean([np.sum(prob.stoch_grad(flat, rng) ** 2, axis=1) for _ in range(16)], axis=0)
    return float(np.sqrt(sq.reshape(s, r).mean(axis=0).max()))


def _bound_check(name: str, iters: np.ndarray, measured: np.ndarray, bound: np.ndarray, note: str) -> CheckResult:
    ucl = upper_confidence_limit(measured, axis=0)
    holds = bool(np.all(ucl <= bound))
    tightness = float(np.max(measured.mean(axis=0) / bound))
    return CheckResult(name, tightness, 1.0, "upper 95% CL <= bound at every T; shown: max mean/bound", holds,
                       note=note, data={"x": iters, "y": measured.mean(axis=0), "bound": bound})


def sr_bounds(prob: Problem, label: str, b: Budget, delta: float, alpha: float, T: int) -> list[CheckResult]:  # noqa: N803
    """The strongly convex (when mu > 0), convex and nonconvex SR bounds on one problem."""
    c = prob.constants
    out = []
    d = prob.d
    if c.mu > 0:
        tr = simulate(prob, "sr", step=delta, lr=1.0, schedule="inv_t", iters=T, seeds=b.seeds, keep_weights=True)
        G = max(c.G, _measured_G(prob, tr.weights))  # noqa: N806 - any G >= sqrt(E||g||^2) is valid
        bound = theory.sr_strongly_convex_bound(tr.iters, G, c.mu, d, delta)
        out.append(_bound_check(f"SR strongly convex bound ({label})", tr.iters, tr.excess_avg, bound,
                                f"alpha_t = 1/(mu(t+1)), Delta={delta}, G={G:.3g}"))
    if prob.convex:
        tr = simulate(prob, "sr", step=delta, lr=alpha, schedule="inv_sqrt", iters=T, seeds=b.seeds,
                      keep_weights=True)
        G = max(c.G, _measured_G(prob, tr.weights))  # noqa: N806
        D = max(c.D, float(tr.dist.max()))  # noqa: N806 - must bound ||w_t - w*|| along the run
        bound = theory.sr_convex_bound(tr.iters, D, alpha, G, d, delta)
        out.append(_bound_check(f"SR convex bound ({label})", tr.iters, tr.excess_avg, bound,
                                f"alpha_t = {alpha}/sqrt(t), Delta={delta}, G={G:.3g}, D={D:.3g}"))
    # The minimum over recorded t can only exceed the minimum over all t: passing here is conservative.
    tr = simulate(prob, "sr", step=delta, lr=alpha, iters=T, seeds=b.seeds, keep_weights=True,
                  record_at=np.unique(np.geomspace(1, T, 300).astype(int)))
    G = max(c.G, _measured_G(prob, tr.weights[:, ::6]))  # noqa: N806
    running_min = np.minimum.accumulate(tr.grad_norm2.mean(axis=0))
    f_gap = float(prob.F(np.asarray(prob.w0)[None])[0] - prob.f_star)
    bound = theory.sr_nonconvex_bound(tr.iters, f_gap, alpha, c.L, G, d, delta)
    holds = bool(np.all(running_min <= bound))
    out.append(CheckResult(f"SR nonconvex bound ({label})", float(np.max(running_min / bound)), 1.0,
                           "min_t E||grad||^2 <= bound at every T; shown: max ratio", holds,
                           note=f"constant alpha={alpha}, Delta={delta}, L={c.L:.3g} ({c.how['L']}), G={G:.3g}",
                           data={"x": tr.iters, "y": running_min, "bound": bound}))
    return out


# 6. Decaying alpha keeps the SR floor -----------------------------------------------------------

def decaying_alpha_floor(b: Budget) -> list[CheckResult]:
    """With alpha_t = alpha/sqrt(t) -> 0, SGD's excess vanishes but SR's stays at d Delta E|g|/4."""
    d, sigma, delta = 20, 1.0, 0.05
    prob = problems.quadratic(d=d, mu=1.0, L=1.0, noise=sigma, seed=6)
    T = b.iters(40_000)  # noqa: N806
    rec = _tail_records(T, 0.9, 100)
    sr = _tail_mean(simulate(prob, "sr", step=delta, lr=0.5, schedule="inv_sqrt", iters=T, seeds=b.seeds,
                             record_at=rec).excess)
    fp = _tail_mean(simulate(prob, "fp", lr=0.5, schedule="inv_sqrt", iters=T, seeds=b.seeds, record_at=rec).excess)
    floor = theory.sr_small_update_floor(d, delta, theory.expected_abs_gaussian(sigma))
    ratio = float(sr.mean() / floor)
    return [CheckResult("Decaying alpha: SR final excess / floor (FP / floor in note)", ratio, 1.0,
                        ">= 0.5 while FP's <= 0.2", ratio >= 0.5 and fp.mean() / floor <= 0.2,
                        note=f"FP/floor = {fp.mean() / floor:.3g}, T={T}")]


# 7 and 8. Regimes A and B -----------------------------------------------------------------------

def _final_pair(prob: Problem, delta: float, alpha: float, T: int, b: Budget) -> tuple[float, float]:  # noqa: N803
    rec = _tail_records(T, 0.75, 100)
    dr = _tail_mean(simulate(prob, "dr", step=delta, lr=alpha, iters=T, seeds=b.seeds, record_at=rec).excess)
    sr = _tail_mean(simulate(prob, "sr", step=delta, lr=alpha, iters=T, seeds=b.seeds, record_at=rec).excess)
    return float(dr.mean()), float(sr.mean())


def _noise_at(prob: Problem, w: np.ndarray, draws: int = 2000, seed: int = 0) -> float:
    """RMS over coordinates of the stochastic gradient's standard deviation at w."""
    g = prob.stoch_grad(np.repeat(np.asarray(w, dtype=float)[None], draws, axis=0), np.random.default_rng(seed))
    return float(np.sqrt(np.mean(g.var(axis=0))))


def regime_a(prob: Problem, label: str, b: Budget, delta: float, T: int) -> CheckResult:  # noqa: N803
    """Updates below the grid (alpha sigma = Delta/10): DR stalls, SR converges (the paper's claim).

    sigma is the gradient noise measured at the start (the problem's own estimate can be 0 at w*).
    """
    alpha = delta / (10 * _noise_at(prob, prob.w0))
    dr, sr = _final_pair(prob, delta, alpha, b.iters(T), b)
    return CheckResult(f"Regime A: DR / SR final excess ({label})", dr / sr, ">= 10", ">= 10", dr / sr >= 10,
                       note=f"alpha sigma = Delta/10, Delta={delta}, alpha={alpha:.3g}; SR={sr:.3g}, DR={dr:.3g}")


def regime_b(b: Budget) -> CheckResult:
    """Gradient noise dithers the rounding (alpha sigma = 2 Delta): DR matches SR; the paper's claim does not hold."""
    prob = problems.quadratic(d=50, mu=1.0, L=1.0, noise=1.0, seed=8)
    delta = 0.05
    dr, sr = _final_pair(prob, delta, 2 * delta, b.iters(2000), b)
    return CheckResult("Regime B: DR / SR final excess (SR's advantage gone)", dr / sr, "<= 1.2", "<= 1.2",
                       dr / sr <= 1.2, note=f"alpha sigma = 2 Delta, Delta={delta}; SR={sr:.3g}, DR={dr:.3g}")


# 9. BC quantized-weight floor -------------------------------------------------------------------

def bc_floor(b: Budget) -> list[CheckResult]:
    """BC: deployed (rounded) weights lose mu/2 sum (rounding error)^2 over the FP floor: slope 2 in Delta."""
    prob = problems.quadratic(d=50, mu=1.0, L=1.0, noise=0.5, seed=9)
    deltas = np.array([0.01, 0.02, 0.04, 0.08])
    T = b.iters(3000)  # noqa: N806
    gaps = []
    for dl in deltas:
        tr = simulate(prob, "bc", step=dl, lr=0.05, iters=T, seeds=b.seeds, record_at=_tail_records(T))
        gaps.append(_tail_mean(tr.excess_quantized - tr.excess))
    predicted = np.array([theory.bc_quantization_gap(prob.w_star, dl, 1.0) for dl in deltas])
    return [_slope_check("BC: quantized minus FP floor vs Delta", deltas, np.stack(gaps, axis=1), 2.0, 0.3,
                         note="forward rounding to nearest, alpha=0.05", predicted=predicted)]


# 10. Stationary distributions on the double well -----------------------------------------------

def stationary_double_well(b: Budget) -> list[CheckResult]:
    """SR's histogram equals the exact chain at alpha and alpha/4; SGD's variance shrinks ~4x."""
    prob = problems.double_well(height=0.5, noise=2.0)
    delta, alpha, seeds = 0.1, 0.02, 2000 * max(b.seeds // 20, 1)
    T = b.iters(6000)  # noqa: N806
    out, sgd_var, exact = [], [], []
    starts = np.random.default_rng(10).choice([-1.0, 1.0], size=(seeds, 1))
    for a in (alpha, alpha / 4):
        Ta = int(T * alpha / a)  # noqa: N806 - same number of expected moves
        rec = _tail_records(Ta, 0.5, 50)
        tr = simulate(prob, "sr", step=delta, lr=a, iters=Ta, seeds=seeds, w0=starts, record_at=rec, seed=10,
                      keep_weights=True)
        grid, pi = theory.sr_stationary(lambda w: prob.grad(w[:, None])[:, 0], delta, a, prob.noise, (-3.0, 3.0))
        codes = np.rint(tr.weights.ravel() / delta).astype(int)
        hist = np.bincount(codes - int(np.rint(grid[0] / delta)), minlength=grid.size)[: grid.size] / codes.size
        tv = theory.total_variation(hist, pi)
        exact.append(pi)
        fp = simulate(prob, "fp", lr=a, iters=Ta, seeds=seeds, w0=starts, record_at=rec, seed=10, keep_weights=True)
        w = fp.weights.ravel()
        sgd_hist, edges = np.histogram(w, bins=120, range=(-3, 3), density=True)
        out.append(CheckResult(f"SR stationary law vs exact chain (alpha={a:g})", tv, 0.0, "TV <= 0.02", tv <= 0.02,
                               note=f"Delta={delta}, {seeds} chains started at +-1",
                               data={"grid": grid, "exact": pi, "simulated": hist, "alpha": a,
                                     "sgd_density": sgd_hist, "sgd_edges": edges}))
        sgd_var.append(np.mean((np.abs(w) - 1) ** 2))
    shrink = float(sgd_var[0] / sgd_var[1])
    out.append(CheckResult("SGD stationary variance shrink alpha -> alpha/4", shrink, 4.0, "in [3, 5]",
                           3 <= shrink <= 5,
                           note=f"exact SR chains at alpha and alpha/4 differ by TV "
                                f"{theory.total_variation(exact[0], exact[1]):.3g}"))
    return out


# 11. Rates before the floor --------------------------------------------------------------------

def rates(b: Budget) -> list[CheckResult]:
    """FP last iterate: slope -1/2 (inv_sqrt), -1 (inv_t); SR tracks FP within 10% above 3x its floor."""
    d, sigma = 10, 1.0
    prob = problems.quadratic(d=d, mu=1.0, L=1.0, noise=sigma, seed=11)
    T = b.iters(20_000)  # noqa: N806
    out = []
    for schedule, target, lr in (("inv_sqrt", -0.5, 1.0), ("inv_t", -1.0, 1.0)):
        rec = np.unique(np.geomspace(T // 20, T, 40).astype(int))
        fp = simulate(prob, "fp", lr=lr, schedule=schedule, iters=T, seeds=b.seeds * 5, record_at=rec, seed=11)
        slope, lo, hi = bootstrap_slope(fp.iters, fp.excess)
        out.append(CheckResult(f"FP rate under {schedule}", [slope, lo, hi], target, "95% CI covers the target",
                               lo <= target <= hi, note=f"fit on t in [{rec[0]}, {T}], {b.seeds * 5} seeds",
                               data={"x": fp.iters, "y": fp.mean()}))
    delta = 0.005
    rec = np.unique(np.geomspace(10, T, 40).astype(int))
    kw = dict(lr=1.0, schedule="inv_sqrt", iters=T, seeds=b.seeds, record_at=rec, seed=12)
    fp, sr = simulate(prob, "fp", **kw), simulate(prob, "sr", step=delta, **kw)
    floor = theory.sr_small_update_floor(d, delta, theory.expected_abs_gaussian(sigma))
    above = sr.mean() > 3 * floor
    dev = float(np.max(np.abs(sr.mean()[above] / fp.mean()[above] - 1)))
    out.append(CheckResult("SR tracks FP above 3x its floor (max rel. diff)", dev, 0.0, "<= 0.1", dev <= 0.1,
                           note=f"Delta={delta}, {int(above.sum())} of {rec.size} records above 3x floor",
                           data={"x": rec, "fp": fp.mean(), "sr": sr.mean(), "floor": floor}))
    return out


# 12. ALPT learns the step ----------------------------------------------------------------------

def alpt_step(b: Budget) -> list[CheckResult]:
    """From 10x too large and 10x too small, ALPT's step ends within 10% of the best fixed step."""
    prob = problems.quadratic(d=30, mu=1.0, L=1.0, noise=0.1, seed=12)
    bits, T = 4, b.iters(6000)  # noqa: N806
    rec = _tail_records(T, 0.75, 50)
    common = dict(lr=0.1, iters=T, seeds=b.seeds, bits=bits, record_at=rec, seed=12)
    # Coarse grid, then a fine one around its minimum; the best step is the vertex of a parabola
    # fitted to log(error) against log(step) there (the curve is flat near its minimum, so argmin is noisy).
    coarse = np.geomspace(0.02, 1.0, 12)
    errors = [_tail_mean(simulate(prob, "sr", step=s, **common).excess).mean() for s in coarse]
    centre = coarse[int(np.argmin(errors))]
    fine = centre * np.geomspace(0.7, 1.4, 11)
    errors = [_tail_mean(simulate(prob, "sr", step=s, **common).excess).mean() for s in fine]
    a, b1, _ = np.polyfit(np.log(fine), np.log(errors), 2)
    best = float(np.exp(-b1 / (2 * a))) if a > 0 else float(fine[int(np.argmin(errors))])
    out = []
    for factor in (10.0, 0.1):
        init = best * factor
        alpt = simulate(prob, "alpt", step=init, step_lr=0.02, **common)
        learned = float(alpt.step[:, -1].mean())
        fixed_err = _tail_mean(simulate(prob, "sr", step=init, **common).excess).mean()
        alpt_err = _tail_mean(alpt.excess).mean()
        rel = abs(learned / best - 1)
        out.append(CheckResult(f"ALPT learned step / best fixed step (start x{factor:g})", learned / best, 1.0,
                               "within 10%, and lower error than the mis-set fixed step",
                               rel <= 0.1 and alpt_err < fixed_err,
                               note=f"best fixed {best:.3g} by grid search; error ALPT {alpt_err:.3g} vs fixed "
                                    f"{fixed_err:.3g}"))
    return out


def run(full: bool = False) -> list[CheckResult]:
    """All simulation checks (``full``: 3x the seeds, 3x the horizons)."""
    b = Budget(seeds=60, horizon=3.0) if full else Budget()
    quad = problems.quadratic(d=20, mu=1.0, L=2.0, noise=1.0, seed=5)
    logi = problems.logistic(n=2000, d=20, reg=0.1, seed=5)
    mf = problems.matrix_factorization(rows=30, cols=20, rank=3, batch=8, seed=5)
    results = [*dr_stall(b), *sr_noiseless_floor(b), *sr_noisy_floor(b)]
    results += sr_bounds(quad, "quadratic", b, delta=0.01, alpha=0.1, T=b.iters(5000))
    results += sr_bounds(logi, "logistic", b, delta=0.01, alpha=0.1, T=b.iters(5000))
    results += sr_bounds(mf, "matrix factorisation", b, delta=0.01, alpha=0.5, T=b.iters(5000))
    results += decaying_alpha_floor(b)
    results += [regime_a(problems.quadratic(d=50, mu=1.0, L=1.0, noise=1.0, seed=7), "quadratic", b, 0.05, 4000),
                regime_a(logi, "logistic", b, 0.01, 20_000), regime_a(mf, "matrix factorisation", b, 0.01, 20_000),
                regime_b(b)]
    results += bc_floor(b) + stationary_double_well(b) + rates(b) + alpt_step(b)
    return results
