"""Issue 18's must-show measurements on the shared samples (sequential, CPU, short).

Usage: python analysis/practice_runs.py WORKDIR [GROUP ...]
Groups: prepare, fuxictr, alpt-paper, alpt-paper-b256, bn-refresh, defaults, avazu, export (default: all).
Every command is printed before it runs and appended to WORKDIR/commands.txt; each run's metrics.json
stays in its folder and one line per run goes to WORKDIR/results.jsonl. The split file is generated
(a seeded 8:1:1 permutation) at /work/notes/criteo_split.txt if absent.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("LPTSIM_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
CRITEO = SHARED / "criteo" / "criteo_train_head10k.txt"
AVAZU = SHARED / "avazu" / "avazu_train_head5000.csv"
SPLIT = Path(os.environ.get("LPTSIM_SPLIT", "/work/notes/criteo_split.txt"))
LPT = [sys.executable, "-m", "lptsim"]


def sh(work: Path, *argv: str) -> str:
    text = " ".join(shlex.quote(a) for a in ["lptsim", *argv])
    print(f"$ {text}", flush=True)
    with open(work / "commands.txt", "a") as f:
        f.write(text + "\n")
    done = subprocess.run([*LPT, *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {text}\n{done.stderr}")
    print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "", flush=True)
    return done.stdout


def record(work: Path, group: str, label: str, run: Path) -> None:
    m = json.loads((run / "metrics.json").read_text())
    row = {"group": group, "label": label, "seed": m["config"]["seed"], "test_auc": m["test_auc"],
           "test_logloss": m["test_logloss"], "best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"],
           "run": str(run)}
    with open(work / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def split_file() -> Path:
    if not SPLIT.exists():
        n = sum(1 for _ in open(CRITEO, "rb"))
        perm = np.random.default_rng(2026).permutation(n)
        codes = np.empty(n, dtype=int)
        codes[perm[: n * 8 // 10]], codes[perm[n * 8 // 10: n * 9 // 10]], codes[perm[n * 9 // 10:]] = 0, 1, 2
        SPLIT.write_text("\n".join(map(str, codes)) + "\n")
    return SPLIT


def main(work: Path, groups: list[str]) -> None:
    work.mkdir(parents=True, exist_ok=True)
    data = work / "criteo"
    if "prepare" in groups:
        sh(work, "ctr", "prepare", "--dataset", "criteo", "--input", str(CRITEO), "--split-file", str(split_file()),
           "--out", str(data), "--force", "--quiet")
    q = ["--data", str(data), "--quiet", "--device", "cpu"]
    if "fuxictr" in groups:
        for model in ("dnn", "dcn"):
            for seed in range(3):
                run = work / f"fuxictr_{model}_s{seed}"
                sh(work, "ctr", "train", *q, "--preset", "fuxictr", "--model", model, "--seed", str(seed),
                   "--out", str(run), "--force")
                record(work, "fuxictr", f"{model} fp", run)
    for group, extra in (("alpt-paper", []), ("alpt-paper-b256", ["--batch-size", "256"])):
        if group not in groups:
            continue
        for method, bits in (("fp", 8), ("alpt", 2), ("alpt", 4), ("alpt", 8)):
            for seed in range(3):
                run = work / f"{group}_dcn_{method}{bits}_s{seed}"
                sh(work, "ctr", "train", *q, "--preset", "alpt-paper", "--model", "dcn", "--method", method, "--bits",
                   str(bits), *extra, "--seed", str(seed), "--out", str(run), "--force")
                record(work, group, f"dcn {method}" + (f" {bits}-bit" if method != "fp" else ""), run)
    if "bn-refresh" in groups:  # the authors' BatchNorm MLP, with the statistics refreshed before each evaluation
        for seed in range(3):
            run = work / f"bn-refresh_dcn_fp8_s{seed}"
            sh(work, "ctr", "train", *q, "--preset", "alpt-paper", "--model", "dcn", "--batch-size", "256",
               "--bn-refresh", "--seed", str(seed), "--out", str(run), "--force")
            record(work, "bn-refresh", "dcn fp --bn-refresh", run)
    if "defaults" in groups:
        # the previous defaults (torch dense init) against the candidate (Xavier-normal), nothing else changed
        for model in ("dnn", "dcn"):
            for init in ("torch", "xavier_normal"):
                for seed in range(3):
                    run = work / f"defaults_{model}_{init}_s{seed}"
                    sh(work, "ctr", "train", *q, "--model", model, "--dense-init", init, "--seed", str(seed),
                       "--out", str(run), "--force")
                    record(work, "defaults", f"{model} fp dense_init={init}", run)
    if "avazu" in groups:
        lines = AVAZU.read_text().splitlines(keepends=True)
        header, rows = lines[0], lines[1:]
        n = len(rows)
        parts = {"train": rows[: n * 8 // 10], "valid": rows[n * 8 // 10: n * 9 // 10], "test": rows[n * 9 // 10:]}
        for name, part in parts.items():  # in time order, as the file is: train on the past, test on the future
            (work / f"avazu_{name}.csv").write_text(header + "".join(part))
        sh(work, "ctr", "prepare", "--dataset", "avazu", "--train", str(work / "avazu_train.csv"), "--valid",
           str(work / "avazu_valid.csv"), "--test", str(work / "avazu_test.csv"), "--out", str(work / "avazu"),
           "--force", "--quiet")
        run = work / "avazu_dnn"
        sh(work, "ctr", "train", "--data", str(work / "avazu"), "--quiet", "--device", "cpu", "--model", "dnn",
           "--out", str(run), "--force")
        record(work, "avazu", "dnn fp (defaults)", run)
        sh(work, "ctr", "evaluate", "--run", str(run), "--data", str(work / "avazu"), "--json",
           str(work / "avazu_evaluate.json"))
        sh(work, "ctr", "predict", "--run", str(run), "--input", str(work / "avazu_test.csv"), "--out",
           str(work / "avazu_test_predictions.csv"))
    if "export" in groups:
        run = work / "alpt-paper-b256_dcn_alpt4_s0"
        sh(work, "ctr", "export", "--run", str(run), "--out", str(work / "dcn_alpt4.safetensors"))


if __name__ == "__main__":
    all_groups = ["prepare", "fuxictr", "alpt-paper", "alpt-paper-b256", "bn-refresh", "defaults", "avazu", "export"]
    main(Path(sys.argv[1]), sys.argv[2:] or all_groups)
