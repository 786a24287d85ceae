#!/usr/bin/env bash
# Set up (first run only) and run the main job: `lptsim verify` on the embedded synthetic problems.
# Extra arguments go to `lptsim verify` (e.g. --full, --out DIR).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/lptsim verify --out "${LPTSIM_OUT:-out/verify}" "$@"
