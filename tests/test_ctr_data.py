"""Tests of the CTR data pipeline: readers, bad lines, vocabulary, split, synthetic data."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from lptsim import cli
from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.data.prepare import SPLIT_FRACTIONS, prepare, split_of_lines
from lptsim.ctr.data.schema import AVAZU, CRITEO, DataFormatError, Schema
from lptsim.ctr.data.synthetic import SyntheticSpec, teacher_auc, write_criteo_text
from lptsim.ctr.data.transforms import MISSING, hash_binary

# ../shared/data beside the repository (LPTSIM_SHARED overrides ../shared, e.g. for a git worktree elsewhere)
SHARED = Path(os.environ.get("LPTSIM_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
CRITEO_FILE = SHARED / "criteo" / "criteo_train_head10k.txt"
AVAZU_FILE = SHARED / "avazu" / "avazu_train_head5000.csv"
needs_criteo = pytest.mark.skipif(not CRITEO_FILE.exists(), reason="shared Criteo sample not present")
needs_avazu = pytest.mark.skipif(not AVAZU_FILE.exists(), reason="shared Avazu sample not present")


def _criteo_line(label="1", ints=None, cats=None) -> str:
    ints = ints if ints is not None else [str(i) for i in range(13)]
    cats = cats if cats is not None else [f"{i:08x}" for i in range(26)]
    return "\t".join([label, *ints, *cats]) + "\n"


@needs_criteo
def test_prepare_real_criteo(tmp_path):
    m = prepare(CRITEO_FILE, CRITEO, tmp_path, progress=False)
    assert m["lines"] == 10_000 and m["bad_lines"] == 0 and sum(m["rows"].values()) == 10_000
    data = PreparedData.load(tmp_path)
    assert data.num_fields == 39
    for split in ("train", "val", "test"):
        ids = np.asarray(data.ids[split])
        # every id falls inside its own field's block of the global id space
        offsets = np.array(data.feature_map["offsets"])
        sizes = np.array(data.feature_map["vocab_sizes"])
        assert np.all(ids >= offsets) and np.all(ids < offsets + sizes)
    n = 10_000
    for k, frac in enumerate(SPLIT_FRACTIONS):  # split sizes within 4 binomial sd
        got = list(m["rows"].values())[k]
        assert abs(got - n * frac) <= 4 * np.sqrt(n * frac * (1 - frac))
    positive = np.concatenate([np.asarray(data.labels[s]) for s in ("train", "val", "test")]).mean()
    assert positive == pytest.approx(0.218, abs=0.001)  # README: 21.8 %


@needs_avazu
def test_prepare_real_avazu_hour_features(tmp_path):
    m = prepare(AVAZU_FILE, AVAZU, tmp_path, progress=False)
    assert m["lines"] == 5001 and m["header"] and m["bad_lines"] == 0 and sum(m["rows"].values()) == 5000
    fmap = json.loads((tmp_path / "feature_map.json").read_text())
    assert len(fmap["fields"]) == 24 and "id" not in fmap["fields"]
    # Every row is from 2014-10-21 00:00, a Tuesday: each derived field has one known value.
    for name in ("hour_of_day", "hour_weekday", "hour_weekend"):
        assert fmap["vocab_sizes"][fmap["fields"].index(name)] == 3


def test_avazu_hour_transform():
    from lptsim.ctr.data.transforms import avazu_hour

    hour, weekday, weekend = avazu_hour(np.array([14102100, 14102523, 14102613]))
    assert hour.tolist() == [0, 23, 13]
    assert weekday.tolist() == [1, 5, 6]  # Tue, Sat, Sun
    assert weekend.tolist() == [0, 1, 1]


def test_bad_lines_are_skipped_and_reported(tmp_path):
    lines = [
        _criteo_line(),                                   # 1 ok
        _criteo_line()[:-1].rsplit("\t", 1)[0] + "\n",    # 2 wrong field count
        _criteo_line(ints=["x", *map(str, range(12))]),  # 3 non-integer numeric
        _criteo_line(label="2"),                          # 4 bad label
        "\n",                                             # 5 empty line
        _criteo_line(),                                   # 6 ok
    ]
    raw = tmp_path / "bad.txt"
    raw.write_bytes("".join(lines).encode() + _criteo_line(cats=["\udcff"] * 26).encode("utf-8", "surrogateescape")
                    + _criteo_line().encode())  # 7 undecodable, 8 ok
    m = prepare(raw, CRITEO, tmp_path / "out", progress=False)
    assert m["bad_lines"] == 5 and sum(m["rows"].values()) == 3
    reported = {b["line"]: b["reason"] for b in m["first_bad_lines"]}
    assert sorted(reported) == [2, 3, 4, 5, 7]
    assert "fields" in reported[2] and "not an integer" in reported[3] and "label" in reported[4]
    assert "UTF-8" in reported[7]


def test_strict_stops_with_line_number(tmp_path, capsys):
    raw = tmp_path / "bad.txt"
    raw.write_text(_criteo_line() + _criteo_line(label="x") + _criteo_line())
    with pytest.raises(DataFormatError, match=r"bad.txt:2: label"):
        prepare(raw, CRITEO, tmp_path / "out", strict=True, progress=False)
    code = cli.main(["ctr", "prepare", "--dataset", "criteo", "--input", str(raw), "--out", str(tmp_path / "o"),
                     "--strict", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "bad.txt:2" in err and "Traceback" not in err


def test_cli_prepare_summary_names_bad_lines(tmp_path, capsys):
    raw = tmp_path / "some_bad.txt"
    raw.write_text(_criteo_line() * 5 + "1\t2\n" + _criteo_line() * 5)
    assert cli.main(["ctr", "prepare", "--dataset", "criteo", "--input", str(raw), "--out", str(tmp_path / "o"),
                     "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 bad line skipped" in out and "line 6: wrong number of fields" in out


@pytest.mark.parametrize("content, match", [(b"", "empty"), (b"a,b,c\n1,2,3\n", "does not look like")])
def test_empty_or_wrong_format(tmp_path, content, match):
    raw = tmp_path / "f.txt"
    raw.write_bytes(content)
    with pytest.raises(DataFormatError, match=match):
        prepare(raw, CRITEO, tmp_path / "out", progress=False)


def test_wrong_header_for_avazu(tmp_path):
    raw = tmp_path / "f.csv"
    raw.write_text("a,b\n1,2\n")
    with pytest.raises(DataFormatError, match="header"):
        prepare(raw, AVAZU, tmp_path / "out", progress=False)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        prepare(tmp_path / "nope.txt", CRITEO, tmp_path / "out", progress=False)


def test_min_count_and_missing_ids(tmp_path):
    rows = [_criteo_line(cats=["aaaaaaaa"] + [f"{i:08x}" for i in range(25)]) for _ in range(40)]
    rows.append(_criteo_line(cats=["bbbbbbbb"] + [""] * 25))  # a rare value and missing cells
    raw = tmp_path / "r.txt"
    raw.write_text("".join(rows))
    prepare(raw, CRITEO, tmp_path / "out", min_count=2, seed=3, progress=False)
    data = PreparedData.load(tmp_path / "out")
    fmap = data.feature_map
    c1 = fmap["fields"].index("C1")
    all_ids = np.concatenate([np.asarray(data.ids[s]) for s in ("train", "val", "test")])
    local = all_ids[:, c1] - fmap["offsets"][c1]
    assert fmap["vocab_sizes"][c1] == 3  # OOV, missing, "aaaaaaaa"
    assert set(local.tolist()) <= {0, 2} and 0 in local  # the single "bbbbbbbb" is OOV
    c2 = fmap["fields"].index("C2")
    assert (all_ids[:, c2] - fmap["offsets"][c2] == 1).sum() == 1  # the empty cell -> missing id


def test_split_does_not_depend_on_block_size(tmp_path):
    raw = write_criteo_text(tmp_path / "s.txt", SyntheticSpec(rows=3000, seed=2))
    prepare(raw, CRITEO, tmp_path / "a", progress=False)
    prepare(raw, CRITEO, tmp_path / "b", block_bytes=4096, progress=False)
    for name in ("train_ids.npy", "test_ids.npy", "val_labels.npy"):
        assert np.array_equal(np.load(tmp_path / "a" / name), np.load(tmp_path / "b" / name))


@pytest.mark.parametrize("trailing_newline", [True, False])
def test_manifest_hash_and_lines_with_small_blocks(tmp_path, trailing_newline):
    import hashlib

    text = "".join(_criteo_line(label=str(i % 2)) for i in range(300))
    raw = tmp_path / "f.txt"
    raw.write_bytes((text if trailing_newline else text[:-1]).encode())
    m = prepare(raw, CRITEO, tmp_path / "out", block_bytes=1000, progress=False)  # a line is ~170 bytes
    assert m["sha256"] == hashlib.sha256(raw.read_bytes()).hexdigest()
    assert m["lines"] == 300 and sum(m["rows"].values()) == 300 and m["bad_lines"] == 0
    m = prepare(raw, CRITEO, tmp_path / "out2", block_bytes=64, progress=False)  # blocks smaller than a line
    assert m["lines"] == 300 and sum(m["rows"].values()) == 300


def test_split_fractions_statistics():
    split = split_of_lines(np.arange(200_000), seed=5)
    for k, frac in enumerate(SPLIT_FRACTIONS):
        assert abs(np.mean(split == k) - frac) <= 4 * np.sqrt(frac * (1 - frac) / split.size)


def test_hashes_distinguish_values():
    import pyarrow as pa

    values = [f"{i:08x}".encode() for i in range(100_000)] + [b"", b"a", b"ab"]
    h = hash_binary(pa.array(values, type=pa.binary()))
    assert h[100_000] == MISSING and len(set(h.tolist())) == len(values)


def test_generic_csv_schema(tmp_path):
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps({"columns": ["y", "n1", "c1", "skip"], "label": "y", "numeric": ["n1"],
                                       "categorical": ["c1"], "drop": ["skip"], "delimiter": ",", "header": True}))
    raw = tmp_path / "d.csv"
    raw.write_text("y,n1,c1,skip\n" + "".join(f"{i % 2},{i % 7},v{i % 3},z\n" for i in range(200)))
    schema = Schema.from_json(schema_file)
    m = prepare(raw, schema, tmp_path / "out", progress=False)
    assert m["bad_lines"] == 0 and sum(m["rows"].values()) == 200
    assert PreparedData.load(tmp_path / "out").num_fields == 2
    bad = tmp_path / "bad_schema.json"
    bad.write_text(json.dumps({"columns": ["a"], "label": "b"}))
    with pytest.raises(DataFormatError, match="not in its column list"):
        Schema.from_json(bad)


def test_synthetic_teacher_is_the_best_ranker(tmp_path):
    spec = SyntheticSpec(rows=20_000, seed=4)
    raw = write_criteo_text(tmp_path / "syn.txt", spec)
    m = prepare(raw, CRITEO, tmp_path / "out", seed=spec.seed, progress=False)
    assert m["bad_lines"] == 0 and m["lines"] == spec.rows
    auc = teacher_auc(raw, tmp_path / "out")
    assert 0.65 < auc < 0.85
    labels = np.load(tmp_path / "out" / "train_labels.npy")
    assert abs(labels.mean() - spec.positive_rate) < 4 * np.sqrt(0.25 * 0.75 / labels.size) + 0.01


@pytest.mark.parametrize("spec, message", [
    ([1, 2], "a schema is a JSON object"),
    ({"columns": "yx", "label": "y"}, "'columns' should be a list of column names"),
    ({"columns": ["y", "y"], "label": "y"}, "names a column twice"),
    ({"columns": ["y", "x"], "label": 0}, "'label' should be a string"),
    ({"columns": ["y", "x"], "label": "y", "numeric": [3]}, "'numeric' should be a list"),
    ({"columns": ["y", "x"], "label": "y", "extra": 1}, "unknown ['extra']"),
    ({"columns": ["y", "x"], "label": "y", "delimiter": ";;"}, "delimiter must be one character"),
])
def test_schema_files_are_validated(tmp_path, spec, message):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(DataFormatError, match=re.escape(message)) as err:
        Schema.from_json(path)
    assert "\n" not in str(err.value)


def test_serial_and_parallel_kernels_agree():
    """Small inputs take the serial loops: both loops must give the same values, bit for bit."""
    import pyarrow as pa

    from lptsim.ctr.data import fastparse
    from lptsim.ctr.data.transforms import _buffers

    rng = np.random.default_rng(0)
    cells = [str(v).encode() for v in rng.integers(-10**6, 10**6, 3000)] + [b"", b"-", b"12x", b"9" * 19, b"\xff"]
    offsets, data, valid = _buffers(pa.array(cells, type=pa.binary()))
    n = len(cells)
    results = []
    for kernels in [("_hash_strings_serial", "_parse_ints_serial", "_bucket_serial", "_lookup_serial"),
                    ("_hash_strings_parallel", "_parse_ints_parallel", "_bucket_parallel", "_lookup_parallel")]:
        h, vals, miss, inv, buck = (np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, bool), np.empty(n, bool),
                                    np.empty(n, np.int64))
        getattr(fastparse, kernels[0])(offsets, data, valid, h)
        getattr(fastparse, kernels[1])(offsets, data, vals, miss, inv)
        getattr(fastparse, kernels[2])(vals, miss, buck)
        raw = np.stack([h, buck])
        keys = np.unique(raw[0])[::3]
        table = fastparse.build_table(keys, np.zeros(keys.size, np.int32), np.arange(keys.size) + 2, 1 << 14)
        ids = np.empty((n, 2), np.int32)
        getattr(fastparse, kernels[3])(raw, *table, np.array([0, 5000]), 0, 1, ids)
        results.append((h, vals, miss, inv, buck, ids))
    for serial, parallel in zip(*results, strict=True):
        assert np.array_equal(serial, parallel)
    _, vals, miss, inv, _, _ = results[0]
    assert miss[-5] and inv[-4:].all() and not inv[:-5].any()  # "" missing; "-", "12x", 19 digits, 0xff invalid
    assert vals[:-5].tolist() == [int(c) for c in cells[:-5]]
