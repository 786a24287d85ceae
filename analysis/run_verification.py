"""Run the full verification at paper quality and write JSON, CSV and a Markdown report.

    python analysis/run_verification.py --out analysis/results [--quick]

--quick uses the default (fast) sweep instead of the paper-quality one.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from lptsim import __version__
from lptsim.atomic import write_json_atomic
from lptsim.figs import figures_from_results
from lptsim.verify import run_all
from lptsim.verify.core import family_statement
from lptsim.verify.report import exit_code, summary
from lptsim.verify.tables import csv_table, markdown_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    start = time.perf_counter()
    results = run_all(full=not args.quick)
    elapsed = time.perf_counter() - start
    write_json_atomic(out / "verify.json", [r.to_json() for r in results])
    (out / "verify.csv").write_text(csv_table(results))
    figures = figures_from_results(results, out)
    report = [
        "# lptsim verification report", "",
        f"lptsim {__version__}, Python {platform.python_version()}, {platform.machine()}; "
        f"{'default' if args.quick else 'full'} sweep, {elapsed:.0f} s.", "",
        f"**{summary(results)}.** Criteria are fixed in lptsim/verify before the run; "
        "derivations in docs/theory.md.", "", family_statement(results) + ".", "",
        markdown_table(results), "## Figures", "",
        *[f"- `{p.name}`" for p in figures if p.suffix == ".png"],
    ]
    (out / "report.md").write_text("\n".join(report) + "\n")
    print(f"wrote {out}/report.md, verify.json, verify.csv and {len(figures)} figure files")
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
