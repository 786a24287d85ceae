"""The exact stationary distribution of SR on a 1-D grid (a finite Markov chain on grid points).

From grid point k, the update is v = k - alpha (F'(k Delta) + sigma xi) / Delta with
xi ~ N(0, 1), then SR moves to floor(v) + 1 with probability frac(v). The probability of
landing on j is E[max(0, 1 - |v - j|)] (the "tent" of SR), which for v ~ N(m, s^2) is
R(a + 1) - 2 R(a) + R(a - 1) with a = m - j and R(x) = E[(x + s Z)^+] = x Phi(x/s) + s phi(x/s).
Derived here (docs/theory.md section 8); it is the chain behind Li et al.'s (2017)
argument that SR's stationary law does not concentrate as alpha -> 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import linalg, sparse, special, stats

from lptsim.theory.registry import statement


def _ramp_mean(x: np.ndarray, s: float) -> np.ndarray:
    """E[(x + s Z)^+] for Z ~ N(0, 1)."""
    if s == 0:
        return np.maximum(x, 0.0)
    z = x / s  # special.ndtr and the density written out: stats.norm's per-call overhead dominated the sparse chains
    return x * special.ndtr(z) + s * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)


def sr_transition_matrix(grad: Callable[[np.ndarray], np.ndarray], delta: float, alpha: float, sigma: float,
                         k_min: int, k_max: int) -> np.ndarray:
    """Row-stochastic matrix P[k, j] of SR-SGD on grid points k_min..k_max (mass leaving is folded back)."""
    ks = np.arange(k_min, k_max + 1)
    m = ks - alpha * grad(ks * delta) / delta  # mean of v from each state
    s = alpha * sigma / delta
    a = m[:, None] - ks[None, :]
    P = _ramp_mean(a + 1, s) - 2 * _ramp_mean(a, s) + _ramp_mean(a - 1, s)
    P = np.clip(P, 0.0, None)
    # Mass beyond the ends (negligible when the range is wide) stays at the nearest end.
    P[:, 0] += np.clip(1 - P.sum(axis=1), 0.0, None) * (m < (k_min + k_max) / 2)
    P[:, -1] += np.clip(1 - P.sum(axis=1), 0.0, None)
    return P / P.sum(axis=1, keepdims=True)


def stationary_distribution(P: np.ndarray) -> np.ndarray:
    """The probability vector pi with pi P = pi (unique for an irreducible chain)."""
    n = P.shape[0]
    A = np.vstack([P.T - np.eye(n), np.ones(n)])
    b = np.zeros(n + 1)
    b[-1] = 1.0
    pi = linalg.lstsq(A, b)[0]
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def sr_stationary(grad: Callable[[np.ndarray], np.ndarray], delta: float, alpha: float, sigma: float,
                  w_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Grid points and the exact stationary probabilities of SR-SGD restricted to ``w_range``."""
    k_min, k_max = int(np.floor(w_range[0] / delta)), int(np.ceil(w_range[1] / delta))
    P = sr_transition_matrix(grad, delta, alpha, sigma, k_min, k_max)
    return np.arange(k_min, k_max + 1) * delta, stationary_distribution(P)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance 1/2 sum |p - q| between two probability vectors."""
    return float(0.5 * np.sum(np.abs(np.asarray(p) - np.asarray(q))))


@statement("exact", "derived here (docs/theory.md 4.3): the exact SR chain on the grid",
           ("one dimension", "Gaussian gradient noise sigma", "the range holds the stationary mass"))
def sr_stationary_expectation(grad: Callable[[np.ndarray], np.ndarray], delta: float, alpha: float, sigma: float,
                              w_range: tuple[float, float], fn: Callable[[np.ndarray], np.ndarray]) -> float:
    """E[fn(w)] under SR-SGD's exact stationary law on the grid (see :func:`sr_stationary`)."""
    grid, pi = sr_stationary(grad, delta, alpha, sigma, w_range)
    return float(np.sum(pi * fn(grid)))


