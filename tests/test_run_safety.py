"""A run never loses finished work and never ends in a traceback: damaged checkpoints, misuse, divergence.

Every CLI misuse below must end with exit status 2 (bad input) or 1 (a run stopped) and exactly one
line on stderr, naming the file or option at fault.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lptsim import cli
from lptsim.ctr import checkpoint
from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.data.prepare import prepare
from lptsim.ctr.data.schema import CRITEO
from lptsim.ctr.data.synthetic import SyntheticSpec, synthetic_prepared, write_criteo_text
from lptsim.ctr.train import RunWarning, TrainConfig, TrainingError, train

FAST = ["--model", "lr", "--batch-size", "512", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    prepared, _ = synthetic_prepared(tmp_path_factory.mktemp("syn"), SyntheticSpec(rows=6000, seed=5))
    return prepared


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """Exit status and stderr of one CLI call, checking the one-line promise."""
    capsys.readouterr()  # only this call's output: set-up before it may have printed (warnings, with -p no:warnings)
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    if code:
        lines = [ln for ln in err.splitlines() if ln.strip() and "warning:" not in ln]
        assert len(lines) == 1 and "Traceback" not in err, err
    return code, err


def train_cli(capsys, data: Path, out: Path, *extra: str) -> tuple[int, str]:
    return run_cli(capsys, "ctr", "train", "--data", str(data), *FAST, "--out", str(out), *extra)


# -- damaged checkpoints ---------------------------------------------------------------------------------------
def _flip_tensor_byte(path: Path) -> None:
    """Flip one byte inside the stored tensor data: torch still loads the file, only the checksum notices."""
    data = bytearray(path.read_bytes())
    start = data.find(b"/data/0")  # the first tensor record's name; its bytes follow the local header
    assert start > 0
    data[start + 200] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "random": lambda p: p.write_bytes(bytes(range(256)) * 20),
    "flipped byte": _flip_tensor_byte,
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_checkpoint_resumes_from_the_previous_one(data, tmp_path, damage):
    """Damage checkpoint.pt after 2 epochs; resuming to 3 epochs replays epoch 2 from checkpoint.prev.pt and ends
    exactly where an uninterrupted 3-epoch run does."""
    prepared = PreparedData.load(data)
    cfg = TrainConfig(model="lr", method="lpt-sr", bits=4, epochs=3, batch_size=512, patience=3)
    whole = train(prepared, cfg, tmp_path / "whole", progress=False)
    run = tmp_path / "run"
    train(prepared, TrainConfig(**{**cfg.__dict__, "epochs": 2}), run, progress=False)
    assert checkpoint.load(run / "checkpoint.prev.pt")["state"]["epoch"] == 1
    DAMAGES[damage](run / "checkpoint.pt")
    with pytest.warns(RunWarning, match=r"checkpoint\.pt: damaged.*resumed from the previous checkpoint \(epoch 1\)"):
        resumed = train(prepared, cfg, run, resume=True, progress=False)
    assert resumed["test_auc"] == whole["test_auc"] and resumed["test_logloss"] == whole["test_logloss"]
    assert [r["epoch"] for r in json.loads((run / "log.json").read_text())] == [1, 2, 3]


def test_both_checkpoints_damaged_is_one_line_naming_both(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_cli(capsys, data, run, "--epochs", "2")[0] == 0
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        DAMAGES["truncated"](run / name)
    code, err = train_cli(capsys, data, run, "--epochs", "3", "--resume")
    assert code == 2 and f"{run / 'checkpoint.pt'}: damaged" in err and f"{run / 'checkpoint.prev.pt'}: damaged" in err


def test_damaged_best_is_caught_before_training_goes_on(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_cli(capsys, data, run, "--epochs", "1")[0] == 0
    DAMAGES["flipped byte"](run / "best.pt")
    code, err = train_cli(capsys, data, run, "--epochs", "2", "--resume")
    assert code == 2 and f"{run / 'best.pt'}: damaged" in err
    assert len(json.loads((run / "log.json").read_text())) == 1  # nothing ran


def test_save_keeps_the_old_file_when_the_new_one_fails_verification(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    checkpoint.save({"x": torch.arange(4)}, path)
    real = checkpoint._read
    monkeypatch.setattr(checkpoint, "_read", lambda p, m: (_ for _ in ()).throw(checkpoint.CheckpointError("bad")))
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.save({"x": torch.arange(5)}, path)
    monkeypatch.setattr(checkpoint, "_read", real)
    assert torch.equal(checkpoint.load(path)["x"], torch.arange(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temporary file left


def test_checkpoint_digest_covers_values_types_and_structure():
    base = {"a": torch.zeros(3), "b": [1, 2.0, "x", None, True], "c": {"n": 1}}
    variants = [{**base, "a": torch.zeros(4)}, {**base, "a": torch.zeros(3, dtype=torch.float64)},
                {**base, "a": torch.tensor([0.0, 0.0, 1e-30])}, {**base, "b": [1, 2, "x", None, True]},
                {**base, "b": [1, 2.0, "x", None, 1]}, {**base, "c": {"n": 2}}, {**base, "c": {"m": 1}},
                {**base, "b": (1, 2.0, "x", None, True)}]
    digests = {checkpoint.digest(v) for v in variants}
    assert len(digests) == len(variants) and checkpoint.digest(base) not in digests
    assert checkpoint.digest(dict(reversed(list(base.items())))) == checkpoint.digest(base)  # order-free


# -- resume misuse ------------------------------------------------------------------------------------------------
def test_resume_with_other_options_is_refused_before_any_tensor_is_read(data, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert train_cli(capsys, data, run, "--epochs", "1", "--method", "lpt-sr", "--bits", "4")[0] == 0

    def no_loading(*a, **k):
        raise AssertionError("a checkpoint was read before the configuration was checked")

    monkeypatch.setattr(checkpoint, "load", no_loading)
    monkeypatch.setattr(torch, "load", no_loading)
    code, err = train_cli(capsys, data, run, "--epochs", "1", "--method", "lpt-sr", "--bits", "8", "--resume")
    assert code == 2 and "different configuration" in err and "bits 4 there, 8 here" in err
    other, _ = synthetic_prepared(tmp_path / "other", SyntheticSpec(rows=6000, seed=6))
    code, err = train_cli(capsys, other, run, "--epochs", "1", "--method", "lpt-sr", "--bits", "4", "--resume")
    assert code == 2 and "trained on other data" in err


def test_resume_in_a_folder_without_a_run_says_so(data, tmp_path, capsys):
    code, err = train_cli(capsys, data, tmp_path / "new", "--resume")
    assert code == 2 and "holds no run to resume" in err
    assert not (tmp_path / "new").exists()  # refused before anything was written
    code, err = train_cli(capsys, data, tmp_path / "new", "--epochs", "1")
    assert code == 0
    code, err = train_cli(capsys, data, tmp_path / "new", "--epochs", "1")
    assert code == 2 and "already holds a run; pass --resume" in err


def test_a_checkpoint_from_another_run_is_refused(data, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert train_cli(capsys, data, a, "--epochs", "1", "--dim", "8")[0] == 0
    assert train_cli(capsys, data, b, "--epochs", "1", "--dim", "4")[0] == 0
    shutil.copy(a / "checkpoint.pt", b / "checkpoint.pt")
    code, err = train_cli(capsys, data, b, "--epochs", "2", "--dim", "4", "--resume")
    assert code == 2 and "saved by a run with other options" in err and "dim 8" in err


# -- divergence -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lr", ["1e6", "1e30"])
def test_exploding_loss_stops_with_a_true_message(data, tmp_path, capsys, lr):
    run = tmp_path / "run"
    code, err = train_cli(capsys, data, run, "--epochs", "2", "--lr", lr)
    assert code == 1 and "diverged" in err and "No checkpoint was written yet" in err and f"now {float(lr):g}" in err
    assert not (run / "checkpoint.pt").exists() and not (run / "metrics.json").exists()


def test_divergence_after_a_good_epoch_names_that_checkpoint(data, tmp_path, monkeypatch):
    prepared = PreparedData.load(data)
    cfg = TrainConfig(model="lr", epochs=3, batch_size=512)
    train(prepared, TrainConfig(**{**cfg.__dict__, "epochs": 1}), tmp_path, progress=False)
    import lptsim.ctr.train as train_module

    real = train_module.batch_loss
    monkeypatch.setattr(train_module, "batch_loss", lambda *a: real(*a) * 20)  # over 10x a constant predictor
    with pytest.raises(TrainingError, match=r"diverged .* The last good checkpoint \(epoch 1\) is .*checkpoint\.pt"):
        train(prepared, cfg, tmp_path, resume=True, progress=False)
    assert checkpoint.load(tmp_path / "checkpoint.pt")["state"]["epoch"] == 1
    monkeypatch.setattr(train_module, "batch_loss", lambda *a: real(*a) * 5)  # high, but not diverged
    train(prepared, cfg, tmp_path, resume=True, progress=False)


# -- options and data checked up front ----------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["--device", "tpu"], "device 'tpu' is not a device name torch knows"),
    (["--device", "cuda:7" if torch.cuda.is_available() else "cuda"], "device 'cuda"),
    (["--lr", "inf"], "lr must be a finite number > 0, got inf"),
    (["--lr", "-1"], "lr must be a finite number > 0"),
    (["--epochs", "0"], "epochs must be >= 1"),
    (["--dropout", "1.5"], "dropout must be in [0, 1)"),
])
def test_bad_options_are_one_line_before_any_work(data, tmp_path, capsys, argv, message):
    code, err = train_cli(capsys, data, tmp_path / "run", *argv)
    assert code == 2 and message in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("rows, problem", [(10, "the val split is empty"), (40, "all with label")])
def test_splits_that_cannot_train_are_refused_before_training(tmp_path, capsys, rows, problem):
    raw = write_criteo_text(tmp_path / "tiny.txt", SyntheticSpec(rows=rows, seed=1, positive_rate=0.03))
    code = cli.main(["ctr", "prepare", "--dataset", "criteo", "--input", str(raw), "--out", str(tmp_path / "d"),
                     "--quiet"])
    err = capsys.readouterr().err
    assert code == 0 and "warning:" in err and problem in err  # prepare warns ...
    code, err = train_cli(capsys, tmp_path / "d", tmp_path / "run")
    assert code == 2 and problem in err  # ... and training refuses before it starts
    code = cli.main(["ctr", "prepare", "--dataset", "criteo", "--input", str(raw), "--out", str(tmp_path / "s"),
                     "--quiet", "--strict"])
    assert code == 2 and problem in capsys.readouterr().err  # --strict refuses


def test_edited_data_folder_is_refused_with_the_file_named(data, tmp_path, capsys):
    import numpy as np

    bad = tmp_path / "bad"
    shutil.copytree(data, bad)
    fm = json.loads((bad / "feature_map.json").read_text())
    fm["vocab_sizes"][0] = "many"
    (bad / "feature_map.json").write_text(json.dumps(fm))
    code, err = train_cli(capsys, bad, tmp_path / "r1")
    assert code == 2 and "feature_map.json: 'vocab_sizes'" in err
    shutil.copy(data / "feature_map.json", bad / "feature_map.json")
    ids = np.load(bad / "train_ids.npy", mmap_mode="r+")
    ids[5, 3] = 10**9  # an id beyond the table
    ids.flush()
    del ids
    code, err = train_cli(capsys, bad, tmp_path / "r2")
    assert code == 2 and "train_ids.npy: row 5 field" in err and "outside its range" in err
    (bad / "val_labels.npy").write_bytes((bad / "val_labels.npy").read_bytes()[:-100])
    code, err = train_cli(capsys, bad, tmp_path / "r3")
    assert code == 2 and "val_labels.npy" in err


# -- the table ------------------------------------------------------------------------------------------------------
def test_table_cells_are_keyed_by_their_full_configuration(data, tmp_path, capsys):
    base = ["ctr", "table", "--data", str(data), *FAST, "--methods", "fp", "lpt-sr", "--bits", "4", "--seeds", "1",
            "--out", str(tmp_path / "t")]
    assert run_cli(capsys, *base, "--epochs", "1")[0] == 0
    runs = sorted(p.name for p in (tmp_path / "t" / "runs").iterdir())
    assert len(runs) == 2
    first = (tmp_path / "t" / "table.csv").read_text()
    assert run_cli(capsys, *base, "--epochs", "1")[0] == 0  # same options: reused, nothing new
    assert sorted(p.name for p in (tmp_path / "t" / "runs").iterdir()) == runs
    assert (tmp_path / "t" / "table.csv").read_text() == first
    assert run_cli(capsys, *base, "--epochs", "2")[0] == 0  # other options: new runs, the table uses only those
    new = sorted(set(p.name for p in (tmp_path / "t" / "runs").iterdir()) - set(runs))
    assert len(new) == 2
    for name in new:
        assert json.loads((tmp_path / "t" / "runs" / name / "metrics.json").read_text())["config"]["epochs"] == 2
    assert (tmp_path / "t" / "table.csv").read_text() != first


def test_table_never_reuses_a_finished_run_of_other_options(data, tmp_path, capsys):
    """A run folder moved under another cell's name (by hand, or a hash collision) is checked, not trusted."""
    from dataclasses import replace

    from lptsim.ctr.grid import cell_key

    argv = ["ctr", "table", "--data", str(data), *FAST, "--methods", "fp", "--seeds", "1", "--out", str(tmp_path)]
    assert run_cli(capsys, *argv, "--epochs", "1")[0] == 0
    (old,) = (tmp_path / "runs").iterdir()
    cfg = TrainConfig(model="lr", method="fp", bits=8, batch_size=512, epochs=2, seed=0, device="cpu",
                      hidden=(400, 400, 400), lr_milestones=(6, 9))
    old.rename(old.with_name(f"fp_b8_s0-{cell_key(replace(cfg), PreparedData.load(data))}"))
    assert run_cli(capsys, *argv, "--epochs", "2")[0] == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "metrics.json").read_text())["config"]["epochs"] == 2  # resumed to 2 epochs, not reused
    assert len(json.loads((run / "log.json").read_text())) == 2


