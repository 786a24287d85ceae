"""Full-precision SGD on quadratics: exact second moments (the baselines LPT is compared with)."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from lptsim.theory._common import as_schedule, records
from lptsim.theory.registry import statement


def expected_abs_gaussian(sigma: float) -> float:
    """E|g| for g ~ N(0, sigma^2): sigma sqrt(2/pi)."""
    return sigma * math.sqrt(2 / math.pi)


@statement("exact", "derived here (docs/theory.md 4.1)",
           ("quadratic well of curvature c", "additive noise of variance sigma^2", "0 < alpha c < 2", "stationary"))
def sgd_stationary_variance(alpha: float, sigma: float, curvature: float) -> float:
    """Stationary variance of w <- w - alpha (c (w - m) + sigma xi): alpha sigma^2 / (c (2 - alpha c)).

    Near a minimum of a smooth F it holds to first order; it shrinks in proportion to alpha.
    """
    return alpha * sigma**2 / (curvature * (2 - alpha * curvature))


@nb.njit(cache=True)
def _second_moment(e0: np.ndarray, alphas: np.ndarray, mu: float, sigma: float, rec: np.ndarray) -> np.ndarray:
    out = np.empty((rec.size, e0.size))
    v = e0 * e0
    k = 0
    for t in range(alphas.size):
        a = alphas[t]
        v = (1 - a * mu) ** 2 * v + (a * sigma) ** 2
        if k < rec.size and t + 1 == rec[k]:
            out[k] = v
            k += 1
    return out


@statement("exact", "derived here (docs/theory.md 4.2)",
           ("isotropic quadratic", "gradient noise independent of w, variance sigma^2 per coordinate"))
def sgd_excess(w_start: np.ndarray, w_star: np.ndarray, alphas: np.ndarray | float, mu: float, sigma: float,
               T: int | None = None, record_at: np.ndarray | None = None) -> np.ndarray:  # noqa: N803
    """E[F(w_t) - F*] of SGD: mu/2 sum_i v_i(t) with v <- (1 - alpha_t mu)^2 v + alpha_t^2 sigma^2, v_0 = e_i(0)^2.

    With alpha_t = alpha/sqrt(t) it decays like t^(-1/2); with 1/(mu (t+1)) like t^(-1).
    """
    a = as_schedule(alphas, T)
    e0 = (np.asarray(w_start, dtype=float) - np.asarray(w_star, dtype=float)).ravel()
    v = _second_moment(e0, a, mu, sigma, records(a.size, record_at))
    return mu / 2 * np.sum(v, axis=1)
