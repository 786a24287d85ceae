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

Every random draw is a Philox uniform of :mod:`lptsim.quant.philox` keyed by the run's seed and the seed index,
each use in its own counter range (the stream in the top bits, then the step, then the element); rounding goes
through :mod:`lptsim.quant.rounding` (``_round_one``, so a planted rounding fault reaches the simulator) and the
LSQ term through :func:`lptsim.quant.lsq.lsq_one`. Seeds run in parallel (one numba thread each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from lptsim.ctr.contract import step_seed
from lptsim.quant import QuantSpec, rounding
from lptsim.quant.lsq import lsq_one
from lptsim.quant.philox import uniform_at
from lptsim.quant.rounding import _round_one

LOSSES = {"quadratic": 0, "logistic": 1, "fm": 2}
ROW_OPTIMIZERS = {"sgd": 0, "adagrad": 1, "adam": 2, "adam_rowstep": 3}
METHODS = {"fp": 0, "dr": 1, "sr": 2, "alpt": 3}
GRANULARITIES = {"row": 0, "field": 1, "table": 2}
STEP_OPTIMIZERS = {"sgd": 0, "adam": 1}
BETAS, EPS = (0.9, 0.999), 1e-8  # the table's row-optimizer constants (lptsim.ctr.contract.ROW_BETAS, ROW_EPS)
STEP_BETAS, STEP_EPS = (0.9, 0.999), 1e-12  # ALPT's step optimizer (lptsim.ctr.contract.STEP_BETAS, STEP_EPS)

# Counter ranges of the simulator's Philox draws (stream << 56 | index), one per use, so no two uses share a draw.
_SHIFT = 56
_S_BATCH, _S_NOISE, _S_LABEL, _S_SR, _S_INIT = 1, 2, 3, 4, 5


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


@nb.njit(inline="always", cache=True)
def _ctr(stream, index):
    return np.uint64((stream << _SHIFT) | index)


@nb.njit(inline="always", cache=True)
def _normals(key, stream, index, out, j):
    """Two independent standard normals (Box-Muller, both branches) from the Philox uniforms at counters 2 index and
    2 index + 1, into out[j] and out[j + 1] (only out[j] when j + 1 is past the end)."""
    u1 = uniform_at(key, _ctr(stream, 2 * index))
    u2 = uniform_at(key, _ctr(stream, 2 * index + 1))
    radius = math.sqrt(-2.0 * math.log(1.0 - u1))
    out[j] = radius * math.cos(2.0 * math.pi * u2)
    if j + 1 < out.size:
        out[j + 1] = radius * math.sin(2.0 * math.pi * u2)


@nb.njit(inline="always", cache=True)
def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@nb.njit(cache=True)
def _gradients(loss, rows, cnt, nslots, vals, wstar, mu, sigma, avec, fmc, xi, labels, samp_slot, nsamp, nfields,
               out):
    """The summed gradient of each touched row (slot) at row values ``vals`` (slots x d), with the step's draws
    (noise ``xi``, label counts or labels) fixed, so a second gradient on the same batch reuses them."""
    d = out.shape[1]
    if loss == 0:
        for s in range(nslots):
            k = cnt[s]
            rk = math.sqrt(k)
            for j in range(d):
                out[s, j] = k * mu * (vals[s, j] - wstar[rows[s], j]) + sigma * rk * xi[s, j]
    elif loss == 1:
        for s in range(nslots):
            z = 0.0
            for j in range(d):
                z += vals[s, j] * avec[j]
            r = cnt[s] * _sigmoid(z) - labels[s]
            for j in range(d):
                out[s, j] = r * avec[j]
    else:
        for s in range(nslots):
            for j in range(d):
                out[s, j] = 0.0
        tot = np.empty(d)
        for b in range(nsamp):
            for j in range(d):
                tot[j] = 0.0
            z = 0.0
            sq = 0.0
            for f in range(nfields):
                s = samp_slot[b, f]
                for j in range(d):
                    z += vals[s, j] * avec[j]
                    tot[j] += vals[s, j]
                    sq += vals[s, j] * vals[s, j]
            pair = 0.0
            for j in range(d):
                pair += tot[j] * tot[j]
            z += fmc * 0.5 * (pair - sq)
            r = _sigmoid(z) - labels[b]
            for f in range(nfields):
                s = samp_slot[b, f]
                for j in range(d):
                    out[s, j] += r * (avec[j] + fmc * (tot[j] - vals[s, j]))


@nb.njit(cache=True)
def _teacher_logit(wstar, avec, fmc, ids):
    d = wstar.shape[1]
    z, sq = 0.0, 0.0
    tot = np.zeros(d)
    for f in range(ids.size):
        for j in range(d):
            z += wstar[ids[f], j] * avec[j]
            tot[j] += wstar[ids[f], j]
            sq += wstar[ids[f], j] * wstar[ids[f], j]
    pair = 0.0
    for j in range(d):
        pair += tot[j] * tot[j]
    return z + fmc * 0.5 * (pair - sq)


@nb.njit(parallel=True, cache=True)
def _run(keys, loss, opt, method, gran, step_opt, iters, batch, accept, alias, fstarts, fsizes, row_field, given_ids,
         wstar, mu, sigma, avec, fmc, lr, step_lr, grad_scale, min_step, qmin, qmax, rule, rec,
         W, steps, touches, last_move, hist, acc, m1, m2, eps, excess):
    """All steps of every seed (one seed per thread). Arrays with a leading seeds axis are written in place."""
    seeds, n, d = W.shape
    nfields = fstarts.size
    lookups = batch * nfields if loss == 2 else batch
    b1, b2 = 0.9, 0.999
    for si in nb.prange(seeds):
        key = keys[si]
        pos = np.full(n, -1, dtype=np.int64)
        rows = np.empty(lookups, dtype=np.int64)
        cnt = np.zeros(lookups, dtype=np.int64)
        ids = np.empty(lookups, dtype=np.int64)
        samp_slot = np.empty((batch, nfields), dtype=np.int64)
        vals = np.empty((lookups, d))
        g = np.empty((lookups, d))
        half = np.empty((lookups, d))
        xi = np.zeros((lookups, d))  # stays zero without noise
        codes = np.empty((lookups, d))
        labels = np.zeros(lookups)
        nsteps = steps.shape[1]
        sgrad = np.zeros(nsteps)
        sm = np.zeros(nsteps)
        sv = np.zeros(nsteps)
        k_rec = 0
        for t in range(1, iters + 1):
            # 1. the batch: ids (alias draws within each field for fm, over all rows otherwise), distinct rows
            if given_ids.shape[0] > 0:
                for i in range(lookups):
                    ids[i] = given_ids[t - 1, i]
            else:
                for i in range(lookups):
                    f = i % nfields if loss == 2 else 0
                    base = np.int64(fstarts[f]) if loss == 2 else np.int64(0)
                    size = fsizes[f] if loss == 2 else n
                    idx = (t - 1) * lookups + i
                    col = min(int(uniform_at(key, _ctr(_S_BATCH, 2 * idx)) * size), size - 1)
                    u = uniform_at(key, _ctr(_S_BATCH, 2 * idx + 1))
                    ids[i] = base + (col if u < accept[base + col] else alias[base + col])
            nslots = 0
            for i in range(lookups):
                r = ids[i]
                if pos[r] < 0:
                    pos[r] = nslots
                    rows[nslots] = r
                    cnt[nslots] = 0
                    nslots += 1
                cnt[pos[r]] += 1
                if loss == 2:
                    samp_slot[i // nfields, i % nfields] = pos[r]
            # 2. the step's draws: Gaussian noise, or labels
            for s in range(nslots):
                r = rows[s]
                # W holds values (fp) or codes: a row's value is its code times its step *now* (a shared step that
                # moved since the row's last write-back rescales it, as in the table)
                sc = 1.0 if method == 0 else steps[si, r if gran == 0 else (row_field[r] if gran == 1 else 0)]
                for j in range(d):
                    vals[s, j] = W[si, r, j] * sc
                if loss == 0 and sigma > 0:
                    for j in range(0, d, 2):  # a pair of normals per pair of elements
                        _normals(key, _S_NOISE, ((t - 1) * n + r) * d + j, xi[s], j)
                elif loss == 1:
                    z = 0.0
                    for j in range(d):
                        z += wstar[r, j] * avec[j]
                    pr = _sigmoid(z)
                    y = 0.0
                    for c in range(cnt[s]):
                        if uniform_at(key, _ctr(_S_LABEL, ((t - 1) * n + r) * lookups + c)) < pr:
                            y += 1.0
                    labels[s] = y
            if loss == 2:
                for b in range(batch):
                    pr = _sigmoid(_teacher_logit(wstar, avec, fmc, ids[b * nfields:(b + 1) * nfields]))
                    labels[b] = 1.0 if uniform_at(key, _ctr(_S_LABEL, (t - 1) * batch + b)) < pr else 0.0
            _gradients(loss, rows, cnt, nslots, vals, wstar, mu, sigma, avec, fmc, xi, labels, samp_slot, batch,
                       nfields, g)
            # 3. the row optimizer (lazy: only touched rows and their state)
            for s in range(nslots):
                r = rows[s]
                touches[si, r] += 1
                if opt == 0:
                    for j in range(d):
                        half[s, j] = vals[s, j] - lr * g[s, j]
                elif opt == 1:
                    ss = 0.0
                    for j in range(d):
                        ss += g[s, j] * g[s, j]
                    acc[si, r] += ss / d
                    den = math.sqrt(acc[si, r]) + eps
                    for j in range(d):
                        half[s, j] = vals[s, j] - lr * g[s, j] / den
                else:
                    tt = t if opt == 2 else touches[si, r]  # lazy Adam: the global count; adam_rowstep: the row's
                    bc1 = 1.0 - b1**tt
                    bc2 = 1.0 - b2**tt
                    for j in range(d):
                        mm = m1[si, r, j] * b1 + (1.0 - b1) * g[s, j]
                        vv = m2[si, r, j] * b2 + (1.0 - b2) * g[s, j] * g[s, j]
                        m1[si, r, j] = mm
                        m2[si, r, j] = vv
                        half[s, j] = vals[s, j] - lr * (mm / bc1) / (math.sqrt(vv / bc2) + eps)
            # 4. ALPT: the step gradient at the nearest point (same batch), the steps' update
            if method == 3:
                for s in range(nslots):
                    st = steps[si, rows[s] if gran == 0 else (row_field[rows[s]] if gran == 1 else 0)]
                    for j in range(d):
                        codes[s, j] = _round_one(half[s, j], st, False, key, np.uint64(0), qmin, qmax, rule)
                        vals[s, j] = st * codes[s, j]
                _gradients(loss, rows, cnt, nslots, vals, wstar, mu, sigma, avec, fmc, xi, labels, samp_slot,
                           batch, nfields, g)
                for s in range(nslots):
                    r = rows[s]
                    si_ = r if gran == 0 else (row_field[r] if gran == 1 else 0)
                    st = steps[si, si_]
                    c = 0.0
                    for j in range(d):
                        c += g[s, j] * lsq_one(half[s, j] / st, codes[s, j], qmin, qmax)
                    sgrad[si_] += c * grad_scale
                for s in range(nslots):
                    r = rows[s]
                    si_ = r if gran == 0 else (row_field[r] if gran == 1 else 0)
                    gs = sgrad[si_]
                    if gs != gs:  # already applied (a shared step: its summed gradient, once)
                        continue
                    if step_opt == 0:
                        new = steps[si, si_] - step_lr * gs
                    else:
                        sm[si_] = b1 * sm[si_] + (1 - b1) * gs
                        sv[si_] = b2 * sv[si_] + (1 - b2) * gs * gs
                        new = steps[si, si_] - step_lr * (sm[si_] / (1 - b1**t)) / (
                            math.sqrt(sv[si_] / (1 - b2**t)) + STEP_EPS)
                    steps[si, si_] = max(new, min_step)
                    sgrad[si_] = np.nan
                for s in range(nslots):
                    r = rows[s]
                    sgrad[r if gran == 0 else (row_field[r] if gran == 1 else 0)] = 0.0
            # 5. write back: full precision, or onto the (new) grid with DR / SR
            for s in range(nslots):
                r = rows[s]
                moved = False
                st = steps[si, r if gran == 0 else (row_field[r] if gran == 1 else 0)] if method != 0 else 1.0
                for j in range(d):
                    if method == 0:
                        w = half[s, j]
                    else:
                        ctr = _ctr(_S_SR, ((t - 1) * n + r) * d + j)
                        w = _round_one(half[s, j], st, method != 1, key, ctr, qmin, qmax, rule)  # the code
                    if w != W[si, r, j]:
                        moved = True
                    W[si, r, j] = w
                if moved:
                    last_move[si, r] = t
                pos[r] = -1
            if k_rec < rec.size and t == rec[k_rec]:
                if hist.shape[2] > 0:
                    for q in range(nsteps):
                        hist[si, k_rec, q] = steps[si, q]
                if excess.shape[1] > 0:  # quadratic: every row's mu/2 ||w - w*||^2 now
                    for r in range(n):
                        sc = 1.0 if method == 0 else steps[si, r if gran == 0 else (row_field[r] if gran == 1 else 0)]
                        e2 = 0.0
                        for j in range(d):
                            e = W[si, r, j] * sc - wstar[r, j]
                            e2 += e * e
                        excess[si, k_rec, r] = 0.5 * mu * e2
                k_rec += 1


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
    _run(keys, LOSSES[prob.loss], ROW_OPTIMIZERS[optimizer], METHODS[method], gran,
         STEP_OPTIMIZERS[step_optimizer], iters, batch, accept, alias, np.array(prob.field_starts, dtype=np.int64),
         np.diff(np.array(bounds, dtype=np.int64)), prob.row_field().astype(np.int64), given, prob.w_star,
         float(prob.mu), float(prob.sigma), np.ascontiguousarray(avec, dtype=float), float(prob.fm), float(lr),
         float(step_lr), float(gs), float(min_step), qmin, qmax, rounding.active_rule().args(), rec, W, steps, touches,
         last_move, hist, np.zeros((seeds, n) if optimizer == "adagrad" else (seeds, 0)),
         np.zeros((seeds, n, d) if adam else (0, 0, 0)), np.zeros((seeds, n, d) if adam else (0, 0, 0)), float(eps),
         excess)
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
