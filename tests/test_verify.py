"""The verification machinery, the full `lptsim verify` (every check passes, every control fails, at four seeds),
`--power` on a fast subset, the CLI and the figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lptsim import cli
from lptsim.figs import figures_from_results
from lptsim.quant import QuantSpec, quantize
from lptsim.sim import methods
from lptsim.verify import GROUPS, Budget, run_all
from lptsim.verify.core import (
    AtLeast,
    AtMost,
    Control,
    Estimate,
    Exceeds,
    Relative,
    judge,
    mean_ci,
    slope_ci,
)
from lptsim.verify.faults import injected
from lptsim.verify.power import run_power
from lptsim.verify.report import CheckResult


def test_relative_criterion_rejects_a_prediction_off_by_two_either_way():
    est = Estimate(1.0, 0.97, 1.03)
    assert Relative(0.1).holds(est, 1.0)
    assert not Relative(0.1).holds(est, 2.0) and not Relative(0.1).holds(est, 0.5)
    assert not Relative(0.1).holds(Estimate(1.0, 0.85, 1.15), 1.0)  # a point estimate inside is not enough


def test_bound_criteria_are_refuted_only_by_significant_violation():
    assert AtMost().holds(Estimate(1.0, 0.9, 1.1), 1.0)  # an attained bound is not refuted
    assert not AtMost().holds(Estimate(1.3, 1.2, 1.4), 1.0)
    assert AtMost().slack(Estimate(0.5, 0.4, 0.6), 2.0) == pytest.approx(4.0)
    assert AtLeast().holds(Estimate(1.0, 0.9, 1.1), 1.0) and not AtLeast().holds(Estimate(0.7, 0.6, 0.8), 1.0)
    assert not Exceeds().holds(Estimate(1.2, 0.9, 1.5), 1.0)  # a claim needs the whole interval above


def test_a_check_whose_control_passes_is_not_discriminating_and_fails():
    good = judge("c", "s", "exact", Estimate(1.0, 0.99, 1.01), 1.0, Relative(0.1),
                 Control("other", Estimate(3.0, 2.9, 3.1), 1.0))
    assert good.passed and good.discriminating and good.verdict == "PASS"
    blind = judge("c", "s", "exact", Estimate(1.0, 0.99, 1.01), 1.0, Relative(0.1),
                  Control("other", Estimate(1.0, 0.98, 1.02), 1.0))
    assert blind.main_passed and not blind.discriminating and not blind.passed
    assert blind.verdict == "FAIL (not discriminating)"


def test_mean_interval_covers_at_its_level():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(1000):
        e = mean_ci(rng.normal(size=5), level=0.9)  # few replicates: a normal quantile would cover ~83%
        hits += e.lo <= 0 <= e.hi
    assert abs(hits - 900) <= 4 * np.sqrt(1000 * 0.9 * 0.1)  # Binomial(1000, 0.9)


def test_slope_interval_recovers_a_power_law():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    per_seed = x**1.5 * np.random.default_rng(0).lognormal(0, 0.05, size=(30, 4))
    est = slope_ci(x, per_seed)
    assert est.lo <= 1.5 <= est.hi and est.hi - est.lo < 0.2


def test_budget_seed_changes_every_draw_and_is_reproducible():
    a, b = Budget(seed=0), Budget(seed=1)
    assert a.seed_for("x") == Budget(seed=0).seed_for("x") != b.seed_for("x")
    assert a.seed_for("x") != a.seed_for("y")


def test_faults_reach_every_rounding_path():
    """A fault planted at lptsim.quant's core reaches quantize imported by name, the simulator's write-back (an SR
    run becomes the DR run bit for bit), ALPT's fused write-back, the 16-bit state cast and the CTR table's store
    path; nothing changes outside the block."""
    import torch

    from lptsim.ctr.embedding import LowPrecisionEmbedding
    from lptsim.quant.floats import stochastic_cast
    from lptsim.sim import problems, simulate

    x = np.full(20_000, 0.03)
    with injected("SR->DR"):
        assert np.all(methods.quantize(x, 0.1, QuantSpec(8), "stochastic", seed=1) == 0)
    assert methods.quantize(x, 0.1, QuantSpec(8), "stochastic", seed=1).mean() == pytest.approx(0.3, abs=0.02)
    with injected("U+0.05"):
        assert methods.quantize(x, 0.1, QuantSpec(8), "stochastic", seed=1).mean() == pytest.approx(0.35, abs=0.02)
    with injected("DR-ties-down"):
        assert quantize(np.array([0.5, 1.5, -0.5]), 1.0, QuantSpec(4), "nearest").tolist() == [0, 1, -1]
    assert quantize(np.array([0.5, 1.5, -0.5]), 1.0, QuantSpec(4), "nearest").tolist() == [1, 2, 0]

    prob = problems.quadratic(d=10, mu=1.0, L=1.0, noise=1.0, seed=0)
    kw = dict(step=0.05, lr=0.02, iters=200, seeds=3, seed=4, record_at=[200])
    dr = simulate(prob, "dr", **kw).final_weights
    with injected("SR->DR"):
        assert np.array_equal(simulate(prob, "sr", **kw).final_weights, dr)
        alpt_faulty = simulate(prob, "alpt", bits=4, **kw).final_weights
    assert not np.array_equal(simulate(prob, "sr", **kw).final_weights, dr)
    assert not np.array_equal(simulate(prob, "alpt", bits=4, **kw).final_weights, alpt_faulty)

    v = torch.tensor([1.0 + 2**-9, 1.0 + 3 * 2**-9] * 500)  # a quarter and three quarters of a bfloat16 spacing
    counters = np.arange(v.numel())
    with injected("SR->DR"):
        assert stochastic_cast(v, torch.bfloat16, 5, counters).float().tolist() == [1.0, 1.0 + 2**-7] * 500
    assert 0.1 < (stochastic_cast(v, torch.bfloat16, 5, counters).float()[::2] > 1).float().mean() < 0.4

    def committed(method: str) -> torch.Tensor:
        emb = LowPrecisionEmbedding(64, 8, bits=4, method=method, optimizer="sgd", lr=0.1, backend="torch",
                                    state_dtype="float32", seed=3)
        ids = torch.arange(64)
        (emb(ids) * torch.linspace(-1, 1, 64 * 8).reshape(64, 8)).sum().backward()
        emb.stage()
        emb.commit()
        return emb.codes.read(ids)

    with injected("SR->DR"):
        assert torch.equal(committed("lpt-sr"), committed("lpt-dr"))
    assert not torch.equal(committed("lpt-sr"), committed("lpt-dr"))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_verify_passes_every_check_with_every_control_failing(seed):
    """The default run and three other seeds give the same verdicts: all PASS, every control failing."""
    results = run_all(progress=False, seed=seed)
    assert len(results) >= 50
    bad = [(r.name, r.verdict, r.measured, r.ci) for r in results if not r.passed]
    assert not bad, bad
    assert all(r.control is not None and not r.control.passed for r in results)
    assert all(r.source and r.kind for r in results)


@pytest.mark.slow
def test_power_rejects_every_broken_variant_on_a_fast_subset():
    baseline, rows = run_power(Budget(), ["quant", "dr"], progress=False)
    assert all(r.passed for r in baseline)
    must = [r for r in rows if r.must_reject]
    assert len(must) >= 15 and {"SR->DR", "U+0.05"} <= {r.variant for r in must}
    missed = [r.variant for r in must if not r.rejected]
    assert not missed, missed


def test_cli_verify_writes_json_with_controls_and_exit_code(tmp_path, capsys):
    assert cli.main(["verify", "--group", "quant", "--out", str(tmp_path), "--quiet", "--seed", "5"]) == 0
    rows = json.loads((tmp_path / "verify.json").read_text())
    assert rows and all({"name", "source", "measured", "ci", "predicted", "criterion", "control", "verdict"} <= set(r)
                        for r in rows)
    assert all(r["control"]["passed"] is False and r["discriminating"] for r in rows)
    out = capsys.readouterr().out
    assert "passed, 0 failed" in out and "seed 5" in out


def test_cli_verify_fails_on_a_failing_check(monkeypatch):
    monkeypatch.setitem(GROUPS, "broken", lambda b: [CheckResult("always fails", 1, 0, "== 0", False)])
    assert cli.main(["verify", "--group", "broken", "--quiet"]) == 1


def test_cli_reports_bad_input_without_traceback(capsys):
    assert cli.main(["verify", "--group", "nope", "--quiet"]) == 2
    assert "unknown check group" in capsys.readouterr().err


def test_figures_are_drawn_from_the_results(tmp_path):
    from lptsim.verify import dr_checks

    results = dr_checks.dr_stall(Budget(seeds=4)) + dr_checks.dr_upper_bound(Budget(seeds=4))
    paths = figures_from_results(results, tmp_path)
    assert {p.name for p in paths} == {"dr_stall_distance.png", "dr_stall_distance.pdf", "dr_bounds.png",
                                       "dr_bounds.pdf"}
    import matplotlib.image

    img = matplotlib.image.imread(tmp_path / "dr_stall_distance.png")
    assert img.shape[0] > 300 and img.shape[1] > 600 and img[..., :3].std() > 0.05  # not a blank canvas


@pytest.mark.slow
def test_ctr_group_passes_with_its_controls_failing():
    """`lptsim verify --group ctr` on the synthetic default: every check passes and every control fails."""
    results = run_all(groups=["ctr"], progress=False)
    assert len(results) == 8
    assert all(r.passed and r.control is not None and not r.control.passed for r in results), [
        (r.name, r.measured, r.ci, r.control) for r in results if not r.passed]
