#!/usr/bin/env bash
# The prepared checks for a lent GPU machine (its own Python with torch and Triton, no network): run from the
# repository root, the project from the source tree. Writes everything under $OUT (default: device_out/).
#
#   bash scripts/device_check.sh first-run   # benchmarks/gpu_first_run.py (about 3 minutes on an H100), first
#   bash scripts/device_check.sh tests       # the kernel tests on CUDA against the CPU reference (same machine,
#                                            # warm, when time is left)
#
# Before spending device time, on the CPU: `env -u TRITON_INTERPRET PYTHONPATH=. python
# benchmarks/gpu_launch_dry_run.py` (every launch of the first run bound and compiled for sm_90).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-device_out}"
mkdir -p "$OUT"
export PYTHONPATH=. PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
what="${1:-first-run}"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
python3 -c "import sys, torch, triton; print(sys.version.split()[0], torch.__version__, triton.__version__)" \
    > "$OUT/versions.txt" 2>&1
case "$what" in
  first-run)
    timeout 230 python3 benchmarks/gpu_first_run.py --json "$OUT/first_run.json" --budget 170 2>&1 \
        | tee "$OUT/first_run.log"
    exit "${PIPESTATUS[0]}" ;;
  tests)
    workers=()
    python3 -c "import xdist" 2>/dev/null && workers=(-n 8)
    timeout 280 python3 -m pytest -q -ra "${workers[@]}" -p no:cacheprovider \
        tests/test_kernels.py tests/test_kernels_init_rows.py tests/test_kernels_run_sums.py \
        tests/test_kernels_census.py tests/test_benchmark_gpu_step.py 2>&1 | tail -60 | tee "$OUT/tests.log"
    exit "${PIPESTATUS[0]}" ;;
  *) echo "device_check.sh: unknown check '$what' (first-run or tests)" >&2; exit 2 ;;
esac
