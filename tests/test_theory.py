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
        assert st.source.startswith(("derived here", "Li et al.", "Esser", "Azuma")), (name, st.source)
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
    # floor(v + 1/2): a tie alpha g = Delta/2 stays, alpha g = -Delta/2 moves (dyadic values: exact ties)
    assert theory.dr_stalls(0.5, np.array([0.25, -0.25, 0.2]), 0.25).tolist() == [True, False, True]
    assert theory.dr_dither_excess(10, 0.1, 0.2, 1.0, 1.0) / theory.sr_dither_excess(10, 0.1, 0.2, 1.0, 1.0) == (
        pytest.approx((0.04 + 0.01 / 12) / (0.04 + 0.01 / 6)))


def test_adam_step_bound_holds_for_adversarial_sequences_and_starts_at_one():
    from lptsim.sim.optimizers import Adam

    c = theory.adam_step_bound(np.arange(1, 2001))
    assert c[0] == pytest.approx(1.0) and np.all(np.diff(c) >= 0)
    assert theory.adam_step_bound(10**6) == pytest.approx(0.1 / math.sqrt(0.001) * math.sqrt(1 / (1 - 0.81 / 0.999)))
    rng = np.random.default_rng(0)
    opt = Adam(eps=0.0)
    opt.start((200, 1))
    scales = rng.lognormal(0, 3, size=(2000, 200, 1))  # wildly varying magnitudes, one sign: the worst case
    worst = max(np.max(np.abs(opt.direction(s))) / c[t] for t, s in enumerate(scales))
    assert worst <= 1 + 1e-9


def test_adam_frozen_step_is_alpha_whatever_the_gradient():
    steps = theory.adam_frozen_step(np.array([1e-3, 1.0, -50.0]), 0.01, eps=0.0)
    np.testing.assert_allclose(steps, 0.01)


def test_adagrad_stall_updates_closed_form():
    g = np.array([3.0, 4.0, 0.0, 0.0])  # rms over the row = sqrt(25/4) = 2.5
    n = theory.adagrad_dr_stall_updates(g, alpha=0.05, delta=0.01)
    np.testing.assert_array_equal(n, np.floor((2 * 0.05 * np.abs(g) / (0.01 * 2.5)) ** 2))
    assert n[1] == 256  # the 256th step is exactly Delta/2: still a move (round half up)


def test_dr_stall_time_interval_contains_the_simulated_stall():
    prob = problems.quadratic(d=30, mu=1.0, L=1.0, noise=0.0, seed=5)
    starts = np.random.default_rng(5).uniform(-2, 2, (1, 30))
    T = 600  # noqa: N806
    tr = simulate(prob, "dr", step=0.02, lr=0.03, iters=T, seeds=1, exact_grad=True, w0=starts,
                  record_at=np.arange(1, T + 1), keep_weights=True)
    w = np.vstack([0.02 * np.floor(starts / 0.02 + 0.5), tr.weights[0]])
    last = np.max(np.where(w[1:] != w[:-1], np.arange(1, T + 1)[:, None], 0), axis=0)
    lo, hi = theory.dr_stall_time_bounds(starts[0], prob.w_star, 0.02, 0.03, 1.0, T=T)
    assert np.all((lo <= last) & (last <= hi))


def test_optimal_step_is_the_minimum_of_the_exact_stationary_excess():
    w_star = np.random.default_rng(6).uniform(-1, 1, 12)
    best = theory.optimal_step(w_star, 3, 0.1, 1.0, 0.1)
    grid = best * np.array([0.8, 0.9, 1.1, 1.25])
    at_best = theory.sr_clipped_stationary_excess(w_star, best, 3, 0.1, 1.0, 0.1)
    assert all(theory.sr_clipped_stationary_excess(w_star, s, 3, 0.1, 1.0, 0.1) >= at_best for s in grid)


