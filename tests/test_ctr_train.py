"""Tests of the trainer: metrics, kill-and-resume, non-finite loss, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lptsim import cli
from lptsim.ctr import checkpoint
from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.data.synthetic import SyntheticSpec, synthetic_prepared
from lptsim.ctr.train import TrainConfig, TrainingError, train


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    prepared, _ = synthetic_prepared(tmp_path_factory.mktemp("syn"), SyntheticSpec(rows=30_000, seed=1))
    return prepared


TRAIN_ARGS = ["--model", "dnn", "--hidden", "32", "--batch-size", "64", "--epochs", "4", "--patience", "4",
              "--method", "alpt", "--bits", "4", "--quiet"]


def test_training_improves_over_chance(small_data, tmp_path):
    metrics = train(PreparedData.load(small_data), TrainConfig(model="fm", epochs=2, batch_size=256), tmp_path,
                    progress=False)
    assert metrics["test_auc"] > 0.6 and 0 < metrics["test_logloss"] < 0.69
    log = json.loads((tmp_path / "log.json").read_text())
    assert [row["epoch"] for row in log] == [1, 2]
    assert (tmp_path / "log.csv").read_text().startswith("epoch,train_logloss,val_auc")


def test_non_finite_loss_stops_and_keeps_the_checkpoint(small_data, tmp_path, monkeypatch):
    data = PreparedData.load(small_data)
    cfg = TrainConfig(model="lr", epochs=3, batch_size=1024, method="lpt-sr", bits=8)
    train(data, TrainConfig(**{**cfg.__dict__, "epochs": 1}), tmp_path, progress=False)
    saved = (tmp_path / "checkpoint.pt").read_bytes()
    import lptsim.ctr.train as train_module

    real = train_module.batch_loss
    monkeypatch.setattr(train_module, "batch_loss", lambda *a: real(*a) * float("nan"))
    with pytest.raises(TrainingError, match="non-finite loss"):
        train(data, cfg, tmp_path, resume=True, progress=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved
    checkpoint.load(tmp_path / "checkpoint.pt")  # still loadable (checksum verified)


def test_resume_with_other_options_is_refused(small_data, tmp_path):
    data = PreparedData.load(small_data)
    train(data, TrainConfig(model="lr", epochs=1, batch_size=2048), tmp_path, progress=False)
    with pytest.raises(ValueError, match="different configuration"):
        train(data, TrainConfig(model="lr", epochs=1, batch_size=1024), tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match="already holds a run"):
        train(data, TrainConfig(model="lr", epochs=1, batch_size=2048), tmp_path, progress=False)


def test_cli_train_errors_are_messages(tmp_path, capsys):
    assert cli.main(["ctr", "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "--data takes a folder made by `lptsim ctr prepare --dataset criteo" in capsys.readouterr().err


def test_cli_synthetic_default_reports_teacher(tmp_path, capsys):
    code = cli.main(["ctr", "train", "--synthetic", "--rows", "20000", "--model", "lr", "--epochs", "1",
                     "--batch-size", "512", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.5 < metrics["test_auc"] <= metrics["teacher_test_auc"] + 0.02
    assert "best achievable" in capsys.readouterr().out


def test_dr_with_adam_freezes_below_half_a_step_and_sr_learns(small_data, tmp_path):
    """Theory (docs/theory.md, section 6): Adam moves a coordinate by about lr per update, so with lr far below
    Delta/2 deterministic rounding never changes a code: every table entry stays at its initial (zero) code and
    the model can only output a constant (AUC 0.5; the initial rows, N(0, 1e-4^2), round to zero with nearest
    initial rounding). Stochastic rounding with the same settings learns."""
    data = PreparedData.load(small_data)
    results = {}
    for method in ("lpt-dr", "lpt-sr"):
        # torch's dense init: its random biases keep ReLUs alive on an all-zero table (with Xavier and zero
        # biases a DNN on an all-zero table gets no gradient at all, whatever the rounding)
        cfg = TrainConfig(model="dnn", hidden=(32,), method=method, bits=2, epochs=1, batch_size=256, seed=0,
                          dense_init="torch",
                          embedding_options={"optimizer": "adam", "lr": 1e-3, "clip": 0.05, "init_rounding": "nearest"})
        results[method] = train(data, cfg, tmp_path / method, progress=False)
    # Delta = 0.05 / 2 = 0.025: Delta/2 = 0.0125 is 12x the lr, so DR's table stays all zero: constant outputs
    assert results["lpt-dr"]["test_auc"] == pytest.approx(0.5, abs=1e-9)
    assert results["lpt-sr"]["test_auc"] > 0.6


# -- checkpoints inside an epoch -------------------------------------------------------------------------------------
MID_ARGS = ["--model", "dnn", "--hidden", "16", "--dropout", "0.2", "--batch-size", "64", "--epochs", "2",
            "--patience", "2", "--method", "alpt", "--bits", "4", "--quiet"]  # dropout: the torch RNG matters
KILLER = """
import os, signal, sys
from lptsim import cli
from lptsim.ctr import train
step, count = train.Trainer.train_step, [0]
def killed(self, *a):
    count[0] += 1
    if count[0] == int(os.environ["KILL_AT_STEP"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return step(self, *a)
train.Trainer.train_step = killed
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def mid_data(tmp_path_factory) -> Path:
    prepared, _ = synthetic_prepared(tmp_path_factory.mktemp("mid"), SyntheticSpec(rows=3000, seed=2))
    return prepared


@pytest.fixture(scope="module")
def whole_run(mid_data, tmp_path_factory) -> Path:
    """The uninterrupted run, with no checkpoint inside an epoch."""
    out = tmp_path_factory.mktemp("whole") / "run"
    assert cli.main(["ctr", "train", "--data", str(mid_data), *MID_ARGS, "--checkpoint-every", "0",
                     "--out", str(out)]) == 0
    return out


def _same_run(a: Path, b: Path) -> None:
    """Bit for bit: final weights, table and optimizer state, RNG, logs and metrics."""
    ca, cb = checkpoint.load(a / "checkpoint.pt"), checkpoint.load(b / "checkpoint.pt")
    assert checkpoint.digest(ca["model"]) == checkpoint.digest(cb["model"])
    for key in ("optimizer", "table_optimizer", "scheduler", "table_scheduler", "torch_rng"):
        assert checkpoint.digest(ca[key]) == checkpoint.digest(cb[key]), key
    la, lb = (json.loads((r / "log.json").read_text()) for r in (a, b))
    assert [(r["train_logloss"], r["val_auc"], r["val_logloss"]) for r in la] == \
        [(r["train_logloss"], r["val_auc"], r["val_logloss"]) for r in lb]
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in (a, b))
    assert (ma["test_auc"], ma["test_logloss"]) == (mb["test_auc"], mb["test_logloss"])


def test_kill_9_inside_an_epoch_then_resume_is_bit_identical(mid_data, whole_run, tmp_path):
    """38 steps per epoch, a checkpoint every 5: killed (SIGKILL) at the 51st step, epoch 2 step 13, two steps
    after the checkpoint at epoch 2 step 10; the resumed run equals the uninterrupted one bit for bit."""
    run = tmp_path / "run"
    argv = ["ctr", "train", "--data", str(mid_data), *MID_ARGS, "--out", str(run)]
    proc = subprocess.run([sys.executable, "-c", KILLER, *argv, "--checkpoint-every", "5"], capture_output=True,
                          text=True, env=dict(os.environ, KILL_AT_STEP="51"), timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    state = checkpoint.load(run / "checkpoint.pt")["state"]
    assert (state["epoch"], state["step"]) == (1, 10)  # inside epoch 2
    assert not (run / "metrics.json").exists()
    assert cli.main([*argv, "--resume"]) == 0
    _same_run(whole_run, run)


def test_ctrl_c_saves_the_step_and_prints_the_command_that_resumes(mid_data, whole_run, tmp_path, capsys,
                                                                 monkeypatch):
    import shlex

    from lptsim.ctr import train as train_module

    step, count = train_module.Trainer.train_step, [0]

    def interrupted(self, *a):
        count[0] += 1
        if count[0] == 7:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C inside step 7: it finishes, then training stops
        return step(self, *a)

    monkeypatch.setattr(train_module.Trainer, "train_step", interrupted)
    run = tmp_path / "run"
    argv = ["ctr", "train", "--data", str(mid_data), *MID_ARGS, "--out", str(run)]
    assert cli.main(argv) == 130
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines  # on a line of its own
    assert lines[0].startswith(f"lptsim ctr train: interrupted at epoch 1, step 7 of 38; saved a checkpoint of that "
                               f"step in {run / 'checkpoint.pt'}. Resume with: lptsim ctr train "), lines[0]
    assert checkpoint.load(run / "checkpoint.pt")["state"]["step"] == 7
    monkeypatch.setattr(train_module.Trainer, "train_step", step)
    command = shlex.split(lines[0].split("Resume with: ")[1])
    assert command[0] == "lptsim" and "--resume" in command
    assert cli.main(command[1:]) == 0  # the command printed, as printed
    _same_run(whole_run, run)


@pytest.mark.parametrize("text, steps, seconds", [("500", 500, None), ("90s", None, 90.0), ("5m", None, 300.0),
                                                  ("0", None, None), ("epoch", None, None)])
def test_checkpoint_every_parses(text, steps, seconds):
    from lptsim.ctr.train import CheckpointEvery

    assert CheckpointEvery.parse(text) == CheckpointEvery(steps, seconds)


@pytest.mark.parametrize("text", ["-3", "5x", "", "m", "nan m", "1.5"])
def test_checkpoint_every_refuses_nonsense_before_anything_is_written(text, tmp_path, capsys):
    assert cli.main(["ctr", "train", "--model", "lr", "--rows", "500", "--checkpoint-every", text,
                     "--out", str(tmp_path / "r")]) == 2
    assert "--checkpoint-every must be" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_start_banner_and_training_curve(mid_data, tmp_path, capsys):
    from lptsim.ctr.inference import load_run

    run = tmp_path / "run"
    assert cli.main(["ctr", "train", "--data", str(mid_data), "--model", "dcn", "--hidden", "8", "--method", "lpt-sr",
                     "--bits", "4", "--epochs", "2", "--batch-size", "256", "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    model, cfg, _ = load_run(run)
    dense = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("embedding."))
    rows = model.embedding.num_embeddings
    fp32 = 4 * rows * 16
    train_rows = PreparedData.load(mid_data).labels["train"].shape[0]
    assert out[0].startswith(f"dcn with lpt-sr, 4 bits on {mid_data}: {train_rows:,} training rows, "
                             f"{-(-train_rows // 256)} steps of 256 per epoch, up to 2 epochs; device cpu"), out[0]
    table_mib = model.embedding.table_bytes() / 2**20
    assert out[1].startswith(f"parameters: {dense:,} dense, tables {rows:,} x 16; table memory {table_mib:,.2f} MiB, "
                             f"{fp32 / model.embedding.table_bytes():.1f}x smaller than FP32's {fp32 / 2**20:,.2f} "
                             "MiB;"), out[1]
    assert out[2].startswith(f"checkpoints in {run}: at each epoch's end and every 5 min of training"), out[2]
    assert out[3].startswith("epoch 1:")  # the banner comes first
    png = (run / "curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 800  # 8 x 3.2 in at 100 dpi


def test_the_resume_command_of_a_run_and_of_a_table():
    from lptsim.cli import resume_command

    assert resume_command(["ctr", "train", "--data", "d", "--out", "table", "--force"]) == \
        "lptsim ctr train --data d --out table --resume"
    assert resume_command(["--debug", "ctr", "table", "--data", "d", "--out", "t"]) == \
        "lptsim --debug ctr table --data d --out t"  # a table resumes by running it again
