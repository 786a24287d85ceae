"""lptsim.theory.sparse (and lazy.sparse_dr_frozen_probability) against independent references: the dense
statements they must reduce to at batch = 1, p = 1, and Monte Carlo of the row's dynamics written out in numpy."""

from __future__ import annotations

import numpy as np
import pytest

from lptsim import theory
from lptsim.theory import sparse as S


def _monte_carlo(ws, p, batch, delta, alpha, mu, sigma, T, rounding, chains=20000, seed=0):  # noqa: N803
    """One coordinate per chain: k ~ Binomial(batch, p) lookups per step, SGD on their summed gradient, then DR or SR
    onto Delta Z; returns E[mu/2 (w_T - w*)^2] and its standard error."""
    rng = np.random.default_rng(seed)
    w = np.zeros(chains)
    for _ in range(T):
        k = rng.binomial(batch, p, chains)
        v = (w - alpha * (k * mu * (w - ws) + np.sqrt(k) * sigma * rng.standard_normal(chains))) / delta
        if rounding == "sr":
            c = np.floor(v) + (rng.random(chains) < v - np.floor(v))
        else:
            c = np.floor(v + 0.5)
        w = np.where(k > 0, c * delta, w)
    x = mu / 2 * (w - ws) ** 2
    return x.mean(), x.std() / np.sqrt(chains)


@pytest.mark.parametrize("rounding", ["sr", "dr"])
def test_row_excess_at_T_matches_monte_carlo(rounding):
    ws, p, batch, delta, alpha, mu, sigma, T = 0.53, 0.004, 500, 0.1, 0.05, 1.0, 0.7, 60  # noqa: N806
    pred = S.sparse_row_excess([ws], [0.0], p, batch, delta, alpha, mu, sigma, T, rounding)[0]
    mc, se = _monte_carlo(ws, p, batch, delta, alpha, mu, sigma, T, rounding)
    assert abs(pred - mc) < 4 * se, (pred, mc, se)
    assert abs(S.sparse_row_excess([ws], [0.0], p, batch, delta, alpha, mu, sigma, T // 3, rounding)[0] - mc) > 4 * se


def test_row_touched_once_every_step_is_the_dense_sr_chain():
    ws, delta, alpha, mu, sigma = 0.237, 0.1, 0.1, 1.0, 0.8
    dense = theory.sr_stationary_expectation(lambda w: mu * (w - ws), delta, alpha, sigma, (ws - 3, ws + 3),
                                             lambda w: mu / 2 * (w - ws) ** 2)
    sparse = S.sparse_row_excess([ws], [0.0], 1.0, 1, delta, alpha, mu, sigma, None, "sr")[0]
    assert sparse == pytest.approx(dense, rel=1e-6)


def test_rare_rows_reach_the_small_update_floor_and_frequent_rows_average_it_down():
    """Regime A (alpha sqrt(k) sigma << Delta): SR's stationary floor per coordinate is Delta sigma sqrt(2/pi)
    E[sqrt k] / (4 E[k]) (docs/theory.md 11.c): flat for rare rows, falling like 1/sqrt(batch p) for frequent ones."""
    delta, alpha, mu, sigma, batch = 0.02, 0.002, 1.0, 1.0, 1000
    floor = delta * sigma * np.sqrt(2 / np.pi) / 4
    rare = S.sparse_row_excess([0.0131], [0.0], [1e-5, 1e-4], batch, delta, alpha, mu, sigma, None, "sr")
    np.testing.assert_allclose(rare, floor * np.array([1, 1]), rtol=0.1)
    lam = 16.0
    freq = S.sparse_row_excess([0.0131], [0.0], lam / batch, batch, delta, alpha, mu, sigma, None, "sr")[0]
    assert freq == pytest.approx(floor / np.sqrt(lam), rel=0.15)


def test_alpt_step_gradient_of_an_always_touched_row_is_the_dense_one():
    ws = np.array([0.31, -0.52, 0.77])
    for delta in (0.05, 0.12):
        dense = theory.alpt_step_gradient(ws, delta, 4, 0.1, 1.0, 0.5)
        sparse = S.sparse_alpt_step_gradient(ws[None], [1.0], 1, delta, 4, 0.1, 1.0, 0.5)
        assert sparse == pytest.approx(dense, rel=1e-8)


def test_shared_step_weights_rows_by_touch_rate():
    """Two groups of rows with different optima: the shared fixed step moves toward the frequent group's own."""
    small, large = np.array([[0.2]]), np.array([[1.2]])
    args = (4, 0.05, 1.0, 0.5)
    own_small = S.sparse_alpt_fixed_step(small, [0.25], 20, *args, bracket=(0.005, 0.5))
    own_large = S.sparse_alpt_fixed_step(large, [0.25], 20, *args, bracket=(0.005, 0.5))
    rows = np.vstack([small, large])
    small_hot = S.sparse_alpt_fixed_step(rows, [0.25, 0.0025], 20, *args, bracket=(0.005, 0.5))
    large_hot = S.sparse_alpt_fixed_step(rows, [0.0025, 0.25], 20, *args, bracket=(0.005, 0.5))
    assert own_small < small_hot < large_hot < own_large
    assert abs(np.log(small_hot / own_small)) < abs(np.log(large_hot / own_small))


def test_crossing_is_where_sr_minus_dr_changes_sign():
    ws, delta, alpha, mu, sigma, batch, T = np.array([1.1, -0.7]), 0.1, 0.01, 1.0, 1.0, 1000, 600  # noqa: N806
    px = theory.dr_sr_crossing(ws, 0 * ws, batch, delta, alpha, mu, sigma, T, 1e-4, 0.05)
    below, above = S.sr_minus_dr(ws, 0 * ws, [px / 1.5, px * 1.5], batch, delta, alpha, mu, sigma, T)
    assert below < 0 < above


def test_sparse_dr_frozen_probability_matches_monte_carlo():
    lr, delta, p, batch, steps, sigma = 0.01, 0.1, 0.003, 1000, 4, 1.0
    g = np.array([0.8, -1.1])
    pred = theory.sparse_dr_frozen_probability(lr, delta, p, batch, steps, g, sigma)
    rng = np.random.default_rng(1)
    chains = 40000
    frozen = np.ones(chains, dtype=bool)
    for _ in range(steps):
        k = rng.binomial(batch, p, chains)[:, None]
        step = lr * (k * g + np.sqrt(k) * sigma * rng.standard_normal((chains, 2)))
        frozen &= np.all((step > -delta / 2) & (step <= delta / 2), axis=1)
    se = np.sqrt(pred * (1 - pred) / chains)
    assert abs(frozen.mean() - pred) < 4 * se, (frozen.mean(), pred)
    assert 0.05 < pred < 0.95  # a case where the answer is not trivially 0 or 1
