"""Deterministic rounding (DR): when it stalls, where it stops, and bounds on its error.

Setting of the exact statements: F = mu/2 ||w - w*||^2 (isotropic quadratic), LPT
w <- Q_DR(w - alpha_t g) with Q_DR(v) = Delta floor(v/Delta + 1/2) on an unbounded grid, the
start rounded to the grid, g = mu (w - w*) + sigma xi with xi ~ N(0, I). e = w - w*.
Derivations: docs/theory.md, section 2.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from scipy import stats

from lptsim.theory._common import as_schedule, grid_error, norm_sf, records
from lptsim.theory.registry import statement


def dr_stalls(alpha: float, grad: np.ndarray, delta: float) -> np.ndarray:
    """DR (floor(v + 1/2)) leaves coordinate i of a grid point unchanged iff -Delta/2 < alpha g_i <= Delta/2.

    A tie alpha g_i = Delta/2 stays (v = k - 1/2 rounds up to k), alpha g_i = -Delta/2 moves (docs/theory.md 2.1).
    """
    step = alpha * np.asarray(grad)
    return (step > -delta / 2) & (step <= delta / 2)


@statement("exact", "derived here (docs/theory.md 2.1)",
           ("isotropic quadratic", "exact gradients", "iterate on the grid"))
def dr_stall_distance(delta: float | np.ndarray, alpha: float | np.ndarray, mu: float) -> float | np.ndarray:
    """The stall radius r = Delta/(2 alpha mu): a grid point with -r < e_i <= r never moves again (a tie e_i = r
    stays, e_i = -r moves: floor(v + 1/2) rounds halves up)."""
    return delta / (2 * alpha * mu)


@statement("exact", "derived here (docs/theory.md 2.2)",
           ("isotropic quadratic", "exact gradients", "constant alpha with alpha mu <= 1/2",
            "start rounded to the grid"))
def dr_final_error(w_start: np.ndarray, w_star: np.ndarray, delta: float, alpha: float, mu: float) -> np.ndarray:
    """The signed error e_i where DR comes to rest: the outermost stalled grid point on the start's side.

    A coordinate that starts in the stall set -r < e <= r never moves; one that starts outside moves
    toward w* and, because alpha mu <= 1/2 makes every move that enters the stall set a single
    step, stops at the first grid point of the stall set it meets (e = r itself stalls: a tie).
    """
    if not alpha * mu <= 0.5:
        raise ValueError(f"dr_final_error needs alpha mu <= 1/2, got {alpha * mu:g}")
    e0 = grid_error(w_start, w_star, delta)
    w_star = np.broadcast_to(np.asarray(w_star, dtype=float), e0.shape)
    r = dr_stall_distance(delta, alpha, mu)
    above = np.floor((w_star + r) / delta) * delta - w_star  # largest e_k <= r
    below = (np.floor((w_star - r) / delta) + 1) * delta - w_star  # smallest e_k > -r
    return np.where((e0 > -r) & (e0 <= r), e0, np.where(e0 > 0, above, below))


@nb.njit(cache=True)
def _contraction_floor(e0: np.ndarray, alphas: np.ndarray, mu: float, delta: float) -> np.ndarray:
    """min over tau of max(L_tau, r_tau - Delta): the smallest |e| a coordinate can stop at.

    L_t = max((1 - alpha_t mu) L_{t-1} - Delta/2, 0) bounds |e_t| from below while it moves;
    a last move at tau leaves |e| >= r_tau - Delta.
    """
    out = np.empty(e0.size)
    for i in range(e0.size):
        low = abs(e0[i])
        best = np.inf
        for t in range(alphas.size):
            low = max((1.0 - alphas[t] * mu) * low - delta / 2, 0.0)
            cand = max(low, delta / (2 * alphas[t] * mu) - delta)
            if cand < best:
                best = cand
        out[i] = best
    return out


def _smallest_grid_distance_at_least(bound: np.ndarray, w_star: np.ndarray, delta: float) -> np.ndarray:
    """min |k Delta - w*| over grid points with |k Delta - w*| >= bound (either side)."""
    up = np.ceil((w_star + bound) / delta - 1e-9) * delta - w_star
    down = w_star - np.floor((w_star - bound) / delta + 1e-9) * delta
    return np.minimum(np.maximum(up, bound), np.maximum(down, bound))


@statement("lower bound", "derived here (docs/theory.md 2.3); corrects lptsim 0.1's dr_bias_floor_isotropic",
           ("isotropic quadratic", "exact gradients", "alpha_t mu <= 1/2 for every t", "start rounded to the grid"))
def dr_excess_lower_bound(w_start: np.ndarray, w_star: np.ndarray, delta: float, alphas: np.ndarray | float,
                          mu: float, T: int | None = None) -> float:  # noqa: N803
    """F(w_T) - F* >= mu/2 sum_i B_i^2: a coordinate freezes no closer than the stall radius of its last move.

    B_i = |e_i(0)| if the coordinate can never move (|e_i(0)| < min_t r_t); otherwise the smallest
    grid distance >= min_tau max(L_tau, r_tau - Delta), where r_tau = Delta/(2 alpha_tau mu) and
    L_tau is the fastest contraction DR allows. With a constant alpha this is r - Delta (and exact
    up to the grid); with a decaying alpha it uses the radius of the last move, not the final one.
    """
    a = as_schedule(alphas, T)
    if np.max(a) * mu > 0.5:
        raise ValueError(f"dr_excess_lower_bound needs alpha_t mu <= 1/2, got max {np.max(a) * mu:g}")
    e0 = grid_error(w_start, w_star, delta).ravel()
    ws = np.broadcast_to(np.asarray(w_star, dtype=float), e0.shape).ravel()
    moved = _smallest_grid_distance_at_least(_contraction_floor(e0, a, mu, delta), ws, delta)
    r_min = delta / (2 * np.max(a) * mu)
    never = (e0 > -r_min) & (e0 <= r_min)
    b = np.where(never, np.abs(e0), moved)
    return float(mu / 2 * np.sum(b**2))


@nb.njit(cache=True)
def _stall_times(e0: np.ndarray, alphas: np.ndarray, mu: float, delta: float) -> np.ndarray:
    out = np.empty((2, e0.size))
    for i in range(e0.size):
        low, high = abs(e0[i]), abs(e0[i])
        first_low, first_high = alphas.size + 1, alphas.size + 1
        for t in range(alphas.size):
            r = delta / (2 * alphas[t] * mu)
            if low <= r and first_low > alphas.size:  # |e| = r can stall (a tie, on w*'s lower side)
                first_low = t
            if high < r and first_high > alphas.size:
                first_high = t
            if high < r:
                break
            low = max((1.0 - alphas[t] * mu) * low - delta / 2, 0.0)
            # Within 3r every move is exactly one grid step; farther out, the contraction bound.
            high = high - delta if high < 3 * r else (1.0 - alphas[t] * mu) * high + delta / 2
        out[0, i], out[1, i] = first_low, first_high
    return out


@statement("exact", "derived here (docs/theory.md 2.8): an interval that holds the stall time",
           ("isotropic quadratic", "exact gradients", "alpha_t mu <= 1/2", "start rounded to the grid"))
def dr_stall_time_bounds(w_start: np.ndarray, w_star: np.ndarray, delta: float, alphas: np.ndarray | float, mu: float,
                         T: int | None = None) -> np.ndarray:  # noqa: N803
    """(earliest, latest) number of moves before DR stops each coordinate, shape (2, d).

    While moving, (1 - alpha mu)|e| - Delta/2 <= |e'| <= (1 - alpha mu)|e| + Delta/2, and within 3r every
    move is exactly one grid step (section 2.2); a coordinate stops at the first step whose stall radius
    exceeds |e|. It cannot stop before the lower envelope enters the radius, and must have stopped once the
    upper one has. A coordinate that could still move at T counts T + 1.
    """
    a = as_schedule(alphas, T)
    e0 = grid_error(w_start, w_star, delta).ravel()
    return _stall_times(e0, a, mu, delta)


@nb.njit(cache=True)
def _dr_l2_recursion(u0: np.ndarray, alphas: np.ndarray, mu: float, sigma: float, delta: float,
                     rec: np.ndarray) -> np.ndarray:
    out = np.empty((rec.size, u0.size))
    u = u0.copy()
    k = 0
    for t in range(alphas.size):
        a = alphas[t]
        if sigma == 0:  # exact gradients: a coordinate inside the stall radius stays put
            r = delta / (2 * a * mu)
            u = np.where(u < r, u, (1 - a * mu) * u + delta / 2)
        else:
            u = np.sqrt((1 - a * mu) ** 2 * u * u + (a * sigma) ** 2) + delta / 2
        if k < rec.size and t + 1 == rec[k]:
            out[k] = u
            k += 1
    return out


@statement("upper bound", "derived here (docs/theory.md 2.4)",
           ("isotropic quadratic", "gradient noise independent of w, variance sigma^2 per coordinate",
            "alpha_t mu <= 1", "start rounded to the grid"))
def dr_excess_upper_bound(w_start: np.ndarray, w_star: np.ndarray, delta: float, alphas: np.ndarray | float,
                          mu: float, sigma: float = 0.0, T: int | None = None,  # noqa: N803
                          record_at: np.ndarray | None = None) -> np.ndarray:
    """E[F(w_t) - F*] <= mu/2 sum_i u_i(t)^2 with u(t) = sqrt((1 - alpha mu)^2 u^2 + alpha^2 sigma^2) + Delta/2.

    DR's rounding error is at most Delta/2 per coordinate, so Minkowski's inequality bounds the
    root-mean-square error; without the grid this is SGD's spread. Without noise (sigma = 0) a
    coordinate inside the stall radius stays put, so u <- u while u < r_t, which tends to r for a
    constant alpha and stops growing when alpha decays. Returns the bound at ``record_at`` (default: T).
    """
    a = as_schedule(alphas, T)
    u0 = np.abs(grid_error(w_start, w_star, delta)).ravel()
    u = _dr_l2_recursion(u0, a, mu, sigma, delta, records(a.size, record_at))
    return mu / 2 * np.sum(u**2, axis=1)


@statement("exact", "derived here (docs/theory.md 2.5)",
           ("gradient g = mu e + sigma xi, xi ~ N(0, 1)", "iterate on the grid"))
def dr_escape_probability(e: np.ndarray, alpha: float, mu: float, sigma: float, delta: float,
                          direction: str = "any") -> np.ndarray:
    """P(|alpha g| >= Delta/2): the chance that one DR step moves a grid coordinate with error e.

    ``direction="toward"`` (``"away"``) gives the chance that it moves one way: towards w*, P(alpha g sign(e) >=
    Delta/2), with the drift alpha mu |e| helping, or away from it, against the drift.
    """
    m = alpha * mu * np.asarray(e, dtype=float)
    if direction not in ("any", "toward", "away"):
        raise ValueError(f"direction must be 'any', 'toward' or 'away', got {direction!r}")
    if direction != "any":
        m = np.abs(m) if direction == "toward" else -np.abs(m)
        if sigma == 0:
            return (m >= delta / 2).astype(float)
        return stats.norm.sf((delta / 2 - m) / (alpha * sigma))
    if sigma == 0:
        return (np.abs(m) >= delta / 2).astype(float)
    s = alpha * sigma
    return stats.norm.sf((delta / 2 - m) / s) + stats.norm.cdf((-delta / 2 - m) / s)


@nb.njit(cache=True)
def _noisy_floor(e0: np.ndarray, r_min: float, sigma: float, mu: float, delta: float, T: int) -> np.ndarray:  # noqa: N803
    out = np.zeros(e0.size)
    for i in range(e0.size):
        best = 0.0
        for j in range(4001):
            z = 10.0 * j / 4000
            level = min(abs(e0[i]), r_min - z * sigma / mu - delta)
            p = 1.0 - T * norm_sf(z)
            if level > 0 and p > 0 and level * level * p > best:
                best = level * level * p
        out[i] = best
    return out


@statement("lower bound", "derived here (docs/theory.md 2.6)",
           ("isotropic quadratic", "Gaussian gradient noise sigma", "alpha_t mu <= 1",
            "start rounded to the grid"))
def dr_noisy_excess_lower_bound(w_start: np.ndarray, w_star: np.ndarray, delta: float, alpha_max: float, mu: float,
                                sigma: float, T: int) -> float:  # noqa: N803
    """E[F(w_T) - F*] >= mu/2 sum_i max_z min(|e_i(0)|, r - z sigma/mu - Delta)_+^2 (1 - T P(N > z))_+.

    To end inside the level l = r - z sigma/mu - Delta, DR must at some step draw noise beyond
    z standard deviations (from anywhere outside the level), so P(|e_T| < l) <= T P(N(0,1) > z).
    r uses the largest learning rate of the run. This is what makes DR lose in regime A.
    """
    if sigma == 0:
        sigma = 1e-300
    e0 = grid_error(w_start, w_star, delta).ravel()
    r = float(dr_stall_distance(delta, alpha_max, mu))
    return float(mu / 2 * np.sum(_noisy_floor(e0, r, sigma, mu, delta, int(T))))


@statement("approximation", "derived here (docs/theory.md 2.7)",
           ("isotropic quadratic", "regime B: alpha sigma >= Delta, so the noise dithers the rounding",
            "constant alpha, stationary"))
def dr_dither_excess(d: int, delta: float, alpha: float, mu: float, sigma: float) -> float:
    """Stationary E[F - F*] of DR dithered by noise: mu/2 d (a^2 s^2 + Delta^2/12)/(a mu (2 - a mu)), a = alpha.

    The rounding error is then close to uniform on [-Delta/2, Delta/2] and uncorrelated with the
    state, i.e. extra gradient noise of variance Delta^2/12 per step.
    """
    return mu / 2 * d * (alpha**2 * sigma**2 + delta**2 / 12) / (alpha * mu * (2 - alpha * mu))

