"""Test-session set-up: without CUDA, Triton kernels run in its interpreter on the CPU; OpenMP waits passively
(scripts/test.sh sets it for the workers; this covers a bare pytest, when torch is not loaded yet)."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