def sgd_stationary(grad: Callable[[np.ndarray], np.ndarray], alpha: float, sigma: float,
                   w_range: tuple[float, float], start: Callable[[np.ndarray], np.ndarray] | None = None,
                   cells_per_sd: int = 6, iters: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres and the stationary law of full-precision SGD w <- w - alpha (F'(w) + sigma xi), discretized.

    The Gaussian kernel is integrated over cells of width alpha sigma / cells_per_sd; the law is
    found by iterating from ``start`` (a density over the cells, default uniform) until it stops
    changing (L1 < 1e-12), so a multi-well F keeps the mass split it starts with, as simulated
    chains that never cross do.
    """
    s = alpha * sigma
    h = s / cells_per_sd
    centres = np.arange(w_range[0] + h / 2, w_range[1], h)
    edges = np.append(centres - h / 2, centres[-1] + h / 2)
    mean = centres - alpha * grad(centres)
    width = int(np.ceil(8 * s / h)) + 1
    rows, cols, vals = [], [], []
    for i, m in enumerate(mean):
        j0 = max(int(np.floor((m - w_range[0]) / h)) - width, 0)
        j1 = min(j0 + 2 * width + 2, centres.size)
        cdf = stats.norm.cdf((edges[j0:j1 + 1] - m) / s)
        p = np.diff(cdf)
        rows.append(np.full(p.size, i))
        cols.append(np.arange(j0, j1))
        vals.append(p / p.sum())
    P = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(centres.size, centres.size))
    pi = np.ones(centres.size) if start is None else np.asarray(start(centres), dtype=float)
    pi = pi / pi.sum()
    PT = P.T.tocsr()  # noqa: N806
    for k in range(iters):
        nxt = PT @ pi
        if k % 50 == 0 and np.abs(nxt - pi).sum() < 1e-12:
            break
        pi = nxt
    return centres, nxt / nxt.sum()


@statement("exact", "derived here (docs/theory.md 4.3): full-precision SGD's chain, discretized",
           ("one dimension", "Gaussian gradient noise sigma", "the range holds the stationary mass",
            "the chain mixes within the wells it starts in"))
def sgd_stationary_expectation(grad: Callable[[np.ndarray], np.ndarray], alpha: float, sigma: float,
                               w_range: tuple[float, float], fn: Callable[[np.ndarray], np.ndarray],
                               start: Callable[[np.ndarray], np.ndarray] | None = None) -> float:
    """E[fn(w)] under SGD's stationary law (see :func:`sgd_stationary`)."""
    centres, pi = sgd_stationary(grad, alpha, sigma, w_range, start)
    return float(np.sum(pi * fn(centres)))


@statement("exact", "Li et al. (2017), Sec. 5: BC's chain concentrates as alpha -> 0, SR's does not; its exact "
           "stationary law derived here (docs/theory.md 4.4)",
           ("one dimension", "Gaussian gradient noise sigma", "BC: w <- w - alpha (F'(Q_DR(w)) + sigma xi)",
            "the range holds the stationary mass", "the chain mixes within the wells it starts in"))
def bc_stationary_expectation(grad: Callable[[np.ndarray], np.ndarray], delta: float, alpha: float, sigma: float,
                              w_range: tuple[float, float], fn: Callable[[np.ndarray], np.ndarray],
                              start: Callable[[np.ndarray], np.ndarray] | None = None) -> float:
    """E[fn(w)] under BinaryConnect's stationary law: SGD's discretized chain with the drift taken at Q_DR(w).

    BC keeps full-precision weights, so its law sharpens with alpha like SGD's (its drift is piecewise
    constant on grid cells): it concentrates towards the minimisers down to the grid's resolution, while
    SR's law on the grid does not sharpen at all (4.3).
    """
    centres, pi = sgd_stationary(lambda w: grad(delta * np.floor(np.asarray(w) / delta + 0.5)), alpha, sigma,
                                 w_range, start)
    return float(np.sum(pi * fn(centres)))
