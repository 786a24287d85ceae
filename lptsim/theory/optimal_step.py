"""The best fixed step for SR-LPT with b bits: clipping error against the rounding floor.

On F = mu/2 ||w - w*||^2 with Gaussian gradient noise and a constant alpha, each coordinate of SR-LPT on
the clipped grid {qmin..qmax} * Delta is a finite Markov chain; its exact stationary law (lptsim.theory.chain)
gives the stationary excess for every Delta, including the cost of clipping optima beyond qmax Delta
and the rounding floor of the others. Its minimiser is the best fixed step (docs/theory.md, section 7).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from lptsim.quant import QuantSpec
from lptsim.theory._common import first_log_root
from lptsim.theory.chain import sr_transition_matrix, stationary_distribution
from lptsim.theory.registry import statement


@statement("exact", "derived here (docs/theory.md 7.1): the exact SR chain on the clipped grid",
           ("F = mu/2 ||w - w*||^2", "Gaussian gradient noise sigma per coordinate", "constant alpha",
            "SR-LPT on b bits", "stationary"))
def sr_clipped_stationary_excess(w_star: np.ndarray, delta: float, bits: int, alpha: float, mu: float,
                                 sigma: float) -> float:
    """Stationary E[F - F*] of SR-LPT on the b-bit grid of step Delta: the sum of each coordinate's exact chain."""
    spec = QuantSpec(bits)
    ks = np.arange(spec.qmin, spec.qmax + 1)
    return float(sum(np.sum(_clipped_law(ws, delta, spec, alpha, mu, sigma) * mu / 2 * (ks * delta - ws) ** 2)
                     for ws in np.asarray(w_star, dtype=float).ravel()))


@statement("exact", "derived here (docs/theory.md 7.2)",
           ("the assumptions of sr_clipped_stationary_excess", "a single interior minimum in [lo, hi]"))
