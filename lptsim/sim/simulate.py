"""The simulator: run one method on one problem for many seeds at once (one array op per iteration)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lptsim.quant import QuantSpec
from lptsim.sim import optimizers
from lptsim.sim.methods import METHODS, AdaptiveLowPrecision, BinaryConnect
from lptsim.sim.problems import Problem

SCHEDULES: dict[str, Callable[[float, int, Problem], float]] = {
    "const": lambda lr, t, prob: lr,
    "inv_sqrt": lambda lr, t, prob: lr / np.sqrt(t),
    # Li et al. (2017), strongly convex: alpha_t = 1/(mu (t + 1)); lr is not used.
    "inv_t": lambda lr, t, prob: 1.0 / (prob.constants.mu * (t + 1)),
}


class DivergenceError(ValueError):
    """A run left finite values; ``iteration`` says when."""

    def __init__(self, method: str, iteration: int):
        super().__init__(f"simulate(method={method!r}) diverged: non-finite weights at iteration {iteration}"
                         " (lower lr or step)")
        self.iteration = iteration


@dataclass
class Trace:
    """Recorded metrics, each of shape (seeds, records) at iterations ``iters``."""

    method: str
    iters: np.ndarray
    excess: np.ndarray  # F(w_t) - F*
    excess_avg: np.ndarray  # F(mean of w_1..w_t) - F*
    grad_norm2: np.ndarray  # ||grad F(w_t)||^2
    dist: np.ndarray  # ||w_t - w*||
    unchanged: np.ndarray  # fraction of coordinates the step left unchanged (DR stagnation)
    step: np.ndarray | None = None  # ALPT: the learned step
    excess_quantized: np.ndarray | None = None  # BC: F(Q_nearest(w_t)) - F*
    weights: np.ndarray | None = None  # (seeds, records, d) when keep_weights=True
    final_weights: np.ndarray | None = None
    params: dict = field(default_factory=dict)

    def mean(self, name: str = "excess") -> np.ndarray:
        """Mean over seeds of a recorded metric."""
        return np.mean(getattr(self, name), axis=0)


def _on_sample(prob: Problem, sample: Any, w: np.ndarray) -> np.ndarray:
    return prob.sample_grad(w, sample)


def default_records(iters: int, count: int = 60) -> np.ndarray:
    """About ``count`` log-spaced iterations in [1, iters], always including both ends."""
    return np.unique(np.round(np.geomspace(1, iters, count)).astype(int))


def _check(prob: Problem, method: str, step: float | None, lr: float, schedule: str, iters: int, seeds: int,
           bits: int | None) -> QuantSpec | None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {schedule!r}")
    if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if method != "fp" and not (isinstance(step, (int, float)) and np.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive finite number for method {method!r}, got {step!r}")
    for name, value in (("iters", iters), ("seeds", seeds)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if schedule == "inv_t" and not prob.constants.mu > 0:
        raise ValueError(f"schedule 'inv_t' needs a strongly convex problem (mu > 0); {prob} has mu = 0")
    return None if bits is None else QuantSpec(bits)


def simulate(
    prob: Problem,
    method: str,
    step: float | None = None,
    lr: float = 0.1,
    schedule: str = "const",
    iters: int = 1000,
    seeds: int = 8,
    bits: int | None = None,
    record_at: Sequence[int] | None = None,
    w0: np.ndarray | None = None,
    seed: int = 0,
    exact_grad: bool = False,
    progress: bool = False,
    keep_weights: bool = False,
    optimizer: str = "sgd",
    optimizer_options: dict | None = None,
    **method_options: object,
) -> Trace:
    """Run ``method`` on ``prob`` for ``iters`` iterations and ``seeds`` independent seeds.

    Args:
        method: ``fp`` (SGD), ``dr`` / ``sr`` (LPT with DR / SR), ``bc`` (BinaryConnect /
            QAT: full-precision weights, gradient at the quantized point) or ``alpt``
            (learned step; ``step`` is the initial step and ``bits`` is required).
        step: grid step Delta (ignored by ``fp``).
        lr, schedule: alpha_t = lr (``const``), lr/sqrt(t) (``inv_sqrt``) or 1/(mu (t+1)) (``inv_t``).
        bits: clip the grid to the signed ``bits``-bit range; None = unbounded grid.
        record_at: iterations (1-based) at which to record; default ~60 log-spaced.
        w0: start (default ``prob.w0``); low-precision methods round it to nearest first.
        seed: fixes every draw (gradient noise and SR).
        exact_grad: use the full gradient instead of the stochastic oracle.
        keep_weights: also keep the weights at each record (``trace.weights``).
        optimizer: the update direction, as the CTR tables use: ``sgd``, ``adagrad`` (row-wise) or
            ``adam``; ``optimizer_options`` passes eps, betas or row_size (Adagrad's row length,
            default the whole vector).
        method_options: passed to the method (``forward_rounding`` for bc; ``step_lr``,
            ``min_step`` for alpt).

    Raises:
        ValueError: a bad parameter (message names it and what is allowed).
        DivergenceError: the weights left finite values (with the iteration).
    """
    spec = _check(prob, method, step, lr, schedule, iters, seeds, bits)
    records = default_records(iters) if record_at is None else np.unique(np.asarray(record_at, dtype=int))
    if records.size == 0 or records[0] < 1 or records[-1] > iters:
        raise ValueError(f"record_at must lie in [1, iters={iters}]")
    rng = np.random.Generator(np.random.SFC64(seed))  # 25% faster normals than PCG64; a seed fixes every draw
    opt = optimizers.make(optimizer, **(optimizer_options or {}))
    rule = METHODS[method](step=step, spec=spec, seed=seed, optimizer=opt, **method_options)
    start = np.broadcast_to(prob.w0 if w0 is None else np.asarray(w0, dtype=float), (seeds, prob.d))
    rule.start(np.array(start, dtype=float))
    alpha_at = SCHEDULES[schedule]

    shape = (seeds, records.size)
    out = {k: np.empty(shape) for k in ("excess", "excess_avg", "grad_norm2", "dist", "unchanged")}
    learned_step = np.empty(shape) if isinstance(rule, AdaptiveLowPrecision) else None
    quantized = np.empty(shape) if isinstance(rule, BinaryConnect) else None
    kept = np.empty(shape + (prob.d,)) if keep_weights else None
    running_sum = np.zeros((seeds, prob.d))
    k = 0
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught and reported below
        for t in tqdm(range(1, iters + 1), disable=not progress, desc=method, leave=False):
            before = rule.weights
            if exact_grad:
                grad_at = prob.grad
            else:  # one sample per iteration: a second gradient in the same step sees the same batch
                sample = prob.draw(rng, seeds)
                grad_at = partial(_on_sample, prob, sample)
            rule.step(grad_at, alpha_at(lr, t, prob))
            w = rule.weights
            if not np.isfinite(w).all():
                raise DivergenceError(method, t)
            running_sum += w
            if t == records[k]:
                out["excess"][:, k] = prob.F(w) - prob.f_star
                out["excess_avg"][:, k] = prob.F(running_sum / t) - prob.f_star
                out["grad_norm2"][:, k] = np.sum(prob.grad(w) ** 2, axis=1)
                out["dist"][:, k] = np.linalg.norm(w - prob.w_star, axis=1)
                out["unchanged"][:, k] = np.mean(w == before, axis=1)
                if learned_step is not None:
                    learned_step[:, k] = rule.grid_step[:, 0]
                if quantized is not None:
                    quantized[:, k] = prob.F(rule.deployed) - prob.f_star
                if kept is not None:
                    kept[:, k] = w
                k += 1
                if k == records.size:
                    break
    params = dict(problem=repr(prob), method=method, step=step, lr=lr, schedule=schedule, iters=iters,
                  seeds=seeds, bits=bits, seed=seed, exact_grad=exact_grad, optimizer=optimizer,
                  optimizer_options=optimizer_options, **method_options)
    return Trace(method=method, iters=records, step=learned_step, excess_quantized=quantized, weights=kept,
                 final_weights=rule.weights.copy(), params=params, **out)
