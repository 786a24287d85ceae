"""Regenerate every figure and table of the toolkit's paper in one command.

    python paper_figs/make_all.py [--out paper_figs/out] [--full]

Figures: lptsim.figs.make_all (PNG + PDF). Table: the verification table as Markdown.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lptsim.atomic import write_json_atomic
from lptsim.figs import fig_loss_curves, fig_regime_map, figures_from_results
from lptsim.verify import run_all
from lptsim.verify.tables import markdown_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    parser.add_argument("--full", action="store_true", help="paper quality: more seeds, longer horizons")
    args = parser.parse_args()
    out = Path(args.out)
    start = time.perf_counter()
    results = run_all(full=args.full)
    write_json_atomic(out / "verify.json", [r.to_json() for r in results])
    (out / "verify_table.md").write_text(markdown_table(results))
    paths = figures_from_results(results, out)
    seeds = 24 if args.full else 8
    paths += fig_loss_curves(out, seeds=seeds, iters=10_000 if args.full else 3000)
    paths += fig_regime_map(out, seeds=seeds)
    print("\n".join(str(p) for p in paths))
    print(f"{out / 'verify_table.md'}\n{len(paths)} figure files in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
