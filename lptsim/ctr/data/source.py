"""Opening a raw data file: plain text, or gzip / bzip2 / zstd compressed (detected by magic bytes, not by name).

Decompression is pyarrow's (zlib, bz2, zstd codecs). The raw bytes are hashed as they are read
(one pass), so the manifest's SHA-256 is the file's own, compressed or not.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pyarrow as pa

from lptsim.ctr.data.schema import DataFormatError

UTF8_BOM = b"\xef\xbb\xbf"
_PIECE = 16 << 10  # decompressed bytes per codec read

# (magic bytes at offset 0, pyarrow codec)
_CODECS = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"))
# Formats we recognise but do not read: say what the file is instead of "not criteo data".
_FOREIGN = (
    (b"PK\x03\x04", "a zip archive"), (b"\xfd7zXZ\x00", "an xz archive"), (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (b"\x04\x22\x4d\x18", "an lz4 frame"), (b"PAR1", "a Parquet file"), (b"ARROW1", "an Arrow IPC file"),
    (b"\xff\xfe", "UTF-16 text (little-endian)"), (b"\xfe\xff", "UTF-16 text (big-endian)"),
    (b"\x93NUMPY", "a NumPy array file"), (b"\x89HDF", "an HDF5 file"),
)


def _is_bzip2(head: bytes) -> bool:
    """'BZh', a block-size digit, then the block or end-of-stream magic (text rarely starts like that)."""
    return (len(head) >= 10 and head[:3] == b"BZh" and head[3:4].isdigit() and head[3:4] != b"0"
            and head[4:10] in (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90"))


def detect_compression(head: bytes) -> str | None:
    """The pyarrow codec of a compressed file from its first bytes, or None for plain text."""
    for magic, codec in _CODECS:
        if head.startswith(magic):
            return codec
    return "bz2" if _is_bzip2(head) else None


class StreamError(DataFormatError):
    """The (compressed) data cannot be read on from here; ``detail`` says why, without the file name."""

    def __init__(self, path: Path, detail: str):
        super().__init__(f"{path}: {detail}")
        self.detail = detail


class _HashingReader(io.RawIOBase):
    """A raw file that hashes and counts the bytes read through it (each byte is read once)."""

    def __init__(self, f):
        super().__init__()
        self.f, self.sha256, self.count = f, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.sha256.update(data)
        self.count += len(data)
        return data

    def readinto(self, b) -> int:
        n = self.f.readinto(b)
        self.sha256.update(memoryview(b)[:n])
        self.count += n
        return n

    def close(self) -> None:
        self.f.close()
        super().close()


class Source:
    """The decompressed byte stream of ``path``; ``sha256`` and ``raw_bytes_read`` describe the file itself.

    Raises :class:`DataFormatError` (one line, naming the file) when the path is not a readable,
    non-empty file or holds a format lptsim does not read.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        p = self.path
        if p.is_dir():
            raise DataFormatError(f"{p}: is a folder; --input needs a data file")
        if not p.exists():
            raise DataFormatError(f"{p}: no such file")
        if not p.is_file():
            raise DataFormatError(f"{p}: not a regular file")
        self.size = p.stat().st_size
        if self.size == 0:
            raise DataFormatError(f"{p}: the file is empty")
        try:
            raw = open(p, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise DataFormatError(f"{p}: cannot read: {exc.strerror}") from None
        head = raw.read(16)
        raw.seek(0)
        for magic, what in _FOREIGN:
            if head.startswith(magic):
                raw.close()
                hint = "convert it to UTF-8" if "UTF-16" in what else "unpack or convert it to text first"
                raise DataFormatError(f"{p}: this is {what}, not a text file; {hint} "
                                      "(lptsim reads plain, gzip, bzip2 or zstd compressed text)")
        self.compression = detect_compression(head)
        self._error: StreamError | None = None
        self._raw = _HashingReader(raw)
        if self.compression is None:
            self._stream = self._raw
        else:
            self._stream = pa.CompressedInputStream(pa.PythonFile(self._raw, mode="r"), self.compression)

    @property
    def sha256(self) -> str:
        """SHA-256 of the raw bytes read so far (the whole file once it has been read to the end)."""
        return self._raw.sha256.hexdigest()

    @property
    def raw_bytes_read(self) -> int:
        return self._raw.count

    def read(self, n: int) -> bytes:
        """Up to ``n`` decompressed bytes (b"" at the end). A damaged stream raises :class:`StreamError`, after
        the bytes decoded before the damage have been returned."""
        if self._error is not None:
            raise self._error
        if self.compression is None:
            return self._raw.read(n)
        parts, got = [], 0
        while got < n:  # small reads: the codec hands out all it decoded before a damaged spot
            try:
                part = self._stream.read(min(n - got, _PIECE))
            except (OSError, pa.ArrowException) as exc:
                self._error = StreamError(self.path, f"{self.compression} data is damaged or truncated ({exc})")
                break
            if not part:
                break
            parts.append(part)
            got += len(part)
        if not parts and self._error is not None:
            raise self._error
        return b"".join(parts)

    def close(self) -> None:
        if self._stream is not self._raw:
            self._stream.close()
        self._raw.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_head(path: str | Path, n: int) -> bytes:
    """The first ``n`` decompressed bytes of ``path`` (fewer if it is shorter or damaged), for sniffing."""
    with Source(path) as src:
        out = bytearray()
        while len(out) < n:
            try:
                chunk = src.read(n - len(out))
            except StreamError:
                break
            if not chunk:
                break
            out += chunk
        return bytes(out)
