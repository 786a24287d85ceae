"""Loading a run or a data folder never runs code; files follow the umask; outputs stay where they are told.

The planted payload is a pickle whose ``__reduce__`` would create a marker file. A control load with
``weights_only=False`` shows the payload is live; then every command that loads a checkpoint or a
data folder is run on files carrying it, and the marker must never appear.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from lptsim import cli
from lptsim.ctr import checkpoint
from lptsim.ctr.data.synthetic import SyntheticSpec, synthetic_prepared, write_criteo_text
from lptsim.ctr.parallel import Distributed
from lptsim.outdir import MARKER

FAST = ["--model", "lr", "--batch-size", "512", "--quiet"]


class Payload:
    """Unpickling this calls open(marker, "w"): the file appears if the loader runs code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant(path: Path, marker: Path) -> None:
    """Replace ``path`` by a torch file that looks like a checkpoint but carries the payload."""
    torch.save({"format": checkpoint.FORMAT, "version": 1, "sha256": "0", "payload": {"model": Payload(marker)},
                "weights": torch.zeros(3)}, path)


def assert_live(path: Path, marker: Path) -> None:
    """The control: an unsafe load of ``path`` does create the marker (so its absence later means something)."""
    torch.load(path, weights_only=False)
    assert marker.exists()
    marker.unlink()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    prepared, _ = synthetic_prepared(tmp_path_factory.mktemp("syn"), SyntheticSpec(rows=4000, seed=7))
    return prepared


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def _refused(err: str, path: Path) -> bool:
    return f"{path}: refused: it holds Python objects other than tensors and plain values" in err and \
        "could run code" in err and "Traceback" not in err


# Commands that load a checkpoint, and how each is covered:
#   ctr train --resume                 checkpoint.pt (+ .prev), best.pt (+ .prev)       test_planted_run_checkpoints
#   ctr table (resumes unfinished)     runs/<cell>/checkpoint.pt (+ .prev)              test_planted_table_cell
#   torchrun ... ctr train --distributed --resume   a shard of checkpoint.d-*/          test_distributed.py
#   ctr train --data (data folders)    *_ids.npy / *_labels.npy pickles                test_planted_numpy_arrays
#   ctr evaluate / predict / export    best.pt (+ .prev); vocab.npz                    test_planted_run_for_use
@pytest.mark.parametrize("target", ["checkpoint", "best"])
def test_planted_run_checkpoints(data, tmp_path, capsys, target):
    run, marker = tmp_path / "run", tmp_path / "MARKER"
    assert _run(capsys, "ctr", "train", "--data", str(data), *FAST, "--epochs", "2", "--out", str(run))[0] == 0
    for name in (f"{target}.pt", f"{target}.prev.pt"):
        plant(run / name, marker)
    assert_live(run / f"{target}.pt", marker)
    code, err = _run(capsys, "ctr", "train", "--data", str(data), *FAST, "--epochs", "3", "--out", str(run),
                     "--resume")
    assert code == 2 and _refused(err, run / f"{target}.pt") and _refused(err, run / f"{target}.prev.pt"), err
    assert not marker.exists()


def test_planted_newest_checkpoint_falls_back_to_the_previous_one(data, tmp_path, capsys):
    run, marker = tmp_path / "run", tmp_path / "MARKER"
    assert _run(capsys, "ctr", "train", "--data", str(data), *FAST, "--epochs", "2", "--out", str(run))[0] == 0
    plant(run / "checkpoint.pt", marker)
    code, err = _run(capsys, "ctr", "train", "--data", str(data), *FAST, "--epochs", "3", "--out", str(run),
                     "--resume")
    assert code == 0 and "warning:" in err and _refused(err, run / "checkpoint.pt")
    assert not marker.exists()


def test_planted_table_cell(data, tmp_path, capsys):
    table, marker = tmp_path / "t", tmp_path / "MARKER"
    argv = ["ctr", "table", "--data", str(data), *FAST, "--epochs", "2", "--methods", "lpt-sr", "--bits", "4",
            "--seeds", "1", "--out", str(table)]
    assert _run(capsys, *argv)[0] == 0
    (cell,) = (table / "runs").iterdir()
    (cell / "metrics.json").unlink()  # as if the table had been interrupted: the cell will be resumed
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        plant(cell / name, marker)
    assert_live(cell / "checkpoint.pt", marker)
    code, err = _run(capsys, *argv)
    assert code == 2 and _refused(err, cell / "checkpoint.pt")
    assert not marker.exists()


