"""DR's stall under the row optimizers of the CTR tables: when it stops under SGD, and where it freezes under Adam
and row-wise Adagrad (docs/theory.md, sections 2.8 and 8)."""

from __future__ import annotations

import numpy as np

from lptsim import theory
from lptsim.sim import optimizers, problems
from lptsim.verify.core import Absolute, AtMost, Budget, Control, Estimate, Exactly, Relative, judge, run
from lptsim.verify.dr_checks import _src
from lptsim.verify.report import CheckResult


def _never_moved(prob: problems.Problem, method: str, delta: float, alpha: float, T: int, seeds: int, seed: int,  # noqa: N803
                 exact: bool) -> float:
    tr = run(prob, method, step=delta, lr=alpha, iters=T, seeds=seeds, exact_grad=exact,
             record_at=np.arange(1, T + 1), keep_weights=True, optimizer="adam", seed=seed)
    start = delta * np.floor(np.asarray(prob.w0) / delta + 0.5)
    return float(np.mean(np.all(tr.weights == start, axis=1)))  # at its start after every step


def adam_freezes_dr(b: Budget) -> list[CheckResult]:
    """Exact gradients: Adam's step at a frozen point is alpha |g|/(|g| + eps), so DR freezes for good iff that is
    below Delta/2. With noise, alpha c_T < Delta/2 (Adam's step bound) freezes it for any gradients."""
    delta, d, T = 0.01, 50, 500  # noqa: N806
    prob = problems.quadratic(d=d, mu=1.0, L=1.0, noise=0.0, seed=b.seed_for("adam"))
    g0 = prob.grad(delta * np.floor(prob.w0 / delta + 0.5)[None])[0]
    alphas = (0.45 * delta, 0.55 * delta)

    def frozen(method: str) -> Estimate:
        return Estimate.exact(np.array([_never_moved(prob, method, delta, a, T, 1, b.seed_for("adam/run"), True)
                                        for a in alphas]))

    pred = np.array([np.mean(theory.adam_frozen_step(g0, a) < delta / 2) for a in alphas])
    noisy = problems.quadratic(d=d, mu=1.0, L=1.0, noise=1.0, seed=b.seed_for("adam"))
    c_max = float(np.max(theory.adam_step_bound(np.arange(1, T + 1))))
    safe = delta / (2.05 * c_max)
    never = Estimate.exact(_never_moved(noisy, "dr", delta, safe, T, b.seeds, b.seed_for("adam/noisy"), False))
    moving = Estimate.exact(_never_moved(noisy, "dr", delta, 0.6 * delta, T, b.seeds, b.seed_for("adam/noisy"),
                                         False))
    return [
        judge("Adam + DR, exact gradients: fraction never moved at alpha = 0.45, 0.55 Delta",
              _src("adam_frozen_step"), "exact", frozen("dr"), pred, Exactly(), Control("SR", frozen("sr"), pred),
              note="Adam's step is alpha whatever the gradient: DR freezes entirely iff alpha < Delta/2"),
        judge("Adam + DR with noise: never moves when alpha c_T < Delta/2 (fraction never moved)",
              _src("adam_step_bound"), "upper bound", never, 1.0, Exactly(),
              Control("alpha = 0.6 Delta", moving, 1.0),
              note=f"alpha = Delta/(2.05 c_T), c_T = {c_max:.2f}; {b.seeds} seeds x {d} coordinates x {T} steps"),
    ]


def adam_step_bound(b: Budget) -> list[CheckResult]:
    """|m_hat/sqrt(v_hat)| <= c_t for every t (Cauchy-Schwarz); the folk 'Adam steps are at most alpha' is the
    control and fails under noise."""
    T, d = 3000, 50  # noqa: N806
    prob = problems.quadratic(d=d, mu=1.0, L=1.0, noise=1.0, seed=b.seed_for("adam_bound"))
    rng = b.rng("adam_bound/noise")
    opt = optimizers.Adam(eps=0.0)
    w = np.zeros((b.seeds, d))
    opt.start(w.shape)
    worst = np.array([np.max(np.abs(opt.direction(prob.stoch_grad(w, rng)))) for _ in range(T)])
    bound = theory.adam_step_bound(np.arange(1, T + 1))
    return [judge("Adam's step |m_hat/sqrt(v_hat)| <= c_t at every t (largest over coordinates)",
                  _src("adam_step_bound"), "upper bound", Estimate.exact(worst), bound, AtMost(),
                  Control("c_t = 1 (Adam steps at most alpha)", Estimate.exact(worst), np.ones(T)),
                  note=f"gradients at a fixed point, noise 1; largest step {worst.max():.3f} alpha, bound up to "
                       f"{bound.max():.2f} alpha", x=np.arange(1, T + 1), y=worst, bound=bound)]


