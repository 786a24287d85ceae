"""CPU training throughput of each embedding method against fp, measured in one run.

Run: python benchmarks/ctr_throughput_cpu.py [--rows 100000] [--model dcn] [--batch-size 2048]
Trains one epoch per method on the synthetic Criteo-like data (DCN, dim 16, 400-400-400 MLP by
default) and prints samples/s and the ratio to fp, with the tables' defaults (bfloat16 state, stochastic
initial rounding) and, for 2 bits, the old ones. Target: one-pass ALPT >= 0.8x fp.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.data.synthetic import SyntheticSpec, synthetic_prepared
from lptsim.ctr.train import TrainConfig, train

OLD_DEFAULTS = {"state_dtype": "float32", "init_rounding": "nearest"}  # the tables' defaults before issue 19
CASES = [("fp", 8, {}), ("lpt-dr", 8, {}), ("lpt-sr", 8, {}), ("alpt", 8, {}),
         ("alpt", 8, {"alpt_variant": "one-pass"}), ("lsq", 8, {}), ("lpt-sr", 4, {}), ("alpt", 4, {}),
         ("alpt", 2, {}), ("alpt", 2, {"alpt_variant": "one-pass"}),
         ("alpt", 2, {**OLD_DEFAULTS, "alpt_variant": "one-pass"}), ("alpt", 2, OLD_DEFAULTS),
         ("alpt", 2, {"step_granularity": "field", "alpt_variant": "one-pass"})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--model", default="dcn")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--workdir", default="/tmp/lptsim-bench")
    args = parser.parse_args()
    prepared, _ = synthetic_prepared(Path(args.workdir) / f"synthetic_{args.rows}", SyntheticSpec(rows=args.rows))
    data = PreparedData.load(prepared)
    base = TrainConfig(model=args.model, epochs=1, batch_size=args.batch_size)
    # Warm-up: compile the numba kernels once, so no method pays for it.
    with tempfile.TemporaryDirectory() as tmp:
        train(data, replace(base, method="alpt", bits=4, epochs=1, batch_size=8192), Path(tmp) / "w", progress=False)
    rows = []
    for method, bits, extra in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            m = train(data, replace(base, method=method, bits=bits, embedding_options=extra), Path(tmp) / "r",
                      progress=False)
        label = " ".join(f"{k}={v}" for k, v in extra.items() if k != "alpt_variant")
        variant = extra.get("alpt_variant", "two-pass") if method == "alpt" else ""
        rows.append((" ".join(filter(None, [method, variant, label])), bits, m["train_samples_per_s"]))
    fp = rows[0][2]
    print(f"{args.model}, dim 16, batch {args.batch_size}, {data.labels['train'].shape[0]:,} training rows, "
          f"row-wise adagrad on the embeddings, 2 CPU threads\n")
    print("| method | bits | samples/s | vs fp |\n|---|---|---|---|")
    for name, bits, sps in rows:
        print(f"| {name} | {bits if name != 'fp' else 32} | {sps:,.0f} | {sps / fp:.2f} |")


if __name__ == "__main__":
    main()