def test_alpt_fixed_step_is_a_root_with_the_step_shrinking_above_it():
    w_star = np.random.default_rng(7).uniform(-1, 1, 12)
    fixed = theory.alpt_fixed_step(w_star, 4, 0.1, 1.0, 0.1)
    assert abs(theory.alpt_step_gradient(w_star, fixed, 4, 0.1, 1.0, 0.1)) < 1e-6
    assert theory.alpt_step_gradient(w_star, 1.3 * fixed, 4, 0.1, 1.0, 0.1) > 0  # positive gradient: the step shrinks
    assert theory.alpt_step_gradient(w_star, 0.7 * fixed, 4, 0.1, 1.0, 0.1) < 0


def test_dr_final_error_with_exact_ties_matches_the_simulator():
    """Dyadic alpha = 1/8, Delta = 1/64, optima on the grid: r = 4 Delta is met exactly; the tie e = +r stays and
    e = -r moves, as floor(v + 1/2) does. The strict rule |e| < r (lptsim before this fix) is wrong here."""
    delta, alpha, mu = 2.0**-6, 0.125, 1.0
    w_star = delta * np.random.default_rng(8).integers(-100, 100, 60)
    prob = problems.quadratic(d=60, mu=mu, L=mu, noise=0.0, w_star=w_star)
    starts = np.random.default_rng(9).uniform(-3, 3, (4, 60))
    tr = simulate(prob, "dr", step=delta, lr=alpha, iters=400, seeds=4, exact_grad=True, w0=starts, record_at=[400])
    got = tr.final_weights - w_star
    want = theory.dr_final_error(starts, w_star, delta, alpha, mu)
    np.testing.assert_array_equal(got, want)
    r = theory.dr_stall_distance(delta, alpha, mu)
    assert np.any(got == r) and not np.any(got == -r)  # ties were hit, on the side that stays


def test_escape_probability_splits_toward_and_away_and_matches_one_dr_step():
    """P(toward) + P(away) = P(any); against one DR step of the simulator (independent draws, 4-sigma)."""
    e = np.array([-0.3, -0.1, 0.0, 0.2, 0.3])
    alpha, mu, sigma, delta = 0.02, 1.0, 1.0, 0.05
    toward = theory.dr_escape_probability(e, alpha, mu, sigma, delta, direction="toward")
    away = theory.dr_escape_probability(e, alpha, mu, sigma, delta, direction="away")
    np.testing.assert_allclose(toward + away, theory.dr_escape_probability(e, alpha, mu, sigma, delta))
    assert np.all(toward[e != 0] > away[e != 0]) and toward[2] == pytest.approx(away[2])
    n = 40_000
    prob = problems.quadratic(d=e.size, mu=mu, L=mu, noise=sigma, w_star=-e)
    w = simulate(prob, "dr", step=delta, lr=alpha, iters=1, seeds=n, w0=np.zeros(e.size), record_at=[1]).final_weights
    moved_toward = (np.sign(w) == -np.sign(e)) & (w != 0)
    tol = 4 * np.sqrt(toward * (1 - toward) / n)
    assert np.all(np.abs(moved_toward.mean(axis=0)[e != 0] - toward[e != 0]) < tol[e != 0])


def test_few_bit_sr_bias_equals_the_count_over_the_24_bit_lattice():
    """ceil(p 2^k)/2^k - p against counting the 24-bit uniforms j/2^24 whose top k bits fall below p."""
    j = np.arange(2**24, dtype=np.float64) / 2**24
    for k in (1, 4, 8):
        truncated = np.floor(j * 2**k) / 2**k
        for p in (2**-12, 0.3, 0.5, 1 / 3, 2**-k):
            brute = np.mean(truncated < p) - p
            assert theory.few_bit_sr_bias(p, k) == pytest.approx(brute, abs=1e-12), (k, p)
    assert theory.few_bit_sr_bias(2**-12, 24) == 0 and 0 <= theory.few_bit_sr_bias(0.3, 8) < 2**-8


