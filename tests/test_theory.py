"""lptsim.theory against independent references: closed forms, direct simulation, brute-force Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lptsim import theory
from lptsim.sim import problems, simulate
from lptsim.theory.registry import KINDS, STATEMENTS


def test_every_statement_says_what_kind_it_is_where_it_comes_from_and_when_it_holds():
    assert len(STATEMENTS) >= 20
    for name, st in STATEMENTS.items():
        assert st.kind in KINDS and st.source and st.summary, name
        assert st.source.startswith(("derived here", "Li et al.", "Esser")), (name, st.source)
        assert st.assumptions, name
        assert getattr(theory, name).statement is st


def _old_dr_floor(w0: np.ndarray, w_star: np.ndarray, delta: float, alpha_T: float, mu: float) -> float:  # noqa: N803
    """lptsim 0.1's dr_bias_floor_isotropic, kept here only to show it is false: it used the FINAL stall radius."""
    r = max(delta / (2 * alpha_T * mu) - delta, 0.0)
    return float(mu / 2 * np.sum(np.minimum(np.abs(w0 - w_star), r) ** 2))


def test_old_dr_floor_is_refuted_and_the_corrected_bound_holds_on_its_counterexample():
    """Exact gradients, alpha_t = 0.5/sqrt(t), Delta = 0.01, d = 5 (the issue's counterexample)."""
    mu, delta = 1.0, 0.01
    prob = problems.quadratic(d=5, mu=mu, L=mu, noise=0.0, seed=0)
    for T, claimed in ((1000, 0.225), (20_000, 1.23)):  # noqa: N806
        tr = simulate(prob, "dr", step=delta, lr=0.5, schedule="inv_sqrt", iters=T, seeds=1, exact_grad=True,
                      record_at=[T])
        measured = tr.excess[0, -1]
        assert measured == pytest.approx(0.0016, abs=5e-5)
        old = _old_dr_floor(prob.w0, prob.w_star, delta, 0.5 / math.sqrt(T), mu)
        assert old == pytest.approx(claimed, rel=0.01) and old > 100 * measured  # the old statement is false
        new = theory.dr_excess_lower_bound(prob.w0, prob.w_star, delta, 0.5 / np.sqrt(np.arange(1, T + 1)), mu)
        assert new <= measured <= 1.5 * new  # true, and tight within 1.5x here


def test_dr_lower_bound_is_attained_on_the_constructed_worst_case():
    mu, delta, alpha, d = 1.0, 0.01, 0.05, 12
    r = delta / (2 * alpha * mu)
    w_star = -(r + 1e-6 * delta + delta * np.arange(d))
    prob = problems.quadratic(d=d, mu=mu, L=mu, noise=0.0, w_star=w_star)
    tr = simulate(prob, "dr", step=delta, lr=alpha, iters=2000, seeds=1, exact_grad=True, record_at=[2000])
    bound = theory.dr_excess_lower_bound(prob.w0, w_star, delta, alpha, mu, T=2000)
    assert tr.excess[0, -1] == pytest.approx(bound, rel=1e-6)
    assert bound == pytest.approx(mu / 2 * d * (r - delta + 1e-6 * delta) ** 2, rel=1e-6)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.25])
def test_dr_final_error_is_exactly_where_dr_stops(alpha):
    mu, delta = 1.0, 0.013
    prob = problems.quadratic(d=50, mu=mu, L=mu, noise=0.0, seed=3)
    starts = np.random.default_rng(1).uniform(-2, 2, (3, 50))
    T = int(10 / alpha) + 100  # noqa: N806
    tr = simulate(prob, "dr", step=delta, lr=alpha, iters=T, seeds=3, exact_grad=True, w0=starts, record_at=[T])
    np.testing.assert_allclose(tr.final_weights - prob.w_star, theory.dr_final_error(starts, prob.w_star, delta,
                                                                                     alpha, mu), atol=1e-12)
    assert np.all(np.abs(tr.final_weights - prob.w_star) < theory.dr_stall_distance(delta, alpha, mu))


def test_dr_final_error_refuses_alpha_mu_above_one_half():
    with pytest.raises(ValueError, match="alpha mu <= 1/2"):
        theory.dr_final_error(np.zeros(2), np.ones(2), 0.1, 0.6, 1.0)


def test_dr_escape_probability_matches_brute_force_monte_carlo():
    rng = np.random.default_rng(0)
    e, alpha, mu, sigma, delta, n = np.array([-0.4, 0.0, 0.1, 0.7]), 0.03, 2.0, 1.5, 0.05, 200_000
    g = mu * e[:, None] + sigma * rng.standard_normal((e.size, n))
    measured = np.mean(np.abs(alpha * g) >= delta / 2, axis=1)
    p = theory.dr_escape_probability(e, alpha, mu, sigma, delta)
    assert np.all(np.abs(measured - p) <= 4 * np.sqrt(p * (1 - p) / n))


