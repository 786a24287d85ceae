"""A prepared dataset on disk (memory-mapped), and batches for training and evaluation."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lptsim.ctr.data.prepare import SPLITS, load_json, split_problems


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_feature_map(path: Path, fm: dict) -> dict:
    """Validate a feature map's types and sizes (it sizes the embedding table and bounds every id)."""
    def bad(what: str) -> ValueError:
        return ValueError(f"{path}: {what}; the folder was edited or damaged: prepare it again")

    fields, sizes, offsets = fm.get("fields"), fm.get("vocab_sizes"), fm.get("offsets")
    if not (isinstance(fields, list) and fields and all(isinstance(f, str) for f in fields)):
        raise bad("'fields' should be a non-empty list of names")
    if len(set(fields)) != len(fields):
        raise bad("'fields' names a field twice")
    if not (isinstance(sizes, list) and len(sizes) == len(fields) and all(_is_int(v) and v >= 2 for v in sizes)):
        raise bad(f"'vocab_sizes' should be {len(fields)} integers >= 2 (one per field)")
    expected = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
    if offsets != expected:
        raise bad("'offsets' should be the running sums of 'vocab_sizes'")
    if fm.get("num_embeddings") != sum(sizes) or sum(sizes) >= 2**31:
        raise bad(f"'num_embeddings' should be the sum of 'vocab_sizes' ({sum(sizes)}, below 2^31)")
    return fm


