"""The sparse-embedding simulator (lptsim.sim.sparse) against independent references: torch.optim for the row
optimizers (SparseAdam for lazy Adam), torch autograd for the coupled model's gradient, lptsim.quant's vectorised
rounding and LSQ gradient for ALPT, and the binomial law for the batch draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lptsim.quant import QuantSpec, lsq_step_grad, quantize
from lptsim.sim import sparse as sp

N, D, B, T = 12, 3, 5, 30


@pytest.fixture(scope="module")
def ids() -> np.ndarray:
    p = sp.zipf_frequencies(N, 1.2)
    return np.random.default_rng(0).choice(N, size=(T, B), p=p)


def _quad(d: int = D) -> sp.SparseProblem:
    return sp.sparse_quadratic(N, d, sp.zipf_frequencies(N, 1.2), mu=0.7, sigma=0.0, seed=3)


def _torch_run(prob: sp.SparseProblem, ids: np.ndarray, make_opt, lazy_per_row: bool = False) -> np.ndarray:
    """The same quadratic losses summed over each batch's lookups, stepped by a torch.optim optimizer."""
    w_star = torch.tensor(prob.w_star)
    emb = torch.nn.Embedding(prob.n, prob.d, sparse=True, dtype=torch.float64)
    with torch.no_grad():
        emb.weight.zero_()
    if lazy_per_row:  # one Adam per row, stepped only when the row is touched: per-row step counts
        rows = [torch.nn.Parameter(torch.zeros(prob.d, dtype=torch.float64)) for _ in range(prob.n)]
        opts = [make_opt([r]) for r in rows]
        for batch in ids:
            for r in rows:
                r.grad = None
            loss = sum(prob.mu / 2 * torch.sum((rows[i] - w_star[i]) ** 2) for i in batch)
            loss.backward()
            for i in np.unique(batch):
                opts[i].step()
        return torch.stack([r.detach() for r in rows]).numpy()
    opt = make_opt(emb.parameters())
    for batch in ids:
        opt.zero_grad()
        idx = torch.as_tensor(batch)
        loss = (prob.mu / 2 * (emb(idx) - w_star[idx]) ** 2).sum()
        loss.backward()
        if not emb.weight.grad.is_sparse:
            raise AssertionError
        opt.step()
    return emb.weight.detach().numpy()


def _ours(prob: sp.SparseProblem, ids: np.ndarray, optimizer: str, lr: float, eps: float = 1e-8) -> np.ndarray:
    return sp.simulate_sparse(prob, "fp", lr=lr, optimizer=optimizer, iters=ids.shape[0], batch=ids.shape[1],
                              seeds=2, ids=ids, eps=eps).weights


def test_lazy_adam_equals_torch_sparse_adam(ids):
    prob = _quad()
    # SparseAdam adds eps before the bias correction, the table after: with eps negligible both are the same rule
    ours = _ours(prob, ids, "adam", 0.05, eps=1e-200)
    ref = _torch_run(prob, ids, lambda ps: torch.optim.SparseAdam(list(ps), lr=0.05, eps=1e-200))
    np.testing.assert_allclose(ours[0], ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ours[0], ours[1])  # no noise: every seed the same
    # and it is not the per-row-count variant (the global count makes late rows jump: the two must differ)
    assert np.max(np.abs(_ours(prob, ids, "adam_rowstep", 0.05, eps=1e-200)[0] - ref)) > 1e-3


def test_adam_rowstep_equals_one_torch_adam_per_row(ids):
    prob = _quad()
    ref = _torch_run(prob, ids, lambda ps: torch.optim.Adam(ps, lr=0.05), lazy_per_row=True)
    np.testing.assert_allclose(_ours(prob, ids, "adam_rowstep", 0.05)[0], ref, rtol=1e-10, atol=1e-12)


def test_adagrad_on_one_column_equals_torch_adagrad(ids):
    prob = _quad(d=1)
    ref = _torch_run(prob, ids, lambda ps: torch.optim.Adagrad(ps, lr=0.3, eps=1e-8))
    np.testing.assert_allclose(_ours(prob, ids, "adagrad", 0.3)[0], ref, rtol=1e-10, atol=1e-12)


def test_rowwise_adagrad_accumulates_the_mean_square_of_the_summed_row_gradient(ids):
    prob = _quad()
    w, acc = np.zeros((N, D)), np.zeros(N)
    for batch in ids:  # a plain loop: segment sum, then the row-wise rule (FBGEMM's, the CTR table's)
        g = np.zeros((N, D))
        np.add.at(g, batch, prob.mu * (w[batch] - prob.w_star[batch]))
        for r in np.unique(batch):
            acc[r] += np.mean(g[r] ** 2)
            w[r] -= 0.3 * g[r] / (np.sqrt(acc[r]) + 1e-8)
    np.testing.assert_allclose(_ours(prob, ids, "adagrad", 0.3)[0], w, rtol=1e-10, atol=1e-12)


