"""Statistical and exact checks of the quantization core (lptsim.quant).

Tolerances come from the math: a mean of N independent draws with standard deviation
sigma is accepted within 4 sigma/sqrt(N); exact properties are compared exactly.
"""

from __future__ import annotations

import numpy as np

from lptsim.quant import QuantSpec, dequantize, lsq_step_grad, pack, quantize, unpack
from lptsim.verify.report import CheckResult

Z = 4.0  # z-score bound for statistical checks (two-sided false alarm ~6e-5)


def sr_unbiased(n: int = 1_000_000, step: float = 0.1, seed: int = 11) -> CheckResult:
    """E[SR(x)] = x: the mean scaled error over n values is within 4 sigma of zero."""
    rng = np.random.default_rng(seed)
    # Fractional parts below 1/2 everywhere, so round-to-nearest would be biased (by -E[p]).
    x = (rng.integers(-30, 30, n) + rng.uniform(0.0, 0.45, n)) * step
    codes = quantize(x, step, QuantSpec(8), "stochastic", seed=seed)
    err = (dequantize(codes, step) - x) / step
    p = x / step - np.floor(x / step)
    sigma = np.sqrt(np.mean(p * (1 - p)) / n)  # sd of the mean error, from Var = p(1-p)
    z = float(np.mean(err) / sigma)
    return CheckResult(
        "quant: SR unbiased (mean error / sd)", z, 0.0, f"|z| <= {Z}", abs(z) <= Z,
        note=f"{n} values, step {step}",
    )


def sr_variance(p: float = 0.3, n: int = 400_000, step: float = 0.25, seed: int = 12) -> CheckResult:
    """Var[SR(x)] = step^2 p (1-p) for fractional part p, within 4 sd of the sample variance."""
    x = np.full(n, (3 + p) * step)
    codes = quantize(x, step, QuantSpec(8), "stochastic", seed=seed)
    vals = dequantize(codes, step)
    measured = float(np.var(vals))
    predicted = step**2 * p * (1 - p)
    # Sample variance of a scaled Bernoulli: sd = step^2 sqrt((mu4 - s^4)/n), mu4 = pq(1 - 3pq)
    pq = p * (1 - p)
    sd = step**2 * np.sqrt((pq * (1 - 3 * pq) - pq**2) / n)
    return CheckResult(
        f"quant: SR variance at p={p}", measured, predicted, f"within {Z} sd ({Z * sd:.2e})",
        abs(measured - predicted) <= Z * sd,
    )


def dr_error_bound(n: int = 1_000_000, step: float = 0.07, seed: int = 13) -> CheckResult:
    """|DR(x) - x| <= step/2 inside the range."""
    x = np.random.default_rng(seed).uniform(-8.0, 8.0, n).astype(np.float32)
    codes = quantize(x, np.float32(step), QuantSpec(8), "nearest")
    worst = float(np.max(np.abs(dequantize(codes, np.float32(step)).astype(np.float64) - x)) / step)
    # float32 arithmetic allows a few ulps of the largest value on top of step/2.
    slack = 8 * np.finfo(np.float32).eps * 8.0 / step
    return CheckResult("quant: DR max error / step", worst, 0.5, f"<= 0.5 + {slack:.1e}", worst <= 0.5 + slack)


def grid_fixed_points() -> CheckResult:
    """Every code times the step is returned unchanged by both roundings, for every width."""
    mismatches = 0
    for bits in (1, 2, 4, 8, 12, 16):
        spec = QuantSpec(bits)
        codes = np.arange(spec.qmin, spec.qmax + 1)
        for step in (0.5, 0.1, 3.0):
            x = codes * step
            for rounding in ("nearest", "stochastic"):
                got = quantize(x, step, spec, rounding, seed=bits)
                mismatches += int(np.sum(got != codes))
    return CheckResult("quant: grid points are fixed points", mismatches, 0, "== 0 mismatches", mismatches == 0)


def clipping() -> CheckResult:
    """Values beyond the range map to qmin/qmax under both roundings."""
    spec = QuantSpec(3)
    x = np.array([-100.0, -4.6, 3.6, 100.0])
    bad = 0
    for rounding in ("nearest", "stochastic"):
        bad += int(np.sum(quantize(x, 1.0, spec, rounding, seed=3) != np.array([-4, -4, 3, 3])))
    return CheckResult("quant: clipping to [qmin, qmax]", bad, 0, "== 0 mismatches", bad == 0)


