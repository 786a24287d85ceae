"""Issue 28: the alpt-paper preset's semantics, one factor at a time, against the authors' code (CPU, sequential).

Usage: python analysis/ablation_alpt_paper.py WORKDIR [--data PREPARED] [--epochs N] [--seeds K] [--bits B ...]
       [--factors NAME ...]

Every run is ``lptsim ctr train --preset alpt-paper --model dcn --method alpt --batch-size 256`` (the batch the
authors' code was run with on the 10k sample) on a prepared random 8:1:1 split; each factor changes one thing from
that baseline. The commands go to WORKDIR/commands.txt, one line per run to WORKDIR/results.jsonl
(analysis/practice_runs.py's helpers); ``--table`` prints the markdown table of a finished WORKDIR.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from practice_runs import CRITEO, record, sh  # noqa: E402

# name -> (what it changes, extra flags, [embedding_options] overrides)
FACTORS: dict[str, tuple[str, list[str], dict]] = {
    "baseline": ("the preset (decay on touched rows, one step per table, SR initial table, file order, "
                 "no BN refresh)", [], {}),
    "every-row-decay": ("weight decay on every row at every step (the authors' dense Adam)",
                        ["--table-decay", "every-row"], {}),
    "row-steps": ("one step per row", [], {"step_granularity": "row"}),
    "nearest-init": ("initial table rounded to nearest", [], {"init_rounding": "nearest"}),
    "shuffle": ("training rows reshuffled every epoch", ["--shuffle"], {}),
    "bn-refresh": ("BatchNorm statistics refreshed before each evaluation", ["--bn-refresh"], {}),
    # not one factor: the two changes the one-factor runs favoured, together (the new preset)
    "every-row+bn-refresh": ("both of the above together (the preset since issue 28)",
                             ["--table-decay", "every-row", "--bn-refresh"], {}),
}
# the baseline's semantics spelled out (the preset before issue 28), so the runs do not follow later preset changes
BASELINE = ["--table-decay", "touched", "--no-bn-refresh", "--no-shuffle"]
AUTHORS = {8: (0.7456, 0.0023), 2: (0.7388, 0.0014)}  # the authors' code on this sample (issue 28), 3 seeds


def config_file(work: Path, name: str, options: dict) -> list[str]:
    if not options:
        return []
    path = work / f"{name}.toml"
    path.write_text("[embedding_options]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items()))
    return ["--config", str(path)]


def run(args: argparse.Namespace) -> None:
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    data = args.data or work / "criteo"
    if not (data / "feature_map.json").exists():
        sh(work, "ctr", "prepare", "--dataset", "criteo", "--input", str(CRITEO), "--seed", "0", "--out", str(data),
           "--quiet")
    for bits in args.bits:
        for name in args.factors:
            _, flags, options = FACTORS[name]
            for seed in range(args.seeds):
                out = work / f"{name}_b{bits}_s{seed}"
                if (out / "metrics.json").exists():
                    continue
                sh(work, "ctr", "train", "--data", str(data), "--quiet", "--device", "cpu", "--preset", "alpt-paper",
                   "--model", "dcn", "--method", "alpt", "--bits", str(bits), "--batch-size", "256", "--epochs",
                   str(args.epochs), *BASELINE, *flags, *config_file(work, name, options), "--seed", str(seed), "--out",
                   str(out), "--force")
                record(work, f"{bits}-bit", name, out)


def table(work: Path) -> str:
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for line in (work / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        cells[(row["group"], row["label"])].append(row)
    out = ["| bits | factor (one change from the baseline) | seeds | test AUC mean ± sd | vs baseline | "
           "authors' code | best epochs | epochs run |", "|---|---|---|---|---|---|---|---|"]
    for (group, label), rows in sorted(cells.items(), key=lambda kv: (-int(kv[0][0].split("-")[0]),
                                                                      list(FACTORS).index(kv[0][1]))):
        auc = np.array([r["test_auc"] for r in rows])
        base = np.array([r["test_auc"] for r in cells.get((group, "baseline"), [])])
        bits = int(group.split("-")[0])
        delta = f"{auc.mean() - base.mean():+.4f}" if base.size and label != "baseline" else ""
        sd = f" ± {auc.std(ddof=1):.4f}" if auc.size > 1 else ""
        ref = AUTHORS.get(bits)
        out.append(f"| {bits} | {label}: {FACTORS[label][0]} | {auc.size} | {auc.mean():.4f}{sd} | {delta} | "
                   f"{f'{ref[0]:.4f} ± {ref[1]:.4f}' if ref else ''} | "
                   f"{' '.join(str(r['best_epoch']) for r in rows)} | {' '.join(str(r['epochs_run']) for r in rows)} |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work", type=Path)
    p.add_argument("--data", type=Path, help="a prepared folder (default: prepare WORKDIR/criteo, random 8:1:1, "
                   "seed 0)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--bits", type=int, nargs="+", default=[8, 2])
    p.add_argument("--factors", nargs="+", default=list(FACTORS), choices=list(FACTORS))
    p.add_argument("--table", action="store_true", help="print the table of a finished WORKDIR and exit")
    args = p.parse_args()
    if args.table:
        print(table(args.work))
    else:
        run(args)


if __name__ == "__main__":
    main()
