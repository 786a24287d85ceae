"""Helpers shared by the theory modules: grid starts, schedules, record points, Gaussian tails."""

from __future__ import annotations

import math
from collections.abc import Callable

import numba as nb
import numpy as np
from scipy import optimize


def grid_error(w_start: np.ndarray, w_star: np.ndarray, delta: float) -> np.ndarray:
    """e0 = Q(w_start) - w*, with Q round-to-nearest (floor(v + 1/2)) as the simulator starts LPT runs."""
    w_start, w_star = np.broadcast_arrays(np.asarray(w_start, dtype=float), np.asarray(w_star, dtype=float))
    return delta * np.floor(w_start / delta + 0.5) - w_star


def as_schedule(alphas: np.ndarray | float, T: int | None = None) -> np.ndarray:  # noqa: N803
    """The learning rates alpha_1..alpha_T as a float array (a scalar is repeated T times)."""
    a = np.asarray(alphas, dtype=float)
    if a.ndim == 0:
        if T is None:
            raise ValueError("a constant alpha needs T")
        a = np.full(int(T), float(a))
    if a.ndim != 1 or a.size == 0 or not np.all((a > 0) & np.isfinite(a)):
        raise ValueError("alphas must be a non-empty 1-D array of positive finite learning rates")
    return a


def records(T: int, record_at: np.ndarray | None) -> np.ndarray:  # noqa: N803
    """1-based iterations at which to report (default: T alone), validated."""
    r = np.array([T]) if record_at is None else np.unique(np.asarray(record_at, dtype=np.int64))
    if r.size == 0 or r[0] < 1 or r[-1] > T:
        raise ValueError(f"record_at must lie in [1, T={T}]")
    return r


@nb.njit(cache=True)
def norm_sf(z: float) -> float:
    """P(N(0, 1) > z)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@nb.njit(cache=True)
def norm_cdf(z: float) -> float:
    """P(N(0, 1) <= z)."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def first_log_root(f: Callable[[float], float], lo: float, hi: float, points: int, xtol: float, what: str,
                   values: Callable[[np.ndarray], np.ndarray] | None = None) -> float:
    """The x in [lo, hi] where ``f(log x)`` first changes sign: located on ``points`` log-spaced points (their
    values from ``values(log grid)`` when given, e.g. one vectorised call; else ``f`` at each), refined by Brent's
    method to ``xtol`` in log x. ``what`` is the error message when there is no sign change."""
    grid = np.linspace(np.log(lo), np.log(hi), points)
    found = np.asarray(values(grid) if values is not None else [f(x) for x in grid], dtype=float)
    change = np.nonzero(np.sign(found[:-1]) != np.sign(found[1:]))[0]
    if change.size == 0:
        raise ValueError(what)
    i = int(change[0])
    return float(np.exp(optimize.brentq(f, grid[i], grid[i + 1], xtol=xtol)))
