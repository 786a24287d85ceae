"""Update rules of the simulator, one small class per method (composable, no if-ladders).

Each rule holds its own state and exposes ``start(w0)``, ``step(grad_at, alpha)`` and
``weights`` (the point whose loss is recorded). The full-precision update is ``alpha * u`` with
``u`` the row optimizer's direction (lptsim.sim.optimizers: SGD, row-wise Adagrad, Adam). All
rounding goes through lptsim.quant; SR draws use counters that advance by ``seeds * d`` per
rounding call, so every element of every call has its own draw.
"""

from __future__ import annotations

from collections.abc import Callable

import numba as nb
import numpy as np

from lptsim.quant import QuantSpec, quantize, rounding
from lptsim.quant.lsq import lsq_one
from lptsim.quant.philox import check_seed_offset
from lptsim.quant.rounding import _round_one, grid_values
from lptsim.sim.optimizers import SGD

GradFn = Callable[[np.ndarray], np.ndarray]


class Rounder:
    """Puts (seeds, d) arrays on the grid ``step * codes`` with one rounding mode and its own SR stream."""

    def __init__(self, spec: QuantSpec | None, rounding: str, seed: int):
        self.spec, self.rounding, self.seed = spec, rounding, seed
        self.counter = 0

    def codes(self, x: np.ndarray, step: float | np.ndarray) -> np.ndarray:
        c = quantize(x, step, self.spec, self.rounding, seed=self.seed, offset=self.counter)
        self.counter += x.size
        return c

    def __call__(self, x: np.ndarray, step: float | np.ndarray) -> np.ndarray:
        """The grid values (lptsim.quant's fast path: the same roundings and counters as ``codes(x, step) * step``)."""
        steps = np.broadcast_to(np.asarray(step, dtype=np.float64).reshape(-1), (x.shape[0],))
        out = grid_values(np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(steps), self.spec,
                          self.rounding, self.seed, self.counter)
        self.counter += x.size
        return out


class FullPrecision:
    """Full precision: w <- w - alpha u(g)."""

    def __init__(self, optimizer: object | None = None, **_: object):
        self.weights: np.ndarray
        self.opt = optimizer or SGD()

    def start(self, w0: np.ndarray) -> None:
        self.weights = w0.copy()
        self.opt.start(w0.shape)

    def step(self, grad_at: GradFn, alpha: float) -> None:
        self.weights = self.weights - alpha * self.opt.direction(grad_at(self.weights))


class LowPrecision:
    """LPT: w <- Q(w - alpha u(g)), kept on the grid (DR or SR). The start is rounded to nearest."""

    def __init__(self, step: float, spec: QuantSpec | None, rounding: str, seed: int, optimizer: object | None = None,
                 **_: object):
        self.grid_step = step
        self.round = Rounder(spec, rounding, seed)
        self.nearest = Rounder(spec, "nearest", seed)
        self.opt = optimizer or SGD()

    def start(self, w0: np.ndarray) -> None:
        self.weights = self.nearest(w0, self.grid_step)
        self.opt.start(w0.shape)

    def step(self, grad_at: GradFn, alpha: float) -> None:
        self.weights = self.round(self.weights - alpha * self.opt.direction(grad_at(self.weights)), self.grid_step)


class BinaryConnect:
    """BC / QAT: full-precision weights, gradient taken at the quantized point Q(w).

    ``weights`` are the full-precision weights; ``deployed`` is their round-to-nearest
    quantization (what a quantized model would ship), recorded as ``excess_quantized``.
    """

    def __init__(self, step: float, spec: QuantSpec | None, seed: int, forward_rounding: str = "nearest",
                 optimizer: object | None = None, **_: object):
        self.grid_step = step
        self.forward = Rounder(spec, forward_rounding, seed)
        self.nearest = Rounder(spec, "nearest", seed)
        self.opt = optimizer or SGD()

    def start(self, w0: np.ndarray) -> None:
        self.weights = w0.copy()
        self.opt.start(w0.shape)

    def step(self, grad_at: GradFn, alpha: float) -> None:
        self.weights = self.weights - alpha * self.opt.direction(grad_at(self.forward(self.weights, self.grid_step)))

    @property
    def deployed(self) -> np.ndarray:
        return self.nearest(self.weights, self.grid_step)