@pytest.mark.parametrize("argv, message", [(["--seeds", "0"], "--seeds must be an integer >= 1"),
                                           (["--bits", "0"], "--bits must be"),
                                           (["--methods", "nope"], "unknown or no table method")])
def test_table_bad_grid_is_one_line(data, tmp_path, capsys, argv, message):
    code, err = run_cli(capsys, "ctr", "table", "--data", str(data), *FAST, *argv, "--out", str(tmp_path / "t"))
    assert code == 2 and message in err and not (tmp_path / "t").exists()


# -- the CLI's error contract -----------------------------------------------------------------------------------------
def test_internal_errors_are_one_line_and_debug_shows_the_traceback(data, tmp_path, capsys, monkeypatch):
    import lptsim.ctr.train as train_module

    monkeypatch.setattr(train_module, "make_model", lambda *a, **k: 1 / 0)
    code, err = train_cli(capsys, data, tmp_path / "r")
    assert code == 1 and "internal error: ZeroDivisionError" in err and "--debug" in err
    with pytest.raises(ZeroDivisionError):
        cli.main(["ctr", "train", "--data", str(data), *FAST, "--out", str(tmp_path / "r2"), "--debug"])
    with pytest.raises(ZeroDivisionError):
        cli.main(["--debug", "ctr", "train", "--data", str(data), *FAST, "--out", str(tmp_path / "r3")])


