"""Regenerate every figure and table of the toolkit's paper in one command.

    python paper_figs/make_all.py [--out paper_figs/out] [--full] [--redraw]

Figures: lptsim.figs.make_all (PNG + PDF, with index.md and figs_data.json, including the CTR checks).
Table: the verification table as Markdown. ``--redraw`` redraws the figures from out/figs_data.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lptsim.atomic import write_json_atomic, write_text_atomic
from lptsim.figs import make_all
from lptsim.figs.index import DATA_FILE, load_data
from lptsim.verify import run_all
from lptsim.verify.tables import markdown_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    parser.add_argument("--full", action="store_true", help="paper quality: more seeds, longer horizons")
    parser.add_argument("--redraw", action="store_true", help="redraw the figures from the stored data")
    args = parser.parse_args()
    out = Path(args.out)
    start = time.perf_counter()
    paths = make_all(out, full=args.full, redraw=args.redraw, ctr=True)
    results = load_data(out / DATA_FILE)[0]
    if not args.redraw:  # the quantization checks are not drawn: run them for the table
        results = run_all(full=args.full, groups=["quant"], progress=False) + results
        write_json_atomic(out / "verify.json", [r.to_json() for r in results])
    write_text_atomic(out / "verify_table.md", markdown_table(results))
    print("\n".join(str(p) for p in paths))
    print(f"{out / 'verify_table.md'}\n{len(paths)} files in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
