"""Statistical and exact checks of the quantization core (lptsim.quant), each with a control.

Tolerances come from the math: a zero-mean statistic is accepted when its confidence interval
lies within +-TOL_FACTOR half-widths of zero (the half-width known in advance from the exact
variance), so a bias of a few half-widths fails; exact properties are compared exactly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from lptsim import theory
from lptsim.quant import QuantSpec, dequantize, lsq_step_grad, pack, quantize, unpack
from lptsim.quant.floats import stochastic_cast
from lptsim.quant.philox import UNIFORM_BITS
from lptsim.quant.rounding import RoundingRule, rounding_rule
from lptsim.verify.core import (
    LEVEL,
    Absolute,
    AtMost,
    Budget,
    Control,
    Estimate,
    Exactly,
    Relative,
    _t,
    cite,
    judge,
    mean_ci,
)
from lptsim.verify.report import CheckResult

TOL_FACTOR = 3.0  # a zero-mean statistic may sit within 3 known half-widths of zero
SOURCE = "definition of SR / DR (lptsim.quant)"


def _half_width(sd: float, n: int) -> float:
    return _t(n, LEVEL) * sd / math.sqrt(n)


def sr_unbiased(b: Budget, n: int = 1_000_000, step: float = 0.1) -> CheckResult:
    """E[SR(x)] = x: the CI of the mean scaled error lies within +-3 known half-widths of 0; DR is the control."""
    rng = b.rng("sr_unbiased")
    # Fractional parts below 1/2 everywhere, so round-to-nearest is biased (by -E[p]).
    x = (rng.integers(-30, 30, n) + rng.uniform(0.0, 0.45, n)) * step
    p = x / step - np.floor(x / step)
    tol = TOL_FACTOR * _half_width(math.sqrt(np.mean(p * (1 - p))), n)

    def mean_error(rounding: str) -> Estimate:
        codes = quantize(x, step, QuantSpec(8), rounding, seed=b.seed_for("sr_unbiased/draws"))
        return mean_ci((dequantize(codes, step) - x) / step)

    return judge("quant: SR unbiased (mean error / step)", SOURCE, "exact", mean_error("stochastic"), 0.0,
                 Absolute(round(tol, 5)), Control("DR", mean_error("nearest"), 0.0), note=f"{n:,} values, step {step}",
                 id="quant.sr-unbiased")


def sr_variance(b: Budget, p: float, n: int = 400_000, step: float = 0.25) -> CheckResult:
    """Var[SR(x)] = step^2 p (1-p) for fractional part p; DR (variance 0) is the control."""
    x = np.full(n, (3 + p) * step)
    pq = p * (1 - p)
    # sd of the sample variance of a scaled Bernoulli: step^2 sqrt((mu4 - s^4)/n), mu4 = pq(1 - 3pq)
    sd = step**2 * math.sqrt((pq * (1 - 3 * pq) - pq**2) / n)
    z = _t(n, LEVEL)

    def variance(rounding: str) -> Estimate:
        vals = dequantize(quantize(x, step, QuantSpec(8), rounding, seed=b.seed_for(f"sr_variance/{p}")), step)
        v = float(np.var(vals.astype(np.float64)))
        return Estimate(v, v - z * sd, v + z * sd, n, LEVEL)

    predicted = step**2 * pq
    tol = TOL_FACTOR * z * sd / predicted
    return judge(f"quant: SR variance at p={p}", SOURCE, "exact", variance("stochastic"), predicted,
                 Relative(round(tol, 4)), Control("DR", variance("nearest"), predicted), id=f"quant.sr-var-{p:g}")


def dr_error_bound(b: Budget, n: int = 1_000_000, step: float = 0.07) -> CheckResult:
    """|DR(x) - x| <= step/2 inside the range (float32: a few ulps more); SR is the control."""
    x = b.rng("dr_error").uniform(-8.0, 8.0, n).astype(np.float32)
    slack = 8 * np.finfo(np.float32).eps * 8.0 / step

    def worst(rounding: str) -> Estimate:
        codes = quantize(x, np.float32(step), QuantSpec(8), rounding, seed=b.seed_for("dr_error/draws"))
        return Estimate.exact(float(np.max(np.abs(dequantize(codes, np.float32(step)).astype(np.float64) - x))) / step)

    return judge("quant: DR max error / step", SOURCE, "exact", worst("nearest"), 0.5 + slack,
                 AtMost(), Control("SR", worst("stochastic"), 0.5 + slack), id="quant.dr-max-error")


def dr_ties(b: Budget) -> CheckResult:
    """DR is floor(v + 1/2): every exact half rounds up (k + 1/2 -> k + 1, also for negative k); SR is the control."""
    k = np.arange(-100, 100)
    x = (k + 0.5) * 0.25  # dyadic: the ties are exact in floating point

    def wrong(rounding: str) -> Estimate:
        return Estimate.exact(int(np.sum(quantize(x, 0.25, None, rounding, seed=b.seed_for("ties")) != k + 1)))

    return judge("quant: DR rounds ties up (codes differing from floor(v + 1/2))", SOURCE, "exact", wrong("nearest"),
                 0, Exactly(), Control("SR", wrong("stochastic"), 0), note="200 exact halves, step 0.25",
                 id="quant.dr-ties-up")


def grid_fixed_points(b: Budget) -> CheckResult:
    """Every code times the step is returned unchanged by both roundings; points off the grid are the control."""

    def mismatches(shift: float) -> Estimate:
        bad = 0
        for bits in (1, 2, 4, 8, 12, 16):
            spec = QuantSpec(bits)
            codes = np.arange(spec.qmin, spec.qmax + 1)
            for step in (0.5, 0.1, 3.0):
                x = (codes + shift) * step
                for rounding in ("nearest", "stochastic"):
                    bad += int(np.sum(quantize(x, step, spec, rounding, seed=b.seed_for(f"fixed/{bits}")) != codes))
        return Estimate.exact(bad)

    return judge("quant: grid points are fixed points", SOURCE, "exact", mismatches(0.0), 0, Exactly(),
                 Control("points 0.6 step off the grid", mismatches(0.6), 0), id="quant.grid-fixed")


def clipping(b: Budget) -> CheckResult:
    """Values beyond the range map to qmin/qmax under both roundings; values inside are the control."""
    spec = QuantSpec(3)

    def mismatches(x: np.ndarray) -> Estimate:
        target = np.where(x < 0, spec.qmin, spec.qmax)
        bad = sum(int(np.sum(quantize(x, 1.0, spec, r, seed=b.seed_for("clip")) != target))
                  for r in ("nearest", "stochastic"))
        return Estimate.exact(bad)

    return judge("quant: clipping to [qmin, qmax]", SOURCE, "exact", mismatches(np.array([-100.0, -4.6, 3.6, 100.0])),
                 0, Exactly(), Control("values inside the range", mismatches(np.array([-2.2, -1.1, 1.3, 2.4])), 0),
                 id="quant.clip")


def chunk_invariance(b: Budget, n: int = 100_003) -> CheckResult:
    """Quantizing in chunks with matching offsets gives the codes of one call; offsets all 0 is the control."""
    x = b.rng("chunks").normal(size=n).astype(np.float32)
    seed = b.seed_for("chunks/draws")
    whole = quantize(x, 0.05, QuantSpec(8), "stochastic", seed=seed, offset=7)
    cuts = [0, 1, 999, 50_000, 70_001, n]

    def differing(matching: bool) -> Estimate:
        parts = [quantize(x[a:c], 0.05, QuantSpec(8), "stochastic", seed=seed, offset=(7 + a) if matching else 7)
                 for a, c in zip(cuts, cuts[1:], strict=False)]
        return Estimate.exact(int(np.sum(np.concatenate(parts) != whole)))

    return judge("quant: chunk invariance (differing codes)", SOURCE, "exact", differing(True), 0, Exactly(),
                 Control("chunks all at offset 7", differing(False), 0), id="quant.chunks")


def row_independence(b: Budget, rows: int = 100_000, dim: int = 16) -> CheckResult:
    """Elements of one row get independent draws: the correlation of adjacent errors is 0.

    Every element has fractional part 1/2, so a draw shared by the row (the public-kernel bug,
    the control) makes the correlation 1. Fisher-z interval; tolerance 3 known half-widths.
    """
    x = np.full((rows, dim), 0.5 * 0.1)
    steps = np.full((rows, 1), 0.1)
    seed = b.seed_for("rows")

    def corr(err: np.ndarray) -> Estimate:
        a, c = err[:, :-1].ravel(), err[:, 1:].ravel()
        r = float(np.corrcoef(a, c)[0, 1]) if np.std(a) > 0 and np.std(c) > 0 else 1.0
        z = _t(a.size, LEVEL) / math.sqrt(a.size - 3)
        fz = math.atanh(min(max(r, -0.999999), 0.999999))
        return Estimate(r, math.tanh(fz - z), math.tanh(fz + z), a.size, LEVEL)

    independent = quantize(x, steps, QuantSpec(8), "stochastic", seed=seed).astype(np.float64) - 0.5
    # The control: each row's elements share one counter (offset = row index, no column term).
    shared = np.stack([quantize(x[:, j], 0.1, QuantSpec(8), "stochastic", seed=seed) for j in range(dim)],
                      axis=1).astype(np.float64) - 0.5
    tol = TOL_FACTOR * _t(rows * (dim - 1), LEVEL) / math.sqrt(rows * (dim - 1))
    return judge("quant: SR draws independent within a row (corr)", SOURCE, "exact", corr(independent), 0.0,
                 Absolute(round(tol, 4)), Control("one draw per row", corr(shared), 0.0), id="quant.row-indep")


def pack_roundtrip(b: Budget) -> CheckResult:
    """pack/unpack returns every code for every width 1..8 and odd lengths, in ceil(n b/8) bytes; unpacking
    with the wrong width is the control."""
    rng = b.rng("pack")
    cases = [(bits, shape, rng.integers(QuantSpec(bits).qmin, QuantSpec(bits).qmax + 1, size=shape).astype(np.int8))
             for bits in range(1, 9) for shape in ((1,), (7,), (3, 5), (13, 16), (2, 3, 11))]

    def failures(wrong: bool) -> Estimate:
        bad = 0
        for bits, shape, codes in cases:
            buf = pack(codes, bits)
            width = bits % 8 + 1 if wrong else bits
            try:
                ok = buf.size == (codes.size * bits + 7) // 8 and np.array_equal(unpack(buf, width, shape), codes)
            except ValueError:
                ok = False
            bad += not ok
        return Estimate.exact(bad)

    return judge("quant: pack/unpack round trip, bits 1..8", SOURCE, "exact", failures(False), 0, Exactly(),
                 Control("unpacked with another width", failures(True), 0), id="quant.pack")


def lsq_finite_difference(b: Budget, n: int = 20_000) -> CheckResult:
    """LSQ gradient = finite difference of step*clip(round(x/step)) plus the straight-through term -v inside.

    Away from rounding jumps the exact derivative is round(v) inside the range and the clip bound
    outside; LSQ adds -v inside. Points within 1e-3 of a jump are excluded so the finite
    difference is exact up to float64 rounding. The control compares with the plain derivative
    (no straight-through term), which LSQ is not.
    """
    rng = b.rng("lsq")
    spec = QuantSpec(3)
    step, h = 0.4, 1e-6
    x = rng.uniform(-2.5, 2.5, n)  # covers both clip regions (|x| > 1.6)
    qf = lambda s: s * np.clip(np.floor(x / s + 0.5), spec.qmin, spec.qmax)  # noqa: E731
    fd = (qf(step + h) - qf(step - h)) / (2 * h)
    v = x / step
    inside = (v > spec.qmin) & (v < spec.qmax)
    smooth = np.abs(v - np.floor(v) - 0.5) > 1e-3
    grad = lsq_step_grad(x, step, spec)[smooth]

    def worst(expected: np.ndarray) -> Estimate:
        return Estimate.exact(float(np.max(np.abs(grad - expected[smooth]))))

    return judge("quant: LSQ step gradient vs finite difference (max |diff|)", "Esser et al. (2020), LSQ", "exact",
                 worst(fd - np.where(inside, v, 0.0)), 0.0, Absolute(1e-6),
                 Control("plain derivative (no STE term)", worst(fd), 0.0), id="quant.lsq-fd")


# 10.1-10.3 Few random bits ------------------------------------------------------------------------------------

def few_bit_bias(b: Budget, n: int = 1 << 23, bits: int = 8) -> CheckResult:
    """SR with k random bits is biased by ceil(p 2^k)/2^k - p steps: measured at p = 2^-12 (almost the whole 2^-k),
    through lptsim's own core with the uniform cut to 8 bits; lptsim's 24-bit SR (unbiased there) is the control."""
    p = 2.0**-12
    x = np.full(n, 3 + p)
    pred = float(theory.few_bit_sr_bias(p, bits))

    def bias() -> Estimate:
        return mean_ci(quantize(x, 1.0, None, "stochastic", seed=b.seed_for("few_bits")).astype(np.float64) - x)

    with rounding_rule(RoundingRule(sr_bits=bits)):
        few = bias()
    return judge(f"quant: SR with {bits} random bits is biased by ceil(p 2^k)/2^k - p (p = 2^-12)",
                 cite("few_bit_sr_bias"), "exact", few, pred, Relative(0.05),
                 Control("lptsim's SR (24 bits)", bias(), pred),
                 note=f"{n:,} roundings of 3 + 2^-12; predicted {pred:.5g} steps = (1 - 1/16) 2^-8, the 2^-k bound "
                      "all but attained; 24 bits give 0 here (2^-12 is a multiple of 2^-24)", id="quant.fewbit-bias")


def bf16_state_unbiased(b: Budget, n: int = 1 << 20) -> CheckResult:
    """lptsim's bfloat16 state writes (stochastic_cast) draw 24 random bits, and a float32 value's fraction between
    two bfloat16 neighbours has at most 16 bits: the predicted bias is exactly 0, measured at the fraction 2^-12
    where 8-bit SR (the control) is biased by (1 - 1/16) 2^-8 of a spacing. Tolerance: 3 known half-widths."""
    frac = 2.0**-12
    spacing = 2.0**-7  # bfloat16 spacing in [1, 2)
    x = torch.full((n,), 1.0 + frac * spacing, dtype=torch.float32)
    counters = np.arange(n, dtype=np.uint64)
    half = _t(n, LEVEL) * math.sqrt(frac * (1 - frac) / n)

    def bias() -> Estimate:
        out = stochastic_cast(x, torch.bfloat16, b.seed_for("bf16"), counters)
        return mean_ci((out.double().numpy() - x.double().numpy()) / spacing)

    pred = float(theory.few_bit_sr_bias(frac, UNIFORM_BITS))
    measured = bias()  # under the active rule: lptsim's own (a planted fault reaches it)
    with rounding_rule(RoundingRule(sr_bits=8)):
        few = bias()
    return judge("quant: bfloat16 state writes unbiased (24 random bits, 16-bit fractions)", cite("few_bit_sr_bias"),
                 "exact", measured, pred, Absolute(round(3 * half, 7)),
                 Control("the same writes with 8-bit SR", few, pred),
                 note=f"{n:,} casts of 1 + 2^-19 to bfloat16 (lptsim.quant.floats.stochastic_cast, the CTR tables' "
                      "16-bit state path); float16 fractions have at most 13 bits: also exact",
                 id="quant.bf16-unbiased")


# 10.4 The accumulated SR error is a martingale --------------------------------------------------------------

def _quantile_ci(x: np.ndarray, q: float, level: float = LEVEL) -> Estimate:
    """The q-quantile of independent samples with its distribution-free (binomial order-statistic) interval."""
    s = np.sort(np.asarray(x, dtype=float))
    n = s.size
    lo_k, hi_k = stats.binom.ppf([(1 - level) / 2, (1 + level) / 2], n, q).astype(int)
    return Estimate(float(np.quantile(s, q)), float(s[max(lo_k - 1, 0)]), float(s[min(hi_k, n - 1)]), n, level)


def accumulated_error(b: Budget, reps: int = 20_000, n: int = 1000, prob: float = 0.05) -> CheckResult:
    """s_i = Q(s_(i-1) + 0.49 Delta), n = 1000 times: SR's accumulated error is a martingale whose (1 - delta)-quantile
    stays within Azuma-Hoeffding's Delta sqrt(n ln(2/delta)/2); DR stagnates (s never moves: error 0.49 n Delta)."""
    step, x = 1.0, 0.49
    bound = float(theory.sr_accumulated_error_bound(n, step, prob))

    def errors(rounding: str) -> np.ndarray:
        s = np.zeros(reps)
        seed = b.seed_for("azuma")
        for i in range(n):
            s = quantize(s + x, step, None, rounding, seed=seed, offset=i * reps).astype(np.float64)
        return s - n * x

    sr, dr = errors("stochastic"), errors("nearest")
    tail = float(np.mean(np.abs(sr) > bound))
    return judge(f"quant: accumulated SR error, (1 - delta)-quantile of |sum| <= Azuma radius (delta = {prob:g})",
                 cite("sr_accumulated_error_bound"), "upper bound", _quantile_ci(np.abs(sr), 1 - prob), bound, AtMost(),
                 Control("DR (stagnation)", _quantile_ci(np.abs(dr), 1 - prob), bound),
                 note=f"{reps:,} sums of n = {n} increments of 0.49 Delta; P(|sum| > radius) measured {tail:.4f} "
                      f"against delta = {prob:g} (Hoeffding's tail is loose, its radius is not: about 0.72 of it is "
                      "the exact quantile)", id="quant.sr-azuma")


def _k(b: Budget) -> int:
    return max(int(b.horizon), 1)  # a longer horizon multiplies the sample sizes


# The group in parts (each a function of the budget), so --power can re-run only the parts a statement reaches.
PARTS = (
    lambda b: [sr_unbiased(b, n=1_000_000 * _k(b))],
    lambda b: [sr_variance(b, p=0.3, n=400_000 * _k(b)), sr_variance(b, p=0.9, n=400_000 * _k(b))],
    lambda b: [dr_error_bound(b, n=1_000_000 * _k(b)), dr_ties(b)],
    lambda b: [grid_fixed_points(b), clipping(b), chunk_invariance(b)],
    lambda b: [row_independence(b, rows=100_000 * _k(b))],
    lambda b: [pack_roundtrip(b), lsq_finite_difference(b)],
    lambda b: [few_bit_bias(b, n=(1 << 23) * _k(b))],
    lambda b: [bf16_state_unbiased(b, n=(1 << 20) * _k(b))],
    lambda b: [accumulated_error(b, reps=20_000 * _k(b))],
)


def run(b: Budget) -> list[CheckResult]:
    """All quantizer checks (``b.horizon`` > 1 multiplies the sample sizes)."""
    return [r for part in PARTS for r in part(b)]
