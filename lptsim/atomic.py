"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A reader (or a run restarted after a kill) sees either the old file or the new one, never half.
The temporary file is created with mode 0o666 less the process umask, exactly like a file
opened with ``open(path, "w")``, so atomically written files get the user's usual permissions.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def temporary_path(path: Path) -> Path:
    """A fresh hidden name beside ``path`` for its temporary copy."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


class WriteError(OSError):
    """A file could not be created in a folder; its message names the folder and the file meant, not the
    temporary name."""

    def __str__(self) -> str:
        return str(self.strerror)


_TEMPORARY = re.compile(r"\.(?P<name>.+)\.\d+-[0-9a-f]{8}\.tmp")


def open_new(path: Path, mode: str = "wb") -> IO:
    """Create ``path`` exclusively with the umask's permissions (what ``open(path, "w")`` would give).

    Raises :class:`WriteError` naming the folder (and, for a :func:`temporary_path`, the file it stands for)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        found = _TEMPORARY.fullmatch(path.name)
        name = found.group("name") if found else path.name
        raise WriteError(exc.errno, f"{path.parent}: cannot write {name} there ({exc.strerror or exc})") from None
    return os.fdopen(fd, mode)


def discard(path: Path) -> None:
    """Remove a temporary file if it is there, never raising: the error that led here is the one to report (on a
    read-only file system even removing a missing file fails)."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        pass


def _atomic(path: Path, mode: str, write: Callable[[IO], None], sync: bool = False) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open_new(tmp, mode) as f:
            write(f)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    _atomic(path, "w", lambda f: f.write(text))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    _atomic(path, "wb", lambda f: f.write(data))


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically."""
    _atomic(path, "w", lambda f: json.dump(payload, f, indent=2))


def save_torch_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` atomically, flushed to disk (run checkpoints use lptsim.ctr.checkpoint)."""
    import torch

    _atomic(path, "wb", lambda f: torch.save(obj, f), sync=True)
