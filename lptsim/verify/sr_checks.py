"""SR checks: floors, the mean-field and upper-bound predictions, averaging, the Li et al. bounds,
stationary laws, and full-precision rates (docs/theory.md, sections 1, 3 and 4)."""

from __future__ import annotations

import numpy as np

from lptsim import theory
from lptsim.quant.rounding import RoundingRule, rounding_rule
from lptsim.sim import problems
from lptsim.sim.problems import Problem
from lptsim.verify.core import (
    Absolute,
    AtMost,
    Budget,
    Control,
    Estimate,
    Relative,
    curve,
    jackknife_ci,
    judge,
    loglog_slope,
    mean_ci,
    run,
    slope_ci,
)
from lptsim.verify.dr_checks import _curve, _src, per_seed_tail, tail
from lptsim.verify.report import CheckResult

# 3.1 Noiseless floor ---------------------------------------------------------------------------

def sr_noiseless_floor(b: Budget) -> list[CheckResult]:
    """Exact gradients: SR's stationary excess is mu/2 sum Delta^2 p(1-p) at any alpha; slope 2 in Delta."""
    prob = problems.quadratic(d=100, mu=1.0, L=1.0, noise=0.0, seed=b.seed_for("noiseless"))
    deltas = np.array([0.005, 0.01, 0.02, 0.04])
    T = b.iters(600)  # noqa: N806

    def floor(method: str, alpha: float, p: Problem = prob) -> np.ndarray:
        return np.stack([per_seed_tail(run(p, method, step=dl, lr=alpha, iters=T, seeds=b.seeds,
                                           exact_grad=p.noise == 0, w0=p.w_star, record_at=tail(T),
                                           seed=b.seed_for(f"noiseless/{method}/{alpha}")))
                         for dl in deltas], axis=1)

    pred = np.array([theory.sr_noiseless_floor(prob.w_star, dl, 1.0) for dl in deltas])
    sr = np.concatenate([floor("sr", 0.1) / pred, floor("sr", 0.4) / pred], axis=1)
    dr = floor("dr", 0.1) / pred
    low = floor("sr", 0.1) / pred * pred
    slope = slope_ci(deltas, low)
    return [
        judge("SR noiseless floor / mu/2 sum Delta^2 p(1-p) (4 Delta x alpha 0.1, 0.4)",
              _src("sr_noiseless_floor"), "exact", _ratio_curve(sr), 1.0, Relative(0.05),
              Control("DR", _ratio_curve(dr), 1.0), id="sr.floor-exact",
              note=f"exact gradients, started at w*, d=100; slope in Delta {slope.value:.3f} [{slope.lo:.3f}, "
                   f"{slope.hi:.3f}] against the prediction's {loglog_slope(deltas, pred):.3f} (about 2: Delta^2 times "
                   "sum p(1-p), whose positions p change with Delta)",
              x=deltas, y=low.mean(axis=0), theory_curve=pred, slope=slope.value, slope_ci=slope.ci,
              setting=dict(d=100, sigma=0, alpha="0.1, 0.4", T=T, seeds=b.seeds)),
        few_bit_floor(b, prob),
    ]


def few_bit_floor(b: Budget, prob: Problem, bits: int = 8, alpha: float = 0.004) -> CheckResult:
    """3.1's floor with k-bit SR (10.2): with alpha mu = 0.004 an update moves at most 0.004 of a step, so 8 random
    bits round it up with probability ceil(q 2^8)/2^8 = 2^-8 (for q > 0), and the upper grid point absorbs every
    coordinate whose alpha mu (1 - p) < 2^-8: the floor nearly doubles. The exact two-state chain predicts it;
    3.1's floor (24 bits) is the control."""
    delta, T = 0.01, b.iters(6000)  # noqa: N806 - the chain leaves its lower point after about 2^8 steps
    kw = dict(step=delta, lr=alpha, iters=T, seeds=b.seeds, exact_grad=True, w0=prob.w_star, record_at=tail(T))

    with rounding_rule(RoundingRule(sr_bits=bits)):
        few = per_seed_tail(run(prob, "sr", seed=b.seed_for("few_bit_floor"), **kw))
    exact = per_seed_tail(run(prob, "sr", seed=b.seed_for("few_bit_floor"), **kw))
    pred = theory.sr_few_bit_noiseless_floor(prob.w_star, delta, alpha, 1.0, bits)
    plain = theory.sr_noiseless_floor(prob.w_star, delta, 1.0)
    return judge(f"SR with {bits} random bits, noiseless floor / its two-state chain (alpha mu = {alpha})",
                 _src("sr_few_bit_noiseless_floor"), "exact", mean_ci(few / pred), 1.0, Relative(0.05),
                 Control("lptsim's SR (24 bits)", mean_ci(exact / pred), 1.0), id="sr.fewbit-floor",
                 note=f"Delta={delta}, exact gradients, started at w*, d={prob.d}: {bits} bits shift the floor to "
                      f"{pred / plain:.2f}x 3.1's mu/2 sum Delta^2 p(1-p)")


