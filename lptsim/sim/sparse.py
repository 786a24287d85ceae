"""Sparse embedding problems: n rows x d, rows looked up at Zipf (or measured) frequencies, lazy row optimizers.

A CTR embedding table is nothing like the dense problems of :mod:`lptsim.sim.problems`: at each step a batch of
lookups touches a few rows, and only those rows (and their optimizer state) change. This module simulates that,
with the CTR table's semantics (:mod:`lptsim.ctr.table.backends.torch_reference`):

* a step draws ``batch`` lookups; duplicates of a row add their gradients (the table's segment sum);
* row optimizers: ``sgd``; row-wise ``adagrad`` (one accumulator per row, += mean of the row's squared gradient);
  lazy ``adam`` (moments updated only on touched rows, bias corrections with the *global* step count, like
  ``torch.optim.SparseAdam``); ``adam_rowstep`` (the same with each row's own touch count);
* methods ``fp``, ``dr``, ``sr`` (LPT on a fixed step) and ``alpt`` (learned steps, one per ``row``, ``field`` or
  ``table``; the step gradient is the LSQ term at the round-to-nearest point, with the second gradient taken on
  the same batch; the shared step receives the sum over its touched rows; then SR onto the new steps);
* losses: ``quadratic`` (per lookup mu/2 ||w_r - w*_r||^2 with Gaussian gradient noise sigma per element; k
  duplicates give k mu e + sigma sqrt(k) xi, the exact law of their summed gradient), ``logistic`` (per lookup a
  label y ~ Bernoulli(sigmoid(<w*_r, a>)) and loss -log-likelihood of sigmoid(<w_r, a>): label noise), and the
  coupled ``fm`` model (one id per field per sample, logit = sum_f <w_f, a> + fm sum_{f<f'} <w_f, w_f'>, labels
  from a teacher table).

Every random draw is a Philox4x32-10 output of :mod:`lptsim.quant.philox` keyed by the run's seed and the seed
index, each use in its own counter range (the stream in the top bits, then the step, row and element: the layout is
in :mod:`lptsim.sim.sparse_kernel`); Gaussian noise is four normals a counter (:mod:`lptsim.sim.noise`); rounding
goes through :mod:`lptsim.quant.rounding` (``_round_one`` with SR's own draw per element, so a planted rounding
fault reaches the simulator) and the LSQ term through :func:`lptsim.quant.lsq.lsq_one`. Seeds run in parallel (one
numba thread each); the kernel and what it costs per touched element are in :mod:`lptsim.sim.sparse_kernel` and
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lptsim.ctr.contract import step_seed
from lptsim.quant import QuantSpec, rounding
from lptsim.sim import sparse_kernel
from lptsim.sim.sparse_kernel import gradients as _gradients  # noqa: F401 (tests call the gradient directly)

LOSSES = {"quadratic": 0, "logistic": 1, "fm": 2}
ROW_OPTIMIZERS = {"sgd": 0, "adagrad": 1, "adam": 2, "adam_rowstep": 3}
METHODS = {"fp": 0, "dr": 1, "sr": 2, "alpt": 3}
GRANULARITIES = {"row": 0, "field": 1, "table": 2}
STEP_OPTIMIZERS = {"sgd": 0, "adam": 1}
BETAS, EPS = (0.9, 0.999), 1e-8  # the table's row-optimizer constants (lptsim.ctr.contract.ROW_BETAS, ROW_EPS)
STEP_BETAS, STEP_EPS = (0.9, 0.999), sparse_kernel.STEP_EPS  # ALPT's step optimizer (lptsim.ctr.contract's)



def zipf_frequencies(n: int, exponent: float) -> np.ndarray:
    """Lookup probabilities p_i proportional to (i + 1)^-exponent, i = 0..n-1 (row 0 the most frequent)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not (np.isfinite(exponent) and exponent >= 0):
        raise ValueError(f"exponent must be >= 0 and finite, got {exponent!r}")
    p = np.arange(1, n + 1, dtype=float) ** -float(exponent)
    return p / p.sum()


