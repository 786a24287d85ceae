"""SR-quantize 10^7 float32 values on the CPU; compare with a plain torch copy measured in the same run.

Run: python benchmarks/quantize_cpu.py [--n 10000000] [--repeats 7]
Target (issue 2): lptsim SR at least 0.25 of copy speed (copy time / SR time >= 0.25).
"""

from __future__ import annotations

import argparse
import time

import torch

from lptsim.quant import QuantSpec, quantize


def best_ms(fn, repeats: int) -> float:
    fn()  # warm-up (and numba's first compile / cache load)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    x = torch.randn(args.n, generator=torch.Generator().manual_seed(0))
    step, spec = 0.05, QuantSpec(8)
    rows = [
        ("torch copy (x.clone())", best_ms(lambda: x.clone(), args.repeats)),
        ("usual SR: floor(x/step + rand_like), int8", best_ms(
            lambda: torch.clamp(torch.floor(x / step + torch.rand_like(x)), -128, 127).to(torch.int8), args.repeats)),
        ("lptsim quantize, nearest (torch in/out)", best_ms(lambda: quantize(x, step, spec, "nearest"), args.repeats)),
        ("lptsim quantize, stochastic (torch in/out)", best_ms(
            lambda: quantize(x, step, spec, "stochastic", seed=1), args.repeats)),
    ]
    copy_ms = rows[0][1]
    print(f"n = {args.n:,} float32, torch threads = {torch.get_num_threads()}\n")
    print(f"{'method':45s} {'ms':>9s} {'copy speed ratio':>17s}")
    for name, ms in rows:
        print(f"{name:45s} {ms:9.2f} {copy_ms / ms:17.3f}")


if __name__ == "__main__":
    main()
