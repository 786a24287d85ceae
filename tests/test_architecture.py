"""The shape of the code: no import cycle anywhere in lptsim (lazy imports included), small files in lptsim/ctr, and
one home for the table's numerical contract."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lptsim"
MAX_CTR_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _targets(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The lptsim modules ``module`` imports, at its top or inside functions. Importing ``a.b.c`` also runs the
    ``__init__`` of ``a`` and ``a.b``: those count too, except the packages ``module`` itself lives in."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                names.add(full if full in known else base)
    out = set()
    for name in names:
        if not name.startswith("lptsim"):
            continue
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            prefix = ".".join(parts[:k])
            inside = module == prefix or module.startswith(prefix + ".")
            if prefix in known and (k == len(parts) or not inside) and prefix != module:
                out.add(prefix)
    return out


def import_cycles() -> list[list[str]]:
    """Every strongly connected group of more than one module in lptsim's import graph (Tarjan's algorithm)."""
    known = _modules()
    graph = {m: sorted(_targets(m, p, known)) for m, p in known.items()}
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return groups


def test_no_import_cycle_in_lptsim():
    assert import_cycles() == []


def test_the_cycle_finder_sees_a_planted_cycle(tmp_path, monkeypatch):
    """The control: the cycle this issue removed (kernels importing back from the table), planted again."""
    known = _modules()
    planted = tmp_path / "kernels_init.py"
    planted.write_text(known["lptsim.ctr.kernels"].read_text() + "\n\ndef _f():\n"
                       "    from lptsim.ctr.embedding import LowPrecisionEmbedding  # noqa\n")
    monkeypatch.setitem(globals(), "_modules", lambda: {**known, "lptsim.ctr.kernels": planted})
    cycles = import_cycles()
    assert any({"lptsim.ctr.kernels", "lptsim.ctr.embedding"} <= set(group) for group in cycles)


def test_no_file_in_ctr_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in (PACKAGE / "ctr").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_CTR_LINES}
    assert long == {}


def test_the_contract_has_one_home():
    """Stream bases, optimizer codes and Adam's constants are the contract's: no backend retypes them."""
    kernels = (PACKAGE / "ctr" / "kernels").glob("*.py")
    backends = (PACKAGE / "ctr" / "table" / "backends").glob("*.py")
    for path in [*kernels, *backends]:
        text = path.read_text()
        assert "4611686018427387905" not in text and "2**62" not in text, path
        assert not re.search(r"\b0\.999\b|\b1e-12\b|\b1e-8\b", text), path  # betas and eps come from the contract
        assert not re.search(r'\{"sgd": [0-9]', text), path  # optimizer codes too