def measured_frequencies(counts: np.ndarray) -> np.ndarray:
    """Lookup probabilities from measured id counts (e.g. a field's counts in prepared data): counts / sum."""
    c = np.asarray(counts, dtype=float).ravel()
    if c.size == 0 or not np.all(np.isfinite(c)) or np.any(c < 0) or c.sum() <= 0:
        raise ValueError("counts must be a non-empty vector of finite non-negative numbers with a positive sum")
    return c / c.sum()


def alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table (accept probability, alias) for O(1) draws from the categorical law p."""
    n = p.size
    scaled = np.asarray(p, dtype=float) * n / np.sum(p)
    accept, alias = np.ones(n), np.arange(n, dtype=np.int64)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        accept[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return accept, alias


@dataclass
class SparseProblem:
    """A sparse embedding problem: the table's shape, each row's lookup probability, the loss and its teacher.

    ``freqs`` is the probability that one lookup hits each row (within its field for ``fm``: each field's block
    sums to 1); ``field_starts`` splits the rows into fields (ALPT's step per field; the fm model's fields).
    """

    n: int
    d: int
    freqs: np.ndarray
    loss: str
    w_star: np.ndarray  # (n, d): the teacher (quadratic: the optimum; logistic/fm: the label model)
    mu: float = 1.0
    sigma: float = 0.0
    a: np.ndarray | None = None  # logistic / fm: the vector rows are read through
    fm: float = 0.0
    field_starts: tuple[int, ...] = (0,)
    w0: np.ndarray | None = None  # (n, d) start (default zeros)
    name: str = field(default="sparse")

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        self.freqs = np.ascontiguousarray(self.freqs, dtype=float)
        self.w_star = np.ascontiguousarray(self.w_star, dtype=float)
        if self.freqs.shape != (self.n,) or np.any(self.freqs < 0) or not np.all(np.isfinite(self.freqs)):
            raise ValueError(f"freqs must be {self.n} finite non-negative probabilities")
        if self.w_star.shape != (self.n, self.d):
            raise ValueError(f"w_star must have shape ({self.n}, {self.d}), got {self.w_star.shape}")
        starts = tuple(int(s) for s in self.field_starts)
        if not starts or starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:], strict=False)) \
                or starts[-1] >= self.n:
            raise ValueError(f"field_starts must be increasing rows starting at 0 and below n={self.n}, "
                             f"got {self.field_starts!r}")
        self.field_starts = starts
        bounds = np.array(starts + (self.n,))
        sums = np.add.reduceat(self.freqs, bounds[:-1])
        if self.loss == "fm" and not np.allclose(sums, 1.0):
            raise ValueError("fm: each field's block of freqs must sum to 1 (one id per field per sample)")
        if self.loss != "fm" and not np.isclose(self.freqs.sum(), 1.0):
            raise ValueError(f"freqs must sum to 1, got {self.freqs.sum():.6g}")
        if self.loss != "quadratic":
            self.a = np.ones(self.d) / np.sqrt(self.d) if self.a is None else np.asarray(self.a, dtype=float)
        if self.w0 is not None and np.shape(self.w0) != (self.n, self.d):
            raise ValueError(f"w0 must have shape ({self.n}, {self.d})")

    @property
    def fields(self) -> int:
        return len(self.field_starts)

    def row_field(self) -> np.ndarray:
        """The field of every row."""
        return np.searchsorted(np.array(self.field_starts), np.arange(self.n), side="right") - 1

    def row_excess(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        """Quadratic: mu/2 ||w_r - w*_r||^2 per row (shape W.shape[:-1]), the per-lookup excess of each row."""
        if self.loss != "quadratic":
            raise ValueError("row_excess is defined for the quadratic loss (rows decouple)")
        return self.mu / 2 * np.sum((W - self.w_star) ** 2, axis=-1)


def sparse_quadratic(n: int, d: int, freqs: np.ndarray, mu: float = 1.0, sigma: float = 1.0,
                     w_star: np.ndarray | None = None, scale: float = 1.0, seed: int = 0,
                     field_starts: tuple[int, ...] = (0,), w0: np.ndarray | None = None) -> SparseProblem:
    """Per-row quadratic: a lookup of row r has loss mu/2 ||w_r - w*_r||^2 and gradient mu (w_r - w*_r) + sigma xi.

    ``w_star`` defaults to N(0, scale^2) entries drawn from ``seed``.
    """
    if w_star is None:
        w_star = scale * np.random.default_rng(seed).standard_normal((n, d))
    for name, v in (("mu", mu), ("sigma", sigma)):
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be >= 0 and finite, got {v!r}")
    return SparseProblem(n, d, freqs, "quadratic", w_star, mu=mu, sigma=sigma, field_starts=field_starts, w0=w0,
                         name="sparse_quadratic")


def sparse_logistic(n: int, d: int, freqs: np.ndarray, scale: float = 1.0, seed: int = 0,
                    field_starts: tuple[int, ...] = (0,), a: np.ndarray | None = None) -> SparseProblem:
    """Per-row logistic with label noise: a lookup of row r draws y ~ Bernoulli(sigmoid(<w*_r, a>)) and has loss
    -log-likelihood of sigmoid(<w_r, a>); the gradient (sigmoid(<w_r, a>) - y) a."""
    w_star = scale * np.random.default_rng(seed).standard_normal((n, d))
    return SparseProblem(n, d, freqs, "logistic", w_star, a=a, field_starts=field_starts, name="sparse_logistic")


def sparse_fm(field_sizes: tuple[int, ...], d: int, exponent: float = 1.0, fm: float = 1.0, scale: float = 0.5,
              seed: int = 0) -> SparseProblem:
    """Coupled model over one-hot fields: a sample takes one id per field (Zipf within the field); its logit is
    sum_f <w_f, a> + fm sum_{f<f'} <w_f, w_f'> (logistic regression plus an FM's pairwise term) and its label
    y ~ Bernoulli(sigmoid(logit of the teacher table)). Touched rows are summed and passed through a sigmoid."""
    sizes = [int(s) for s in field_sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"field_sizes must be positive integers, got {field_sizes!r}")
    starts = tuple(int(s) for s in np.concatenate([[0], np.cumsum(sizes)[:-1]]))
    freqs = np.concatenate([zipf_frequencies(s, exponent) for s in sizes])
    n = sum(sizes)
    w_star = scale * np.random.default_rng(seed).standard_normal((n, d))
    return SparseProblem(n, d, freqs, "fm", w_star, fm=fm, field_starts=starts, name="sparse_fm")


@dataclass
class SparseTrace:
    """What a sparse run leaves: final rows and steps per seed, and per-row touch and movement records."""

    method: str
    weights: np.ndarray  # (seeds, n, d) final rows (values: codes x their steps for quantized methods)
    steps: np.ndarray  # (seeds, number of steps): the (final) grid steps; a fixed step repeated for dr/sr
    touches: np.ndarray  # (seeds, n): how many steps touched each row
    last_move: np.ndarray  # (seeds, n): the last step at which the row changed (0: never)
    step_history: np.ndarray  # (seeds, records, number of steps) for table/field steps; (seeds, records, 0) per row
    record_at: np.ndarray
    row_excess: np.ndarray  # quadratic: (seeds, records, n) mu/2 ||w_r - w*_r||^2 at each record; else (seeds, 0, 0)
    params: dict

    def frozen(self) -> np.ndarray:
        """(seeds, n): touched rows that never changed (True), untouched rows count as not frozen (False)."""
        return (self.touches > 0) & (self.last_move == 0)


def simulate_sparse(prob: SparseProblem, method: str, step: float | None = None, lr: float = 0.1,
                    optimizer: str = "sgd", iters: int = 1000, batch: int = 256, seeds: int = 8,
                    bits: int | None = None, seed: int = 0, step_granularity: str = "table", step_lr: float = 1e-3,
                    step_optimizer: str = "sgd", grad_scale: float | None = None, min_step: float = 1e-8,
                    ids: np.ndarray | None = None, record_at: np.ndarray | None = None,
                    w0: np.ndarray | None = None, eps: float = EPS) -> SparseTrace:
    """Run ``method`` on a sparse problem for ``iters`` steps of ``batch`` lookups (fm: ``batch`` samples, one id
    per field each), ``seeds`` independent seeds.

    Args:
        method: ``fp``, ``dr``, ``sr`` (fixed grid step ``step``), ``alpt`` (``step`` is the initial step; needs
            ``bits``; steps per ``step_granularity`` = row, field or table, updated by ``step_optimizer`` (sgd or
            adam, bias-corrected with the global step) with learning rate ``step_lr`` on the LSQ gradient scaled
            by ``grad_scale``, default 1/sqrt(d qmax) like the table).
        optimizer: ``sgd``, ``adagrad`` (row-wise), ``adam`` (lazy, global step count), ``adam_rowstep``.
        ids: optional (iters, lookups) row ids to use instead of drawing them (lookups = batch, or batch x fields
            for fm, sample-major).
        record_at: steps at which to record table/field steps (``step_history``) and, for the quadratic, every
            row's excess (``row_excess``); default: the last step.
        w0: the start (default ``prob.w0`` or zeros); quantized methods round it to nearest on the initial step.
        eps: Adagrad's and Adam's eps, added after the bias correction as the table (and torch.optim.Adam) do;
            torch.optim.SparseAdam adds it before (sqrt(v) + eps), which differs by a factor sqrt(1 - b2^t).
    """
    for name, table in (("method", METHODS), ("optimizer", ROW_OPTIMIZERS), ("step_granularity", GRANULARITIES),
                        ("step_optimizer", STEP_OPTIMIZERS)):
        value = {"method": method, "optimizer": optimizer, "step_granularity": step_granularity,
                 "step_optimizer": step_optimizer}[name]
        if value not in table:
            raise ValueError(f"{name} must be one of {sorted(table)}, got {value!r}")
    for name, value in (("iters", iters), ("batch", batch), ("seeds", seeds)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    if method != "fp" and not (step is not None and np.isfinite(step) and step > 0):
        raise ValueError(f"step must be positive and finite for method {method!r}, got {step!r}")
    if method == "alpt" and bits is None:
        raise ValueError("method 'alpt' needs bits (its step gradient depends on the clip range)")
    spec = None if bits is None else QuantSpec(bits)
    qmin, qmax = (-np.inf, np.inf) if spec is None else (float(spec.qmin), float(spec.qmax))
    n, d, nf = prob.n, prob.d, prob.fields
    lookups = batch * nf if prob.loss == "fm" else batch
    if ids is None:
        given = np.zeros((0, lookups), dtype=np.int64)
    else:
        given = np.ascontiguousarray(ids, dtype=np.int64)
        if given.shape != (iters, lookups) or given.min() < 0 or given.max() >= n:
            raise ValueError(f"ids must be ({iters}, {lookups}) row ids in [0, {n})")
    accept, alias = np.ones(n), np.arange(n, dtype=np.int64)
    bounds = list(prob.field_starts) + [n]
    blocks = [(bounds[f], bounds[f + 1]) for f in range(nf)] if prob.loss == "fm" else [(0, n)]
    for lo, hi in blocks:
        accept[lo:hi], alias[lo:hi] = alias_table(prob.freqs[lo:hi])  # aliases local to the block
    nsteps = {"row": n, "field": nf, "table": 1}[step_granularity] if method == "alpt" else 1
    rec = np.unique(np.asarray(record_at if record_at is not None else [iters], dtype=np.int64))
    if rec.size == 0 or rec[0] < 1 or rec[-1] > iters:
        raise ValueError(f"record_at must lie in [1, iters={iters}]")
    start = np.zeros((n, d)) if (w0 is None and prob.w0 is None) else np.asarray(w0 if w0 is not None else prob.w0,
                                                                                 dtype=float)
    steps = np.full((seeds, nsteps), float(step) if step is not None else 1.0)
    if method != "fp":  # codes: the start rounded to nearest on the initial step, clipped (the table's rounding)
        start = np.clip(np.floor(start / step + 0.5), qmin, qmax)
    W = np.ascontiguousarray(np.broadcast_to(start, (seeds, n, d)), dtype=float).copy()  # noqa: N806
    adam = optimizer in ("adam", "adam_rowstep")
    keys = np.array([step_seed(seed, 1 + s) for s in range(seeds)], dtype=np.uint64)
    hist = np.zeros((seeds, rec.size, nsteps if (method == "alpt" and step_granularity != "row") else 0))
    touches = np.zeros((seeds, n), dtype=np.int64)
    excess = np.zeros((seeds, rec.size, n) if prob.loss == "quadratic" else (seeds, 0, 0))
    last_move = np.zeros((seeds, n), dtype=np.int64)
    gs = grad_scale if grad_scale is not None else (1.0 / math.sqrt(d * max(qmax, 1.0)) if spec else 1.0)
    avec = prob.a if prob.a is not None else np.zeros(d)
    gran = GRANULARITIES[step_granularity] if method == "alpt" else GRANULARITIES["table"]  # dr/sr: one fixed step
    # every lookup's alias block: its field's rows for fm (lookups sample-major, one per field), all rows otherwise
    lk_base = np.tile(np.array(bounds[:-1], dtype=np.int64), batch) if prob.loss == "fm" else np.zeros(batch, np.int64)
    lk_size = np.tile(np.diff(np.array(bounds, dtype=np.int64)), batch) if prob.loss == "fm" else np.full(batch, n)
    sparse_kernel.run(keys, LOSSES[prob.loss], ROW_OPTIMIZERS[optimizer], METHODS[method], gran,
                      STEP_OPTIMIZERS[step_optimizer], iters, batch, accept, alias, lk_base, lk_size,
                      prob.row_field().astype(np.int64), given, prob.w_star, float(prob.mu), float(prob.sigma),
                      np.ascontiguousarray(avec, dtype=float), float(prob.fm), float(lr), float(step_lr), float(gs),
                      float(min_step), qmin, qmax, rounding.active_rule().args(), rec, W, steps, touches, last_move,
                      hist, np.zeros((seeds, n) if optimizer == "adagrad" else (seeds, 0)),
                      np.zeros((seeds, n, d) if adam else (seeds, 0, 0)),
                      np.zeros((seeds, n, d) if adam else (seeds, 0, 0)), float(eps), BETAS[0], BETAS[1], excess)
    if not np.isfinite(W).all():
        raise ValueError(f"simulate_sparse(method={method!r}) diverged: non-finite rows (a row looked up k times a "
                         "step adds k gradients, so lr k mu must stay below about 2 for the most frequent row; "
                         "lower lr)")
    if method != "fp":
        W *= steps[:, prob.row_field()][..., None] if gran == 1 else (steps[:, :, None] if gran == 0 else
                                                                      steps[:, :1, None])
    params = dict(problem=prob.name, n=n, d=d, method=method, step=step, lr=lr, optimizer=optimizer, iters=iters,
                  batch=batch, seeds=seeds, bits=bits, seed=seed, step_granularity=step_granularity, step_lr=step_lr,
                  step_optimizer=step_optimizer)
    return SparseTrace(method, W, steps, touches, last_move, hist, rec, excess, params)