class AdaptiveLowPrecision:
    """ALPT (the paper's Algorithm 1 on a synthetic problem): learn the step, then write back with SR.

    One learned step per seed (the whole parameter vector shares it, like one embedding row).
    Per iteration: (1) g at the current grid point, w_half = w - alpha u(g); (2) a second
    gradient at the round-to-nearest point Q(w_half) gives the step gradient
    sum_i g_i * lsq_i / sqrt(d * qmax); (3) step <- max(step - step_lr * grad, min_step);
    (4) w <- step * SR(w_half / step).
    """

    def __init__(self, step: float, spec: QuantSpec | None, seed: int, step_lr: float = 1e-3,
                 min_step: float = 1e-8, optimizer: object | None = None, **_: object):
        if spec is None:
            raise ValueError("method 'alpt' needs bits (its step gradient depends on the clip range)")
        self.spec, self.init_step, self.step_lr, self.min_step = spec, step, step_lr, min_step
        self.sr = Rounder(spec, "stochastic", seed)
        self.nearest = Rounder(spec, "nearest", seed)
        self.opt = optimizer or SGD()

    def start(self, w0: np.ndarray) -> None:
        self.grid_step = np.full((w0.shape[0], 1), float(self.init_step))
        self.weights = self.nearest(w0, self.grid_step)
        self.opt.start(w0.shape)

    def step(self, grad_at: GradFn, alpha: float) -> None:
        w_half = np.ascontiguousarray(self.weights - alpha * self.opt.direction(grad_at(self.weights)))
        g_hat = grad_at(self.nearest(w_half, self.grid_step))
        scale = 1.0 / np.sqrt(w_half.shape[1] * self.spec.qmax) if self.spec.qmax > 0 else 1.0
        seed, offset = check_seed_offset(self.sr.seed, self.sr.counter, w_half.size)
        steps = np.ascontiguousarray(self.grid_step[:, 0])
        weights = np.empty_like(w_half)
        _alpt_write_back(w_half, np.ascontiguousarray(g_hat, dtype=np.float64), steps, self.step_lr * scale,
                         self.min_step, float(self.spec.qmin), float(self.spec.qmax), seed, offset,
                         rounding.active_rule().args(), weights)
        self.sr.counter += w_half.size
        self.grid_step, self.weights = steps[:, None], weights


@nb.njit(cache=True)
def _alpt_write_back(w_half, g_hat, steps, lr_scaled, min_step, qmin, qmax, seed, offset, rule, out):
    """ALPT steps (3) and (4) fused, per row: step -= lr * sum_j g_hat_j lsq_j (nearest codes), then SR onto the
    new grid. Rounding and LSQ terms come from lptsim.quant (_round_one under the active rounding rule, lsq_one);
    steps is updated in place."""
    cols = w_half.shape[1]
    for r in range(w_half.shape[0]):
        step = steps[r]
        acc = 0.0
        for j in range(cols):
            x = w_half[r, j]
            code = _round_one(x, step, False, seed, np.uint64(0), qmin, qmax, rule)
            acc += g_hat[r, j] * lsq_one(x / step, code, qmin, qmax)
        step = max(step - lr_scaled * acc, min_step)
        steps[r] = step
        for j in range(cols):
            counter = offset + np.uint64(r * cols + j)
            out[r, j] = step * _round_one(w_half[r, j], step, True, seed, counter, qmin, qmax, rule)


METHODS: dict[str, Callable[..., object]] = {
    "fp": FullPrecision,
    "dr": lambda **kw: LowPrecision(rounding="nearest", **kw),
    "sr": lambda **kw: LowPrecision(rounding="stochastic", **kw),
    "bc": BinaryConnect,
    "alpt": AdaptiveLowPrecision,
}