def _load_array(path: Path, dtype: type, ndim: int) -> np.ndarray:
    """Memory-map a .npy file of the given dtype and rank; pickled (object) arrays are refused."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"{path.parent}: missing {path.name}; prepare did not finish") from None
    except (ValueError, OSError, EOFError) as exc:
        pickled = "allow_pickle" in str(exc) or "Python objects" in str(exc)
        reason = "holds Python objects (a pickle), refused" if pickled else \
            f"not a readable .npy array ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        raise ValueError(f"{path}: {reason}; prepare the data again") from None
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != ndim:
        raise ValueError(f"{path}: should be a {ndim}-d {np.dtype(dtype).name} array, found "
                         f"{getattr(arr, 'ndim', '?')}-d {getattr(arr, 'dtype', type(arr).__name__)}; "
                         "prepare the data again")
    return arr


def not_prepared(path: Path) -> str:
    """Why ``path`` (a raw file, or nothing) is not a prepared folder, with the command that makes one."""
    if path.is_file():
        from lptsim.ctr.data.prepare import guess_dataset

        name = guess_dataset(path)
        target = path.parent / f"{path.name.split('.')[0]}-prepared"
        dataset = f"--dataset {name}" if name else "--dataset csv --schema SCHEMA.json"
        return (f"{path}: is a file, not a prepared folder; prepare it first with `lptsim ctr prepare {dataset} "
                f"--input {path} --out {target}`, then pass --data {target}")
    return (f"{path}: no such folder; --data takes a folder made by `lptsim ctr prepare --dataset criteo --input "
            f"RAW_FILE --out {path}` (or --dataset avazu)")


@dataclass
class PreparedData:
    """``ids[split]`` (rows, fields) int32 global ids and ``labels[split]`` (rows,) uint8, memory-mapped."""

    root: Path
    feature_map: dict
    manifest: dict
    ids: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]

    @classmethod
    def load(cls, root: str | Path) -> PreparedData:
        """Open a prepared folder, validating feature_map.json, manifest.json and the arrays' headers first.

        Arrays are memory-mapped and never unpickled; ids and labels are checked batch by batch as
        they are read (:meth:`batches`).
        """
        root = Path(root)
        if not root.is_dir():
            raise ValueError(not_prepared(root))
        if not (root / "feature_map.json").exists():
            from lptsim.outdir import kind_of

            if kind_of(root) == "run":
                raise ValueError(f"{root}: holds a training run, not prepared data; --data takes the folder of "
                                 "`lptsim ctr prepare` (the run's run.json names its own as data_path)")
        feature_map = _check_feature_map(root / "feature_map.json", load_json(root / "feature_map.json"))
        manifest = load_json(root / "manifest.json")
        rows = manifest.get("rows")
        if not (isinstance(rows, dict) and all(_is_int(rows.get(s)) and rows[s] >= 0 for s in SPLITS)):
            raise ValueError(f"{root / 'manifest.json'}: 'rows' should map {', '.join(SPLITS)} to row counts; "
                             "the folder was edited or damaged: prepare it again")
        ids, labels = {}, {}
        for s in SPLITS:
            ids[s] = _load_array(root / f"{s}_ids.npy", np.int32, 2)
            labels[s] = _load_array(root / f"{s}_labels.npy", np.uint8, 1)
            if ids[s].shape != (rows[s], len(feature_map["fields"])) or labels[s].shape != (rows[s],):
                raise ValueError(f"{root}: {s}_ids.npy {ids[s].shape} and {s}_labels.npy {labels[s].shape} disagree "
                                 f"with manifest.json ({rows[s]} rows) or feature_map.json "
                                 f"({len(feature_map['fields'])} fields); prepare the data again")
        return cls(root, feature_map, manifest, ids, labels)

    @property
    def num_embeddings(self) -> int:
        return int(self.feature_map["num_embeddings"])

    @property
    def num_fields(self) -> int:
        return len(self.feature_map["fields"])

    def batches(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0,
                epoch: int = 0, skip: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(ids int64 (B, fields), labels float32 (B,)) batches; the order depends only on (seed, epoch).
        ``skip``: start after that many batches (a run resumed in the middle of an epoch), without reading them."""
        ids, labels = self.ids[split], self.labels[split]
        n = labels.shape[0]
        order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else None
        lo = np.asarray(self.feature_map["offsets"], dtype=np.int64)
        hi = lo + np.asarray(self.feature_map["vocab_sizes"], dtype=np.int64)
        for start in range(skip * batch_size, n, batch_size):
            if order is None:
                sel = slice(start, start + batch_size)
                x, y = np.asarray(ids[sel], dtype=np.int64), np.asarray(labels[sel])
            else:
                idx = np.sort(order[start: start + batch_size])  # sorted reads are kinder to the page cache
                x, y = np.asarray(ids[idx], dtype=np.int64), np.asarray(labels[idx])
            if ((x < lo) | (x >= hi)).any() or (y > 1).any():
                self._bad_batch(split, x, y, lo, hi, np.arange(n)[sel] if order is None else idx)
            yield torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))

    def _bad_batch(self, split: str, x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   rows: np.ndarray) -> None:
        bad_y = np.flatnonzero(y > 1)
        if bad_y.size:
            k = bad_y[0]
            raise ValueError(f"{self.root / f'{split}_labels.npy'}: row {rows[k]} holds label {y[k]}, not 0 or 1; "
                             "the folder was edited or damaged: prepare it again")
        r, f = np.argwhere((x < lo) | (x >= hi))[0]
        raise ValueError(f"{self.root / f'{split}_ids.npy'}: row {rows[r]} field {self.feature_map['fields'][f]} holds "
                         f"id {x[r, f]}, outside its range [{lo[f]}, {hi[f]}) in feature_map.json; the folder was "
                         "edited or damaged: prepare it again")


def check_splits(data: PreparedData) -> float:
    """Refuse data that cannot train and evaluate; return the log loss of always predicting the base rate."""
    counts = []
    for s in SPLITS:
        c = np.bincount(np.asarray(data.labels[s]), minlength=2)
        if c.size > 2:
            raise ValueError(f"{data.root / f'{s}_labels.npy'}: holds labels other than 0 and 1; prepare the data "
                             "again")
        counts.append(c)
    problems = split_problems(np.array(counts))
    if problems:
        raise ValueError(f"{data.root}: {problems[0]}; training needs rows of both classes in train, val and test "
                         "(prepare more lines)")
    p = counts[0][1] / counts[0].sum()
    return float(-(p * math.log(p) + (1 - p) * math.log(1 - p)))
