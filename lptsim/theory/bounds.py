"""Convergence bounds and predictions for LPT with SR and DR, one function each.

Sources are cited per function; "derived here" means the derivation is written out in
docs/theory.md. The ALPT paper's own theorem constants could not be checked from its text,
so the SR statements follow Li, De, Xu, Studer, Samet and Goldstein, "Training Quantized
Nets: A Deeper Understanding" (NeurIPS 2017), whose analysis the ALPT paper builds on.
Notation: d dimensions, grid step ``delta`` (Delta), G^2 >= E||g||^2, mu strong convexity,
L smoothness, D a bound on ||w_t - w*||.
"""

from __future__ import annotations

import math

import numpy as np


def sr_strongly_convex_bound(T: np.ndarray | int, G: float, mu: float, d: int, delta: float) -> np.ndarray:  # noqa: N803
    """E[F(w_bar_T) - F*] <= (1 + log(T+1)) G^2 / (2 mu T) + sqrt(d) Delta G / 2.

    Assumptions: F mu-strongly convex, E||g||^2 <= G^2 along the run, alpha_t = 1/(mu (t+1)),
    w_bar_T the average of the first T iterates. Source: Li et al. (2017), Theorem 1.
    """
    T = np.asarray(T, dtype=float)
    return (1 + np.log(T + 1)) * G**2 / (2 * mu * T) + math.sqrt(d) * delta * G / 2


def sr_convex_bound(T: np.ndarray | int, D: float, alpha: float, G: float, d: int, delta: float) -> np.ndarray:  # noqa: N803
    """E[F(w_bar_T) - F*] <= D^2/(2 alpha sqrt(T)) + alpha G^2/sqrt(T) + sqrt(d) Delta G / 2.

    Assumptions: F convex, ||w_t - w*|| <= D, E||g||^2 <= G^2, alpha_t = alpha/sqrt(t).
    Source: Li et al. (2017), Theorem 2 (the SR term as in their statement).
    """
    T = np.asarray(T, dtype=float)
    return D**2 / (2 * alpha * np.sqrt(T)) + alpha * G**2 / np.sqrt(T) + math.sqrt(d) * delta * G / 2


def sr_nonconvex_bound(T: np.ndarray | int, f_gap: float, alpha: float, L: float, G: float, d: int,  # noqa: N803
                       delta: float) -> np.ndarray:
    """min_t E||grad F(w_t)||^2 <= (F(w_1) - F_inf)/(alpha T) + L alpha G^2/2 + L sqrt(d) Delta G/2.

    Assumptions: F L-smooth and bounded below by F_inf, E||g||^2 <= G^2, constant alpha.
    Source: the standard nonconvex SGD argument with the SR error term of Li et al. (2017);
    the form follows the issue's statement (derived here, docs/theory.md section 3).
    """
    T = np.asarray(T, dtype=float)
    return f_gap / (alpha * T) + L * alpha * G**2 / 2 + L * math.sqrt(d) * delta * G / 2


def dr_stalls(alpha: float, grad: np.ndarray, delta: float) -> np.ndarray:
    """DR leaves coordinate i where it is when |alpha g_i| < Delta/2 (round(k - x) = k for |x| < 1/2).

    Derived here (docs/theory.md section 4); holds for any problem once the iterate is on the grid.
    """
    return np.abs(alpha * np.asarray(grad)) < delta / 2


def dr_stall_distance(delta: float, alpha: float, mu: float) -> float:
    """DR with exact gradients on F = mu/2 ||w - w*||^2 stops at |w_i - w*_i| in [r - Delta, r], r = Delta/(2 alpha mu).

    Derived here (docs/theory.md section 4): a coordinate moves while mu alpha |e_i| >= Delta/2, and
    moves by one grid step when it is within Delta of the stall radius. Returns r.
    """
    return delta / (2 * alpha * mu)


def dr_bias_floor_isotropic(w0: np.ndarray, w_star: np.ndarray, delta: float, alpha_T: float, mu: float) -> float:
    """A lower bound for DR that does not vanish as alpha_t decays (isotropic quadratic, exact gradients).

    With alpha_t decreasing, once alpha_t mu |e_i| < Delta/2 coordinate i never moves again, so
    |e_i(T)| >= min(|e_i(0)|, r_T - Delta) with r_T = Delta/(2 alpha_T mu), and
    F(w_T) - F* >= mu/2 sum_i min(|e_i(0)|, r_T - Delta)_+^2, which grows as alpha_T -> 0.
    Derived here (docs/theory.md section 4).
    """
    r = dr_stall_distance(delta, alpha_T, mu) - delta
    e0 = np.abs(np.asarray(w0) - np.asarray(w_star))
    return float(mu / 2 * np.sum(np.minimum(e0, max(r, 0.0)) ** 2))


def sr_noiseless_floor(w_star: np.ndarray, delta: float, mu: float) -> float:
    """Stationary E[F - F*] of SR with exact gradients on F = mu/2 ||w - w*||^2: mu/2 sum_i Delta^2 p_i (1 - p_i).

    p_i = frac(w*_i / Delta). Independent of alpha (for alpha mu < 1), proportional to Delta^2.
    Derived here (docs/theory.md section 5): the chain lives on the two grid points around w*_i,
    with detailed balance pi_k |e_k| = pi_{k+1} |e_{k+1}|.
    """
    v = np.asarray(w_star) / delta
    p = v - np.floor(v)
    return float(mu / 2 * np.sum(delta**2 * p * (1 - p)))


def expected_abs_gaussian(sigma: float) -> float:
    """E|g| for g ~ N(0, sigma^2): sigma sqrt(2/pi)."""
    return sigma * math.sqrt(2 / math.pi)


def sr_small_update_floor(d: int, delta: float, mean_abs_grad: float) -> float:
    """SR's noise floor when updates are small against the grid (alpha sigma << Delta): d Delta E|g| / 4.

    Isotropic quadratic with additive gradient noise; independent of alpha. Derived here
    (docs/theory.md section 6): SR is then a nearest-neighbour walk on the grid whose detailed
    balance gives a Gaussian of variance Delta E|g| / (2 mu) per coordinate.
    """
    return d * delta * mean_abs_grad / 4


def bc_quantization_gap(w_star: np.ndarray, delta: float, mu: float) -> float:
    """Extra loss of deploying round-to-nearest weights near w* on F = mu/2 ||w - w*||^2.

    mu/2 sum_i (Delta * dist(w*_i/Delta, nearest integer))^2, about mu d Delta^2/24 for spread
    w*; scales as Delta^2. Derived here (docs/theory.md section 7).
    """
    v = np.asarray(w_star) / delta
    return float(mu / 2 * np.sum((delta * (v - np.floor(v + 0.5))) ** 2))


def sgd_stationary_variance(alpha: float, sigma: float, curvature: float) -> float:
    """Stationary variance of SGD w <- w - alpha (c (w - m) + sigma xi): alpha sigma^2 / (c (2 - alpha c)).

    Exact for a quadratic well of curvature c; near a minimum of a smooth F to first order.
    Shrinks in proportion to alpha as alpha -> 0 (derived here, docs/theory.md section 8).
    """
    return alpha * sigma**2 / (curvature * (2 - alpha * curvature))
