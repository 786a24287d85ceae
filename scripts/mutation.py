"""Mutation check: apply plausible one-line bugs, one at a time, and see whether the test suite catches each.

    bash scripts/mutation.sh [--only ID ...] [--list]

Each mutant replaces one exact snippet in one file of a scratch copy of the tracked tree, then runs the tests
named for it there (``pytest -x -q``, the package imported from the copy). A mutant is *caught* when those tests
fail. Kernel mutants run the kernel tests; every other mutant runs tests WITHOUT tests/test_kernels.py, so the
Triton differential test cannot be what catches it. The list is curated to be plausible (an off-by-one, a
flipped sign, a dropped term, a forgotten store), not chosen because the suite already catches it; a mutant
that survives is a gap to close. Not part of CI (it takes about 15-25 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NO_KERNELS = ["--ignore=tests/test_kernels.py"]


@dataclass(frozen=True)
class Mutant:
    id: str
    area: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    what: str


M = Mutant
TABLE_TESTS = ("tests/test_embedding.py", "tests/test_embedding_refs.py", "tests/test_embedding_state.py")
REFERENCE = "lptsim/ctr/table/backends/torch_reference.py"
MUTANTS: list[Mutant] = [
    # quant ------------------------------------------------------------------------------------------------
    M("q-tie", "quant", "lptsim/quant/rounding.py", "    return p >= 0.5", "    return p > 0.5",
      ("tests/test_quant.py",), "DR rounds exact halves down"),
    M("q-sr-invert", "quant", "lptsim/quant/rounding.py", "return u - shift < p",
      "return u - shift > p", ("tests/test_quant.py",), "SR rounds up with probability 1 - p"),
    M("q-clip-high", "quant", "lptsim/quant/rounding.py", "    if c > qmax:\n        c = qmax",
      "    if c > qmax + 1:\n        c = qmax", ("tests/test_quant.py",), "clipping lets qmax + 1 through"),
    M("q-philox-rounds", "quant", "lptsim/quant/philox.py", "PHILOX_ROUNDS = 10", "PHILOX_ROUNDS = 7",
      ("tests/test_quant.py",), "Philox with 7 rounds"),
    M("q-uniform-bits", "quant", "lptsim/quant/philox.py", "return float(philox_word(seed, counter) >> np.uint32(8))",
      "return float(philox_word(seed, counter) >> np.uint32(9))", ("tests/test_quant.py",),
      "uniforms in [0, 1/2)"),
    M("q-spec-symmetric", "quant", "lptsim/quant/spec.py", "-(1 << (self.bits - 1))", "-(1 << (self.bits - 1)) + 1",
      ("tests/test_quant.py",), "a symmetric code range"),
    M("q-pack-order", "quant", "lptsim/quant/packing.py", 'buf = np.packbits(stream, bitorder="little")',
      'buf = np.packbits(stream, bitorder="big")', ("tests/test_quant.py",),
      "3/5/6/7-bit packing in big-endian bit order (unpack changed below too)"),
    M("q-lsq-sign", "quant", "lptsim/quant/lsq.py", "return codes - v * inside", "return v * inside - codes",
      ("tests/test_quant.py", "tests/test_sim.py"), "LSQ step gradient with the wrong sign"),
    M("q-offset", "quant", "lptsim/quant/rounding.py",
      "out[i] = _round_one(xi, step, stochastic, seed, offset + np.uint64(i), qmin, qmax, rule)",
      "out[i] = _round_one(xi, step, stochastic, seed, offset + np.uint64(i // 16), qmin, qmax, rule)",
      ("tests/test_quant.py",), "one SR draw per 16 elements"),
    M("q-row-draw", "quant", "lptsim/quant/rounding.py",
      "out[r, j] = _round_one(xi, steps[r], stochastic, seed, row_offsets[r] + np.uint64(j), qmin, qmax, rule)",
      "out[r, j] = _round_one(xi, steps[r], stochastic, seed, row_offsets[r], qmin, qmax, rule)",
      ("tests/test_quant.py",), "one SR draw per row on the per-row-offset path (the public-kernel bug)"),
    # sim --------------------------------------------------------------------------------------------------
    M("s-adam-bias", "sim", "lptsim/sim/optimizers.py", "1 / np.sqrt(1 - self.b2**self.t)",
      "1 / np.sqrt(1 - self.b2)", ("tests/test_sim.py",), "Adam's second bias correction wrong"),
    M("s-adagrad-sum", "sim", "lptsim/sim/optimizers.py", "acc[r] += s / g.shape[1]", "acc[r] += s",
      ("tests/test_sim.py",), "row-wise Adagrad accumulates the sum, not the mean"),
    M("s-inv-sqrt", "sim", "lptsim/sim/simulate.py", '"inv_sqrt": lambda lr, t, prob: lr / np.sqrt(t)',
      '"inv_sqrt": lambda lr, t, prob: lr / np.sqrt(t + 1)', ("tests/test_sim.py", "tests/test_theory.py"),
      "the alpha/sqrt(t) schedule off by one"),
    M("s-alpt-scale", "sim", "lptsim/sim/methods.py",
      "scale = 1.0 / np.sqrt(w_half.shape[1] * self.spec.qmax) if self.spec.qmax > 0 else 1.0",
      "scale = 1.0", ("tests/test_sim.py",), "ALPT's 1/sqrt(N Qp) step-gradient scale dropped"),
    M("s-noise-var", "sim", "lptsim/sim/problems.py",
      "return self.noise * rng.standard_normal((seeds, self.d)) if self.noise > 0 else None",
      "return self.noise**2 * rng.standard_normal((seeds, self.d)) if self.noise > 0 else None",
      ("tests/test_sim.py", "tests/test_theory.py"), "gradient noise scaled by the variance"),
    M("s-avg", "sim", "lptsim/sim/simulate.py", 'out["excess_avg"][:, k] = prob.F(running_sum / t) - prob.f_star',
      'out["excess_avg"][:, k] = prob.F(running_sum / (t + 1)) - prob.f_star', ("tests/test_sim.py",),
      "the running average divided by t + 1"),
    M("s-start", "sim", "lptsim/sim/methods.py", "        self.weights = self.nearest(w0, self.grid_step)\n"
      "        self.opt.start(w0.shape)\n\n    def step(self, grad_at: GradFn, alpha: float) -> None:\n"
      "        self.weights = self.round(",
      "        self.weights = self.round(w0, self.grid_step)\n        self.opt.start(w0.shape)\n\n"
      "    def step(self, grad_at: GradFn, alpha: float) -> None:\n        self.weights = self.round(",
      ("tests/test_sim.py", "tests/test_theory.py"), "LPT starts with the run's rounding instead of nearest"),
    # theory -----------------------------------------------------------------------------------------------
    M("t-stall", "theory", "lptsim/theory/dr.py", "return delta / (2 * alpha * mu)", "return delta / (alpha * mu)",
      ("tests/test_theory.py",), "DR's stall radius off by 2"),
    M("t-floor", "theory", "lptsim/theory/sr.py", "return d * delta * mean_abs_grad / 4",
      "return d * delta * mean_abs_grad / 2", ("tests/test_theory.py",), "SR's noisy floor off by 2"),
    M("t-frac", "theory", "lptsim/theory/sr.py", "total += -e2 + (2 * j + 1) * e1 - j * (j + 1) * p0",
      "total += -e2 + (2 * j) * e1 - j * (j + 1) * p0", ("tests/test_theory.py",),
      "a dropped term in SR's rounding variance"),
    M("t-escape", "theory", "lptsim/theory/dr.py", "return stats.norm.sf((delta / 2 - m) / s)",
      "return stats.norm.sf((delta - m) / s)", ("tests/test_theory.py",),
      "DR's escape threshold at Delta instead of Delta/2"),
    M("t-sgd-var", "theory", "lptsim/theory/sgd.py", "return alpha * sigma**2 / (curvature * (2 - alpha * curvature))",
      "return alpha * sigma**2 / (curvature * 2)", ("tests/test_theory.py",),
      "SGD's stationary variance to first order only"),
    M("t-adam-bound", "theory", "lptsim/theory/adaptive.py", "np.sqrt((1 - b2**t) / (1 - b2))",
      "((1 - b2**t) / (1 - b2))", ("tests/test_theory.py",), "Adam's step bound without its square root"),
    M("t-lower", "theory", "lptsim/theory/dr.py", "cand = max(low, delta / (2 * alphas[t] * mu) - delta)",
      "cand = max(low, delta / (2 * alphas[t] * mu))", ("tests/test_theory.py",),
      "DR's lower bound forgets the last move's grid step"),
    M("t-averaged", "theory", "lptsim/theory/sr.py", "var_part = e0.size * q / a**2 * spread / T**2",
      "var_part = e0.size * q / a * spread / T**2", ("tests/test_theory.py",),
      "the averaged iterate's noise term off by a factor alpha mu"),
    # the table (its torch reference backend, config, store, optimizer; run without the kernel tests) -------------
    M("e-adagrad-store", "table", REFERENCE,
      "    store_state(state.sum_sq, rows, acc, key, stream_counters(Stream.ROW_SUM_SQ, rows, 1, row_offset))\n",
      "", TABLE_TESTS, "row-wise Adagrad never stores its accumulator"),
    M("e-adam-store", "table", REFERENCE,
      "    store_state(state.exp_avg, rows, m, key, stream_counters(Stream.ROW_EXP_AVG, rows, w.shape[1], "
      "row_offset))\n", "", TABLE_TESTS, "Adam never stores its first moment"),
    M("e-adam-bias", "table", REFERENCE,
      "    t = int(state.steps)\n    bc1, bc2 = bias_correction(b1, t), bias_correction(b2, t)",
      "    t = int(state.steps)\n    bc1, bc2 = bias_correction(b1, t), 1 - b2", TABLE_TESTS,
      "the row Adam's second bias correction uses b2 instead of b2^t"),
    M("e-sr-per-row", "table", REFERENCE,
      "counters = counter_base(Stream.WRITE_BACK) + ((rows + t.row_offset) * t.dim).cpu().numpy()",
      "counters = counter_base(Stream.WRITE_BACK) + ((rows + t.row_offset) * 0).cpu().numpy()",
      ("tests/test_embedding.py",), "every row's SR draws start at the same counter (rows share their draws)"),
    M("e-sr-row-offset", "table", REFERENCE,
      "counters = counter_base(Stream.WRITE_BACK) + ((rows + t.row_offset) * t.dim).cpu().numpy()",
      "counters = counter_base(Stream.WRITE_BACK) + (rows * t.dim).cpu().numpy()",
      ("tests/test_embedding.py", "tests/test_distributed.py"), "SR draws keyed by local, not global, row"),
    M("e-grad-scale", "table", "lptsim/ctr/table/config.py",
      "return self.grad_scale if self.grad_scale is not None else 1.0 / math.sqrt(dim * max(self.spec.qmax, 1))",
      "return self.grad_scale if self.grad_scale is not None else 1.0", TABLE_TESTS,
      "ALPT's 1/sqrt(N Qp) step-gradient scale dropped in the tables"),
    M("e-lsq-sign", "table", "lptsim/ctr/qat.py", "return grad * inside, g_step, None, None",
      "return grad * inside, -g_step, None, None", TABLE_TESTS, "the LSQ fake-quant step gradient with the wrong sign"),
    M("e-pact-sign", "table", "lptsim/ctr/qat.py",
      "(grad * torch.sign(w) * outside).sum().reshape(alpha.shape), None",
      "(-grad * torch.sign(w) * outside).sum().reshape(alpha.shape), None", TABLE_TESTS,
      "PACT's clip gradient with the wrong sign"),
    M("e-shared-step", "table", REFERENCE, "            g = sums[idx, 0]\n",
      "            g = g[torch.searchsorted(t.step_index(rows), idx)]\n", ("tests/test_embedding_state.py",),
      "a shared step takes one row's gradient instead of the sum"),
    M("e-init-offset", "table", "lptsim/ctr/table/store.py",
      "offset = counter_base(Stream.INIT_ROUNDING) + row_offset * values.shape[1]",
      "offset = counter_base(Stream.INIT_ROUNDING)", ("tests/test_embedding_state.py",),
      "stochastic initial rounding keyed by local rows"),
    M("e-init-shared-stream", "table", "lptsim/ctr/table/store.py",
      "offset = counter_base(Stream.INIT_ROUNDING) + row_offset * values.shape[1]",
      "offset = counter_base(Stream.INIT_VALUES) + row_offset * values.shape[1]", ("tests/test_table.py",),
      "the initial rounding draws from the initial values' counters (lptsim 0.1.0's overlapping streams)"),
    M("e-cast-bias", "table", "lptsim/quant/floats.py", "rounding.sr_round_up(frac.numpy(), seed, counters)",
      "rounding.sr_round_up(np.full(frac.shape, 0.5), seed, counters)", ("tests/test_embedding_state.py",),
      "16-bit state rounded up with probability 1/2 whatever the fraction"),
    M("e-second-pass-ignored", "table", REFERENCE,
      "grad = touched.grad_hat if touched.grad_hat is not None else touched.grad",
      "grad = touched.grad", ("tests/test_embedding.py",),
      "two-pass ALPT takes its step gradient from the first backward (the second pass is ignored)"),
    M("e-group-lr-ignored", "table", REFERENCE, 'group["lr"], t.state_key(), t.row_offset)',
      "t.config.row_lr, t.state_key(), t.row_offset)", ("tests/test_table.py",),
      "the row update ignores the param group's lr (a scheduler cannot reach the table)"),
    M("e-second-pass-touches-batchnorm", "table", "lptsim/ctr/table/optim.py", "                b.copy_(copy)\n",
      "                pass\n", ("tests/test_embedding.py",),
      "ALPT's second pass leaves BatchNorm statistics updated twice"),
    M("e-table-seed-shared", "table", "lptsim/ctr/embedding.py",
      "config = self.config.replace(seed=table_seed(self.config.seed, name))",
      "config = self.config.replace(seed=self.config.seed)", ("tests/test_table.py",),
      "every table of a model draws from the run's seed (embedding and first-order table correlated)"),
    M("e-migration-forgets-row-state", "table", "lptsim/ctr/table/state.py",
      '_RENAMED = {"row_optimizer.": "row_state.", ', "_RENAMED = {", ("tests/test_compat.py",),
      "a 0.1.0 checkpoint's row optimizer state is not read back"),
    # reader -------------------------------------------------------------------------------------------------
    M("r-empty-label", "reader", "lptsim/ctr/data/reader.py",
      "reject(invalid | missing | ((labels != 0) & (labels != 1)), self.reasons[\"label\"])",
      "reject(invalid | ((labels != 0) & (labels != 1)), self.reasons[\"label\"])",
      ("tests/test_reader_rules.py",), "an empty label is accepted (as 0)"),
    M("r-negative-label", "reader", "lptsim/ctr/data/reader.py",
      "reject(invalid | missing | ((labels != 0) & (labels != 1)), self.reasons[\"label\"])",
      "reject(invalid | missing | (labels > 1), self.reasons[\"label\"])",
      ("tests/test_reader_rules.py",), "a label of -1 is accepted"),
    M("r-hour", "reader", "lptsim/ctr/data/reader.py",
      "reject(invalid | missing | ~transforms.is_avazu_hour(ints), f\"{name} is not a YYMMDDHH date and hour\")",
      "reject(invalid | missing, f\"{name} is not a YYMMDDHH date and hour\")",
      ("tests/test_reader_rules.py",), "an Avazu hour that is not a date is accepted"),
    M("r-lone-minus", "reader", "lptsim/ctr/data/fastparse.py", "    if start == b or b - start > 18:",
      "    if b - start > 18:", ("tests/test_reader_rules.py",), "a lone '-' parses as the integer 0"),
    M("r-month", "reader", "lptsim/ctr/data/transforms.py",
      "ok &= (hour <= 23) & (month >= 1) & (month <= 12) & (day >= 1)",
      "ok &= (hour <= 23) & (month >= 1) & (month <= 12)", ("tests/test_reader_rules.py",),
      "day 00 of a month is accepted"),
    # ctr trainer protocol and memory accounting ------------------------------------------------------------
    M("c-l2-duplicates", "ctr", "lptsim/ctr/protocol.py",
      "total = total + 0.5 * self.lam * values[first_occurrences(flat)].pow(2).sum()",
      "total = total + 0.5 * self.lam * values.pow(2).sum()", ("tests/test_ctr_protocol.py",),
      "embedding L2 counts a row once per occurrence in the batch"),
    M("c-clip-skips-rows", "ctr", "lptsim/ctr/train.py",
      "clip_gradients([*dense, *rows], max_norm, total_sq_extra=extra)",
      "clip_gradients(dense, max_norm, total_sq_extra=extra)", ("tests/test_ctr_protocol.py",),
      "gradient clipping leaves the touched rows' gradients unclipped"),
    M("c-clip-coef", "ctr", "lptsim/ctr/protocol.py", "    if coef < 1:\n", "    if coef < 2:\n",
      ("tests/test_ctr_protocol.py",), "gradient clipping also scales gradients up"),
    M("c-bn-momentum", "ctr", "lptsim/ctr/protocol.py",
      "        m.momentum = None  # cumulative average over the pass",
      "        m.momentum = 0.1", ("tests/test_ctr_protocol.py",),
      "BatchNorm refresh keeps an exponential average instead of the pass's average"),
    M("c-plateau-mode", "ctr", "lptsim/ctr/protocol.py",
      'ReduceLROnPlateau(optimizer, mode="max", factor=gamma', 'ReduceLROnPlateau(optimizer, mode="min", factor=gamma',
      ("tests/test_ctr_protocol.py",), "reduce-on-plateau watches AUC as if lower were better"),
    M("c-plan-adam", "ctr", "lptsim/ctr/memory.py",
      '"adam": 2 * num_rows * dim * size}[optimizer]', '"adam": num_rows * dim * size}[optimizer]',
      ("tests/test_embedding_state.py",), "memory_plan counts one Adam moment"),
    # verify -----------------------------------------------------------------------------------------------
    M("v-point", "verify", "lptsim/verify/core.py",
      "v, a, b, band_lo, band_hi = np.broadcast_arrays(v, a, b, band_lo, band_hi)",
      "v, a, b, band_lo, band_hi = np.broadcast_arrays(v, v, v, band_lo, band_hi)", ("tests/test_verify.py",),
      "verdicts from point estimates"),
    M("v-control", "verify", "lptsim/verify/core.py", "    elif ctrl.outcome == PASS:\n        outcome = BLIND",
      "    elif ctrl.outcome == PASS:\n        outcome = PASS", ("tests/test_verify.py",),
      "a passing control is ignored"),
    M("v-family", "verify", "lptsim/verify/core.py", "    count += sum(k for k, _ in seen.values())\n", "",
      ("tests/test_verify.py",),
      "the family-wise count forgets intervals"),
    M("v-normal", "verify", "lptsim/verify/core.py", 'return float(stats.t.ppf(0.5 + level / 2, max(n - 1, 1)))',
      "return float(stats.norm.ppf(0.5 + level / 2))", ("tests/test_verify.py",),
      "normal instead of Student-t intervals"),
]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutants_kernels import MUTANTS as _KERNEL_MUTANTS  # noqa: E402 - the kernel list lives beside the kernels' notes

MUTANTS += [Mutant(d["id"], "kernels", d["file"], d["old"], d["new"], tuple(d["tests"]), d.get("what", d["id"]))
            for d in _KERNEL_MUTANTS]


def _copy_tree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run(mutants: list[Mutant], timeout: int) -> list[tuple[Mutant, str, float]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="lptsim-mut-") as tmp:
        work = Path(tmp)
        _copy_tree(work)
        env = {**os.environ, "PYTHONPATH": str(work), "NUMBA_CACHE_DIR": str(work / ".numba"),
               "TRITON_INTERPRET": "1"}
        for m in mutants:
            target = work / m.path
            original = target.read_text()
            count = original.count(m.old)
            if count != 1:
                results.append((m, f"STALE ({count} matches)", 0.0))
                continue
            target.write_text(original.replace(m.old, m.new))
            if m.id == "q-pack-order":  # unpack must change with pack, or the round trip itself breaks
                target.write_text(target.read_text().replace('np.unpackbits(raw[:need], bitorder="little")',
                                                             'np.unpackbits(raw[:need], bitorder="big")'))
            args = list(m.tests) + ([] if m.area == "kernels" else NO_KERNELS)
            start = time.perf_counter()
            try:
                proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                       "-p", "no:xdist", *args], cwd=work, env=env, capture_output=True,
                                      text=True, timeout=timeout)
                verdict = "caught" if proc.returncode != 0 else "NOT CAUGHT"
            except subprocess.TimeoutExpired:
                verdict = "caught (timeout)"
            results.append((m, verdict, time.perf_counter() - start))
            target.write_text(original)
            print(f"{m.id:24s} {m.area:8s} {verdict:12s} {results[-1][2]:6.1f} s  {m.what}", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="mutant ids to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per mutant")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.only or m.id in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.id:24s} {m.area:8s} {m.path}: {m.what}")
        return 0
    print(f"{len(chosen)} mutants; non-kernel mutants run without tests/test_kernels.py\n")
    results = run(chosen, args.timeout)
    caught = sum(v.startswith("caught") for _, v, _ in results)
    print(f"\n{caught} of {len(results)} mutants caught")
    for m, v, _ in results:
        if not v.startswith("caught"):
            print(f"  {v}: {m.id} ({m.path}): {m.what}")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
