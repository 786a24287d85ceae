"""The accumulated error of stochastic rounding is a martingale (docs/theory.md, section 10.5).

Round a running sum s_i = Q(s_{i-1} + x_i) onto a grid of step Delta. With SR each error r_i = s_i - (s_{i-1}
+ x_i) has mean zero given the past and lies in an interval of length Delta ([-p Delta, (1 - p) Delta]), so
E_n = r_1 + ... + r_n is a martingale with bounded increments, and the Azuma-Hoeffding inequality gives
P(|E_n| >= t) <= 2 exp(-2 t^2 / (n Delta^2)). That is the probabilistic error bound of Connolly, Higham and Mary
(2021) and Croci et al. (2022): the error grows like sqrt(n), where DR's can grow like n (a sum whose
increments stay below Delta/2 never moves under DR: stagnation).
"""

from __future__ import annotations

import math

import numpy as np

from lptsim.theory.registry import statement


@statement("upper bound", "Azuma-Hoeffding, as in Connolly, Higham and Mary (2021) and Croci et al. (2022); "
           "docs/theory.md 10.5",
           ("SR errors with mean zero given the past (a martingale)", "each error in an interval of length Delta",
            "n roundings", "probability 1 - delta"))
def sr_accumulated_error_bound(n: int | np.ndarray, delta_grid: float, prob: float) -> np.ndarray:
    """With probability at least 1 - prob: |sum of n SR errors| <= Delta sqrt(n ln(2/prob) / 2).

    Tight in its radius for fractions p = 1/2 (errors +-Delta/2, the variance the inequality assumes): the
    exact (1 - prob)-quantile is then about z_(prob/2) Delta sqrt(n)/2, 0.72 of this radius at prob = 0.05.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    return delta_grid * np.sqrt(np.asarray(n, dtype=float) * math.log(2 / prob) / 2)
