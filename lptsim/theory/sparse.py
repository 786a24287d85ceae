"""Rows touched at their own frequencies: SR's and DR's excess per row, where they cross, and ALPT's shared step.

Setting (docs/theory.md 11.c, 11.d): a table of rows, each looked up with probability p per lookup, B lookups per
step, so a row is touched k ~ Binomial(B, p) times at a step (lptsim.sim.sparse draws exactly this). A lookup of
row r has loss mu/2 ||w_r - w*_r||^2 and gradient mu (w_r - w*_r) + sigma xi; the k lookups of a step add up, so the
row's step gradient is k mu e + sqrt(k) sigma xi. The row optimizer is SGD (lr alpha), the rows live on the grid
Delta Z (clipped to b bits when ``bits`` is given) and are written back with DR or SR; the start is rounded to
nearest. Coordinates then evolve independently, and each is a Markov chain on grid points whose one-step kernel is
the Binomial mixture sum_k P(k) K_k of the dense kernels with learning rate alpha k and noise sigma / sqrt(k)
(alpha k (mu e + sigma/sqrt(k) xi) is the same update). The law at any step T, and the stationary law, follow
exactly; that is what these statements compute.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import special, stats

from lptsim.quant import QuantSpec
from lptsim.theory._common import first_log_root
from lptsim.theory.chain import sr_transition_matrix, stationary_distribution
from lptsim.theory.optimal_step import _step_gradient_at
from lptsim.theory.registry import statement


def touch_pmf(p: float, batch: int, tail: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """(k, P(k)) for k ~ Binomial(batch, p): how many of a step's ``batch`` lookups hit a row of frequency p, cut
    where the remaining upper tail is below ``tail``."""
    if not 0 <= p <= 1:
        raise ValueError(f"p must lie in [0, 1], got {p!r}")
    kmax = int(stats.binom.isf(tail, batch, p)) + 1 if p > 0 else 0
    k = np.arange(0, min(kmax, batch) + 1)
    return k, stats.binom.pmf(k, batch, p)


def dr_transition_matrix(grad: Callable[[np.ndarray], np.ndarray], delta: float, alpha: float, sigma: float,
                         k_min: int, k_max: int) -> np.ndarray:
    """Row-stochastic P[k, j] of DR-SGD (floor(v + 1/2)) on grid points k_min..k_max: v ~ N(m_k, s^2) lands on j
    when j - 1/2 <= v < j + 1/2; the tails beyond the ends stay at the ends (the clip of a b-bit grid)."""
    ks = np.arange(k_min, k_max + 1)
    m = ks - alpha * grad(ks * delta) / delta
    s = alpha * sigma / delta
    edges = np.concatenate([[-np.inf], ks[1:] - 0.5, [np.inf]])  # code j takes v in [j - 1/2, j + 1/2)
    if s == 0:
        cdf = (m[:, None] >= edges[None, :]).astype(float)
        return cdf[:, :-1] - cdf[:, 1:]
    cdf = special.ndtr((edges[None, :] - m[:, None]) / s)
    return np.clip(cdf[:, 1:] - cdf[:, :-1], 0.0, None)


def _window(ws: float, start: float, delta: float, alpha: float, mu: float, sigma: float, kmax: int,
            spec: QuantSpec | None) -> tuple[int, int]:
    """Grid codes that hold the chain's mass: around w* and the start, wide enough for the stationary spread."""
    ks = np.arange(1, max(kmax, 1) + 1)
    a = np.minimum(alpha * ks * mu, 1.0)
    var = np.max((alpha**2 * ks * sigma**2 + delta**2 / 4) / (a * (2 - a)))  # Var(e): SGD's plus rounding's
    margin = int(np.ceil(6 * np.sqrt(var) / delta)) + 4
    lo = int(min(np.floor(ws / delta), np.floor(start / delta + 0.5))) - margin
    hi = int(max(np.ceil(ws / delta), np.floor(start / delta + 0.5))) + margin
    if spec is not None:
        lo, hi = max(lo, spec.qmin), min(hi, spec.qmax)
    return lo, hi


def _mixture_kernel(ws: float, p: float, batch: int, delta: float, alpha: float, mu: float, sigma: float,
                    rounding: str, lo: int, hi: int) -> np.ndarray:
    k, pmf = touch_pmf(p, batch)
    size = hi - lo + 1
    P = pmf[0] * np.eye(size)  # noqa: N806 - untouched: the row stays
    make = sr_transition_matrix if rounding == "sr" else dr_transition_matrix
    for kk, w in zip(k[1:], pmf[1:], strict=True):
        P += w * make(lambda x: mu * (x - ws), delta, alpha * kk, sigma / np.sqrt(kk), lo, hi)  # noqa: N806
    return P


