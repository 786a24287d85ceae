"""The Triton kernels against the torch/numba reference path of LowPrecisionEmbedding.

Run with ``-k kernel``. Without CUDA they run under TRITON_INTERPRET=1 (see conftest.py) at
small sizes; with CUDA, ``test_kernel_full_size_on_gpu`` also runs at full size.
"""

from __future__ import annotations

import itertools

import pytest
import torch

pytest.importorskip("triton")

from lptsim.ctr import kernels  # noqa: E402
from lptsim.ctr.embedding import LowPrecisionEmbedding  # noqa: E402

CONFIGS = [  # (method, row optimizer, extra options)
    ("lpt-sr", "adagrad", {}),
    ("lpt-dr", "sgd", {}),
    ("alpt", "adagrad", {"alpt_variant": "one-pass"}),
    ("alpt", "sgd", {"alpt_variant": "one-pass", "step_optimizer": "sgd"}),
    ("lpt-sr", "adam", {}),
    ("alpt", "adam", {"alpt_variant": "one-pass"}),
]
CASES = [(bits, dim, CONFIGS[i % len(CONFIGS)]) for i, (bits, dim) in
         enumerate(itertools.product((2, 4, 8), (4, 16, 40, 128)))]


def _pair(rows, dim, bits, method, opt, extra, device="cpu"):
    kw = dict(bits=bits, method=method, optimizer=opt, lr={"sgd": 0.5, "adagrad": 0.05, "adam": 0.01}[opt],
              init_std=0.02, seed=5,
              **extra)
    ref = LowPrecisionEmbedding(rows, dim, backend="torch", **kw).to(device)
    ker = LowPrecisionEmbedding(rows, dim, backend="triton", **kw).to(device)
    return ref, ker


def _step(emb, ids, upstream):
    out = emb(ids)
    (out * upstream).sum().backward()
    emb.apply_update()
    return out.detach()


def _compare(ref, ker):
    assert torch.equal(ref.codes.data, ker.codes.data), "codes differ"
    torch.testing.assert_close(ker.step, ref.step, rtol=2e-6, atol=0)
    if ref.row_optimizer.name == "adagrad":
        torch.testing.assert_close(ker.row_optimizer.sum_sq, ref.row_optimizer.sum_sq, rtol=2e-6, atol=1e-12)
    if ref.row_optimizer.name == "adam":
        assert int(ker.row_optimizer.steps) == int(ref.row_optimizer.steps)
        for name in ("exp_avg", "exp_avg_sq"):  # moments can cancel: compare on the tensor's own scale
            want = getattr(ref.row_optimizer, name)
            torch.testing.assert_close(getattr(ker.row_optimizer, name), want, rtol=2e-6,
                                       atol=2e-6 * float(want.abs().max()))


@pytest.mark.parametrize("bits, dim, config", CASES, ids=[f"b{b}-d{d}-{c[0]}-{c[1]}" for b, d, c in CASES])
@pytest.mark.parametrize("batch", ["duplicates", "unique"])
def test_kernel_matches_reference(bits, dim, config, batch):
    method, opt, extra = config
    rows = 40
    ref, ker = _pair(rows, dim, bits, method, opt, extra)
    assert ker.uses_kernels() and not ref.uses_kernels()
    gen = torch.Generator().manual_seed(bits * 1000 + dim)
    for _ in range(3):
        if batch == "duplicates":
            ids = torch.randint(0, 6, (16, 3), generator=gen)
        else:
            ids = torch.randperm(rows, generator=gen)[:24].view(8, 3)
        upstream = torch.randn(*ids.shape, dim, generator=gen)
        out_ref, out_ker = _step(ref, ids, upstream), _step(ker, ids, upstream)
        # Same codes; steps may differ by float32 rounding (the row sums reduce in another order).
        torch.testing.assert_close(out_ker, out_ref, rtol=2e-6, atol=0)
        _compare(ref, ker)


def test_kernel_empty_batch():
    ref, ker = _pair(10, 16, 4, "lpt-sr", "adagrad", {})
    ids = torch.zeros(0, 3, dtype=torch.int64)
    assert ker(ids).shape == (0, 3, 16)
    ker.apply_update()
    _compare(ref, ker)


def test_kernel_gather_alone():
    emb = LowPrecisionEmbedding(30, 12, bits=2, method="alpt", alpt_variant="one-pass", init_std=0.05, backend="torch")
    ids = torch.tensor([0, 29, 3, 3, 17])
    torch.testing.assert_close(kernels.gather_dequant(emb, ids), emb.dequantized_rows(ids), rtol=0, atol=0)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_kernel_sum_pooling(bits):
    emb = LowPrecisionEmbedding(50, 24, bits=bits, method="lpt-sr", init_std=0.05, backend="torch")
    gen = torch.Generator().manual_seed(bits)
    ids = torch.randint(0, 50, (40,), generator=gen)
    bag_starts = torch.tensor([0, 0, 3, 4, 17, 40])  # an empty bag, a bag of one, long bags
    got = kernels.gather_sum(emb, ids, bag_starts)
    # Same order of additions as the reference loop: equal to float32 rounding (exactly, here).
    torch.testing.assert_close(got, kernels.gather_sum_reference(emb, ids, bag_starts), rtol=1e-6, atol=1e-7)
    assert torch.equal(got[0], torch.zeros(24))


def test_kernel_sr_draws_match_the_quant_core_statistics():
    """One row updated many times by a fixed tiny gradient: SR moves codes at the rate u/step."""
    ref, ker = _pair(1, 64, 8, "lpt-sr", "sgd", {})
    ids = torch.zeros(1, 1, dtype=torch.int64)
    for _ in range(5):
        up = torch.full((1, 1, 64), 1e-3)
        _step(ref, ids, up)
        _step(ker, ids, up)
    _compare(ref, ker)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_kernel_full_size_on_gpu():
    for bits in (2, 4, 8):
        ref, ker = _pair(200_000, 16, bits, "alpt", "adagrad", {"alpt_variant": "one-pass"}, device="cuda")
        gen = torch.Generator(device="cuda").manual_seed(bits)
        for _ in range(3):
            ids = torch.randint(0, 200_000, (4096, 39), device="cuda", generator=gen)
            upstream = torch.randn(4096, 39, 16, device="cuda", generator=gen)
            _step(ref, ids, upstream)
            _step(ker, ids, upstream)
        _compare(ref, ker)
