"""The machinery every check shares: budgets and seeds, estimates with confidence intervals,
criteria, the control that must fail, verdicts, and a cache of simulations for ``--power``.

Verdicts. Every verdict is decided by a confidence interval, never by a point estimate:

* PASS: the whole interval lies inside the band the criterion allows (a bound: it is not refuted);
* FAIL: the statement is refuted: the interval lies entirely outside the band;
* INCONCLUSIVE: the interval covers both the band and outside it; the check says by how much its
  replicates (seeds, rows) would have to grow for the interval, shrinking like 1/sqrt(n), to decide.

A check PASSes only when its control FAILs (a control that passes too: NOT DISCRIMINATING). A bound
that holds with slack >= ``LOOSE_SLACK`` cannot be refuted by halving it: it is reported as
"holds, slack Nx: not a test" (LOOSE) and counted apart.

Statistics. Each interval is at two-sided level 1 - FAMILY_ALPHA / FAMILY_SIZE, and the report counts
every distinct random interval it judged (each point of a curve, each control). Bonferroni over them:
the probability that any of them misses its true value is at most their count x FAMILY_ALPHA /
FAMILY_SIZE, printed with the report (at most FAMILY_ALPHA while the count is at most FAMILY_SIZE).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

from lptsim.quant import rounding
from lptsim.sim import simulate
from lptsim.sim.simulate import Trace
from lptsim.verify.report import (
    BLIND,
    FAIL,
    INCONCLUSIVE,
    LOOSE,
    PASS,
    CheckResult,
    ControlResult,
)

FAMILY_ALPHA = 0.05
FAMILY_SIZE = 600  # random intervals a default run may judge (it reports how many it did)
LEVEL = 1 - FAMILY_ALPHA / FAMILY_SIZE  # two-sided level of each interval
LOOSE_SLACK = 2.0  # a bound this loose survives being halved: it holds, but it is not a test


@dataclass(frozen=True)
class Budget:
    """Seeds per experiment, a horizon multiplier, and the master seed that shifts every draw."""

    seeds: int = 24
    horizon: float = 1.0
    seed: int = 0
    data: str | None = None  # the CTR checks' prepared folder (synthetic data when None)

    def iters(self, base: int) -> int:
        return int(base * self.horizon)

    def seed_for(self, tag: str) -> int:
        """A seed for one experiment, fixed by the master seed and the experiment's name."""
        digest = hashlib.sha256(f"{self.seed}:{tag}".encode()).digest()
        return int.from_bytes(digest[:4], "little")

    def rng(self, tag: str) -> np.random.Generator:
        return np.random.default_rng(self.seed_for(tag))


