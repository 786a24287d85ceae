"""lptsim.theory.lazy against independent references: torch.optim.SparseAdam, Monte Carlo, and the real table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lptsim import theory

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks")


def _sparse_adam_moves(first: int, horizon: int, grads: np.ndarray | None = None) -> np.ndarray:
    """|update| of row 1 at each of its touches under torch.optim.SparseAdam (lr 1): row 0 is touched at every
    step from step 1, row 1 from step ``first`` on (constant gradient 1 unless ``grads`` gives its touches')."""
    w = torch.nn.Parameter(torch.zeros(2, 1, dtype=torch.float64))
    opt = torch.optim.SparseAdam([w], lr=1.0, eps=1e-30)
    out = []
    start = 1
    if first > 2:  # steps 1..first-1 touch row 0 only: run one, then set SparseAdam's global count (row 1's
        w.grad = torch.sparse_coo_tensor(torch.tensor([[0]]), torch.ones(1, 1, dtype=torch.float64), (2, 1))
        opt.step()  # moments stay zero, lazily, whatever that count is)
        opt.state[w]["step"] = first - 1
        start = first
    for t in range(start, horizon + 1):
        rows = [0] if t < first else [0, 1]
        vals = torch.ones(len(rows), 1, dtype=torch.float64)
        if t >= first and grads is not None:
            vals[1, 0] = float(grads[t - first])
        before = w.detach().clone()
        w.grad = torch.sparse_coo_tensor(torch.tensor([rows]), vals, (2, 1)).coalesce()
        opt.step()
        if t >= first:
            out.append(float((w.detach() - before)[1, 0].abs()))
    return np.array(out)


@pytest.mark.parametrize(("first", "peak"), [(80, 1.9), (1000, 5.2), (5000, 6.5)])
def test_lazy_adam_step_factor_is_sparse_adams_step(first: int, peak: float):
    """A row first touched at step 80 / 1,000 / 5,000, then at every step with a constant gradient, moves by up to
    1.9 / 5.2 / 6.5 x lr per step: step by step the factor A(k, t) is SparseAdam's update."""
    moves = _sparse_adam_moves(first, first + 39)
    k = np.arange(1, moves.size + 1)
    np.testing.assert_allclose(moves, theory.lazy_adam_step_factor(k, first + k - 1), rtol=1e-9)
    predicted = float(theory.lazy_adam_peak_factor(first, 1.0, first + 39)[0])
    assert predicted == pytest.approx(moves.max(), rel=1e-9)
    assert round(predicted, 1) == peak
    # Adam with per-row step counts (the planted alternative) predicts exactly lr: SparseAdam is not that
    assert not np.allclose(moves, theory.lazy_effective_step("adam-rowstep", 1.0, 1.0, first, first + k - 1),
                           rtol=0.1)


def test_first_touch_factor_holds_for_any_gradient_and_tends_to_3_16():
    rng = np.random.default_rng(0)
    for first in (1, 7, 80, 3000):
        g = rng.normal(size=3) * 10.0 ** rng.uniform(-3, 3)
        moves = _sparse_adam_moves(first, first + 2, g)
        assert moves[0] == pytest.approx(float(theory.lazy_adam_first_touch_factor(first)), rel=1e-9)
    assert float(theory.lazy_adam_first_touch_factor(10**6)) == pytest.approx(0.1 / np.sqrt(0.001), rel=1e-9)


def test_lazy_adam_step_bound_holds_and_is_reached_by_the_worst_gradients():
    """Random gradients never exceed the bound; the Cauchy-Schwarz extremal sequence g_j ~ (b1/b2)^(k-j)
    (latest touches largest) meets it at the last touch."""
    rng = np.random.default_rng(1)
    first, n = 2000, 30
    for _ in range(5):
        g = rng.standard_cauchy(n)
        moves = _sparse_adam_moves(first, first + n - 1, g)
        k = np.arange(1, n + 1)
        assert np.all(moves <= theory.lazy_adam_step_bound(k, first + k - 1) * (1 + 1e-9))
    b1, b2 = 0.9, 0.999
    worst = (b1 / b2) ** -np.arange(n, dtype=float)
    moves = _sparse_adam_moves(first, first + n - 1, worst)
    assert moves[-1] == pytest.approx(float(theory.lazy_adam_step_bound(n, first + n - 1)), rel=1e-9)


def test_sgd_dr_frozen_probability_against_monte_carlo():
    rng = np.random.default_rng(2)
    lr, delta, g_mean, g_sd = 0.1, 0.05, 0.05, 0.12
    for touches in (1, 5, 30):
        g = g_mean + g_sd * rng.normal(size=(40_000, touches))
        stayed = np.mean(np.all(np.abs(lr * g) < delta / 2, axis=1))
        p = float(theory.sgd_dr_frozen_probability(lr, delta, touches, g_mean, g_sd))
        assert abs(stayed - p) < 4 * np.sqrt(p * (1 - p) / 40_000) + 1e-12


def _table_moves(optimizer: str, lr: float, first: int, horizon: int, grad: torch.Tensor) -> torch.Tensor:
    """DR table (8 bits, float32 state): row 0 touched at every step, row 1 from ``first`` on, constant gradient
    ``grad`` on row 1's elements; returns whether each element of row 1 ever left its start."""
    from lptsim.ctr.embedding import LowPrecisionEmbedding
    from lptsim.ctr.table import TableOptimizer

    emb = LowPrecisionEmbedding(2, grad.numel(), bits=8, method="lpt-dr", optimizer=optimizer, lr=lr, clip=0.05,
                                step_granularity="table", backend="torch", init_rounding="nearest",
                                state_dtype="float32")
    opt = TableOptimizer(emb)
    ids = torch.arange(2)
    start = emb.codes.read(ids)[1].clone()
    moved = torch.zeros(grad.numel(), dtype=torch.bool)
    for t in range(1, horizon + 1):
        rows = ids if t >= first else ids[:1]
        out = emb(rows)
        weight = torch.ones_like(out)
        if t >= first:
            weight[1] = grad
        (out * weight).sum().backward()
        opt.step()
        moved |= emb.codes.read(ids)[1] != start
    return moved


def test_dr_freeze_threshold_on_the_real_table():
    """lazy Adam on the table: a row first touched at step 60 freezes at 0.9 x its predicted threshold and moves at
    1.1 x (constant gradient); row-wise Adagrad: an element moves iff lr |g_i|/rms_row(g) >= Delta/2."""
    delta, first, horizon = 0.05 / 128, 60, 90
    thr = float(theory.dr_freeze_threshold("adam", delta, first, 1.0, horizon)[0])
    g = torch.full((4,), 0.3)
    assert not _table_moves("adam", 0.9 * thr, first, horizon, g).any()
    assert _table_moves("adam", 1.1 * thr, first, horizon, g).all()
    assert thr < 0.9 * delta / 2  # per-row step counts (threshold Delta/2) would freeze the row at 1.1 x thr
    rel = np.array([0.2, 0.6, 1.0, 1.7])
    g = torch.tensor(rel / np.sqrt(np.mean(rel**2)), dtype=torch.float32)
    thresholds = np.array([theory.dr_freeze_threshold("adagrad", delta, 1, 1.0, horizon, rel=float(r))[0]
                           for r in g.numpy()])
    lr = float(np.sqrt(thresholds[1] * thresholds[2]))  # between the 2nd and 3rd elements' thresholds
    assert _table_moves("adagrad", lr, 1, 20, g).tolist() == [False, False, True, True]


def test_lazy_effective_step_per_optimizer_under_a_constant_gradient():
    """Adagrad's step decays with the row's own touches (1/sqrt(k), k = 1 + p (t - t0)), not with t; lazy Adam's
    is A(k, t); SGD's is lr |g|."""
    p, t0, t = 0.01, 100.0, np.array([100.0, 500.0, 10_100.0])
    k = 1 + np.floor(p * (t - t0))
    np.testing.assert_allclose(theory.lazy_effective_step("adagrad", 0.1, p, t0, t), 0.1 / np.sqrt(k))
    np.testing.assert_allclose(theory.lazy_effective_step("adam", 0.1, p, t0, t),
                               0.1 * theory.lazy_adam_step_factor(k, t))
    np.testing.assert_allclose(theory.lazy_effective_step("sgd", 0.1, p, t0, t, g_mean=2.0), 0.2)
    with pytest.raises(ValueError, match="optimizer"):
        theory.lazy_effective_step("rmsprop", 0.1, p, t0, t)
