"""Test-session set-up: without CUDA, Triton kernels run in its interpreter on the CPU; OpenMP waits passively
(scripts/test.sh sets it for the workers; this covers a bare pytest, when torch is not loaded yet)."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


# The modules that take minutes in all (a warm run on 2 cores: verify 320 s, distributed 150 s, kernels_aot 120 s,
# kernels 110 s, notebooks 80 s, benchmark_gpu_step 75 s; everything else under 35 s). scripts/test.sh hands out
# whole modules (--dist loadfile, which also keeps a module's fixtures on one worker) in collection order, so these
# go first and the short modules fill the other worker (under --dist load, test_verify.py came last, ~40 s of tail).
_LONG_MODULES_FIRST = ("test_verify.py", "test_distributed.py", "test_kernels_aot.py", "test_kernels.py",
                       "test_notebooks.py", "test_benchmark_gpu_step.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The command line as given: an xdist worker's own config.option.dist is reset to "no".
    if getattr(config.known_args_namespace, "dist", "no") != "loadfile":
        return  # --dist load sends each worker a chunk of consecutive tests: the long modules stay spread out
    rank = {name: i for i, name in enumerate(_LONG_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a module's own order is kept
