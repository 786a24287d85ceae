"""The timing and CUDA-graph checks of benchmarks/gpu_first_run.py, on the CPU: the GPU-time measurement against a
simulated device timeline (a host slower than the GPU must not show up as GPU time), and the replay check against
replays that do not step the table as an eager step does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_first_run  # noqa: E402
from gpu_embedding_step import alpt_step  # noqa: E402


class SimulatedDevice:
    """Stands in for ``torch.cuda`` in ``gpu_ms``: a host clock that advances as the host issues work, and a GPU
    that runs each piece of work no earlier than it was issued (times in ms)."""

    def __init__(self, cycles_per_ms: float = 1e6):
        self.host = self.gpu = 0.0
        self.cycles_per_ms = cycles_per_ms
        device = self

        class Event:
            def __init__(self, enable_timing: bool = False):
                self.t = None

            def record(self) -> None:  # the GPU reaches the event once its queue is done and the host issued it
                device.gpu = max(device.gpu, device.host)
                self.t = device.gpu

            def query(self) -> bool:
                return self.t <= device.host

            def elapsed_time(self, end) -> float:
                return end.t - self.t

        self.Event = Event

    def synchronize(self) -> None:
        self.host = max(self.host, self.gpu)

    def _sleep(self, cycles: int) -> None:
        self.gpu = max(self.gpu, self.host) + cycles / self.cycles_per_ms

    def step(self, host_ms: float, gpu_ms: float, kernels: int = 10):
        """A step of ``kernels`` launches: ``host_ms`` to issue them all, ``gpu_ms`` to run them all."""
        def run() -> None:
            for _ in range(kernels):
                self.host += host_ms / kernels
                self.gpu = max(self.gpu, self.host) + gpu_ms / kernels
        return run


@pytest.mark.parametrize("host_ms, device_ms", [(5.0, 1.0), (1.0, 5.0)], ids=["host-bound", "gpu-bound"])
def test_gpu_ms_times_the_device_not_the_host(host_ms, device_ms):
    dev = SimulatedDevice()
    step = dev.step(host_ms, device_ms)
    a, b = dev.Event(), dev.Event()  # what plain events around the step measure: the slower side
    dev.synchronize()
    a.record()
    step()
    b.record()
    assert a.elapsed_time(b) == pytest.approx(max(host_ms, device_ms), abs=0.2)
    out = gpu_first_run.gpu_ms(step, 5, issue_ms=host_ms, cuda=dev)
    assert out["gpu_ms"] == pytest.approx(device_ms) and out["covered"] == 1.0


def test_gpu_ms_lengthens_a_spin_too_short_for_the_host():
    dev = SimulatedDevice()
    out = gpu_first_run.gpu_ms(dev.step(5.0, 1.0), 5, issue_ms=0.01, cuda=dev)  # the issue time underestimated
    assert out["gpu_ms"] == pytest.approx(1.0) and out["covered"] == 1.0 and out["spin_ms"] > 5.0


def test_replay_check_requires_the_replay_to_step_like_the_eager_step():
    from lptsim.ctr.embedding import LowPrecisionEmbedding
    from lptsim.ctr.table import TableOptimizer

    emb = LowPrecisionEmbedding(50, 16, bits=2, method="alpt", alpt_variant="one-pass", backend="torch", seed=3)
    opt = TableOptimizer(emb)
    gen = torch.Generator().manual_seed(0)
    ids, up = torch.randint(0, 50, (4, 39), generator=gen), torch.randn(4, 39, 16, generator=gen)

    def step() -> None:
        alpt_step(emb, opt, ids, up, None)

    def stale_counter() -> None:  # a replay that steps but leaves the counter behind (its SR bits would repeat)
        step()
        emb.updates.sub_(1)

    step()
    check = gpu_first_run.replay_check(emb, step, step, lambda: None)
    assert check["replay_identical_to_eager"] and check["updates_advanced_per_replay"] == 1
    check = gpu_first_run.replay_check(emb, lambda: None, step, lambda: None)  # a replay that does nothing
    assert not check["replay_identical_to_eager"] and check["updates_advanced_per_replay"] == 0
    assert check["replay_differing"]["codes"] > 0
    check = gpu_first_run.replay_check(emb, stale_counter, step, lambda: None)
    assert not check["replay_identical_to_eager"] and check["replay_differing"]["updates"] == 1
    assert check["updates_advanced_per_replay"] == 0


def _compiling_env(tmp_path) -> dict:
    """A compiling (not interpreting) environment with a cold Triton cache of its own."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(TRITON_CACHE_DIR=str(tmp_path), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return env


def test_cuda_launch_path_binds_and_compiles_every_launch(tmp_path):
    """benchmarks/gpu_launch_dry_run.py: the 2-bit bfloat16 steps' launches (initial rows, gather, long runs, the
    update's one-pass and two-pass phases) go through Triton's JIT launcher for sm_90, compiled, not launched; an
    unknown launch option (which the interpreter ignores) fails it."""
    import subprocess

    pytest.importorskip("triton")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "benchmarks/gpu_launch_dry_run.py", "--cases", "2"], capture_output=True,
                          text=True, env=_compiling_env(tmp_path), cwd=root, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    names = {ln.split()[0] for ln in proc.stdout.splitlines()[:-1]}
    assert names == {"_init_kernel", "gather_dequant_kernel", "long_run_kernel", "fused_update_kernel"}
    assert sum(ln.startswith("fused_update_kernel") for ln in proc.stdout.splitlines()) == 3  # phases 0, 1, 2
    planted = ("import sys; sys.argv = ['x', '--cases', '2']; from lptsim.ctr import kernels; "
               "kernels.LAUNCH['num_wraps'] = 2; sys.path.insert(0, 'benchmarks'); import gpu_launch_dry_run as d; "
               "sys.exit(d.main())")
    proc = subprocess.run([sys.executable, "-c", planted], capture_output=True, text=True,
                          env=_compiling_env(tmp_path), cwd=root, timeout=600)
    assert proc.returncode == 1 and "num_wraps" in proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]
