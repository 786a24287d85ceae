"""Kernel mutants for the mutation check (scripts/mutation.py): plausible one-line bugs in the Triton kernels and
their wrapper, each an exact substitution of one line, each caught by tests/test_kernels.py (verified by hand:
applied one at a time to a scratch copy, ``pytest tests/test_kernels.py -x -q`` fails, 2026-12-03; refreshed for
the table package and the contract's streams: the Triton backend, lptsim/ctr/table/backends/triton_launch.py;
issue 27 added the bias-correction powering, the fused id check, the run ends by key, the reference's div_rn and
the launch census, each with the tests that catch it, run with ``python scripts/mutation.py --only <ids>``; its
item 4 moved the update kernels to update_kernels.py and the run sums into run_sum_kernels.py, whose mutants were
each applied by hand and caught by the tests named, 2026-12-07).

Not listed because the interpreter cannot see them (the AOT check and a GPU can): 32-bit offsets
(``tl.program_id(0) * BLOCK`` without ``.to(tl.int64)``) and FMA contraction (``enable_fp_fusion``).
"""

KERNELS = "lptsim/ctr/kernels/triton_kernels.py"
UPDATE = "lptsim/ctr/kernels/update_kernels.py"
RUNS = "lptsim/ctr/kernels/run_sum_kernels.py"
RUN_TESTS = ("tests/test_kernels_run_sums.py",)
WRAPPER = "lptsim/ctr/kernels/__init__.py"
BACKEND = "lptsim/ctr/table/backends/triton_launch.py"
TESTS = ("tests/test_kernels.py",)

