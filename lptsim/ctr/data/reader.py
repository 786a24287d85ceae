"""Stream a raw CTR file in blocks and turn each block into labels + int64 raw feature values.

Any byte sequence is either a kept row or a reported bad line with its true 1-based line number.
A line is bad for the first of these reasons that applies (the order of ``BlockReader.reasons``):
longer than ``max_line_bytes``; empty; a NUL byte; invalid UTF-8; a carriage return inside it
(a CR just before the newline is a CRLF ending and fine); a wrong number of fields; a label
other than 0/1; a numeric field that is not an integer (optional minus, 1-18 digits); a derived
field that is not valid (Avazu's ``hour``: a real YYMMDDHH date and hour). A damaged compressed
stream ends the file as one more bad line.

Blocks are parsed by pyarrow's CSV reader. A block with none of the byte-level problems
(checked with a few C-speed scans) is parsed as is; otherwise the line layout is worked out
with numpy, the bad lines are dropped and the rest parsed. Memory stays bounded by the block
size (and ``max_line_bytes``) whatever the file or line size.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from lptsim.ctr.data import transforms
from lptsim.ctr.data.pieces import Broken, Layout, Overlong, line_of, pieces
from lptsim.ctr.data.schema import SCHEMAS, DataFormatError, Schema
from lptsim.ctr.data.source import UTF8_BOM, Source, read_head

BLOCK_BYTES = 32 << 20
MAX_LINE_BYTES = 1 << 20
SNIFF_BYTES = 1 << 20
SNIFF_LINES = 2000
_DELIMITER_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", " ": "space"}


@dataclass
class BadLines:
    """Count of skipped lines, the count per reason, and the first ``keep`` (line number, reason) in file order."""

    count: int = 0
    by_reason: Counter = field(default_factory=Counter)
    first: list[tuple[int, str]] = field(default_factory=list)
    keep: int = 10

    def add(self, lines: np.ndarray, reason: str) -> None:
        """Record 1-based ``lines`` (ascending) that broke ``reason``."""
        if lines.size == 0:
            return
        self.count += int(lines.size)
        self.by_reason[reason] += int(lines.size)
        self.first = heapq.nsmallest(self.keep, self.first + [(int(x), reason) for x in lines[: self.keep]])


@dataclass
class Block:
    """Parsed rows of one block: labels (n,), raw feature values field-major (fields, n), 0-based lines (n,)."""

    labels: np.ndarray
    values: np.ndarray
    lines: np.ndarray


class BlockReader:
    """Reads ``path`` with ``schema``; iterate for :class:`Block` objects, then read ``bad``, ``warnings``,
    ``lines_read`` and ``sha256``.

    ``strict``: stop at the first bad line of the file (``DataFormatError`` naming ``file:line: reason``).
    ``rejects``: a binary file to which every bad line is written as ``line<TAB>reason<TAB>text``.
    """

    def __init__(self, path: str | Path, schema: Schema, strict: bool = False, block_bytes: int = BLOCK_BYTES,
                 max_line_bytes: int = MAX_LINE_BYTES, rejects: BinaryIO | None = None,
                 other_format: Callable[[str], str] | None = None):
        if block_bytes < 1 or max_line_bytes < 2:
            raise ValueError(f"block_bytes must be >= 1 and max_line_bytes >= 2, got {block_bytes}, "
                             f"{max_line_bytes}")
        # what to do about rows that look like another dataset's (its name -> a hint); prepare's by default
        self.other_format = other_format or (lambda other: f"--dataset {other}")
        self.path, self.schema, self.strict = Path(path), schema, strict
        self.block_bytes, self.max_line_bytes, self.rejects = block_bytes, max_line_bytes, rejects
        self.source = Source(self.path)  # validates the path: a readable, non-empty file in a known format
        self.compression = self.source.compression
        self.bad = BadLines()
        self.warnings: list[str] = []
        self.lines_read = 0
        self.expected_delims = len(schema.columns) - 1
        self.reasons = {
            "long": f"line longer than {max_line_bytes:,} bytes",
            "empty": "empty line",
            "nul": "NUL byte in the line",
            "utf8": "invalid UTF-8",
            "cr": "carriage return inside the line",
            "fields": f"wrong number of fields (expected {len(schema.columns)})",
            "label": "label is not 0 or 1" if schema.label == "label" else f"label ({schema.label}) is not 0 or 1",
        }
        self.header = self._sniff(read_head(self.path, SNIFF_BYTES))  # line 1 is the schema's header

    @property
    def sha256(self) -> str:
        return self.source.sha256

    @property
    def bytes_read(self) -> int:
        """Raw (compressed) bytes read so far, for progress bars."""
        return self.source.raw_bytes_read

    # -- format sniffing -------------------------------------------------------------------------------------
    def _sniff(self, head: bytes) -> bool:
        """Check that a sample of lines looks like the schema's format; return whether line 1 is the header."""
        if head.startswith(UTF8_BOM):
            head = head[len(UTF8_BOM):]
        lines = head.split(b"\n")
        lines = lines[:-1]  # the last piece is partial (or empty after the final newline)
        if len(head) < SNIFF_BYTES and not head.endswith(b"\n"):
            lines.append(head.rsplit(b"\n", 1)[-1])  # the whole file is in the sample: its last line is whole
        lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
        schema, path = self.schema, self.path
        header = False
        if schema.header and lines:
            names = lines[0].decode("utf-8", errors="replace").split(schema.delimiter)
            header = tuple(names) == schema.columns
            if not header and sorted(names) == sorted(schema.columns):
                raise DataFormatError(f"{path}: line 1 has the {schema.name} columns in another order; lptsim reads "
                                      f"them in the order {','.join(schema.columns)[:200]}")
            if header:
                lines = lines[1:]
            else:
                self.warnings.append(f"line 1 is not the {schema.name} header; it was read as a data line")
        sample = [ln for ln in lines[:SNIFF_LINES] if ln]
        if not sample:
            return header
        d = schema.delimiter.encode()
        fits = sum(ln.count(d) == self.expected_delims for ln in sample)
        if 2 * fits >= len(sample):
            return header
        textual = sum(b"\0" not in ln and _is_utf8(ln) for ln in sample)
        if 2 * textual < len(sample):
            raise DataFormatError(f"{path}: does not look like text: {len(sample) - textual} of {len(sample)} "
                                  "sampled lines hold NUL bytes or invalid UTF-8 (binary data, or an encoding "
                                  "other than UTF-8?)")
        want = f"{len(schema.columns)} {_DELIMITER_NAMES.get(schema.delimiter, repr(schema.delimiter))}-separated"
        msg = f"{path}: does not look like {schema.name} data: {fits} of {len(sample)} sampled lines have {want} fields"
        if schema.header and not header:
            msg = f"{path}: line 1 should be the {schema.name} header, and {fits} of {len(sample)} sampled lines " \
                  f"have {want} fields"
        counts = {c: Counter(ln.count(c.encode()) + 1 for ln in sample) for c in _DELIMITER_NAMES}
        delim, (n_fields, _) = max(((c, cnt.most_common(1)[0]) for c, cnt in counts.items()),
                                   key=lambda item: (item[1][1], item[1][0]))
        if n_fields > 1:
            msg += f"; most have {n_fields} {_DELIMITER_NAMES[delim]}-separated fields"
            others = [s.name for s in SCHEMAS.values() if s.name != schema.name and s.delimiter == delim
                      and len(s.columns) == n_fields]
            if others:
                msg += f" (is it {others[0]} data? {self.other_format(others[0])})"
        raise DataFormatError(msg)

    # -- reading ---------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Block]:
        with self.source:
            for piece in pieces(self.source, self.block_bytes, self.max_line_bytes):
                if isinstance(piece, Overlong):
                    self._report([(np.array([piece.line]), self.reasons["long"])], {piece.line: piece.head})
                    self.lines_read = piece.line + 1
                    continue
                if isinstance(piece, Broken):
                    reason = f"the file cannot be read from this line on: {piece.message}"
                    self._report([(np.array([piece.line]), reason)], {piece.line: b""})
                    self.warnings.append(f"line {piece.line + 1}: {reason}")
                    self.lines_read = piece.line + 1
                    return
                line0, n_lines, buf = piece
                self.lines_read = line0 + n_lines
                if line0 == 0:
                    if buf.startswith(UTF8_BOM):
                        del buf[: len(UTF8_BOM)]
                    if self.header:
                        del buf[: buf.find(b"\n") + 1]
                        line0, n_lines = 1, n_lines - 1
                if n_lines:
                    yield self._parse(buf, line0, n_lines)

    def _read_table(self, data, on_invalid) -> pa.Table:
        schema = self.schema
        if data.startswith(UTF8_BOM):  # pyarrow drops a BOM at the start of its input: not ours to drop mid-file
            dummy = b"0" + schema.delimiter.encode() * (len(schema.columns) - 1) + b"\n"  # a row, then dropped
            return self._read_table(dummy + bytes(data), on_invalid).slice(1)
        return pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(data)),
            read_options=pcsv.ReadOptions(column_names=list(schema.columns), use_threads=True,
                                          block_size=max(1 << 20, 2 * self.max_line_bytes)),
            parse_options=pcsv.ParseOptions(delimiter=schema.delimiter, quote_char=False, ignore_empty_lines=True,
                                            newlines_in_values=False, invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(column_types={c: pa.binary() for c in schema.columns},
                                                strings_can_be_null=False,
                                                include_columns=[c for c in schema.columns if c not in schema.drop]),
        )

    def _clean(self, buf: bytearray) -> bool:
        """True when no line of ``buf`` can break a byte-level rule (a few C-speed scans, no per-line work)."""
        if buf.find(b"\0") >= 0:
            return False  # (empty lines need no scan: pyarrow skips them, so the row count tells)
        if buf.find(b"\r") >= 0 and buf.count(b"\r") != buf.count(b"\r\n"):
            return False
        # A line longer than 2*m holds a whole aligned m-byte window without a newline.
        m = self.max_line_bytes // 2
        if any(buf.find(b"\n", s, s + m) < 0 for s in range(0, len(buf) - m + 1, m)):
            return False
        if np.frombuffer(buf, dtype=np.uint8).max(initial=0) >= 128:
            return _is_utf8(buf)
        return True

    def _parse(self, buf: bytearray, line0: int, n_lines: int) -> Block:
        layout = Layout(buf)
        rejected: list[tuple[np.ndarray, str]] = []
        if self._clean(buf):
            invalid: list[int] = []
            table = self._read_table(buf, lambda row: invalid.append(1) or "skip")
            if not invalid and table.num_rows == n_lines:
                block = self._to_block(table, line0 + np.arange(n_lines), rejected)
                self._report(rejected, layout, line0)
                return block
        keep = self._byte_rules(buf, layout, line0, rejected)
        lines = line0 + np.flatnonzero(keep)
        if keep.all():
            kept = buf
        else:
            lengths = np.diff(np.concatenate([[-1], layout.ends]))
            kept = np.frombuffer(buf, dtype=np.uint8)[np.repeat(keep, lengths)].tobytes()
        if not kept:
            self._report(rejected, layout, line0)
            return Block(np.zeros(0, np.uint8), np.zeros((len(self.schema.feature_names), 0), np.int64), lines)
        invalid = []
        table = self._read_table(kept, lambda row: invalid.append(1) or "skip")
        if invalid or table.num_rows != lines.size:  # not expected after the byte rules; never lose the block
            return self._parse_one_by_one(buf, layout, line0, keep, rejected)
        block = self._to_block(table, lines, rejected)
        self._report(rejected, layout, line0)
        return block

    def _byte_rules(self, buf: bytearray, layout: Layout, line0: int,
                    rejected: list[tuple[np.ndarray, str]]) -> np.ndarray:
        """Apply the byte-level rules in order; return the mask of lines that pass them all."""
        arr = np.frombuffer(buf, dtype=np.uint8)
        ends, starts = layout.ends, layout.starts
        lengths = ends - starts
        crlf = np.zeros(ends.size, dtype=bool)
        crlf[lengths > 0] = arr[ends[lengths > 0] - 1] == 13
        keep = np.ones(ends.size, dtype=bool)

        def rule(bad: np.ndarray, key: str) -> None:
            hit = np.flatnonzero(bad & keep) if bad.dtype == bool else bad[keep[bad]]
            if hit.size:
                rejected.append((line0 + hit, self.reasons[key]))
                keep[hit] = False

        rule(lengths > self.max_line_bytes, "long")
        rule(lengths - crlf == 0, "empty")
        rule(line_of(np.flatnonzero(arr == 0), ends), "nul")
        if arr.max(initial=0) >= 128:
            candidates = line_of(np.flatnonzero(arr >= 128), ends)
            rule(np.array([k for k in candidates if keep[k] and not _is_utf8(buf[starts[k]: ends[k]])],
                          dtype=np.int64), "utf8")
        cr = np.flatnonzero(arr == 13)
        cr = cr[~np.isin(cr, ends[crlf] - 1)]
        rule(line_of(cr, ends), "cr")
        delims = np.flatnonzero(arr == ord(self.schema.delimiter))
        counts = np.searchsorted(delims, ends) - np.searchsorted(delims, starts)
        rule(counts != self.expected_delims, "fields")
        return keep

    def _parse_one_by_one(self, buf: bytearray, layout: Layout, line0: int, keep: np.ndarray,
                          rejected: list[tuple[np.ndarray, str]]) -> Block:
        """Fallback for a block pyarrow splits differently from its lines: parse each line alone."""
        good, bad = [], []
        for k in np.flatnonzero(keep):
            start = 0 if k == 0 else int(layout.ends[k - 1]) + 1
            (good if self._parses_alone(bytes(buf[start: int(layout.ends[k]) + 1])) else bad).append(k)
        if bad:
            rejected.append((line0 + np.asarray(bad, dtype=np.int64), "cannot be split into fields"))
        keep = np.zeros_like(keep)
        keep[good] = True
        lengths = np.diff(np.concatenate([[-1], layout.ends]))
        kept = np.frombuffer(buf, dtype=np.uint8)[np.repeat(keep, lengths)].tobytes()
        lines = line0 + np.asarray(good, dtype=np.int64)
        if not good:
            self._report(rejected, layout, line0)
            return Block(np.zeros(0, np.uint8), np.zeros((len(self.schema.feature_names), 0), np.int64), lines)
        block = self._to_block(self._read_table(kept, lambda row: "skip"), lines, rejected)
        self._report(rejected, layout, line0)
        return block

    def _parses_alone(self, line: bytes) -> bool:
        invalid: list[int] = []
        try:
            return self._read_table(line, lambda row: invalid.append(1) or "skip").num_rows == 1 and not invalid
        except pa.ArrowException:
            return False

    def _to_block(self, table: pa.Table, lines: np.ndarray, rejected: list[tuple[np.ndarray, str]]) -> Block:
        schema = self.schema
        ok = np.ones(table.num_rows, dtype=bool)

        def reject(bad: np.ndarray, reason: str) -> None:
            bad = bad & ok
            if bad.any():
                rejected.append((lines[bad], reason))
                ok[bad] = False

        if schema.label:
            labels, missing, invalid = transforms.integer_column(table.column(schema.label))
            reject(invalid | missing | ((labels != 0) & (labels != 1)), self.reasons["label"])
        else:  # unlabelled rows (Schema.without_label)
            labels = np.zeros(table.num_rows, dtype=np.int64)
        n_fields = len(schema.feature_names)
        values = np.empty((n_fields, table.num_rows), dtype=np.int64)
        j = 0
        for name in schema.numeric:
            ints, missing, invalid = transforms.integer_column(table.column(name))
            reject(invalid, f"numeric field {name} is not an integer")
            transforms.bucket_numeric(ints, missing, out=values[j])
            j += 1
        for name in schema.categorical:
            transforms.hash_binary(table.column(name), out=values[j])
            j += 1
        for name, kind in schema.derived.items():
            ints, missing, invalid = transforms.integer_column(table.column(name))
            if kind == "avazu_hour":
                reject(invalid | missing | ~transforms.is_avazu_hour(ints), f"{name} is not a YYMMDDHH date and hour")
                values[j: j + 3] = transforms.avazu_hour(np.where(ok, ints, 14102100))
                j += 3
        if ok.all():
            return Block(labels=labels.astype(np.uint8), values=values, lines=lines)
        return Block(labels=labels[ok].astype(np.uint8), values=values[:, ok], lines=lines[ok])

    def _report(self, rejected: list[tuple[np.ndarray, str]], texts: Layout | dict[int, bytes],
                line0: int = 0) -> None:
        """Record a block's bad lines in file order (``strict``: stop at the first one)."""
        if not rejected:
            return
        lines = np.concatenate([ln for ln, _ in rejected])
        reasons = np.concatenate([np.full(ln.size, i) for i, (ln, _) in enumerate(rejected)])
        order = np.argsort(lines, kind="stable")
        if self.strict:
            k = order[0]
            raise DataFormatError(f"{self.path}:{int(lines[k]) + 1}: {rejected[reasons[k]][1]} "
                                  "(--strict stops at the first bad line)")
        for ln, reason in rejected:
            self.bad.add(np.sort(ln) + 1, reason)
        if self.rejects is not None:
            out = []
            for k in order:
                line = int(lines[k])
                text = texts[line] if isinstance(texts, dict) else texts.text(line - line0)
                out.append(b"%d\t%s\t%s\n" % (line + 1, rejected[reasons[k]][1].encode(), text))
            self.rejects.write(b"".join(out))


def _is_utf8(data: bytes | bytearray) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
