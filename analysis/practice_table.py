"""Summarize analysis/practice_runs.py's WORKDIR/results.jsonl: mean ± sd over seeds per (group, label)."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def sd(a: np.ndarray) -> str:
    return f" ± {a.std(ddof=1):.4f}" if a.size > 1 else ""


def table(path: Path) -> str:
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for line in path.read_text().splitlines():
        row = json.loads(line)
        cells[(row["group"], row["label"])].append(row)
    out = ["| group | run | seeds | test AUC | test logloss | best epoch(s) | epochs run |",
           "|---|---|---|---|---|---|---|"]
    for (group, label), rows in cells.items():
        auc = np.array([r["test_auc"] for r in rows])
        ll = np.array([r["test_logloss"] for r in rows])
        out.append(f"| {group} | {label} | {len(rows)} | {auc.mean():.4f}{sd(auc)} | {ll.mean():.4f}{sd(ll)} | "
                   f"{' '.join(str(r['best_epoch']) for r in rows)} | {' '.join(str(r['epochs_run']) for r in rows)} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(table(Path(sys.argv[1]) / "results.jsonl"))
