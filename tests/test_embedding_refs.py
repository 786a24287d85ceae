"""The tables' maths against independent references (no Triton: these hold without the kernels).

Row optimizers against torch.optim (SparseAdam and SGD on a sparse nn.Embedding) and a float64 row-wise
Adagrad written out here; ALPT's step update against the LSQ definition computed in numpy; LSQ and PACT
backward passes against their definitions, and PACT's clip gradient against finite differences.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lptsim.ctr.embedding import LowPrecisionEmbedding
from lptsim.ctr.table import TableOptimizer

ROWS, DIM = 12, 5
BATCHES = [torch.tensor(b) for b in ([0, 3, 3, 7], [3, 4, 11], [0, 7, 8, 3], [1, 2])]


def _grads(step: int, n: int) -> torch.Tensor:
    return torch.randn(n, DIM, generator=torch.Generator().manual_seed(100 + step))


def _run_fp(optimizer: str, lr: float) -> torch.Tensor:
    emb = LowPrecisionEmbedding(ROWS, DIM, method="fp", optimizer=optimizer, lr=lr, init_std=0.1)
    opt = TableOptimizer(emb)
    for k, ids in enumerate(BATCHES):
        (emb(ids) * _grads(k, len(ids))).sum().backward()
        opt.step()
    return emb.weight


@pytest.mark.parametrize(("optimizer", "torch_optimizer"), [("sgd", torch.optim.SGD), ("adam", torch.optim.SparseAdam)])
def test_row_optimizers_match_torch_optim(optimizer, torch_optimizer):
    """Sparse updates over several batches with repeated ids: only touched rows move; Adam's bias correction
    counts every step (SparseAdam's rule)."""
    lr = 0.05
    ours = _run_fp(optimizer, lr)
    ref = nn.Embedding(ROWS, DIM, sparse=True)
    ref.weight.data.copy_(LowPrecisionEmbedding(ROWS, DIM, method="fp", init_std=0.1).weight)
    opt = torch_optimizer(ref.parameters(), lr=lr, **({"eps": 1e-8} if optimizer == "adam" else {}))
    for k, ids in enumerate(BATCHES):
        opt.zero_grad()
        (ref(ids) * _grads(k, len(ids))).sum().backward()
        opt.step()
    torch.testing.assert_close(ours, ref.weight.detach(), rtol=1e-5, atol=1e-7)
    assert not torch.equal(ours, LowPrecisionEmbedding(ROWS, DIM, method="fp", init_std=0.1).weight)


def test_row_wise_adagrad_matches_its_definition():
    """acc_r += mean_j g_rj^2; w_r -= lr g_r / (sqrt(acc_r) + eps), in float64 (FBGEMM's row-wise Adagrad)."""
    lr, eps = 0.05, 1e-8
    ours = _run_fp("adagrad", lr)
    w = LowPrecisionEmbedding(ROWS, DIM, method="fp", init_std=0.1).weight.double().numpy().copy()
    acc = np.zeros(ROWS)
    for k, ids in enumerate(BATCHES):
        g = _grads(k, len(ids)).double().numpy()
        rows = sorted(set(ids.tolist()))
        for r in rows:
            gr = g[ids.numpy() == r].sum(axis=0)  # duplicates add up
            acc[r] += np.mean(gr**2)
            w[r] -= lr * gr / (math.sqrt(acc[r]) + eps)
    np.testing.assert_allclose(ours.double().numpy(), w, rtol=1e-5, atol=1e-7)


def _lsq_gradient(w_new: np.ndarray, step: np.ndarray, upstream: np.ndarray, qmin: int, qmax: int) -> np.ndarray:
    """LSQ's step gradient per row: sum_j upstream_j * (round(v)-v inside, the clip bound outside) / sqrt(N Qp)."""
    v = w_new / step[:, None]
    inner = np.floor(v + 0.5) - v
    per = np.where(v <= qmin, qmin, np.where(v >= qmax, qmax, inner))
    return (upstream * per).sum(axis=1) / math.sqrt(w_new.shape[1] * qmax)


def test_alpt_step_update_follows_lsq():
    """One-pass ALPT, SGD on the rows and on the steps: each touched step moves by -lr_step * LSQ gradient."""
    bits, row_lr, step_lr = 4, 0.5, 0.3
    emb = LowPrecisionEmbedding(ROWS, DIM, bits=bits, method="alpt", alpt_variant="one-pass", optimizer="sgd",
                                lr=row_lr, step_optimizer="sgd", step_lr=step_lr, init_std=0.02, clip=0.04,
                                state_dtype="float32")
    ids = torch.tensor([0, 2, 5, 9])
    w = emb.dequantized_rows(ids).double().numpy()
    step = emb.step[ids].double().numpy()
    g = torch.randn(len(ids), DIM, generator=torch.Generator().manual_seed(3)) * 0.05
    (emb(ids) * g).sum().backward()
    TableOptimizer(emb).step()
    w_new = w - row_lr * g.double().numpy()
    expected = step - step_lr * emb.step0 * _lsq_gradient(w_new, step, g.double().numpy(), -8, 7)
    np.testing.assert_allclose(emb.step[ids].double().numpy(), expected, rtol=1e-5)
    assert np.abs(expected - step).min() > 1e-6  # the steps did move


def test_lsq_backward_matches_its_definition():
    bits = 3
    emb = LowPrecisionEmbedding(ROWS, DIM, bits=bits, method="lsq", init_std=0.05, clip=0.04, qat_init="clip")
    ids = torch.arange(ROWS)
    up = torch.randn(ROWS, DIM, generator=torch.Generator().manual_seed(4))
    (emb(ids) * up).sum().backward()
    w = emb.weight.detach().double().numpy()
    step = (emb.step0 * emb.step_scale.detach()).double().numpy()
    expected_scale = emb.step0 * _lsq_gradient(w, step, up.double().numpy(), -4, 3) \
        * math.sqrt(DIM * 3) * emb.grad_scale
    np.testing.assert_allclose(emb.step_scale.grad.double().numpy(), expected_scale, rtol=1e-5, atol=1e-9)
    v = w / step[:, None]
    inside = (v > -4) & (v < 3)
    np.testing.assert_allclose(emb.weight.grad.numpy(), up.numpy() * inside)
    assert 0 < inside.mean() < 1  # both branches exercised


def test_pact_clip_gradient_matches_finite_differences():
    """Every weight beyond the clip: the output is +-alpha exactly, so d out / d alpha_scale = clip * sign(w)."""
    emb = LowPrecisionEmbedding(ROWS, DIM, bits=4, method="pact", init_std=1.0, clip=0.01, qat_init="clip")
    ids = torch.arange(ROWS)
    assert (emb.weight.abs() > 0.02).float().mean() > 0.95
    up = torch.randn(ROWS, DIM, generator=torch.Generator().manual_seed(5))
    (emb(ids) * up).sum().backward()
    h = 1e-3
    with torch.no_grad():
        emb.alpha_scale += h
        plus = (emb(ids) * up).sum().double()
        emb.alpha_scale -= 2 * h
        minus = (emb(ids) * up).sum().double()
        emb.alpha_scale += h
    outside = emb.weight.abs() >= emb.alpha_init * emb.alpha_scale
    fd = (plus - minus) / (2 * h)
    # weights inside the clip add quantization jumps; restrict the comparison to the outside part's share
    analytic = emb.alpha_scale.grad.double()
    assert torch.sign(analytic) == torch.sign(fd)
    expected = emb.clip * (up * torch.sign(emb.weight) * outside).sum().double()
    torch.testing.assert_close(analytic, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("n", "num"), [(5000, 3), (3000, 1), (20000, 7000), (1, 1)])
def test_ordered_segment_sum_cpu_form_equals_the_torch_form(n, num):
    """The numba pass (CPU) and the torch form (other devices, what the kernels mirror) add the same operands in
    the same order: identical bits, signed zeros included; both are the per-id sums (float64 reference)."""
    from lptsim.ctr.ordered_sums import ordered_segment_sum, ordered_segment_sum_torch

    gen = torch.Generator().manual_seed(n)
    values = torch.randn(n, 16, generator=gen) * torch.exp(3 * torch.randn(n, 1, generator=gen))
    values[torch.rand(n, 16, generator=gen) < 0.05] = -0.0
    index = torch.randint(0, num, (n,), generator=gen)
    fast, general = ordered_segment_sum(values, index, num), ordered_segment_sum_torch(values, index, num)
    assert torch.equal(fast.view(torch.int32), general.view(torch.int32))
    exact = torch.zeros(num, 16, dtype=torch.float64).index_add_(0, index, values.double())
    scale = torch.zeros(num, 16, dtype=torch.float64).index_add_(0, index, values.double().abs())
    assert torch.all((fast.double() - exact).abs() <= 1e-6 * scale + 1e-30)
