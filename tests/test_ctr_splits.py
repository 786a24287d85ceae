"""Given splits in ``ctr prepare``: three pre-split files, or a split file; the vocabulary comes from train only."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lptsim import cli
from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.data.prepare import prepare, read_split_file
from lptsim.ctr.data.schema import CRITEO
from lptsim.ctr.data.synthetic import SyntheticSpec, write_criteo_text
from lptsim.ctr.data.vocab import load_vocabulary


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw")
    path = write_criteo_text(folder / "all.txt", SyntheticSpec(rows=2000, seed=3))
    lines = path.read_text().splitlines(keepends=True)
    codes = np.random.default_rng(0).choice([0, 1, 2], size=len(lines), p=[0.7, 0.15, 0.15])
    codes[:3] = [0, 1, 2]
    for k, name in enumerate(("train", "valid", "test")):
        (folder / f"{name}.txt").write_text("".join(ln for ln, c in zip(lines, codes, strict=True) if c == k))
    (folder / "split.txt").write_text("".join(f"{c}\n" for c in codes))
    return folder, lines, codes


def test_split_file_and_three_files_agree_and_follow_the_assignment(raw, tmp_path):
    folder, lines, codes = raw
    m1 = prepare(folder / "all.txt", CRITEO, tmp_path / "sf", split_file=folder / "split.txt", progress=False)
    m2 = prepare(folder / "train.txt", CRITEO, tmp_path / "3f", valid=folder / "valid.txt", test=folder / "test.txt",
                 progress=False)
    assert m1["split"]["kind"] == "split-file" and m2["split"]["kind"] == "files"
    assert m2["split"]["test"].endswith("test.txt") and m1["split"]["sha256"]
    a, b = PreparedData.load(tmp_path / "sf"), PreparedData.load(tmp_path / "3f")
    for k, s in enumerate(("train", "val", "test")):
        assert m1["rows"][s] == m2["rows"][s] == int((codes == k).sum())
        np.testing.assert_array_equal(a.ids[s], b.ids[s])
        expected = [int(ln.split("\t", 1)[0]) for ln, c in zip(lines, codes, strict=True) if c == k]
        np.testing.assert_array_equal(a.labels[s], expected)  # rows keep the file's order within a split
    assert a.feature_map == b.feature_map


def test_vocabulary_is_fitted_on_train_only(tmp_path):
    def line(label, cat):
        return "\t".join([label, *["1"] * 13, cat, *[f"{i:x}" for i in range(25)]]) + "\n"
    train = [line("0", "aa"), line("1", "aa"), line("0", "bb"), line("1", "bb")]
    other = [line("0", "zz"), line("1", "zz"), line("0", "aa"), line("1", "zz")]  # zz: 3 times, never in train
    for name, rows in (("tr", train), ("va", other), ("te", other)):
        (tmp_path / f"{name}.txt").write_text("".join(rows))
    prepare(tmp_path / "tr.txt", CRITEO, tmp_path / "out", valid=tmp_path / "va.txt", test=tmp_path / "te.txt",
            progress=False)
    data = PreparedData.load(tmp_path / "out")
    c1 = data.feature_map["fields"].index("C1")
    off = data.feature_map["offsets"][c1]
    assert data.feature_map["vocab_sizes"][c1] == 4  # OOV, missing, aa, bb
    assert data.ids["test"][:, c1].tolist() == [off, off, data.ids["train"][0, c1], off]
    table = load_vocabulary(tmp_path / "out" / "vocab.npz")
    assert table.sizes == data.feature_map["vocab_sizes"]


def test_split_file_leaves_lines_out_and_checks_its_length(raw, tmp_path):
    folder, lines, codes = raw
    text = ["-" if k % 2 else str(c) for k, c in enumerate(codes)]
    (tmp_path / "half.txt").write_text("\n".join(text) + "\n")
    m = prepare(folder / "all.txt", CRITEO, tmp_path / "half", split_file=tmp_path / "half.txt", progress=False)
    assert sum(m["rows"].values()) == sum(t != "-" for t in text)
    (tmp_path / "short.txt").write_text("\n".join(map(str, codes[:-1])))
    with pytest.raises(ValueError, match=r"short.txt: has 1,999 entries but .*all.txt has more data lines"):
        prepare(folder / "all.txt", CRITEO, tmp_path / "x", split_file=tmp_path / "short.txt", progress=False)
    (tmp_path / "long.txt").write_text("\n".join(map(str, codes)) + "\n0\n")
    with pytest.raises(ValueError, match="2,001 entries"):
        prepare(folder / "all.txt", CRITEO, tmp_path / "y", split_file=tmp_path / "long.txt", progress=False)
    (tmp_path / "bad.txt").write_text("0\n1\ntrain\n")
    with pytest.raises(ValueError, match=r"bad.txt: line 3 is b'train'"):
        read_split_file(tmp_path / "bad.txt")
    for text, line in (("0\n\n1\n", 2), ("0\n3\n", 2), ("0\n 1\n", 2)):
        (tmp_path / "bad.txt").write_text(text)
        with pytest.raises(ValueError, match=f"bad.txt: line {line} is"):
            read_split_file(tmp_path / "bad.txt")
    (tmp_path / "crlf.txt").write_bytes(b"0\r\n-\r\n2")  # CRLF endings, no final newline
    assert read_split_file(tmp_path / "crlf.txt").tolist() == [0, -1, 2]


def test_cli_prepare_pre_split_prints_split_and_vocabulary_table(raw, tmp_path, capsys):
    folder, _, _ = raw
    code = cli.main(["ctr", "prepare", "--dataset", "criteo", "--train", str(folder / "train.txt"), "--valid",
                     str(folder / "valid.txt"), "--test", str(folder / "test.txt"), "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0 and "(split: files)" in out
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    row = next(r for r in manifest["vocabulary"] if r["field"] == "C5")
    assert ["C5", f"{row['vocab_size']:,}", f"{row['oov_rate']:.2%}"] in [ln.split() for ln in out.splitlines()]
    data = PreparedData.load(tmp_path / "o")
    j = data.feature_map["fields"].index("C5")
    held = np.concatenate([data.ids["val"][:, j], data.ids["test"][:, j]])
    assert row["oov_rate"] == pytest.approx(np.mean(held == data.feature_map["offsets"][j]))
    assert cli.main(["ctr", "prepare", "--dataset", "criteo", "--train", str(folder / "train.txt"), "--out",
                     str(tmp_path / "p")]) == 2
    assert "--train needs --valid and --test" in capsys.readouterr().err
