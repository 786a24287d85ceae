"""The vocabulary of prepared data: counting training values per field, the kept values' ids, and the lookup of
raw values (a hash table built once, one parallel pass per block), saved as ``vocab.npz`` (arrays only)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lptsim.atomic import write_bytes_atomic
from lptsim.ctr.data import fastparse
from lptsim.ctr.data.transforms import MISSING

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


def save_vocabulary(path: Path, vocabs: list[Vocabulary]) -> None:
    """``vocab.npz``: ``values`` (int64 raw values), ``fields`` (int32 field index), ``ids`` (int64 local id)."""
    buf = io.BytesIO()
    np.savez(buf, values=np.concatenate([v.sorted_values for v in vocabs]).astype(np.int64),
             fields=np.concatenate([np.full(v.sorted_values.size, j, np.int32) for j, v in enumerate(vocabs)]),
             ids=np.concatenate([v.ids for v in vocabs]).astype(np.int64),
             sizes=np.asarray([v.size for v in vocabs], dtype=np.int64))
    write_bytes_atomic(path, buf.getvalue())


def load_vocabulary(path: Path) -> VocabularyTable:
    """The lookup table saved by :func:`save_vocabulary` (arrays only: nothing is unpickled)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: not found; this folder was prepared by an older lptsim: prepare it again")
    try:
        with np.load(path, allow_pickle=False) as z:
            values, fields, ids, sizes = z["values"], z["fields"], z["ids"], z["sizes"]
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise ValueError(f"{path}: damaged or not a vocabulary ({exc}); prepare the data again") from None
    vocabs = []
    for j, size in enumerate(sizes.tolist()):
        sel = fields == j
        vocabs.append(Vocabulary(sorted_values=values[sel], ids=ids[sel], size=int(size)))
    return VocabularyTable(vocabs)
