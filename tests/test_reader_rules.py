"""The reader's rules, one line each: which lines are rejected (and why), which are kept (and as what).

Each table row is one line of a small file read by BlockReader; the expected outcome is written
by hand from the documented rules, not computed by the reader's code.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import os
import zlib

import numpy as np
import pyarrow as pa
import pytest

from lptsim.ctr.data.reader import BlockReader
from lptsim.ctr.data.schema import AVAZU, CRITEO, DataFormatError
from lptsim.ctr.data.transforms import MISSING, hash_binary

MAX_LINE = 4096  # a small limit keeps the long-line cases cheap; the rule does not depend on its size

GOOD_INTS = [str(i) for i in range(13)]
GOOD_CATS = [f"{i:08x}" for i in range(26)]


def criteo(label: str = "1", ints: list[str] | None = None, cats: list[str] | None = None, end: bytes = b"") -> bytes:
    return "\t".join([label, *(ints or GOOD_INTS), *(cats or GOOD_CATS)]).encode("utf-8", "surrogateescape") + end


def with_int(k: int, value: str) -> list[str]:
    ints = list(GOOD_INTS)
    ints[k] = value
    return ints


def with_cat(k: int, value: str) -> list[str]:
    cats = list(GOOD_CATS)
    cats[k] = value
    return cats


def raw_cat(k: int, value: bytes) -> bytes:
    """A Criteo line whose categorical field ``k`` holds raw ``value`` bytes."""
    fields = criteo().split(b"\t")
    fields[1 + 13 + k] = value
    return b"\t".join(fields)


AVAZU_GOOD = ["1000009418151094273", "0", "14102100", "1005", "0", "1fbe01fe", "f3845767", "28905ebd", "ecad2386",
              "7801e8d9", "07d7df22", "a99f214a", "ddd2926e", "44956a24", "1", "2", "15706", "320", "50", "1722", "0",
              "35", "-1", "79"]


def avazu(**changes: str) -> bytes:
    row = dict(zip(AVAZU.columns, AVAZU_GOOD, strict=True))
    row.update(changes)
    return ",".join(row[c] for c in AVAZU.columns).encode()


LABEL, FIELDS, EMPTY, NUL, UTF8, CR, LONG = ("label is not 0 or 1", "wrong number of fields", "empty line",
                                             "NUL byte", "invalid UTF-8", "carriage return", "longer than")

CRITEO_RULES = [  # (case, line without its newline, reason or None for a kept line)
    ("label empty", criteo(label=""), LABEL),
    ("label -1", criteo(label="-1"), LABEL),
    ("label 2", criteo(label="2"), LABEL),
    ("label 1.0", criteo(label="1.0"), LABEL),
    ("label with a space", criteo(label=" 1"), LABEL),
    ("label text", criteo(label="yes"), LABEL),
    ("label lone minus", criteo(label="-"), LABEL),
    ("integer text", criteo(ints=with_int(0, "abc")), "numeric field I1 is not an integer"),
    ("integer lone minus", criteo(ints=with_int(4, "-")), "numeric field I5 is not an integer"),
    ("integer double minus", criteo(ints=with_int(4, "--1")), "numeric field I5 is not an integer"),
    ("integer plus sign", criteo(ints=with_int(1, "+3")), "numeric field I2 is not an integer"),
    ("integer decimal", criteo(ints=with_int(2, "1.5")), "numeric field I3 is not an integer"),
    ("integer exponent", criteo(ints=with_int(2, "1e5")), "numeric field I3 is not an integer"),
    ("integer with a space", criteo(ints=with_int(12, " 7")), "numeric field I13 is not an integer"),
    ("integer of 19 digits", criteo(ints=with_int(3, "1" * 19)), "numeric field I4 is not an integer"),
    ("first bad integer named", criteo(ints=with_int(5, "x")[:7] + ["y"] + GOOD_INTS[8:]),
     "numeric field I6 is not an integer"),
    ("39 fields", b"\t".join(criteo().split(b"\t")[:-1]), FIELDS),
    ("41 fields (trailing tab)", criteo() + b"\t", FIELDS),
    ("comma-separated", criteo().replace(b"\t", b","), FIELDS),
    ("spaces only", b"   ", FIELDS),
    ("empty line", b"", EMPTY),
    ("CR only (empty CRLF line)", b"\r", EMPTY),
    ("NUL in a field", raw_cat(3, b"ab\x00cd"), NUL),
    ("UTF-16 text", criteo().decode().encode("utf-16-le"), NUL),
    ("invalid byte 0xff", raw_cat(0, b"\xffabc"), UTF8),
    ("truncated UTF-8 sequence", raw_cat(0, b"ab\xe2\x82"), UTF8),
    ("overlong UTF-8 encoding", raw_cat(0, b"\xc0\xaf"), UTF8),
    ("UTF-8 surrogate", raw_cat(0, b"\xed\xa0\x80"), UTF8),
    ("CR inside a field", raw_cat(5, b"ab\rcd"), CR),
    ("CR at the start", b"\r" + criteo(), CR),
    ("CR inside and a CRLF end", raw_cat(5, b"ab\rcd") + b"\r", CR),
    ("NUL before a CR: first rule wins", raw_cat(1, b"\x00") + b"\t\r", NUL),
    ("line longer than the limit", raw_cat(0, b"a" * MAX_LINE), LONG),
    ("line one byte over the limit", None, LONG),  # built below: len == MAX_LINE + 1
    ("BOM at the start of a line", "\ufeff".encode() + criteo(), LABEL),
    # kept lines
    ("label 0", criteo(label="0"), None),
    ("label 1", criteo(label="1"), None),
    ("every integer missing", criteo(ints=[""] * 13), None),
    ("every category missing", criteo(cats=[""] * 26), None),
    ("negative integer", criteo(ints=with_int(1, "-3")), None),
    ("leading zeros", criteo(ints=with_int(1, "007")), None),
    ("integer of 18 digits", criteo(ints=with_int(3, "9" * 18)), None),
    ("CRLF ending", criteo(end=b"\r"), None),
    ("unicode category", criteo(cats=with_cat(2, "é€😀")), None),
    ("BOM character inside a category", criteo(cats=with_cat(2, "a\ufeffb")), None),
    ("quotes kept literally", criteo(cats=with_cat(4, '"a,b"')), None),
    ("other control characters", raw_cat(6, b"\x1b\x7f\x0b\x0c"), None),
    ("line exactly at the limit", None, None),  # built below: len == MAX_LINE
]

AVAZU_RULES = [
    ("hour 24", avazu(hour="14102124"), "hour is not a YYMMDDHH date and hour"),
    ("October 32", avazu(hour="14103200"), "hour is not a YYMMDDHH date and hour"),
    ("month 13", avazu(hour="14130100"), "hour is not a YYMMDDHH date and hour"),
    ("day 0", avazu(hour="14100000"), "hour is not a YYMMDDHH date and hour"),
    ("29 February 2014", avazu(hour="14022900"), "hour is not a YYMMDDHH date and hour"),
    ("hour of 7 digits", avazu(hour="1410210"), "hour is not a YYMMDDHH date and hour"),
    ("hour of 9 digits", avazu(hour="141021000"), "hour is not a YYMMDDHH date and hour"),
    ("hour negative", avazu(hour="-14102100"), "hour is not a YYMMDDHH date and hour"),
    ("hour empty", avazu(hour=""), "hour is not a YYMMDDHH date and hour"),
    ("hour text", avazu(hour="2014-10-21"), "hour is not a YYMMDDHH date and hour"),
    ("label -1", avazu(click="-1"), "label (click) is not 0 or 1"),
    ("label empty", avazu(click=""), "label (click) is not 0 or 1"),
    ("a header line again", ",".join(AVAZU.columns).encode(), "label (click) is not 0 or 1"),
    ("label checked before hour", avazu(click="x", hour="x"), "label (click) is not 0 or 1"),
    ("23 fields", avazu().rsplit(b",", 1)[0], FIELDS),
    ("tab-separated", avazu().replace(b",", b"\t"), FIELDS),
    ("CR in the dropped id column", avazu(id="12\r34"), CR),
    # kept lines
    ("29 February 2016", avazu(hour="16022900"), None),
    ("31 December, hour 23", avazu(hour="14123123"), None),
    ("dropped id column may hold anything textual", avazu(id="not a number"), None),
    ("negative category", avazu(C20="-1"), None),
    ("CRLF ending", avazu() + b"\r", None),
]


def _read(tmp_path, schema, lines: list[bytes], name="f.txt", header: bytes | None = None, **kw):
    """Read ``lines`` (each followed by a newline, between good lines) -> ({line: reason}, {line: kept row})."""
    good = criteo() if schema is CRITEO else avazu()
    body = [header] if header is not None else []
    for line in lines:
        body += [good, line]
    body.append(good)
    path = tmp_path / name
    path.write_bytes(b"\n".join(body) + b"\n")
    reader = BlockReader(path, schema, max_line_bytes=MAX_LINE, **kw)
    reader.bad.keep = len(body)  # report them all
    kept = {}
    for block in reader:
        for k, line in enumerate(block.lines.tolist()):
            kept[line + 1] = (int(block.labels[k]), block.values[:, k])
    rejected = {ln: reason for ln, reason in reader.bad.first}
    assert reader.bad.count == len(rejected)
    return reader, rejected, kept, len(body)


def _table(rules):
    """The rules with the lines of exactly MAX_LINE and MAX_LINE + 1 bytes filled in."""
    at_limit = raw_cat(0, b"a" * (MAX_LINE - len(criteo()) + 8))
    assert len(at_limit) == MAX_LINE
    sized = {"line exactly at the limit": at_limit, "line one byte over the limit": at_limit + b"a"}
    return [(case, sized.get(case, line), reason) for case, line, reason in rules]


def _check(tmp_path, schema, rules, header=None):
    offset = 1 if header is not None else 0
    reader, rejected, kept, n_lines = _read(tmp_path, schema, [line for _, line, _ in rules], header=header)
    got, want = {}, {}
    for k, (case, _, reason) in enumerate(rules):
        line = offset + 2 * k + 2  # 1-based: good, case, good, case, ..., good
        want[case] = reason
        got[case] = rejected.get(line)
        if reason is not None and got[case] is not None and reason in got[case]:
            got[case] = reason  # the expected text is a part of the full reason
    assert got == want
    assert reader.lines_read == n_lines
    assert len(kept) == n_lines - offset - sum(r is not None for _, _, r in rules)
    return kept


def test_criteo_rules_one_line_each(tmp_path):
    rules = _table(CRITEO_RULES)
    kept = _check(tmp_path, CRITEO, rules)
    # Kept lines are read as what they say: check a few values against independent expectations.
    line_of = {case: 2 * k + 2 for k, (case, _, _) in enumerate(rules)}
    label, values = kept[line_of["label 0"]]
    assert label == 0
    assert kept[line_of["negative integer"]][1][1] == -3  # v <= 2 is kept as is
    assert kept[line_of["leading zeros"]][1][1] == int(np.floor(np.log(7) ** 2))  # 007 == 7, bucketed
    assert (kept[line_of["every integer missing"]][1][:13] == MISSING).all()
    assert (kept[line_of["every category missing"]][1][13:] == MISSING).all()
    crlf = kept[line_of["CRLF ending"]][1]
    assert crlf[-1] == hash_binary(pa.array([GOOD_CATS[-1].encode()]))[0]  # the CR is not part of the last field
    uni = kept[line_of["unicode category"]][1]
    assert uni[13 + 2] == hash_binary(pa.array(["é€😀".encode()]))[0]


def test_avazu_rules_one_line_each(tmp_path):
    kept = _check(tmp_path, AVAZU, _table(AVAZU_RULES), header=",".join(AVAZU.columns).encode())
    hours = [v[-3:] for _, v in kept.values()]
    assert [0, 1, 0] in [h.tolist() for h in hours]  # 21 Oct 2014 00h: hour 0, Tuesday, weekday


@pytest.mark.parametrize("schema, rules", [(CRITEO, CRITEO_RULES), (AVAZU, AVAZU_RULES)], ids=["criteo", "avazu"])
def test_each_rule_alone_between_good_lines(tmp_path, schema, rules):
    """Alone, a line is judged in a block of its own kind: clean blocks take the reader's fast path."""
    got, want = {}, {}
    for case, line, reason in _table(rules):
        _, rejected, kept, n_lines = _read(tmp_path, schema, [line])
        want[case] = reason
        got[case] = next((reason for r in rejected.values() if reason and reason in r), rejected.get(2))
        assert len(kept) == n_lines - (reason is not None), case
    assert got == want


