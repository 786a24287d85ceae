"""Time `simulate` for d = 100, 10,000 iterations, 64 seeds, each method (issue 3 target: < 2 s each).

Run: python benchmarks/simulate_cpu.py [--iters 10000] [--seeds 64] [--d 100]
The fp row is the baseline the low-precision methods are compared with (same run).
"""

from __future__ import annotations

import argparse
import time

from lptsim.sim import problems, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--iters", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=64)
    args = parser.parse_args()
    prob = problems.quadratic(d=args.d, mu=1.0, L=10.0, noise=0.5, seed=0)
    rows = []
    for method in ("fp", "dr", "sr", "bc", "alpt"):
        simulate(prob, method, step=0.05, lr=0.05, iters=20, seeds=args.seeds, bits=8)  # compile / warm up
        start = time.perf_counter()
        tr = simulate(prob, method, step=0.05, lr=0.05, iters=args.iters, seeds=args.seeds, bits=8)
        rows.append((method, time.perf_counter() - start, float(tr.mean()[-1])))
    base = rows[0][1]
    print(f"quadratic d={args.d}, {args.iters:,} iterations, {args.seeds} seeds, 8 bits, step 0.05, lr 0.05\n")
    print(f"{'method':8s} {'seconds':>8s} {'vs fp':>7s} {'final excess':>13s}")
    for method, secs, excess in rows:
        print(f"{method:8s} {secs:8.2f} {secs / base:7.2f} {excess:13.4g}")


if __name__ == "__main__":
    main()
