"""The table's training contract through its public API: TableOptimizer's param groups (any torch scheduler drives
the tables), backends chosen once (and refused where they cannot serve), the named random streams (independent by
construction, shown by statistics with a planted shared stream as the control), the table config."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lptsim.ctr.contract import INIT_UPDATE, MAX_INDEX, Stream, counter_base, step_seed, table_seed
from lptsim.ctr.embedding import LowPrecisionEmbedding, TableFactory
from lptsim.ctr.table import BackendError, LowPrecisionTable, TableConfig, TableOptimizer, normal_rows
from lptsim.ctr.table import store as table_store
from lptsim.quant import uniforms

SIGMAS = 4.0


# -- TableOptimizer ---------------------------------------------------------------------------------------------
def test_step_lr_on_the_table_optimizer_changes_the_table_learning_rate():
    """torch's StepLR drives the rows' learning rate: SGD moves a row by lr * g, with lr 0.5, 0.05, 0.005."""
    emb = LowPrecisionEmbedding(10, 4, method="fp", optimizer="sgd", lr=0.5, init_std=0.1)
    opt = TableOptimizer(emb)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    ids = torch.tensor([1, 6])
    up = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
    moves, lrs = [], []
    for _ in range(3):
        before = emb.weight.clone()
        (emb(ids) * up).sum().backward()
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        moves.append((before - emb.weight)[ids])
    assert lrs == pytest.approx([0.5, 0.05, 0.005])
    for move, lr in zip(moves, (0.5, 0.05, 0.005), strict=True):
        torch.testing.assert_close(move, lr * up, rtol=1e-5, atol=1e-7)
    assert moves[2].abs().max() < moves[0].abs().max() / 50  # the scheduler acted on the update itself


def test_a_group_lr_reaches_the_low_precision_update():
    """The same ALPT update with the group's lr set to 0 leaves the codes alone (SGD, DR): the lr is the group's."""
    kw = dict(bits=8, method="lpt-dr", optimizer="sgd", lr=1.0, init_std=0.05, state_dtype="float32")
    moved, still = LowPrecisionEmbedding(20, 4, **kw), LowPrecisionEmbedding(20, 4, **kw)
    ids = torch.arange(20)
    for emb, lr in ((moved, 1.0), (still, 0.0)):
        start = emb.codes.data.clone()
        opt = TableOptimizer(emb, lr=lr)
        emb(ids).sum().backward()
        opt.step()
        assert torch.equal(emb.codes.data, start) == (lr == 0.0)


def test_table_optimizer_state_dict_round_trip():
    tables = torch.nn.ModuleList([LowPrecisionEmbedding(5, 2, method="alpt", optimizer="adam"),
                                  LowPrecisionEmbedding(7, 3, method="lpt-sr")])
    opt = TableOptimizer(tables)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 0.01]  # each table's own row lr
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    saved = opt.state_dict()
    fresh = TableOptimizer(tables)
    fresh.load_state_dict(saved)
    assert [g["lr"] for g in fresh.param_groups] == [5e-4, 0.005]
    assert [g["step_lr"] for g in fresh.param_groups] == [0.01 * 0.05 / 128, 0.01 * 0.05 / 128]


def test_a_model_without_tables_gets_an_optimizer_that_does_nothing():
    opt = TableOptimizer(torch.nn.Linear(2, 2))
    opt.step()
    assert opt.touched_rows() == [] and len(opt.param_groups) == 1


# -- backends ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, why", [({"method": "fp"}, "not a low-precision table"),
                                          ({"method": "lsq"}, "not a low-precision table"),
                                          ({"bits": 12}, "bits=12"), ({"state_dtype": "float16"}, "float16")])
def test_triton_backend_refuses_what_the_kernels_do_not_cover(options, why):
    """backend='triton' on a configuration the kernels do not implement is an error, never a silent fallback."""
    with pytest.raises(BackendError, match=rf"backend='triton' cannot serve this table: .*{why}"):
        LowPrecisionEmbedding(10, 4, **{"method": "lpt-sr", "bits": 4, "backend": "triton", **options})


def test_backend_is_chosen_once_per_placement(monkeypatch):
    pytest.importorskip("triton")
    emb = LowPrecisionEmbedding(10, 4, bits=4, method="lpt-sr")
    assert emb.backend.name == "torch"  # auto on the CPU: the reference
    assert emb.backend is emb.backend  # chosen once
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    triton = LowPrecisionEmbedding(10, 4, bits=4, method="lpt-sr", backend="triton")
    with pytest.raises(BackendError, match="needs a CUDA device or TRITON_INTERPRET=1"):
        triton(torch.tensor([1]))


# -- random streams ---------------------------------------------------------------------------------------------
def test_streams_own_disjoint_counter_ranges():
    bases = sorted(counter_base(s) for s in Stream)
    assert all(b - a >= MAX_INDEX for a, b in zip(bases, bases[1:], strict=False))
    assert bases[0] >= MAX_INDEX and bases[-1] + MAX_INDEX <= 2**64  # none at 0, all within the 64-bit counter
    assert len({s.value for s in Stream}) == len(Stream)


def _rounding_dependence(rows: int = 4000, dim: int = 16, seed: int = 5) -> dict[str, float]:
    """Correlations, over the table's elements, between the initial stochastic rounding's outcome (up - p, mean 0
    when the rounding draw is independent of everything else) and the initial values' own draws: the value
    stream's uniform at the element's own position (what an overlapping stream would reuse), and the element's
    two Box-Muller inputs."""
    std, bits = 0.01, 2
    table = LowPrecisionEmbedding(rows, dim, bits=bits, method="lpt-sr", init_std=std, seed=seed, clip=0.05)
    step = torch.tensor(table.step0, dtype=torch.float32)
    v = (normal_rows(seed, 0, rows, dim, std) / step).reshape(-1)
    f = torch.floor(v)
    up = (table.codes.read(torch.arange(rows)).reshape(-1).float() - f).double()
    inside = (f >= -(2 ** (bits - 1))) & (f + 1 <= 2 ** (bits - 1) - 1)  # no clipping: up is the SR outcome
    assert set(up[inside].tolist()) <= {0.0, 1.0}
    n = v.numel()
    u = uniforms(step_seed(seed, INIT_UPDATE), counter_base(Stream.INIT_VALUES), 2 * n)
    draws = {"value stream at the same position": u[:n], "first Box-Muller input": u[0::2],
             "second Box-Muller input": u[1::2]}
    resid = (up - (v - f).double()).numpy()[inside.numpy()]
    return {name: float(np.corrcoef(resid, d[inside.numpy()])[0, 1]) for name, d in draws.items()} | {
        "n": float(inside.sum())}


def test_initial_rounding_draws_are_independent_of_the_initial_values_draws(monkeypatch):
    """Zero correlation within 4 sigma (sigma = 1/sqrt(n)); the control plants the shared stream of lptsim 0.1.0
    (the rounding drawn from the values' counters) and must fail the same bound by far."""
    measured = _rounding_dependence()
    bound = SIGMAS / math.sqrt(measured.pop("n"))
    for name, r in measured.items():
        assert abs(r) < bound, (name, r, bound)
    real = table_store.counter_base
    monkeypatch.setattr(table_store, "counter_base",
                        lambda s: real(Stream.INIT_VALUES) if s == Stream.INIT_ROUNDING else real(s))
    planted = _rounding_dependence()
    planted.pop("n")
    assert planted["value stream at the same position"] < -10 * bound  # the rounding reuses the values' draws


def test_table_seeds_come_from_the_run_seed_and_the_name():
    factory = TableFactory(TableConfig(method="lpt-sr", bits=4, seed=3))
    a, b = factory(20, 4, "embedding"), factory(20, 4, "embedding")
    assert a.config.seed == b.config.seed == table_seed(3, "embedding") != table_seed(3, "linear")
    assert torch.equal(a.codes.data, b.codes.data)  # however many tables were built before
    assert table_seed(3, "embedding") != table_seed(4, "embedding")


# -- config -----------------------------------------------------------------------------------------------------
def test_table_config_is_validated_once_with_clear_messages():
    with pytest.raises(ValueError, match="embedding_options: unknown option 'optimiser'"):
        TableConfig.from_options({"optimiser": "adam"}, "embedding_options")
    with pytest.raises(ValueError, match="LowPrecisionEmbedding: step_lr must be a finite number >= 0"):
        LowPrecisionEmbedding(5, 2, step_lr=-1.0)
    cfg = TableConfig(method="alpt", alpt_variant="one-pass")
    assert cfg.quantized and cfg.learns_steps and not cfg.two_pass and cfg.write_rounding == "stochastic"
    assert TableConfig(method="lpt-dr").write_rounding == "nearest" and not TableConfig(method="fp").quantized
    with pytest.raises(ValueError, match="QAT embedding"):
        LowPrecisionTable(5, 2, TableConfig(method="lsq"))


def test_the_docstring_examples_run():
    import doctest

    import lptsim.ctr.embedding
    import lptsim.ctr.table

    for module in (lptsim.ctr.table, lptsim.ctr.embedding):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