# Estimates ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """A measured value and its two-sided confidence interval (lo == hi for exact measurements).

    ``n`` is the number of independent replicates behind it (seeds, chains, rows) and ``level`` the
    interval's two-sided level; both are None for an exact measurement.
    """

    value: float
    lo: float
    hi: float
    n: int | None = None
    level: float | None = None

    @classmethod
    def exact(cls, value: float | np.ndarray) -> Estimate:
        """A measurement without sampling error (a deterministic run, a count); arrays give one value per point."""
        v = float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=float)
        return cls(v, v, v)  # type: ignore[arg-type]

    @property
    def ci(self) -> tuple[float, float]:
        return (self.lo, self.hi)

    def random_points(self) -> int:
        """How many of its intervals carry sampling error (lo < hi): the ones the family-wise level counts."""
        return int(np.sum(np.asarray(self.lo) < np.asarray(self.hi)))


def _t(n: int, level: float = LEVEL) -> float:
    return float(stats.t.ppf(0.5 + level / 2, max(n - 1, 1)))


def mean_ci(samples: np.ndarray, level: float = LEVEL) -> Estimate:
    """Mean of independent replicates (one per seed) with a Student-t interval."""
    x = np.asarray(samples, dtype=float).ravel()
    m = float(x.mean())
    if x.size < 2 or np.all(x == x[0]):
        return Estimate.exact(m)
    half = _t(x.size, level) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return Estimate(m, m - half, m + half, x.size, level)


def jackknife_ci(stat: Callable[..., float], *per_seed: np.ndarray, level: float = LEVEL) -> Estimate:
    """A statistic of per-seed arrays (first axis = seed) with a jackknife-t interval over seeds.

    For ratios of means, slopes of means and other smooth functions of means.
    """
    arrays = [np.asarray(a, dtype=float) for a in per_seed]
    n = arrays[0].shape[0]
    full = float(stat(*arrays))
    keep = ~np.eye(n, dtype=bool)
    leave = np.array([stat(*(a[keep[i]] for a in arrays)) for i in range(n)])
    se = math.sqrt((n - 1) / n * float(np.sum((leave - leave.mean()) ** 2)))
    half = _t(n, level) * se
    return Estimate(full, full - half, full + half, n, level)


def proportion_ci(successes: int, trials: int, level: float = LEVEL) -> Estimate:
    """A binomial proportion with its Wilson score interval."""
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials**2)) / (1 + z * z / trials)
    return Estimate(p, centre - half, centre + half, trials, level)


def loglog_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def slope_ci(x: np.ndarray, per_seed: np.ndarray, level: float = LEVEL) -> Estimate:
    """Log-log slope of the mean over seeds against x, with a jackknife interval over seeds."""
    return jackknife_ci(lambda y: loglog_slope(x, y.mean(axis=0)), per_seed, level=level)


def curve(ests: list[Estimate]) -> Estimate:
    """Point estimates (one per record, cell or window) as one Estimate of arrays."""
    ns = [e.n for e in ests if e.n is not None]
    levels = [e.level for e in ests if e.level is not None]
    return Estimate(np.array([e.value for e in ests]), np.array([e.lo for e in ests]),  # type: ignore[arg-type]
                    np.array([e.hi for e in ests]), min(ns) if ns else None, min(levels) if levels else None)


# Criteria -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """A criterion's verdict on one estimate; ``more``: for INCONCLUSIVE, the factor by which the replicates
    would have to grow for the interval (its half-width shrinking like 1/sqrt(n)) to decide."""

    verdict: str
    more: float | None = None


def _band(est: Estimate, lo: Any, hi: Any) -> Decision:
    """PASS if every interval lies in [lo, hi], FAIL if one lies entirely outside, else INCONCLUSIVE."""
    v, a, b, band_lo, band_hi = (np.atleast_1d(np.asarray(z, dtype=float)) for z in (est.value, est.lo, est.hi, lo, hi))
    v, a, b, band_lo, band_hi = np.broadcast_arrays(v, a, b, band_lo, band_hi)
    if np.any((b < band_lo) | (a > band_hi)):
        return Decision(FAIL)
    inside = (a >= band_lo) & (b <= band_hi)
    if np.all(inside):
        return Decision(PASS)
    worst = 1.0
    for vi, ai, bi, li, hi_ in zip(v[~inside], a[~inside], b[~inside], band_lo[~inside], band_hi[~inside],
                                   strict=True):
        if li <= vi <= hi_:  # shrink until both ends are inside
            shrink = min((vi - li) / (vi - ai) if vi > ai else math.inf,
                         (hi_ - vi) / (bi - vi) if bi > vi else math.inf)
        else:  # shrink until the interval leaves the band
            shrink = (li - vi) / (bi - vi) if vi < li else (vi - hi_) / (vi - ai)
        worst = max(worst, math.inf if shrink <= 0 else 1 / shrink**2)
    return Decision(INCONCLUSIVE, worst)


class Criterion:
    """Decides a verdict from an estimate and a prediction; ``text`` names it, ``describe`` shows the band."""

    text: str
    bound = False  # a one-sided theorem: refuted or not, never inconclusive

    def decide(self, est: Estimate, predicted: Any) -> Decision:
        """The verdict; a criterion written before the three verdicts (it defines only ``holds``) gives PASS/FAIL."""
        if type(self).holds is Criterion.holds:
            raise NotImplementedError(f"{type(self).__name__} defines neither decide nor holds")
        return Decision(PASS if self.holds(est, predicted) else FAIL)

    def holds(self, est: Estimate, predicted: Any) -> bool:
        return self.decide(est, predicted).verdict == PASS

    def slack(self, est: Estimate, predicted: Any) -> float | None:
        return None

    def describe(self, predicted: Any) -> str:
        return f"{_short(predicted)}"


@dataclass(frozen=True)
class Relative(Criterion):
    """Two-sided: the interval lies inside predicted x [1 - tol, 1 + tol] (tol < 1/2, so x2 and x1/2 fail)."""

    tol: float

    @property
    def text(self) -> str:
        return f"CI within pred x [{1 - self.tol:g}, {1 + self.tol:g}]"

    def decide(self, est: Estimate, predicted: Any) -> Decision:
        p = np.asarray(predicted, dtype=float)
        return _band(est, np.minimum(p * (1 - self.tol), p * (1 + self.tol)),
                     np.maximum(p * (1 - self.tol), p * (1 + self.tol)))

    def describe(self, predicted: Any) -> str:
        return f"{_short(predicted)} ±{100 * self.tol:.3g}%"


@dataclass(frozen=True)
class Absolute(Criterion):
    """Two-sided: the interval lies inside predicted +- tol."""

    tol: float

    @property
    def text(self) -> str:
        return f"CI within pred +- {self.tol:g}"

    def decide(self, est: Estimate, predicted: Any) -> Decision:
        p = np.asarray(predicted, dtype=float)
        return _band(est, p - self.tol, p + self.tol)

    def describe(self, predicted: Any) -> str:
        return f"{_short(predicted)} ±{self.tol:.3g}"


def _ratio_slack(num: Any, den: Any) -> float:
    num, den = np.broadcast_arrays(np.asarray(num, dtype=float), np.asarray(den, dtype=float))
    pos = den > 0
    return float(np.min(num[pos] / den[pos])) if pos.any() else math.inf


@dataclass(frozen=True)
class AtMost(Criterion):
    """One-sided, for an upper bound (a theorem): refuted only when the whole interval lies above the bound.

    A bound that is attained has its true value on the bound, so requiring the upper end of the
    interval below it would reject true statements half the time; the data refute a bound when
    they are significantly above it. Its slack (bound / measured) is printed beside the verdict.
    """

    text: str = "not above bound (lower CL <= bound)"
    bound = True

    def decide(self, est: Estimate, predicted: Any) -> Decision:
        ok = np.all(np.asarray(est.lo) <= np.asarray(predicted, dtype=float) * (1 + 1e-12))
        return Decision(PASS if ok else FAIL)

    def slack(self, est: Estimate, predicted: Any) -> float | None:
        return _ratio_slack(predicted, est.value)

    def describe(self, predicted: Any) -> str:
        return f"≤ {_short(predicted, 'bound')}"


@dataclass(frozen=True)
class AtLeast(Criterion):
    """One-sided, for a lower bound (a theorem): refuted only when the whole interval lies below the bound."""

    text: str = "not below bound (upper CL >= bound)"
    bound = True

    def decide(self, est: Estimate, predicted: Any) -> Decision:
        ok = np.all(np.asarray(est.hi) >= np.asarray(predicted, dtype=float) * (1 - 1e-12))
        return Decision(PASS if ok else FAIL)

    def slack(self, est: Estimate, predicted: Any) -> float | None:
        return _ratio_slack(est.value, predicted)

    def describe(self, predicted: Any) -> str:
        return f"≥ {_short(predicted, 'bound')}"


@dataclass(frozen=True)
class Exceeds(Criterion):
    """One-sided, for an empirical claim ("at least x"): the data must show it, the whole interval at or above x."""

    text: str = "lower CL >= claim"

    def decide(self, est: Estimate, predicted: Any) -> Decision:
        return _band(est, np.asarray(predicted, dtype=float), np.inf)

    def describe(self, predicted: Any) -> str:
        return f"> {_short(predicted)}"


@dataclass(frozen=True)
class Exactly(Criterion):
    """Exact equality (deterministic measurements: counts, fixed points, matches)."""

    text: str = "== pred"

    def decide(self, est: Estimate, predicted: Any) -> Decision:
        p = np.asarray(predicted, dtype=float)
        ok = np.all(np.asarray(est.lo) == np.asarray(est.hi)) and np.all(np.asarray(est.value) == p)
        return Decision(PASS if ok else FAIL)

    def describe(self, predicted: Any) -> str:
        return f"= {_short(predicted)}"


def _short(predicted: Any, what: str = "pred") -> str:
    from lptsim.verify.report import fmt

    p = np.asarray(predicted, dtype=float)
    if p.ndim == 0:
        return fmt(float(p), 3)
    if p.size <= 4:
        return fmt(p.tolist(), 3)
    if np.all(p == p.flat[0]):
        return f"{fmt(float(p.flat[0]), 3)} ({p.size} pts)"
    return f"{what} ({p.size} pts)"


@dataclass(frozen=True)
class Control:
    """The control: the same measurement (and its own prediction) where the claim must not hold."""

    what: str
    estimate: Estimate
    predicted: Any


class Source(str):
    """A check's source text that also names the registered statements it cites (for ``--explain``)."""

    statements: tuple[str, ...] = ()


