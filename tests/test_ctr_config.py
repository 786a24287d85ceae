"""Presets, TOML config files and the training CLI's polish (defaults in help, --quiet/--silent, TensorBoard)."""

from __future__ import annotations

import argparse
import importlib.util
import json
from dataclasses import asdict

import pytest

from lptsim import cli
from lptsim.ctr.data.synthetic import SyntheticSpec, synthetic_prepared
from lptsim.ctr.presets import load_config, preset

TINY = ["--model", "lr", "--epochs", "1", "--batch-size", "512"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    prepared, _ = synthetic_prepared(tmp_path_factory.mktemp("syn"), SyntheticSpec(rows=2000, seed=2))
    return str(prepared)


def _config(*argv: str):
    args = cli.build_parser().parse_args(["ctr", "train", *argv])
    return cli._train_config(args)


@pytest.mark.parametrize("name", ["fuxictr", "alpt-paper"])
def test_preset_round_trips_through_a_config_file(name, tmp_path, capsys):
    f = tmp_path / "c.toml"
    assert cli.main(["ctr", "train", "--preset", name, "--bits", "4", "--method", "alpt", "--device", "cpu",
                     "--write-config", str(f)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {f}"
    from_preset = _config("--preset", name, "--bits", "4", "--method", "alpt", "--device", "cpu")
    from_file = _config("--config", str(f))
    assert asdict(from_file) == asdict(from_preset)
    values = preset(name, 4)
    for key, value in values.items():  # the file holds the preset's values, not the defaults
        got = asdict(from_file)[key]
        assert (list(got) if isinstance(got, tuple) else got) == value or key == "embedding_options"
    assert {k: v for k, v in from_file.embedding_options.items() if k in values["embedding_options"]} == \
        values["embedding_options"]
    g = tmp_path / "again.toml"
    assert cli.main(["ctr", "train", "--config", str(f), "--write-config", str(g)]) == 0
    assert load_config(g) == load_config(f)


def test_preset_values_are_the_peers():
    fx = _config("--preset", "fuxictr", "--model", "dnn", "--device", "cpu")
    assert (fx.dim, fx.lr, fx.batch_size, fx.epochs, fx.patience, fx.hidden) == (16, 1e-3, 256, 10, 2, (400,) * 3)
    assert (fx.lr_schedule, fx.lr_gamma, fx.embedding_l2, fx.grad_clip, fx.dense_init) == \
        ("plateau", 0.1, 1e-5, 10.0, "xavier_normal")
    assert fx.embedding_options == {"optimizer": "adam", "lr": 1e-3, "init_std": 1e-4}
    ap = _config("--preset", "alpt-paper", "--method", "alpt", "--bits", "2", "--device", "cpu")
    assert (ap.hidden, ap.batch_norm, ap.weight_decay, ap.batch_size, ap.shuffle, ap.cross_layers) == \
        ((1024, 512, 256), True, 3e-6, 10_000, False, 3)
    # issue 28's ablation: the authors' every-row decay, and BatchNorm statistics refreshed before evaluations
    assert (ap.table_decay, ap.bn_refresh) == ("every-row", True)
    assert ap.table_config().every_row_decay == 3e-6
    opts = ap.embedding_options
    assert opts["init_std"] == 0.003 and opts["optimizer"] == "adam"
    # lptsim's step_lr is relative to the initial step clip / 2^(bits-1): the absolute rate is the authors' 1e-6
    assert opts["step_lr"] * 0.05 / 2 ** (2 - 1) == pytest.approx(1e-6)


def test_flags_override_the_config_and_the_config_the_preset(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('lr = 0.5\nbatch_size = 128\n[embedding_options]\ninit_std = 0.01\n')
    cfg = _config("--preset", "fuxictr", "--config", str(f), "--lr", "0.01", "--device", "cpu")
    assert (cfg.lr, cfg.batch_size, cfg.grad_clip) == (0.01, 128, 10.0)
    assert cfg.embedding_options == {"optimizer": "adam", "lr": 1e-3, "init_std": 0.01}


@pytest.mark.parametrize("text,message", [
    ("lerning_rate = 1\n", "unknown key 'lerning_rate'"),
    ("[embedding_options]\nstep_size = 1\n", "unknown key 'embedding_options.step_size'"),
    ("epochs = 'ten'\n", "'epochs' should be an integer"),
    ("shuffle = 1\n", "'shuffle' should be true or false"),
    ("lr = [\n", "not valid TOML"),
])
def test_bad_config_is_one_line_naming_key_and_file(tmp_path, capsys, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    assert cli.main(["ctr", "train", "--config", str(f), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(f) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_every_ctr_option_shows_its_default():
    """Options with a real default, and every training option (None there means "from the config"), say it."""
    parser = cli.build_parser()
    ctr = next(a for a in parser._subparsers._group_actions[0].choices["ctr"]._actions
               if isinstance(a, argparse._SubParsersAction))
    train_flags = {cli._flag_dest(f) for f, *_ in cli._TRAIN_FLAGS}
    checked = 0
    for name, sub in ctr.choices.items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or action.help in (None, argparse.SUPPRESS):
                continue
            real = not any(action.default is v for v in (None, False, argparse.SUPPRESS))
            if real or action.dest in train_flags:
                checked += 1
                assert "(default: " in formatter._expand_help(action), f"ctr {name} {action.option_strings[0]}"
    assert checked > 60


def test_quiet_keeps_the_epoch_summary_and_silent_prints_nothing(data, tmp_path, capsys):
    assert cli.main(["ctr", "train", "--data", data, *TINY, "--quiet", "--out", str(tmp_path / "q")]) == 0
    out = capsys.readouterr()
    assert "epoch 1: train logloss" in out.out and "test AUC" in out.out and "it/s" not in out.err
    # 25 steps per epoch: no few-steps warning (--silent still prints warnings)
    assert cli.main(["ctr", "train", "--data", data, *TINY, "--batch-size", "64", "--silent", "--out",
                     str(tmp_path / "s")]) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert json.loads((tmp_path / "s" / "metrics.json").read_text())["epochs_run"] == 1


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard not installed")
def test_tensorboard_logs_every_epoch(data, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    argv = ["ctr", "train", "--data", data, *TINY, "--epochs", "2", "--patience", "3", "--quiet", "--tensorboard"]
    assert cli.main([*argv, "--out", str(tmp_path / "t")]) == 0
    events = EventAccumulator(str(tmp_path / "t" / "tensorboard"))
    events.Reload()
    log = json.loads((tmp_path / "t" / "log.json").read_text())
    got = [(e.step, e.value) for e in events.Scalars("val_auc")]
    assert got == [(row["epoch"], pytest.approx(row["val_auc"], rel=1e-6)) for row in log] and len(got) == 2


def test_tensorboard_absent_is_a_warning(data, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as when not installed
    code = cli.main(["ctr", "train", "--data", data, *TINY, "--quiet", "--tensorboard", "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert code == 0 and (tmp_path / "t" / "log.csv").exists() and not (tmp_path / "t" / "tensorboard").exists()
    assert "warning: --tensorboard: the tensorboard package is not installed" in err


def test_table_with_the_alpt_paper_preset_sets_each_bit_widths_step_lr(data, tmp_path, capsys):
    out = tmp_path / "t"
    assert cli.main(["ctr", "table", "--data", data, "--preset", "alpt-paper", *TINY, "--methods", "fp", "alpt",
                     "--bits", "2", "4", "--seeds", "1", "--device", "cpu", "--silent", "--out", str(out)]) == 0
    configs = [json.loads(m.read_text())["config"] for m in sorted(out.glob("runs/*/metrics.json"))]
    assert sorted((c["method"], c["bits"]) for c in configs) == [("alpt", 2), ("alpt", 4), ("fp", 32)]
    for c in configs:
        if c["method"] == "alpt":
            assert c["embedding_options"]["step_lr"] * 0.05 / 2 ** (c["bits"] - 1) == pytest.approx(1e-6)
