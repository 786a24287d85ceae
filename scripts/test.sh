#!/usr/bin/env bash
# Set up (first run only), lint, and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# OpenMP threads that spin while waiting collapse when another process holds the other core (pytest -n 2
# runs two): torch.sort then takes 80 ms instead of 0.4 ms. Passive waiting costs nothing measurable.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
# Two workers share the cores: each gets its half, not a thread per core (on 2 cores, 2 threads per worker made the
# suite 524-553 s instead of 487-498 s: the workers' threads took turns on the cores).
cores=$(nproc 2>/dev/null || echo 2)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( cores > 1 ? cores / 2 : 1 ))}"
.venv/bin/ruff check .
# Whole modules to a worker, the longest first (tests/conftest.py): no worker is left alone with a long one at the end.
exec .venv/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder "$@"
