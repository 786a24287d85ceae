"""Output folders: each command writes into a folder of its own kind, and never into another kind without force.

A folder written by lptsim holds a small marker, ``.lptsim-output.json`` (``{"kind": ...}``). A command
may write into a new or empty folder, or one of its own kind; a folder of another kind, or a
non-empty folder lptsim did not write, is refused with a one-line message unless ``force=True``
(``--force``). Folders written before the marker existed are recognised by their files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lptsim import __version__
from lptsim.atomic import write_json_atomic

MARKER = ".lptsim-output.json"
KINDS = {
    "prepared": "prepared data (`lptsim ctr prepare`)",
    "run": "a training run (`lptsim ctr train`)",
    "table": "a results table (`lptsim ctr table`)",
    "figs": "figures (`lptsim figs`)",
    "verify": "verification results (`lptsim verify --out`)",
}
# Files that identify a folder written before markers existed.
_SIGNATURES = {
    "prepared": ("manifest.json", "feature_map.json"),
    "run": ("run.json", "checkpoint.pt", "checkpoint.json", "log.json"),
    "table": ("table.md", "table.csv"),
    "verify": ("verify.json",),
}


class OutputFolderError(ValueError):
    """The output folder holds something else; writing there could mix or overwrite unrelated files."""


def kind_of(folder: str | Path) -> str | None:
    """The kind of lptsim output ``folder`` holds, or None (missing, empty, or not written by lptsim)."""
    folder = Path(folder)
    marker = folder / MARKER
    if marker.is_file():
        try:
            kind = json.loads(marker.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind in KINDS:
            return kind
    for kind, files in _SIGNATURES.items():
        if any((folder / f).exists() for f in files):
            return kind
    return None


def claim(folder: str | Path, kind: str, force: bool = False, reuse: bool = True) -> Path:
    """Make ``folder`` (or accept it) as an output folder of ``kind``; return it.

    Raises :class:`OutputFolderError` when it is a file, holds another kind of output, or is a
    non-empty folder not written by lptsim, unless ``force``. ``reuse=False``: a folder that already
    holds output of ``kind`` is refused too (writing would replace it, e.g. prepared data that runs
    were trained on), unless ``force``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}; one of {sorted(KINDS)}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"{folder}: exists and is not a folder; choose a folder for the output")
    found = kind_of(folder) if folder.exists() else None
    if not force and found == kind and not reuse and any(p.name != MARKER for p in folder.iterdir()):
        raise OutputFolderError(f"{folder}: already holds {KINDS[kind]}; writing there would replace it (runs "
                                "trained on it keep their own copy of its vocabulary); choose a new or empty folder, "
                                "or pass --force to replace it")
    if not force and found != kind:
        if found is not None:
            raise OutputFolderError(f"{folder}: holds {KINDS[found]}, not {KINDS[kind]}; choose another output "
                                    "folder, or pass --force to write into it anyway")
        entries = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise OutputFolderError(f"{folder}: is not empty ({shown}) and was not written by lptsim; choose a new "
                                    "or empty folder, or pass --force to write into it anyway")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(f"{folder}: cannot be made ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputFolderError(f"{folder}: not writable (no permission, or a read-only file system); choose a folder "
                                "you can write to")
    if found != kind or not (folder / MARKER).is_file():
        write_json_atomic(folder / MARKER, {"kind": kind, "lptsim_version": __version__})
    return folder
