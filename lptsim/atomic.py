"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A reader (or a run restarted after a kill) sees either the old file or the new one, never half.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def _atomic(path: Path, mode: str, write: Callable[[IO], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    _atomic(path, "w", lambda f: f.write(text))


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically."""
    _atomic(path, "w", lambda f: json.dump(payload, f, indent=2))


def save_torch_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` atomically."""
    import torch

    _atomic(path, "wb", lambda f: torch.save(obj, f))