def optimal_step(w_star: np.ndarray, bits: int, alpha: float, mu: float, sigma: float,
                 bracket: tuple[float, float] | None = None) -> float:
    """Delta* = argmin over Delta of sr_clipped_stationary_excess: the best fixed step for these optima."""
    w = np.asarray(w_star, dtype=float)
    spec = QuantSpec(bits)
    lo, hi = bracket or (np.max(np.abs(w)) / (8 * max(spec.qmax, 1)), 4 * np.max(np.abs(w)) / max(spec.qmax, 1))

    def loss(log_delta: float) -> float:
        return sr_clipped_stationary_excess(w, float(np.exp(log_delta)), bits, alpha, mu, sigma)

    grid = np.linspace(np.log(lo), np.log(hi), 25)
    values = [loss(x) for x in grid]
    i = int(np.argmin(values))
    a, c = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = optimize.minimize_scalar(loss, bounds=(a, c), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def _truncated_moments(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P, E[xi 1], E[xi^2 1] for xi ~ N(0, 1) on (lo, hi] (infinite ends allowed)."""
    lo, hi = np.clip(lo, -40.0, 40.0), np.clip(hi, -40.0, 40.0)  # phi(40) x 40 underflows to 0: no inf * 0
    p = special.ndtr(hi) - special.ndtr(lo)
    f_lo, f_hi = np.exp(-0.5 * lo * lo) / np.sqrt(2 * np.pi), np.exp(-0.5 * hi * hi) / np.sqrt(2 * np.pi)
    return p, f_lo - f_hi, p + lo * f_lo - hi * f_hi


def _step_gradient_at(ws: np.ndarray, delta: float, spec: QuantSpec, alpha: float, mu: float,
                      sigma: float) -> np.ndarray:
    """E over the batch noise of lsq(v) * g_hat, shape (coordinates, grid states): optimum ws[i], state k."""
    k = np.arange(spec.qmin, spec.qmax + 1)[None, :]
    w = ws[:, None]
    m = k - alpha * mu * (k * delta - w) / delta  # v = m - s xi
    s = alpha * sigma / delta
    # Regions of v: (-inf, qmin], (qmin, qmin + 1/2), [j - 1/2, j + 1/2) inside, [qmax - 1/2, qmax), [qmax, inf).
    pieces = [(-np.inf, float(spec.qmin), spec.qmin, None)]
    for j in range(spec.qmin, spec.qmax + 1):
        lo, hi = max(j - 0.5, spec.qmin), min(j + 0.5, spec.qmax)
        if hi > lo:
            pieces.append((lo, hi, j, j))
    pieces.append((float(spec.qmax), np.inf, spec.qmax, None))
    total = np.zeros(m.shape)
    for a, b, code, round_to in pieces:
        # v in [a, b)  <=>  xi in ((m - b)/s, (m - a)/s]
        p, m1, m2 = _truncated_moments((m - b) / s, (m - a) / s)
        big_a = mu * (code * delta - w)  # g_hat = A + sigma xi (the same batch as the first gradient)
        if round_to is None:  # clipped: lsq is the clip bound
            c0, c1 = float(code), 0.0
        else:  # lsq = j - v = j - m + s xi
            c0, c1 = round_to - m, s
        total += c0 * big_a * p + (c0 * sigma + c1 * big_a) * m1 + c1 * sigma * m2
    return total


@statement("approximation", "derived here (docs/theory.md 7.3): the stationary mean of ALPT's LSQ step gradient",
           ("F = mu/2 ||w - w*||^2", "Gaussian gradient noise sigma", "constant alpha, one step shared by all d",
            "the step moves slowly against the weights' mixing (two time scales)"), use="root", vary="delta")
def alpt_step_gradient(w_star: np.ndarray, delta: float, bits: int, alpha: float, mu: float, sigma: float) -> float:
    """E[sum_i g_hat_i lsq_i] under SR-LPT's stationary law at step Delta (ALPT's step gradient before its scale).

    Inside the range the LSQ term round(v) - v of a small update is alpha g / Delta, which meets g_hat with a
    positive mean (it shrinks the step); a clipped optimum contributes qmax mu (qmax Delta - w*) < 0 (it grows
    it). Computed exactly per grid state (the rounding regions of v are intervals of the batch noise).
    """
    spec = QuantSpec(bits)
    ws = np.asarray(w_star, dtype=float).ravel()
    per_state = _step_gradient_at(ws, delta, spec, alpha, mu, sigma)
    return float(sum(np.sum(_clipped_law(c, delta, spec, alpha, mu, sigma) * row) for c, row in zip(ws, per_state,
                                                                                                    strict=True)))


def _clipped_law(ws: float, delta: float, spec: QuantSpec, alpha: float, mu: float, sigma: float) -> np.ndarray:
    """The exact stationary law of one SR-LPT coordinate (optimum ws) over the codes qmin..qmax."""
    return stationary_distribution(sr_transition_matrix(lambda w: mu * (w - ws), delta, alpha, sigma, spec.qmin,
                                                        spec.qmax))


@statement("approximation", "derived here (docs/theory.md 7.3)",
           ("the assumptions of alpt_step_gradient", "one sign change of the mean step gradient in the bracket"))
def alpt_fixed_step(w_star: np.ndarray, bits: int, alpha: float, mu: float, sigma: float,
                    bracket: tuple[float, float] | None = None) -> float:
    """Where ALPT's learned step settles: the root of its mean step gradient (alpt_step_gradient).

    Unlike Delta* (optimal_step), it depends on the weights' learning rate alpha: the LSQ term inside the range
    is proportional to alpha, the clipping term is not.
    """
    w = np.asarray(w_star, dtype=float)
    spec = QuantSpec(bits)
    lo, hi = bracket or (np.max(np.abs(w)) / (8 * max(spec.qmax, 1)), 4 * np.max(np.abs(w)) / max(spec.qmax, 1))

    def g(log_delta: float) -> float:
        return alpt_step_gradient(w, float(np.exp(log_delta)), bits, alpha, mu, sigma)

    return first_log_root(g, lo, hi, 25, 1e-6, "ALPT's mean step gradient does not change sign in the bracket; "
                          "widen it")