def test_prepare_misuse_is_one_line(tmp_path, capsys):
    raw = write_criteo_text(tmp_path / "r.txt", SyntheticSpec(rows=200, seed=1))
    cases = [
        (["--input", str(tmp_path)], "is a folder"),
        (["--input", str(tmp_path / "missing.txt")], "no such file"),
        (["--input", str(raw), "--rejects", str(raw)], "is the input file"),
        (["--input", str(raw), "--rejects", str(tmp_path / "no" / "such" / "r.tsv")], "does not exist"),
        (["--input", str(raw), "--min-count", "0"], "--min-count must be >= 1"),
    ]
    for argv, message in cases:
        code, err = run_cli(capsys, "ctr", "prepare", "--dataset", "criteo", "--out", str(tmp_path / "o"), "--quiet",
                            *argv)
        assert code == 2 and message in err, (argv, err)
    prepare(raw, CRITEO, tmp_path / "ok", progress=False)  # the file itself is fine


# -- a first day: hints name commands that work, nothing written before the options are checked --------------------
def test_hints_name_commands_that_work(data, tmp_path, capsys):
    import shlex

    raw = write_criteo_text(tmp_path / "va.txt", SyntheticSpec(rows=300, seed=1))
    code, err = train_cli(capsys, raw, tmp_path / "run")
    assert code == 2 and "is a file, not a prepared folder" in err and not (tmp_path / "run").exists()
    command = shlex.split(err.split("`")[1])
    assert command[:4] == ["lptsim", "ctr", "prepare", "--dataset"] and command[4] == "criteo"
    assert cli.main([*command[1:], "--quiet"]) == 0  # the hint, as printed
    PreparedData.load(command[command.index("--out") + 1])
    capsys.readouterr()
    code, err = run_cli(capsys, "ctr", "evaluate", "--run", str(data), "--data", str(data))
    assert code == 2 and "holds prepared data, not a training run" in err
    command = shlex.split(err.split("`")[-2])
    assert command[:3] == ["lptsim", "ctr", "train"] and command[command.index("--data") + 1] == str(data)
    assert not Path(command[command.index("--out") + 1]).exists()  # a folder training accepts
    code, err = run_cli(capsys, "ctr", "train", "--data", str(tmp_path / "run"), *FAST, "--out", str(tmp_path / "r"))
    assert code == 2 and "--data takes a folder made by `lptsim ctr prepare" in err


