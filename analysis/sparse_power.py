"""The sparse group's table and figure, then --power's prediction variants on the same simulations (one process).

Run: python analysis/sparse_power.py OUT_DIR [SEED] [--power] [--faults] [--skip-table]
(results of 2026-12-06 in analysis/results/sparse/). `lptsim verify --group sparse --power` does the same with the
rounding faults too (four more runs of the group).
"""
import sys
import time
from pathlib import Path

from lptsim.atomic import write_json_atomic
from lptsim.figs import figures_from_results
from lptsim.verify import budget, run_all
from lptsim.verify.core import caching, family_statement
from lptsim.verify.power import check_power_table, per_check, power_table, run_power
from lptsim.verify.power import summary as psummary
from lptsim.verify.report import inconclusive_notes, summary, table

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
b = budget(seed=int(sys.argv[2]) if len(sys.argv) > 2 else 0)
with caching():
    t0, c0 = time.perf_counter(), time.process_time()
    results = run_all(groups=["sparse"], progress=False, b=b) if "--skip-table" not in sys.argv else []
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(table(results))
    for n in inconclusive_notes(results):
        print("  ", n)
    print(f"\n{summary(results)}; {wall:.1f} s wall, {cpu:.1f} s CPU (seed {b.seed}, {b.seeds} seeds)")
    print(family_statement(results), flush=True)
    write_json_atomic(out / "verify.json", [r.to_json() for r in results])
    print("figures:", figures_from_results(results, out), flush=True)
    if "--power" in sys.argv:
        t0 = time.perf_counter()
        baseline, rows = run_power(b, ["sparse"], progress=False, faults="--faults" in sys.argv)
        power = per_check(baseline, rows)
        print("\nVariants:\n" + power_table(rows))
        print("\nPer check:\n" + check_power_table(power))
        print("\n" + psummary(baseline, rows, power) + f"\npower: {time.perf_counter() - t0:.0f} s", flush=True)
