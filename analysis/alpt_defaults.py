"""Choose ALPT's table defaults by measurement: step granularity x initial rounding x step optimizer x state dtype.

    python analysis/alpt_defaults.py [--data NAME=PREPARED_DIR ...] [--seeds 3] [--out analysis/results/alpt_defaults]

Trains DCN (lptsim's protocol: row-wise Adagrad on the tables, dense Adam 1e-3) with ALPT at 2, 4 and 8 bits in
configurations that vary one factor at a time from the old defaults (step per row, nearest initial rounding,
Adam on the steps, float32 state), plus the candidates that keep training state within codes + 8 B/row, and FP
with the same row optimizer. Every run is appended to ``runs.jsonl`` as it finishes (a rerun skips finished
runs). Writes ``grid.md`` (mean test AUC, its difference from FP with a 95% interval over seeds, and the
training bytes per row beside the codes from ``memory_plan``) and ``grid.png``. Default data: the synthetic
generator, plus the shared Criteo/Avazu samples when ``../shared/data`` holds them (prepared once under --cache,
outside the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from lptsim.ctr.data.dataset import PreparedData  # noqa: E402
from lptsim.ctr.memory import memory_plan  # noqa: E402
from lptsim.ctr.train import TrainConfig, train  # noqa: E402

BITS = (2, 4, 8)
OLD = {"step_granularity": "row", "init_rounding": "nearest", "step_optimizer": "adam", "state_dtype": "float32"}
CONFIGS = {  # name -> changes from the old defaults
    "old defaults": {},
    "step per table": {"step_granularity": "table"},
    "step per field": {"step_granularity": "field"},
    "stochastic init": {"init_rounding": "stochastic"},
    "step adagrad": {"step_optimizer": "adagrad"},
    "step sgd": {"step_optimizer": "sgd"},
    "bf16 state": {"state_dtype": "bfloat16"},
    "lean: bf16, step adagrad, SR init": {"state_dtype": "bfloat16", "step_optimizer": "adagrad",
                                         "init_rounding": "stochastic"},
    "lean: per field, SR init": {"step_granularity": "field", "init_rounding": "stochastic"},
    "lean: SR init, bf16 state": {"init_rounding": "stochastic", "state_dtype": "bfloat16"},
    "lean: SR init, step sgd": {"init_rounding": "stochastic", "step_optimizer": "sgd"},
}
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def state_bytes_per_row(options: dict, bits: int, rows: int = 33_760_000, dim: int = 16, fields: int = 39) -> float:
    """Training bytes per row beside the codes (Criteo-size table)."""
    o = {**OLD, **options}
    plan = memory_plan(rows, dim, bits, "alpt", "adagrad", o["step_optimizer"], o["step_granularity"],
                       num_fields=fields, state_dtype=o["state_dtype"])
    return (plan.total - plan.table) / rows


def datasets(args: argparse.Namespace, out: Path) -> dict[str, Path]:
    found = dict(item.split("=", 1) for item in args.data)
    if args.data:
        return {k: Path(v) for k, v in found.items()}
    from lptsim.ctr.data.prepare import prepare
    from lptsim.ctr.data.schema import AVAZU, CRITEO
    from lptsim.ctr.data.synthetic import SyntheticSpec, synthetic_prepared

    cache = Path(args.cache)
    result = {"synthetic": synthetic_prepared(cache / "synthetic", SyntheticSpec(rows=20_000, seed=0))[0]}
    for name, schema, pattern in (("criteo", CRITEO, "criteo/*.txt"), ("avazu", AVAZU, "avazu/*.csv")):
        files = sorted(SHARED.glob(pattern))
        if files:
            target = cache / name
            if not (target / "manifest.json").exists():
                prepare(files[0], schema, target, progress=False)
            result[name] = target
    return result


def run_one(data: PreparedData, method: str, bits: int, seed: int, options: dict) -> dict:
    cfg = TrainConfig(model="dcn", method=method, bits=bits, seed=seed, embedding_options=options)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        metrics = train(data, cfg, tmp, progress=False)
        return {"test_auc": metrics["test_auc"], "test_logloss": metrics["test_logloss"],
                "seconds": time.perf_counter() - t0}


def summarize(runs: list[dict], out: Path) -> None:
    by = {}
    for r in runs:
        by.setdefault((r["data"], r["config"], r["bits"]), {})[r["seed"]] = r["test_auc"]
    lines = ["| data | configuration | bits | test AUC | AUC - FP [95% CI] | state B/row beside codes |",
             "|---|---|---|---|---|---|"]
    points = []
    for data_name in sorted({r["data"] for r in runs}):
        fp = by.get((data_name, "fp", 0), {})
        lines.append(f"| {data_name} | FP (row-wise Adagrad) | 32 | {np.mean(list(fp.values())):.4f} | | |")
        for name, options in CONFIGS.items():
            for bits in BITS:
                aucs = by.get((data_name, name, bits), {})
                seeds = sorted(set(aucs) & set(fp))
                if not seeds:
                    continue
                diff = np.array([aucs[s] - fp[s] for s in seeds])
                half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)) \
                    if len(diff) > 1 else float("nan")
                lines.append(f"| {data_name} | {name} | {bits} | {np.mean(list(aucs.values())):.4f} | "
                             f"{diff.mean():+.4f} [{diff.mean() - half:+.4f}, {diff.mean() + half:+.4f}] | "
                             f"{state_bytes_per_row(options, bits):.2f} |")
                points.append((data_name, name, bits, diff.mean(), half))
    lines += ["", "Each configuration against the old defaults, paired by (data, seed), pooled over the datasets:", "",
              "| configuration | bits | pairs | AUC - old defaults [95% CI] | state B/row beside codes |",
              "|---|---|---|---|---|"]
    for name, options in CONFIGS.items():
        if name == "old defaults":
            continue
        for bits in BITS:
            keys = [(d, s) for (d, c, b), seeds in by.items() if c == name and b == bits for s in seeds
                    if s in by.get((d, "old defaults", bits), {})]
            if len(keys) < 2:
                continue
            diff = np.array([by[(d, name, bits)][s] - by[(d, "old defaults", bits)][s] for d, s in keys])
            half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
            lines.append(f"| {name} | {bits} | {len(diff)} | {diff.mean():+.4f} [{diff.mean() - half:+.4f}, "
                         f"{diff.mean() + half:+.4f}] | {state_bytes_per_row(options, bits):.2f} |")
    (out / "grid.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(points, out / "grid.png")


def plot(points: list[tuple], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(CONFIGS)
    data_names = sorted({p[0] for p in points})
    fig, axes = plt.subplots(1, len(data_names), figsize=(5 * len(data_names), 4.5), sharey=True, squeeze=False)
    for ax, data_name in zip(axes[0], data_names, strict=True):
        for k, bits in enumerate(BITS):
            rows = [(names.index(p[1]), p[3], p[4]) for p in points if p[0] == data_name and p[2] == bits]
            if rows:
                y, mean, half = np.array(rows).T
                ax.errorbar(mean, y + (k - 1) * 0.22, xerr=half, fmt="o", label=f"ALPT-{bits}", capsize=2)
        ax.axvline(0, color="k", lw=0.8)
        ax.axvspan(-0.005, 0.005, color="0.9", zorder=0)
        ax.set_title(data_name)
        ax.set_xlabel("test AUC - FP (95% CI over seeds)")
    axes[0][0].set_yticks(range(len(names)), names)
    axes[0][0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", default=[], metavar="NAME=DIR", help="prepared folders (repeatable)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--configs", nargs="*", default=list(CONFIGS), help="configuration names to run")
    p.add_argument("--out", default="analysis/results/alpt_defaults")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "lptsim_alpt_defaults"),
                   help="where the default data are generated and prepared")
    args = p.parse_args(argv)
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        p.error(f"unknown configurations {sorted(unknown)}; choose from {list(CONFIGS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    runs = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    done = {(r["data"], r["config"], r["bits"], r["seed"]) for r in runs}
    for data_name, folder in datasets(args, out).items():
        data = PreparedData.load(folder)
        todo = [("fp", "fp", 0, {})] + [(name, "alpt", b, CONFIGS[name]) for name in args.configs for b in BITS]
        for seed in range(args.seeds):
            for name, method, bits, options in todo:
                if (data_name, name, bits, seed) in done:
                    continue
                result = run_one(data, method, bits or 8, seed, options)
                row = {"data": data_name, "config": name, "bits": bits, "seed": seed, **result}
                with log.open("a") as f:  # one line per finished run: an interrupted sweep resumes here
                    f.write(json.dumps(row) + "\n")
                runs.append(row)
                print(f"{data_name} {name} bits={bits} seed={seed}: AUC {row['test_auc']:.4f} "
                      f"({row['seconds']:.1f} s)", flush=True)
    summarize(runs, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
