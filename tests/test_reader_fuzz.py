"""Fuzz test of `lptsim ctr prepare`: over 1,000 corrupted lines of over 20 kinds mixed into good rows.

For Criteo and Avazu, plain and compressed, with large and tiny blocks: no traceback, every good line
kept (the labels of each split equal the good lines' labels in file order), every bad line reported
with its true line number and the reason a line-by-line reference gives (a plain-Python reading of
the documented rules, independent of the reader's numpy/pyarrow code).
"""

from __future__ import annotations

import bz2
import datetime
import gzip
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from lptsim import cli
from lptsim.ctr.data.prepare import SPLITS, split_of_lines
from lptsim.ctr.data.schema import AVAZU, CRITEO, Schema
from lptsim.ctr.data.synthetic import SyntheticSpec, write_criteo_text

SHARED = Path(os.environ.get("LPTSIM_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
MAX_LINE = 16 << 10  # prepare's --max-line-bytes in these runs (the default is 1 MiB; smaller keeps files small)
PER_KIND = 50
INT = re.compile(r"-?[0-9]{1,18}")


# -- the reference: one line at a time, plain Python ---------------------------------------------------------
def reference(line: bytes, schema: Schema) -> str | None:
    """The reason a line (without its newline) is bad, by the documented rules in their order; None if good."""
    if len(line) > MAX_LINE:
        return "line longer than"
    body = line[:-1] if line.endswith(b"\r") else line
    if not body:
        return "empty line"
    if b"\0" in body:
        return "NUL byte"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid UTF-8"
    if "\r" in text:
        return "carriage return"
    cells = text.split(schema.delimiter)
    if len(cells) != len(schema.columns):
        return "wrong number of fields"
    row = dict(zip(schema.columns, cells, strict=True))
    if not (INT.fullmatch(row[schema.label]) and int(row[schema.label]) in (0, 1)):
        return "is not 0 or 1"
    for name in schema.numeric:
        if row[name] and not INT.fullmatch(row[name]):
            return f"numeric field {name} is not an integer"
    if "hour" in schema.derived:
        v = row["hour"]
        try:
            n = int(v) if INT.fullmatch(v) else -1
            datetime.datetime(2000 + n // 10**6, n // 10**4 % 100, n // 100 % 100, n % 100)
            assert 0 <= n <= 99_999_999
        except (ValueError, AssertionError):
            return "hour is not a YYMMDDHH date and hour"
    return None


# -- corruptions: each takes a good line (bytes) and a random generator --------------------------------------
def _field(line: bytes, d: bytes, rng, k: int | None = None, value: bytes | None = None, insert: bytes = b"") -> bytes:
    cells = line.split(d)
    k = int(rng.integers(len(cells))) if k is None else k
    cell = cells[k]
    if value is not None:
        cells[k] = value
    else:
        i = int(rng.integers(len(cell) + 1))
        cells[k] = cell[:i] + insert + cell[i:]
    return d.join(cells)


def corruptions(schema: Schema) -> dict:
    d = schema.delimiter.encode()
    lab = schema.columns.index(schema.label)
    num = schema.columns.index(schema.numeric[0]) if schema.numeric else schema.columns.index("hour")
    other = b"," if d == b"\t" else b"\t"
    kinds = {
        "CR inside a field": lambda ln, r: _field(ln, d, r, insert=b"\r"),
        "NUL inside a field": lambda ln, r: _field(ln, d, r, insert=b"\0"),
        "invalid UTF-8 byte": lambda ln, r: _field(ln, d, r, insert=bytes([int(r.integers(0x80, 0x100))])),
        "truncated UTF-8 sequence": lambda ln, r: _field(ln, d, r, insert=b"\xe2\x82"),
        "UTF-16 encoded line": lambda ln, r: ln.decode().encode("utf-16-le"),
        "a field dropped": lambda ln, r: d.join(ln.split(d)[:-1]),
        "a field added": lambda ln, r: ln + d + b"extra",
        "empty line": lambda ln, r: b"",
        "CR-only line": lambda ln, r: b"\r",
        "whitespace line": lambda ln, r: b" " * int(r.integers(1, 9)),
        "label empty": lambda ln, r: _field(ln, d, r, lab, b""),
        "label -1": lambda ln, r: _field(ln, d, r, lab, b"-1"),
        "label 2..9": lambda ln, r: _field(ln, d, r, lab, str(int(r.integers(2, 10))).encode()),
        "label text": lambda ln, r: _field(ln, d, r, lab, b"yes"),
        "label decimal": lambda ln, r: _field(ln, d, r, lab, b"1.0"),
        "number lone minus": lambda ln, r: _field(ln, d, r, num, b"-"),
        "number decimal": lambda ln, r: _field(ln, d, r, num, b"3.25"),
        "number too long": lambda ln, r: _field(ln, d, r, num, b"9" * int(r.integers(19, 40))),
        "number text": lambda ln, r: _field(ln, d, r, num, b"n/a"),
        "wrong delimiter": lambda ln, r: ln.replace(d, other),
        "two lines merged": lambda ln, r: ln + ln,
        "line too long": lambda ln, r: _field(ln, d, r, insert=b"x" * int(r.integers(MAX_LINE, 3 * MAX_LINE))),
        "random bytes": lambda ln, r: r.integers(0, 256, int(r.integers(1, 300)), dtype=np.uint8).tobytes().replace(
            b"\n", b"\\"),
        "random byte flips": lambda ln, r: _flip(ln, r),
        "CR before CRLF": lambda ln, r: ln + b"\r\r",
    }
    if "hour" in schema.derived:
        kinds.update({
            "hour 24..99": lambda ln, r: _field(ln, d, r, 2, b"141021%02d" % int(r.integers(24, 100))),
            "month 13": lambda ln, r: _field(ln, d, r, 2, b"14130100"),
            "30 February": lambda ln, r: _field(ln, d, r, 2, b"14023000"),
            "header repeated": lambda ln, r: ",".join(schema.columns).encode(),
        })
    return kinds


def _flip(line: bytes, rng) -> bytes:
    b = bytearray(line)
    for i in rng.integers(0, len(b), 3):
        b[i] = int(rng.integers(0, 256))
    return bytes(b).replace(b"\n", b"#")


GOOD_VARIANTS = {  # odd but valid: must be kept
    "CRLF ending": lambda ln, d, r: ln + b"\r",
    "unicode value": lambda ln, d, r: _field(ln, d, r, len(ln.split(d)) - 1, "ü€😀".encode()),
    "quoted value": lambda ln, d, r: _field(ln, d, r, len(ln.split(d)) - 1, b'"q"'),
}


# -- the corpus -----------------------------------------------------------------------------------------------
def _good_rows(schema: Schema, tmp_path: Path) -> list[bytes]:
    if schema is CRITEO:
        real = SHARED / "criteo" / "criteo_train_head10k.txt"
        if real.exists():
            return real.read_bytes().split(b"\n")[:-1]
        return write_criteo_text(tmp_path / "syn.txt", SyntheticSpec(rows=6000, seed=9)).read_bytes().split(b"\n")[:-1]
    real = SHARED / "avazu" / "avazu_train_head5000.csv"
    if real.exists():
        return real.read_bytes().split(b"\n")[1:-1]
    rng = np.random.default_rng(3)
    return [",".join([str(rng.integers(10**18)), str(rng.integers(2)), f"141021{rng.integers(24):02d}",
                      *(f"{rng.integers(50):x}" for _ in range(21))]).encode() for _ in range(5000)]


def build_corpus(schema: Schema, tmp_path: Path, seed: int = 0) -> tuple[list[bytes], dict[str, int]]:
    """Good rows with PER_KIND lines of every corruption kind (and some odd-but-good lines) at random places."""
    rng = np.random.default_rng(seed)
    good = _good_rows(schema, tmp_path)
    d = schema.delimiter.encode()
    made, kinds = [], Counter()
    for name, corrupt in corruptions(schema).items():
        for _ in range(PER_KIND):
            made.append(corrupt(good[int(rng.integers(len(good)))], rng))
            kinds[name] += 1
    for corrupt in GOOD_VARIANTS.values():
        made += [corrupt(good[int(rng.integers(len(good)))], d, rng) for _ in range(PER_KIND)]
    lines = list(good)
    for line in made:
        lines.insert(int(rng.integers(len(lines) + 1)), line)
    if schema.header:
        lines.insert(0, ",".join(schema.columns).encode())
    return lines, kinds


def _compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, compresslevel=1)
    if how == "bz2":
        return bz2.compress(data, compresslevel=1)
    if how == "zstd":
        sink = pa.BufferOutputStream()
        with pa.CompressedOutputStream(sink, "zstd") as out:
            out.write(data)
        return sink.getvalue().to_pybytes()
    return data


@pytest.mark.parametrize("schema", [CRITEO, AVAZU], ids=["criteo", "avazu"])
def test_fuzz_corpus(tmp_path, capsys, schema):
    lines, kinds = build_corpus(schema, tmp_path)
    assert len(kinds) >= 20 and sum(kinds.values()) >= 1000  # the bar: 1,000 lines of 20 kinds
    first = 2 if schema.header else 1
    expected = {k + first: reference(line, schema) for k, line in enumerate(lines[first - 1:])}
    bad = {ln: why for ln, why in expected.items() if why is not None}
    assert len(bad) >= 1000
    text = b"\n".join(lines) + b"\n"
    # labels of the good lines in file order, per split: what prepare must write
    good_lines = np.array(sorted(set(expected) - set(bad))) - 1  # 0-based
    good_labels = np.array([int(lines[k].split(schema.delimiter.encode())[schema.columns.index(schema.label)])
                            for k in good_lines], dtype=np.uint8)
    split = split_of_lines(good_lines, seed=0)
    # default blocks, and blocks of 40 KiB: smaller than the long lines, cut anywhere in a line
    for how, block in [("plain", None), ("plain", "40000"), ("gzip", "40000"), ("zstd", None), ("bz2", None)]:
        src = tmp_path / f"corpus-{how}-{block}.dat"
        src.write_bytes(_compress(text, how))
        out, rejects = tmp_path / f"out-{how}-{block}", tmp_path / f"rejects-{how}-{block}.tsv"
        argv = ["ctr", "prepare", "--dataset", schema.name, "--input", str(src), "--out", str(out), "--quiet",
                "--rejects", str(rejects), "--max-line-bytes", str(MAX_LINE)]
        code = cli.main(argv + (["--block-bytes", block] if block else []))
        captured = capsys.readouterr()
        assert code == 0 and "Traceback" not in captured.err, captured.err
        reported = {}
        for row in rejects.read_bytes().split(b"\n")[1:-1]:
            number, reason, _ = row.split(b"\t", 2)
            reported[int(number)] = reason.decode()
        assert set(reported) == set(bad), f"{how}/{block}: lines reported differ"
        wrong = {ln: (reported[ln], bad[ln]) for ln in bad if bad[ln] not in reported[ln]}
        assert not wrong, f"{how}/{block}: reasons differ on {len(wrong)} lines, e.g. {list(wrong.items())[:3]}"
        for k, s in enumerate(SPLITS):
            assert np.array_equal(np.load(out / f"{s}_labels.npy", allow_pickle=False), good_labels[split == k])
        manifest = __import__("json").loads((out / "manifest.json").read_text())
        assert [b["line"] for b in manifest["first_bad_lines"]] == sorted(bad)[:10]
        assert sum(manifest["bad_lines_by_reason"].values()) == len(bad) == manifest["bad_lines"]
        assert manifest["lines"] == len(lines)
    # --strict stops at the first bad line of the file and names it
    code = cli.main(["ctr", "prepare", "--dataset", schema.name, "--input", str(tmp_path / "corpus-plain-None.dat"),
                     "--out", str(tmp_path / "strict"), "--quiet", "--strict", "--max-line-bytes", str(MAX_LINE)])
    err = capsys.readouterr().err
    line = min(bad)
    assert code == 2 and f"corpus-plain-None.dat:{line}: " in err and err.count("\n") == 1, err
