"""Per-column transforms: raw cells -> int64 "raw values" that the vocabulary counts.

Missing cells become ``MISSING``. Strings are hashed to 64 bits straight from arrow's
buffers (no Python objects), integers parsed and validated in one pass (numba kernels).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from lptsim.ctr.data import fastparse

MISSING = fastparse.MISSING


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets int64, data uint8, valid bool) of a binary/string arrow array, without copies of the bytes."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not (pa.types.is_binary(arr.type) or pa.types.is_string(arr.type)):
        arr = arr.cast(pa.string())
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset: arr.offset + n + 1].astype(np.int64)
    data_buf = arr.buffers()[2]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(1, np.uint8)
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else np.ones(n, dtype=bool)
    return offsets, data, valid


def hash_binary(arr: pa.Array, out: np.ndarray | None = None) -> np.ndarray:
    """64-bit hashes (FNV-1a + splitmix64) of a binary/string arrow array as int64; empty or null -> MISSING.

    ``out``: an int64 array (e.g. a row of a larger block) to write into instead of a new one.
    """
    offsets, data, valid = _buffers(arr)
    out = np.empty(offsets.size - 1, dtype=np.int64) if out is None else out
    fastparse.hash_strings(offsets, data, valid, out)
    return out


def integer_column(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a binary column of integers. Returns (values int64, missing mask, invalid mask).

    Empty cells are missing; anything but an optional minus sign and 1-18 digits is invalid.
    """
    offsets, data, valid = _buffers(arr)
    n = offsets.size - 1
    values, missing, invalid = np.empty(n, np.int64), np.empty(n, bool), np.empty(n, bool)
    fastparse.parse_ints(offsets, data, values, missing, invalid)
    missing |= ~valid
    return values, missing, invalid


def bucket_numeric(values: np.ndarray, missing: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Criteo numeric bucketing used by the paper's authors: v -> floor(ln(v)^2) if v > 2 else v."""
    out = np.empty(values.size, dtype=np.int64) if out is None else out
    fastparse.bucket_log_square(values, missing, out)
    return out


def is_avazu_hour(values: np.ndarray) -> np.ndarray:
    """True where a YYMMDDHH integer is a real date (2000-2099) and an hour 00-23."""
    ok = (values >= 0) & (values <= 99_99_99_99)
    v = np.where(ok, values, 0)
    hour, day, month, year = v % 100, (v // 100) % 100, (v // 10_000) % 100, 2000 + v // 1_000_000
    ok &= (hour <= 23) & (month >= 1) & (month <= 12) & (day >= 1)
    first = (year - 1970).astype("datetime64[Y]") + (np.clip(month, 1, 12) - 1).astype("timedelta64[M]")
    days_in_month = ((first + 1).astype("datetime64[D]") - first.astype("datetime64[D]")).astype(np.int64)
    return ok & (day <= days_in_month)


def avazu_hour(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Avazu ``hour`` YYMMDDHH -> (hour of day, weekday 0=Monday, weekend flag)."""
    hour = values % 100
    day = (values // 100) % 100
    month = (values // 10_000) % 100
    year = 2000 + values // 1_000_000
    dates = (year - 1970).astype("datetime64[Y]") + (month - 1).astype("timedelta64[M]")
    days = dates.astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday (3)
    return hour, weekday, (weekday >= 5).astype(np.int64)