def _coordinate_laws(ws: float, start: float, p: float, batch: int, delta: float, alpha: float, mu: float,
                     sigma: float, T: np.ndarray | None, rounding: str, spec: QuantSpec | None  # noqa: N803
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(grid values, probabilities at each step of T, shape (len(T), states)) of one coordinate (T None: the
    stationary law, one row)."""
    kmax = int(touch_pmf(p, batch)[0][-1])
    lo, hi = _window(ws, start, delta, alpha, mu, sigma, kmax, spec)
    P = _mixture_kernel(ws, p, batch, delta, alpha, mu, sigma, rounding, lo, hi)  # noqa: N806
    if T is None:
        return np.arange(lo, hi + 1) * delta, stationary_distribution(P)[None, :]
    law = np.zeros(hi - lo + 1)
    c0 = int(np.floor(start / delta + 0.5))
    if spec is not None:
        c0 = min(max(c0, spec.qmin), spec.qmax)
    law[c0 - lo] = 1.0
    out, done = np.empty((len(T), hi - lo + 1)), 0
    for i, t in enumerate(T):
        law = law @ np.linalg.matrix_power(P, int(t) - done)
        out[i], done = law, int(t)
    return np.arange(lo, hi + 1) * delta, out


@statement("exact", "derived here (docs/theory.md 11.c.1): the Binomial mixture of the dense SR / DR chains",
           ("per-row quadratic mu/2 ||w - w*||^2 per lookup, Gaussian gradient noise sigma per lookup and element",
            "k ~ Binomial(batch, p) lookups of the row per step, their gradients summed", "SGD on the row",
            "DR or SR onto the grid Delta Z (clipped to b bits if given), the start rounded to nearest"))
def sparse_row_excess(w_star: np.ndarray, w_start: np.ndarray, p: np.ndarray | float, batch: int, delta: float,
                      alpha: float, mu: float, sigma: float, T: int | np.ndarray | None = None,  # noqa: N803
                      rounding: str = "sr", bits: int | None = None) -> np.ndarray:
    """E[mu/2 ||w_T - w*||^2] of a row of frequency p after T steps (T None: stationary), for each p; T an array
    of increasing steps gives the mean over them (a measurement averaged over record times).

    Each coordinate is a chain whose kernel is sum_k Binomial(k; batch, p) K_k, K_0 = I and K_k the dense chain with
    learning rate alpha k and noise sigma/sqrt(k). A rare row (batch p << 1) is touched once at a time and waits in
    between; a frequent one averages k ~ batch p gradients per step, so its noise per unit of drift shrinks like
    1/sqrt(k) while SR's rounding noise does not.
    """
    if rounding not in ("sr", "dr"):
        raise ValueError(f"rounding must be 'sr' or 'dr', got {rounding!r}")
    spec = None if bits is None else QuantSpec(bits)
    ws = np.atleast_1d(np.asarray(w_star, dtype=float)).ravel()
    st = np.broadcast_to(np.asarray(w_start, dtype=float), ws.shape).ravel()
    ps = np.atleast_1d(np.asarray(p, dtype=float))
    times = None if T is None else np.atleast_1d(np.asarray(T, dtype=np.int64))
    if times is not None and (np.any(np.diff(times) < 0) or times[0] < 0):
        raise ValueError("T must be non-negative and increasing")
    out = np.zeros(ps.shape)
    for i, pi in enumerate(ps.ravel()):
        for w, s in zip(ws, st, strict=True):
            grid, laws = _coordinate_laws(w, s, float(pi), batch, delta, alpha, mu, sigma, times, rounding, spec)
            out.ravel()[i] += float(np.mean(laws @ (mu / 2 * (grid - w) ** 2)))
    return out


def sr_minus_dr(w_star: np.ndarray, w_start: np.ndarray, p: np.ndarray | float, batch: int, delta: float, alpha: float,
                mu: float, sigma: float, T: int | None = None, bits: int | None = None) -> np.ndarray:  # noqa: N803
    """SR's expected row excess minus DR's at step T (sparse_row_excess, both roundings)."""
    args = (w_star, w_start, p, batch, delta, alpha, mu, sigma, T)
    return sparse_row_excess(*args, rounding="sr", bits=bits) - sparse_row_excess(*args, rounding="dr", bits=bits)


@statement("approximation", "derived here (docs/theory.md 11.c.2): the sign change of sparse_row_excess(SR - DR)",
           ("the assumptions of sparse_row_excess", "one sign change of SR - DR in [p_lo, p_hi]",
            "located on a log grid of p and refined by Brent's method"))
def dr_sr_crossing(w_star: np.ndarray, w_start: np.ndarray, batch: int, delta: float, alpha: float, mu: float,
                   sigma: float, T: int, p_lo: float, p_hi: float) -> float:  # noqa: N803
    """The row frequency p at which DR's and SR's expected excess at step T are equal.

    Rarer rows see too few gradients for DR to escape its start (DR's steps are rounded away), so SR is better;
    more frequent rows are dithered by their own summed noise, and DR's rounding error (Delta^2/12 a step against
    SR's up to Delta^2/6) makes it the better one.
    """
    def diff(logp: np.ndarray) -> np.ndarray:
        return sr_minus_dr(w_star, w_start, np.exp(logp), batch, delta, alpha, mu, sigma, T)

    return first_log_root(lambda logp: float(diff(logp)[0]), p_lo, p_hi, 7, 1e-3,
                          f"SR - DR does not change sign for p in [{p_lo:g}, {p_hi:g}]", values=diff)


def _unique_rows(w_star: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (p, w*_row) pairs and how many rows share each."""
    w = np.atleast_2d(np.asarray(w_star, dtype=float))
    key = np.column_stack([np.broadcast_to(np.asarray(p, dtype=float), (w.shape[0],)), w])
    uniq, counts = np.unique(key, axis=0, return_counts=True)
    return uniq[:, 0], uniq[:, 1:], counts


@statement("approximation", "derived here (docs/theory.md 11.d.1): the frequency-weighted mean of ALPT's LSQ step "
           "gradient", ("per-row quadratic, Gaussian noise sigma, SGD on the rows (as sparse_row_excess)",
                        "one step shared by the rows given (a table or a field), SR write-back, b bits",
                        "the step moves slowly against the rows' mixing (two time scales)"), use="root", vary="delta")
def sparse_alpt_step_gradient(w_star: np.ndarray, p: np.ndarray, batch: int, delta: float, bits: int, alpha: float,
                              mu: float, sigma: float) -> float:
    """E[per-step gradient of a shared step] = sum_rows sum_k P(k; batch, p_r) k E_pi_r[sum_i g_hat_i lsq_i | k].

    A row touched k times contributes k times the dense step gradient at learning rate alpha k and noise
    sigma/sqrt(k) (alpt_step_gradient's per-state expectation), averaged over the row's own stationary law pi_r at
    Delta. Rows enter in proportion to their touch rate batch p_r: the frequent rows set the shared step.
    """
    spec = QuantSpec(bits)
    ps, ws, counts = _unique_rows(w_star, p)
    total = 0.0
    for pi, row, c in zip(ps, ws, counts, strict=True):
        k, pmf = touch_pmf(float(pi), batch)
        laws = np.array([stationary_distribution(_mixture_kernel(w, float(pi), batch, delta, alpha, mu, sigma, "sr",
                                                                 spec.qmin, spec.qmax)) for w in row])
        for kk, pk in zip(k[1:], pmf[1:], strict=True):  # every coordinate of the row at once: (coordinates, states)
            per_state = _step_gradient_at(row, delta, spec, alpha * kk, mu, sigma / np.sqrt(kk))
            total += c * pk * kk * float(np.sum(laws * per_state))
    return total


@statement("approximation", "derived here (docs/theory.md 11.d.1): the root of sparse_alpt_step_gradient",
           ("the assumptions of sparse_alpt_step_gradient", "one sign change in the bracket"))
def sparse_alpt_fixed_step(w_star: np.ndarray, p: np.ndarray, batch: int, bits: int, alpha: float, mu: float,
                           sigma: float, bracket: tuple[float, float]) -> float:
    """Where one step shared by these rows settles under ALPT: the root of their frequency-weighted step gradient.

    Rows touched rarely barely enter: a table step is the fixed point of its frequent rows, and the rare rows live
    on a grid chosen for others (what they pay: sparse_row_excess at this step against their own fixed point).
    """
    lo, hi = bracket

    def g(log_delta: float) -> float:
        return sparse_alpt_step_gradient(w_star, p, batch, float(np.exp(log_delta)), bits, alpha, mu, sigma)

    return first_log_root(g, lo, hi, 6, 1e-3, "the shared step's mean gradient does not change sign in the bracket; "
                          "widen it")