MUTANTS = [
    {"id": "kernel-ignores-row-offset", "file": UPDATE,
     "old": "base = (row + tl.load(key_ptr + 1)).to(tl.uint64) * D + WRITE_BACK",
     "new": "base = row.to(tl.uint64) * D + WRITE_BACK", "tests": TESTS},
    {"id": "kernel-write-back-outside-its-stream", "file": UPDATE,
     "old": "base = (row + tl.load(key_ptr + 1)).to(tl.uint64) * D + WRITE_BACK",
     "new": "base = (row + tl.load(key_ptr + 1)).to(tl.uint64) * D", "tests": TESTS},
    {"id": "kernel-ignores-the-group-lr", "file": BACKEND,
     "old": 'kernels.fused_update(self.view, touched, group["lr"], group["step_lr"])',
     "new": 'kernels.fused_update(self.view, touched, self.table.config.row_lr, group["step_lr"])', "tests": TESTS},
    {"id": "kernel-sr-draw-per-row", "file": UPDATE,
     "old": "counter = base + cv.to(tl.uint64)", "new": "counter = base", "tests": TESTS},
    {"id": "kernel-dr-tie-goes-down", "file": UPDATE,
     "old": "up = p >= 0.5", "new": "up = p > 0.5", "tests": TESTS},
    {"id": "kernel-pack-byte-complete-off-by-one", "file": UPDATE,
     "old": "full = (bit & 7) + BITS >= 8", "new": "full = (bit & 7) + BITS > 8", "tests": TESTS},
    {"id": "kernel-unpack-straddle-only-3-bits", "file": KERNELS,
     "old": "if 8 % BITS != 0:  # the code may continue in the next byte",
     "new": "if BITS == 3:  # the code may continue in the next byte", "tests": TESTS},
    {"id": "kernel-adagrad-forgets-accumulator", "file": UPDATE,
     "old": "_put(sum_sq_ptr + row, acc, head, ukey, rglob + ROW_SUM_SQ, BF16)",
     "new": "pass  # _put(sum_sq_ptr + row, acc, head, ukey, rglob + ROW_SUM_SQ, BF16)", "tests": TESTS},
    {"id": "kernel-step-adagrad-squares-missing", "file": UPDATE,
     "old": "sacc = tl.load(step_m_ptr + sidx, mask=mask, other=0.0).to(tl.float32) + gs * gs",
     "new": "sacc = tl.load(step_m_ptr + sidx, mask=mask, other=0.0).to(tl.float32) + gs", "tests": TESTS},
    {"id": "kernel-adam-wrong-bias-correction", "file": UPDATE,
     "old": "row_bc2 = _bias_correction(ROW_B2, t_rows)", "new": "row_bc2 = _bias_correction(ROW_B1, t_rows)",
     "tests": TESTS},
    {"id": "kernel-bias-correction-powering-short", "file": KERNELS,  # t = 4,322 needs 13 bits
     "old": "for _ in range(BITS_OF_T):", "new": "for _ in range(12):",
     "tests": ("tests/test_kernels.py", "-k", "zipf")},
    {"id": "kernel-id-check-misses-the-end", "file": KERNELS,
     "old": "bad = live & ((row < 0) | (row >= rows))", "new": "bad = live & ((row < 0) | (row > rows))",
     "tests": ("tests/test_kernels.py", "-k", "bad_ids")},
    {"id": "kernel-id-check-misses-wrapped-keys", "file": KERNELS,
     "old": "row = tl.load(ids_ptr + pos, mask=live, other=0).to(tl.int64)\n    bad",
     "new": "row = tl.load(ids_ptr + pos, mask=live, other=0).to(tl.int32).to(tl.int64)\n    bad",
     "tests": ("tests/test_kernels.py", "-k", "bad_ids")},
    {"id": "kernel-short-run-end-off-by-one", "file": RUNS,
     "old": "        ok = act & (q < n)\n", "new": "        ok = act & (q < n - 1)\n", "tests": RUN_TESTS},
    {"id": "kernel-long-run-chunk-order", "file": RUNS,
     "old": "rank = (at - start) + (stride + at * 0) * (lane * CHUNK + i)",
     "new": "rank = (at - start) + (stride + at * 0) * (i * CHUNK + lane)", "tests": RUN_TESTS},
    {"id": "kernel-long-run-threshold-off-by-one", "file": RUNS,
     "old": "nxt = tl.load(sorted_ptr + pos + CHUNK, mask=head & (pos + CHUNK < n), other=-1)",
     "new": "nxt = tl.load(sorted_ptr + pos + CHUNK - 1, mask=head & (pos + CHUNK - 1 < n), other=-1)",
     "tests": ("tests/test_kernels.py", "-k", "long_runs")},
    {"id": "kernel-last-level-flush-off-by-one", "file": RUNS,
     "old": "flush = (k % CHUNK) == 0", "new": "flush = ((k + 1) % CHUNK) == 0", "tests": RUN_TESTS},
    {"id": "kernel-deep-item-misaligned", "file": RUNS,
     "old": "mine = deep & ((pos - lo) % span == 0)", "new": "mine = deep & ((pos - lo - 1) % span == 0)",
     "tests": RUN_TESTS},
    {"id": "reference-divides-by-a-python-number", "file": "lptsim/ctr/table/backends/torch_reference.py",
     "old": "div_rn(ordered_row_sum(g * g), float(g.shape[1]))", "new": "ordered_row_sum(g * g) / g.shape[1]",
     "tests": ("tests/test_kernels.py", "-k", "divides_only")},
    {"id": "kernel-step-extra-launch", "file": WRAPPER,
     "old": "pending.sorted, pending.perm = torch.sort(keys, stable=True)",
     "new": "pending.sorted, pending.perm = torch.sort(keys.clone(), stable=True)",
     "tests": ("tests/test_kernels_census.py",)},
    {"id": "kernel-duplicates-last-wins", "file": RUNS,
     "old": "acc = tl.where(m, acc + v, acc)", "new": "acc = tl.where(m, v, acc)", "tests": TESTS},
    {"id": "kernel-run-sum-one-long-run-launch-only", "file": WRAPPER,
     "old": "launches = long_run_launches(n, chunk)", "new": "launches = min(long_run_launches(n, chunk), 1)",
     "tests": RUN_TESTS},
    {"id": "kernel-per-row-step-read-as-table", "file": KERNELS,
     "old": "s = tl.load(steps_ptr + row, mask=mask, other=1.0)",
     "new": "s = tl.load(steps_ptr, mask=mask, other=1.0)", "tests": TESTS},
    {"id": "kernel-alpt-drops-grad-scale", "file": UPDATE,
     "old": "gs = gs * grad_scale", "new": "gs = gs", "tests": TESTS},
    {"id": "kernel-sr-seed-off-by-one-step", "file": UPDATE,
     "old": "ukey = _splitmix64(tl.load(key_ptr), t_update)  # this update's key: all its draws",
     "new": "ukey = _splitmix64(tl.load(key_ptr), t_update - 1)  # this update's key: all its draws",
     "tests": TESTS},
    {"id": "kernel-clamp-to-qmax-minus-one", "file": UPDATE,
     "old": "code = tl.minimum(tl.maximum(f + tl.where(up, 1.0, 0.0), QMIN), QMAX).to(tl.int32)",
     "new": "code = tl.minimum(tl.maximum(f + tl.where(up, 1.0, 0.0), QMIN), QMAX - 1).to(tl.int32)", "tests": TESTS},
    {"id": "kernel-non-head-lanes-store", "file": UPDATE,
     "old": "tl.store(codes_ptr + row * ROW_BYTES + c, code.to(tl.int8), mask=head & inside)",
     "new": "tl.store(codes_ptr + row * ROW_BYTES + c, code.to(tl.int8), mask=live & inside)", "tests": TESTS},
    {"id": "kernel-two-pass-commit-uses-first-gradient", "file": WRAPPER,
     "old": "grad = _grad_rows(grad_hat if grad_hat is not None else pending.grad, n, view.dim, pending.wnew.device)",
     "new": "grad = _grad_rows(pending.grad, n, view.dim, pending.wnew.device)", "tests": TESTS},
    {"id": "kernel-bf16-state-draws-of-another-buffer", "file": UPDATE,
     "old": "_put(exp_avg_ptr + row * D + c, m, head, ukey, rglob * D + c + ROW_EXP_AVG, BF16)",
     "new": "_put(exp_avg_ptr + row * D + c, m, head, ukey, rglob * D + c + ROW_EXP_AVG_SQ, BF16)", "tests": TESTS},
    {"id": "kernel-bf16-step-not-reread-after-rounding", "file": UPDATE,
     "old": "step = tl.load(steps_ptr + sidx, mask=mask, other=1.0).to(tl.float32)",
     "new": "step = step", "tests": TESTS},
    {"id": "kernel-adam-step-counter-not-advanced", "file": WRAPPER,
     "old": "view.adam_steps.add_(1)", "new": "view.adam_steps.add(1)", "tests": TESTS},
    {"id": "kernel-shared-step-bf16-draws-by-position", "file": UPDATE,
     "old": "_step_update(step, gs, sidx, head, sidx.to(tl.uint64), steps_ptr,",
     "new": "_step_update(step, gs, sidx, head, pos.to(tl.uint64), steps_ptr,", "tests": TESTS},
]
