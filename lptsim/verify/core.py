"""The machinery every check shares: budgets and seeds, estimates with confidence intervals,
criteria, the control that must fail, and a cache of simulations for ``--power``.

Statistics. Every verdict is decided by a confidence interval, never by a point estimate: the
whole interval must lie inside the band the criterion allows. Intervals are at level
1 - FAMILY_ALPHA / FAMILY_SIZE (Bonferroni over at most FAMILY_SIZE verdicts), so with
probability at least 1 - FAMILY_ALPHA every interval of a run covers its true value at once:
a PASS then means the true value lies inside its band, for all checks together.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from lptsim.sim import simulate
from lptsim.sim.simulate import Trace
from lptsim.verify.report import CheckResult, ControlResult

FAMILY_ALPHA = 0.05
FAMILY_SIZE = 100
LEVEL = 1 - FAMILY_ALPHA / FAMILY_SIZE  # two-sided level of each interval


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
    """A measured value and its two-sided confidence interval (lo == hi for exact measurements)."""

    value: float
    lo: float
    hi: float

    @classmethod
    def exact(cls, value: float | np.ndarray) -> Estimate:
        """A measurement without sampling error (a deterministic run, a count); arrays give one value per point."""
        v = float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=float)
        return cls(v, v, v)  # type: ignore[arg-type]

    @property
    def ci(self) -> tuple[float, float]:
        return (self.lo, self.hi)


def _t(n: int, level: float = LEVEL) -> float:
    return float(stats.t.ppf(0.5 + level / 2, max(n - 1, 1)))


def mean_ci(samples: np.ndarray, level: float = LEVEL) -> Estimate:
    """Mean of independent replicates (one per seed) with a Student-t interval."""
    x = np.asarray(samples, dtype=float).ravel()
    m = float(x.mean())
    if x.size < 2 or np.all(x == x[0]):
        return Estimate.exact(m)
    half = _t(x.size, level) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return Estimate(m, m - half, m + half)


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
    return Estimate(full, full - half, full + half)


def proportion_ci(successes: int, trials: int, level: float = LEVEL) -> Estimate:
    """A binomial proportion with its Wilson score interval."""
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials**2)) / (1 + z * z / trials)
    return Estimate(p, centre - half, centre + half)


def loglog_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def slope_ci(x: np.ndarray, per_seed: np.ndarray, level: float = LEVEL) -> Estimate:
    """Log-log slope of the mean over seeds against x, with a jackknife interval over seeds."""
    return jackknife_ci(lambda y: loglog_slope(x, y.mean(axis=0)), per_seed, level=level)


# Criteria -----------------------------------------------------------------------------------------

class Criterion:
    """Decides a verdict from an estimate and a prediction; ``text`` is printed in the table."""

    text: str

    def holds(self, est: Estimate, predicted: Any) -> bool:
        raise NotImplementedError

    def slack(self, est: Estimate, predicted: Any) -> float | None:
        return None


@dataclass(frozen=True)
class Relative(Criterion):
    """Two-sided: the interval lies inside predicted x [1 - tol, 1 + tol] (tol < 1/2, so x2 and x1/2 fail)."""

    tol: float

    @property
    def text(self) -> str:
        return f"CI within pred x [{1 - self.tol:g}, {1 + self.tol:g}]"

    def holds(self, est: Estimate, predicted: Any) -> bool:
        p = np.asarray(predicted, dtype=float)
        lo, hi = np.minimum(p * (1 - self.tol), p * (1 + self.tol)), np.maximum(p * (1 - self.tol), p * (1 + self.tol))
        return bool(np.all(est.lo >= lo) and np.all(est.hi <= hi))


@dataclass(frozen=True)
class Absolute(Criterion):
    """Two-sided: the interval lies inside predicted +- tol."""

    tol: float

    @property
    def text(self) -> str:
        return f"CI within pred +- {self.tol:g}"

    def holds(self, est: Estimate, predicted: Any) -> bool:
        p = np.asarray(predicted, dtype=float)
        return bool(np.all(np.asarray(est.lo) >= p - self.tol) and np.all(np.asarray(est.hi) <= p + self.tol))


@dataclass(frozen=True)
class AtMost(Criterion):
    """One-sided, for an upper bound (a theorem): refuted only when the whole interval lies above the bound.

    A bound that is attained has its true value on the bound, so requiring the upper end of the
    interval below it would reject true statements half the time; the data refute a bound when
    they are significantly above it. Its slack (bound / measured) is printed beside the verdict.
    """

    text: str = "not above bound (lower CL <= bound)"

    def holds(self, est: Estimate, predicted: Any) -> bool:
        return bool(np.all(np.asarray(est.lo) <= np.asarray(predicted, dtype=float) * (1 + 1e-12)))

    def slack(self, est: Estimate, predicted: Any) -> float | None:
        value, bound = np.broadcast_arrays(np.asarray(est.value, dtype=float), np.asarray(predicted, dtype=float))
        pos = value > 0
        return float(np.min(bound[pos] / value[pos])) if pos.any() else math.inf


@dataclass(frozen=True)
class AtLeast(Criterion):
    """One-sided, for a lower bound (a theorem): refuted only when the whole interval lies below the bound."""

    text: str = "not below bound (upper CL >= bound)"

    def holds(self, est: Estimate, predicted: Any) -> bool:
        return bool(np.all(np.asarray(est.hi) >= np.asarray(predicted, dtype=float) * (1 - 1e-12)))

    def slack(self, est: Estimate, predicted: Any) -> float | None:
        value, bound = np.broadcast_arrays(np.asarray(est.value, dtype=float), np.asarray(predicted, dtype=float))
        pos = bound > 0
        return float(np.min(value[pos] / bound[pos])) if pos.any() else math.inf


@dataclass(frozen=True)
class Exceeds(Criterion):
    """One-sided, for an empirical claim ("at least x"): the data must show it, the whole interval at or above x."""

    text: str = "lower CL >= claim"

    def holds(self, est: Estimate, predicted: Any) -> bool:
        return bool(np.all(np.asarray(est.lo) >= np.asarray(predicted, dtype=float)))


@dataclass(frozen=True)
class Exactly(Criterion):
    """Exact equality (deterministic measurements: counts, fixed points, matches)."""

    text: str = "== pred"

    def holds(self, est: Estimate, predicted: Any) -> bool:
        p = np.asarray(predicted, dtype=float)
        return bool(np.all(np.asarray(est.lo) == np.asarray(est.hi)) and np.all(np.asarray(est.value) == p))


@dataclass(frozen=True)
class Control:
    """The control: the same measurement (and its own prediction) where the claim must not hold."""

    what: str
    estimate: Estimate
    predicted: Any


def judge(name: str, source: str, kind: str, est: Estimate, predicted: Any, criterion: Criterion,
          control: Control | None, note: str = "", refuted: bool = False, shown_predicted: Any = None,
          **data: Any) -> CheckResult:
    """Apply ``criterion`` to the check and to its control; PASS needs the check to hold and the control to fail."""
    main = criterion.holds(est, predicted)
    ctrl = None
    if control is not None:
        c = control.estimate
        ctrl = ControlResult(control.what, _summary(c.value), _summary(control.predicted),
                             criterion.holds(c, control.predicted), _scalar_ci(c))
    passed = main and (ctrl is None or not ctrl.passed)
    if np.ndim(est.value) > 0:  # a curve: each point's interval goes with the data
        data = {**data, "ci_lo": est.lo, "ci_hi": est.hi}
    return CheckResult(name, _summary(est.value), _summary(predicted) if shown_predicted is None else shown_predicted,
                       criterion.text, passed, note=note, refuted=refuted, data=data, source=source, kind=kind,
                       ci=_scalar_ci(est), slack=criterion.slack(est, predicted), control=ctrl, main_passed=main)


def _scalar_ci(est: Estimate) -> tuple[float, float] | None:
    return est.ci if np.ndim(est.value) == 0 else None


def _summary(predicted: Any) -> Any:
    p = np.asarray(predicted)
    return p.item() if p.ndim == 0 else (f"{p.size} values in [{p.min():.4g}, {p.max():.4g}]" if p.size > 3
                                          else p.tolist())


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


def run(prob: Any, method: str, **kw: Any) -> Trace:
    """lptsim.sim.simulate, served from the cache while :func:`caching` is active."""
    if _cache is None:
        return simulate(prob, method, **kw)
    h = hashlib.sha256(_fingerprint(prob).encode() + method.encode())
    _digest(kw, h)
    key = h.hexdigest()
    if key not in _cache:
        _cache[key] = simulate(prob, method, **kw)
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
