"""LPT under the adaptive row optimizers the CTR tables use: when DR freezes under Adam and row-wise Adagrad.

DR leaves a grid coordinate unchanged when the optimizer's step on it is below Delta/2 (section 2.1),
whatever produced the step. Adam's step is normalised, so it barely depends on the gradient's size;
row-wise Adagrad's shrinks like 1/sqrt(updates). Derivations: docs/theory.md, section 8.
"""

from __future__ import annotations

import numpy as np

from lptsim.theory.registry import statement


@statement("exact", "derived here (docs/theory.md 8.1)",
           ("exact gradients", "DR, the iterate frozen on the grid", "Adam with bias correction"))
def adam_frozen_step(g: np.ndarray, alpha: float, eps: float = 1e-8) -> np.ndarray:
    """|alpha m_hat/(sqrt(v_hat) + eps)| = alpha |g|/(|g| + eps): every Adam step while DR keeps w frozen.

    With a frozen iterate the gradient is constant, so m_hat = g and v_hat = g^2 exactly: each step is
    alpha whatever the gradient's size. DR therefore freezes from the first step, for good, iff this is
    below Delta/2 (by induction); otherwise the coordinate moves at step 1.
    """
    a = np.abs(np.asarray(g, dtype=float))
    return alpha * a / (a + eps)


@statement("upper bound", "derived here (docs/theory.md 8.2): Cauchy-Schwarz on Adam's two averages",
           ("any gradient sequence", "Adam with bias correction, eps = 0"))
def adam_step_bound(t: int | np.ndarray, betas: tuple[float, float] = (0.9, 0.999)) -> np.ndarray:
    """|m_hat_t / sqrt(v_hat_t)| <= c_t = (1-b1)/(1-b1^t) sqrt((1-b2^t)/(1-b2)) sqrt(sum_{k<t} (b1^2/b2)^k).

    c_1 = 1; for the default betas c_t rises to 7.3. So alpha c_T < Delta/2 freezes DR for T steps for
    ANY gradients; Adam's step can exceed alpha (the folk 'Adam steps are about alpha' is not a bound).
    """
    b1, b2 = betas
    t = np.asarray(t, dtype=float)
    r = b1 * b1 / b2
    geometric = (1 - r**t) / (1 - r) if r != 1 else t
    return (1 - b1) / (1 - b1**t) * np.sqrt((1 - b2**t) / (1 - b2)) * np.sqrt(geometric)


def _row_rms(g: np.ndarray, row_size: int | None) -> np.ndarray:
    g = np.asarray(g, dtype=float)
    size = g.shape[-1] if row_size is None else row_size
    rows = g.reshape(*g.shape[:-1], -1, size)
    return np.repeat(np.sqrt(np.mean(rows * rows, axis=-1)), size, axis=-1)


@statement("approximation", "derived here (docs/theory.md 8.3)",
           ("exact gradients, nearly constant over the run (the start is far from w*)", "DR",
            "row-wise Adagrad, eps negligible"))
def adagrad_dr_stall_updates(g: np.ndarray, alpha: float, delta: float, row_size: int | None = None) -> np.ndarray:
    """The last update N_i = floor((2 alpha |g_i| / (Delta rms_row(g)))^2) at which DR still moves coordinate i.

    Row-wise Adagrad's n-th step on coordinate i is alpha g_i / (sqrt(n) rms_row(g)) for a constant
    gradient; DR moves it while that is >= Delta/2 and never after: the frozen fraction after n updates
    is the fraction of coordinates with N_i < n.
    """
    g = np.asarray(g, dtype=float)
    return np.floor((2 * alpha * np.abs(g) / (delta * _row_rms(g, row_size))) ** 2)


@statement("approximation", "derived here (docs/theory.md 8.3)",
           ("exact gradients, nearly constant over the run (the start is far from w*)", "DR",
            "row-wise Adagrad, eps negligible", "F = mu/2 ||w - w*||^2"))
def adagrad_dr_travel(w_start: np.ndarray, w_star: np.ndarray, alpha: float, delta: float, mu: float, n: int,
                      row_size: int | None = None) -> np.ndarray:
    """How far DR + row-wise Adagrad moves each coordinate in n updates: Delta sum_k round(step_k / Delta).

    step_k = alpha |g_i| / (sqrt(k) rms_row(g)) with g the gradient at the start; DR rounds each step to
    whole grid steps (round half up), so the travel stops at update N_i (adagrad_dr_stall_updates),
    while SR or full precision keep travelling. The final error is |e_i(0)| minus this.
    """
    w0 = delta * np.floor(np.asarray(w_start, dtype=float) / delta + 0.5)
    g = mu * (w0 - np.asarray(w_star, dtype=float))
    scale = alpha * np.abs(g) / (_row_rms(g, row_size) * delta)
    k = np.arange(1, n + 1)
    return delta * np.floor(np.outer(1 / np.sqrt(k), scale) + 0.5).sum(axis=0)


@statement("upper bound", "derived here (docs/theory.md 8.4)", ("row-wise Adagrad", "any gradients"))
def adagrad_step_bound(row_size: int) -> float:
    """|g_i| / sqrt(S) <= sqrt(row_size): row-wise Adagrad never moves an element by more than alpha sqrt(row_size).

    S includes the current row's mean square, which is at least g_i^2 / row_size. So alpha sqrt(row_size) < Delta/2
    freezes DR for good, whatever the gradients.
    """
    return float(np.sqrt(row_size))
