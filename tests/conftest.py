"""Test-session set-up: without CUDA, Triton kernels run in its interpreter on the CPU."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
