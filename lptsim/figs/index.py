"""What ``lptsim figs`` leaves besides the figures: figs_data.json (the verification results and the sweeps'
data, from which ``lptsim figs --redraw`` redraws every figure in seconds) and index.md (every figure with its
caption and the ids of the checks it illustrates)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lptsim.atomic import write_json_atomic, write_text_atomic
from lptsim.figs.common import Drawn
from lptsim.figs.results import FIGURES
from lptsim.verify.report import CheckResult

DATA_FILE = "figs_data.json"
INDEX_FILE = "index.md"


def save_data(path: Path, results: list[CheckResult], sweeps: dict[str, Any], meta: dict[str, Any]) -> None:
    """Store what every figure is drawn from (atomically: a cut run never leaves half a file)."""
    write_json_atomic(path, {"meta": meta, "results": [r.to_json() for r in results], "sweeps": sweeps})


def load_data(path: Path) -> tuple[list[CheckResult], dict[str, Any], dict[str, Any]]:
    """The results, sweep data and meta (seeds, budget) that ``save_data`` stored."""
    try:
        payload = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no figure data here (run `lptsim figs --out DIR` first)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a figs_data.json ({e})") from None
    return [CheckResult.from_json(r) for r in payload["results"]], payload["sweeps"], payload.get("meta", {})


def check_ids(name: str, results: list[CheckResult]) -> list[str]:
    """The ids of the checks the figure ``name`` illustrates (by ``FIGURES``'s id prefixes)."""
    prefixes = FIGURES.get(name, ())
    return [r.id for r in results if prefixes and r.id.startswith(prefixes)]


def _plain_text(caption: str) -> str:
    """Markdown renders $...$ as maths in most viewers; leave it, but escape stray underscores outside it."""
    parts = re.split(r"(\$[^$]*\$)", caption)
    return "".join(p if p.startswith("$") else p.replace("_", r"\_") for p in parts)


def write_index(out: Path, drawn: list[Drawn], results: list[CheckResult], header: str = "") -> Path:
    """index.md: each figure as an image, its caption and the check ids (``lptsim verify --explain ID``)."""
    lines = ["# Figures", "", header, "",
             "Each figure's caption ends with its setting; check ids open with `lptsim verify --explain ID`.", "",
             "| figure | checks it illustrates |", "|---|---|"]
    for d in drawn:
        ids = ", ".join(f"`{i}`" for i in check_ids(d.name, results)) or "(an overview: no check)"
        lines.append(f"| [{d.name}](#{d.name.replace('_', '-')}) | {ids} |")
    for d in drawn:
        ids = ", ".join(f"`{i}`" for i in check_ids(d.name, results)) or "none (an overview)"
        caption = _plain_text(d.caption).replace("\n", "  \n")
        lines += ["", f"## {d.name}", "", f"![{d.name}]({d.name}.png)", "", caption, "", f"Checks: {ids}.",
                  f"Files: [{d.name}.png]({d.name}.png), [{d.name}.pdf]({d.name}.pdf)."]
    path = out / INDEX_FILE
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path
