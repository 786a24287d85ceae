"""Row optimizers for the simulator: the update direction u with w <- w - alpha u (optax-like: state in, state out).

The same three the CTR tables use (lptsim.ctr.embedding.RowOptimizer): SGD; row-wise Adagrad, one
accumulator per row of ``row_size`` coordinates holding the sum of the row's mean squared gradient;
Adam with bias correction. Arrays are (seeds, d); a row is ``row_size`` consecutive coordinates.
"""

from __future__ import annotations

from collections.abc import Callable

import numba as nb
import numpy as np


class SGD:
    """u = g."""

    def __init__(self, **_: object):
        pass

    def start(self, shape: tuple[int, int]) -> None:
        pass

    def direction(self, g: np.ndarray) -> np.ndarray:
        return g


class RowAdagrad:
    """u = g / (sqrt(S) + eps) with S += mean of g^2 over the row (FBGEMM's row-wise Adagrad)."""

    def __init__(self, eps: float = 1e-8, row_size: int | None = None, **_: object):
        self.eps, self.row_size = eps, row_size

    def start(self, shape: tuple[int, int]) -> None:
        seeds, d = shape
        size = d if self.row_size is None else self.row_size
        if size < 1 or d % size:
            raise ValueError(f"row_size must divide d={d}, got {size}")
        self.size = size
        self.acc = np.zeros(seeds * (d // size))

    def direction(self, g: np.ndarray) -> np.ndarray:
        out = np.empty(g.shape)
        _adagrad_rows(np.ascontiguousarray(g, dtype=np.float64).reshape(-1, self.size), self.acc, self.eps,
                      out.reshape(-1, self.size))
        return out


class Adam:
    """u = m_hat / (sqrt(v_hat) + eps), element-wise moments with bias correction (Kingma and Ba, 2015)."""

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, **_: object):
        self.b1, self.b2 = betas
        self.eps = eps

    def start(self, shape: tuple[int, int]) -> None:
        self.m, self.v, self.t = np.zeros(shape), np.zeros(shape), 0

    def direction(self, g: np.ndarray) -> np.ndarray:
        self.t += 1
        out = np.empty(g.shape)
        _adam(np.ascontiguousarray(g, dtype=np.float64).ravel(), self.m.reshape(-1), self.v.reshape(-1), self.b1,
              self.b2, 1 / (1 - self.b1**self.t), 1 / np.sqrt(1 - self.b2**self.t), self.eps, out.reshape(-1))
        return out


@nb.njit(cache=True)
def _adagrad_rows(g, acc, eps, out):
    """One pass per row: acc += mean(g^2); out = g / (sqrt(acc) + eps) (the state is updated in place)."""
    for r in range(g.shape[0]):
        s = 0.0
        for j in range(g.shape[1]):
            s += g[r, j] * g[r, j]
        acc[r] += s / g.shape[1]
        scale = 1.0 / (np.sqrt(acc[r]) + eps)
        for j in range(g.shape[1]):
            out[r, j] = g[r, j] * scale


@nb.njit(cache=True)
def _adam(g, m, v, b1, b2, inv_bc1, inv_sqrt_bc2, eps, out):
    """One pass: the two moments in place, then m_hat / (sqrt(v_hat) + eps) with the bias corrections folded in."""
    for i in range(g.size):
        m[i] = b1 * m[i] + (1 - b1) * g[i]
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
        out[i] = m[i] * inv_bc1 / (np.sqrt(v[i]) * inv_sqrt_bc2 + eps)


OPTIMIZERS: dict[str, Callable[..., SGD | RowAdagrad | Adam]] = {"sgd": SGD, "adagrad": RowAdagrad, "adam": Adam}


def make(name: str, **options: object) -> SGD | RowAdagrad | Adam:
    """An optimizer by name (``sgd``, ``adagrad``, ``adam``) with its options (eps, betas, row_size)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[name](**options)
