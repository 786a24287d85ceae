"""The CUDA launch path of the first GPU run, without a GPU: every Triton launch of its steps bound and compiled.

    PYTHONPATH=. python benchmarks/gpu_launch_dry_run.py [--arch 90] [--cases all|2]

Under ``TRITON_INTERPRET=1`` a launch goes through the interpreter, which never runs Triton's JIT launcher: its
argument binder, the typing and specialization of each argument, the parsing of the launch options (``num_warps``,
``maxnreg``, ``enable_fp_fusion``; an unknown one is an error there, not under the interpreter) and the compile for
a CUDA target. Here the kernels are imported compiling (not interpreted), Triton's driver is replaced by one that
names a CUDA target (``sm_<arch>``) and device 0, and every launch runs with ``warmup=True``: bound, specialized,
compiled to a cubin with Triton's bundled ptxas, not launched. The outputs the step reads back get sane values (the
gather's 32-bit keys are the ids), so the steps of the first run's exactness cases (``EXACT_CASES``: the keyed
initial rows, the gather, the long runs, the one-pass and two-pass update phases) go through every launch they make
on a GPU. Prints one line per compiled specialization; exits 1 on the first launch that fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


class CudaTargetDriver:
    """Triton's active driver, as far as ``JITFunction.run`` asks it: device 0, stream 0, a CUDA target."""

    def __init__(self, arch: int):
        from triton.backends.compiler import GPUTarget

        self.target = GPUTarget("cuda", arch, 32)

    def get_current_device(self) -> int:
        return 0

    def get_current_stream(self, device: int | None = None) -> int:
        return 0

    def get_current_target(self):
        return self.target

    def get_active_torch_device(self):
        import torch

        return torch.device("cpu")


def _fill_outputs(name: str, args: tuple, kwargs: dict) -> None:
    """A compiled, not launched, kernel's outputs that the step reads afterwards: made sane (keys = the ids)."""
    import torch

    if name == "gather_dequant_kernel":
        args[4].zero_()
        if kwargs.get("KEYS"):
            args[5].copy_(args[0].to(torch.int32))
    elif name == "long_run_kernel":
        args[3].zero_()
    elif name == "fused_update_kernel":
        args[4].zero_()


def dry_run(arch: int, cases: tuple) -> list[str]:
    """Run one small step of each case through the JIT launch path (compile only); the specializations compiled."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise RuntimeError("unset TRITON_INTERPRET: the dry run needs the compiling launch path")
    import torch
    from triton.runtime.driver import driver
    from triton.runtime.jit import JITFunction

    previous = getattr(driver, "_active", None)  # None until a driver is first asked for (no GPU: none can be)
    driver.set_active(CudaTargetDriver(arch))
    compiled: list[str] = []
    launch = JITFunction.run

    def run(self, *args, grid, warmup, **kwargs):
        kernel = launch(self, *args, grid=grid, warmup=True, **kwargs)
        _fill_outputs(self.__name__, args, kwargs)
        compiled.append(f"{self.__name__} {kernel.hash[:12]} num_warps={kernel.metadata.num_warps}")
        return kernel

    JITFunction.run = run
    try:
        from lptsim.ctr import kernels
        from lptsim.ctr.embedding import LowPrecisionEmbedding
        from lptsim.ctr.kernels.init_rows import device_initial_rows
        from lptsim.ctr.table import TableOptimizer

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from gpu_embedding_step import alpt_step, zipf_ids

        available = kernels.available
        kernels.available = lambda device=None: True  # the tables lie on the CPU; their launches are compiled only
        try:
            for bits, state, variant in cases:
                kw = dict(bits=bits, method="alpt", alpt_variant=variant, init_std=0.02, seed=1, state_dtype=state)
                emb = LowPrecisionEmbedding(3000, 16, backend="triton", **kw)
                device_initial_rows(emb.config, 3000, 16, emb.codes.padded_dim, 0, "cpu")
                gen = torch.Generator().manual_seed(bits)
                ids = zipf_ids(3000, 64 * 39, gen, "cpu").view(64, 39)  # runs longer than 32: the long-run kernel
                up = torch.randn(64, 39, 16, generator=gen)
                alpt_step(emb, TableOptimizer(emb), ids, up, up.flip(0))
        finally:
            kernels.available = available
    finally:
        JITFunction.run = launch
        driver.set_active(previous)
    return compiled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", type=int, default=90, help="compute capability (90: H100, H200)")
    parser.add_argument("--cases", choices=("all", "2"), default="all",
                        help="all of EXACT_CASES, or the two 2-bit bfloat16 ones (one-pass, two-pass)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRITON_CACHE_DIR", tempfile.mkdtemp(prefix="lptsim-dry-run-"))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import triton
    from gpu_embedding_step import EXACT_CASES

    cases = EXACT_CASES if args.cases == "all" else tuple(c for c in EXACT_CASES if c[:2] == (2, "bfloat16"))
    start = time.perf_counter()
    try:
        compiled = dry_run(args.arch, cases)
    except Exception as exc:  # noqa: BLE001 (reported: the launch the first GPU run would fail at)
        print(f"dry run FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for line in sorted(set(compiled)):
        print(line)
    print(f"{len(compiled)} launches bound and compiled for sm_{args.arch} ({len(set(compiled))} specializations) "
          f"in {time.perf_counter() - start:.1f} s; Triton {triton.__version__}, Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
