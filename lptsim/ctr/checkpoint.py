"""Checkpoint files that hold data only, survive damage, and never run code when loaded.

A checkpoint is ``torch.save`` of ``{"format": "lptsim-checkpoint", "version": 1, "sha256": ...,
"payload": ...}`` where the payload is tensors and plain Python values (dict, list, tuple, str,
int, float, bool, None) and ``sha256`` is a digest of it. :func:`load` reads files with
``torch.load(weights_only=True)``, so a file carrying any other object is refused before it can
execute, and recomputes the digest, so a flipped byte that torch itself would accept is caught.

:func:`save` writes to a temporary file, flushes it to disk, reads it back and checks it, and only
then moves the current file to ``NAME.prev.pt`` and the new one into place: a run always has a
good checkpoint, and a damaged one can be replaced by the one before it (:func:`load_latest`).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import torch

from lptsim.atomic import discard, open_new, temporary_path

FORMAT, VERSION = "lptsim-checkpoint", 1


class CheckpointError(ValueError):
    """A checkpoint cannot be used (missing, damaged, foreign, or holding code); the message names the file."""


def previous_path(path: Path) -> Path:
    """Where :func:`save` keeps the file that ``path`` replaced (``checkpoint.pt`` -> ``checkpoint.prev.pt``)."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _update(h: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)};".encode())
        h.update(t.view(torch.uint8).numpy() if t.numel() else b"")
    elif isinstance(obj, dict):
        h.update(b"D%d;" % len(obj))
        for k in sorted(obj, key=lambda k: (type(k).__name__, repr(k))):
            _update(h, k)
            _update(h, obj[k])
    elif isinstance(obj, list | tuple):
        h.update(b"%s%d;" % (b"L" if isinstance(obj, list) else b"U", len(obj)))
        for item in obj:
            _update(h, item)
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        h.update(b"S%d;" % len(data) + data)
    elif isinstance(obj, bool):
        h.update(b"B1;" if obj else b"B0;")
    elif isinstance(obj, int):
        h.update(b"I%d;" % obj)
    elif isinstance(obj, float):
        h.update(b"F" + obj.hex().encode() + b";")
    elif obj is None:
        h.update(b"N;")
    else:
        raise TypeError(f"a checkpoint holds tensors and plain Python values only, not {type(obj).__name__}")


def digest(payload: Any) -> str:
    """SHA-256 of a payload's structure, types and tensor bytes (independent of dict order and device)."""
    h = hashlib.sha256()
    _update(h, payload)
    return h.hexdigest()


def _why(path: Path, exc: Exception) -> str:
    """A short reason for a file torch could not read."""
    text = str(exc)
    if path.stat().st_size == 0:
        return "the file is empty"
    if "central directory" in text or isinstance(exc, EOFError):
        return "truncated: the file ends early"
    return "its contents are not a torch archive of tensors and plain values"


def _read(path: Path, map_location: Any) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: not found")
    try:
        record = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for bad files; all mean "unusable"
        text = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found or "Unsupported global" in text:
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(f"{path}: refused: it holds Python objects other than tensors and plain values"
                                  f"{what}; loading it could run code") from None
        raise CheckpointError(f"{path}: damaged or not a checkpoint ({_why(path, exc)})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or "payload" not in record:
        raise CheckpointError(f"{path}: not an lptsim checkpoint (written by another program or an older lptsim)")
    if not isinstance(record.get("version"), int) or record["version"] > VERSION:
        raise CheckpointError(f"{path}: written by a newer lptsim (format version {record.get('version')}); "
                              "upgrade lptsim to read it")
    try:
        ok = digest(record["payload"]) == record.get("sha256")
    except TypeError:
        ok = False
    if not ok:
        raise CheckpointError(f"{path}: damaged (its contents do not match the checksum written with it)")
    return record


def load(path: str | Path, map_location: Any = "cpu") -> dict:
    """The payload of the checkpoint at ``path``; :class:`CheckpointError` (one line, naming it) when unusable."""
    return _read(Path(path), map_location)["payload"]


def load_latest(path: str | Path, map_location: Any = "cpu") -> tuple[dict, Path, str | None]:
    """(payload, file used, why ``path`` itself was skipped or None): ``path``, else its ``.prev`` copy.

    Raises :class:`CheckpointError` naming both files when neither is usable.
    """
    path = Path(path)
    try:
        return load(path, map_location), path, None
    except CheckpointError as first:
        prev = previous_path(path)
        if not prev.exists():
            raise
        try:
            return load(prev, map_location), prev, str(first)
        except CheckpointError as second:
            raise CheckpointError(f"{first}; the previous one is unusable too: {second}") from None


def save(payload: dict, path: str | Path) -> None:
    """Write ``payload`` to ``path``: verified before it replaces the current file, which becomes ``.prev``."""
    path = Path(path)
    record = {"format": FORMAT, "version": VERSION, "sha256": digest(payload), "payload": payload}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open_new(tmp) as f:
            torch.save(record, f)
            f.flush()
            os.fsync(f.fileno())
        _read(tmp, "cpu")  # the bytes on disk read back to the same payload
        if path.exists():
            os.replace(path, previous_path(path))
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise
