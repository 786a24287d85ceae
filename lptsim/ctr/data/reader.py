"""Stream a raw CTR file in blocks and turn each block into labels + int64 raw feature values.

Malformed lines (wrong field count, undecodable bytes, a label other than 0/1, a numeric
field that is not an integer) are dropped and reported with their 1-based line numbers.
Blocks are parsed by pyarrow's CSV reader; line bookkeeping is done with numpy, so
memory stays bounded by the block size whatever the file size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from lptsim.ctr.data import transforms
from lptsim.ctr.data.schema import DataFormatError, Schema

BLOCK_BYTES = 32 << 20


@dataclass
class BadLines:
    """Count of skipped lines and the first few (line number, reason)."""

    count: int = 0
    first: list[tuple[int, str]] = field(default_factory=list)
    keep: int = 10

    def add(self, lines: np.ndarray, reason: str) -> None:
        self.count += int(lines.size)
        for line in lines[: max(self.keep - len(self.first), 0)]:
            self.first.append((int(line), reason))
        self.first.sort()


@dataclass
class Block:
    """Parsed rows of one block: labels (n,), raw feature values field-major (fields, n), 0-based lines (n,)."""

    labels: np.ndarray
    values: np.ndarray
    lines: np.ndarray


def _raw_blocks(path: Path, reader: BlockReader) -> Iterator[tuple[int, int, bytes]]:
    """Yield (0-based number of the block's first line, its line count, bytes ending at a newline).

    A block's trailing partial line is read again at the start of the next block (seek back),
    so no block is ever concatenated from pieces.
    """
    line0 = 0
    size = reader.block_bytes
    with open(path, "rb") as f:
        while True:
            chunk = f.read(size)
            if not chunk:
                break
            cut = chunk.rfind(b"\n") + 1
            if len(chunk) == size and cut < len(chunk):  # not at the end of the file
                if cut == 0:  # a line longer than the block: read a bigger block
                    f.seek(-len(chunk), 1)
                    size *= 2
                    continue
                f.seek(cut - len(chunk), 1)
                chunk = chunk[:cut]
            reader._digest.update(chunk)
            reader.bytes_read = f.tell()
            if cut < len(chunk):  # the file's last line has no newline
                chunk += b"\n"
            n = chunk.count(b"\n")
            yield line0, n, chunk
            line0 += n
            size = reader.block_bytes


def _line_layout(block: bytes, delimiter: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start offset of each line and its number of delimiters (vectorised)."""
    buf = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(buf == ord("\n"))
    starts = np.concatenate([[0], ends[:-1] + 1])
    delims = np.flatnonzero(buf == ord(delimiter))
    return starts, np.diff(np.searchsorted(delims, np.concatenate([[0], ends])))


def _undecodable_lines(block: bytes, starts: np.ndarray) -> np.ndarray:
    try:
        block.decode("utf-8")
        return np.zeros(0, dtype=np.int64)
    except UnicodeDecodeError:
        bad = []
        for i, line in enumerate(block.split(b"\n")[: starts.size]):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(i)
        return np.asarray(bad, dtype=np.int64)


class BlockReader:
    """Reads ``path`` with ``schema``; iterate for :class:`Block` objects, then read ``bad`` and ``sha256``."""

    def __init__(self, path: str | Path, schema: Schema, strict: bool = False, block_bytes: int = BLOCK_BYTES):
        self.path, self.schema, self.strict, self.block_bytes = Path(path), schema, strict, block_bytes
        if not self.path.is_file():
            raise DataFormatError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise DataFormatError(f"{self.path}: the file is empty")
        self.bad = BadLines()
        self.lines_read = 0
        self.bytes_read = 0
        self._digest = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def _reject(self, lines: np.ndarray, reason: str) -> None:
        if lines.size == 0:
            return
        if self.strict:
            raise DataFormatError(f"{self.path}:{int(lines[0]) + 1}: {reason} (--strict stops at the first bad line)")
        self.bad.add(lines + 1, reason)

    def _check_header(self, block: bytes) -> int:
        """Validate the header line (when the schema has one); return its length in lines (0 or 1)."""
        first = block.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace")
        if not self.schema.header:
            n = first.count(self.schema.delimiter) + 1
            if n != len(self.schema.columns) and block.count(b"\n") and self._mostly_wrong(block):
                raise DataFormatError(f"{self.path}: does not look like {self.schema.name} data: expected "
                                      f"{len(self.schema.columns)} {self.schema.delimiter!r}-separated fields, "
                                      f"found {n} on line 1")
            return 0
        names = first.split(self.schema.delimiter)
        if tuple(names) != self.schema.columns:
            raise DataFormatError(f"{self.path}: line 1 should be the {self.schema.name} header "
                                  f"{','.join(self.schema.columns)[:120]}..., found {first[:120]!r}")
        return 1

    def _mostly_wrong(self, block: bytes) -> bool:
        _, delims = _line_layout(block[: 1 << 20].rsplit(b"\n", 1)[0] + b"\n", self.schema.delimiter.encode())
        return bool(np.mean(delims != len(self.schema.columns) - 1) > 0.5)

    def __iter__(self) -> Iterator[Block]:
        first_block = True
        for line0, n_lines, block in _raw_blocks(self.path, self):
            if first_block:
                if self._check_header(block):
                    block = block.split(b"\n", 1)[1]
                    line0, n_lines = line0 + 1, n_lines - 1
                first_block = False
            self.lines_read += n_lines
            if n_lines == 0:
                continue
            parsed = self._parse_fast(block, line0, n_lines)
            yield parsed if parsed is not None else self._parse_slow(block, line0)

    def _read_table(self, block: bytes, on_invalid) -> pa.Table:
        schema = self.schema
        return pcsv.read_csv(
            pa.BufferReader(block),
            read_options=pcsv.ReadOptions(column_names=list(schema.columns), use_threads=True),
            parse_options=pcsv.ParseOptions(delimiter=schema.delimiter, quote_char=False, ignore_empty_lines=False,
                                            newlines_in_values=False, invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(column_types={c: pa.binary() for c in schema.columns},
                                                strings_can_be_null=False,
                                                include_columns=[c for c in schema.columns if c not in schema.drop]),
        )

    def _parse_fast(self, block: bytes, line0: int, n_lines: int) -> Block | None:
        """The common case: valid UTF-8 and every line with the right field count (rows = lines)."""
        if np.frombuffer(block, dtype=np.uint8).max(initial=0) >= 128:  # not plain ASCII: check UTF-8
            try:
                block.decode("utf-8")
            except UnicodeDecodeError:
                return None
        invalid: list[int] = []
        table = self._read_table(block, lambda row: invalid.append(1) or "skip")
        if invalid or table.num_rows != n_lines:
            return None
        return self._to_block(table, line0 + np.arange(n_lines))

    def _parse_slow(self, block: bytes, line0: int) -> Block:
        """Find the malformed lines (with their numbers), drop them, parse the rest."""
        starts, delims = _line_layout(block, self.schema.delimiter.encode())
        keep = np.ones(starts.size, dtype=bool)
        undecodable = _undecodable_lines(block, starts)
        self._reject(line0 + undecodable, "undecodable bytes (not UTF-8)")
        keep[undecodable] = False
        expected = len(self.schema.columns) - 1
        wrong = np.flatnonzero(keep & (delims != expected))
        self._reject(line0 + wrong, f"wrong number of fields (expected {expected + 1})")
        keep[wrong] = False
        ends = np.append(starts[1:], len(block))
        kept = b"".join(block[s:e] for s, e in zip(starts[keep], ends[keep], strict=True))
        lines = line0 + np.flatnonzero(keep)

        def unexpected(row: object) -> str:
            raise DataFormatError(f"{self.path}: could not parse a line near line {line0 + 1}: {row}")

        table = self._read_table(kept, unexpected) if kept else None
        if table is None:
            return Block(np.zeros(0, np.uint8), np.zeros((len(self.schema.feature_names), 0), np.int64), lines)
        return self._to_block(table, lines)

    def _to_block(self, table: pa.Table, lines: np.ndarray) -> Block:
        schema = self.schema
        ok = np.ones(table.num_rows, dtype=bool)
        labels, missing, invalid = transforms.integer_column(table.column(schema.label))
        bad_label = invalid | missing | ((labels != 0) & (labels != 1))
        self._reject(lines[bad_label], f"label ({schema.label}) is not 0 or 1")
        ok &= ~bad_label
        n_fields = len(schema.feature_names)
        values = np.empty((n_fields, table.num_rows), dtype=np.int64)
        j = 0
        for name in schema.numeric:
            ints, missing, invalid = transforms.integer_column(table.column(name))
            self._reject(lines[invalid & ok], f"numeric field {name} is not an integer")
            ok &= ~invalid
            values[j] = transforms.bucket_numeric(ints, missing)
            j += 1
        for name in schema.categorical:
            values[j] = transforms.hash_binary(table.column(name))
            j += 1
        for name, kind in schema.derived.items():
            ints, missing, invalid = transforms.integer_column(table.column(name))
            self._reject(lines[(invalid | missing) & ok], f"{name} is not a YYMMDDHH integer")
            ok &= ~(invalid | missing)
            if kind == "avazu_hour":
                values[j: j + 3] = transforms.avazu_hour(np.where(ok, ints, 14102100))
                j += 3
        if ok.all():
            return Block(labels=labels.astype(np.uint8), values=values, lines=lines)
        return Block(labels=labels[ok].astype(np.uint8), values=values[:, ok], lines=lines[ok])