def test_planted_numpy_arrays(data, tmp_path, capsys):
    import shutil

    bad, marker = tmp_path / "data", tmp_path / "MARKER"
    shutil.copytree(data, bad)
    arr = np.empty(4, dtype=object)
    arr[:] = [Payload(marker)] * 4
    np.save(bad / "train_labels.npy", arr, allow_pickle=True)
    np.load(bad / "train_labels.npy", allow_pickle=True)  # the control: an unsafe load runs it
    assert marker.exists()
    marker.unlink()
    code, err = _run(capsys, "ctr", "train", "--data", str(bad), *FAST, "--out", str(tmp_path / "r"))
    assert code == 2 and "train_labels.npy: holds Python objects (a pickle), refused" in err
    assert not marker.exists()


@pytest.mark.parametrize("command", ["evaluate", "predict", "export"])
def test_planted_run_for_use(data, tmp_path, capsys, command):
    run, marker = tmp_path / "run", tmp_path / "MARKER"
    assert _run(capsys, "ctr", "train", "--data", str(data), *FAST, "--epochs", "1", "--out", str(run))[0] == 0
    for name in ("best.pt", "best.prev.pt"):
        plant(run / name, marker)
    assert_live(run / "best.pt", marker)
    argv = {"evaluate": ["--data", str(data)], "predict": ["--input", str(data.parent / "train.txt"), "--out",
                                                          str(tmp_path / "p.csv")],
            "export": ["--out", str(tmp_path / "e.safetensors")]}[command]
    code, err = _run(capsys, "ctr", command, "--run", str(run), *argv)
    assert code == 2 and _refused(err, run / "best.pt"), err
    assert not marker.exists() and not (tmp_path / "p.csv").exists() and not (tmp_path / "e.safetensors").exists()


def test_planted_vocabulary(data, tmp_path, capsys):
    import shutil

    bad, run, marker = tmp_path / "data", tmp_path / "run", tmp_path / "MARKER"
    shutil.copytree(data, bad)
    assert _run(capsys, "ctr", "train", "--data", str(bad), *FAST, "--epochs", "1", "--out", str(run))[0] == 0
    arr = np.empty(2, dtype=object)
    arr[:] = [Payload(marker)] * 2
    np.savez(bad / "vocab.npz", values=arr, fields=arr, ids=arr, sizes=arr)
    with np.load(bad / "vocab.npz", allow_pickle=True) as z:  # the control: an unsafe load runs the payload
        z["values"]
    assert marker.exists()
    marker.unlink()
    code, err = _run(capsys, "ctr", "predict", "--run", str(run), "--input", str(data.parent / "train.txt"), "--out",
                     str(tmp_path / "p.csv"))
    assert code == 2 and "vocab.npz: damaged or not a vocabulary" in err, err
    assert not marker.exists()


def test_checkpoint_load_refuses_every_kind_of_foreign_file(tmp_path):
    marker = tmp_path / "MARKER"
    cases = {
        "payload.pt": lambda p: plant(p, marker),
        "plain_torch.pt": lambda p: torch.save({"model": {"w": torch.zeros(2)}}, p),  # an older, unsigned file
        "pickle.pt": lambda p: p.write_bytes(__import__("pickle").dumps({"a": 1})),
        "newer.pt": lambda p: torch.save({"format": checkpoint.FORMAT, "version": 99, "payload": {}, "sha256": ""},
                                         p),
    }
    messages = {}
    for name, make in cases.items():
        make(tmp_path / name)
        with pytest.raises(checkpoint.CheckpointError) as err:
            checkpoint.load(tmp_path / name)
        messages[name] = str(err.value)
        assert messages[name].startswith(f"{tmp_path / name}: ") and "\n" not in messages[name]
    assert "could run code" in messages["payload.pt"] and "not an lptsim checkpoint" in messages["plain_torch.pt"]
    assert "newer lptsim" in messages["newer.pt"] and not marker.exists()
    with pytest.raises(TypeError, match="tensors and plain Python values only"):
        checkpoint.save({"bad": Payload(marker)}, tmp_path / "x.pt")  # nothing but data is ever written


