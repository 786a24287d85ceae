"""Row optimizers for the simulator: the update direction u with w <- w - alpha u (optax-like: state in, state out).

The same three the CTR tables use (lptsim.ctr.embedding.RowOptimizer): SGD; row-wise Adagrad, one
accumulator per row of ``row_size`` coordinates holding the sum of the row's mean squared gradient;
Adam with bias correction. Arrays are (seeds, d); a row is ``row_size`` consecutive coordinates.
"""

from __future__ import annotations

from collections.abc import Callable

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
        self.acc = np.zeros((seeds, d // size, 1))

    def direction(self, g: np.ndarray) -> np.ndarray:
        rows = g.reshape(g.shape[0], -1, self.size)
        self.acc += np.mean(rows * rows, axis=2, keepdims=True)
        return (rows / (np.sqrt(self.acc) + self.eps)).reshape(g.shape)


class Adam:
    """u = m_hat / (sqrt(v_hat) + eps), element-wise moments with bias correction (Kingma and Ba, 2015)."""

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, **_: object):
        self.b1, self.b2 = betas
        self.eps = eps

    def start(self, shape: tuple[int, int]) -> None:
        self.m, self.v, self.t = np.zeros(shape), np.zeros(shape), 0

    def direction(self, g: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        return (self.m / (1 - self.b1**self.t)) / (np.sqrt(self.v / (1 - self.b2**self.t)) + self.eps)


OPTIMIZERS: dict[str, Callable[..., SGD | RowAdagrad | Adam]] = {"sgd": SGD, "adagrad": RowAdagrad, "adam": Adam}


def make(name: str, **options: object) -> SGD | RowAdagrad | Adam:
    """An optimizer by name (``sgd``, ``adagrad``, ``adam``) with its options (eps, betas, row_size)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[name](**options)
