"""Data preparation speed and memory: rows/s and peak RSS of `lptsim ctr prepare` on a Criteo-format file.

Run: python benchmarks/prepare_cpu.py [--rows 1000000] [--workdir /tmp/lptsim-bench] [--compression gzip]
The input is made by the synthetic generator in the real Criteo text format (cached in the
workdir; ``--compression gzip|zstd`` reads a compressed copy of it). prepare runs in a child
process so its peak RSS is its own.
Targets (issue 5): >= 300k rows/s on 2 cores; peak RSS < 4 GB whatever the input size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from lptsim.ctr.data.synthetic import SyntheticSpec, write_criteo_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", default="/tmp/lptsim-bench")
    parser.add_argument("--compression", choices=["none", "gzip", "zstd"], default="none")
    args = parser.parse_args()
    work = Path(args.workdir)
    raw = work / f"criteo_synth_{args.rows}.txt"
    if not raw.exists():
        start = time.perf_counter()
        write_criteo_text(raw, SyntheticSpec(rows=args.rows, max_vocab=200_000, seed=1))
        print(f"generated {raw} in {time.perf_counter() - start:.1f} s")
    if args.compression != "none":
        packed = raw.with_name(f"{raw.name}.{args.compression}")
        if not packed.exists():
            import pyarrow as pa

            with pa.OSFile(str(raw)) as src, pa.CompressedOutputStream(str(packed), args.compression) as dst:
                while chunk := src.read(64 << 20):
                    dst.write(chunk)
        raw = packed
    out = work / "prepared"
    warm = work / "warmup.txt"
    if not warm.exists():
        write_criteo_text(warm, SyntheticSpec(rows=2_000, seed=2))
    # One child process: a 2,000-row warm-up (numba loads its compiled kernels once per process),
    # then the timed run. Its peak RSS is the child's.
    child = (f"from lptsim.ctr.data.prepare import prepare; from lptsim.ctr.data.schema import CRITEO; "
             f"prepare({str(warm)!r}, CRITEO, {str(work / 'warm_out')!r}, progress=False); "
             f"prepare({str(raw)!r}, CRITEO, {str(out)!r}, progress=False)")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", child], check=True)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    manifest = json.loads((out / "manifest.json").read_text())
    rows = sum(manifest["rows"].values())
    size_mb = raw.stat().st_size / 2**20
    work_s = manifest["seconds"]
    print(f"\n{'input':30s} {'rows':>10s} {'MiB':>6s} {'prepare s':>9s} {'rows/s':>9s} {'wall s':>7s} "
          f"{'rows/s (wall)':>13s} {'peak RSS MiB':>12s}")
    print(f"{raw.name:30s} {rows:10,d} {size_mb:6.0f} {work_s:9.2f} {rows / work_s:9,.0f} {seconds:7.2f} "
          f"{rows / seconds:13,.0f} {peak_mb:12.0f}")
    print("prepare s: inside prepare() after a small warm-up run; wall s: the whole child process (Python start-up,"
          " imports, numba loading, warm-up)")


if __name__ == "__main__":
    main()
