"""DR's stall under the row optimizers of the CTR tables: when it stops under SGD, and where it freezes under Adam
and row-wise Adagrad (docs/theory.md, sections 2.8 and 8)."""

from __future__ import annotations

import numpy as np

from lptsim import theory
from lptsim.quant import quantize
from lptsim.sim import optimizers, problems
from lptsim.verify.core import Absolute, Budget, Control, Estimate, Exactly, Relative, judge, run
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
    below Delta/2; checked at alpha = 0.46, 0.48, 0.52, 0.54 Delta, where a step off by 10% changes the answer."""
    delta, d, T = 0.01, 50, 500  # noqa: N806
    prob = problems.quadratic(d=d, mu=1.0, L=1.0, noise=0.0, seed=b.seed_for("adam"))
    g0 = prob.grad(delta * np.floor(prob.w0 / delta + 0.5)[None])[0]
    alphas = tuple(f * delta for f in (0.46, 0.48, 0.52, 0.54))

    def frozen(method: str) -> Estimate:
        return Estimate.exact(np.array([_never_moved(prob, method, delta, a, T, 1, b.seed_for("adam/run"), True)
                                        for a in alphas]))

    pred = np.array([np.mean(theory.adam_frozen_step(g0, a) < delta / 2) for a in alphas])
    return [
        judge("Adam + DR, exact gradients: fraction never moved at alpha = 0.46, 0.48, 0.52, 0.54 Delta",
              _src("adam_frozen_step"), "exact", frozen("dr"), pred, Exactly(), Control("SR", frozen("sr"), pred),
              note="Adam's step is alpha whatever the gradient: DR freezes entirely iff alpha < Delta/2",
              id="optim.adam-frozen"),
    ]


def adversarial_gradients(T: int, betas: tuple[float, float] = (0.9, 0.999)) -> np.ndarray:  # noqa: N803
    """g_s proportional to (b2/b1)^s: at every t the past gradients are g_(t-k) = g_t (b1/b2)^k, the equality case of
    Cauchy-Schwarz in Adam's step bound, so |m_hat_t/sqrt(v_hat_t)| = c_t exactly."""
    b1, b2 = betas
    return (b2 / b1) ** np.arange(T, dtype=float)


def _adam_steps(grads: np.ndarray) -> np.ndarray:
    """|m_hat/sqrt(v_hat)| of lptsim.sim's Adam (eps = 0) along a gradient sequence, largest over coordinates."""
    opt = optimizers.Adam(eps=0.0)
    opt.start((1, grads.shape[1]))
    return np.array([np.max(np.abs(opt.direction(g[None]))) for g in grads])


def _adam_dr_moves(grads: np.ndarray, alpha: float, delta: float) -> bool:
    """Adam + DR from the grid point 0 along the gradient sequence: does the iterate ever leave it?"""
    opt = optimizers.Adam(eps=0.0)
    opt.start((1, grads.shape[1]))
    w = np.zeros((1, grads.shape[1]))
    for g in grads:
        w = delta * quantize(w - alpha * opt.direction(g[None]), delta, None, "nearest").astype(np.float64)
        if np.any(w != 0):
            return True
    return False


def adam_step_bound(b: Budget) -> list[CheckResult]:
    """|m_hat/sqrt(v_hat)| <= c_t (Cauchy-Schwarz), attained at every t by gradients g_s ~ (b2/b1)^s: the step equals
    c_t there, and DR freezes for T steps iff alpha c_T < Delta/2 (8.2). Checked at alpha = 0.97 and 1.03 times
    Delta/(2 c_T); i.i.d. gradient noise (far from the bound) is the control."""
    T, d, delta = 400, 8, 0.01  # noqa: N806
    steps = np.arange(1, T + 1)
    adversarial = np.outer(adversarial_gradients(T), b.rng("adam_bound/scale").uniform(0.5, 2.0, d))
    noise = b.rng("adam_bound/noise").normal(size=(T, d))
    bound = theory.adam_step_bound(steps)
    attained, iid = _adam_steps(adversarial), _adam_steps(noise)
    c_max = float(np.max(bound))
    alphas = (0.97 * delta / (2 * c_max), 1.03 * delta / (2 * c_max))
    pred = np.array([float(a * c_max < delta / 2) for a in alphas])

    def frozen(grads: np.ndarray) -> Estimate:
        return Estimate.exact(np.array([float(not _adam_dr_moves(grads, a, delta)) for a in alphas]))

    return [
        judge("Adam's step |m_hat/sqrt(v_hat)| / c_t with gradients ~ (b2/b1)^s: the bound attained at every t",
              _src("adam_step_bound"), "upper bound", Estimate.exact(attained / bound), 1.0, Relative(1e-6),
              Control("i.i.d. gradient noise", Estimate.exact(iid / bound), 1.0), id="optim.adam-attained",
              note=f"T={T}: c_t rises from 1 to {c_max:.2f}; i.i.d. noise reaches at most {iid.max():.2f} alpha (the "
                   "folk 'Adam steps are at most alpha' is false, and the bound is far from tight there)",
              x=steps, y=attained, bound=bound, iid=iid,
              setting=dict(d=d, T=T, seeds="deterministic (constructed gradients)")),
        judge("Adam + DR, worst-case gradients: frozen for T steps iff alpha c_T < Delta/2 (alpha = 0.97, 1.03 x "
              "Delta/(2 c_T))", _src("adam_step_bound"), "upper bound", frozen(adversarial), pred, Exactly(),
              Control("i.i.d. gradient noise (DR never moves at either alpha)", frozen(noise), pred),
              id="optim.adam-dr-worst",
              note=f"c_T = {c_max:.3f}: the bound decides DR's freeze to within 3% of alpha; under noise steps stay "
                   "below 1.5 alpha and DR never moves"),
    ]


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
                   f"(the gradient changes by about 1% over the run)", x=rec, y=frozen.value, theory_curve=pred_frozen,
              setting=dict(d=d, delta=delta, sigma=0, alpha=alpha, T=T, mu=mu, seeds="deterministic (exact gradients)"),
              id="optim.adagrad-frozen"),
        judge("Adagrad + DR: distance travelled in 400 updates / prediction", _src("adagrad_dr_travel"),
              "approximation", Estimate.exact(moved.value / travel), 1.0, Relative(0.05),
              Control("SR (keeps travelling after the stall)", Estimate.exact(sr_moved.value / travel), 1.0),
              note="the resulting error: |e(0)| minus this travel, per coordinate", id="optim.adagrad-travel"),
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
                  x=np.arange(d), y=last, lower=bounds[0], upper=bounds[1], id="optim.sgd-stall-time",
                  setting=dict(d=d, delta=delta, sigma=0, alpha=alpha, T=T, seeds="deterministic (exact gradients)"))]


PARTS = (sgd_stall_times, adam_freezes_dr, adam_step_bound, adagrad_stalls_dr)


def run_group(b: Budget) -> list[CheckResult]:
    """All checks of DR's stall under the three row optimizers."""
    return [r for part in PARTS for r in part(b)]
