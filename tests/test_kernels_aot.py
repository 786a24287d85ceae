"""Ahead-of-time compilation of the kernels for sm_80/sm_90 with Triton's bundled ptxas (no GPU needed):
every specialization compiles, none spills, none contracts a multiply-add (``python -m lptsim.ctr.kernels.aot``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

from lptsim.ctr.kernels import aot  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path) -> dict:
    """A compiling (not interpreting) environment: kernels imported under TRITON_INTERPRET=1 cannot compile."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(TRITON_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    return env


def test_kernel_aot_quick_set_compiles_without_spills_or_fma(tmp_path):
    """The covering subset (every bits, method, optimizer, step kind) for sm_90, from a cold Triton cache."""
    env = _env(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "lptsim.ctr.kernels.aot", "--arch", "sm_90", "--quick"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("sm_90 ")]
    specs = aot.specializations(quick=True)
    assert len(lines) == len(specs) and all(ln.endswith("ok") for ln in lines)
    assert {s.bits for s in specs if s.kernel not in ("long_run", "shared_step", "init_rows")} == set(range(1, 9))
    # the keyed initial rows: FP32, packed, byte-straddling and 8-bit codes, both roundings (libdevice's FMAs only)
    assert {(s.bits, s.method) for s in specs if s.kernel == "init_rows"} == {(0, "fp")} | {
        (b, r) for b in (2, 3, 8) for r in ("nearest", "stochastic")}
    assert {(s.step_kind, s.dim) for s in specs if s.kernel == "long_run"} == {(k, d) for k in (0, 1)
                                                                               for d in (13, 16, 128)}
    updates = [s for s in specs if s.kernel == "fused_update"]
    assert {s.method for s in updates} == set(aot.METHODS) and {s.opt for s in updates} == set(aot.OPTIMIZERS)
    assert {(s.bits, s.method) for s in updates} == {(b, m) for b in aot.BITS for m in aot.METHODS}
    assert {s.step_kind for s in updates} == {0, 1, 2} and {s.phase for s in updates} == {0, 1, 2, 3, 4}
    shared = {(s.phase, s.step_kind, s.state) for s in updates if s.phase >= 3}  # ALPT with a step per table/field
    assert shared == {(p, k, st) for p in (3, 4) for k in (0, 2) for st in ("fp32", "bf16")}
    assert {(s.method, s.state) for s in specs if s.kernel == "shared_step"} == {
        (m, st) for m in aot.METHODS if m.startswith("alpt") for st in ("fp32", "bf16")}
    assert {s.state for s in updates} == {"fp32", "bf16"} and {s.long for s in updates} == {True, False}
    assert "0 failure(s)" in proc.stdout
    import triton

    assert proc.stdout.startswith(f"Triton {triton.__version__} (")  # which compiler made the table


def test_kernel_aot_sees_fma_when_fusion_is_on(tmp_path):
    """The FMA column can fail: the same kernel compiled with fp fusion on holds fma.rn."""
    code = ("from lptsim.ctr.kernels import aot; s = aot.Spec('fused_update', 4, 16, 1, 'alpt-adam', 'adam'); "
            "print(aot.compile_one(s, 90)['fma'], aot.compile_one(s, 90, {'enable_fp_fusion': True})['fma'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(tmp_path), cwd=ROOT,
                          timeout=120)
    off, on = map(int, proc.stdout.split())
    assert off == 0 and on > 0


def test_kernel_aot_rejects_a_bad_arch(capsys):
    with pytest.raises(SystemExit):
        aot.main(["--arch", "ampere"])
    assert "--arch" in capsys.readouterr().err
