"""``lptsim ctr table``: the paper-style grid (methods x bits x seeds) as Markdown, CSV and a plot.

Each run goes to ``OUT/runs/<method>_b<bits>_s<seed>/``; a finished run (metrics.json present)
is not run again, so an interrupted table resumes where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np

from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.train import TrainConfig, train

# Table method name -> (embedding method, extra embedding options)
TABLE_METHODS = {
    "fp": ("fp", {}), "lpt-dr": ("lpt-dr", {}), "lpt-sr": ("lpt-sr", {}), "alpt": ("alpt", {}),
    "alpt-1pass": ("alpt", {"alpt_variant": "one-pass"}), "lsq": ("lsq", {}), "pact": ("pact", {}),
}


def run_grid(data: PreparedData, base: TrainConfig, methods: list[str], bits: list[int], seeds: int, out: Path,
             progress: bool = True) -> list[dict]:
    """Train every (method, bits, seed) not yet done; return one record per run."""
    unknown = [m for m in methods if m not in TABLE_METHODS]
    if unknown:
        raise ValueError(f"unknown table method(s) {unknown}; choose from {sorted(TABLE_METHODS)}")
    records = []
    for method in methods:
        emb_method, extra = TABLE_METHODS[method]
        for b in ([8] if method == "fp" else bits):
            for seed in range(seeds):
                run = out / "runs" / f"{method}_b{b}_s{seed}"
                if (run / "metrics.json").exists():
                    metrics = json.loads((run / "metrics.json").read_text())
                else:
                    cfg = replace(base, method=emb_method, bits=b, seed=seed,
                                  embedding_options={**base.embedding_options, **extra})
                    if progress:
                        print(f"[table] {method}, {b} bits, seed {seed}")
                    metrics = train(data, cfg, run, resume=(run / "checkpoint.pt").exists(), progress=False)
                records.append({"method": method, "bits": b if method != "fp" else 32, "seed": seed, **{
                    k: metrics[k] for k in ("test_auc", "test_logloss", "train_samples_per_s", "table_bytes",
                                            "embedding_bytes", "fp32_table_bytes") if k in metrics}})
    return records


def summarize(records: list[dict]) -> list[dict]:
    """Mean and sd over seeds for each (method, bits)."""
    rows = []
    keys = sorted({(r["method"], r["bits"]) for r in records}, key=lambda k: (list(TABLE_METHODS).index(k[0]), k[1]))
    for method, bits in keys:
        rs = [r for r in records if r["method"] == method and r["bits"] == bits]
        auc = np.array([r["test_auc"] for r in rs])
        ll = np.array([r["test_logloss"] for r in rs])
        row = {"method": method, "bits": bits, "seeds": len(rs), "auc_mean": auc.mean(),
               "auc_sd": auc.std(ddof=1) if len(rs) > 1 else 0.0, "logloss_mean": ll.mean(),
               "logloss_sd": ll.std(ddof=1) if len(rs) > 1 else 0.0,
               "samples_per_s": float(np.mean([r["train_samples_per_s"] for r in rs]))}
        if "table_bytes" in rs[0]:
            row.update(table_mb=rs[0]["table_bytes"] / 2**20, training_mb=rs[0]["embedding_bytes"] / 2**20,
                       compression=rs[0]["fp32_table_bytes"] / rs[0]["table_bytes"])
        rows.append(row)
    return rows


def to_markdown(rows: list[dict], title: str) -> str:
    lines = [f"### {title}", "", "| method | bits | test AUC | test logloss | table MiB | x vs FP32 | "
             "training MiB (with optimizer state) | samples/s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['bits']} | {r['auc_mean']:.4f} ± {r['auc_sd']:.4f} | "
                     f"{r['logloss_mean']:.4f} ± {r['logloss_sd']:.4f} | {r.get('table_mb', float('nan')):.3f} | "
                     f"{r.get('compression', float('nan')):.1f} | {r.get('training_mb', float('nan')):.3f} | "
                     f"{r['samples_per_s']:,.0f} |")
    lines.append(f"\nmean ± sd over {rows[0]['seeds'] if rows else 0} seeds.")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        if method == "fp":
            ax.axhline(rs[0]["auc_mean"], color="black", ls="--", label="fp (32 bits)")
            continue
        ax.errorbar([r["bits"] for r in rs], [r["auc_mean"] for r in rs], yerr=[r["auc_sd"] for r in rs],
                    marker="o", capsize=3, label=method)
    ax.set(xlabel="bits per weight", ylabel="test AUC", xticks=sorted({r["bits"] for r in rows if r["bits"] != 32}))
    ax.set_title(textwrap.fill(title, 60), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    for suffix in (".png", ".pdf"):
        fig.savefig(path.with_suffix(suffix), dpi=160)
    plt.close(fig)
