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


def test_kernel_benchmark_smoke(tmp_path):
    out = tmp_path / "step.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if not torch.cuda.is_available():
        env["TRITON_INTERPRET"] = "1"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_embedding_step.py", "--smoke", "--json", str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert [e["bits"] for e in data["exactness"]] == [8, 4, 2, 3]
    assert all(e["codes_identical"] and e["steps_identical"] for e in data["exactness"])
    methods = [r["method"] for r in data["results"]]
    assert methods[0].startswith("FP32 nn.Embedding(sparse) + SGD") and "plain PyTorch ALPT (one pass)" in methods
    assert [r["bits"] for r in data["results"] if r["method"].startswith("lptsim")] == [8, 4, 2]
    assert data["results"][0]["ratio_to_fp32_sgd"] == 1.0 and all(r["ms"] > 0 for r in data["results"])
    assert "vs FP32 SGD" in proc.stdout and "floor %" in proc.stdout


def test_kernel_dcn_benchmark_smoke(tmp_path):
    """benchmarks/gpu_dcn_train.py --smoke: the end-to-end DCN benchmark runs (FP32 and ALPT 8/4 bits) and
    writes its JSON."""
    out = tmp_path / "dcn.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if not torch.cuda.is_available():
        env["TRITON_INTERPRET"] = "1"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_dcn_train.py", "--smoke", "--json", str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert [r["method"] for r in data["results"]] == ["fp32", "alpt-8", "alpt-4"]
    assert all(r["samples_per_s"] > 0 for r in data["results"]) and data["results"][0]["ratio_to_fp32"] == 1.0
