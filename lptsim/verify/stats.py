"""Small statistics for the checks: log-log slopes with bootstrap intervals, confidence limits."""

from __future__ import annotations

import numpy as np
from scipy import stats


def loglog_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def bootstrap_slope(x: np.ndarray, per_seed: np.ndarray, reps: int = 2000, seed: int = 0,
                    level: float = 0.95) -> tuple[float, float, float]:
    """Slope of log(mean over seeds) against log x, with a bootstrap interval over seeds.

    ``per_seed`` has shape (seeds, len(x)). Returns (slope, low, high).
    """
    per_seed = np.asarray(per_seed, dtype=float)
    slope = loglog_slope(x, per_seed.mean(axis=0))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, per_seed.shape[0], size=(reps, per_seed.shape[0]))
    means = per_seed[idx].mean(axis=1)  # (reps, len(x))
    logx = np.log(x)
    xc = logx - logx.mean()
    ly = np.log(means)
    slopes = (ly - ly.mean(axis=1, keepdims=True)) @ xc / np.sum(xc * xc)
    lo, hi = np.quantile(slopes, [(1 - level) / 2, (1 + level) / 2])
    return slope, float(lo), float(hi)


def upper_confidence_limit(samples: np.ndarray, level: float = 0.95, axis: int = 0) -> np.ndarray:
    """One-sided upper confidence limit of the mean (Student t) along ``axis``."""
    samples = np.asarray(samples, dtype=float)
    n = samples.shape[axis]
    se = samples.std(axis=axis, ddof=1) / np.sqrt(n)
    return samples.mean(axis=axis) + stats.t.ppf(level, n - 1) * se