def test_a_line_starting_with_a_bom_reads_the_same_at_a_block_start(tmp_path):
    """pyarrow drops a BOM at the start of its input; a mid-file BOM must not depend on where blocks are cut."""
    lines = [criteo(), "\ufeff".encode() + criteo(), criteo()]
    path = tmp_path / "b.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    for block_bytes in (len(lines[0]) + 1, 1 << 20):  # the BOM line starts a block / is inside one
        reader = BlockReader(path, CRITEO, block_bytes=block_bytes)
        assert sum(b.labels.size for b in reader) == 2 and reader.bad.first == [(2, LABEL)], block_bytes


# Run in a child process: the peak resident size of a fresh process is the reader's alone, whatever other tests
# loaded before, and a crash there fails one test instead of taking down a test worker. (tracemalloc measured this
# in the worker before: its peak counted one-time imports when the test ran first, and on Python 3.11 stopping it
# while other threads allocate can crash the process, CPython gh-128679.)
_PEAK_CHILD = r"""
import json, re, sys
from lptsim.ctr.data.reader import BlockReader
from lptsim.ctr.data.schema import CRITEO

small, huge, max_line = sys.argv[1], sys.argv[2], int(sys.argv[3])
def read(path):
    reader = BlockReader(path, CRITEO, block_bytes=1 << 20, max_line_bytes=max_line)
    rows = sum(b.labels.size for b in reader)
    return rows, reader.bad.first
def peak_kib():  # VmHWM: this process's peak resident size since exec (ru_maxrss keeps the parent's across exec)
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))
read(small)  # the same code paths once, on a small file: imports, JIT loads and pools settle before the measure
before = peak_kib()
rows, bad = read(huge)
print(json.dumps({"rows": int(rows), "bad": bad, "peak_rise": (peak_kib() - before) << 10}))
"""


