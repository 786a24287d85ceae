"""Stochastic rounding with few random bits (docs/theory.md, sections 10.1-10.4).

SR with k random bits rounds v up iff ``floor(U 2^k)/2^k < p`` (lptsim's comparison ``U < p`` with the
uniform truncated to k bits), that is with probability ``ceil(p 2^k)/2^k`` instead of ``p``: a bias in
``[0, 2^-k)`` grid steps, never negative, zero exactly when ``p 2^k`` is an integer. The literature on
few-bit SR (e.g. Fitzgibbon and Felix 2025, "On stochastic rounding with few random bits") states the bound
2^-k; the exact value below is what lptsim's comparison gives. lptsim draws 24 bits everywhere, including
its bfloat16/float16 state writes, whose fractions have at most 16/13 bits: those writes are exactly
unbiased.
"""

from __future__ import annotations

import numpy as np

from lptsim.theory.registry import statement


@statement("exact", "derived here (docs/theory.md 10.1); the 2^-k bound of few-bit SR (e.g. Fitzgibbon and Felix "
           "2025)", ("SR decides 'up' iff floor(U 2^k)/2^k < p, U uniform on the 24-bit lattice", "k <= 24"))
def few_bit_sr_bias(p: np.ndarray | float, bits: int) -> np.ndarray:
    """E[Q(x)] - x in grid steps for SR with ``bits`` random bits at fractional position p: ceil(p 2^k)/2^k - p.

    In [0, 2^-k): few-bit SR rounds up too often, never too rarely; the bias vanishes where p is a multiple
    of 2^-k (so 24-bit SR is exact on any fraction with at most 24 significant bits).
    """
    p = np.asarray(p, dtype=float)
    scale = 2.0**bits
    return np.ceil(p * scale) / scale - p


@statement("exact", "derived here (docs/theory.md 10.2): the two-state chain of 3.1 with k-bit SR",
           ("isotropic quadratic", "exact gradients", "alpha mu < 1", "SR with k random bits", "stationary"))
def sr_few_bit_noiseless_floor(w_star: np.ndarray, delta: float, alpha: float, mu: float, bits: int) -> float:
    """Stationary E[F - F*] of k-bit SR with exact gradients: mu/2 sum_i Delta^2 (pi_lo p^2 + pi_hi (1 - p)^2).

    The chain lives on the grid points below and above w*_i (p = frac(w*_i/Delta)). From below the update's
    fraction is q = alpha mu p, so it moves up with probability ceil(q 2^k)/2^k; from above the fraction is
    1 - alpha mu (1 - p), so it moves down with probability floor(alpha mu (1 - p) 2^k)/2^k, which is 0 once
    alpha mu (1 - p) < 2^-k: the upper point then absorbs the chain. Detailed balance gives
    pi_hi / pi_lo = P(up) / P(down). With 24 bits this is 3.1's mu/2 sum Delta^2 p (1 - p).
    """
    v = np.asarray(w_star, dtype=float).ravel() / delta
    p = v - np.floor(v)
    scale = 2.0**bits
    up = np.ceil(alpha * mu * p * scale) / scale
    down = np.floor(alpha * mu * (1 - p) * scale) / scale
    on_grid = p == 0
    total = np.where(up + down > 0, up + down, 1.0)
    pi_hi = np.where(down > 0, up / total, 1.0)
    pi_hi = np.where(on_grid, 0.0, pi_hi)
    return float(mu / 2 * delta**2 * np.sum((1 - pi_hi) * p**2 + pi_hi * (1 - p) ** 2))
