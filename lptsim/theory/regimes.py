"""Where SR provably beats DR, and where DR starts to move: the boundary between regimes A and B, predicted.

Both come from statements elsewhere: the ratio of DR's lower bound (2.6) to SR's upper bound (3.4), and
the expected number of DR escapes from the start over the horizon (2.5). Docs: docs/theory.md, section 6.
"""

from __future__ import annotations

import numpy as np

from lptsim.theory._common import grid_error
from lptsim.theory.dr import dr_escape_probability, dr_noisy_excess_lower_bound
from lptsim.theory.sr import sr_excess_upper_bound


def provable_advantage(w_start: np.ndarray, w_star: np.ndarray, delta: float, alpha: float, mu: float, sigma: float,
                       T: int) -> float:  # noqa: N803
    """DR's lower bound over SR's upper bound at T (constant alpha): above 1, SR provably ends below DR."""
    low = dr_noisy_excess_lower_bound(w_start, w_star, delta, alpha, mu, sigma, T)
    return float(low / sr_excess_upper_bound(w_start, w_star, delta, alpha, mu, sigma, T=T)[0])


def expected_dr_escapes(w_start: np.ndarray, w_star: np.ndarray, delta: float, alpha: float, mu: float,
                        sigma: float, T: int) -> float:  # noqa: N803
    """T times the summed one-step escape probabilities at the start: below 1, DR is expected never to move."""
    e0 = grid_error(w_start, w_star, delta)
    return float(T * np.sum(dr_escape_probability(e0, alpha, mu, sigma, delta)))


def crossing(x: np.ndarray, y: np.ndarray, level: float = 1.0) -> float:
    """The x (log-interpolated) where y first crosses ``level``; nan if it never does."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    above = y >= level
    idx = np.nonzero(above[:-1] != above[1:])[0]
    if idx.size == 0:
        return float("nan")
    i = int(idx[0])
    y0, y1 = np.log(max(y[i], 1e-300)), np.log(max(y[i + 1], 1e-300))
    frac = (np.log(level) - y0) / (y1 - y0) if y1 != y0 else 0.5
    return float(np.exp(np.log(x[i]) + frac * (np.log(x[i + 1]) - np.log(x[i]))))