def _peak_rise_reading(tmp_path, max_line: int) -> dict:
    """Read a file whose line 2 is 48 MiB in a fresh process; how far its peak resident size rose during the read."""
    import json
    import subprocess
    import sys

    huge, small = tmp_path / "huge.txt", tmp_path / "small.txt"
    if not huge.exists():
        with open(huge, "wb") as f:
            f.write(criteo() + b"\n")
            for _ in range(48):
                f.write(b"y" * (1 << 20))
            f.write(b"\n" + criteo() + b"\n")
        small.write_bytes(criteo() + b"\n" + b"y" * (128 << 10) + b"\n" + criteo() + b"\n")
    proc = subprocess.run([sys.executable, "-c", _PEAK_CHILD, str(small), str(huge), str(max_line)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak resident size from /proc (Linux)")
def test_a_line_of_any_length_is_skipped_in_bounded_memory(tmp_path):
    out = _peak_rise_reading(tmp_path, max_line=64 << 10)
    assert out["rows"] == 2 and out["bad"] == [[2, "line longer than 65,536 bytes"]]
    # a bound in blocks (1 MiB), not in the line's length: the carried remainder, the new block and their join, the
    # parser's buffers, allocator rounding. 16 blocks is 3x below the 48 MiB line (6.1-8.1 MiB in 5 runs here).
    assert out["peak_rise"] < 16 << 20, out
    # the control: a limit above the line's length makes the reader hold the whole line, and the measure sees it
    held = _peak_rise_reading(tmp_path, max_line=64 << 20)
    assert held["rows"] == 2 and held["peak_rise"] > 48 << 20, held


def test_header_line_is_skipped_and_counted(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"\n".join([",".join(AVAZU.columns).encode(), avazu(), avazu(click="7"), avazu()]) + b"\n")
    reader = BlockReader(path, AVAZU)
    rows = sum(b.labels.size for b in reader)
    assert reader.header and rows == 2 and reader.lines_read == 4 and reader.bad.first == [(3, LABEL.replace(
        "label", "label (click)"))]


def test_missing_header_reads_line_one_as_data(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"\n".join([avazu(), avazu(), avazu()]) + b"\n")
    reader = BlockReader(path, AVAZU)
    assert sum(b.labels.size for b in reader) == 3 and not reader.header
    assert any("not the avazu header" in w for w in reader.warnings)


def test_header_columns_in_another_order_are_refused(tmp_path):
    cols = list(AVAZU.columns)
    cols[1], cols[2] = cols[2], cols[1]
    path = tmp_path / "a.csv"
    path.write_bytes(b"\n".join([",".join(cols).encode(), avazu()]) + b"\n")
    with pytest.raises(DataFormatError, match="another order"):
        BlockReader(path, AVAZU)


def test_bom_crlf_and_no_final_newline(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"\xef\xbb\xbf" + criteo(label="0", end=b"\r\n") + criteo(end=b"\r\n") + criteo(label="0"))
    reader = BlockReader(path, CRITEO)
    labels = np.concatenate([b.labels for b in reader])
    assert labels.tolist() == [0, 1, 0] and reader.bad.count == 0 and reader.lines_read == 3


@pytest.mark.parametrize("block_bytes", [64, 1000, 1 << 20])
def test_lines_longer_than_the_limit_cost_one_bad_line_each(tmp_path, block_bytes):
    """Long lines inside a block, across blocks, first and last in the file, longer than the block."""
    long = raw_cat(0, b"z" * (3 * MAX_LINE))
    lines = [long, criteo(), criteo(), long, criteo(), long]
    path = tmp_path / "l.txt"
    path.write_bytes(b"\n".join(lines))  # the last (long) line has no newline
    reader = BlockReader(path, CRITEO, block_bytes=block_bytes, max_line_bytes=MAX_LINE)
    lines_kept = np.concatenate([b.lines for b in reader]) + 1
    assert lines_kept.tolist() == [2, 3, 5]
    assert [ln for ln, _ in reader.bad.first] == [1, 4, 6] and reader.bad.by_reason == {
        f"line longer than {MAX_LINE:,} bytes": 3}


def test_first_bad_lines_are_the_first_in_file_order(tmp_path):
    """Rules are applied one after another; the report must still list the first lines of the file."""
    lines = [criteo()] * 30
    bad_at = {25: criteo(label="7"), 3: criteo(ints=with_int(0, "x")), 12: b"", 7: raw_cat(0, b"\xff"),
              18: criteo() + b"\t", 9: criteo(label="")}
    for k, line in bad_at.items():
        lines[k - 1] = line
    path = tmp_path / "o.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    reader = BlockReader(path, CRITEO)
    reader.bad.keep = 4
    list(reader)
    assert [ln for ln, _ in reader.bad.first] == [3, 7, 9, 12]
    assert reader.bad.count == 6 and sum(reader.bad.by_reason.values()) == 6
    strict = BlockReader(path, CRITEO, strict=True)
    with pytest.raises(DataFormatError, match=r"o\.txt:3: numeric field I1 is not an integer"):
        list(strict)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, "zstd"])
