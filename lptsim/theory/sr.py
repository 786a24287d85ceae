"""Stochastic rounding (SR): floors, an upper bound, a mean-field prediction, and averaging.

Setting (unless a function says otherwise): F = mu/2 ||w - w*||^2, LPT w <- Q_SR(w - alpha_t g)
onto an unbounded grid of step Delta, g = mu (w - w*) + sigma xi with independent noise of
variance sigma^2 per coordinate, the start rounded to the grid. SR is unbiased, so the mean
error follows SGD exactly and rounding only adds variance Delta^2 E[p (1 - p)], p the
fractional part of the update. Derivations: docs/theory.md, section 3.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from lptsim.theory._common import as_schedule, grid_error, norm_cdf, records
from lptsim.theory.registry import statement


@statement("exact", "derived here (docs/theory.md 3.1)",
           ("isotropic quadratic", "exact gradients", "alpha mu < 1", "stationary"))
def sr_noiseless_floor(w_star: np.ndarray, delta: float, mu: float) -> float:
    """Stationary E[F - F*] with exact gradients: mu/2 sum_i Delta^2 p_i (1 - p_i), p_i = frac(w*_i/Delta).

    The chain lives on the two grid points around w*_i; detailed balance gives them weights
    1 - p and p. Independent of alpha, proportional to Delta^2.
    """
    v = np.asarray(w_star) / delta
    p = v - np.floor(v)
    return float(mu / 2 * np.sum(delta**2 * p * (1 - p)))


@statement("approximation", "derived here (docs/theory.md 3.2)",
           ("isotropic quadratic", "regime A: alpha sigma << Delta (one-step moves)",
            "Delta << sqrt(sigma Delta / mu) (continuum limit)", "stationary"))
def sr_small_update_floor(d: int, delta: float, mean_abs_grad: float) -> float:
    """SR's noise floor when updates are small against the grid: d Delta E|g| / 4, independent of alpha.

    SR is then a nearest-neighbour walk whose detailed balance gives a Gaussian of variance
    Delta E|g| / (2 mu) per coordinate.
    """
    return d * delta * mean_abs_grad / 4


@nb.njit(cache=True)
def _phi(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


@nb.njit(cache=True)
def frac_variance(m: float, s: float) -> float:
    """E[p (1 - p)] for p = frac(x), x ~ N(m, s^2): SR's rounding variance in units of Delta^2."""
    if s > 3.0:
        return 1.0 / 6.0
    if s < 1e-12:
        p = m - math.floor(m)
        return p * (1 - p)
    total = 0.0
    lo = math.floor(m - 10 * s) - 1
    hi = math.floor(m + 10 * s) + 1
    for j in range(int(lo), int(hi) + 1):
        a, b = (j - m) / s, (j + 1 - m) / s
        p0 = norm_cdf(b) - norm_cdf(a)
        d1 = _phi(a) - _phi(b)
        e1 = m * p0 + s * d1  # E[x 1{j <= x < j+1}]
        e2 = (m * m + s * s) * p0 + 2 * m * s * d1 + s * s * (a * _phi(a) - b * _phi(b))
        total += -e2 + (2 * j + 1) * e1 - j * (j + 1) * p0  # E[(x - j)(j + 1 - x) 1{...}]
    return total


@nb.njit(cache=True)
def _sr_meanfield(e0: np.ndarray, alphas: np.ndarray, mu: float, sigma: float, delta: float,
                  rec: np.ndarray) -> np.ndarray:
    out = np.empty((rec.size, e0.size))
    mean = e0.copy()
    var = np.zeros(e0.size)
    k = 0
    for t in range(alphas.size):
        a = alphas[t]
        for i in range(e0.size):
            m = a * mu * mean[i] / delta
            s = a * math.sqrt(mu * mu * var[i] + sigma * sigma) / delta
            rounding = delta * delta * frac_variance(m, s)
            mean[i] = (1 - a * mu) * mean[i]
            var[i] = (1 - a * mu) ** 2 * var[i] + (a * sigma) ** 2 + rounding
        if k < rec.size and t + 1 == rec[k]:
            out[k] = mean * mean + var
            k += 1
    return out


@statement("approximation", "derived here (docs/theory.md 3.3): Gaussian closure of SR's variance",
           ("isotropic quadratic", "gradient noise independent of w", "alpha_t mu <= 1",
            "start rounded to the grid", "unbounded grid"))
def sr_meanfield_excess(w_start: np.ndarray, w_star: np.ndarray, delta: float, alphas: np.ndarray | float,
                        mu: float, sigma: float, T: int | None = None,  # noqa: N803
                        record_at: np.ndarray | None = None) -> np.ndarray:
    """E[F(w_t) - F*] of SR in every regime: the mean error follows SGD exactly; the variance gains
    Delta^2 E[p(1-p)] per step, p the fractional part of an update x ~ N(m, s^2) (Gaussian closure).

    Reduces to d Delta E|g|/4 in regime A and to mu/2 d (alpha^2 sigma^2 + Delta^2/6)/(alpha mu (2 - alpha mu))
    in regime B. Returns the value at ``record_at`` (default: at T).
    """
    a = as_schedule(alphas, T)
    e0 = grid_error(w_start, w_star, delta).ravel()
    m2 = _sr_meanfield(e0, a, mu, sigma, delta, records(a.size, record_at))
    return mu / 2 * np.sum(m2, axis=1)