def test_dr_upper_bounds_hold_on_simulation_with_and_without_noise():
    for sigma in (0.0, 1.0):
        prob = problems.quadratic(d=30, mu=1.0, L=1.0, noise=sigma, seed=2)
        rec = np.unique(np.geomspace(1, 500, 20).astype(int))
        tr = simulate(prob, "dr", step=0.05, lr=0.1, iters=500, seeds=200, exact_grad=sigma == 0, record_at=rec)
        bound = theory.dr_excess_upper_bound(prob.w0, prob.w_star, 0.05, 0.1, 1.0, sigma, T=500, record_at=rec)
        se = tr.excess.std(axis=0) / np.sqrt(200)
        assert np.all(tr.mean() <= bound + 4 * se + 1e-12)


def test_dr_noisy_lower_bound_holds_in_regime_a_and_is_zero_when_noise_dithers():
    prob = problems.quadratic(d=20, mu=1.0, L=1.0, noise=1.0, seed=7)
    lb = theory.dr_noisy_excess_lower_bound(prob.w0, prob.w_star, 0.05, 0.005, 1.0, 1.0, 2000)
    tr = simulate(prob, "dr", step=0.05, lr=0.005, iters=2000, seeds=50, record_at=[2000])
    assert 0.8 * prob.F(prob.w0[None])[0] <= lb <= tr.mean()[-1]
    assert theory.dr_noisy_excess_lower_bound(prob.w0, prob.w_star, 0.05, 0.1, 1.0, 1.0, 2000) == 0.0


def test_frac_variance_against_monte_carlo_and_its_limits():
    rng = np.random.default_rng(0)
    for m, s in ((0.0, 0.05), (0.3, 0.2), (2.7, 0.6), (-1.2, 1.5)):
        x = m + s * rng.standard_normal(400_000)
        p = x - np.floor(x)
        mc = np.mean(p * (1 - p))
        assert theory.frac_variance(m, s) == pytest.approx(mc, abs=4 * np.std(p * (1 - p)) / np.sqrt(x.size))
    assert theory.frac_variance(0.25, 0.0) == pytest.approx(0.1875)
    assert theory.frac_variance(0.0, 10.0) == pytest.approx(1 / 6)
    small = 1e-3 * math.sqrt(2 / math.pi) - 1e-6  # E|x| - E x^2 for x ~ N(0, 1e-6)
    assert theory.frac_variance(0.0, 1e-3) == pytest.approx(small, rel=1e-6)


def test_sr_meanfield_reduces_to_the_regime_a_floor_and_the_regime_b_dither_formula():
    w_star = np.random.default_rng(0).uniform(-1, 1, 40)
    sigma, mu, delta = 1.0, 1.0, 0.02
    a_small, a_big = delta / (20 * sigma), 3 * delta / sigma
    floor = theory.sr_small_update_floor(40, delta, theory.expected_abs_gaussian(sigma))
    mf_a = theory.sr_meanfield_excess(w_star, w_star, delta, a_small, mu, sigma, T=int(30 / a_small))[0]
    assert mf_a == pytest.approx(floor, rel=0.03)
    mf_b = theory.sr_meanfield_excess(w_star, w_star, delta, a_big, mu, sigma, T=int(30 / a_big))[0]
    assert mf_b == pytest.approx(theory.sr_dither_excess(40, delta, a_big, mu, sigma), rel=0.01)
    # With no grid at all, the mean field is exactly SGD.
    assert theory.sr_meanfield_excess(w_star, w_star, 1e-9, 0.1, mu, sigma, T=300)[0] == pytest.approx(
        theory.sgd_excess(w_star, w_star, 0.1, mu, sigma, T=300)[0], rel=1e-6)


def test_sr_upper_bound_dominates_the_mean_field_and_is_25_percent_above_the_regime_a_floor():
    w_star = np.random.default_rng(1).uniform(-1, 1, 30)
    for alpha in (0.002, 0.02, 0.2):
        kw = dict(delta=0.05, alphas=alpha, mu=1.0, sigma=1.0, T=int(20 / alpha))
        assert theory.sr_excess_upper_bound(np.zeros(30), w_star, **kw)[0] >= theory.sr_meanfield_excess(
            np.zeros(30), w_star, **kw)[0]
    stationary = theory.sr_excess_upper_bound(w_star, w_star, 0.05, 0.0005, 1.0, 1.0, T=40_000)[0]
    floor = theory.sr_small_update_floor(30, 0.05, theory.expected_abs_gaussian(1.0))
    assert stationary / floor == pytest.approx(1 / math.sqrt(2 / math.pi), rel=0.05)