def test_compressed_input_is_detected_by_its_bytes(tmp_path, compress):
    text = b"".join(criteo(label=str(i % 2), end=b"\n") for i in range(200)) + criteo(label="5", end=b"\n")
    if compress == "zstd":
        if not pa.Codec.is_available("zstd"):
            pytest.skip("pyarrow without zstd")
        data = _zstd_frame(text)
    else:
        data = compress(text)
    path = tmp_path / "data.txt"  # the name says nothing about the compression
    path.write_bytes(data)
    reader = BlockReader(path, CRITEO, block_bytes=1000)
    labels = np.concatenate([b.labels for b in reader])
    assert labels.tolist() == [i % 2 for i in range(200)]
    assert reader.bad.first == [(201, LABEL)] and reader.compression is not None
    assert reader.sha256 == hashlib.sha256(data).hexdigest()  # the file's own hash, compressed


def _zstd_frame(text: bytes) -> bytes:
    """A standard zstd frame (pyarrow's codec writes one) of ``text``."""
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(text)
    return sink.getvalue().to_pybytes()


def test_truncated_gzip_keeps_the_lines_before_and_reports_the_damage(tmp_path):
    text = b"".join(criteo(label=str(i % 2), end=b"\n") for i in range(3000))
    data = gzip.compress(text)
    path = tmp_path / "t.gz"
    path.write_bytes(data[: len(data) // 2])
    decodable = zlib.decompressobj(31).decompress(data[: len(data) // 2])  # what zlib can still decode
    whole_lines = decodable.count(b"\n")
    reader = BlockReader(path, CRITEO, block_bytes=4096)
    rows = sum(b.labels.size for b in reader)
    # every whole line is kept but those in the codec's last read (16 KiB) before the damage
    assert whole_lines - (16 << 10) // len(criteo()) - 1 <= rows < whole_lines + 1
    line, reason = reader.bad.first[-1]
    assert line == reader.lines_read and "cannot be read from this line on" in reason and "truncated" in reason
    assert any("cannot be read" in w for w in reader.warnings)
    with pytest.raises(DataFormatError, match=r"t\.gz:\d+: the file cannot be read"):
        list(BlockReader(path, CRITEO, block_bytes=4096, strict=True))


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"PK\x03\x04rest of a zip", "zip archive"),
    (b"\xff\xfe1\x00\t\x00", "UTF-16"),
    (b"PAR1xxxx", "Parquet"),
    (b"a,b,c\n1,2,3\n", "does not look like criteo data"),
    (b"\n".join([criteo()] * 2 + [b"1,2,3"] * 3) + b"\n", "2 of 5 sampled lines have 40 tab-separated fields"),
    ("\n".join(",".join(AVAZU_GOOD) for _ in range(5)).encode(), "is it avazu data"),
    (bytes(range(256)) * 40, "does not look like text"),
])
def test_files_that_are_not_criteo_text(tmp_path, content, message):
    path = tmp_path / "x.txt"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=message) as err:
        BlockReader(path, CRITEO)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
    assert str(err.value).isascii() and str(err.value).isprintable()  # no raw binary bytes in the message


