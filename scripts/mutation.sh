#!/usr/bin/env bash
# The mutation check (not in CI): plausible one-line bugs, one at a time; prints caught / NOT CAUGHT for each.
# Usage: bash scripts/mutation.sh [--only ID ...] [--list]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/mutation.py "$@"