@nb.njit(cache=True)
def _sr_bound_recursion(e0: np.ndarray, alphas: np.ndarray, mu: float, sigma: float, delta: float,
                        rec: np.ndarray) -> np.ndarray:
    out = np.empty((rec.size, e0.size))
    v = e0 * e0
    k = 0
    for t in range(alphas.size):
        a = alphas[t]
        rounding = np.minimum(delta * a * np.sqrt(mu * mu * v + sigma * sigma), delta * delta / 4)
        v = (1 - a * mu) ** 2 * v + (a * sigma) ** 2 + rounding
        if k < rec.size and t + 1 == rec[k]:
            out[k] = v
            k += 1
    return out


@statement("upper bound", "derived here (docs/theory.md 3.4)",
           ("isotropic quadratic", "gradient noise independent of w, variance sigma^2 per coordinate",
            "alpha_t mu <= 1", "start rounded to the grid", "unbounded grid"))
def sr_excess_upper_bound(w_start: np.ndarray, w_star: np.ndarray, delta: float, alphas: np.ndarray | float,
                          mu: float, sigma: float, T: int | None = None,  # noqa: N803
                          record_at: np.ndarray | None = None) -> np.ndarray:
    """E[F(w_t) - F*] <= mu/2 sum_i v_i(t): a recursion for SR's second moment.

    v <- (1 - alpha mu)^2 v + alpha^2 sigma^2 + min(Delta alpha sqrt(mu^2 v + sigma^2), Delta^2/4).

    SR's rounding variance Delta^2 p(1-p) is at most Delta |alpha g| (p is within |alpha g|/Delta
    of an integer) and at most Delta^2/4. In regime A it is 1/sqrt(2/pi) = 1.25x the sharp floor.
    """
    a = as_schedule(alphas, T)
    e0 = grid_error(w_start, w_star, delta).ravel()
    v = _sr_bound_recursion(e0, a, mu, sigma, delta, records(a.size, record_at))
    return mu / 2 * np.sum(v, axis=1)


@statement("approximation", "derived here (docs/theory.md 3.5)",
           ("isotropic quadratic", "regime B: alpha sigma >= Delta", "constant alpha, stationary"))
def sr_dither_excess(d: int, delta: float, alpha: float, mu: float, sigma: float) -> float:
    """Stationary E[F - F*] of SR dithered by noise: mu/2 d (a^2 s^2 + Delta^2/6)/(a mu (2 - a mu)), a = alpha.

    The fractional part of the update is then nearly uniform, so SR adds Delta^2 E[p(1-p)] = Delta^2/6
    of variance per step: twice DR's Delta^2/12 (dr_dither_excess).
    """
    return mu / 2 * d * (alpha**2 * sigma**2 + delta**2 / 6) / (alpha * mu * (2 - alpha * mu))


@statement("approximation", "derived here (docs/theory.md 3.6)",
           ("isotropic quadratic", "regime A: alpha sigma << Delta", "constant alpha",
            "w_bar_T: average of the iterates w_1..w_T"))
def sr_averaged_excess(w_start: np.ndarray, w_star: np.ndarray, delta: float, alpha: float, mu: float,
                       sigma: float, T: np.ndarray | int) -> np.ndarray:  # noqa: N803
    """E[F(w_bar_T) - F*] of averaged SR iterates: the transient's mean plus the averaged noise, no floor.

    SR's iterates follow e_{t+1} = (1 - a) e_t + eta_t with a = alpha mu and martingale noise of
    variance q = alpha^2 sigma^2 + Delta^2 E[p(1-p)] ~ Delta alpha E|g| in regime A. Their average
    has no rounding floor: its error keeps falling like d Delta E|g| / (2 alpha mu T).
    """
    e0 = grid_error(w_start, w_star, delta).ravel()
    T = np.atleast_1d(np.asarray(T, dtype=float))
    a = alpha * mu
    q = delta * alpha * sigma * math.sqrt(2 / math.pi)
    decay = 1 - (1 - a) ** T
    mean_part = (np.sum(e0**2) * ((1 - a) * decay / (a * T)) ** 2)
    # sum_{s=0}^{T-1} (1 - (1-a)^{T-s})^2 = T - 2 (1-a)(1 - (1-a)^T)/a + (1-a)^2 (1 - (1-a)^{2T})/(1 - (1-a)^2)
    spread = T - 2 * (1 - a) * decay / a + (1 - a) ** 2 * (1 - (1 - a) ** (2 * T)) / (1 - (1 - a) ** 2)
    var_part = e0.size * q / a**2 * spread / T**2
    return mu / 2 * (mean_part + var_part)
