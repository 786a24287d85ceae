"""benchmarks/gpu_embedding_step.py --smoke: the GPU benchmark runs end to end at a tiny size on the CPU
(kernels under the interpreter), reports exactness and writes its JSON, so the first GPU run will work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")
ROOT = Path(__file__).resolve().parents[1]


def _smoke(script: str, out: Path, timeout: int) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``benchmarks/<script>.py --smoke`` (under the interpreter without CUDA); its output and its JSON."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if not torch.cuda.is_available():
        env["TRITON_INTERPRET"] = "1"
    proc = subprocess.run([sys.executable, f"benchmarks/{script}.py", "--smoke", "--json", str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc, json.loads(out.read_text())


def test_kernel_benchmark_smoke(tmp_path):
    proc, data = _smoke("gpu_embedding_step", tmp_path / "step.json", 300)
    cases = {(e["bits"], e["state"], e["variant"]) for e in data["exactness"]}
    assert {(2, "float32", "one-pass"), (2, "bfloat16", "one-pass"), (3, "bfloat16", "one-pass"),
            (2, "bfloat16", "two-pass")} <= cases
    assert all(e["identical"] for e in data["exactness"])
    assert all({"codes", "steps", "updates", "row_state.sum_sq", "step_state.m", "step_state.v"} <= set(e["differing"])
               for e in data["exactness"])
    methods = [r["method"] for r in data["results"]]
    assert methods[0].startswith("FP32 nn.Embedding(sparse) + SGD") and "plain PyTorch ALPT (one pass)" in methods
    assert [(r["bits"], r["method"].endswith("(two-pass)")) for r in data["results"] if r["method"].startswith("lptsim")
            ] == [(8, False), (4, False), (2, False), (2, True)]
    assert data["results"][0]["ratio_to_fp32_sgd"] == 1.0 and all(r["ms"] > 0 for r in data["results"])
    assert "vs FP32 SGD" in proc.stdout and "floor %" in proc.stdout


def test_kernel_dcn_benchmark_smoke(tmp_path):
    """benchmarks/gpu_dcn_train.py --smoke: the end-to-end DCN benchmark runs (FP32 and ALPT 8/4/2 bits) and
    writes its JSON."""
    proc, data = _smoke("gpu_dcn_train", tmp_path / "dcn.json", 300)
    assert [r["method"] for r in data["results"]] == ["fp32", "alpt-8", "alpt-4", "alpt-2"]
    assert all(r["samples_per_s"] > 0 for r in data["results"]) and data["results"][0]["ratio_to_fp32"] == 1.0


def test_kernel_first_run_smoke(tmp_path):
    """benchmarks/gpu_first_run.py --smoke: every section of the first GPU run runs (CUDA-only ones say so), the
    exactness section compares every state tensor and passes, and the JSON holds each section."""
    proc, data = _smoke("gpu_first_run", tmp_path / "first.json", 600)
    sections = data["sections"]
    assert list(sections) == ["exactness", "stages", "host_vs_gpu", "cuda_graph", "profile", "baselines"]
    assert all("error" not in s.get("result", {}) for s in sections.values() if isinstance(s.get("result"), dict))
    exact = sections["exactness"]["result"]
    assert exact and all(e["identical"] for e in exact)
    assert all({"codes", "steps", "updates", "step_state.m", "step_state.v"} <= set(e["differing"]) for e in exact)
    stages = sections["stages"]["result"]["one-pass"]
    assert all(stages[k] > 0 for k in ("lookup", "backward", "update", "step"))
    assert sections["host_vs_gpu"]["result"]["host_issue_ms"] > 0
    base = sections["baselines"]["result"]
    assert base["fp32_sparse_sgd_ms"] > 0 and base["torch_unique_ms"] > 0 and base["copy_bandwidth_bytes_per_s"] > 0
    assert data["triton"] and data["total_seconds"] > 0
