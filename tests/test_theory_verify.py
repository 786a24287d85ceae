"""Tests of lptsim.theory, the verification checks, the CLI and the figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lptsim import cli, theory
from lptsim.figs import figures_from_results, regime_map
from lptsim.sim import problems, simulate
from lptsim.verify import GROUPS, run_all, sim_checks
from lptsim.verify.report import CheckResult
from lptsim.verify.stats import bootstrap_slope, upper_confidence_limit


def test_transition_matrix_is_stochastic():
    P = theory.sr_transition_matrix(lambda w: 4 * w * (w * w - 1), 0.1, 0.02, 2.0, -30, 30)
    assert np.all(P >= 0) and np.allclose(P.sum(axis=1), 1.0)


def test_exact_chain_reproduces_the_noiseless_two_point_law():
    """Sections 5 and 8 of docs/theory.md agree: sigma = 0, linear gradient -> pi = (1-p, p)."""
    mu, delta, w_star = 1.0, 0.1, 0.537  # p = 0.37 between grid points 5 and 6
    grid, pi = theory.sr_stationary(lambda w: mu * (w - w_star), delta, 0.3, 0.0, (0.0, 1.0))
    k = int(np.floor(w_star / delta))
    p = w_star / delta - k
    np.testing.assert_allclose(pi[k], 1 - p, atol=1e-9)
    np.testing.assert_allclose(pi[k + 1], p, atol=1e-9)
    excess = float(np.sum(pi * mu / 2 * (grid - w_star) ** 2))
    np.testing.assert_allclose(excess, theory.sr_noiseless_floor(np.array([w_star]), delta, mu), rtol=1e-9)


def test_exact_chain_is_alpha_independent_for_small_updates_but_not_sgd():
    grad = lambda w: 2 * w  # noqa: E731
    _, a = theory.sr_stationary(grad, 0.1, 0.01, 1.0, (-2, 2))
    _, b = theory.sr_stationary(grad, 0.1, 0.0025, 1.0, (-2, 2))
    assert theory.total_variation(a, b) < 0.01
    assert theory.sgd_stationary_variance(0.01, 1.0, 2.0) / theory.sgd_stationary_variance(0.0025, 1.0, 2.0) > 3.9


def test_sgd_stationary_variance_matches_simulation():
    prob = problems.quadratic(d=1, mu=2.0, L=2.0, noise=1.0, seed=0)
    alpha, seeds = 0.1, 4000
    tr = simulate(prob, "fp", lr=alpha, iters=300, seeds=seeds, w0=prob.w_star, record_at=[300], seed=1)
    measured = np.mean((tr.final_weights[:, 0] - prob.w_star[0]) ** 2)
    predicted = theory.sgd_stationary_variance(alpha, 1.0, 2.0)
    assert abs(measured / predicted - 1) <= 4 * np.sqrt(2 / seeds)  # chi-square relative sd


def test_bound_formulas():
    T, G, mu, d, delta, D, alpha, L = 100, 2.0, 0.5, 4, 0.1, 3.0, 0.2, 1.5  # noqa: N806
    assert np.isclose(theory.sr_strongly_convex_bound(T, G, mu, d, delta),
                      (1 + np.log(101)) * 4 / (2 * 0.5 * 100) + 2 * 0.1 * 2 / 2)
    assert np.isclose(theory.sr_convex_bound(T, D, alpha, G, d, delta), 9 / (0.4 * 10) + 0.2 * 4 / 10 + 0.2)
    assert np.isclose(theory.sr_nonconvex_bound(T, 5.0, alpha, L, G, d, delta),
                      5 / 20 + 1.5 * 0.2 * 4 / 2 + 1.5 * 2 * 0.1 * 2 / 2)
    assert theory.dr_stall_distance(0.01, 0.05, 2.0) == pytest.approx(0.05)
    assert theory.dr_stalls(0.1, np.array([0.4, 0.6]), 0.1).tolist() == [True, False]
    # The DR floor grows as alpha decays; SR's noisy floor does not depend on alpha at all.
    w0, ws = np.zeros(3), np.array([1.0, -1.0, 0.5])
    assert theory.dr_bias_floor_isotropic(w0, ws, 0.01, 0.001, 1.0) > theory.dr_bias_floor_isotropic(
        w0, ws, 0.01, 0.01, 1.0)
    assert theory.sr_small_update_floor(10, 0.02, theory.expected_abs_gaussian(1.0)) == pytest.approx(
        10 * 0.02 * np.sqrt(2 / np.pi) / 4)


def test_bootstrap_slope_recovers_a_power_law():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    rng = np.random.default_rng(0)
    per_seed = x**1.5 * rng.lognormal(0, 0.05, size=(30, 4))
    slope, lo, hi = bootstrap_slope(x, per_seed)
    assert lo <= 1.5 <= hi and abs(slope - 1.5) < 0.05 and hi - lo < 0.2


def test_upper_confidence_limit_covers_the_mean():
    rng = np.random.default_rng(1)
    covered = sum(upper_confidence_limit(rng.normal(size=20)) >= 0 for _ in range(400))
    # One-sided 95%: coverage ~ Binomial(400, 0.95): mean 380, sd 4.4.
    assert 380 - 4 * 4.4 <= covered <= 380 + 4 * 4.4


SIM_CHECKS = {
    "dr_stall": sim_checks.dr_stall,
    "noiseless_floor": sim_checks.sr_noiseless_floor,
    "noisy_floor": sim_checks.sr_noisy_floor,
    "decaying_alpha": sim_checks.decaying_alpha_floor,
    "regime_b": lambda b: [sim_checks.regime_b(b)],
    "regime_a": lambda b: [sim_checks.regime_a(problems.quadratic(d=50, mu=1, L=1, noise=1, seed=7), "q", b,
                                               0.05, 4000)],
    "bc_floor": sim_checks.bc_floor,
    "stationary": sim_checks.stationary_double_well,
    "rates": sim_checks.rates,
    "alpt_step": sim_checks.alpt_step,
    "bounds_quadratic": lambda b: sim_checks.sr_bounds(problems.quadratic(d=20, mu=1.0, L=2.0, noise=1.0, seed=5),
                                                       "quadratic", b, 0.01, 0.1, 5000),
    "bounds_mf": lambda b: sim_checks.sr_bounds(problems.matrix_factorization(seed=5), "mf", b, 0.01, 0.5, 5000),
}


@pytest.mark.parametrize("name", sorted(SIM_CHECKS))
def test_simulation_checks_pass(name):
    results = SIM_CHECKS[name](sim_checks.Budget())
    assert results and all(r.passed for r in results), [r for r in results if not r.passed]


def test_regime_checks_can_fail():
    """The same criteria fail when the regimes are swapped: they are not vacuous."""
    b = sim_checks.Budget(seeds=8)
    noisy = problems.quadratic(d=50, mu=1.0, L=1.0, noise=1.0, seed=8)
    dr, sr = sim_checks._final_pair(noisy, 0.05, 0.005, 2000, b)  # regime A parameters
    assert not dr / sr <= 1.2  # regime B's criterion rejects regime A
    dr, sr = sim_checks._final_pair(noisy, 0.05, 0.1, 2000, b)  # regime B parameters
    assert not dr / sr >= 10  # regime A's criterion rejects regime B


def test_regime_map_orientation():
    grid = regime_map(np.array([0.02]), np.array([0.05, 3.0]), seeds=4, d=10, progress=False)
    assert grid[0, 0] > 5 and 0.7 < grid[0, 1] < 1.3


def test_run_all_rejects_unknown_group():
    with pytest.raises(ValueError, match="unknown check group"):
        run_all(groups=["nope"], progress=False)


def test_cli_verify_writes_json_and_exit_code(tmp_path, capsys):
    assert cli.main(["verify", "--group", "quant", "--out", str(tmp_path), "--quiet"]) == 0
    rows = json.loads((tmp_path / "verify.json").read_text())
    assert rows and all({"name", "measured", "predicted", "criterion", "passed"} <= set(r) for r in rows)
    assert "passed, 0 failed" in capsys.readouterr().out


def test_cli_verify_fails_on_a_failing_check(tmp_path, monkeypatch):
    monkeypatch.setitem(GROUPS, "broken", lambda full: [CheckResult("always fails", 1, 0, "== 0", False)])
    assert cli.main(["verify", "--group", "broken", "--quiet"]) == 1


def test_cli_reports_bad_input_without_traceback(capsys):
    assert cli.main(["verify", "--group", "nope", "--quiet"]) == 2
    assert "unknown check group" in capsys.readouterr().err


def test_figures_are_written(tmp_path):
    results = sim_checks.dr_stall(sim_checks.Budget(seeds=4))
    paths = figures_from_results(results, tmp_path)
    assert {p.name for p in paths} == {"dr_stall_distance.png", "dr_stall_distance.pdf"}
    assert all(p.stat().st_size > 1000 for p in paths)