def _ratio_curve(per_seed: np.ndarray) -> Estimate:
    """Per-cell means (over seeds) of measured/predicted ratios, each with its interval."""
    return _curve(per_seed)


# 3.2 Noisy floor, regime A -------------------------------------------------------------------------

def sr_noisy_floor(b: Budget) -> list[CheckResult]:
    """alpha sigma << Delta: SR's excess is d Delta E|g|/4 at any alpha; slope 1 in Delta."""
    d, sigma = 50, 1.0
    prob = problems.quadratic(d=d, mu=1.0, L=1.0, noise=sigma, seed=b.seed_for("noisy_floor"))
    exact = problems.quadratic(d=d, mu=1.0, L=1.0, noise=0.0, seed=b.seed_for("noisy_floor"))
    deltas = np.array([0.005, 0.01, 0.02, 0.04])

    def floor(ratio: float, p: Problem = prob) -> np.ndarray:  # ratio = Delta / (alpha sigma)
        cols = []
        for dl in deltas:
            alpha = dl / (ratio * sigma)
            T = b.iters(int(8 / alpha))  # noqa: N806 - several relaxation times 1/(alpha mu)
            cols.append(per_seed_tail(run(p, "sr", step=dl, lr=alpha, iters=T, seeds=b.seeds, w0=p.w_star,
                                          exact_grad=p.noise == 0, seed=b.seed_for(f"noisy_floor/{ratio}"),
                                          record_at=tail(T, 0.25, 400))))
        return np.stack(cols, axis=1)

    pred = np.array([theory.sr_small_update_floor(d, dl, theory.expected_abs_gaussian(sigma)) for dl in deltas])
    r10, r20, wide = floor(10.0), floor(20.0), floor(0.5)
    return [
        judge("SR noisy floor / d Delta E|g|/4 (4 Delta x alpha sigma = Delta/10, Delta/20)",
              _src("sr_small_update_floor"), "approximation", _ratio_curve(np.concatenate([r10, r20], axis=1) /
                                                                            np.tile(pred, 2)), 1.0, Relative(0.15),
              Control("alpha sigma = 2 Delta (regime B)", _ratio_curve(wide / pred), 1.0),
              note="started at w*; the floor does not depend on alpha", id="sr.floor-noisy"),
        judge("SR noisy floor: slope in Delta", _src("sr_small_update_floor"), "approximation",
              slope_ci(deltas, r10), 1.0, Absolute(0.1),
              Control("exact gradients (slope 2)", slope_ci(deltas, floor(10.0, exact)), 1.0),
              id="sr.floor-noisy-slope",
              x=deltas, y=r10.mean(axis=0), theory_curve=pred, y_other_alpha=r20.mean(axis=0),
              setting=dict(d=d, sigma=sigma, alpha="Δ/(10σ), Δ/(20σ)", T="8/α", seeds=b.seeds)),
    ]


# 3.3 / 4.2 Decaying alpha: mean field, floor, SGD -------------------------------------------------------

