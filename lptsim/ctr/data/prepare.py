"""``lptsim ctr prepare``: raw file -> memory-mapped id arrays, labels, feature map and manifest.

Pass 1 streams the file once: parses and hashes each block, assigns each line to
train/val/test (8:1:1 by a counter-based draw keyed by the seed and the line number, so the
split does not depend on block size), counts the training values per field, and appends
the raw values to a temporary file. Pass 2 maps raw values to ids through the
vocabulary (values seen at least ``min_count`` times in training; others -> the field's
OOV id, missing -> the field's missing id) and writes ``{split}_ids.npy`` (int32, global id
space with field offsets) and ``{split}_labels.npy``. Memory is bounded by the block size
and the vocabulary, not by the file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm.auto import tqdm

from lptsim import __version__
from lptsim.atomic import open_new, temporary_path, write_json_atomic
from lptsim.ctr.data import fastparse
from lptsim.ctr.data.reader import BLOCK_BYTES, MAX_LINE_BYTES, BlockReader
from lptsim.ctr.data.schema import DataFormatError, Schema
from lptsim.ctr.data.transforms import MISSING
from lptsim.outdir import claim
from lptsim.quant.philox import uniforms

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
OOV_ID, MISSING_ID = 0, 1  # per-field local ids; known values start at 2


class ValueCounter:
    """Counts int64 values per field in bounded memory (merge when the buffer grows)."""

    def __init__(self, fields: int, flush_at: int = 4_000_000):
        self.values: list[list[np.ndarray]] = [[] for _ in range(fields)]
        self.counts: list[list[np.ndarray]] = [[] for _ in range(fields)]
        self.buffered = [0] * fields
        self.flush_at = flush_at

    def add(self, field: int, values: np.ndarray) -> None:
        uniq, cnt = np.unique(values, return_counts=True)
        self.values[field].append(uniq)
        self.counts[field].append(cnt)
        self.buffered[field] += uniq.size
        if self.buffered[field] > self.flush_at:
            self._merge(field)

    def _merge(self, field: int) -> None:
        vals = np.concatenate(self.values[field]) if self.values[field] else np.zeros(0, np.int64)
        cnts = np.concatenate(self.counts[field]) if self.counts[field] else np.zeros(0, np.int64)
        uniq, inverse = np.unique(vals, return_inverse=True)
        self.buffered[field] = uniq.size
        self.values[field] = [uniq]
        self.counts[field] = [np.bincount(inverse, weights=cnts, minlength=uniq.size).astype(np.int64)]

    def result(self, field: int) -> tuple[np.ndarray, np.ndarray]:
        self._merge(field)
        return self.values[field][0], self.counts[field][0]


@dataclass
class Vocabulary:
    """One field's known values (sorted) and their local ids."""

    sorted_values: np.ndarray
    ids: np.ndarray
    size: int  # local ids 0..size-1 (OOV, missing, known values)

    @classmethod
    def build(cls, values: np.ndarray, counts: np.ndarray, min_count: int) -> Vocabulary:
        keep = (counts >= min_count) & (values != MISSING)
        kv, kc = values[keep], counts[keep]
        order = np.lexsort((kv, -kc))  # most frequent first, ties by value: ids are deterministic
        ids = np.empty(kv.size, dtype=np.int64)
        ids[order] = np.arange(kv.size) + 2
        return cls(sorted_values=kv, ids=ids, size=kv.size + 2)



class VocabularyTable:
    """All fields' vocabularies in one hash table, for one parallel lookup of whole blocks."""

    def __init__(self, vocabs: list[Vocabulary]):
        values = np.concatenate([v.sorted_values for v in vocabs]).astype(np.int64)
        ids = np.concatenate([v.ids for v in vocabs]).astype(np.int64)
        fields = np.concatenate([np.full(v.sorted_values.size, j, np.int32) for j, v in enumerate(vocabs)])
        capacity = 1 << max(4, int(values.size * 1.5).bit_length())
        self.keys, self.key_fields, self.ids = fastparse.build_table(values, fields, ids, capacity)
        self.sizes = [v.size for v in vocabs]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)

    def lookup(self, raw_by_field: np.ndarray) -> np.ndarray:
        """Global int32 ids (rows, fields) of raw values given field-major (fields, rows)."""
        out = np.empty(raw_by_field.shape[::-1], dtype=np.int32)
        fastparse.lookup_ids(raw_by_field, self.keys, self.key_fields, self.ids, self.offsets, OOV_ID, MISSING_ID,
                             out)
        return out


