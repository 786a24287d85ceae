"""SR convergence upper bounds in the form of Li, De, Xu, Studer, Samet and Goldstein,
"Training Quantized Nets: A Deeper Understanding" (NeurIPS 2017), whose analysis the ALPT
paper builds on. These bounds are loose by design (3-50x above what SR measures) and also hold
for DR in most settings, so they cannot tell the roundings apart: each is paired in
``lptsim verify`` with a sharp prediction checked two-sided (docs/theory.md, section 1).

Notation: d dimensions, grid step ``delta``, G^2 >= E||g||^2 along the run, mu strong
convexity, L smoothness, D >= ||w_t - w*|| along the run.
"""

from __future__ import annotations

import math

import numpy as np

from lptsim.theory.registry import statement


@statement("upper bound", "Li et al. (2017), Theorem 1",
           ("F mu-strongly convex", "E||g||^2 <= G^2 along the run", "alpha_t = 1/(mu (t+1))",
            "w_bar_T: average of the first T iterates", "SR onto an unbounded grid"))
def sr_strongly_convex_bound(T: np.ndarray | int, G: float, mu: float, d: int, delta: float) -> np.ndarray:  # noqa: N803
    """E[F(w_bar_T) - F*] <= (1 + log(T+1)) G^2 / (2 mu T) + sqrt(d) Delta G / 2."""
    T = np.asarray(T, dtype=float)
    return (1 + np.log(T + 1)) * G**2 / (2 * mu * T) + math.sqrt(d) * delta * G / 2


@statement("upper bound", "Li et al. (2017), Theorem 2",
           ("F convex", "||w_t - w*|| <= D", "E||g||^2 <= G^2", "alpha_t = alpha/sqrt(t)",
            "w_bar_T: average of the first T iterates", "SR onto an unbounded grid"))
def sr_convex_bound(T: np.ndarray | int, D: float, alpha: float, G: float, d: int, delta: float) -> np.ndarray:  # noqa: N803
    """E[F(w_bar_T) - F*] <= D^2/(2 alpha sqrt(T)) + alpha G^2/sqrt(T) + sqrt(d) Delta G / 2."""
    T = np.asarray(T, dtype=float)
    return D**2 / (2 * alpha * np.sqrt(T)) + alpha * G**2 / np.sqrt(T) + math.sqrt(d) * delta * G / 2


@statement("upper bound", "derived here (docs/theory.md 1.3): the standard nonconvex SGD argument "
           "with the SR error term of Li et al. (2017)",
           ("F L-smooth, bounded below by F_inf", "E||g||^2 <= G^2 along the run", "constant alpha",
            "SR onto an unbounded grid"))
def sr_nonconvex_bound(T: np.ndarray | int, f_gap: float, alpha: float, L: float, G: float, d: int,  # noqa: N803
                       delta: float) -> np.ndarray:
    """min_t E||grad F(w_t)||^2 <= (F(w_1) - F_inf)/(alpha T) + L alpha G^2/2 + L sqrt(d) Delta G/2."""
    T = np.asarray(T, dtype=float)
    return f_gap / (alpha * T) + L * alpha * G**2 / 2 + L * math.sqrt(d) * delta * G / 2


@statement("upper bound", "Li et al. (2017), the BC counterpart of Theorem 2 (the rounding term Delta L D, not "
           "Delta G); form derived here (docs/theory.md 1.4)",
           ("F convex and L-smooth", "||Q(w_t) - w*|| <= D", "E||g||^2 <= G^2", "alpha_t = alpha/sqrt(t)",
            "BC: gradient at Q_DR(w), full-precision w", "averaged over the first T rounded iterates"))
def bc_convex_bound(T: np.ndarray | int, D: float, alpha: float, G: float, L: float, d: int,  # noqa: N803
                    delta: float) -> np.ndarray:
    """(1/T) sum_t E[F(Q(w_t)) - F*] <= D^2/(2 alpha sqrt(T)) + alpha G^2/sqrt(T) + sqrt(d) Delta L D / 2.

    BC's gradient is taken at Q(w), so its rounding error enters through grad F(Q(w)) . (w - Q(w)), at most
    L D sqrt(d) Delta/2 by smoothness: it shrinks near the optimum, where SR's sqrt(d) Delta G/2 does not.
    """
    T = np.asarray(T, dtype=float)
    return D**2 / (2 * alpha * np.sqrt(T)) + alpha * G**2 / np.sqrt(T) + math.sqrt(d) * delta * L * D / 2