def test_sgd_equals_torch_sgd(ids):
    prob = _quad()
    ref = _torch_run(prob, ids, lambda ps: torch.optim.SGD(ps, lr=0.2))
    np.testing.assert_allclose(_ours(prob, ids, "sgd", 0.2)[0], ref, rtol=1e-12, atol=1e-14)


def test_lookup_counts_follow_the_binomial_law():
    """Each step touches row i with probability 1 - (1 - p_i)^B (B alias draws from p): 4-sigma per row."""
    n, batch, iters, seeds = 50, 20, 2000, 2
    p = sp.zipf_frequencies(n, 1.0)
    prob = sp.sparse_quadratic(n, 1, p, sigma=0.0)
    tr = sp.simulate_sparse(prob, "fp", lr=0.1, iters=iters, batch=batch, seeds=seeds)
    q = 1 - (1 - p) ** batch
    trials = iters * seeds
    z = (tr.touches.sum(0) - trials * q) / np.sqrt(trials * q * (1 - q))
    assert np.max(np.abs(z)) < 4.5, np.max(np.abs(z))
    assert not np.array_equal(tr.touches[0], tr.touches[1])  # seeds draw their own batches


def test_summed_noise_of_k_lookups_has_variance_k_sigma2():
    """From w*, one SGD step moves a row touched k times by lr sigma sqrt(k) xi."""
    prob = sp.sparse_quadratic(3, 400, np.array([0.5, 0.3, 0.2]), sigma=2.0, seed=1)
    ids = np.array([[0, 0, 0, 0, 1]])
    tr = sp.simulate_sparse(prob, "fp", lr=0.1, iters=1, batch=5, seeds=64, ids=ids, w0=prob.w_star)
    moves = (tr.weights - prob.w_star)[:, :2].reshape(-1, 2, 400)
    var = moves.var(axis=(0, 2)) / (0.1 * 2.0) ** 2
    size = moves.shape[0] * 400
    np.testing.assert_allclose(var, [4.0, 1.0], rtol=4 * np.sqrt(2 / size))
    assert np.all(tr.weights[:, 2] == prob.w_star[2])  # untouched: unchanged


def test_fm_gradient_matches_torch_autograd():
    prob = sp.sparse_fm((4, 5, 3), 3, fm=0.7, seed=2)
    rng = np.random.default_rng(1)
    vals = rng.normal(size=(12, 3))
    slots = np.array([[0, 4, 9], [1, 4, 11], [0, 5, 9]])
    labels = np.array([1.0, 0.0, 1.0])
    out = np.zeros((12, 3))
    sp._gradients(2, np.arange(12), np.ones(12, dtype=np.int64), 12, vals, prob.w_star, 1.0, 0.0, prob.a, prob.fm,
                  np.zeros((12, 3)), labels, slots, 3, 3, out)
    v = torch.tensor(vals, requires_grad=True)
    a = torch.tensor(prob.a)
    loss = 0
    for b in range(3):
        rows = v[slots[b]]
        z = (rows @ a).sum() + prob.fm * sum(rows[i] @ rows[j] for i in range(3) for j in range(i + 1, 3))
        loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(z, torch.tensor(labels[b]))
    loss.backward()
    np.testing.assert_allclose(out, v.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_sr_write_back_is_unbiased_and_on_the_grid():
    prob = sp.sparse_quadratic(2, 500, np.array([0.5, 0.5]), mu=1.0, sigma=0.0, w_star=np.full((2, 500), 0.013))
    ids = np.array([[0, 1]])
    tr = sp.simulate_sparse(prob, "sr", step=0.1, lr=1.0, iters=1, batch=2, seeds=16, ids=ids)
    codes = tr.weights / 0.1
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-9)
    # from 0, lr 1, mu 1: the update lands on w* = 0.013 = 0.13 steps: SR's mean 0.013, sd 0.1 sqrt(.13 .87)
    sd = 0.1 * np.sqrt(0.13 * 0.87) / np.sqrt(tr.weights.size)
    assert abs(tr.weights.mean() - 0.013) < 4 * sd
    dr = sp.simulate_sparse(prob, "dr", step=0.1, lr=1.0, iters=1, batch=2, seeds=2, ids=ids)
    assert np.all(dr.weights == 0) and np.all(dr.frozen())


