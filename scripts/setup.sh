#!/usr/bin/env bash
# Set up lptsim in ./.venv (idempotent): Python >= 3.10, torch, the package and its extras.
# Usage: source or run; LPTSIM_EXTRAS (default "dev,notebooks") picks the extras.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "lptsim needs Python >= 3.10 (found $("$PYTHON" --version))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PY=.venv/bin/python
"$PY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
  # A bare "torch" requirement pulls a multi-GB CUDA build. Where pip's find-links hold a CPU
  # wheel (offline mirrors, this project's CI) take that; elsewhere fall back to the usual torch.
  local_torch="torch==${LPTSIM_LOCAL_TORCH:-2.13.0}"
  scratch=$(mktemp -d)
  if "$PY" -m pip download -q --no-index --no-deps -d "$scratch" "$local_torch" >/dev/null 2>&1 \
      && ls "$scratch" | grep -q '+cpu'; then
    "$PY" -m pip install -q "$local_torch"  # the local CPU wheel; its dependencies from the index
  else
    # shellcheck disable=SC2086 # LPTSIM_TORCH may carry pip options, e.g. an --index-url
    "$PY" -m pip install -q ${LPTSIM_TORCH:-torch}
  fi
  rm -rf "$scratch"
fi
"$PY" -m pip install -q -e ".[${LPTSIM_EXTRAS:-dev,notebooks}]"
"$PY" -m ipykernel install --sys-prefix --name python3 >/dev/null 2>&1 || true