def test_predict_on_another_datasets_rows_names_no_missing_option(tmp_path, capsys):
    from lptsim.ctr.data.schema import AVAZU

    prepared, _ = synthetic_prepared(tmp_path / "syn", SyntheticSpec(rows=600, seed=3))
    train(PreparedData.load(prepared), TrainConfig(model="lr", epochs=1, batch_size=256), tmp_path / "run",
          progress=False)
    rows = tmp_path / "avazu.csv"
    rows.write_text(",".join(AVAZU.columns) + "\n" + "\n".join(",".join(["1"] * len(AVAZU.columns))
                                                                 for _ in range(5)) + "\n")
    code, err = run_cli(capsys, "ctr", "predict", "--run", str(tmp_path / "run"), "--input", str(rows), "--out",
                        str(tmp_path / "p.csv"))
    assert code == 2 and "is it avazu data?" in err and "--dataset" not in err
    assert "predict them with a run trained on avazu data" in err


@pytest.mark.parametrize("argv", [
    ["verify", "--group", "foo"],
    ["ctr", "train", "--data", "MISSING", "--model", "lr"],
    ["ctr", "table", "--data", "MISSING", "--model", "lr"],
    ["ctr", "train", "--bits", "0", "--method", "lpt-sr"],
    ["ctr", "train", "--config", "BAD"],
    ["ctr", "train", "--checkpoint-every", "soon"],
])
def test_bad_arguments_leave_no_output_folder(tmp_path, capsys, argv):
    (tmp_path / "bad.toml").write_text('epochs = "many"\n')
    argv = [str(tmp_path / "missing") if a == "MISSING" else str(tmp_path / "bad.toml") if a == "BAD" else a
            for a in argv]
    code, _ = run_cli(capsys, *argv, "--out", str(tmp_path / "out"))
    assert code == 2 and not (tmp_path / "out").exists()