def test_distributed_pointer_cannot_name_a_folder_elsewhere(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    out = tmp_path / "run"
    out.mkdir()
    ctx = Distributed.__new__(Distributed)  # no process group needed to read the pointer
    for folder in ("../victim", "/etc", "checkpoint.d-1234567g", "checkpoint.d-12345678/.."):
        (out / "checkpoint.json").write_text(json.dumps({"folder": folder, "world": 1}))
        with pytest.raises(checkpoint.CheckpointError, match="should name a folder checkpoint.d-XXXXXXXX"):
            ctx._entries(out, "checkpoint")
    (out / "checkpoint.json").write_text(json.dumps({"folder": "checkpoint.d-0123abcd", "world": 2,
                                                     "previous": {"folder": "../victim", "world": 1}}))
    with pytest.raises(checkpoint.CheckpointError):
        ctx._entries(out, "checkpoint")
    assert victim.exists()


# -- permissions ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o027, 0o002])
def test_files_follow_the_umask(data, tmp_path, capsys, umask):
    old = os.umask(umask)
    try:
        plain = tmp_path / "plain.txt"
        with open(plain, "w") as f:
            f.write("x")
        want = stat.S_IMODE(plain.stat().st_mode)
        raw = write_criteo_text(tmp_path / "raw.txt", SyntheticSpec(rows=2000, seed=2))
        assert _run(capsys, "ctr", "prepare", "--dataset", "criteo", "--input", str(raw), "--out",
                    str(tmp_path / "prep"), "--quiet", "--rejects", str(tmp_path / "rejects.tsv"))[0] == 0
        assert _run(capsys, "ctr", "train", "--data", str(data), *FAST, "--epochs", "2", "--out",
                    str(tmp_path / "run"))[0] == 0
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != plain]
    names = {p.relative_to(tmp_path).as_posix() for p in files}
    for expected in ("run/metrics.json", "run/log.csv", "run/log.json", "run/run.json", "run/checkpoint.pt",
                     "run/checkpoint.prev.pt", "run/best.pt", f"run/{MARKER}", "prep/manifest.json",
                     "prep/feature_map.json", "prep/train_ids.npy", "rejects.tsv"):
        assert expected in names
    modes = {p.relative_to(tmp_path).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert modes == dict.fromkeys(modes, oct(want)), f"a plain file gets {oct(want)}"


# -- outputs stay where they are told ------------------------------------------------------------------------------
def test_commands_refuse_another_kind_of_folder(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert _run(capsys, "ctr", "train", "--data", str(data), *FAST, "--epochs", "1", "--out", str(run))[0] == 0
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("mine")
    raw = write_criteo_text(tmp_path / "raw" / "r.txt", SyntheticSpec(rows=500, seed=2))
    cases = [
        (["ctr", "prepare", "--dataset", "criteo", "--input", str(raw), "--out", str(run)], "holds a training run"),
        (["ctr", "prepare", "--dataset", "criteo", "--input", str(raw), "--out", str(notes)], "is not empty"),
        (["ctr", "train", "--data", str(data), *FAST, "--out", str(data)], "holds prepared data"),
        (["ctr", "table", "--data", str(data), *FAST, "--seeds", "1", "--out", str(run)], "holds a training run"),
        (["figs", "--out", str(notes)], "is not empty"),
        (["verify", "--out", str(data)], "holds prepared data"),
    ]
    for argv, message in cases:
        code, err = _run(capsys, *argv, "--quiet") if argv[0] != "ctr" else _run(capsys, *argv)
        assert code == 2 and message in err and "--force" in err and err.count("\n") == 1, (argv, err)
    code, err = _run(capsys, "ctr", "train", "--data", str(data), *FAST, "--out", str(raw))
    assert code == 2 and "exists and is not a folder" in err
    assert sorted(p.name for p in notes.iterdir()) == ["thesis.tex"]
    code, _ = _run(capsys, "ctr", "prepare", "--dataset", "criteo", "--input", str(raw), "--out", str(notes),
                   "--quiet", "--force")
    assert code == 0 and (notes / "thesis.tex").read_text() == "mine" and (notes / "manifest.json").exists()


def test_a_run_writes_nothing_outside_its_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = set(tmp_path.rglob("*"))
    code, _ = _run(capsys, "ctr", "train", "--synthetic", "--rows", "3000", *FAST, "--epochs", "1", "--out", "r")
    assert code == 0
    assert {p for p in set(tmp_path.rglob("*")) - before if tmp_path / "r" not in p.parents} == {tmp_path / "r"}

