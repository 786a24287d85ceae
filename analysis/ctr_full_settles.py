"""Do `--full`'s sizes settle 9.3 and 9.4-B (docs/theory.md 9.3, 9.4)? Their checks at `lptsim verify --group ctr
--full`'s data (100,000 synthetic rows), epochs and seeds, run seed by seed: each line printed as a seed finishes
(JSON), with the estimate and interval of the group (jackknife over the seeds so far, LEVEL_CTR) and the verdict it
would get, so a run cut short still says where it stood.

Run: python analysis/ctr_full_settles.py regime-b | floor | regime-a  (results of 2026-12-07 in
analysis/results/ctr_sparse/full_*.jsonl)
"""
import json
import sys
import time

import numpy as np

from lptsim.ctr.train import TrainConfig, evaluate
from lptsim.verify import ctr_checks as cc
from lptsim.verify.core import Absolute, Budget, jackknife_ci

B = Budget(seeds=60, horizon=3.0)  # what --full uses


def excess_ratio(a: np.ndarray):  # noqa: ANN201
    """9.4's R = mean(SR - FP) / mean(DR - FP) in test log loss, jackknife over seeds (rows: seeds; SR, DR, FP)."""
    return jackknife_ci(lambda sr, dr, f: float(np.mean(sr - f) / np.mean(dr - f)), a[:, 0], a[:, 1], a[:, 2],
                        level=cc.LEVEL_CTR)


def regime(s: cc.Setup, bits: int, t0: float) -> None:
    """9.4's ratio at ``bits`` (8: regime B, the check; 2: regime A, its control), the group's seeds."""
    rows = []
    for seed in [B.seed_for(f"ctr/regimes/{k}") % 1000 for k in range(s.seeds)]:
        r = {m: cc._train(s, f"regime_{m}_{b}_{seed}", cc._config(s, m, b, seed, optimizer="adam"))[0]["test_logloss"]
             for m, b in (("lpt-sr", bits), ("lpt-dr", bits), ("fp", 8))}
        rows.append([r["lpt-sr"], r["lpt-dr"], r["fp"]])
        line = {"seed": seed, "bits": bits, **r, "wall": round(time.time() - t0)}
        if len(rows) >= 2:
            est = excess_ratio(np.array(rows))
            line.update(ratio=est.value, lo=est.lo, hi=est.hi, verdict=Absolute(0.5).decide(est, 2.0).verdict)
        print(json.dumps(line), flush=True)


def floor(s: cc.Setup, t0: float) -> None:
    """9.3's chord-slope ratio of LPT-SR's train loss at Delta = 3, 5, 8 lr, the group's seeds."""
    lr, epochs = 1e-2, 3 * s.epochs
    deltas = lr * np.array([3.0, 5.0, 8.0])
    quadratic = float((deltas[2] + deltas[1]) / (deltas[1] + deltas[0]))
    crit = Absolute((quadratic - 1) / 2)
    rows = []
    for seed in [B.seed_for(f"ctr/floor/{k}") % 1000 for k in range(2 * s.seeds)]:
        row = []
        for dl in deltas:
            emb = dict(optimizer="adam", lr=lr, clip=float(dl * 2**15), step_granularity="table")
            cfg = TrainConfig(model="lr", method="lpt-sr", bits=16, epochs=epochs, batch_size=512, patience=epochs,
                              seed=int(seed), embedding_options=emb)
            model = cc._train(s, f"floor_lpt-sr_{seed}_{dl}", cfg)[1]
            row.append(evaluate(model, s.data, "train", 4096, "cpu")["logloss"])
        rows.append(row)
        line = {"seed": seed, "loss": row, "wall": round(time.time() - t0)}
        if len(rows) >= 2:
            est = jackknife_ci(lambda y: cc.chord_ratio(deltas, y.mean(axis=0)), np.array(rows), level=cc.LEVEL_CTR)
            line.update(ratio=est.value, lo=est.lo, hi=est.hi, verdict=crit.decide(est, 1.0).verdict,
                        control=crit.decide(est, quadratic).verdict)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what not in ("regime-b", "regime-a", "floor"):
        sys.exit("usage: python analysis/ctr_full_settles.py regime-b | regime-a | floor")
    start = time.time()
    with cc.setup(B) as setup:
        print(setup.label, setup.epochs, "epochs,", setup.seeds, "seeds", flush=True)
        if what == "floor":
            floor(setup, start)
        else:
            regime(setup, 8 if what == "regime-b" else 2, start)