def test_an_unwritable_output_folder_is_one_line_naming_it(data, tmp_path, capsys, monkeypatch):
    import errno
    import os

    from lptsim import atomic

    assert train_cli(capsys, data, tmp_path / "done", "--epochs", "1")[0] == 0
    real_open, real_unlink = os.open, os.unlink

    def read_only(path, flags, *a):  # what a read-only folder does (root ignores chmod, so it is simulated)
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *a)

    monkeypatch.setattr(atomic.os, "open", read_only)
    code, err = train_cli(capsys, data, tmp_path / "run")
    assert code == 2 and f"{tmp_path / 'run'}: cannot write .lptsim-output.json there (Permission denied)" in err
    assert ".tmp" not in err and "Errno" not in err

    def read_only_fs(path, flags, *a):  # a read-only file system: even removing a missing file fails
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *a)

    def no_unlink(path, *a, **k):
        if ".tmp" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_unlink(path, *a, **k)

    monkeypatch.setattr(atomic.os, "open", read_only_fs)
    monkeypatch.setattr(atomic.os, "unlink", no_unlink)
    code, err = run_cli(capsys, "ctr", "export", "--run", str(tmp_path / "done"), "--out", str(tmp_path / "e.st"))
    assert code == 2 and f"{tmp_path}: cannot write e.st there (Read-only file system)" in err, err
    assert ".tmp" not in err and "Errno" not in err