def adagrad_stalls_dr(b: Budget) -> list[CheckResult]:
    """Row-wise Adagrad's step decays like alpha/sqrt(n): DR stops moving coordinate i after
    N_i = (2 alpha |g_i| / (Delta rms(g)))^2 updates. Checked where its assumption holds (the start far
    from w*: a nearly constant gradient)."""
    d, mu, alpha, delta, T = 100, 0.01, 0.05, 0.01, 400  # noqa: N806
    w_star = 100 + b.rng("adagrad").uniform(-50, 50, d)
    prob = problems.quadratic(d=d, mu=mu, L=mu, noise=0.0, w_star=w_star)
    rec = np.arange(1, T + 1)
    g0 = mu * (delta * np.floor(prob.w0 / delta + 0.5) - w_star)

    def run_(method: str) -> tuple[Estimate, Estimate]:
        tr = run(prob, method, step=delta, lr=alpha, iters=T, seeds=1, exact_grad=True, record_at=rec,
                 optimizer="adagrad", seed=b.seed_for("adagrad/run"))
        start = delta * np.floor(prob.w0 / delta + 0.5)
        return Estimate.exact(tr.unchanged[0]), Estimate.exact(np.abs(tr.final_weights[0] - start).sum())

    stall = theory.adagrad_dr_stall_updates(g0, alpha, delta)
    pred_frozen = np.array([np.mean(stall < n) for n in rec])
    travel = float(np.sum(theory.adagrad_dr_travel(prob.w0, w_star, alpha, delta, mu, T)))
    (frozen, moved), (sr_frozen, sr_moved) = run_("dr"), run_("sr")
    return [
        judge("Adagrad + DR: fraction of coordinates frozen at each update n <= 400", _src("adagrad_dr_stall_updates"),
              "approximation", frozen, pred_frozen, Absolute(0.1), Control("SR", sr_frozen, pred_frozen),
              note=f"alpha={alpha}, Delta={delta}: stall after {np.min(stall):.0f} to {np.max(stall):.0f} updates "
                   f"(the gradient changes by about 1% over the run)", x=rec, y=frozen.value, theory_curve=pred_frozen),
        judge("Adagrad + DR: distance travelled in 400 updates / prediction", _src("adagrad_dr_travel"),
              "approximation", Estimate.exact(moved.value / travel), 1.0, Relative(0.05),
              Control("SR (keeps travelling after the stall)", Estimate.exact(sr_moved.value / travel), 1.0),
              note="the resulting error: |e(0)| minus this travel, per coordinate"),
    ]


def last_moves(trace: object, start: np.ndarray) -> np.ndarray:
    """Per coordinate of seed 0, the last step at which it moved (0 if never); needs records at every step."""
    w = np.vstack([start[None], trace.weights[0]])
    moved = w[1:] != w[:-1]
    steps = np.arange(1, moved.shape[0] + 1)[:, None]
    return np.max(np.where(moved, steps, 0), axis=0)


def sgd_stall_times(b: Budget) -> list[CheckResult]:
    """SGD + DR, exact gradients: each coordinate's last move lies between the steps the contraction envelopes give."""
    mu, delta, alpha, d, T = 1.0, 0.01, 0.02, 50, 800  # noqa: N806
    prob = problems.quadratic(d=d, mu=mu, L=mu, noise=0.0, seed=b.seed_for("sgd_stall"))
    starts = b.rng("sgd_stall/starts").uniform(-3, 3, (1, d))
    start = delta * np.floor(starts[0] / delta + 0.5)
    bounds = theory.dr_stall_time_bounds(starts[0], prob.w_star, delta, alpha, mu, T=T)

    def inside(method: str) -> tuple[Estimate, np.ndarray]:
        tr = run(prob, method, step=delta, lr=alpha, iters=T, seeds=1, exact_grad=True, w0=starts,
                 record_at=np.arange(1, T + 1), keep_weights=True, seed=b.seed_for("sgd_stall/run"))
        last = last_moves(tr, start)
        return Estimate.exact(float(np.mean((bounds[0] <= last) & (last <= bounds[1])))), last

    est, last = inside("dr")
    ctrl, _ = inside("sr")
    return [judge("SGD + DR: last move of each coordinate within its predicted interval (fraction)",
                  _src("dr_stall_time_bounds"), "exact", est, 1.0, Exactly(), Control("SR", ctrl, 1.0),
                  note=f"alpha={alpha}, Delta={delta}: stall times {last.min()}-{last.max()}, intervals "
                       f"{np.mean(bounds[1] / np.maximum(bounds[0], 1)):.2f}x wide on average",
                  x=np.arange(d), y=last, lower=bounds[0], upper=bounds[1])]


def run_group(b: Budget) -> list[CheckResult]:
    """All checks of DR's stall under the three row optimizers."""
    return [*sgd_stall_times(b), *adam_freezes_dr(b), *adam_step_bound(b), *adagrad_stalls_dr(b)]