def test_few_bit_noiseless_floor_against_an_independent_chain_and_the_24_bit_formula():
    """The two-state chain simulated with numpy's own uniforms (k-bit rule written out), one coordinate per p."""
    delta, alpha, mu, k = 1.0, 0.004, 1.0, 8
    p = np.array([0.1, 0.5, 0.995])
    rng = np.random.default_rng(10)
    chains, steps = 4000, 3000  # each chain mixes in about 2^k = 256 steps
    hi = np.zeros((chains, p.size), dtype=bool)
    for _ in range(steps):
        u = np.floor(rng.random((chains, p.size)) * 2**k) / 2**k
        hi = u < np.where(hi, 1 - alpha * mu * (1 - p), alpha * mu * p)  # up from below, or stays up
    pi_hi = hi.mean(axis=0)
    for i, pi in enumerate(p):
        want = theory.sr_few_bit_noiseless_floor(np.array([pi]), delta, alpha, mu, k)
        got = mu / 2 * delta**2 * ((1 - pi_hi[i]) * pi**2 + pi_hi[i] * (1 - pi) ** 2)
        assert got == pytest.approx(want, rel=0.05, abs=1e-3), (pi, got, want)
    w_star = np.random.default_rng(11).uniform(-1, 1, 50)
    assert theory.sr_few_bit_noiseless_floor(w_star, 0.01, 0.1, 1.0, 24) == pytest.approx(
        theory.sr_noiseless_floor(w_star, 0.01, 1.0), rel=1e-5)


def test_azuma_radius_bounds_the_exact_binomial_tail():
    """For errors +-1/2 (fractions 1/2) the sum is a centred binomial: its exact tail beyond the radius is at most
    delta, and the radius is within 1.5x of the exact (1 - delta)-quantile (the bound is tight in its radius)."""
    from scipy import stats

    for n in (100, 1000):
        k = np.arange(n + 1)
        s_abs, pmf = np.abs(k - n / 2), stats.binom.pmf(k, n, 0.5)  # |sum of n errors of +-1/2|
        for prob in (0.05, 0.01):
            r = float(theory.sr_accumulated_error_bound(n, 1.0, prob))
            assert pmf[s_abs > r].sum() <= prob
            quantile = min(x for x in np.unique(s_abs) if pmf[s_abs <= x].sum() >= 1 - prob)
            assert quantile <= r <= 1.5 * quantile, (n, prob, r, quantile)


def test_bc_stationary_law_sharpens_with_alpha_and_matches_bc_runs():
    """BC's chain (SGD's with the drift at Q(w)) against simulated BC on the double well (4-sigma), at two alphas."""
    prob = problems.double_well(height=0.5, noise=2.0)
    grad = lambda w: prob.grad(w[:, None])[:, 0]  # noqa: E731
    spread = lambda w: (np.abs(w) - 1) ** 2  # noqa: E731
    wells = lambda c: np.exp(-((np.abs(c) - 1) ** 2) / 0.02)  # noqa: E731
    values = []
    for a in (0.02, 0.005):
        pred = theory.bc_stationary_expectation(grad, 0.1, a, 2.0, (-3.0, 3.0), spread, wells)
        starts = np.random.default_rng(12).choice([-1.0, 1.0], size=(400, 1))
        T = int(4000 * 0.02 / a)  # noqa: N806
        w = simulate(prob, "bc", step=0.1, lr=a, iters=T, seeds=400, w0=starts, keep_weights=True,
                     record_at=np.unique(np.linspace(T // 2, T, 40).astype(int)), seed=3).weights[..., 0]
        per_chain = spread(w).mean(axis=1)
        assert abs(per_chain.mean() - pred) < 4 * per_chain.std(ddof=1) / np.sqrt(per_chain.size), (a, pred)
        values.append(pred)
    assert values[0] / values[1] > 3  # it concentrates as alpha shrinks (SR's does not: 4.3)