def split_of_lines(lines: np.ndarray, seed: int) -> np.ndarray:
    """0/1/2 (train/val/test) for 0-based line numbers: a Philox draw keyed by (seed, line)."""
    if lines.size == 0:
        return np.zeros(0, dtype=np.int8)
    lo = int(lines.min())
    u = uniforms(seed, lo, int(lines.max()) - lo + 1)[lines - lo]
    cuts = np.cumsum(SPLIT_FRACTIONS)[:-1]
    return np.searchsorted(cuts, u, side="right").astype(np.int8)


def _open_npy(path: Path, dtype: np.dtype, shape: tuple[int, ...]):
    f = open(path, "wb")  # noqa: SIM115 - closed by the caller
    np.lib.format.write_array_header_2_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                             "fortran_order": False, "shape": shape})
    return f


def split_problems(label_counts: np.ndarray) -> list[str]:
    """Why the splits cannot train and evaluate a model: a split with no rows or with one class only.

    ``label_counts`` is (3 splits, 2 labels).
    """
    problems = []
    total = int(label_counts.sum())
    for s, (neg, pos) in zip(SPLITS, label_counts.tolist(), strict=True):
        if neg + pos == 0:
            problems.append(f"the {s} split is empty ({total} rows in all are too few for the 8:1:1 split)")
        elif neg == 0 or pos == 0:
            problems.append(f"the {s} split has {neg + pos} rows, all with label {0 if pos == 0 else 1} "
                            "(AUC needs both classes)")
    return problems


def _open_rejects(rejects: str | Path | None, source: Path) -> tuple[Path | None, Path | None, BinaryIO | None]:
    if rejects is None:
        return None, None, None
    rejects = Path(rejects)
    if rejects.is_dir():
        raise ValueError(f"--rejects {rejects}: is a folder; give a file name")
    if rejects.exists() and rejects.resolve() == source.resolve():
        raise ValueError(f"--rejects {rejects}: is the input file; give another file name")
    if not rejects.parent.is_dir():
        raise ValueError(f"--rejects {rejects}: the folder {rejects.parent} does not exist")
    tmp = temporary_path(rejects)
    f = open_new(tmp)
    f.write(b"line\treason\ttext\n")
    return rejects, tmp, f