def windows(rec: np.ndarray, per_seed: np.ndarray, count: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Average per-seed curves over ``count`` log-spaced windows of records: narrower intervals than single records.

    Returns the windows' geometric centres and the per-seed window means, shape (seeds, count).
    """
    edges = np.geomspace(rec[0], rec[-1] + 1, count + 1)
    idx = np.clip(np.searchsorted(edges, rec, side="right") - 1, 0, count - 1)
    used = np.unique(idx)
    means = np.stack([per_seed[:, idx == k].mean(axis=1) for k in used], axis=1)
    centres = np.array([np.exp(np.log(rec[idx == k]).mean()) for k in used])
    return centres, means


def decaying_alpha(b: Budget) -> list[CheckResult]:
    """alpha_t = 0.5/sqrt(t): SR follows its mean-field curve and keeps its floor; SGD follows its exact curve."""
    d, sigma, delta, lr = 40, 1.0, 0.1, 0.5
    prob = problems.quadratic(d=d, mu=1.0, L=1.0, noise=sigma, seed=b.seed_for("decaying"))
    T = b.iters(10_000)  # noqa: N806 - alpha_T sigma = Delta/20: regime A at the end
    rec = np.unique(np.geomspace(10, T, 120).astype(int))
    kw = dict(lr=lr, schedule="inv_sqrt", iters=T, seeds=4 * b.seeds, record_at=rec,
              seed=b.seed_for("decaying/run"))
    sr, dr = (run(prob, m, step=delta, **kw) for m in ("sr", "dr"))
    fp = run(prob, "fp", **{**kw, "seeds": 8 * b.seeds})  # SGD is cheap: more seeds for its exact (5%) check
    loud = problems.quadratic(d=d, mu=1.0, L=1.0, noise=2 * sigma, seed=b.seed_for("decaying"))
    alphas = lr / np.sqrt(np.arange(1, T + 1))
    mf = theory.sr_meanfield_excess(prob.w0, prob.w_star, delta, alphas, 1.0, sigma, record_at=rec)
    sgd = theory.sgd_excess(prob.w0, prob.w_star, alphas, 1.0, sigma, record_at=rec)
    floor = theory.sr_small_update_floor(d, delta, theory.expected_abs_gaussian(sigma))
    bound = theory.sr_excess_upper_bound(prob.w0, prob.w_star, delta, alphas, 1.0, sigma, record_at=rec)
    end = rec >= 0.8 * T

    def win(per_seed: np.ndarray) -> Estimate:
        return _curve(windows(rec, per_seed)[1])

    return [
        judge("Decaying alpha: SR / mean-field prediction (8 windows of t)", _src("sr_meanfield_excess"),
              "approximation", win(sr.excess / mf), 1.0, Relative(0.1), Control("DR", win(dr.excess / mf), 1.0),
              note=f"alpha_t = {lr}/sqrt(t), Delta={delta}, T={T}, {4 * b.seeds} seeds", x=rec, y=sr.mean(),
              theory_curve=mf, fp=fp.mean(), dr=dr.mean(), sgd_curve=sgd, floor=floor, id="sr.decay-meanfield",
              regime_b_until=(lr * sigma / delta) ** 2,  # alpha_t sigma >= Delta (regime B) until this t
              setting=dict(d=d, delta=delta, sigma=sigma, alpha=f"{lr}/√t", T=T, seeds=4 * b.seeds)),
        judge("Decaying alpha: SR final excess / d Delta E|g|/4 (the floor stays)", _src("sr_small_update_floor"),
              "approximation", mean_ci(sr.excess[:, end].mean(axis=1) / floor), 1.0, Relative(0.15),
              Control("full precision (its excess keeps falling)", mean_ci(fp.excess[:, end].mean(axis=1) / floor),
                      1.0), id="sr.decay-floor"),
        judge("Decaying alpha: SGD / its exact second-moment curve (4 windows of t)", _src("sgd_excess"), "exact",
              _curve(windows(rec, fp.excess / sgd, 4)[1]), 1.0, Relative(0.05),
              Control("SR", _curve(windows(rec, sr.excess / sgd, 4)[1]), 1.0), id="sr.decay-sgd"),
        judge("SR upper bound (decaying alpha; 8 windows of t)", _src("sr_excess_upper_bound"), "upper bound",
              win(sr.excess), windows(rec, bound[None])[1][0], AtMost(),
              Control("noise 2 sigma where the bound assumes sigma", win(run(loud, "sr", step=delta, **kw).excess),
                      windows(rec, bound[None])[1][0]), x=rec, y=sr.mean(), bound=bound, id="sr.decay-bound"),
    ]


# 3.4 SR upper bound in regime A, 3.6 averaging ------------------------------------------------------

def averaging(b: Budget) -> list[CheckResult]:
    """Constant alpha, regime A: the averaged SR iterate has no floor (its error falls like 1/T); the last one has."""
    d, sigma, delta, alpha = 200, 1.0, 0.05, 0.005
    prob = problems.quadratic(d=d, mu=1.0, L=1.0, noise=sigma, seed=b.seed_for("averaging"))
    T = b.iters(10_000)  # noqa: N806
    rec = np.unique(np.geomspace(T // 20, T, 12).astype(int))
    kw = dict(step=delta, lr=alpha, iters=T, seeds=2 * b.seeds, record_at=rec, seed=b.seed_for("averaging/run"))
    sr, dr = run(prob, "sr", **kw), run(prob, "dr", **kw)
    fp = run(prob, "fp", **{**{k: v for k, v in kw.items() if k != "step"}, "seeds": 8})  # a control: few seeds do
    pred = theory.sr_averaged_excess(prob.w0, prob.w_star, delta, alpha, 1.0, sigma, rec)
    floor = theory.sr_small_update_floor(d, delta, theory.expected_abs_gaussian(sigma))
    bound = theory.sr_excess_upper_bound(prob.w0, prob.w_star, delta, alpha, 1.0, sigma, T=T, record_at=rec)
    last = rec >= T // 2
    return [
        judge("Averaged SR iterate / prediction at every T (no floor)", _src("sr_averaged_excess"), "approximation",
              _curve(sr.excess_avg / pred), 1.0, Relative(0.15),
              Control("full precision averaged (no rounding noise)", _curve(fp.excess_avg / pred), 1.0),
              note=f"alpha={alpha}, Delta={delta}, d={d}: falls from {pred[0]:.3g} to {pred[-1]:.3g} while the last "
                   f"iterate stays near {floor:.3g}; averaged SGD, without SR's rounding noise, falls "
                   f"{np.mean(pred / fp.mean('excess_avg')):.1f}x lower (DR's average, stuck, would be trivial)",
              x=rec, y=sr.mean("excess_avg"), theory_curve=pred, last=sr.mean(), floor=floor, id="sr.avg",
              setting=dict(d=d, delta=delta, sigma=sigma, alpha=alpha, T=T, seeds=2 * b.seeds)),
        judge("Last SR iterate / d Delta E|g|/4 (same runs)", _src("sr_small_update_floor"), "approximation",
              mean_ci(sr.excess[:, last].mean(axis=1) / floor), 1.0, Relative(0.15),
              Control("averaged iterate", mean_ci(sr.excess_avg[:, last].mean(axis=1) / floor), 1.0), id="sr.avg-last"),
        judge("SR upper bound at every t (constant alpha, regime A)", _src("sr_excess_upper_bound"), "upper bound",
              _curve(sr.excess), bound, AtMost(), Control("DR", _curve(dr.excess), bound), id="sr.avg-bound"),
    ]


# 1. The Li et al. bounds, with constants from a pilot run ------------------------------------------

OPTIMISTIC = "constants 100x too optimistic"

def _pilot_constants(prob: Problem, b: Budget, label: str, **kw: object) -> tuple[float, float]:
    """G >= sqrt(max_t E||g_t||^2) and D >= max_t ||w_t - w*|| from a pilot run with other seeds (x1.1 margin),
    never from the run they then bound; at least the problem's own estimates."""
    tr = run(prob, "sr", seeds=8, keep_weights=True, seed=b.seed_for(f"pilot/{label}"), **kw)
    rng = b.rng(f"pilot/{label}/grads")
    s, r, d = tr.weights.shape
    flat = tr.weights.reshape(-1, d)
    sq = np.mean([np.sum(prob.stoch_grad(flat, rng) ** 2, axis=1) for _ in range(8)], axis=0)
    G = 1.1 * float(np.sqrt(sq.reshape(s, r).mean(axis=0).max()))  # noqa: N806
    return max(prob.constants.G, G), max(prob.constants.D, 1.1 * float(tr.dist.max()))


def li_bounds(prob: Problem, label: str, b: Budget, delta: float, alpha: float, T: int) -> list[CheckResult]:  # noqa: N803
    """Li et al.'s strongly convex and convex bounds and the nonconvex bound: upper bounds, slack printed.

    Each control evaluates the same bound with constants 100x too optimistic (G/100, D/100, L/100,
    mu x100, the initial gap /100): their assumptions then fail, and so must the bound on the same
    run. That it takes 100x shows how loose these bounds are (their slack is printed).
    """
    c = prob.constants
    d, out = prob.d, []
    rec = np.unique(np.geomspace(1, T, 16).astype(int))  # few points: these bounds are not tests (slack 3-50x)
    seeds = b.seeds
    tag = {"quadratic": "quad", "logistic": "logi"}.get(label, "mf")
    if c.mu > 0:
        kw = dict(step=delta, lr=1.0, schedule="inv_t", iters=T, record_at=rec)
        G, _ = _pilot_constants(prob, b, f"sc/{label}", **kw)  # noqa: N806
        sr = run(prob, "sr", seeds=seeds, seed=b.seed_for(f"sc/{label}"), **kw)
        dr = run(prob, "dr", seeds=seeds, seed=b.seed_for(f"sc/{label}"), **kw)
        bound = theory.sr_strongly_convex_bound(rec, G, c.mu, d, delta)
        wrong = theory.sr_strongly_convex_bound(rec, G / 100, 100 * c.mu, d, delta)
        out.append(_bound(f"SR strongly convex bound ({label})", "sr_strongly_convex_bound", sr.excess_avg, bound,
                          Control(OPTIMISTIC, _curve(sr.excess_avg), wrong), dr.excess_avg,
                          f"alpha_t = 1/(mu(t+1)), Delta={delta}, G={G:.3g} (pilot)", rec, f"sr.li-sc-{tag}",
                          dict(d=d, delta=delta, alpha="1/(μ(t+1))", T=T, seeds=seeds)))
    if prob.convex:
        kw = dict(step=delta, lr=alpha, schedule="inv_sqrt", iters=T, record_at=rec)
        G, D = _pilot_constants(prob, b, f"cvx/{label}", **kw)  # noqa: N806
        sr = run(prob, "sr", seeds=seeds, seed=b.seed_for(f"cvx/{label}"), **kw)
        dr = run(prob, "dr", seeds=seeds, seed=b.seed_for(f"cvx/{label}"), **kw)
        bound = theory.sr_convex_bound(rec, D, alpha, G, d, delta)
        wrong = theory.sr_convex_bound(rec, D / 100, alpha, G / 100, d, delta)
        out.append(_bound(f"SR convex bound ({label})", "sr_convex_bound", sr.excess_avg, bound,
                          Control(OPTIMISTIC, _curve(sr.excess_avg), wrong), dr.excess_avg,
                          f"alpha_t = {alpha}/sqrt(t), Delta={delta}, G={G:.3g}, D={D:.3g} (pilot)", rec,
                          f"sr.li-cvx-{tag}", dict(d=d, delta=delta, alpha=f"{alpha}/√t", T=T, seeds=seeds)))
        if label == "quadratic":  # BC's bound needs F(Q(w_t)) at every t: cheap on the quadratic only
            out.append(_bc_bound(prob, label, b, delta, alpha, T, rec, f"sr.li-bc-cvx-{tag}"))
    kw = dict(step=delta, lr=alpha, iters=T, record_at=rec)
    G, _ = _pilot_constants(prob, b, f"ncvx/{label}", **kw)  # noqa: N806
    sr = run(prob, "sr", seeds=seeds, seed=b.seed_for(f"ncvx/{label}"), **kw)
    dr = run(prob, "dr", seeds=seeds, seed=b.seed_for(f"ncvx/{label}"), **kw)
    f_gap = float(prob.F(np.asarray(prob.w0)[None])[0] - prob.f_star)
    bound = theory.sr_nonconvex_bound(rec, f_gap, alpha, c.L, G, d, delta)
    wrong = theory.sr_nonconvex_bound(rec, f_gap / 100, alpha, c.L / 100, G / 100, d, delta)
    # min over the recorded t can only exceed the min over all t: a pass is conservative.
    def running_min(tr: object) -> np.ndarray:
        return np.minimum.accumulate(tr.grad_norm2, axis=1)
    out.append(_bound(f"SR nonconvex bound ({label})", "sr_nonconvex_bound", running_min(sr), bound,
                      Control(OPTIMISTIC, _curve(running_min(sr)), wrong), running_min(dr),
                      f"constant alpha={alpha}, Delta={delta}, L={c.L:.3g} ({c.how['L']}), G={G:.3g} (pilot)", rec,
                      f"sr.li-ncvx-{tag}", dict(d=d, delta=delta, alpha=alpha, T=T, seeds=seeds)))
    return out


def _bc_bound(prob: Problem, label: str, b: Budget, delta: float, alpha: float, T: int, rec: np.ndarray,  # noqa: N803
              check_id: str) -> CheckResult:
    """Li et al.'s BC convex bound beside SR's: the running mean of F(Q(w_t)) - F* of BC (gradient at Q(w)) under
    alpha/sqrt(t), with G and D from a BC pilot run (other seeds). DR-LPT is shown against it in the note."""
    kw = dict(step=delta, lr=alpha, schedule="inv_sqrt", iters=T)
    pilot = run(prob, "bc", seeds=8, keep_weights=True, record_at=rec, seed=b.seed_for(f"bc_pilot/{label}"), **kw)
    q = delta * np.floor(pilot.weights.reshape(-1, prob.d) / delta + 0.5)
    rng = b.rng(f"bc_pilot/{label}/grads")
    sq = np.mean([np.sum(prob.stoch_grad(q, rng) ** 2, axis=1) for _ in range(8)], axis=0)
    G = max(prob.constants.G, 1.1 * float(np.sqrt(sq.reshape(8, -1).mean(axis=0).max())))  # noqa: N806
    D = max(prob.constants.D, 1.1 * float(np.max(np.linalg.norm(q - prob.w_star, axis=1))))  # noqa: N806
    every = np.arange(1, T + 1)
    bc = run(prob, "bc", seeds=b.seeds, record_at=every, seed=b.seed_for(f"bc/{label}"), **kw)
    running = (np.cumsum(bc.excess_quantized, axis=1) / every)[:, rec - 1]
    dr = run(prob, "dr", seeds=b.seeds, record_at=every, seed=b.seed_for(f"bc/{label}"), **kw)
    dr_running = (np.cumsum(dr.excess, axis=1) / every)[:, rec - 1]
    c = prob.constants
    bound = theory.bc_convex_bound(rec, D, alpha, G, c.L, prob.d, delta)
    wrong = theory.bc_convex_bound(rec, D / 100, alpha, G / 100, c.L / 100, prob.d, delta)
    sr_term = float(np.sqrt(prob.d) * delta * G / 2)
    return _bound(f"BC convex bound ({label})", "bc_convex_bound", running, bound,
                  Control(OPTIMISTIC, _curve(running), wrong), dr_running,
                  f"alpha_t = {alpha}/sqrt(t), Delta={delta}, G={G:.3g}, D={D:.3g} (BC pilot), L={c.L:.3g}: "
                  f"rounding term sqrt(d) Delta L D/2 = {float(np.sqrt(prob.d) * delta * c.L * D / 2):.3g} against "
                  f"SR's sqrt(d) Delta G/2 = {sr_term:.3g}", rec, check_id,
                  dict(d=prob.d, delta=delta, alpha=f"{alpha}/√t", T=T, seeds=b.seeds))


def _bound(name: str, statement: str, measured: np.ndarray, bound: np.ndarray, control: Control,
           dr: np.ndarray, note: str, rec: np.ndarray, check_id: str, setting: dict | None = None) -> CheckResult:
    dr_ratio = float(np.max(dr.mean(axis=0) / bound))
    verdict = "so it cannot tell SR from DR" if dr_ratio <= 1 else "DR exceeds it"
    return judge(name, _src(statement), "upper bound", _curve(measured), bound, AtMost(), control,
                 note=f"{note}; DR's max measured/bound {dr_ratio:.3g}: {verdict}", id=check_id,
                 x=rec, y=measured.mean(axis=0), bound=bound, dr=dr.mean(axis=0), setting=setting or {})


# 4.3 Stationary laws on the double well -------------------------------------------------------------

def stationary_double_well(b: Budget) -> list[CheckResult]:
    """SR's stationary spread equals its exact chain's at alpha and alpha/4 (it does not sharpen); SGD's equals its
    own chain's, which shrinks with alpha."""
    prob = problems.double_well(height=0.5, noise=2.0)
    delta, alpha, seeds = 0.1, 0.02, 50 * b.seeds
    T = b.iters(6000)  # noqa: N806
    starts = b.rng("double_well").choice([-1.0, 1.0], size=(seeds, 1))
    grad = lambda w: prob.grad(w[:, None])[:, 0]  # noqa: E731
    spread = lambda w: (np.abs(w) - 1) ** 2  # noqa: E731
    in_wells = lambda c: np.exp(-((np.abs(c) - 1) ** 2) / 0.02)  # noqa: E731
    sr_m, sr_p, fp_m, fp_p, bc_m, bc_p, laws = [], [], [], [], [], [], []
    for a in (alpha, alpha / 4):
        Ta = int(T * alpha / a)  # noqa: N806 - the same number of expected moves
        kw = dict(lr=a, iters=Ta, seeds=seeds, w0=starts, record_at=tail(Ta, 0.5, 50), keep_weights=True,
                  seed=b.seed_for(f"double_well/{a}"))
        w_sr, w_fp = run(prob, "sr", step=delta, **kw).weights[..., 0], run(prob, "fp", **kw).weights[..., 0]
        w_bc = run(prob, "bc", step=delta, **kw).weights[..., 0]  # BC's full-precision weights
        sr_m.append(spread(w_sr).mean(axis=1))
        fp_m.append(spread(w_fp).mean(axis=1))
        bc_m.append(spread(w_bc).mean(axis=1))
        sr_p.append(theory.sr_stationary_expectation(grad, delta, a, prob.noise, (-3.0, 3.0), spread))
        fp_p.append(theory.sgd_stationary_expectation(grad, a, prob.noise, (-3.0, 3.0), spread, in_wells))
        bc_p.append(theory.bc_stationary_expectation(grad, delta, a, prob.noise, (-3.0, 3.0), spread, in_wells))
        grid, pi = theory.sr_stationary(grad, delta, a, prob.noise, (-3.0, 3.0))
        centres, sgd_pi = theory.sgd_stationary(grad, a, prob.noise, (-3.0, 3.0), in_wells)
        codes = np.rint(w_sr.ravel() / delta).astype(int) - int(np.rint(grid[0] / delta))
        hist = np.bincount(np.clip(codes, 0, grid.size - 1), minlength=grid.size) / codes.size
        density, edges = np.histogram(w_fp.ravel(), bins=120, range=(-3, 3), density=True)
        laws.append(dict(alpha=a, grid=grid, exact=pi, simulated=hist, sgd_x=centres,
                         sgd_exact=sgd_pi / np.diff(centres[:2])[0], sgd_edges=edges, sgd_density=density))
    tv = ", ".join(f"{theory.total_variation(law['simulated'], law['exact']):.3f}" for law in laws)
    sr_ratio = np.stack(sr_m, axis=1) / np.array(sr_p)
    fp_ratio = np.stack(fp_m, axis=1) / np.array(fp_p)
    first_order = [theory.sgd_stationary_variance(a, prob.noise, 8 * 0.5) for a in (alpha, alpha / 4)]
    bc, srs = np.stack(bc_m, axis=1), np.stack(sr_m, axis=1)
    shrink_bc = bc_p[0] / bc_p[1]

    def shrink(first: np.ndarray, second: np.ndarray) -> Estimate:
        """(E at alpha / E at alpha/4) of two methods, each with its jackknife interval."""
        return curve([jackknife_ci(lambda m: m[:, 0].mean() / m[:, 1].mean(), x) for x in (first, second)])

    return [
        judge("SR stationary E(|w|-1)^2 / exact chain (alpha, alpha/4)", _src("sr_stationary_expectation"), "exact",
              _curve(sr_ratio), 1.0, Relative(0.05),
              Control("SGD against SR's chain", _curve(np.stack(fp_m, axis=1) / np.array(sr_p)), 1.0),
              note=f"Delta={delta}, {seeds} chains from +-1; SR's chains at alpha and alpha/4 give "
                   f"{sr_p[0]:.4g} and {sr_p[1]:.4g}: no sharpening; TV(simulated, exact) {tv}",
              laws=laws, id="sr.dw-sr",
              setting=dict(d=1, delta=delta, sigma=prob.noise, alpha=f"{alpha}, {alpha / 4}", T=T, seeds=seeds)),
        judge("SGD stationary E(|w|-1)^2 / exact chain (alpha, alpha/4)", _src("sgd_stationary_expectation"), "exact",
              _curve(fp_ratio), 1.0, Relative(0.05),
              Control("SR against SGD's chain", _curve(srs / np.array(fp_p)), 1.0), id="sr.dw-sgd",
              note=f"shrink alpha -> alpha/4: {fp_p[0] / fp_p[1]:.3f} predicted; the first-order "
                   f"alpha sigma^2/(c(2 - alpha c)) gives {first_order[0]:.4g}, {first_order[1]:.4g}"),
        judge("BC stationary E(|w|-1)^2 / exact chain (alpha, alpha/4)", _src("bc_stationary_expectation"), "exact",
              _curve(bc / np.array(bc_p)), 1.0, Relative(0.05),
              Control("SR against BC's chain", _curve(srs / np.array(bc_p)), 1.0), id="sr.dw-bc",
              note=f"BC's full-precision weights, gradient at Q(w), Delta={delta}: the chain gives {bc_p[0]:.4g} and "
                   f"{bc_p[1]:.4g}"),
        judge("Li et al. (2017): as alpha -> 0 BC concentrates, SR does not: E(|w|-1)^2 at alpha / at alpha/4 (BC, SR)",
              _src("bc_stationary_expectation", "sr_stationary_expectation"), "exact", shrink(bc, srs),
              np.array([shrink_bc, sr_p[0] / sr_p[1]]), Relative(0.1),  # a ratio of two 5% estimates
              Control("the two methods swapped", shrink(srs, bc), np.array([shrink_bc, sr_p[0] / sr_p[1]])),
              id="sr.dw-li-bc-vs-sr",
              note=f"predicted: BC shrinks {shrink_bc:.2f}x from alpha = {alpha} to alpha/4 "
                   f"(SGD {fp_p[0] / fp_p[1]:.2f}x; BC stops at the grid's resolution as alpha -> 0), "
                   f"SR {sr_p[0] / sr_p[1]:.3f}x (flat)"),
    ]


# 4.2 Rates of full-precision SGD -------------------------------------------------------------------

def rates(b: Budget) -> list[CheckResult]:
    """SGD's last iterate under alpha/sqrt(t) and 1/(mu(t+1)) (Li et al.'s strongly convex schedule) against its exact
    second-moment curve in 4 windows of t in [T/20, T] (d = 100 and many seeds: SGD is cheap); the log-log slopes
    (about -1/2 and -1) are in the note. SR on a coarse grid, stopped at its floor, is the control."""
    d, sigma = 100, 1.0
    prob = problems.quadratic(d=d, mu=1.0, L=1.0, noise=sigma, seed=b.seed_for("rates"))
    T = b.iters(5000)  # noqa: N806
    rec = np.unique(np.geomspace(T // 20, T, 40).astype(int))
    out = []
    for schedule in ("inv_sqrt", "inv_t"):
        kw = dict(lr=1.0, schedule=schedule, iters=T, record_at=rec, seed=b.seed_for(f"rates/{schedule}"))
        fp = run(prob, "fp", seeds=(4 if schedule == "inv_sqrt" else 12) * b.seeds, **kw)
        sr = run(prob, "sr", step=0.05, seeds=b.seeds, **kw)
        alphas = 1.0 / np.sqrt(np.arange(1, T + 1)) if schedule == "inv_sqrt" else 1.0 / (np.arange(1, T + 1) + 1)
        exact = theory.sgd_excess(prob.w0, prob.w_star, alphas, 1.0, sigma, record_at=rec)
        slope, target = slope_ci(rec, fp.excess), loglog_slope(rec, exact)
        out.append(judge(f"SGD rate under {schedule}: excess / exact curve (4 windows of t)", _src("sgd_excess"),
                         "exact", _curve(windows(rec, fp.excess / exact, 4)[1]), 1.0, Relative(0.05),
                         Control("SR, Delta = 0.05 (at its floor)", _curve(windows(rec, sr.excess / exact, 4)[1]), 1.0),
                         note=f"t in [{rec[0]}, {T}], {fp.excess.shape[0]} seeds, d={d}; log-log slope "
                              f"{slope.value:.3f} "
                              f"[{slope.lo:.3f}, {slope.hi:.3f}] against the exact curve's {target:.3f}",
                         x=rec, y=fp.mean(), slope=slope.value,
                         setting=dict(d=d, sigma=sigma, T=T, seeds=fp.excess.shape[0]),
                         id=f"sr.rate-{'sqrt' if schedule == 'inv_sqrt' else 'inv-t'}"))
    return out


def _li_quadratic(b: Budget) -> list[CheckResult]:
    quad = problems.quadratic(d=20, mu=1.0, L=2.0, noise=1.0, seed=b.seed_for("bounds/quadratic") % 1000)
    return li_bounds(quad, "quadratic", b, delta=0.01, alpha=0.1, T=b.iters(5000))


def _li_logistic(b: Budget) -> list[CheckResult]:
    logi = problems.logistic(n=2000, d=20, reg=0.1, seed=b.seed_for("logistic") % 1000)
    return li_bounds(logi, "logistic", b, delta=0.01, alpha=0.1, T=b.iters(5000))


def _li_mf(b: Budget) -> list[CheckResult]:
    mf = problems.matrix_factorization(rows=30, cols=20, rank=3, batch=8, seed=b.seed_for("mf") % 1000)
    return li_bounds(mf, "matrix factorisation", b, delta=0.01, alpha=0.5, T=b.iters(5000))


# The group in parts (each a function of the budget), so --power can re-run only the parts a statement reaches.
PARTS = (sr_noiseless_floor, sr_noisy_floor, decaying_alpha, averaging, _li_quadratic, _li_logistic, _li_mf,
         stationary_double_well, rates)


def run_group(b: Budget) -> list[CheckResult]:
    """All SR, SGD and bound checks."""
    return [r for part in PARTS for r in part(b)]
