"""Tests of the quantization core: exact properties, statistics, invalid input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lptsim.quant import QuantSpec, dequantize, lsq_step_grad, pack, quantize, uniforms, unpack
from lptsim.quant.philox import philox4, philox_word
from lptsim.verify import Budget, quant_checks


@pytest.mark.parametrize("bits", range(1, 17))
def test_spec_range(bits):
    spec = QuantSpec(bits)
    assert spec.qmin == -(2 ** (bits - 1)) and spec.qmax == 2 ** (bits - 1) - 1
    assert np.iinfo(spec.code_dtype).min <= spec.qmin and spec.qmax <= np.iinfo(spec.code_dtype).max


@pytest.mark.parametrize("bits", [0, 17, -1, 2.5, True, "4", None])
def test_spec_rejects_bad_bits(bits):
    with pytest.raises(ValueError, match="bits"):
        QuantSpec(bits)


def test_philox_known_answer():
    # Random123's known-answer vector for Philox4x32-10, key 0, counter 0: 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
    assert int(philox_word(np.uint64(0), np.uint64(0))) == 0x6627E8D5
    assert [int(w) for w in philox4(np.uint64(0), np.uint64(0))] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]


def test_uniforms_are_uniform_and_distinct_per_seed():
    n = 200_000
    u = uniforms(5, 0, n)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) <= 4 * np.sqrt(1 / 12 / n)
    hist = np.histogram(u, bins=16, range=(0, 1))[0]
    # Chi-square with 15 dof: mean 15, sd sqrt(30); 4 sd above the mean.
    chi2 = float(np.sum((hist - n / 16) ** 2 / (n / 16)))
    assert chi2 <= 15 + 4 * np.sqrt(30)
    v = uniforms(6, 0, n)
    assert abs(np.corrcoef(u, v)[0, 1]) <= 4 / np.sqrt(n)


def test_nearest_matches_floor_half():
    x = np.random.default_rng(0).uniform(-5, 5, 100_000)
    step = 0.37
    expected = np.clip(np.floor(x / step + 0.5), -128, 127)
    assert np.array_equal(quantize(x, step, QuantSpec(8), "nearest"), expected)


def test_nearest_ties_round_up():
    x = np.array([0.5, -0.5, 1.5, -1.5, 2.5])
    assert quantize(x, 1.0, QuantSpec(4), "nearest").tolist() == [1, 0, 2, -1, 3]


def test_stochastic_equals_reference_formula():
    """SR code = floor(v) + [U < frac(v)] with U the documented Philox uniforms."""
    x = np.random.default_rng(1).uniform(-3, 3, 50_000)
    step, seed, offset = 0.21, 99, 12345
    v = x / step
    u = uniforms(seed, offset, x.size)
    expected = np.clip(np.floor(v) + (u < v - np.floor(v)), -128, 127)
    assert np.array_equal(quantize(x, step, QuantSpec(8), "stochastic", seed=seed, offset=offset), expected)


def test_rounding_rules_follow_their_reference_formulas():
    """Few-bit SR, a shifted uniform and ties-down DR against formulas on the documented Philox uniforms; the
    default rule is the definition (the rule only exists to be studied or planted)."""
    from lptsim.quant.rounding import EXACT, RoundingRule, active_rule, rounding_rule

    x = np.random.default_rng(2).uniform(-3, 3, 40_000)
    x[:64] = np.arange(-32, 32) + 0.5  # exact ties
    step, seed, offset = 1.0, 7, 99
    f = np.floor(x)
    p = x - f
    u = uniforms(seed, offset, x.size)
    cases = {
        RoundingRule(sr_bits=8): ("stochastic", np.floor(u * 256) / 256 < p),
        RoundingRule(sr_bits=1): ("stochastic", np.floor(u * 2) / 2 < p),
        RoundingRule(u_shift=0.05): ("stochastic", u - 0.05 < p),
        RoundingRule(sr_as_nearest=True): ("stochastic", p >= 0.5),
        RoundingRule(ties_down=True): ("nearest", p > 0.5),
    }
    for rule, (rounding, up) in cases.items():
        with rounding_rule(rule):
            assert active_rule() is rule
            got = quantize(x, step, None, rounding, seed=seed, offset=offset)
        assert np.array_equal(got, f + up), rule
    assert active_rule() is EXACT
    assert np.array_equal(quantize(x, step, None, "stochastic", seed=seed, offset=offset), f + (u < p))
    with pytest.raises(ValueError, match="sr_bits"):
        with rounding_rule(RoundingRule(sr_bits=25)):
            pass
    assert active_rule() is EXACT


def test_few_bit_sr_rounds_up_with_probability_ceil_p_2k_over_2k():
    """k random bits: P(up) = ceil(p 2^k)/2^k, so a fraction just above j/2^k is biased by almost 2^-k (a 4-sigma
    binomial tolerance); 24 bits are unbiased there."""
    from lptsim.quant.rounding import RoundingRule, rounding_rule

    n, k = 400_000, 6
    p = 3 / 64 + 1 / 4096
    x = np.full(n, 5 + p)
    with rounding_rule(RoundingRule(sr_bits=k)):
        few = quantize(x, 1.0, None, "stochastic", seed=3).mean() - 5
    exact = quantize(x, 1.0, None, "stochastic", seed=3).mean() - 5
    want = np.ceil(p * 2**k) / 2**k
    assert abs(few - want) < 4 * np.sqrt(want * (1 - want) / n)
    assert abs(exact - p) < 4 * np.sqrt(p * (1 - p) / n) and want - p > 20 * np.sqrt(p / n)


def test_quant_checks_pass_with_their_controls_failing():
    results = quant_checks.run(Budget())
    assert len(results) == 14
    assert all(r.passed and r.control is not None and r.control.verdict == "FAIL" for r in results), [
        r for r in results if not r.passed]


def test_sr_checks_reject_deterministic_rounding(monkeypatch):
    """The criteria can fail: DR is biased on these inputs and has variance 0."""
    real = quant_checks.quantize
    monkeypatch.setattr(quant_checks, "quantize", lambda x, s, spec, r, **k: real(x, s, spec, "nearest"))
    assert not quant_checks.sr_variance(Budget(), p=0.3).passed
    assert not quant_checks.sr_unbiased(Budget()).passed


def test_row_independence_check_catches_shared_row_draw(monkeypatch):
    """A per-row shared draw (the public-kernel bug) gives correlation 1 and fails the check."""

    def shared_draw(x, step, spec, rounding, seed=0, offset=0):
        v = np.asarray(x) / np.asarray(step)
        u = uniforms(seed, offset, v.shape[0]).reshape((v.shape[0],) + (1,) * (v.ndim - 1))  # one draw per row
        return np.floor(v) + (u < v - np.floor(v))

    monkeypatch.setattr(quant_checks, "quantize", shared_draw)
    result = quant_checks.row_independence(Budget(), rows=20_000)
    assert not result.passed and result.measured > 0.99


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3000),
    cuts=st.lists(st.floats(0, 1), max_size=4),
    seed=st.integers(0, 2**64 - 1),
    offset=st.integers(0, 2**40),
)
def test_chunk_invariance_property(n, cuts, seed, offset):
    x = np.random.default_rng(n).normal(size=n).astype(np.float32)
    whole = quantize(x, 0.1, QuantSpec(4), "stochastic", seed=seed, offset=offset)
    points = sorted({0, n, *(int(c * n) for c in cuts)})
    parts = [quantize(x[a:b], 0.1, QuantSpec(4), "stochastic", seed=seed, offset=offset + a)
             for a, b in zip(points, points[1:], strict=False)]
    assert np.array_equal(np.concatenate(parts), whole)


def test_seed_reproducible_and_seed_sensitive():
    x = np.random.default_rng(2).normal(size=10_000)
    a = quantize(x, 0.05, QuantSpec(8), "stochastic", seed=7)
    b = quantize(x, 0.05, QuantSpec(8), "stochastic", seed=7)
    c = quantize(x, 0.05, QuantSpec(8), "stochastic", seed=8)
    assert np.array_equal(a, b)
    assert np.mean(a != c) > 0.3  # fractional parts are spread: many codes must differ


def test_parallel_and_serial_kernels_agree():
    x = np.random.default_rng(3).normal(size=(1 << 17) + 3).astype(np.float32)
    big = quantize(x, 0.01, QuantSpec(8), "stochastic", seed=1)
    small = np.concatenate([quantize(x[i:i + 1000], 0.01, QuantSpec(8), "stochastic", seed=1, offset=i)
                            for i in range(0, x.size, 1000)])
    assert np.array_equal(big, small)


def test_torch_and_numpy_agree():
    x = np.random.default_rng(4).normal(size=(64, 16)).astype(np.float32)
    steps = np.random.default_rng(5).uniform(0.01, 0.2, (64, 1)).astype(np.float32)
    for rounding in ("nearest", "stochastic"):
        a = quantize(x, steps, QuantSpec(4), rounding, seed=3)
        b = quantize(torch.from_numpy(x), torch.from_numpy(steps), QuantSpec(4), rounding, seed=3)
        assert isinstance(b, torch.Tensor) and b.dtype == torch.int8
        assert isinstance(a, np.ndarray) and a.dtype == np.int8
        assert np.array_equal(a, b.numpy())


def test_low_precision_torch_input_is_accepted():
    """bf16 values are exact in float32: the codes are those of the same values given as float32."""
    x = torch.randn(100, dtype=torch.bfloat16)
    for rounding in ("nearest", "stochastic"):
        codes = quantize(x, 0.1, QuantSpec(8), rounding, seed=0)
        assert codes.dtype == torch.int8 and codes.shape == x.shape
        assert torch.equal(codes, quantize(x.float(), 0.1, QuantSpec(8), rounding, seed=0))
        assert codes.abs().max() > 0


def test_step_broadcasting_matches_full_step():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(5, 4, 3))
    for shape in [(5, 1, 1), (5, 4, 1), (1, 4, 1), (3,), (1, 1, 3), (5, 4, 3), ()]:
        step = rng.uniform(0.05, 0.5, shape)
        full = np.broadcast_to(step, x.shape).copy()
        a = quantize(x, step, QuantSpec(6), "stochastic", seed=2)
        b = quantize(x, full, QuantSpec(6), "stochastic", seed=2)
        assert np.array_equal(a, b), shape


def test_unbounded_grid():
    codes = quantize(np.array([1e6, -3.3]), 0.5, None, "nearest")
    assert codes.dtype == np.int64 and codes.tolist() == [2_000_000, -7]


def test_dequantize_roundtrip_types():
    codes = np.array([-2, 0, 3], dtype=np.int8)
    assert dequantize(codes, 0.5).tolist() == [-1.0, 0.0, 1.5]
    assert dequantize(codes, np.float32(0.5)).dtype == np.float32
    t = dequantize(torch.tensor(codes), torch.tensor(0.5))
    assert t.dtype == torch.float32 and t.tolist() == [-1.0, 0.0, 1.5]


@pytest.mark.parametrize("step", [0.0, -1.0, np.nan, np.inf, np.array([0.1, 0.0])])
def test_bad_step_raises(step):
    with pytest.raises(ValueError, match="step"):
        quantize(np.ones(2), step, QuantSpec(4), "nearest")


def test_step_that_does_not_broadcast_raises():
    with pytest.raises(ValueError, match="broadcast"):
        quantize(np.ones((4, 3)), np.ones((2, 1)), QuantSpec(4))
    with pytest.raises(ValueError, match="enlarge"):
        quantize(np.ones((4, 1)), np.ones((4, 3)), QuantSpec(4))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_x_raises(bad):
    x = np.ones(200_000)
    x[123] = bad
    with pytest.raises(ValueError, match="non-finite"):
        quantize(x, 0.1, QuantSpec(4), "stochastic")


@pytest.mark.parametrize("kwargs, match", [
    ({"rounding": "up"}, "rounding"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**64}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"offset": -1}, "offset"),
    ({"offset": 2**64 - 1}, "offset"),
])
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        quantize(np.ones(3), 0.1, QuantSpec(4), **kwargs)


def test_integer_x_raises():
    with pytest.raises(ValueError, match="floating"):
        quantize(np.ones(3, dtype=np.int32), 0.1, QuantSpec(4))


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(1, 8), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=17),
       data=st.data())
def test_pack_roundtrip_property(bits, shape, data):
    spec = QuantSpec(bits)
    codes = data.draw(hnp.arrays(np.int8, shape, elements=st.integers(spec.qmin, spec.qmax)))
    buf = pack(codes, bits)
    assert buf.dtype == np.uint8 and buf.size == (codes.size * bits + 7) // 8
    assert np.array_equal(unpack(buf, bits, shape), codes)


def test_pack_torch_roundtrip_and_layout():
    codes = torch.tensor([-1, 0, 1, -2], dtype=torch.int8)
    buf = pack(codes, 2)
    assert isinstance(buf, torch.Tensor) and buf.tolist() == [0b10_01_00_11]
    assert torch.equal(unpack(buf, 2, (4,)), codes)


@pytest.mark.parametrize("bits", [0, 9, 16])
def test_pack_bad_bits(bits):
    with pytest.raises(ValueError, match="bits"):
        pack(np.zeros(3, dtype=np.int8), bits)


def test_pack_out_of_range_and_short_buffer():
    with pytest.raises(ValueError, match="range|lie in"):
        pack(np.array([2], dtype=np.int8), 2)
    with pytest.raises(ValueError, match="need"):
        unpack(np.zeros(1, dtype=np.uint8), 4, (3,))


def test_lsq_formula():
    spec = QuantSpec(2)  # qmin -2, qmax 1
    step = 0.5
    x = np.array([-5.0, -1.0, -0.8, 0.1, 0.3, 0.5, 0.7, 2.0])
    v = x / step  # -10, -2, -1.6, 0.2, 0.6, 1.0, 1.4, 4
    expected = [-2, -2, -2 + 1.6, -0.2, 1 - 0.6, 1, 1, 1]
    np.testing.assert_allclose(lsq_step_grad(x, step, spec), expected, atol=1e-12)
    t = lsq_step_grad(torch.tensor(x), torch.tensor(step, dtype=torch.float64), spec)
    np.testing.assert_allclose(t.numpy(), expected, atol=1e-12)
    assert np.all(v == x / step)


# The stored byte layout of every packed width, pinned so tables written today stay readable. The codes are
# (37 i + 11) mod 2^b shifted into the signed range, i = 0..12 (an odd length, so the last byte is partial).
PINNED_LAYOUT = {
    1: "aa0a", 2: "39393901", 3: "673c54673c", 4: "832dc7610ba50f", 5: "1b14f568f603357901",
    6: "2b546b3f99b813de0927", 7: "4b7845f725a49c734c4f7c00", 8: "8bb0d5fa1f44698eb3d8fd2247",
}


def _documented_layout(codes: list[int], bits: int) -> bytes:
    """The packing docstring's rule, independently: code i at bits i*b.. of a little-endian stream, two's complement."""
    stream = 0
    for i, c in enumerate(codes):
        stream |= (c & ((1 << bits) - 1)) << (i * bits)
    return stream.to_bytes((len(codes) * bits + 7) // 8, "little")


@pytest.mark.parametrize("bits", range(1, 9))
def test_pack_layout_is_pinned_for_every_width(bits):
    lo = -(1 << (bits - 1))
    codes = [(i * 37 + 11) % (1 << bits) + lo for i in range(13)]
    buf = pack(np.array(codes, dtype=np.int8), bits).tobytes()
    assert buf.hex() == PINNED_LAYOUT[bits]
    assert buf == _documented_layout(codes, bits)
    assert unpack(np.frombuffer(bytes.fromhex(PINNED_LAYOUT[bits]), dtype=np.uint8), bits, 13).tolist() == codes


def test_sr_statistics_on_the_per_row_offset_path_used_by_tables():
    """Embeddings key draws by global row (offset[r] + j): per-element mean p and variance p(1-p), and independent
    elements within a row (a draw shared by the row would make adjacent errors correlate perfectly)."""
    rows, dim, p = 40_000, 16, 0.3
    x = np.full((rows, dim), (2 + p) * 0.1)
    steps = np.full((rows, 1), 0.1)
    codes = quantize(x, steps, QuantSpec(8), "stochastic", seed=7, offset=np.arange(rows) * dim + 11)
    up = (codes - 2).astype(np.float64)
    sd = np.sqrt(p * (1 - p) / rows)
    assert np.all(np.abs(up.mean(axis=0) - p) <= 4 * sd)  # every element position
    assert abs(up.var() - p * (1 - p)) <= 4 * p * (1 - p) * np.sqrt(2 / up.size)
    r = np.corrcoef(up[:, :-1].ravel(), up[:, 1:].ravel())[0, 1]
    assert abs(r) <= 4 / np.sqrt(rows * (dim - 1))
    # and the same draws as one contiguous call (chunking does not matter)
    np.testing.assert_array_equal(codes, quantize(x, steps, QuantSpec(8), "stochastic", seed=7, offset=11))