def test_write_config_pins_no_device_and_fp_records_32_bits(data, tmp_path, capsys):
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    assert run_cli(capsys, "ctr", "train", "--write-config", str(tmp_path / "c.toml"))[0] == 0
    assert "device" not in tomllib.loads((tmp_path / "c.toml").read_text())
    assert run_cli(capsys, "ctr", "train", "--write-config", str(tmp_path / "d.toml"), "--device", "cpu")[0] == 0
    assert tomllib.loads((tmp_path / "d.toml").read_text())["device"] == "cpu"  # chosen: kept
    assert train_cli(capsys, data, tmp_path / "run", "--config", str(tmp_path / "c.toml"), "--epochs", "1",
                     "--bits", "4")[0] == 0
    for name in ("run.json", "metrics.json"):
        assert json.loads((tmp_path / "run" / name).read_text())["config"]["bits"] == 32  # an fp run


def test_table_of_one_seed_shows_no_spread(data, tmp_path, capsys):
    argv = ["ctr", "table", "--data", str(data), *FAST, "--methods", "fp", "--seeds", "1", "--epochs", "1",
            "--out", str(tmp_path / "t")]
    assert run_cli(capsys, *argv)[0] == 0
    md = (tmp_path / "t" / "table.md").read_text()
    assert "±" not in md.split("one seed")[0] and "over 1 seeds" not in md and "one seed per cell" in md
    assert "| fp | 32 |" in md


def test_library_warnings_keep_their_own_label_and_rank_0_speaks_for_all(data, tmp_path, capsys, monkeypatch):
    import warnings

    from lptsim.ctr import train as train_module

    fit = train_module.Trainer.fit

    def warning_fit(self):
        warnings.warn("a library's deprecation", FutureWarning, stacklevel=1)
        warnings.warn("lptsim's own remark", RunWarning, stacklevel=1)
        return fit(self)

    monkeypatch.setattr(train_module.Trainer, "fit", warning_fit)
    code, err = train_cli(capsys, data, tmp_path / "r0", "--epochs", "1")
    assert code == 0
    assert "FutureWarning: a library's deprecation" in err and "warning: a library's" not in err
    assert "lptsim ctr train: warning: lptsim's own remark" in err
    monkeypatch.setenv("RANK", "1")  # another rank under torchrun: rank 0 has said it
    code, err = train_cli(capsys, data, tmp_path / "r1", "--epochs", "1")
    assert code == 0
    assert "deprecation" not in err and "remark" not in err