def test_alpt_table_step_follows_the_lsq_gradient_of_its_touched_rows():
    """One ALPT step with one step per table, against lptsim.quant's vectorised rounding and LSQ gradient."""
    prob = sp.sparse_quadratic(6, 4, sp.zipf_frequencies(6, 1.0), mu=1.0, sigma=0.0, scale=0.3, seed=5)
    ids = np.array([[0, 0, 2, 5]])
    spec, step, lr, step_lr = QuantSpec(4), 0.05, 0.3, 0.01
    tr = sp.simulate_sparse(prob, "alpt", step=step, lr=lr, iters=1, batch=4, seeds=1, ids=ids, bits=4,
                            step_lr=step_lr, step_granularity="table")
    rows, k = np.array([0, 2, 5]), np.array([2, 1, 1])[:, None]
    w = np.zeros((3, 4))
    half = w - lr * k * (w - prob.w_star[rows])
    near = step * quantize(half, step, spec, "nearest")
    g_hat = k * (near - prob.w_star[rows])
    grad = np.sum(g_hat * lsq_step_grad(half, step, spec)) / np.sqrt(4 * spec.qmax)
    assert tr.steps[0, 0] == pytest.approx(step - step_lr * grad, rel=1e-12)
    assert grad != 0
    codes = tr.weights[0, rows] / tr.steps[0, 0]
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-9)


def test_bad_parameters_are_refused():
    p = sp.zipf_frequencies(5, 1.0)
    with pytest.raises(ValueError, match="freqs must sum to 1"):
        sp.sparse_quadratic(5, 2, p * 2)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        sp.simulate_sparse(sp.sparse_quadratic(5, 2, p), "sr", step=0.1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="needs bits"):
        sp.simulate_sparse(sp.sparse_quadratic(5, 2, p), "alpt", step=0.1)
    with pytest.raises(ValueError, match="counts must be"):
        sp.measured_frequencies(np.array([0, 0]))
    with pytest.raises(ValueError, match="diverged"):  # 8 lookups of one row a step: e <- (1 - 8 lr mu) e = -7 e
        sp.simulate_sparse(sp.sparse_quadratic(1, 2, np.ones(1)), "fp", lr=1.0, iters=500, batch=8)
    with pytest.raises(ValueError, match="ids must be"):
        sp.simulate_sparse(sp.sparse_quadratic(5, 2, p), "fp", iters=2, batch=3, ids=np.zeros((2, 2)))


def test_noise_and_sr_draws_sit_at_their_documented_counters():
    """The counter layout of lptsim.sim.sparse_kernel's docstring: from w*, one SGD step (lr, one lookup) moves
    element j of row r by -lr sigma xi, xi = normal j // nq of noise counter (r nq + j % nq) (nq = ceil(d / 4));
    SR from 0 onto w* (lr 1, mu 1) rounds element j up iff lptsim.quant's uniform at ((t - 1) n + r) d + j is
    below the fractional position."""
    from lptsim.ctr.contract import step_seed
    from lptsim.quant.philox import uniforms_at
    from lptsim.sim.noise import normals_at

    n, d, lr, sigma, seed = 4, 10, 0.1, 2.0, 7
    nq = (d + 3) // 4
    prob = sp.sparse_quadratic(n, d, np.full(n, 1 / n), sigma=sigma, seed=1)
    ids = np.array([[1, 3]])
    tr = sp.simulate_sparse(prob, "fp", lr=lr, iters=1, batch=2, seeds=2, ids=ids, w0=prob.w_star, seed=seed)
    for s in range(2):
        key = step_seed(seed, 1 + s)
        for r in (1, 3):
            z = normals_at(key, (2 << 56) + r * nq + np.arange(nq))  # (nq, 4)
            xi = np.array([z[j % nq, j // nq] for j in range(d)])
            np.testing.assert_allclose(tr.weights[s, r], prob.w_star[r] - lr * sigma * xi, rtol=0, atol=1e-14)
    w_star = np.full((n, d), 0.013)
    sr = sp.simulate_sparse(sp.sparse_quadratic(n, d, np.full(n, 1 / n), sigma=0.0, w_star=w_star), "sr", step=0.1,
                            lr=1.0, iters=1, batch=2, seeds=2, ids=ids, seed=seed)
    for s in range(2):
        for r in (1, 3):
            u = uniforms_at(step_seed(seed, 1 + s), (4 << 56) + r * d + np.arange(d))
            np.testing.assert_array_equal(sr.weights[s, r] / 0.1 > 0.5, u < 0.013 / 0.1)
