"""Cut a raw byte stream into pieces of whole lines, in bounded memory, and find the lines of a piece.

A line longer than the limit is skipped without ever being held (only its first bytes are kept, for the report);
a stream that cannot be read further (a damaged compressed file) ends with a record saying so.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from lptsim.ctr.data.source import Source, StreamError

REJECT_TEXT_BYTES = 64 << 10  # the rejects file holds at most this much of one line


@dataclass
class Overlong:
    """A line longer than the limit, skipped without holding it in memory."""

    line: int
    length: int
    head: bytes


@dataclass
class Broken:
    """The (compressed) stream cannot be read past this line."""

    line: int
    message: str


def pieces(src: Source, block_bytes: int, max_line: int) -> Iterator[tuple[int, int, bytearray] | Overlong | Broken]:
    """Yield (0-based number of the first line, line count, bytes ending at a newline), or an
    :class:`Overlong` / :class:`Broken` record, in file order. Each piece is a fresh bytearray."""
    line0, rest = 0, b""
    while True:
        try:
            new = src.read(max(block_bytes, len(rest)))  # grows geometrically while a line is unfinished
        except StreamError as exc:
            yield Broken(line0, exc.detail)
            return
        buf = bytearray(rest)
        buf += new
        if not new:  # the end of the file; its last line may have no newline
            if buf:
                if not buf.endswith(b"\n"):
                    buf += b"\n"
                yield line0, buf.count(b"\n"), buf
            return
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            if len(buf) <= max_line:
                rest = bytes(buf)
                continue
            length, head = len(buf), bytes(buf[:REJECT_TEXT_BYTES]) + b"..."
            del buf
            rest = None
            while rest is None:  # skip to the end of the line without holding it
                try:
                    chunk = src.read(block_bytes)
                except StreamError as exc:
                    yield Overlong(line0, length, head)
                    yield Broken(line0 + 1, exc.detail)
                    return
                if not chunk:
                    rest = b""
                    break
                i = chunk.find(b"\n")
                if i >= 0:
                    length += i
                    rest = chunk[i + 1:]
                else:
                    length += len(chunk)
            yield Overlong(line0, length, head)
            line0 += 1
            continue
        rest = bytes(buf[cut:])
        del buf[cut:]
        n = buf.count(b"\n")
        yield line0, n, buf
        line0 += n


class Layout:
    """Line starts and ends (newline positions) of a block, worked out on first use."""

    def __init__(self, buf: bytearray):
        self.buf = buf
        self._ends: np.ndarray | None = None

    @property
    def ends(self) -> np.ndarray:
        if self._ends is None:
            self._ends = np.flatnonzero(np.frombuffer(self.buf, dtype=np.uint8) == 10)
        return self._ends

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], self.ends[:-1] + 1])

    def text(self, k: int) -> bytes:
        """Line ``k`` without its newline (the first REJECT_TEXT_BYTES of a longer one, then "...")."""
        start = 0 if k == 0 else int(self.ends[k - 1]) + 1
        end = int(self.ends[k])
        return bytes(self.buf[start: min(end, start + REJECT_TEXT_BYTES)]) + (
            b"..." if end - start > REJECT_TEXT_BYTES else b"")


def line_of(positions: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Index of the line holding each byte position."""
    return np.unique(np.searchsorted(ends, positions))
