"""The sparse group (``lptsim verify --group sparse``): a table of rows looked up at frequencies spanning decades,
predicted and measured per frequency bucket (docs/theory.md 11.b-11.d).

Every prediction is computed before its simulation (lptsim.sim.sparse: Binomial lookups per step, the table's lazy
SGD, DR/SR/ALPT through lptsim.quant). Buckets are groups of rows sharing one lookup frequency (a measured
frequency vector, Zipf-like: each bucket holds a comparable share of the lookups, the frequent buckets few rows).
Each estimate is a mean over seeds of per-seed means (over the bucket's rows and over record times spread across
the second half of the run), with a Student-t interval.
"""

from __future__ import annotations

import numpy as np

from lptsim import theory
from lptsim.sim import sparse as sp
from lptsim.verify.core import (
    Absolute,
    Budget,
    Control,
    Estimate,
    Exceeds,
    Relative,
    cite,
    curve,
    judge,
    mean_ci,
    run,
)
from lptsim.verify.report import CheckResult

# The ladder of parts 1-2: SGD on rows of 8 elements, grid 0.1, lr 0.005, noise 1 per lookup; rows start at 0, their
# optima uniform in [-1.5, 1.5] (the same for every row, so a bucket's rows differ only in their draws).
DELTA, ALPHA, MU, SIGMA, D, T = 0.1, 0.005, 1.0, 1.0, 8, 3000  # noqa: N806
LAMBDAS = np.array([0.1, 0.4, 1.6, 6.4, 25.6])  # lookups of one row per step (batch x p): 2.4 decades
ROWS = np.array([1000, 300, 100, 80, 20])
RECORDS = np.arange(T // 2, T + 1, 25)


def _sim(prob: sp.SparseProblem, method: str, b: Budget, tag: str, **kw: object) -> sp.SparseTrace:
    return run(prob, method, simulator=sp.simulate_sparse, seeds=b.seeds, seed=b.seed_for(tag), **kw)


def _ladder(b: Budget) -> tuple[sp.SparseProblem, int, np.ndarray]:
    w_star = b.rng("sparse/w_star").uniform(-1.5, 1.5, D)
    batch = int(round(float(np.sum(ROWS * LAMBDAS))))
    freqs = np.repeat(LAMBDAS / batch, ROWS)
    prob = sp.sparse_quadratic(int(ROWS.sum()), D, freqs, mu=MU, sigma=SIGMA, w_star=np.tile(w_star, (ROWS.sum(), 1)))
    return prob, batch, w_star


def _bucket_means(values: np.ndarray, sizes: np.ndarray) -> Estimate:
    """Per-seed means over each bucket's rows (values: seeds x rows), as a curve over buckets with t intervals."""
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return curve([mean_ci(values[:, bounds[j]:bounds[j + 1]].mean(axis=1)) for j in range(len(sizes))])


def _excess(tr: sp.SparseTrace, sizes: np.ndarray) -> Estimate:
    return _bucket_means(tr.row_excess.mean(axis=1), sizes)


def excess_per_bucket(b: Budget) -> list[CheckResult]:
    """SR's and DR's mean row excess over the second half of the run, per frequency bucket, against the exact
    Binomial-mixture chain (11.c.1); and DR's frozen fraction per bucket (11.b.3)."""
    prob, batch, w_star = _ladder(b)
    p = LAMBDAS / batch
    start = np.zeros(D)
    pred = {r: theory.sparse_row_excess(w_star, start, p, batch, DELTA, ALPHA, MU, SIGMA, RECORDS, r)
            for r in ("sr", "dr")}
    frozen_pred = np.array([theory.sparse_dr_frozen_probability(ALPHA, DELTA, pi, batch, T, MU * (start - w_star),
                                                                SIGMA) for pi in p])
    runs = {r: _sim(prob, r, b, "sparse/ladder", step=DELTA, lr=ALPHA, iters=T, batch=batch, record_at=RECORDS)
            for r in ("sr", "dr")}
    meas = {r: _excess(runs[r], ROWS) for r in runs}
    frozen = {r: _bucket_means((runs[r].last_move == 0).astype(float), ROWS) for r in runs}
    lam = ", ".join(f"{x:g}" for x in LAMBDAS)
    common = dict(x=LAMBDAS, p=p, batch=batch)
    return [
        judge(f"Sparse SR: mean row excess per frequency bucket (lookups/step {lam})", cite("sparse_row_excess"),
              "exact", meas["sr"], pred["sr"], Relative(0.05), Control("DR's excess", meas["dr"], pred["sr"]),
              note=f"rows of {D}, Delta={DELTA}, lr={ALPHA}, sigma={SIGMA}, batch={batch}, T={T}; rare rows have not "
                   "converged by T (the chain's law at each record is exact, transient included); frequent rows "
                   "average k ~ batch p gradients a step, so SR's floor falls like 1/sqrt(k)",
              id="sparse.sr-excess", y=meas["sr"].value, theory_curve=pred["sr"], **common),
        judge(f"Sparse DR: mean row excess per frequency bucket (lookups/step {lam})", cite("sparse_row_excess"),
              "exact", meas["dr"], pred["dr"], Relative(0.05), Control("SR's excess", meas["sr"], pred["dr"]),
              note="rare rows: DR rounds their steps away (the stall radius Delta/(2 lr mu) = "
                   f"{DELTA / (2 * ALPHA * MU):g} holds every optimum), frequent rows are dithered by their summed "
                   "noise", id="sparse.dr-excess", y=meas["dr"].value, theory_curve=pred["dr"], sr=meas["sr"].value,
              sr_lo=meas["sr"].lo, sr_hi=meas["sr"].hi, sr_theory=pred["sr"], w_star=w_star, records=RECORDS,
              params=(DELTA, ALPHA, MU, SIGMA), **common,
              setting=dict(d=D, delta=DELTA, sigma=SIGMA, alpha=ALPHA, mu=MU, T=T, batch=batch, seeds=b.seeds)),
        judge("Sparse DR: fraction of rows never moved, per frequency bucket", cite("sparse_dr_frozen_probability"),
              "exact", frozen["dr"], frozen_pred, Absolute(0.03), Control("SR", frozen["sr"], frozen_pred),
              note="(sum_k P(k) prod_i P(element i stays | k))^T: a row freezes when its summed gradient of a step "
                   "rarely reaches Delta/(2 lr)", id="sparse.dr-frozen", y=frozen["dr"].value,
              theory_curve=frozen_pred, **common),
    ]


def crossing(b: Budget) -> list[CheckResult]:
    """The frequency at which DR's and SR's excess cross (11.c.2): rows just below it favour SR, rows just above it
    favour DR; measured on rows placed at p_x / 1.2 and p_x x 1.2 (control: both above, at 1.2 and 1.44 p_x)."""
    _, batch, w_star = _ladder(b)
    start = np.zeros(D)
    px = theory.dr_sr_crossing(w_star, start, batch, DELTA, ALPHA, MU, SIGMA, RECORDS, 0.4 / batch, 25.6 / batch)

    def signed_gap(p_lo: float, p_hi: float, tag: str) -> tuple[Estimate, np.ndarray]:
        """(DR - SR at p_lo, SR - DR at p_hi): both positive when the crossing lies between them."""
        rows = min(300, int(0.8 / (p_lo + p_hi)))  # as many as fit in 80% of the lookups
        hot = 1.0 - rows * (p_lo + p_hi)  # one row takes the remaining lookups, so the batch stays the same
        n = 2 * rows + 1
        freqs = np.concatenate([np.full(rows, p_lo), np.full(rows, p_hi), [hot]])
        prob = sp.sparse_quadratic(n, D, freqs, mu=MU, sigma=SIGMA, w_star=np.tile(w_star, (n, 1)))
        ex = {r: _sim(prob, r, b, tag, step=DELTA, lr=ALPHA, iters=T, batch=batch,
                      record_at=RECORDS).row_excess.mean(axis=1) for r in ("sr", "dr")}
        lo = ex["dr"][:, :rows].mean(axis=1) - ex["sr"][:, :rows].mean(axis=1)
        hi = ex["sr"][:, rows:2 * rows].mean(axis=1) - ex["dr"][:, rows:2 * rows].mean(axis=1)
        return curve([mean_ci(lo), mean_ci(hi)]), np.array([p_lo, p_hi])

    est, ps = signed_gap(px / 1.2, px * 1.2, "sparse/crossing")
    ctrl, _ = signed_gap(px * 1.2, px * 1.44, "sparse/crossing-control")
    return [judge("Sparse: DR and SR cross at the predicted row frequency (DR - SR just below, SR - DR just above)",
                  cite("dr_sr_crossing"), "approximation", est, np.zeros(2), Exceeds(), Control(
                      "rows at 1.2 and 1.44 p_x (both above: DR - SR < 0 at the first)", ctrl, np.zeros(2)),
                  shown_predicted=f"p_x = {px:.4g} ({px * batch:.3g} lookups/step): both > 0",
                  note=f"rows at {ps[0] * batch:.3g} and {ps[1] * batch:.3g} lookups/step; a crossing off by 25% puts "
                       "both on one side", id="sparse.crossing", x=ps * batch, y=est.value, px=px * batch)]


# Part 3: ALPT with one step per table. Rows of 4 elements, b = 4 bits, lr 0.02, noise 1; the optima of frequent
# rows are larger (the scale doubles per bucket), as trained CTR embeddings of frequent ids are.
A_LAMBDAS = np.array([0.05, 0.3, 1.8, 10.8])
A_ROWS = np.array([600, 150, 40, 10])
A_SCALES = np.array([0.2, 0.4, 0.8, 1.6])
A_BITS, A_ALPHA, A_D, A_T, A_STEP0, A_STEP_LR = 4, 0.02, 4, 6000, 0.1, 2e-4  # noqa: N806


def _alpt_problem(b: Budget, uniform: bool = False) -> tuple[sp.SparseProblem, int, np.ndarray]:
    u = b.rng("sparse/alpt").uniform(-1, 1, A_D)
    proto = A_SCALES[:, None] * u[None, :]
    w_star = np.repeat(proto, A_ROWS, axis=0)
    batch = int(round(float(np.sum(A_ROWS * A_LAMBDAS))))
    n = int(A_ROWS.sum())
    freqs = np.full(n, 1.0 / n) if uniform else np.repeat(A_LAMBDAS / batch, A_ROWS)
    # rows start at their optimum (rounded), so the run measures the stationary law, not the approach to it
    return sp.sparse_quadratic(n, A_D, freqs, mu=MU, sigma=SIGMA, w_star=w_star, w0=w_star), batch, proto


def alpt_table_step(b: Budget) -> list[CheckResult]:
    """ALPT with one step per table: the step settles where the frequency-weighted LSQ gradient vanishes (11.d.1),
    and the rare rows pay for a grid chosen by the frequent ones (their excess at that step, 11.c.1)."""
    prob, batch, proto = _alpt_problem(b)
    step = theory.sparse_alpt_fixed_step(prob.w_star, prob.freqs, batch, A_BITS, A_ALPHA, MU, SIGMA, (0.04, 0.6))
    p = A_LAMBDAS / batch
    paid = np.array([theory.sparse_row_excess(proto[j], proto[j], p[j], batch, step, A_ALPHA, MU, SIGMA, None, "sr",
                                              A_BITS)[0] for j in range(len(p))])
    rec = np.arange(A_T // 2, A_T + 1, 20)
    kw = dict(step=A_STEP0, lr=A_ALPHA, iters=A_T, batch=batch, bits=A_BITS, step_lr=A_STEP_LR,
              step_optimizer="adam", record_at=rec)
    table = _sim(prob, "alpt", b, "sparse/alpt", step_granularity="table", **kw)
    uni_prob, _, _ = _alpt_problem(b, uniform=True)
    uniform = _sim(uni_prob, "alpt", b, "sparse/alpt", step_granularity="table", **kw)
    per_row = _sim(prob, "alpt", b, "sparse/alpt", step_granularity="row", **kw)
    learned = mean_ci(table.step_history[:, :, 0].mean(axis=1))
    learned_uniform = mean_ci(uniform.step_history[:, :, 0].mean(axis=1))
    excess, excess_rows = _excess(table, A_ROWS), _excess(per_row, A_ROWS)
    lam = ", ".join(f"{x:g}" for x in A_LAMBDAS)
    return [
        # 3%: the band of the dense fixed-point check (docs/theory.md 7.3), the same two-time-scale approximation
        judge("Sparse ALPT, one step per table: the learned step (mean over the second half)",
              cite("sparse_alpt_fixed_step"), "approximation", learned, step, Relative(0.03),
              Control("the same rows looked up uniformly (every row weighted alike)", learned_uniform, step),
              note=f"rows {A_ROWS.tolist()} at {lam} lookups/step, optima x{A_SCALES.tolist()}; {A_BITS} bits; "
                   "the frequent rows, few but touched often, set the step", id="sparse.alpt-table-step"),
        judge(f"Sparse ALPT, one step per table: mean row excess per frequency bucket (lookups/step {lam})",
              cite("sparse_row_excess", "sparse_alpt_fixed_step"), "approximation", excess, paid, Relative(0.15),
              Control("one learned step per row", excess_rows, paid),
              note=f"SR's stationary excess at the predicted table step {step:.4g}: the rare rows, with small optima, "
                   "live on a grid too coarse for them; with a step per row they do better",
              id="sparse.alpt-rare-pay", x=A_LAMBDAS, y=excess.value, theory_curve=paid,
              per_row=excess_rows.value),
    ]


# Part 4: ALPT with one step per field (11.d: "with one per field, the same weighting holds within the field"). Field 0
# is part 3's table; field 1 has another frequency profile (3 buckets, 1.8 decades) and the opposite trend of scales:
# its frequent rows have small optima and its rare rows large ones, so within each field the frequency weighting
# pulls the step the other way (field 0 toward its large frequent optima, field 1 toward its small frequent ones).
F_LAMBDAS = (A_LAMBDAS, np.array([0.1, 0.8, 6.4]))
F_ROWS = (A_ROWS, np.array([400, 52, 6]))  # 40 + 41.6 + 38.4 lookups: a whole batch of 375
F_SCALES = (A_SCALES, np.array([0.8, 0.2, 0.05]))
F_T = 3000  # the steps reach their fixed points (travel 0.1 -> 0.21 at about step_lr a step) in the first half


def _field_problem(b: Budget) -> tuple[sp.SparseProblem, int, list[np.ndarray]]:
    """The two-field table: the same prototype direction as part 3, each bucket's optima at its field's scale;
    returns the problem, the batch and each field's row indices."""
    u = b.rng("sparse/alpt").uniform(-1, 1, A_D)
    w_star = np.concatenate([np.repeat(sc[:, None] * u[None, :], r, axis=0) for sc, r in zip(F_SCALES, F_ROWS,
                                                                                             strict=True)])
    batch = int(round(sum(float(np.sum(r * lam)) for r, lam in zip(F_ROWS, F_LAMBDAS, strict=True))))
    freqs = np.concatenate([np.repeat(lam / batch, r) for lam, r in zip(F_LAMBDAS, F_ROWS, strict=True)])
    n0, n = int(F_ROWS[0].sum()), int(sum(r.sum() for r in F_ROWS))
    prob = sp.sparse_quadratic(n, A_D, freqs, mu=MU, sigma=SIGMA, w_star=w_star, w0=w_star, field_starts=(0, n0))
    return prob, batch, [np.arange(0, n0), np.arange(n0, n)]


def alpt_field_step(b: Budget) -> list[CheckResult]:
    """ALPT with one step per field: each field's step settles at the frequency-weighted fixed point of its own rows
    (11.d.1 applied to the field alone), not where one table step would (control)."""
    prob, batch, fields = _field_problem(b)
    bracket = (0.04, 0.6)

    def fixed(rows: np.ndarray) -> float:
        return theory.sparse_alpt_fixed_step(prob.w_star[rows], prob.freqs[rows], batch, A_BITS, A_ALPHA, MU, SIGMA,
                                             bracket)

    pred = np.array([fixed(rows) for rows in fields])  # each field's rows alone, before the run
    table = fixed(np.arange(prob.n))  # the control: one step shared by both fields
    rec = np.arange(F_T // 2, F_T + 1, 20)
    tr = _sim(prob, "alpt", b, "sparse/alpt-field", step=A_STEP0, lr=A_ALPHA, iters=F_T, batch=batch, bits=A_BITS,
              step_lr=A_STEP_LR, step_optimizer="adam", record_at=rec, step_granularity="field")
    learned = curve([mean_ci(tr.step_history[:, :, f].mean(axis=1)) for f in range(len(fields))])
    lookups = [float(np.sum(r * lam)) for r, lam in zip(F_ROWS, F_LAMBDAS, strict=True)]
    # 3%: the band of the table-step check and of the dense fixed point (7.3): the same two-time-scale approximation
    return [judge("Sparse ALPT, one step per field: each field's learned step (mean over the second half)",
                  cite("sparse_alpt_fixed_step"), "approximation", learned, pred, Relative(0.03),
                  Control(f"one step shared by both fields ({table:.4g}), predicted the same way", learned,
                          np.full(len(fields), table)),
                  note=f"field 0: rows {F_ROWS[0].tolist()} at {F_LAMBDAS[0].tolist()} lookups/step, optima "
                       f"x{F_SCALES[0].tolist()}; field 1: rows {F_ROWS[1].tolist()} at {F_LAMBDAS[1].tolist()}, "
                       f"optima x{F_SCALES[1].tolist()} ({lookups[0]:g} and {lookups[1]:g} lookups/step); "
                       f"{A_BITS} bits, {F_T} steps; within each field its frequent rows set its step",
                  id="sparse.alpt-field-step", x=np.arange(len(fields)), y=learned.value, theory_curve=pred,
                  table_step=table)]


PARTS = (excess_per_bucket, crossing, alpt_table_step, alpt_field_step)


def run_group(b: Budget) -> list[CheckResult]:
    """All checks of the sparse group."""
    return [r for part in PARTS for r in part(b)]
