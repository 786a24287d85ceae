"""Runs and checkpoints written by lptsim 0.1.0 (tests/data/ctr_*_0.1.0, see their README) still load: the tables'
state is read into this release's layout, evaluation gives the recorded metrics, and training resumes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from lptsim.ctr import checkpoint
from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.data.synthetic import SyntheticSpec, synthetic_prepared
from lptsim.ctr.inference import load_run
from lptsim.ctr.table.state import migrate_table_state
from lptsim.ctr.train import RunWarning, TrainConfig, evaluate, make_model, train

FIXTURES = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> PreparedData:
    """The data the fixtures were trained on: `ctr train --synthetic --rows 2000` (data seed 0)."""
    prepared, _ = synthetic_prepared(tmp_path_factory.mktemp("syn"), SyntheticSpec(rows=2000, seed=0))
    return PreparedData.load(prepared)


def _copy(name: str, tmp_path: Path) -> Path:
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)
    return run


def test_old_state_keys_are_renamed():
    state = {"t.row_optimizer.exp_avg": 1, "t.step_m": 2, "t.step_v": 3, "t.step": 4, "t.codes.data": 5,
             "u.row_optimizer.sum_sq": 6, "u.step_sum_sq": 7, "mlp.0.weight": 8}
    assert sorted(migrate_table_state(state, "t.")) == ["t.row_optimizer.exp_avg", "t.step_m", "t.step_v"]
    assert state == {"t.row_state.exp_avg": 1, "t.step_state.m": 2, "t.step_state.v": 3, "t.step": 4,
                     "t.codes.data": 5, "u.row_optimizer.sum_sq": 6, "u.step_sum_sq": 7, "mlp.0.weight": 8}


def test_an_old_run_evaluates_to_its_recorded_metrics(data, tmp_path):
    """The best weights of a 0.1.0 run (FM, ALPT 4 bits, Adam rows, bfloat16 state) give its recorded test
    metrics exactly, and every table tensor is the one the old file holds."""
    run = _copy("ctr_run_0.1.0", tmp_path)
    recorded = json.loads((run / "metrics.json").read_text())
    model, cfg, _ = load_run(run)
    test = evaluate(model, data, "test", cfg.batch_size * 4, "cpu")
    assert test["auc"] == recorded["test_auc"] and test["logloss"] == recorded["test_logloss"]
    old = checkpoint.load(run / "best.pt")["model"]
    new = model.state_dict()
    assert new["embedding.row_state.exp_avg_sq"].abs().sum() > 0  # trained state, not a fresh table's zeros
    for key, value in old.items():
        renamed = key.replace("row_optimizer.", "row_state.").replace("step_m", "step_state.m").replace(
            "step_v", "step_state.v")
        assert torch.equal(new[renamed], value), key


def test_an_old_run_resumes_with_a_warning(data, tmp_path):
    run = _copy("ctr_run_0.1.0", tmp_path)
    config = json.loads((run / "run.json").read_text())["config"]
    cfg = TrainConfig(**{**config, "epochs": 2})
    with pytest.warns(RunWarning, match="written by lptsim 0.1.0"):
        metrics = train(data, cfg, run, resume=True, progress=False)
    assert metrics["epochs_run"] == 2
    log = json.loads((run / "log.json").read_text())
    assert [row["epoch"] for row in log] == [1, 2]
    saved = checkpoint.load(run / "checkpoint.pt")
    assert saved["lptsim_version"] and saved["table_format"] == 2 and "table_optimizer" in saved


def test_an_old_distributed_checkpoint_loads_its_shards(data, tmp_path):
    """A 0.1.0 sharded checkpoint (1 rank): the shard's tables are migrated as they are resharded."""
    from lptsim.ctr.parallel import Distributed

    run = _copy("ctr_dist_0.1.0", tmp_path)
    config = json.loads((run / "run.json").read_text())["config"]
    recorded = json.loads((run / "metrics.json").read_text())
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        ctx = Distributed()
        model = make_model(TrainConfig(**config), data, ctx)
        ctx.load(run, "checkpoint", model, "cpu")
        test = evaluate(model, data, "test", 1024, "cpu", ctx)
    finally:
        dist.destroy_process_group()
    assert test["auc"] == recorded["test_auc"] and test["logloss"] == recorded["test_logloss"]
    pointer = json.loads((run / "checkpoint.json").read_text())
    shard = checkpoint.load(run / pointer["folder"] / "shard-0-of-1.pt")["embedding"]["state"]
    assert torch.equal(model.embedding.local.row_state.exp_avg, shard["row_optimizer.exp_avg"])
    assert torch.equal(model.embedding.local.step_state.v, shard["step_v"])


def test_pyproject_builds_without_setuptools_warnings():
    """setuptools reads pyproject.toml without a warning (an SPDX string as project.license, not the deprecated
    table), so installs print none."""
    import warnings
    from pathlib import Path

    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    root = Path(__file__).resolve().parents[1]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), root / "pyproject.toml")  # what a build does with it
    assert [str(w.message).splitlines()[0] for w in seen] == []
    assert dist.metadata.license_expression == "MIT"
