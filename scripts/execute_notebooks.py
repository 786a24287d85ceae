"""Execute the teaching notebooks in place, so that they are stored with their outputs (figures, tables), and
record in each code cell's metadata the hash of the source that made its outputs, and in the notebook's
metadata how long it took. tests/test_notebooks.py re-executes every notebook and checks that the stored
outputs come from the current sources (an edited cell whose outputs were not refreshed fails).

    python scripts/execute_notebooks.py [notebooks/01_rounding.ipynb ...]   # default: all of them
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
KEY = "lptsim"


def source_hash(source: str) -> str:
    """The hash a code cell's outputs are stamped with (of its source, trailing space ignored)."""
    return hashlib.sha256(source.strip().encode()).hexdigest()[:16]


def kernel_manager() -> KernelManager:
    """A python3 kernel on this interpreter: a kernelspec copied along with a virtual environment can name
    another environment's Python (and so run another checkout's lptsim)."""
    km = KernelManager(kernel_name="python3")
    km.kernel_spec.argv[0] = sys.executable
    return km


def execute(path: Path, timeout: int = 600) -> tuple[nbformat.NotebookNode, float]:
    """Run a notebook top to bottom in its own folder; returns it with outputs and the seconds it took."""
    book = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(book, km=kernel_manager(), timeout=timeout,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return book, time.perf_counter() - start


def execute_measured(path: Path, timeout: int = 600) -> tuple[nbformat.NotebookNode, float, float]:
    """``execute``, and the CPU seconds the kernel used (on a busy machine wall time says little)."""
    import psutil

    book = nbformat.read(path, as_version=4)
    km = kernel_manager()
    client = NotebookClient(book, km=km, timeout=timeout, resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    cpu = 0.0
    with client.setup_kernel():
        pid = km.provisioner.process.pid
        client.execute(reset_kc=False)
        proc = psutil.Process(pid)
        times = [proc.cpu_times()] + [c.cpu_times() for c in proc.children(recursive=True)]
        cpu = sum(t.user + t.system for t in times)
    return book, time.perf_counter() - start, cpu


def stamp(book: nbformat.NotebookNode, seconds: float, cpu: float) -> None:
    for cell in book.cells:
        if cell.cell_type == "code":
            cell.metadata[KEY] = {"source_sha": source_hash(cell.source)}
    book.metadata[KEY] = {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1)}


def main(paths: list[str]) -> None:
    books = [Path(p) for p in paths] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in books:
        book, seconds, cpu = execute_measured(path)
        stamp(book, seconds, cpu)
        nbformat.write(book, path)
        print(f"{path.name}: {seconds:.1f} s wall, {cpu:.1f} s CPU (kernel)")


if __name__ == "__main__":
    main(sys.argv[1:])
