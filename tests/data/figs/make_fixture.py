"""Make tests/data/figs/figs_data.json.gz from a run of `lptsim figs --out DIR --ctr`:

    python tests/data/figs/make_fixture.py DIR/figs_data.json

It keeps the results that some figure draws (lptsim.figs.results.FIGURES), rounds every float to 4 significant
digits (the figures' layout does not depend on more), and gzips it: tests/test_figs.py renders every figure
from it in seconds instead of re-running the checks and sweeps (minutes).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

from lptsim.figs.results import FIGURES

OUT = Path(__file__).parent / "figs_data.json.gz"


def _round(v: object) -> object:
    if isinstance(v, float):
        return float(f"{v:.4g}")
    if isinstance(v, list):
        return [_round(u) for u in v]
    if isinstance(v, dict):
        return {k: _round(u) for k, u in v.items()}
    return v


def main(source: str) -> None:
    payload = json.loads(Path(source).read_text())
    prefixes = tuple(p for ps in FIGURES.values() for p in ps)
    payload["results"] = [r for r in payload["results"] if r["id"].startswith(prefixes)]
    text = json.dumps(_round(payload), separators=(",", ":"))
    OUT.write_bytes(gzip.compress(text.encode(), mtime=0))
    print(f"{OUT}: {len(payload['results'])} results, {len(payload['sweeps'])} sweeps, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
