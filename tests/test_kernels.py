"""The Triton kernels against the torch reference backend of the low-precision table, bit for bit.

Run with ``-k kernel``. With CUDA the kernels run compiled on CUDA tensors; without, under
TRITON_INTERPRET=1 on CPU tensors (conftest.py sets it), at small sizes. The numerical contract
(no FMA, sequential row sums, duplicates summed in batch order) makes codes, steps and optimizer
state identical to the reference, so every comparison here is exact.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("triton")

from lptsim.ctr import kernels  # noqa: E402
from lptsim.ctr.contract import step_seed  # noqa: E402
from lptsim.ctr.embedding import LowPrecisionEmbedding  # noqa: E402
from lptsim.ctr.table import TableOptimizer  # noqa: E402
from lptsim.ctr.table.backends.triton_launch import kernel_view  # noqa: E402
from lptsim.ctr.table.state import state_differences, state_tensors  # noqa: E402
from lptsim.quant import QuantSpec, unpack  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
LR = {"sgd": 0.5, "adagrad": 0.05, "adam": 0.01}
VARIANTS = [  # (method, extra options): LPT with a step per row / per table, ALPT with SGD / Adam on the steps
    ("lpt-dr", {}),
    ("lpt-sr", {"step_granularity": "table"}),
    ("lpt-sr", {"step_granularity": "field"}),  # field_starts added by the test (global rows)
    ("alpt", {"alpt_variant": "one-pass", "step_optimizer": "sgd"}),
    ("alpt", {"alpt_variant": "one-pass", "step_optimizer": "adam"}),
    ("alpt", {"alpt_variant": "one-pass", "step_optimizer": "adagrad"}),
]
OPTIMIZERS = ("sgd", "adagrad", "adam")
DIMS = (5, 16, 13, 8)
# A covering set: every (bits, variant) pair once; optimizers and odd/even dims rotate through them, so every
# optimizer meets every variant and every bit width meets odd and even dims.
CASES = [(1 + i % 8, VARIANTS[i // 8], OPTIMIZERS[(i + i // 8) % 3], DIMS[(i + i // 8) % 4]) for i in range(48)]


F32 = {"state_dtype": "float32"}  # the kernels keep float32 state (the tables default to bfloat16)


def _pair(rows, dim, bits, method, opt, extra, row_offset=0, seed=5):
    kw = dict(bits=bits, method=method, optimizer=opt, lr=LR[opt], init_std=0.02, seed=seed, row_offset=row_offset,
              **F32, **extra)
    ref = LowPrecisionEmbedding(rows, dim, backend="torch", **kw).to(DEVICE)
    ker = LowPrecisionEmbedding(rows, dim, backend="triton", **kw).to(DEVICE)
    return ref, ker


def _step(emb, ids, upstream, lr_factor=1.0, upstream2=None, second=None):
    """One training step through the public API: forward, backward, TableOptimizer.step (with the table's row lr
    times ``lr_factor``); two-pass ALPT's closure weighs the second pass's rows by ``upstream2`` and appends them
    to ``second``."""
    opt = TableOptimizer(emb)
    opt.param_groups[0]["lr"] *= lr_factor

    def closure():
        out2 = emb(ids)
        if second is not None:
            second.append(out2.detach())
        return (out2 * (upstream if upstream2 is None else upstream2)).sum()

    out = emb(ids)
    (out * upstream).sum().backward()
    opt.step(closure)
    return out.detach()


def _compare(ref, ker):
    """Every state tensor (codes, steps, counters, moments, accumulators: ``state_tensors``), bit for bit."""
    names = set(state_tensors(ref))
    assert {"codes", "steps", "updates"} <= names
    assert ref.row_state.optimizer != "adam" or {"row_state.exp_avg", "row_state.exp_avg_sq",
                                                  "row_state.steps"} <= names
    diff = state_differences(ref, ker)
    assert not any(diff.values()), f"state differs (elements per tensor): {diff}"


@pytest.mark.parametrize("bits, variant, opt, dim", CASES,
                         ids=[f"b{b}-{v[0]}-{v[1].get('step_optimizer') or v[1].get('step_granularity', 'row')}"
                              f"-{o}-d{d}" for b, v, o, d in CASES])
def test_kernel_matches_reference(bits, variant, opt, dim):
    """Three steps carrying state: duplicate-heavy, all-unique, duplicate-heavy; row_offset != 0, lr_factor != 1."""
    method, extra = variant
    rows, row_offset = 24, 1000 + bits
    if extra.get("step_granularity") == "field":  # three fields: local rows 0-1, 2-8, 9-23
        extra = dict(extra, field_starts=[0, row_offset + 2, row_offset + 9])
    ref, ker = _pair(rows, dim, bits, method, opt, extra, row_offset=row_offset, seed=2**40 + bits)
    assert ker.backend.name == "triton" and ref.backend.name == "torch"
    gen = torch.Generator().manual_seed(bits * 1000 + dim)
    for lr_factor, batch in ((1.0, "dup"), (0.5, "unique"), (0.25, "dup")):
        if batch == "dup":
            ids = torch.randint(0, 5, (12, 3), generator=gen)
        else:
            ids = torch.randperm(rows, generator=gen)[:18].view(6, 3)
        upstream = torch.randn(*ids.shape, dim, generator=gen)
        ids, upstream = ids.to(DEVICE), upstream.to(DEVICE)
        out_ref, out_ker = _step(ref, ids, upstream, lr_factor), _step(ker, ids, upstream, lr_factor)
        assert torch.equal(out_ker, out_ref)
        _compare(ref, ker)


@pytest.mark.parametrize("opt", ["adagrad", "adam"])
def test_kernel_matches_reference_on_a_zipf_batch(opt):
    """The benchmark's exactness check, small: 8-bit one-pass ALPT, long runs of duplicates (a heavy head),
    a few hundred rows touched; steps and Adam moments must agree bit for bit (a one-ulp root does not)."""
    rows = 300
    ref, ker = _pair(rows, 16, 8, "alpt", opt, {"alpt_variant": "one-pass"}, seed=1)
    for emb in (ref, ker):  # later in training: the powering runs over 13 bits of t, 0.999**t is not yet 0
        emb.updates.fill_(4_321)
        if opt == "adam":
            emb.row_state.steps.fill_(3_333)
    gen = torch.Generator().manual_seed(8)
    for _ in range(2):
        u = torch.rand(8 * 39, generator=gen)
        ids = ((rows**u - 1).long() % rows).view(8, 39).to(DEVICE)  # log-uniform ids
        up = torch.randn(8, 39, 16, generator=gen).to(DEVICE)
        _step(ref, ids, up)
        _step(ker, ids, up)
        _compare(ref, ker)


def test_reference_division_is_correctly_rounded():
    """div_rn against numpy's IEEE float32 division, by tensors and by Python numbers (rounded to float32 first,
    as a kernel's float argument is); on CUDA the plain ``tensor / number`` is a reciprocal multiply, which
    differs (the CUDA half of the check runs where a GPU is)."""
    from lptsim.ctr.ordered_sums import div_rn

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(100_000, generator=gen), torch.rand(100_000, generator=gen) + 0.1
    for dev in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        assert np.array_equal(div_rn(a.to(dev), b.to(dev)).cpu().numpy(), a.numpy() / b.numpy())
        for d in (13.0, 1 - 0.999**7, 3):
            assert np.array_equal(div_rn(a.to(dev), d).cpu().numpy(), a.numpy() / np.float32(d))


def test_reference_divides_only_through_div_rn():
    """No ``/`` in the torch reference's arithmetic: every division goes through div_rn (CUDA torch computes
    ``tensor / python_number`` as a reciprocal multiply, so a bare ``/`` would make the reference device-dependent)."""
    import ast

    from lptsim.ctr.table.backends import torch_reference

    tree = ast.parse(Path(torch_reference.__file__).read_text())
    divs = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.BinOp | ast.AugAssign) and isinstance(n.op, ast.Div)]
    assert divs == [], f"bare divisions at lines {divs}"
    bad = ast.parse("x = w - lr * g / d")  # the check sees a division
    assert [n for n in ast.walk(bad) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)]


def test_bias_correction_is_the_correctly_rounded_value():
    """contract.bias_correction (float64 binary powering, then float32) equals 1 - beta**t computed exactly in
    rationals and rounded to float32, for t = 1..600 and a few large t: powering errs by a few float64 ulps,
    2**29 times finer than the float32 rounding, so a mismatch would need a value within them of a tie."""
    from fractions import Fraction

    from lptsim.ctr.contract import bias_correction

    def f32_rn(x: Fraction) -> float:  # the float32 nearest to the rational x (no double rounding)
        f = np.float32(float(x))
        near = (np.nextafter(f, np.float32(-1)), f, np.nextafter(f, np.float32(2)))
        return float(min(near, key=lambda c: abs(Fraction(float(c)) - x)))

    for beta in (0.9, 0.999):
        fb = Fraction(beta)
        p = Fraction(1)
        for t in range(1, 601):
            p *= fb
            assert bias_correction(beta, t) == f32_rn(1 - p), (beta, t)
        for t in (3_333, 4_321, 20_001):
            assert bias_correction(beta, t) == f32_rn(1 - fb**t), (beta, t)
    assert bias_correction(0.999, 7) != bias_correction(0.999, 8)


def test_reference_square_root_is_correctly_rounded():
    """The reference's sqrt_rn against numpy's IEEE square root (torch's vectorised CPU sqrt is not exact)."""
    from lptsim.ctr.ordered_sums import sqrt_rn

    x = torch.rand(200_000, generator=torch.Generator().manual_seed(0)) * 10
    assert np.array_equal(sqrt_rn(x).numpy(), np.sqrt(x.numpy()))


@pytest.mark.parametrize("copies", [32, 33, 1100])  # one level, two, three (1100 > 32**2)
def test_kernel_long_runs_of_one_id(copies):
    """A hot id: its gradients summed in the fixed chunked order, by the kernels and the reference alike;
    the sum equals the float64 sum to float32 rounding (and, up to 32 copies, the plain in-order sum)."""
    from lptsim.ctr.ordered_sums import ordered_segment_sum

    ref, ker = _pair(3, 7, 8, "lpt-dr", "sgd", {})
    gen = torch.Generator().manual_seed(copies)
    ids = torch.cat([torch.zeros(copies, dtype=torch.long), torch.tensor([2, 1, 2])])[torch.randperm(copies + 3,
                                                                                                      generator=gen)]
    up = torch.randn(copies + 3, 1, 7, generator=gen)
    _step(ref, ids.view(-1, 1).to(DEVICE), up.to(DEVICE))
    _step(ker, ids.view(-1, 1).to(DEVICE), up.to(DEVICE))
    _compare(ref, ker)
    total = ordered_segment_sum(up.view(-1, 7), ids, 3)
    want = torch.zeros(3, 7, dtype=torch.float64).index_add_(0, ids, up.view(-1, 7).double())
    torch.testing.assert_close(total.double(), want, rtol=0, atol=copies * 2**-22)
    if copies <= 32:
        plain = torch.zeros(7)
        for k in (ids == 0).nonzero().flatten():
            plain = plain + up[k, 0]
        assert torch.equal(total[0], plain)


TWO_PASS = [(1 + i % 8, OPTIMIZERS[i % 3], ("sgd", "adam", "adagrad")[i % 3 - 1], DIMS[i % 4]) for i in range(8)]


@pytest.mark.parametrize("bits, opt, step_opt, dim", TWO_PASS)
def test_kernel_two_pass_alpt_matches_reference(bits, opt, step_opt, dim):
    """Two-pass ALPT: stage (row optimizer), a second forward on the DR-rounded updated rows with its own
    gradient, commit (steps from that gradient, SR write-back); three steps, state carried over."""
    rows = 20
    ref, ker = _pair(rows, dim, bits, "alpt", opt, {"alpt_variant": "two-pass", "step_optimizer": step_opt},
                     row_offset=77, seed=9)
    assert ker.backend.name == "triton" and ker.config.two_pass
    gen = torch.Generator().manual_seed(bits)
    for lr_factor in (1.0, 0.5, 1.0):
        ids = torch.randint(0, 6, (10, 3), generator=gen).to(DEVICE)
        up, up2 = (torch.randn(10, 3, dim, generator=gen).to(DEVICE) for _ in range(2))
        second = []
        for emb in (ref, ker):
            _step(emb, ids, up, lr_factor, upstream2=up2, second=second)
        assert len(second) == 2 and torch.equal(second[0], second[1])
        _compare(ref, ker)


# ALPT with a step shared by many rows: every (granularity, variant, step optimizer) once, the state dtype rotating
# so that each step optimizer, variant and granularity meets float32 and bfloat16 state.
SHARED = [(("field", "table")[i % 2], ("one-pass", "two-pass")[i // 2 % 2], ("sgd", "adam", "adagrad")[i // 4],
           ("float32", "bfloat16")[(i + i // 2) % 2], OPTIMIZERS[i % 3], 1 + (3 * i) % 8, DIMS[i % 4])
          for i in range(12)]


@pytest.mark.parametrize("granularity, variant, step_opt, state, opt, bits, dim", SHARED,
                         ids=[f"{g}-{v}-{so}-{st}" for g, v, so, st, *_ in SHARED])
def test_kernel_shared_alpt_steps_match_reference(granularity, variant, step_opt, state, opt, bits, dim):
    """ALPT with a step per field / per table: each step's gradient is the sum of its rows' gradients, added in
    a fixed order on both paths; three steps: duplicates, 40 distinct rows (more than a 32-row chunk share the
    table's or the last field's step: the sum takes two levels), duplicates."""
    rows = 40
    kw = dict(bits=bits, method="alpt", optimizer=opt, lr=LR[opt], init_std=0.02, seed=13, state_dtype=state,
              step_granularity=granularity, field_starts=[0, 3, 7], alpt_variant=variant, step_optimizer=step_opt,
              step_lr=1.0)
    ref = LowPrecisionEmbedding(rows, dim, backend="torch", **kw).to(DEVICE)
    ker = LowPrecisionEmbedding(rows, dim, backend="triton", **kw).to(DEVICE)
    assert ker.backend.name == "triton" and ref.backend.name == "torch"
    gen = torch.Generator().manual_seed(bits * 100 + dim)
    start = ref.step.clone()
    for lr_factor, ids in ((1.0, torch.randint(0, 9, (8, 3), generator=gen)),
                          (0.5, torch.randperm(rows, generator=gen).view(8, 5)),
                          (1.0, torch.randint(0, rows, (6, 7), generator=gen))):
        up, up2 = (torch.randn(*ids.shape, dim, generator=gen).to(DEVICE) for _ in range(2))
        ids = ids.to(DEVICE)
        outs, second = [], []
        for emb in (ref, ker):
            outs.append(_step(emb, ids, up, lr_factor, upstream2=up2, second=second))
        assert torch.equal(outs[0], outs[1]) and (variant == "one-pass" or torch.equal(second[0], second[1]))
        assert len(second) == (2 if variant == "two-pass" else 0)
        _compare(ref, ker)
    assert not torch.equal(ref.step, start)  # the steps learned: the comparison is not of untouched steps


BF16_CASES = [("lpt-sr", "adagrad", {}), ("lpt-dr", "adam", {"step_granularity": "table"}),
              ("alpt", "adam", {"alpt_variant": "one-pass"}), ("alpt", "sgd", {"alpt_variant": "one-pass",
                                                                              "step_optimizer": "sgd"}),
              ("alpt", "adagrad", {"alpt_variant": "two-pass"}),
              ("alpt", "adam", {"alpt_variant": "one-pass", "step_optimizer": "adagrad"})]


@pytest.mark.parametrize("method, opt, extra", BF16_CASES, ids=[f"{m}-{o}-{i}" for i, (m, o, _) in
                                                                enumerate(BF16_CASES)])
def test_kernel_bfloat16_state_matches_reference(method, opt, extra):
    """bfloat16 steps and optimizer state (the tables' default): every write stochastically rounded with the
    reference's draws (stream of the update, buffer tag, global element), so all state matches bit for bit."""
    kw = dict(bits=4, method=method, optimizer=opt, lr=LR[opt], init_std=0.02, seed=5, row_offset=7,
              state_dtype="bfloat16", **extra)
    ref = LowPrecisionEmbedding(30, 13, backend="torch", **kw).to(DEVICE)
    ker = LowPrecisionEmbedding(30, 13, backend="triton", **kw).to(DEVICE)
    assert ker.backend.name == "triton" and ker.step.dtype == torch.bfloat16
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        ids = torch.randint(0, 8, (16, 3), generator=gen).to(DEVICE)
        up = torch.randn(16, 3, 13, generator=gen).to(DEVICE)
        _step(ref, ids, up)
        _step(ker, ids, up)
        _compare(ref, ker)


def test_kernel_empty_batch():
    ref, ker = _pair(10, 16, 4, "lpt-sr", "adagrad", {})
    ids = torch.zeros(0, 3, dtype=torch.int64, device=DEVICE)
    assert ker(ids).shape == (0, 3, 16)
    TableOptimizer(ker).step()
    _compare(ref, ker)


def test_kernel_rejects_bad_ids_on_the_device():
    """Out-of-range ids raise from the device check (no host sync). On CUDA the assert ends the CUDA context,
    so it runs in a child process there."""
    if DEVICE == "cuda":
        code = ("import torch; from lptsim.ctr.embedding import LowPrecisionEmbedding as E; "
                "e = E(10, 4, bits=4, method='lpt-dr', backend='triton').cuda(); "
                "e(torch.tensor([[3, 10]], device='cuda')); torch.cuda.synchronize()")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
        assert proc.returncode != 0 and ("outside [0, 10)" in proc.stderr or "device-side assert" in proc.stderr)
        return
    for bad in (10, -1, 2**32 + 3):  # past the end, negative, and one that 32-bit keys would wrap to 3
        _, ker = _pair(10, 4, 4, "lpt-dr", "sgd", {})
        with pytest.raises(RuntimeError, match=r"outside \[0, 10\)"):
            ker(torch.tensor([[3, bad]], device=DEVICE))
    _, ker = _pair(10, 4, 4, "lpt-dr", "sgd", {})
    ker(torch.tensor([[3, 9, 0]], device=DEVICE))  # the check can pass


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("per_row", [True, False])
def test_kernel_gather_alone(bits, per_row):
    """Gathered rows equal codes (unpacked by lptsim.quant) times steps, for every bit width."""
    emb = LowPrecisionEmbedding(30, 11, bits=bits, method="lpt-sr", step_granularity="row" if per_row else "table",
                                init_std=0.05, backend="torch", **F32).to(DEVICE)
    if per_row:  # distinct steps, so a wrong row's step shows
        emb.step.copy_(torch.linspace(0.01, 0.03, 30))
    ids = torch.tensor([0, 29, 3, 3, 17], device=DEVICE)
    codes = unpack(emb.codes.data.cpu(), bits, (30, emb.codes.padded_dim)) if bits < 8 else emb.codes.data.cpu()
    want = codes[ids.cpu(), :11].float() * (emb.step.cpu()[ids.cpu()] if per_row else emb.step.cpu()).reshape(-1, 1)
    assert torch.equal(kernels.gather_dequant(kernel_view(emb), ids).cpu(), want)


def test_kernel_gather_with_a_step_index():
    """Steps per field: ``step_index`` maps rows (global row = local + row_offset) to their field's step."""
    emb = LowPrecisionEmbedding(12, 6, bits=4, method="lpt-dr", init_std=0.05, step_granularity="field",
                                field_starts=[0, 7, 11], row_offset=3, backend="torch", **F32).to(DEVICE)
    emb.step.copy_(torch.tensor([0.01, 0.02, 0.04]))
    ids = torch.tensor([0, 5, 11, 4, 8, 3], device=DEVICE)
    field = torch.tensor([0, 1, 2, 1, 2, 0])  # global rows 3, 8, 14, 7, 11, 6
    want = emb.codes.read(ids).float().cpu() * emb.step.cpu()[field].unsqueeze(1)
    assert torch.equal(kernels.gather_dequant(kernel_view(emb), ids).cpu(), want)


@pytest.mark.parametrize("bits", [2, 3, 8])
def test_kernel_sum_pooling(bits):
    emb = LowPrecisionEmbedding(50, 24, bits=bits, method="lpt-sr", init_std=0.05, backend="torch", **F32).to(DEVICE)
    gen = torch.Generator().manual_seed(bits)
    ids = torch.randint(0, 50, (40,), generator=gen).to(DEVICE)
    bag_starts = torch.tensor([0, 0, 3, 4, 17, 40], device=DEVICE)  # an empty bag, a bag of one, long bags
    got = kernels.gather_sum(kernel_view(emb), ids, bag_starts)
    rows = emb.dequantized_rows(ids)  # the reference backend's rows, added bag by bag in order
    want = torch.zeros(len(bag_starts) - 1, 24, device=DEVICE)
    for b in range(len(bag_starts) - 1):
        for k in range(int(bag_starts[b]), int(bag_starts[b + 1])):
            want[b] += rows[k]
    assert torch.equal(got, want)
    assert torch.equal(got[0], torch.zeros(24, device=DEVICE))


@pytest.mark.parametrize("bits", [4, 3])
def test_kernel_dr_ties_round_up(bits):
    """DR is floor(v + 1/2): values exactly half-way between codes go up (also for negative v)."""
    spec = QuantSpec(bits)
    emb = LowPrecisionEmbedding(8, 4, bits=bits, method="lpt-dr", optimizer="sgd", lr=1.0, init_std=1e-12,
                                clip=2.0 ** (bits - 4), step_granularity="table", backend="triton", **F32).to(DEVICE)
    step = float(emb.step)  # 1/8, a power of two: v = w / step is exact
    assert step == 0.125
    halves = torch.tensor([[0.5, -0.5, 1.5, -1.5], [2.5, -2.5, -3.5, 0.0]])
    ids = torch.tensor([[1], [6]], device=DEVICE)
    _step(emb, ids, (-halves * step).to(DEVICE).unsqueeze(1))  # w_new = 0 + halves * step
    want = torch.clamp(torch.floor(halves + 0.5), spec.qmin, spec.qmax)
    assert torch.equal(emb.codes.read(ids.reshape(-1)).float().cpu(), want)


def test_kernel_sr_rate_and_independence_within_a_row():
    """SR of v = k + 0.3 goes up with probability 0.3, drawn per element (not per row): statistics, 4 sigma."""
    rows, dim = 200, 8
    emb = LowPrecisionEmbedding(rows, dim, bits=8, method="lpt-sr", optimizer="sgd", lr=1.0, init_std=1e-12,
                                clip=16.0, step_granularity="table", seed=11, backend="triton", **F32).to(DEVICE)
    step = float(emb.step)  # 0.125
    ids = torch.arange(rows, device=DEVICE).view(-1, 1)
    up = torch.full((rows, 1, dim), -2.3 * step, device=DEVICE)  # w_new = 2.3 steps
    _step(emb, ids, up)
    codes = emb.codes.read(ids.reshape(-1)).cpu()
    assert set(codes.unique().tolist()) <= {2, 3}
    n, p = codes.numel(), 0.3
    assert abs(int((codes == 3).sum()) - n * p) < 4 * math.sqrt(n * p * (1 - p))
    mixed = float(((codes == 3).any(1) & (codes == 2).any(1)).float().mean())  # rows holding both codes
    assert mixed > 1 - p**dim - (1 - p) ** dim - 4 * math.sqrt(0.1 / rows)


@pytest.mark.parametrize("method, extra", [("lpt-sr", {}), ("alpt", {"alpt_variant": "one-pass"})])
def test_kernel_shard_equals_the_whole_table(method, extra):
    """A shard (row_offset r) updates exactly the rows r.. of the whole table: draws keyed by global row."""
    r, rows = 7, 9
    kw = dict(bits=4, method=method, optimizer="adagrad", init_std=0.02, seed=3, backend="triton", **F32, **extra)
    whole = LowPrecisionEmbedding(r + rows, 6, **kw).to(DEVICE)
    shard = LowPrecisionEmbedding(rows, 6, row_offset=r, **kw).to(DEVICE)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        ids = torch.randint(0, rows, (10, 2), generator=gen).to(DEVICE)
        up = torch.randn(10, 2, 6, generator=gen).to(DEVICE)
        _step(whole, ids + r, up)
        _step(shard, ids, up)
    assert torch.equal(whole.codes.data[r:], shard.codes.data)
    assert torch.equal(whole.step[r:], shard.step)


def test_kernel_seed_matches_step_seed():
    """The seed the kernel derives on the device is step_seed(seed, t), also for seeds past 2**63."""
    from lptsim.ctr.kernels.triton_kernels import _splitmix64  # noqa: F401 (exercised through the SR path)

    for seed in (0, 1, 2**64 - 1):
        ref, ker = _pair(6, 5, 5, "lpt-sr", "sgd", {}, seed=seed)
        ids = torch.tensor([[0, 5, 2]], device=DEVICE)
        up = torch.randn(1, 3, 5, generator=torch.Generator().manual_seed(1)).to(DEVICE)
        _step(ref, ids, up)
        _step(ker, ids, up)
        _compare(ref, ker)
    assert step_seed(2**64 - 1, 1) != step_seed(0, 1)


_HOST_READS = ("item", "tolist", "__int__", "__float__", "__bool__", "__index__")


def test_kernel_step_reads_nothing_on_the_host(monkeypatch):
    """Structural check of the CUDA path under the interpreter: a whole training step (forward, backward,
    update, counters, seed, bias corrections, id check) never reads a tensor value on the host."""
    for method, opt, extra in (("alpt", "adam", {"alpt_variant": "one-pass"}), ("lpt-sr", "adagrad", {}),
                               ("alpt", "sgd", {"alpt_variant": "two-pass"}),
                               ("alpt", "adam", {"alpt_variant": "one-pass", "step_optimizer": "adam",
                                                 "step_granularity": "field", "field_starts": [0, 5, 12]})):
        _, ker = _pair(20, 6, 4, method, opt, extra)
        ids = torch.randint(0, 20, (8, 3)).to(DEVICE)
        up = torch.randn(8, 3, 6).to(DEVICE)
        _step(ker, ids, up)  # the first step also compiles and caches (seed, row_offset) on the device

        def refuse(*args, **kwargs):
            raise AssertionError("host read of a tensor value during a step")

        with monkeypatch.context() as m:
            for name in _HOST_READS:
                m.setattr(torch.Tensor, name, refuse)
            for name in ("tensor", "as_tensor", "from_numpy"):  # on a GPU, a host-to-device copy that syncs
                m.setattr(torch, name, refuse)
            _step(ker, ids, up)
        assert int(ker.updates) == 2
    with monkeypatch.context() as m:  # the check can fail: the reference path reads counters on the host
        ref, _ = _pair(20, 6, 4, "lpt-sr", "adam", {})
        for name in _HOST_READS:
            m.setattr(torch.Tensor, name, refuse)
        with pytest.raises(AssertionError, match="host read"):
            _step(ref, ids, up)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("extra", [{"alpt_variant": "one-pass"},
                                   {"alpt_variant": "one-pass", "step_granularity": "field",
                                    "field_starts": [0, 300, 700]}], ids=["row", "field"])
def test_kernel_step_does_not_synchronize_on_cuda(extra):
    _, ker = _pair(1000, 16, 4, "alpt", "adam", extra)
    ids = torch.randint(0, 1000, (256, 39), device="cuda")
    up = torch.randn(256, 39, 16, device="cuda")
    _step(ker, ids, up)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _step(ker, ids, up)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_kernel_full_size_on_gpu():
    for bits in (2, 4, 8):
        ref, ker = _pair(200_000, 16, bits, "alpt", "adagrad", {"alpt_variant": "one-pass"})
        gen = torch.Generator(device="cuda").manual_seed(bits)
        for _ in range(3):
            ids = torch.randint(0, 200_000, (4096, 39), device="cuda", generator=gen)
            upstream = torch.randn(4096, 39, 16, device="cuda", generator=gen)
            _step(ref, ids, upstream)
            _step(ker, ids, upstream)
        _compare(ref, ker)


def test_kernel_old_triton_is_refused_with_a_clear_message(monkeypatch):
    """Triton older than MIN_TRITON: importing the kernels raises ImportError naming the versions, the backend
    refuses backend='triton' with that message, and 'auto' falls back to the reference."""
    import importlib

    import triton

    from lptsim.ctr.table.backends import BackendError

    assert kernels.triton_problem() is None  # the installed one (3.6 or later) passes
    monkeypatch.setattr(triton, "__version__", "3.5.1")
    assert "Triton >= 3.6" in kernels.triton_problem() and "3.5.1" in kernels.triton_problem()
    assert not kernels.available("cuda")
    with pytest.raises(ImportError, match=r"need Triton >= 3\.6.*this is Triton 3\.5\.1"):
        importlib.reload(importlib.import_module("lptsim.ctr.kernels.triton_kernels"))
    with pytest.raises(BackendError, match=r"Triton >= 3\.6"):
        LowPrecisionEmbedding(4, 3, bits=4, method="lpt-dr", backend="triton")(torch.tensor([1]))
    assert LowPrecisionEmbedding(4, 3, bits=4, method="lpt-dr", backend="auto").backend.name == "torch"


def test_kernel_packaging_asks_for_the_tested_triton():
    """pyproject's triton extras name MIN_TRITON as their lower bound (pip would otherwise install an untested one)."""
    import re

    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    bounds = re.findall(r'"triton>=(\d+)\.(\d+)"', text)
    assert bounds and all((int(a), int(b)) == kernels.MIN_TRITON for a, b in bounds), bounds