def chunk_invariance(n: int = 100_003, seed: int = 14) -> CheckResult:
    """Quantizing in chunks with matching offsets gives the codes of one call."""
    x = np.random.default_rng(seed).normal(size=n).astype(np.float32)
    whole = quantize(x, 0.05, QuantSpec(8), "stochastic", seed=seed, offset=7)
    cuts = [0, 1, 999, 50_000, 70_001, n]
    parts = [quantize(x[a:b], 0.05, QuantSpec(8), "stochastic", seed=seed, offset=7 + a)
             for a, b in zip(cuts, cuts[1:], strict=False)]
    diff = int(np.sum(np.concatenate(parts) != whole))
    return CheckResult("quant: chunk invariance", diff, 0, "== 0 differing codes", diff == 0)


def row_independence(rows: int = 100_000, dim: int = 16, seed: int = 15) -> CheckResult:
    """Elements of one row get independent draws: correlation of adjacent errors ~ 0.

    Every element has fractional part 1/2, so a shared per-row draw would make the
    correlation 1 (the public-kernel bug); independent draws give |r| <= 4/sqrt(n).
    """
    x = np.full((rows, dim), 0.5 * 0.1)
    steps = np.full((rows, 1), 0.1)
    err = quantize(x, steps, QuantSpec(8), "stochastic", seed=seed).astype(np.float64) - 0.5
    a, b = err[:, :-1].ravel(), err[:, 1:].ravel()
    r = float(np.corrcoef(a, b)[0, 1])
    bound = Z / np.sqrt(a.size)
    return CheckResult("quant: SR draws independent within a row (corr)", r, 0.0, f"|r| <= {bound:.1e}",
                       abs(r) <= bound)


def pack_roundtrip(seed: int = 16) -> CheckResult:
    """pack/unpack returns every code for every width 1..8 and odd lengths, in ceil(n*b/8) bytes."""
    rng = np.random.default_rng(seed)
    failures = 0
    for bits in range(1, 9):
        spec = QuantSpec(bits)
        for shape in ((0,), (1,), (7,), (3, 5), (13, 16), (2, 3, 11)):
            codes = rng.integers(spec.qmin, spec.qmax + 1, size=shape).astype(np.int8)
            buf = pack(codes, bits)
            ok = buf.size == (codes.size * bits + 7) // 8 and np.array_equal(unpack(buf, bits, shape), codes)
            failures += not ok
    return CheckResult("quant: pack/unpack round trip, bits 1..8", failures, 0, "== 0 failures", failures == 0)


def lsq_finite_difference(n: int = 20_000, seed: int = 17) -> CheckResult:
    """LSQ gradient = finite difference of step*clip(round(x/step)) plus the STE term -v inside.

    Away from rounding jumps the exact derivative is round(v) inside the range and the
    clip bound outside; LSQ adds the straight-through term -v inside. Points within h
    of a jump are excluded so the finite difference is exact up to float64 rounding.
    """
    rng = np.random.default_rng(seed)
    spec = QuantSpec(3)
    step, h = 0.4, 1e-6
    x = rng.uniform(-2.5, 2.5, n)  # covers both clip regions (|x| > 1.6)
    qf = lambda s: s * np.clip(np.floor(x / s + 0.5), spec.qmin, spec.qmax)  # noqa: E731
    fd = (qf(step + h) - qf(step - h)) / (2 * h)
    v = x / step
    inside = (v > spec.qmin) & (v < spec.qmax)
    smooth = np.abs(v - np.floor(v) - 0.5) > 1e-3
    expected = fd - np.where(inside, v, 0.0)
    worst = float(np.max(np.abs(lsq_step_grad(x, step, spec)[smooth] - expected[smooth])))
    return CheckResult("quant: LSQ step gradient vs finite difference", worst, 0.0, "max |diff| <= 1e-6", worst <= 1e-6)


def run(full: bool = False) -> list[CheckResult]:
    """All quantizer checks (``full`` multiplies the sample sizes by 10)."""
    k = 10 if full else 1
    return [
        sr_unbiased(n=1_000_000 * k),
        sr_variance(p=0.3, n=400_000 * k),
        sr_variance(p=0.9, n=400_000 * k),
        dr_error_bound(n=1_000_000 * k),
        grid_fixed_points(),
        clipping(),
        chunk_invariance(),
        row_independence(rows=100_000 * k),
        pack_roundtrip(),
        lsq_finite_difference(),
    ]