def prepare(path: str | Path, schema: Schema, out: str | Path, min_count: int = 2, seed: int = 0,
            strict: bool = False, block_bytes: int = BLOCK_BYTES, progress: bool = True,
            rejects: str | Path | None = None, force: bool = False, max_line_bytes: int = MAX_LINE_BYTES) -> dict:
    """Prepare ``path`` into ``out``; return the manifest (also written to ``out/manifest.json``).

    Bad lines are skipped and reported (``strict``: the first one stops with ``file:line: reason``);
    ``rejects`` names a file for every bad line with its number and reason. An empty or one-class
    split is a warning in the manifest (``strict``: an error). ``out`` must be new, empty or a
    prepared folder unless ``force``.
    """
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
    start = time.perf_counter()
    path = Path(path)
    reader = BlockReader(path, schema, strict=strict, block_bytes=block_bytes, max_line_bytes=max_line_bytes)
    out = claim(Path(out), "prepared", force=force)
    rejects, rejects_tmp, reader.rejects = _open_rejects(rejects, path)
    try:
        manifest = _prepare(reader, out, min_count, seed, progress)
        if reader.rejects is not None:
            reader.rejects.close()
            os.replace(rejects_tmp, rejects)
    finally:
        if reader.rejects is not None and not reader.rejects.closed:
            reader.rejects.close()
            rejects_tmp.unlink(missing_ok=True)
    manifest.update(rejects=str(rejects) if rejects else None, seconds=round(time.perf_counter() - start, 3))
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def _prepare(reader: BlockReader, out: Path, min_count: int, seed: int, progress: bool) -> dict:
    schema, path = reader.schema, reader.path
    fields = schema.feature_names
    counter = ValueCounter(len(fields))
    label_counts = np.zeros((3, 2), dtype=np.int64)
    size = path.stat().st_size
    bar = tqdm(total=size, unit="B", unit_scale=True, desc="prepare: read", disable=not progress, leave=False)
    with tempfile.TemporaryDirectory(dir=out, prefix=".raw-") as tmp:
        raw_path = Path(tmp) / "raw.bin"
        block_rows: list[int] = []
        with open(raw_path, "wb") as raw:
            for block in reader:
                split = split_of_lines(block.lines, seed)
                train = split == 0
                for j in range(len(fields)):
                    counter.add(j, block.values[j, train])
                label_counts += np.bincount(split * 2 + block.labels, minlength=6).reshape(3, 2)
                block.labels.tofile(raw)
                split.tofile(raw)
                block.values.tofile(raw)  # field-major (fields, rows)
                block_rows.append(block.labels.size)
                bar.update(reader.bytes_read - bar.n)
        bar.close()
        n_split = label_counts.sum(axis=1)
        if n_split.sum() == 0:
            raise DataFormatError(f"{path}: no valid rows ({reader.bad.count:,} bad lines skipped"
                                  + (f"; the first: line {reader.bad.first[0][0]}: {reader.bad.first[0][1]})"
                                     if reader.bad.first else ")"))
        problems = split_problems(label_counts)
        if problems and reader.strict:
            raise DataFormatError(f"{path}: {problems[0]} (--strict refuses splits that cannot train and evaluate)")
        table = VocabularyTable([Vocabulary.build(*counter.result(j), min_count) for j in range(len(fields))])
        del counter
        sizes, offsets = table.sizes, table.offsets
        if sum(sizes) >= 2**31:
            raise ValueError(f"vocabulary of {sum(sizes)} ids does not fit int32; raise --min-count")
        files = {s: (_open_npy(out / f"{s}_ids.npy.tmp", np.int32, (int(n), len(fields))),
                     _open_npy(out / f"{s}_labels.npy.tmp", np.uint8, (int(n),))) for s, n in zip(SPLITS, n_split,
                                                                                                 strict=True)}
        with open(raw_path, "rb") as raw:
            for n in tqdm(block_rows, desc="prepare: write", disable=not progress, leave=False):
                labels = np.fromfile(raw, dtype=np.uint8, count=n)
                split = np.fromfile(raw, dtype=np.int8, count=n)
                ids = table.lookup(np.fromfile(raw, dtype=np.int64, count=n * len(fields)).reshape(len(fields), n))
                for k, s in enumerate(SPLITS):
                    rows = split == k
                    ids[rows].tofile(files[s][0])
                    labels[rows].tofile(files[s][1])
        for s in SPLITS:
            for f in files[s]:
                f.close()
        # Without a manifest the folder reads as unfinished until the new one is written.
        (out / "manifest.json").unlink(missing_ok=True)
        for s in SPLITS:
            for name in (f"{s}_ids.npy", f"{s}_labels.npy"):
                os.replace(out / f"{name}.tmp", out / name)
    feature_map = {
        "dataset": schema.name, "fields": fields, "vocab_sizes": sizes, "offsets": offsets.tolist(),
        "num_embeddings": int(sum(sizes)), "oov_id": OOV_ID, "missing_id": MISSING_ID, "min_count": min_count,
    }
    write_json_atomic(out / "feature_map.json", feature_map)
    return {
        "source": str(path.resolve()), "sha256": reader.sha256, "bytes": size, "compression": reader.compression,
        "lines": reader.lines_read, "header": reader.header,
        "rows": {s: int(n) for s, n in zip(SPLITS, n_split, strict=True)},
        "labels": {s: {"0": int(c[0]), "1": int(c[1])} for s, c in zip(SPLITS, label_counts, strict=True)},
        "bad_lines": reader.bad.count, "bad_lines_by_reason": dict(reader.bad.by_reason.most_common()),
        "first_bad_lines": [{"line": ln, "reason": r} for ln, r in reader.bad.first],
        "warnings": reader.warnings + problems,
        "options": {"dataset": schema.name, "min_count": min_count, "seed": seed, "strict": reader.strict},
        "lptsim_version": __version__,
    }


def load_json(path: Path) -> dict:
    """Read a JSON object written by prepare, with a clear error when it is missing or damaged."""
    try:
        value = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: not found; run `lptsim ctr prepare` first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read as JSON ({exc}); prepare the data again") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: should hold a JSON object, found {type(value).__name__}; prepare the data again")
    return value
