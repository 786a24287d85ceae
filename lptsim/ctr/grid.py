"""``lptsim ctr table``: the paper-style grid (methods x bits x seeds) as Markdown, CSV and a plot.

Each cell is keyed by its full configuration and the data it trains on: its run goes to
``OUT/runs/<method>_b<bits>_s<seed>-<key>/``, where ``key`` is a hash of both. A finished run
with the same key is reused and an unfinished one resumed, so an interrupted table continues
where it stopped; a table re-run with other options (epochs, lr, dim, data, ...) trains new runs
and never mixes in the old ones.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import textwrap
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.runstore import data_fingerprint
from lptsim.ctr.train import TrainConfig, train

# Table method name -> (embedding method, extra embedding options)
TABLE_METHODS = {
    "fp": ("fp", {}), "lpt-dr": ("lpt-dr", {}), "lpt-sr": ("lpt-sr", {}), "alpt": ("alpt", {}),
    "alpt-1pass": ("alpt", {"alpt_variant": "one-pass"}), "lsq": ("lsq", {}), "pact": ("pact", {}),
}


def check_grid(methods: list[str], bits: list[int], seeds: int) -> None:
    """Refuse an empty or unknown grid before anything runs."""
    unknown = [m for m in methods if m not in TABLE_METHODS]
    if not methods or unknown:
        raise ValueError(f"unknown or no table method(s) {unknown}; choose from {sorted(TABLE_METHODS)}")
    if not bits or any(isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 16 for b in bits):
        raise ValueError(f"--bits must be one or more integers in 1..16, got {bits}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"--seeds must be an integer >= 1, got {seeds}")


def cell_key(cfg: TrainConfig, data: PreparedData) -> str:
    """A short hash of a cell's full configuration and its data: equal keys, interchangeable runs."""
    text = json.dumps({"config": asdict(cfg), "data": data_fingerprint(data)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def run_grid(data: PreparedData, base: TrainConfig, methods: list[str], bits: list[int], seeds: int, out: Path,
             progress: bool = True) -> list[dict]:
    """Train every (method, bits, seed) not yet done with this configuration; return one record per run."""
    check_grid(methods, bits, seeds)
    records = []
    for method in methods:
        emb_method, extra = TABLE_METHODS[method]
        for b in ([8] if method == "fp" else bits):
            for seed in range(seeds):
                cfg = replace(base, method=emb_method, bits=b, seed=seed,
                              embedding_options={**base.embedding_options, **extra})
                run = out / "runs" / f"{method}_b{b}_s{seed}-{cell_key(cfg, data)}"
                metrics = _finished(run, cfg)
                if metrics is None:
                    if progress:
                        print(f"[table] {method}, {b} bits, seed {seed} -> {run}")
                    metrics = train(data, cfg, run, resume=(run / "run.json").exists(), progress=False, curve=True)
                records.append({"method": method, "bits": b if method != "fp" else 32, "seed": seed, **{
                    k: metrics[k] for k in ("test_auc", "test_logloss", "train_samples_per_s", "table_bytes",
                                            "embedding_bytes", "fp32_table_bytes") if k in metrics}})
    return records


def _finished(run: Path, cfg: TrainConfig) -> dict | None:
    """The metrics of a finished run of exactly ``cfg`` in ``run``, or None."""
    try:
        metrics = json.loads((run / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    same = isinstance(metrics, dict) and metrics.get("config") == json.loads(json.dumps(asdict(cfg)))
    return metrics if same else None


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
    def spread(mean: float, sd: float, seeds: int) -> str:  # one seed has no spread to show
        return f"{mean:.4f} ± {sd:.4f}" if seeds > 1 else f"{mean:.4f}"

    for r in rows:
        lines.append(f"| {r['method']} | {r['bits']} | {spread(r['auc_mean'], r['auc_sd'], r['seeds'])} | "
                     f"{spread(r['logloss_mean'], r['logloss_sd'], r['seeds'])} | "
                     f"{r.get('table_mb', float('nan')):.3f} | {r.get('compression', float('nan')):.1f} | "
                     f"{r.get('training_mb', float('nan')):.3f} | {r['samples_per_s']:,.0f} |")
    seeds = sorted({r["seeds"] for r in rows})
    if seeds and seeds[-1] > 1:
        lines.append(f"\nmean ± sd over {' or '.join(map(str, seeds))} seeds.")
    else:
        lines.append("\none seed per cell, so no spread is shown (--seeds 3 gives mean ± sd over 3 seeds).")
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
