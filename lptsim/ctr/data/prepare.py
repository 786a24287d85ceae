"""``lptsim ctr prepare``: raw file -> memory-mapped id arrays, labels, feature map and manifest.

Pass 1 streams the file once: parses and hashes each block, assigns each line to
train/val/test, counts the training values per field, and appends the raw values to a
temporary file. The split is one of (recorded in the manifest's ``split``):

* ``random`` (default): 8:1:1 by a counter-based draw keyed by the seed and the line number,
  so it does not depend on block size;
* ``files``: three pre-split inputs (``valid=`` and ``test=`` beside the train file), the
  vocabulary fitted on the train file only (FuxiCTR's convention);
* ``split-file``: a text file with one line per data line of the input (a header line is not
  counted), holding ``0`` (train), ``1`` (validation), ``2`` (test) or ``-`` (leave the line
  out); see :func:`read_split_file`.
 Pass 2 maps raw values to ids through the
vocabulary (values seen at least ``min_count`` times in training; others -> the field's
OOV id, missing -> the field's missing id) and writes ``{split}_ids.npy`` (int32, global id
space with field offsets) and ``{split}_labels.npy``; ``vocab.npz`` keeps the vocabulary
(raw value, field, local id) so a trained run can map new raw rows (``lptsim ctr predict``).
Memory is bounded by the block size and the vocabulary, not by the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm.auto import tqdm

from lptsim import __version__
from lptsim.atomic import discard, open_new, temporary_path, write_json_atomic
from lptsim.ctr.data.reader import BLOCK_BYTES, MAX_LINE_BYTES, Block, BlockReader
from lptsim.ctr.data.schema import DataFormatError, Schema
from lptsim.ctr.data.vocab import MISSING_ID, OOV_ID, ValueCounter, Vocabulary, VocabularyTable, save_vocabulary
from lptsim.outdir import claim
from lptsim.quant.philox import uniforms

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


def split_of_lines(lines: np.ndarray, seed: int) -> np.ndarray:
    """0/1/2 (train/val/test) for 0-based line numbers: a Philox draw keyed by (seed, line)."""
    if lines.size == 0:
        return np.zeros(0, dtype=np.int8)
    lo = int(lines.min())
    u = uniforms(seed, lo, int(lines.max()) - lo + 1)[lines - lo]
    cuts = np.cumsum(SPLIT_FRACTIONS)[:-1]
    return np.searchsorted(cuts, u, side="right").astype(np.int8)


SPLIT_CODES = {b"0": 0, b"1": 1, b"2": 2, b"-": -1}


def read_split_file(path: str | Path) -> np.ndarray:
    """The split of each data line from a split file: int8 0/1/2 (train/val/test) or -1 (left out).

    One character per line (``0``, ``1``, ``2`` or ``-``; CRLF endings are fine); line k of the split
    file is the k-th data line of the input (a header line is not counted; a bad line of the input keeps
    its entry, which is then unused). Parsed with numpy: about 2 bytes of memory per line, plus the offsets.
    """
    path = Path(path)
    try:
        raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    except OSError as exc:
        raise ValueError(f"--split-file {path}: cannot be read ({exc.strerror or exc})") from None
    if raw.size == 0:
        raise ValueError(f"--split-file {path}: is empty; it needs one line per data line of the input")
    if raw[-1] != ord("\n"):
        raw = np.append(raw, np.uint8(ord("\n")))
    ends = np.flatnonzero(raw == ord("\n"))
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts
    lengths -= (lengths > 0) & (raw[np.maximum(ends - 1, 0)] == ord("\r"))
    lut = np.full(256, -2, dtype=np.int8)
    for token, code in SPLIT_CODES.items():
        lut[token[0]] = code
    codes = lut[raw[np.minimum(starts, raw.size - 1)]]
    bad = np.flatnonzero((lengths != 1) | (codes == -2))
    if bad.size:
        k = bad[0]
        text = bytes(raw[starts[k]: starts[k] + min(int(lengths[k]), 20)])
        raise ValueError(f"--split-file {path}: line {k + 1} is {text!r}; each line must be 0 (train), "
                         "1 (validation), 2 (test) or - (left out)")
    return codes


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
            rejects: str | Path | None = None, force: bool = False, max_line_bytes: int = MAX_LINE_BYTES,
            valid: str | Path | None = None, test: str | Path | None = None,
            split_file: str | Path | None = None) -> dict:
    """Prepare ``path`` into ``out``; return the manifest (also written to ``out/manifest.json``).

    The split: random 8:1:1 keyed by ``seed`` (default); ``valid`` and ``test`` files beside the
    train file ``path`` (vocabulary from ``path`` only); or ``split_file`` (see :func:`read_split_file`).
    Bad lines are skipped and reported (``strict``: the first one stops with ``file:line: reason``);
    ``rejects`` names a file for every bad line with its number and reason (three inputs: the train
    file's, then the validation file's, then the test file's, each numbered within its file). An empty
    or one-class split is a warning in the manifest (``strict``: an error).
    ``out`` must be a new or empty folder unless ``force`` (which replaces prepared data there).
    """
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
    if (valid is None) != (test is None):
        raise ValueError("pre-split input needs both --valid and --test (beside --train)")
    if valid is not None and split_file is not None:
        raise ValueError("give either --valid/--test files or --split-file, not both")
    start = time.perf_counter()
    paths = [Path(path)] if valid is None else [Path(path), Path(valid), Path(test)]
    readers = [BlockReader(p, schema, strict=strict, block_bytes=block_bytes, max_line_bytes=max_line_bytes)
               for p in paths]
    codes = read_split_file(split_file) if split_file is not None else None
    rejects, rejects_tmp, handle = _open_rejects(rejects, paths[0])  # checked before the output folder is made
    try:
        out = claim(Path(out), "prepared", force=force, reuse=False)
    except BaseException:
        if handle is not None:
            handle.close()
            discard(rejects_tmp)
        raise
    for r in readers:
        r.rejects = handle
    try:
        manifest = _prepare(readers, out, min_count, seed, progress, codes, split_file)
        if handle is not None:
            handle.close()
            os.replace(rejects_tmp, rejects)
    finally:
        if handle is not None and not handle.closed:
            handle.close()
            discard(rejects_tmp)
    manifest.update(rejects=str(rejects) if rejects else None, seconds=round(time.perf_counter() - start, 3))
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def _split_assigner(reader: BlockReader, k: int, n_readers: int, seed: int, codes: np.ndarray | None,
                    split_file: str | Path | None):
    """block -> split code per row (-1: left out) for the k-th of ``n_readers`` inputs."""
    if n_readers == 3:
        return lambda block: np.full(block.lines.size, k, dtype=np.int8)
    if codes is None:
        return lambda block: split_of_lines(block.lines, seed)
    first = 1 if reader.header else 0

    def assign(block):
        index = block.lines - first
        if index.size and index.max() >= codes.size:
            raise ValueError(f"--split-file {split_file}: has {codes.size:,} entries but {reader.path} has more data "
                             f"lines (line {int(block.lines[index.argmax()]) + 1} has no entry)")
        return codes[index]
    return assign


def _prepare(readers: list[BlockReader], out: Path, min_count: int, seed: int, progress: bool,
             codes: np.ndarray | None = None, split_file: str | Path | None = None) -> dict:
    reader = readers[0]
    schema = reader.schema
    fields = schema.feature_names
    counter = ValueCounter(len(fields))
    label_counts = np.zeros((3, 2), dtype=np.int64)
    size = sum(r.path.stat().st_size for r in readers)
    bar = tqdm(total=size, unit="B", unit_scale=True, desc="prepare: read", disable=not progress, leave=False)
    done = 0
    with tempfile.TemporaryDirectory(dir=out, prefix=".raw-") as tmp:
        raw_path = Path(tmp) / "raw.bin"
        block_rows: list[int] = []
        with open(raw_path, "wb") as raw:
            for k, reader in enumerate(readers):
                assign = _split_assigner(reader, k, len(readers), seed, codes, split_file)
                for block in reader:
                    split = assign(block)
                    if (split < 0).any():
                        keep = split >= 0
                        block = Block(labels=block.labels[keep], values=block.values[:, keep], lines=block.lines[keep])
                        split = split[keep]
                    train = split == 0
                    for j in range(len(fields)):
                        counter.add(j, block.values[j, train])
                    label_counts += np.bincount(split * 2 + block.labels, minlength=6).reshape(3, 2)
                    block.labels.tofile(raw)
                    split.tofile(raw)
                    block.values.tofile(raw)  # field-major (fields, rows)
                    block_rows.append(block.labels.size)
                    bar.update(done + reader.bytes_read - bar.n)
                done += reader.path.stat().st_size
                data_lines = reader.lines_read - (1 if reader.header else 0)
                if codes is not None and codes.size != data_lines:
                    raise ValueError(f"--split-file {split_file}: has {codes.size:,} entries but {reader.path} has "
                                     f"{data_lines:,} data lines; it needs exactly one entry per data line")
        bar.close()
        n_split = label_counts.sum(axis=1)
        path = readers[0].path
        if n_split.sum() == 0:
            raise DataFormatError(f"{path}: no valid rows ({reader.bad.count:,} bad lines skipped"
                                  + (f"; the first: line {reader.bad.first[0][0]}: {reader.bad.first[0][1]})"
                                     if reader.bad.first else ")"))
        problems = split_problems(label_counts)
        if problems and reader.strict:
            raise DataFormatError(f"{path}: {problems[0]} (--strict refuses splits that cannot train and evaluate)")
        vocabs = [Vocabulary.build(*counter.result(j), min_count) for j in range(len(fields))]
        table = VocabularyTable(vocabs)
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
    save_vocabulary(out / "vocab.npz", vocabs)
    sources = [{"split": SPLITS[k] if len(readers) == 3 else "all", "path": str(r.path.resolve()), "sha256": r.sha256,
                "lines": r.lines_read, "bytes": r.path.stat().st_size} for k, r in enumerate(readers)]
    if len(readers) == 3:
        split_record = {"kind": "files", **{s["split"]: s["path"] for s in sources}}
        sha = hashlib.sha256(" ".join(r.sha256 for r in readers).encode()).hexdigest()
    elif codes is not None:
        split_record = {"kind": "split-file", "path": str(Path(split_file).resolve()),
                        "sha256": hashlib.sha256(Path(split_file).read_bytes()).hexdigest()}
        sha = reader.sha256
    else:
        split_record = {"kind": "random", "seed": seed, "fractions": list(SPLIT_FRACTIONS)}
        sha = reader.sha256
    vocab_report = [{"field": name, "vocab_size": int(sz), "oov_rate": float(oov)}
                    for name, sz, oov in zip(fields, sizes, _oov_rates(out, len(fields)), strict=True)]
    return {
        "source": str(readers[0].path.resolve()), "sha256": sha, "bytes": size, "compression": reader.compression,
        "lines": sum(r.lines_read for r in readers), "header": reader.header, "sources": sources,
        "split": split_record, "schema": schema_record(schema), "vocabulary": vocab_report,
        "rows": {s: int(n) for s, n in zip(SPLITS, n_split, strict=True)},
        "labels": {s: {"0": int(c[0]), "1": int(c[1])} for s, c in zip(SPLITS, label_counts, strict=True)},
        "bad_lines": sum(r.bad.count for r in readers),
        "bad_lines_by_reason": dict(sum((r.bad.by_reason for r in readers), Counter()).most_common()),
        "first_bad_lines": [{"line": ln, "reason": r, **({"file": str(rd.path)} if len(readers) > 1 else {})}
                            for rd in readers for ln, r in rd.bad.first][:10],
        "warnings": [w for r in readers for w in r.warnings] + problems,
        "options": {"dataset": schema.name, "min_count": min_count, "seed": seed, "strict": reader.strict,
                    **({"split": split_record["kind"]} if split_record["kind"] != "random" else {})},
        "lptsim_version": __version__,
    }


def _oov_rates(out: Path, n_fields: int) -> list[float]:
    """Per field, the share of validation and test rows (train if those are empty) mapped to the OOV id."""
    offsets = np.asarray(load_json(out / "feature_map.json")["offsets"], dtype=np.int64)
    hits, rows = np.zeros(n_fields, np.int64), 0
    for s in ("val", "test"):
        ids = np.load(out / f"{s}_ids.npy", mmap_mode="r")
        for a in range(0, ids.shape[0], 1 << 18):
            hits += (np.asarray(ids[a: a + (1 << 18)]) == offsets + OOV_ID).sum(axis=0)
        rows += ids.shape[0]
    return (hits / rows).tolist() if rows else [0.0] * n_fields


def schema_record(schema: Schema) -> dict:
    """A schema as plain JSON values (kept in the manifest so a run can read new raw rows the same way)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(schema).items()}


def schema_from_record(record: dict) -> Schema:
    """Inverse of :func:`schema_record`."""
    return Schema(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in record.items()})


def guess_dataset(path: str | Path) -> str | None:
    """The built-in dataset (criteo, avazu) whose format most sampled lines of a raw file have, or None."""
    from lptsim.ctr.data.schema import SCHEMAS
    from lptsim.ctr.data.source import read_head

    try:
        lines = [ln for ln in read_head(path, 1 << 16).split(b"\n")[:-1] if ln]
    except (OSError, ValueError):
        return None
    for name, schema in SCHEMAS.items():
        rows = lines[1:] if schema.header else lines
        fits = sum(ln.count(schema.delimiter.encode()) == len(schema.columns) - 1 for ln in rows)
        if rows and 2 * fits > len(rows):
            return name
    return None


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