def cite(*names: str) -> Source:
    """The sources of the named lptsim.theory statements, joined, remembering their names."""
    from lptsim import theory

    out = Source("; ".join(dict.fromkeys(theory.STATEMENTS[n].source for n in names)))
    out.statements = tuple(names)
    return out


def _family(*ests: Estimate) -> tuple[tuple[str, int, float], ...]:
    """The distinct random intervals among ``ests``: (a key naming them, how many, their summed error probability)."""
    out: dict[str, tuple[int, float]] = {}
    for e in ests:
        key = hashlib.sha1(b"".join(np.ascontiguousarray(np.asarray(z, dtype=float)).tobytes()
                                    for z in (e.value, e.lo, e.hi))).hexdigest()[:16]
        k = e.random_points()
        if k:  # the same interval judged twice (e.g. the control re-judges the measurement) counts once
            out[key] = (k, k * (1 - (e.level if e.level is not None else LEVEL)))
    return tuple((key, k, a) for key, (k, a) in out.items())


def judge(name: str, source: str, kind: str, est: Estimate, predicted: Any, criterion: Criterion,
          control: Control | None, note: str = "", refuted: bool = False, shown_predicted: Any = None,
          id: str = "", **data: Any) -> CheckResult:  # noqa: A002
    """Apply ``criterion`` to the check and to its control; PASS needs the check to PASS and the control to FAIL.

    ``id``: the short id the table and ``--explain`` use (default: ``group.first-words-of-name``); ``data``: the
    series behind the verdict, for figures. ``refuted`` is accepted for older callers and ignored: a check is
    refuted when its verdict is FAIL.
    """
    del refuted
    main = criterion.decide(est, predicted)
    slack = criterion.slack(est, predicted)
    ctrl = None
    ests = [est]
    if control is not None:
        c = control.estimate
        cd = criterion.decide(c, control.predicted)
        ctrl = ControlResult(control.what, _summary(c.value), _summary(control.predicted), cd.verdict == PASS,
                             _scalar_ci(c), outcome=cd.verdict, shown=criterion.describe(control.predicted),
                             hull=_hull(c))
        ests.append(c)
    more = None
    if main.verdict == FAIL:
        outcome = FAIL
    elif main.verdict == INCONCLUSIVE:
        outcome, more = INCONCLUSIVE, main.more
    elif criterion.bound and slack is not None and slack >= LOOSE_SLACK:
        outcome = LOOSE
    elif ctrl is None or ctrl.outcome == FAIL:
        outcome = PASS
    elif ctrl.outcome == PASS:
        outcome = BLIND
    else:  # the control is undecided: so is whether the check could have failed
        outcome, more = INCONCLUSIVE, cd.more
    if np.ndim(est.value) > 0:  # a curve: each point's interval goes with the data
        data = {**data, "ci_lo": est.lo, "ci_hi": est.hi}
    family = _family(*ests)
    return CheckResult(name, _summary(est.value), _summary(predicted) if shown_predicted is None else shown_predicted,
                       criterion.text, outcome == PASS, note=note, refuted=outcome == FAIL, data=data, source=source,
                       kind=kind, ci=_scalar_ci(est), slack=slack, control=ctrl, main_passed=main.verdict == PASS,
                       id=id, outcome=outcome, more=more, replicates=est.n, intervals=sum(k for _, k, _ in family),
                       alpha=sum(a for _, _, a in family), family=family,
                       statements=getattr(source, "statements", ()), shown=criterion.describe(predicted),
                       hull=_hull(est), bound=criterion.bound)


