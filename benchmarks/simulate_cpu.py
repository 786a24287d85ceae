"""Time `simulate` for d = 100, 10,000 iterations, 64 seeds: every method, and every rounding under each row optimizer
(issue 13 target: every row under 2 s on 2 cores). With --sparse: time `simulate_sparse` on the issue-24 size,
1e5 rows x 16, batches of 4,096 Zipf(1) lookups, 1e4 steps, 16 seeds (target: one method under 5 s).

Run: python benchmarks/simulate_cpu.py [--iters 10000] [--seeds 64] [--d 100]
     python benchmarks/simulate_cpu.py --sparse [--rows 100000] [--dim 16] [--batch 4096] [--steps 10000]
                                       [--seeds 16] [--methods fp,dr,sr,alpt]
The fp/sgd row is the baseline the others are compared with (same run). Seconds are wall time; "cpu" is the
process's CPU time (numba runs the seeds on all cores, so cpu > seconds on an idle machine).
"""

from __future__ import annotations

import argparse
import os
import time

from lptsim.sim import problems, simulate


def sparse(args: argparse.Namespace) -> None:
    """The sparse simulator at the issue's size: one row per method (and lazy Adam under SR), fp/sgd the baseline."""
    import numpy as np

    from lptsim.sim import sparse as sp

    freqs = sp.zipf_frequencies(args.rows, 1.0)
    prob = sp.sparse_quadratic(args.rows, args.dim, freqs, mu=1.0, sigma=1.0, scale=0.3, seed=0)
    cases = [(m, "sgd") for m in args.methods.split(",")]
    cases += [("sr", "adam")] if "sr" in args.methods.split(",") else []
    rows = []
    for method, opt in cases:
        # lr x (lookups of the top row a step, ~340) x mu must stay below 2: summed gradients
        kw = dict(step=0.05, lr=2e-3 if opt == "sgd" else 1e-3, optimizer=opt, batch=args.batch, seeds=args.seeds,
                  bits=8 if method == "alpt" else None)
        if method == "alpt":  # one step per table, moved by Adam (the table's default step optimizer)
            kw.update(step_granularity="table", step_optimizer="adam", step_lr=1e-4)
        sp.simulate_sparse(prob, method, iters=2, **kw)  # compile / warm up
        start, cpu = time.perf_counter(), time.process_time()
        tr = sp.simulate_sparse(prob, method, iters=args.steps, **kw)
        rows.append((method, opt, time.perf_counter() - start, time.process_time() - cpu,
                     float(np.mean(prob.row_excess(tr.weights)))))
        del tr
    touched = float(np.sum(1 - (1 - freqs) ** args.batch))
    base = rows[0][2]
    print(f"sparse quadratic: {args.rows:,} rows x {args.dim}, Zipf(1), batch {args.batch:,} lookups "
          f"(~{touched:,.0f} distinct rows a step), {args.steps:,} steps, {args.seeds} seeds\n")
    print(f"{'method':8s} {'optimizer':9s} {'seconds':>8s} {'cpu':>8s} {'vs fp':>7s} {'ns/element':>11s} "
          f"{'mean row excess':>16s}")
    elements = touched * args.dim * args.steps * args.seeds
    for method, opt, secs, cpu, excess in rows:
        per = 1e9 * cpu / elements
        print(f"{method:8s} {opt:9s} {secs:8.2f} {cpu:8.2f} {secs / base:7.2f} {per:11.2f} {excess:16.4g}")
    budget = 1e9 * 5.0 * os.cpu_count() / (elements * 1e4 / args.steps)
    print(f"\n1e4 steps at these rates: {rows[0][2] * 1e4 / args.steps:.0f} s (fp) to "
          f"{max(r[2] for r in rows) * 1e4 / args.steps:.0f} s; the 5 s target leaves {budget:.2f} cpu ns a touched "
          f"element on {os.cpu_count()} cores")
    floors(budget)


def floors(budget: float) -> None:
    """What a touched element costs at least: the draws it needs, each timed alone on one core (hot cache)."""
    import numpy as np

    from lptsim.quant import philox, uniforms
    from lptsim.sim import noise

    m = 1 << 20
    ctrs = np.arange(m // 4, dtype=np.uint64)
    out4 = np.empty((4, m // 4))
    uniforms(1, 0, 16)  # compile
    noise._normals_at(np.uint64(1), ctrs[:8], out4[:, :8])
    cases = [("Philox uniform (SR's draw, one an element)", lambda: philox._uniforms(np.uint64(1), np.uint64(0),
                                                                                       np.empty(m))),
             ("4 normals a Philox counter (the noise, per normal)",
              lambda: noise._normals_at(np.uint64(1), ctrs, out4))]
    print(f"\nfloors, one core, hot cache ({m:,} draws, best of 5):")
    print(f"{'draw':52s} {'cpu ns / element':>17s} {'of the budget':>14s}")
    for name, fn in cases:
        best = float("inf")
        for _ in range(5):
            start = time.thread_time()
            fn()
            best = min(best, time.thread_time() - start)
        per = 1e9 * best / m
        print(f"{name:52s} {per:17.2f} {per / budget:14.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--iters", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=None, help="default 64 (dense), 16 (--sparse)")
    parser.add_argument("--sparse", action="store_true", help="time the sparse simulator instead")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--methods", default="fp,dr,sr,alpt")
    args = parser.parse_args()
    if args.sparse:
        args.seeds = args.seeds or 16
        sparse(args)
        return
    args.seeds = args.seeds or 64
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
