"""Every teaching notebook is stored executed (outputs made by its current sources, stamped by
scripts/execute_notebooks.py), teaches (prose, exercises each with a collapsible solution), and runs top to
bottom again here, giving the same kinds of output (figures, tables) as stored."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
_spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "scripts" / "execute_notebooks.py")
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)


def _code(book: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in book.cells if c.cell_type == "code"]


def _kinds(cell: nbformat.NotebookNode) -> list[tuple[str, tuple[str, ...]]]:
    """What a cell shows: each output's type and mime types (not the numbers, which vary by machine); stderr
    (warnings) left out, and a print split into several stream outputs counted once."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for o in cell.outputs:
        if o.output_type == "stream" and o.get("name") == "stderr":
            continue
        kind = (o.output_type, tuple(sorted(o.get("data", {}))))
        if not out or out[-1] != kind or kind[0] != "stream":
            out.append(kind)
    return out


def test_there_are_eight_notebooks():
    assert len(NOTEBOOKS) == 8, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_executed_by_its_current_sources(path):
    book = nbformat.read(path, as_version=4)
    for cell in _code(book):
        assert cell.execution_count is not None, f"{path.name}: run scripts/execute_notebooks.py {path.name}"
        stamp = cell.metadata.get(runner.KEY, {}).get("source_sha")
        assert stamp == runner.source_hash(cell.source), (
            f"{path.name}: a cell changed after its outputs were made; run scripts/execute_notebooks.py\n"
            f"{cell.source[:200]}")
        assert not [o for o in cell.outputs if o.output_type == "error"]
    shown = [kind for cell in _code(book) for _, mimes in _kinds(cell) for kind in mimes]
    assert "image/png" in shown, f"{path.name}: no figure stored"
    assert book.metadata[runner.KEY]["seconds"] > 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_teaches(path):
    """Prose, and at least three exercises, each with a solution in a collapsible <details> block."""
    book = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in book.cells if c.cell_type == "markdown")
    exercises = re.findall(r"\*\*Exercise \d+\.\*\*", text)
    solutions = re.findall(r"<details><summary>Solution</summary>.+?</details>", text, flags=re.S)
    assert len(exercises) >= 3 and len(solutions) == len(exercises), (len(exercises), len(solutions))
    assert len(re.findall(r"\S+", text)) >= 600
    assert "What the" in text  # each figure and table is explained ("What the figure shows", ...)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_and_shows_what_is_stored(path):
    stored = nbformat.read(path, as_version=4)
    book, seconds = runner.execute(path, timeout=300)
    print(f"{path.name}: {seconds:.1f} s")
    errors = [o for c in _code(book) for o in c.outputs if o.output_type == "error"]
    assert not errors, errors[0].get("evalue")
    assert [_kinds(c) for c in _code(book)] == [_kinds(c) for c in _code(stored)]
