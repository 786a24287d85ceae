"""BinaryConnect / QAT on a quadratic: what deploying the rounded weights costs.

BC keeps full-precision weights w and takes the gradient at the rounded point Q(w); the model
ships Q_DR(w). The cost over the full-precision loss depends on how far w spreads against the
grid (docs/theory.md, section 5).
"""

from __future__ import annotations

import numpy as np

from lptsim.theory.registry import statement


@statement("exact", "derived here (docs/theory.md 5.1)", ("F = mu/2 ||w - w*||^2",))
def rounding_gap_at_optimum(w_star: np.ndarray, delta: float, mu: float) -> float:
    """F(Q_DR(w*)) - F* = mu/2 sum_i (Delta dist(w*_i/Delta, Z))^2: the optimum itself rounded to nearest."""
    v = np.asarray(w_star) / delta
    return float(mu / 2 * np.sum((delta * (v - np.floor(v + 0.5))) ** 2))


@statement("approximation", "derived here (docs/theory.md 5.2)",
           ("F = mu/2 ||w - w*||^2", "BC spread of w >> Delta (noise dithers the rounding)", "stationary"))
def bc_gap_large_spread(d: int, delta: float, mu: float) -> float:
    """E[F(Q(w))] - E[F(w)] = mu d Delta^2 / 24 when w spreads over many grid cells: the rounding error is uniform."""
    return mu * d * delta**2 / 24


@statement("approximation", "derived here (docs/theory.md 5.3)",
           ("F = mu/2 ||w - w*||^2", "gradient noise << the drift mu Delta (BC spread << Delta)",
            "alpha mu << 1", "stationary"))
def bc_gap_small_spread(w_star: np.ndarray, delta: float, mu: float) -> float:
    """E[F(Q(w))] - E[F(w)] = mu/2 sum_i Delta^2 (p_i (1 - p_i) - (1/2 - p_i)^2), p_i = frac(w*_i/Delta).

    The gradient at Q(w) pushes w to the rounding boundary between the grid points around w*,
    where it dithers: Q(w) takes the upper point a fraction p of the time (the drifts balance),
    so the deployed loss is SR-like, mu/2 Delta^2 p(1-p), while w itself sits at the boundary.
    Not the optimum rounded to nearest (rounding_gap_at_optimum), which is what post-training
    rounding of an SGD iterate would cost.
    """
    v = np.asarray(w_star) / delta
    p = v - np.floor(v)
    return float(mu / 2 * np.sum(delta**2 * (p * (1 - p) - (0.5 - p) ** 2)))