def test_a_folder_or_a_missing_file_is_named_as_such(tmp_path):
    with pytest.raises(DataFormatError, match="is a folder"):
        BlockReader(tmp_path, CRITEO)
    with pytest.raises(DataFormatError, match="no such file"):
        BlockReader(tmp_path / "nope.txt", CRITEO)


def test_sniffing_uses_a_sample_not_the_first_line(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"garbage first line\n" + b"\n".join(criteo() for _ in range(50)) + b"\n")
    reader = BlockReader(path, CRITEO)
    assert sum(b.labels.size for b in reader) == 50 and reader.bad.first[0][0] == 1


def test_a_block_pyarrow_splits_differently_is_read_line_by_line(tmp_path, monkeypatch):
    """The byte rules leave pyarrow nothing to split differently; if it ever did, no good line may be lost."""
    real = BlockReader._read_table

    def disagreeing(self, data, on_invalid):
        if b"SPLITME" in data:
            on_invalid(None)  # as if pyarrow had found a row it could not read
        return real(self, data, on_invalid)

    monkeypatch.setattr(BlockReader, "_read_table", disagreeing)
    lines = [criteo(label="0"), criteo(cats=with_cat(0, "SPLITME")), criteo(label="7"), criteo(), b""]
    path = tmp_path / "s.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    reader = BlockReader(path, CRITEO)
    blocks = list(reader)
    assert np.concatenate([b.lines for b in blocks]).tolist() == [0, 3]
    assert np.concatenate([b.labels for b in blocks]).tolist() == [0, 1]
    assert reader.bad.first == [(2, "cannot be split into fields"), (3, LABEL), (5, EMPTY)]
