"""Time `simulate` for d = 100, 10,000 iterations, 64 seeds: every method, and every rounding under each row optimizer
(issue 13 target: every row under 2 s on 2 cores).

Run: python benchmarks/simulate_cpu.py [--iters 10000] [--seeds 64] [--d 100]
The fp/sgd row is the baseline the others are compared with (same run).
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
    cases = [(m, "sgd") for m in ("fp", "dr", "sr", "bc", "alpt")]
    cases += [(m, o) for o in ("adagrad", "adam") for m in ("fp", "dr", "sr", "alpt")]
    rows = []
    for method, opt in cases:
        kw = dict(step=0.05, lr=0.05 if opt != "adam" else 0.005, seeds=args.seeds, bits=8, optimizer=opt)
        simulate(prob, method, iters=20, **kw)  # compile / warm up
        start = time.perf_counter()
        tr = simulate(prob, method, iters=args.iters, **kw)
        rows.append((method, opt, time.perf_counter() - start, float(tr.mean()[-1])))
    base = rows[0][2]
    print(f"quadratic d={args.d}, {args.iters:,} iterations, {args.seeds} seeds, 8 bits, step 0.05, "
          "lr 0.05 (adam 0.005)\n")
    print(f"{'method':8s} {'optimizer':9s} {'seconds':>8s} {'vs fp':>7s} {'final excess':>13s}")
    for method, opt, secs, excess in rows:
        print(f"{method:8s} {opt:9s} {secs:8.2f} {secs / base:7.2f} {excess:13.4g}")


if __name__ == "__main__":
    main()
