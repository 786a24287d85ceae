"""Using a trained run: evaluate, predict raw rows through the saved vocabulary, export codes + steps."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from lptsim import cli
from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.data.prepare import split_of_lines
from lptsim.ctr.data.schema import AVAZU
from lptsim.ctr.data.synthetic import SyntheticSpec, synthetic_prepared
from lptsim.ctr.export import dequantized, load_export
from lptsim.ctr.inference import _probabilities, evaluate_run, has_labels, load_run, predict_file
from lptsim.ctr.train import TrainConfig, train
from lptsim.quant import packed_nbytes


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("syn")
    path, _ = synthetic_prepared(folder, SyntheticSpec(rows=2000, seed=4))
    return folder / "train.txt", path


@pytest.fixture(scope="module")
def run(prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(PreparedData.load(prepared[1]), TrainConfig(model="deepfm", hidden=(8,), method="lpt-sr", bits=4, epochs=1,
                                                      batch_size=256), out, progress=False)
    return out


def test_evaluate_matches_the_trainers_test_scores(run, prepared):
    metrics = json.loads((run / "metrics.json").read_text())
    r = evaluate_run(run, prepared[1])
    assert r["auc"] == pytest.approx(metrics["test_auc"], abs=1e-12)
    assert r["logloss"] == pytest.approx(metrics["test_logloss"], rel=1e-9)
    assert r["calibration"] == pytest.approx(r["mean_prediction"] / r["mean_label"])
    y = np.asarray(PreparedData.load(prepared[1]).labels["test"], dtype=float)
    assert r["mean_label"] == pytest.approx(y.mean()) and r["rows"] == y.size


def test_predict_raw_rows_equals_the_prepared_rows(run, prepared, tmp_path):
    raw, folder = prepared
    lines = raw.read_text().splitlines(keepends=True)
    lines.insert(5, "not\ta\tcriteo\tline\n")
    messy = tmp_path / "messy.txt"
    messy.write_text("".join(lines))
    summary = predict_file(run, messy, tmp_path / "p.csv")
    assert summary["bad_lines"] == 1 and summary["first_bad_lines"][0]["line"] == 6 and summary["rows"] == 2000
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    original = np.array([int(r["line"]) for r in rows])
    original = np.where(original > 6, original - 1, original) - 1  # 0-based line of the clean file
    test = split_of_lines(original, 4) == 2  # synthetic_prepared splits with the data seed
    model, cfg, _ = load_run(run)
    expected = _probabilities(model, PreparedData.load(folder).ids["test"], 512, "cpu")
    got = np.array([float(r["probability"]) for r in rows])[test]
    np.testing.assert_allclose(got, expected, rtol=1e-6)  # written with 8 significant digits
    labels = np.array([int(r["label"]) for r in rows])[test]
    np.testing.assert_array_equal(labels, PreparedData.load(folder).labels["test"])


@pytest.mark.parametrize("method,bits,options", [("fp", 8, {}), ("lpt-sr", 4, {}), ("alpt", 2, {}), ("lsq", 4, {}),
                                                 ("pact", 4, {}), ("alpt", 4, {"step_granularity": "field"})])
def test_export_round_trip(prepared, tmp_path, method, bits, options):
    data = PreparedData.load(prepared[1])
    train(data, TrainConfig(model="fm", method=method, bits=bits, epochs=1, batch_size=512,
                            embedding_options=options), tmp_path / "r", progress=False)
    assert cli.main(["ctr", "export", "--run", str(tmp_path / "r"), "--out", str(tmp_path / "e.safetensors"),
                     "--silent"]) == 0
    loaded = load_export(tmp_path / "e.safetensors")
    model, _, _ = load_run(tmp_path / "r")
    raw = load_file(str(tmp_path / "e.safetensors"))
    for name, table in (("embedding", model.embedding), ("linear", model.linear)):
        if method == "fp":
            assert raw[f"{name}.weight"].dtype == np.float32
        else:  # sub-byte codes take bits/8 bytes per weight
            assert raw[f"{name}.packed"].dtype == np.uint8 and f"{name}.codes" not in raw
            assert raw[f"{name}.packed"].size == packed_nbytes(table.num_embeddings * (16 if name == "embedding"
                                                                                         else 1), bits)
    dense = {k: v for k, v in model.state_dict().items() if not k.startswith(("embedding.", "linear."))}
    assert dense and set(loaded["dense"]) == set(dense)  # the dense weights are there, bit for bit
    for k, v in dense.items():
        np.testing.assert_array_equal(loaded["dense"][k], v.numpy())
    assert set(loaded["tables"]) == {"embedding", "linear"}
    every = torch.arange(data.num_embeddings)
    for name in ("embedding", "linear"):
        with torch.no_grad():
            expected = getattr(model, name)(every).numpy()  # the values the trained model looks up
        np.testing.assert_array_equal(dequantized(loaded["tables"][name]), expected)
        if method != "fp":
            codes = loaded["tables"][name]["codes"]
            assert codes.dtype == np.int8 and codes.min() >= -(2 ** (bits - 1)) and codes.max() <= 2 ** (bits - 1) - 1
    assert loaded["feature_map"] == data.feature_map and loaded["metadata"]["method"] == method
    assert loaded["vocab"]["values"].size == sum(data.feature_map["vocab_sizes"]) - 2 * data.num_fields


def test_cli_evaluate_predict_and_errors(run, prepared, tmp_path, capsys):
    raw, folder = prepared
    assert cli.main(["ctr", "evaluate", "--run", str(run), "--data", str(folder), "--json",
                     str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert "AUC" in out and "calibration" in out
    assert json.loads((tmp_path / "e.json").read_text())["split"] == "test"
    assert cli.main(["ctr", "predict", "--run", str(run), "--input", str(raw), "--out", str(tmp_path / "p.csv")]) == 0
    assert "2,000 probabilities" in capsys.readouterr().out
    other, _ = synthetic_prepared(tmp_path / "other", SyntheticSpec(rows=1500, seed=9))
    assert cli.main(["ctr", "evaluate", "--run", str(run), "--data", str(other)]) == 2
    assert "vocabulary differs" in capsys.readouterr().err
    assert cli.main(["ctr", "evaluate", "--run", str(tmp_path), "--data", str(folder)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_predict_rows_without_labels(run, prepared, tmp_path, capsys):
    raw, _ = prepared
    lines = raw.read_text().splitlines()
    (tmp_path / "unlabelled.txt").write_text("".join(ln.split("\t", 1)[1] + "\n" for ln in lines))
    labelled = predict_file(run, raw, tmp_path / "a.csv")
    assert cli.main(["ctr", "predict", "--run", str(run), "--input", str(tmp_path / "unlabelled.txt"), "--out",
                     str(tmp_path / "b.csv")]) == 0
    assert "rows without labels, mean probability" in capsys.readouterr().out
    with open(tmp_path / "a.csv") as fa, open(tmp_path / "b.csv") as fb:
        a, b = list(csv.DictReader(fa)), list(csv.DictReader(fb))
    assert list(b[0]) == ["line", "probability"] and len(b) == len(a) == labelled["rows"] == 2000
    assert [(r["line"], r["probability"]) for r in a] == [(r["line"], r["probability"]) for r in b]


def test_has_labels_with_a_header(tmp_path):
    unlabelled = AVAZU.without_label()
    assert "click" not in unlabelled.columns and unlabelled.label == ""
    assert unlabelled.feature_names == AVAZU.feature_names
    row = ["1", "0", "14102100", *["a"] * 21]
    f = tmp_path / "x.csv"
    f.write_text(",".join(AVAZU.columns) + "\n" + (",".join(row) + "\n") * 3)
    assert has_labels(f, AVAZU)
    f.write_text(",".join(unlabelled.columns) + "\n" + (",".join(row[:1] + row[2:]) + "\n") * 3)
    assert not has_labels(f, AVAZU)


@pytest.mark.parametrize("granularity", ["row", "field", "table"])
def test_exported_arrays_give_the_tables_rows_for_every_step_granularity(granularity):
    """codes * step of the export equals the table's own dequantized rows (steps per field written per row)."""
    import torch

    from lptsim.ctr.embedding import LowPrecisionEmbedding
    from lptsim.ctr.export import dequantized, table_arrays

    table = LowPrecisionEmbedding(20, 6, bits=4, method="alpt", step_granularity=granularity,
                                  field_starts=[0, 7, 12], init_std=0.05)
    table.step.copy_(torch.linspace(0.01, 0.03, table.step.numel()))  # distinct steps: a wrong mapping shows
    arrays = table_arrays(table)
    np.testing.assert_array_equal(dequantized(arrays), table.dequantized_rows(torch.arange(20)).numpy())