def _hull(est: Estimate) -> tuple[float, float, float, float] | None:
    """For a curve: (min value, max value, min lower CL, max upper CL); None for a scalar."""
    if np.ndim(est.value) == 0:
        return None
    v = np.asarray(est.value, dtype=float)
    return float(v.min()), float(v.max()), float(np.min(est.lo)), float(np.max(est.hi))


def _scalar_ci(est: Estimate) -> tuple[float, float] | None:
    return est.ci if np.ndim(est.value) == 0 else None


def _summary(predicted: Any) -> Any:
    p = np.asarray(predicted)
    return p.item() if p.ndim == 0 else (f"{p.size} values in [{p.min():.4g}, {p.max():.4g}]" if p.size > 4
                                          else p.tolist())


def with_id(result: CheckResult, **changes: Any) -> CheckResult:
    """A copy of ``result`` with fields changed (e.g. its id, group)."""
    return replace(result, **changes)


# A cache of simulations, so --power can re-judge broken predictions without re-running them -------

_cache: dict[str, Trace] | None = None
_fingerprints: dict[int, tuple[Any, str]] = {}


def _digest(value: Any, h: Any) -> None:
    if isinstance(value, np.ndarray):
        h.update(str(value.dtype).encode() + str(value.shape).encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, dict):
        for k in sorted(value):
            h.update(str(k).encode())
            _digest(value[k], h)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _digest(v, h)
    elif isinstance(value, (int, float, str, bool, type(None), np.generic)):
        h.update(repr(value).encode())
    elif hasattr(value, "__dict__"):
        h.update(type(value).__name__.encode())
        _digest(vars(value), h)
    else:
        h.update(repr(value).encode())


