"""numba kernels for the hot loops of data preparation (one pass over the bytes, both cores).

Each kernel has a parallel and a serial loop over one shared per-item body; the public function
picks the serial one for small inputs, where starting threads costs more than it saves (and,
with other busy processes such as parallel test workers, small parallel calls slow down badly).
"""

from __future__ import annotations

import numba as nb
import numpy as np

MISSING = np.iinfo(np.int64).min
PARALLEL_MIN = 1 << 16  # items; below this the serial loop is used
_FNV_PRIME = np.uint64(0x100000001B3)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)


@nb.njit(inline="always", cache=True)
def _mix64(h):
    h = h + np.uint64(0x9E3779B97F4A7C15)
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


@nb.njit(inline="always", cache=True)
def _hash_one(offsets, data, valid, out, i):
    a, b = offsets[i], offsets[i + 1]
    if b == a or not valid[i]:
        out[i] = MISSING
        return
    h = _FNV_OFFSET
    for k in range(a, b):
        h = (h ^ np.uint64(data[k])) * _FNV_PRIME
    v = np.int64(_mix64(h))
    out[i] = v + 1 if v == MISSING else v


@nb.njit(parallel=True, cache=True)
def _hash_strings_parallel(offsets, data, valid, out):
    for i in nb.prange(offsets.size - 1):
        _hash_one(offsets, data, valid, out, i)


@nb.njit(cache=True)
def _hash_strings_serial(offsets, data, valid, out):
    for i in range(offsets.size - 1):
        _hash_one(offsets, data, valid, out, i)


def hash_strings(offsets, data, valid, out):
    """FNV-1a over each string's bytes, then the splitmix64 finaliser; empty or invalid -> MISSING."""
    (_hash_strings_parallel if out.size >= PARALLEL_MIN else _hash_strings_serial)(offsets, data, valid, out)


@nb.njit(inline="always", cache=True)
def _parse_one(offsets, data, values, missing, invalid, i):
    a, b = offsets[i], offsets[i + 1]
    values[i] = 0
    missing[i] = a == b
    invalid[i] = False
    if a == b:
        return
    neg = data[a] == 45  # '-'
    start = a + 1 if neg else a
    if start == b or b - start > 18:
        invalid[i] = True
        return
    v = np.int64(0)
    for k in range(start, b):
        c = data[k]
        if c < 48 or c > 57:
            invalid[i] = True
            break
        v = v * 10 + (c - 48)
    values[i] = -v if neg else v


@nb.njit(parallel=True, cache=True)
def _parse_ints_parallel(offsets, data, values, missing, invalid):
    for i in nb.prange(offsets.size - 1):
        _parse_one(offsets, data, values, missing, invalid, i)


@nb.njit(cache=True)
def _parse_ints_serial(offsets, data, values, missing, invalid):
    for i in range(offsets.size - 1):
        _parse_one(offsets, data, values, missing, invalid, i)


def parse_ints(offsets, data, values, missing, invalid):
    """Parse optional-minus decimal integers (at most 18 digits); empty -> missing; else invalid."""
    kernel = _parse_ints_parallel if values.size >= PARALLEL_MIN else _parse_ints_serial
    kernel(offsets, data, values, missing, invalid)


@nb.njit(inline="always", cache=True)
def _bucket_one(values, missing, out, i):
    v = values[i]
    if missing[i]:
        out[i] = MISSING
    elif v > 2:
        out[i] = np.int64(np.floor(np.log(np.float64(v)) ** 2))
    else:
        out[i] = v


@nb.njit(parallel=True, cache=True)
def _bucket_parallel(values, missing, out):
    for i in nb.prange(values.size):
        _bucket_one(values, missing, out, i)


@nb.njit(cache=True)
def _bucket_serial(values, missing, out):
    for i in range(values.size):
        _bucket_one(values, missing, out, i)


def bucket_log_square(values, missing, out):
    """Criteo numeric bucketing: v -> floor(ln(v)^2) if v > 2 else v; missing -> MISSING."""
    (_bucket_parallel if values.size >= PARALLEL_MIN else _bucket_serial)(values, missing, out)


@nb.njit(inline="always", cache=True)
def _slot(value, field, mask):
    return np.int64(_mix64(np.uint64(value) ^ (np.uint64(field) * np.uint64(0x9E3779B97F4A7C15))) & mask)


@nb.njit(cache=True)
def build_table(values, fields, ids, capacity):
    """Open-addressing hash table of (field, value) -> id; capacity a power of two > 1.5x entries."""
    keys = np.empty(capacity, dtype=np.int64)
    key_fields = np.full(capacity, -1, dtype=np.int32)
    table_ids = np.empty(capacity, dtype=np.int64)
    mask = np.uint64(capacity - 1)
    for k in range(values.size):
        s = _slot(values[k], fields[k], mask)
        while key_fields[s] != -1:
            s = (s + 1) & (capacity - 1)
        keys[s], key_fields[s], table_ids[s] = values[k], fields[k], ids[k]
    return keys, key_fields, table_ids


@nb.njit(inline="always", cache=True)
def _lookup_row(raw, keys, key_fields, table_ids, offsets, oov_id, missing_id, out, i):
    f = raw.shape[0]
    capacity = keys.size
    mask = np.uint64(capacity - 1)
    for j in range(f):
        x = raw[j, i]
        if x == MISSING:
            out[i, j] = offsets[j] + missing_id
            continue
        s = _slot(x, j, mask)
        local = oov_id
        while key_fields[s] != -1:
            if key_fields[s] == j and keys[s] == x:
                local = table_ids[s]
                break
            s = (s + 1) & (capacity - 1)
        out[i, j] = offsets[j] + local


@nb.njit(parallel=True, cache=True)
def _lookup_parallel(raw, keys, key_fields, table_ids, offsets, oov_id, missing_id, out):
    for i in nb.prange(raw.shape[1]):
        _lookup_row(raw, keys, key_fields, table_ids, offsets, oov_id, missing_id, out, i)


@nb.njit(cache=True)
def _lookup_serial(raw, keys, key_fields, table_ids, offsets, oov_id, missing_id, out):
    for i in range(raw.shape[1]):
        _lookup_row(raw, keys, key_fields, table_ids, offsets, oov_id, missing_id, out, i)


def lookup_ids(raw, keys, key_fields, table_ids, offsets, oov_id, missing_id, out):
    """raw (fields, rows) int64 -> out (rows, fields) global int32 ids: hash lookup of (field, value)."""
    kernel = _lookup_parallel if raw.size >= PARALLEL_MIN else _lookup_serial
    kernel(raw, keys, key_fields, table_ids, offsets, oov_id, missing_id, out)