def test_sr_averaged_excess_matches_a_direct_linear_recursion():
    """e_{t+1} = (1 - a) e_t + eta_t with white noise of variance q = Delta alpha E|g|: 4000 simulated paths."""
    rng = np.random.default_rng(0)
    alpha, mu, sigma, delta, T, paths, w_star = 0.01, 1.0, 1.0, 0.1, 3000, 4000, 0.73  # noqa: N806
    q = delta * alpha * sigma * math.sqrt(2 / math.pi)
    e, total = np.full(paths, -w_star), np.zeros(paths)  # the start 0 is on every grid
    for _ in range(T):
        e = (1 - alpha * mu) * e + math.sqrt(q) * rng.standard_normal(paths)
        total += e
    loss = mu / 2 * (total / T) ** 2
    pred = theory.sr_averaged_excess(np.zeros(1), np.array([w_star]), delta, alpha, mu, sigma, T)[0]
    assert pred == pytest.approx(loss.mean(), abs=4 * loss.std() / math.sqrt(paths))


def test_sgd_excess_matches_the_closed_form_under_one_over_t():
    """alpha_t = 1/(mu (t+1)): E e_T^2 = (e_0^2 + T sigma^2/mu^2) / (T+1)^2 exactly."""
    mu, sigma, T, e0 = 2.0, 0.7, 500, np.array([1.5, -0.3])  # noqa: N806
    alphas = 1 / (mu * (np.arange(1, T + 1) + 1))
    got = theory.sgd_excess(e0, np.zeros(2), alphas, mu, sigma)[0]
    assert got == pytest.approx(mu / 2 * np.sum((e0**2 + T * sigma**2 / mu**2) / (T + 1) ** 2), rel=1e-12)


def test_sgd_stationary_chain_reproduces_the_exact_quadratic_variance():
    alpha, sigma, c = 0.05, 1.3, 3.0
    var = theory.sgd_stationary_expectation(lambda w: c * (w - 0.2), alpha, sigma, (-1.5, 2.0),
                                            lambda w: (w - 0.2) ** 2)
    assert var == pytest.approx(theory.sgd_stationary_variance(alpha, sigma, c), rel=0.01)


def test_exact_sr_chain_reproduces_the_noiseless_two_point_law():
    mu, delta, w_star = 1.0, 0.1, 0.537  # p = 0.37 between grid points 5 and 6
    grid, pi = theory.sr_stationary(lambda w: mu * (w - w_star), delta, 0.3, 0.0, (0.0, 1.0))
    k = int(np.floor(w_star / delta))
    np.testing.assert_allclose(pi[[k, k + 1]], [0.63, 0.37], atol=1e-9)
    excess = theory.sr_stationary_expectation(lambda w: mu * (w - w_star), delta, 0.3, 0.0, (0.0, 1.0),
                                              lambda w: mu / 2 * (w - w_star) ** 2)
    assert excess == pytest.approx(theory.sr_noiseless_floor(np.array([w_star]), delta, mu), rel=1e-9)


def test_transition_matrix_is_stochastic():
    P = theory.sr_transition_matrix(lambda w: 4 * w * (w * w - 1), 0.1, 0.02, 2.0, -30, 30)  # noqa: N806
    assert np.all(P >= 0) and np.allclose(P.sum(axis=1), 1.0)


def test_bc_gaps_agree_on_average_over_uniform_positions_but_not_for_positions_near_one_half():
    delta, mu = 0.1, 1.0
    uniform = delta * (np.arange(-500, 500) + (np.arange(1000) + 0.5) / 1000)
    assert theory.bc_gap_small_spread(uniform, delta, mu) == pytest.approx(
        theory.bc_gap_large_spread(uniform.size, delta, mu), rel=1e-3)
    middle = delta * (np.arange(100) + 0.5)
    assert theory.bc_gap_small_spread(middle, delta, mu) == pytest.approx(mu / 2 * 100 * delta**2 / 4)
    assert theory.rounding_gap_at_optimum(middle, delta, mu) == pytest.approx(mu / 2 * 100 * (delta / 2) ** 2)


def test_bound_formulas():
    T, G, mu, d, delta, D, alpha, L = 100, 2.0, 0.5, 4, 0.1, 3.0, 0.2, 1.5  # noqa: N806
    assert np.isclose(theory.sr_strongly_convex_bound(T, G, mu, d, delta),
                      (1 + np.log(101)) * 4 / (2 * 0.5 * 100) + 2 * 0.1 * 2 / 2)
    assert np.isclose(theory.sr_convex_bound(T, D, alpha, G, d, delta), 9 / (0.4 * 10) + 0.2 * 4 / 10 + 0.2)
    assert np.isclose(theory.sr_nonconvex_bound(T, 5.0, alpha, L, G, d, delta),
                      5 / 20 + 1.5 * 0.2 * 4 / 2 + 1.5 * 2 * 0.1 * 2 / 2)
    assert theory.dr_stall_distance(0.01, 0.05, 2.0) == pytest.approx(0.05)
    assert theory.dr_stalls(0.1, np.array([0.4, 0.6]), 0.1).tolist() == [True, False]
    assert theory.dr_dither_excess(10, 0.1, 0.2, 1.0, 1.0) / theory.sr_dither_excess(10, 0.1, 0.2, 1.0, 1.0) == (
        pytest.approx((0.04 + 0.01 / 12) / (0.04 + 0.01 / 6)))
