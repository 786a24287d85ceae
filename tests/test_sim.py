"""Tests of the synthetic problems and the simulator against closed-form behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from lptsim.sim import DivergenceError, problems, simulate

ALL_PROBLEMS = {
    "quadratic": lambda: problems.quadratic(d=8, mu=0.5, L=4.0, noise=0.3, seed=1),
    "quadratic_iso": lambda: problems.quadratic(d=8, mu=2.0, L=2.0, noise=0.3, seed=1),
    "least_squares": lambda: problems.least_squares(n=60, d=6, cond=5.0, batch=4, seed=1),
    "logistic": lambda: problems.logistic(n=300, d=5, reg=1e-2, seed=1, batch=3),
    "matrix_factorization": lambda: problems.matrix_factorization(rows=6, cols=5, rank=2, batch=3, seed=1),
    "two_layer_net": lambda: problems.two_layer_net(n=40, inputs=3, hidden=4, batch=5, seed=1),
    "double_well": lambda: problems.double_well(height=1.0, noise=0.5),
}


@pytest.fixture(params=sorted(ALL_PROBLEMS))
def prob(request):
    return ALL_PROBLEMS[request.param]()


def test_gradient_matches_finite_difference(prob):
    rng = np.random.default_rng(0)
    W = prob.w_star + rng.normal(scale=0.3, size=(3, prob.d))
    g = prob.grad(W)
    h = 1e-6
    fd = np.empty_like(W)
    for j in range(prob.d):
        e = np.zeros(prob.d)
        e[j] = h
        fd[:, j] = (prob.F(W + e) - prob.F(W - e)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7)


def test_stochastic_gradient_is_unbiased(prob):
    """Mean of n draws equals the gradient within 4 standard errors, coordinate by coordinate."""
    rng = np.random.default_rng(1)
    w = prob.w_star + np.random.default_rng(2).normal(scale=0.3, size=prob.d)
    n = 20_000
    draws = prob.stoch_grad(np.repeat(w[None], n, axis=0), rng)
    mean, se = draws.mean(axis=0), draws.std(axis=0) / np.sqrt(n)
    exact = prob.grad(w[None])[0]
    assert np.all(np.abs(mean - exact) <= 4 * se + 1e-12)


def test_optimum_is_stationary_with_known_value(prob):
    assert np.linalg.norm(prob.grad(prob.w_star[None])[0]) < 1e-9
    assert abs(prob.F(prob.w_star[None])[0] - prob.f_star) < 1e-12


def test_logistic_optimum_to_1e10():
    prob = problems.logistic(n=2000, d=20, reg=1e-2, seed=0)
    assert np.linalg.norm(prob.grad(prob.w_star[None])[0]) < 1e-10
    # F* is a minimum: random nearby points are higher.
    W = prob.w_star + 1e-3 * np.random.default_rng(0).normal(size=(20, 20))
    assert np.all(prob.F(W) > prob.f_star)


def test_every_constant_says_how_it_was_obtained(prob):
    c = prob.constants
    for name in ("L", "mu", "G", "D", "noise"):
        assert name in c.how and c.how[name]


@pytest.mark.parametrize("make, match", [
    (lambda: problems.quadratic(d=0, mu=1, L=2, noise=0), "d"),
    (lambda: problems.quadratic(d=3, mu=2, L=1, noise=0), "L must be >= mu"),
    (lambda: problems.quadratic(d=3, mu=-1, L=1, noise=0), "mu"),
    (lambda: problems.quadratic(d=3, mu=1, L=1, noise=-0.1), "noise"),
    (lambda: problems.least_squares(n=3, d=5), "n must be >= d"),
    (lambda: problems.logistic(n=10, d=2, reg=0), "reg"),
])
def test_problem_parameters_are_validated(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_fp_contracts_at_one_minus_alpha_mu():
    prob = problems.quadratic(d=10, mu=2.0, L=2.0, noise=0.0, seed=0)
    lr = 0.1
    tr = simulate(prob, "fp", lr=lr, iters=50, seeds=2, exact_grad=True, record_at=range(1, 51))
    d0 = np.linalg.norm(prob.w0 - prob.w_star)
    np.testing.assert_allclose(tr.dist[0], d0 * (1 - lr * 2.0) ** tr.iters, rtol=1e-10)
    aniso = problems.quadratic(d=10, mu=0.5, L=4.0, noise=0.0, seed=0)
    tr = simulate(aniso, "fp", lr=0.2, iters=50, seeds=1, exact_grad=True, record_at=range(1, 51))
    d0 = np.linalg.norm(aniso.w0 - aniso.w_star)
    assert np.all(tr.dist[0] <= d0 * (1 - 0.2 * 0.5) ** tr.iters * (1 + 1e-10))


def test_dr_stalls_at_step_over_two_alpha_mu():
    """DR with exact gradients on an isotropic quadratic stops within Delta of Delta/(2 alpha mu)."""
    mu, lr, delta = 1.0, 0.05, 0.01
    prob = problems.quadratic(d=50, mu=mu, L=mu, noise=0.0, seed=3)
    tr = simulate(prob, "dr", step=delta, lr=lr, iters=3000, seeds=1, exact_grad=True)
    per_coord = np.abs(tr.final_weights[0] - prob.w_star)
    stall = delta / (2 * lr * mu)
    moved = np.abs(prob.w_star) > stall  # coordinates that started outside the stall radius
    assert np.all(per_coord[moved] <= stall + 1e-9)
    assert np.all(per_coord[moved] >= stall - delta - 1e-9)
    assert tr.unchanged[0, -1] == 1.0  # stalled: no coordinate moves any more


def test_one_sr_step_is_unbiased():
    prob = problems.quadratic(d=20, mu=1.0, L=5.0, noise=0.0, seed=4)
    delta, lr, n = 0.1, 0.03, 40_000
    sr = simulate(prob, "sr", step=delta, lr=lr, iters=1, seeds=n, exact_grad=True, seed=5)
    w0 = np.zeros(prob.d)  # a grid point, so both start there
    target = w0 - lr * prob.grad(w0[None])[0]
    p = target / delta - np.floor(target / delta)
    se = delta * np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(sr.final_weights.mean(axis=0) - target) <= 4 * se + 1e-12)


def test_bc_with_stochastic_forward_converges_to_optimum():
    """Isotropic quadratic, alpha_t = 1/(mu (t+1)), gradient at SR(w) = mu (w - w*) + mu xi_t.

    With e_k the error after k steps: (k+1) e_k = e_0 - sum_{t<=k} xi_t, and E||xi||^2 <= d Delta^2/4,
    so E||e_T||^2 <= (||e_0||^2 + T d Delta^2/4) / (T+1)^2.
    """
    mu, delta, T, seeds = 1.0, 0.2, 4000, 64
    prob = problems.quadratic(d=10, mu=mu, L=mu, noise=0.0, seed=6)
    tr = simulate(prob, "bc", step=delta, lr=1.0, schedule="inv_t", iters=T, seeds=seeds, exact_grad=True,
                  forward_rounding="stochastic", record_at=[T])
    e0 = np.sum((prob.w0 - prob.w_star) ** 2)
    bound = (e0 + T * prob.d * delta**2 / 4) / (T + 1) ** 2
    mean_sq = np.mean(tr.dist[:, -1] ** 2)
    assert mean_sq <= bound * (1 + 4 * np.sqrt(2 / seeds))
    assert np.sqrt(mean_sq) < delta / 10  # far below the grid: it converges, not just to the grid


@pytest.mark.parametrize("factor", [10.0, 0.1])
def test_alpt_moves_a_bad_step_toward_a_better_one(factor):
    prob = problems.quadratic(d=30, mu=1.0, L=1.0, noise=0.05, seed=7)
    bits, good = 4, 1.0 / 7  # w* in [-1, 1]: a step of 1/qmax just covers it
    init = good * factor
    common = dict(lr=0.1, iters=3000, seeds=8, bits=bits, seed=1)
    alpt = simulate(prob, "alpt", step=init, step_lr=0.01, **common)
    fixed = simulate(prob, "sr", step=init, **common)
    learned = alpt.step[:, -1]
    assert np.all(np.abs(np.log(learned / good)) < 0.75 * np.abs(np.log(factor)))  # a quarter of the way, at least
    assert alpt.mean()[-1] < fixed.mean()[-1]


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "qat"}, "method"),
    ({"method": "sr", "schedule": "cosine"}, "schedule"),
    ({"method": "sr", "lr": 0.0}, "lr"),
    ({"method": "sr", "lr": -1.0}, "lr"),
    ({"method": "sr", "step": 0.0}, "step"),
    ({"method": "sr", "step": -0.1}, "step"),
    ({"method": "sr", "bits": 17}, "bits"),
    ({"method": "sr", "bits": 0}, "bits"),
    ({"method": "alpt", "bits": None}, "bits"),
    ({"method": "sr", "iters": 0}, "iters"),
    ({"method": "sr", "seeds": 0}, "seeds"),
])
def test_bad_simulate_parameters(kwargs, match):
    prob = problems.quadratic(d=4, mu=1.0, L=2.0, noise=0.1)
    args = {"step": 0.1, "lr": 0.1, "iters": 10, "seeds": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        simulate(prob, **args)


def test_inv_t_needs_strong_convexity():
    with pytest.raises(ValueError, match="mu"):
        simulate(problems.matrix_factorization(), "fp", schedule="inv_t", iters=5)


def test_divergence_is_reported_with_its_iteration():
    prob = problems.quadratic(d=4, mu=1.0, L=1.0, noise=0.0)
    with pytest.raises(DivergenceError) as info:
        simulate(prob, "fp", lr=1e3, iters=1000, seeds=2, exact_grad=True)
    # |1 - 1000| ^ t overflows float64 (1e308) after about 103 iterations.
    assert 90 <= info.value.iteration <= 110


def test_same_seed_same_trace_and_records():
    prob = problems.logistic(n=200, d=5, seed=2)
    a = simulate(prob, "sr", step=0.05, lr=0.1, iters=200, seeds=4, seed=9)
    b = simulate(prob, "sr", step=0.05, lr=0.1, iters=200, seeds=4, seed=9)
    c = simulate(prob, "sr", step=0.05, lr=0.1, iters=200, seeds=4, seed=10)
    assert np.array_equal(a.excess, b.excess) and not np.array_equal(a.excess, c.excess)
    assert a.iters[0] == 1 and a.iters[-1] == 200 and a.excess.shape == (4, a.iters.size)


def test_lpt_weights_stay_on_the_grid():
    prob = problems.quadratic(d=6, mu=1.0, L=3.0, noise=0.2)
    for method in ("dr", "sr"):
        tr = simulate(prob, method, step=0.05, lr=0.1, iters=100, seeds=3, bits=6)
        codes = tr.final_weights / 0.05
        assert np.allclose(codes, np.round(codes), atol=1e-9)
        assert codes.min() >= -32 and codes.max() <= 31


def test_grid_values_fast_path_equals_quantize_times_step():
    from lptsim.quant import QuantSpec, quantize
    from lptsim.quant.rounding import grid_values

    x = np.random.default_rng(0).normal(size=(7, 33))
    steps = np.random.default_rng(1).uniform(0.05, 0.2, 7)
    for rounding in ("nearest", "stochastic"):
        for spec in (None, QuantSpec(4)):
            want = quantize(x, steps[:, None], spec, rounding, seed=9, offset=123) * steps[:, None]
            np.testing.assert_array_equal(grid_values(x, steps, spec, rounding, 9, 123), want)
    x[2, 3] = np.nan
    assert np.isnan(grid_values(x, steps, None, "stochastic", 9, 0)[2, 3])


def test_lsq_one_equals_lsq_step_grad():
    from lptsim.quant import QuantSpec, lsq_step_grad, quantize
    from lptsim.quant.lsq import lsq_one

    spec, step = QuantSpec(3), 0.3
    x = np.random.default_rng(2).uniform(-2, 2, 5000)
    codes = quantize(x, step, spec, "nearest")
    want = lsq_step_grad(x, step, spec, codes=codes)
    got = np.array([lsq_one(v, float(c), float(spec.qmin), float(spec.qmax)) for v, c in zip(x / step, codes,
                                                                                               strict=True)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_fused_alpt_step_equals_the_unfused_algorithm():
    """The fused kernel against Algorithm 1 written with quantize and lsq_step_grad (step by step, same draws)."""
    from lptsim.quant import QuantSpec, lsq_step_grad, quantize
    from lptsim.sim.methods import AdaptiveLowPrecision

    prob = problems.quadratic(d=12, mu=1.0, L=3.0, noise=0.3, seed=4)
    spec = QuantSpec(4)
    rule = AdaptiveLowPrecision(step=0.2, spec=spec, seed=5, step_lr=0.05)
    rng = np.random.default_rng(0)
    rule.start(rng.normal(size=(3, 12)))
    w, step, counter = rule.weights.copy(), rule.grid_step.copy(), 0
    for _ in range(25):
        sample = prob.draw(rng, 3)
        grad_at = lambda z, s=sample: prob.sample_grad(z, s)  # noqa: E731
        w_half = w - 0.1 * grad_at(w)
        codes = quantize(w_half, step, spec, "nearest")
        g_hat = grad_at(codes * step)
        sg = np.sum(g_hat * lsq_step_grad(w_half, step, spec, codes=codes), axis=1, keepdims=True) / np.sqrt(12 * 7)
        step = np.maximum(step - 0.05 * sg, 1e-8)
        w = quantize(w_half, step, spec, "stochastic", seed=5, offset=counter) * step
        counter += w.size
        rule.step(grad_at, 0.1)
        np.testing.assert_allclose(rule.grid_step, step, rtol=1e-12)
        np.testing.assert_allclose(rule.weights, w, rtol=1e-12)


def test_adam_direction_matches_torch_optim():
    import torch

    from lptsim.sim.optimizers import Adam

    g = np.random.default_rng(3).normal(size=(30, 2, 5))
    opt = Adam(betas=(0.9, 0.99), eps=1e-6)
    opt.start((2, 5))
    w = np.zeros((2, 5))
    p = torch.zeros(2, 5, dtype=torch.float64, requires_grad=True)
    ref = torch.optim.Adam([p], lr=0.01, betas=(0.9, 0.99), eps=1e-6)
    for gt in g:
        w = w - 0.01 * opt.direction(gt)
        p.grad = torch.from_numpy(gt)
        ref.step()
    np.testing.assert_allclose(w, p.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_row_adagrad_accumulates_the_mean_square_of_each_row():
    from lptsim.sim.optimizers import RowAdagrad

    opt = RowAdagrad(eps=0.0, row_size=3)
    opt.start((1, 6))
    g1, g2 = np.array([[1.0, 2.0, 2.0, 0.0, 0.0, 3.0]]), np.array([[2.0, 0.0, 1.0, 3.0, 0.0, 0.0]])
    opt.direction(g1)
    u = opt.direction(g2)
    acc = np.array([(1 + 4 + 4) / 3 + (4 + 0 + 1) / 3, (0 + 0 + 9) / 3 + (9 + 0 + 0) / 3])
    np.testing.assert_allclose(u, g2 / np.repeat(np.sqrt(acc), 3)[None])
    with pytest.raises(ValueError, match="row_size must divide"):
        RowAdagrad(row_size=4).start((1, 6))


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad", "adam"])
def test_every_rounding_runs_under_every_optimizer(optimizer):
    prob = problems.quadratic(d=8, mu=1.0, L=2.0, noise=0.2, seed=0)
    for method in ("fp", "dr", "sr", "bc", "alpt"):
        tr = simulate(prob, method, step=0.05, lr=0.02, iters=200, seeds=3, bits=6, optimizer=optimizer)
        assert np.isfinite(tr.excess).all() and tr.params["optimizer"] == optimizer
    with pytest.raises(ValueError, match="optimizer must be one of"):
        simulate(prob, "fp", optimizer="rmsprop")


def test_quadratic_noise_has_the_requested_standard_deviation():
    """noise is a standard deviation (a noise of 0.3 has variance 0.09): 4-sigma bound on the sample variance."""
    prob = problems.quadratic(d=5, mu=1.0, L=1.0, noise=0.3, seed=0)
    w = np.zeros((40_000, 5))
    g = prob.stoch_grad(w, np.random.default_rng(1)) - prob.grad(w)
    var = g.var()
    assert abs(var - 0.09) <= 4 * 0.09 * np.sqrt(2 / g.size)


def test_excess_avg_is_the_loss_of_the_running_mean_of_the_iterates():
    prob = problems.quadratic(d=6, mu=1.0, L=2.0, noise=0.5, seed=1)
    tr = simulate(prob, "sr", step=0.05, lr=0.1, iters=40, seeds=3, record_at=np.arange(1, 41), keep_weights=True)
    mean_w = np.cumsum(tr.weights, axis=1) / np.arange(1, 41)[None, :, None]
    np.testing.assert_allclose(tr.excess_avg, prob.F(mean_w.reshape(-1, 6)).reshape(3, 40) - prob.f_star)


@pytest.mark.parametrize("method", ["dr", "sr", "alpt"])
def test_low_precision_runs_start_from_the_start_rounded_to_nearest(method):
    from lptsim.quant import QuantSpec
    from lptsim.sim.methods import METHODS

    w0 = np.random.default_rng(2).uniform(-1, 1, (4, 32))
    rule = METHODS[method](step=0.1, spec=QuantSpec(6), seed=3)
    rule.start(w0)
    np.testing.assert_allclose(rule.weights, 0.1 * np.floor(w0 / 0.1 + 0.5), atol=1e-12)