def test_prepare_refuses_a_prepared_folder_and_runs_keep_their_vocabulary(prepared, tmp_path, capsys):
    """Preparing again into a folder runs were trained on needs --force; those runs still predict and export,
    through their own copy of the vocabulary, and the changed folder itself is refused with a message."""
    raw, _ = prepared
    folder, run = tmp_path / "prep", tmp_path / "run"
    argv = ["ctr", "prepare", "--dataset", "criteo", "--input", str(raw), "--out", str(folder), "--quiet"]
    assert cli.main(argv) == 0
    labels = PreparedData.load(folder).labels
    line = capsys.readouterr().out.splitlines()[0]
    for s in ("train", "val", "test"):  # the positive rate of each split, from the labels written
        assert f"({np.mean(labels[s]):.2%} positive)" in line, line
    train(PreparedData.load(folder), TrainConfig(model="lr", epochs=1, batch_size=512), run, progress=False)
    assert cli.main(["ctr", "predict", "--run", str(run), "--input", str(raw), "--out", str(tmp_path / "a.csv")]) == 0
    before = (folder / "vocab.npz").read_bytes()
    assert cli.main([*argv, "--seed", "7"]) == 2
    err = capsys.readouterr().err
    assert "already holds prepared data" in err and "pass --force to replace it" in err
    assert (folder / "vocab.npz").read_bytes() == before  # refused before anything was written
    assert cli.main([*argv, "--seed", "7", "--force"]) == 0
    assert (folder / "vocab.npz").read_bytes() != before  # another split: another vocabulary
    capsys.readouterr()
    assert cli.main(["ctr", "predict", "--run", str(run), "--input", str(raw), "--out", str(tmp_path / "b.csv")]) == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()  # the run's own vocabulary
    assert cli.main(["ctr", "export", "--run", str(run), "--out", str(tmp_path / "e.safetensors")]) == 0
    capsys.readouterr()
    for argv2 in (["predict", "--input", str(raw), "--out", str(tmp_path / "c.csv"), "--data", str(folder)],
                  ["evaluate", "--data", str(folder)]):
        assert cli.main(["ctr", *argv2, "--run", str(run)]) == 2
        err = capsys.readouterr().err
        assert str(folder) in err and ("not the prepared data the run was trained on" in err
                                       or "vocabulary differs" in err), err
    shutil.rmtree(run / "data")  # a run from before runs kept a copy: the recorded folder, checked
    assert cli.main(["ctr", "predict", "--run", str(run), "--input", str(raw), "--out", str(tmp_path / "d.csv")]) == 2
    assert "prepared again" in capsys.readouterr().err