def _fingerprint(prob: Any) -> str:
    known = _fingerprints.get(id(prob))
    if known is not None and known[0] is prob:
        return known[1]
    h = hashlib.sha256()
    _digest(prob, h)
    _fingerprints[id(prob)] = (prob, h.hexdigest())
    return _fingerprints[id(prob)][1]


def run(prob: Any, method: str, simulator: Callable[..., Any] = simulate, **kw: Any) -> Any:
    """``simulator(prob, method, **kw)`` (lptsim.sim.simulate by default; lptsim.sim.sparse.simulate_sparse for the
    sparse group), served from the cache while :func:`caching` is active."""
    if _cache is None:
        return simulator(prob, method, **kw)
    h = hashlib.sha256(_fingerprint(prob).encode() + method.encode() + simulator.__qualname__.encode())
    h.update(repr(rounding.active_rule()).encode())  # few-bit SR or a planted fault is another simulation
    _digest(kw, h)
    key = h.hexdigest()
    if key not in _cache:
        _cache[key] = simulator(prob, method, **kw)
    return _cache[key]


@contextmanager
def caching(fresh: bool = False) -> Iterator[None]:
    """Keep every simulation of the block for reuse (nested blocks share the outer cache unless ``fresh``)."""
    global _cache
    outer = _cache
    _cache = {} if outer is None or fresh else outer
    try:
        yield
    finally:
        _cache = outer
        if outer is None:
            _fingerprints.clear()


def family_level(results: list[CheckResult]) -> tuple[int, float]:
    """(distinct random intervals judged, Bonferroni bound on the probability that any of them misses its true value).

    An interval two checks judge (one's measurement is the other's control) counts once; results without a family
    record (made by hand) count by their own totals.
    """
    seen: dict[str, tuple[int, float]] = {}
    count, alpha = 0, 0.0
    for r in results:
        if not r.family:
            count, alpha = count + r.intervals, alpha + r.alpha
        for key, k, a in r.family:
            seen[key] = (k, a)
    count += sum(k for k, _ in seen.values())
    alpha += sum(a for _, a in seen.values())
    return count, min(alpha, 1.0)


def family_statement(results: list[CheckResult]) -> str:
    """The family-wise level of a run, as the report prints it."""
    count, alpha = family_level(results)
    each = (f"each at two-sided level 1 - {FAMILY_ALPHA:g}/{FAMILY_SIZE}" if count and
            math.isclose(alpha, count * FAMILY_ALPHA / FAMILY_SIZE) else "each at its own two-sided level")
    return (f"{count} random intervals judged (every point of a curve, every control; exact measurements have none), "
            f"{each}: by Bonferroni, all cover their true values at once with probability >= {1 - alpha:.4g} "
            f"(family-wise error <= {100 * alpha:.2g}%)")
