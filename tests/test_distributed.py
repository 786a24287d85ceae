"""Distributed training on the CPU with gloo, launched by torchrun: equivalence, resharding, failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lptsim.ctr import checkpoint
from lptsim.ctr.data.synthetic import SyntheticSpec, synthetic_prepared

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    prepared, _ = synthetic_prepared(tmp_path_factory.mktemp("dist"), SyntheticSpec(rows=12_000, seed=3))
    return prepared


def _args(data: Path, out: Path, epochs: int, *extra: str, distributed: bool = True) -> list[str]:
    return ["-m", "lptsim", "ctr", "train", "--data", str(data), "--model", "dcn", "--hidden", "32",
            "--batch-size", "256", "--epochs", str(epochs), "--patience", "5", "--method", "alpt", "--bits", "4",
            "--quiet", *(["--distributed"] if distributed else []), "--out", str(out), *extra]


def _env(nproc: int = 1) -> dict[str, str]:
    """The runs' environment: each of `nproc` ranks gets its share of this process's intra-op threads, so a plain
    run and a one-rank run reduce in the same order (a CPU reduction's order follows the thread count, and the
    plain run no longer inherits this worker's), and two ranks do not oversubscribe the cores."""
    return {**os.environ, "OMP_NUM_THREADS": str(max(1, torch.get_num_threads() // nproc))}


def _run(argv: list[str], nproc: int = 1, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, env=_env(nproc), **kw)


def _torchrun(nproc: int, args: list[str], **kw) -> subprocess.CompletedProcess:
    return _run([*TORCHRUN, f"--nproc-per-node={nproc}", *args], nproc, **kw)


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _table(run: Path, name: str = "checkpoint", keys: tuple[str, ...] = ("codes.data", "step")) -> dict:
    """The whole first embedding table, reassembled from the shards (or read from a plain run's checkpoint)."""
    if (run / f"{name}.pt").exists():
        state = checkpoint.load(run / f"{name}.pt")["model"]
        return {k: state[f"embedding.{k}"] for k in keys}
    pointer = json.loads((run / f"{name}.json").read_text())
    folder = run / pointer["folder"]
    shards = [checkpoint.load(folder / f"shard-{r}-of-{pointer['world']}.pt") for r in range(pointer["world"])]

    def whole(key: str) -> torch.Tensor:  # per-row state: the shards' rows in order; a counter: rank 0's
        parts = [s["embedding"]["state"][key] for s in shards]
        return torch.cat(parts) if parts[0].dim() else parts[0]

    return {k: whole(k) for k in keys}


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    out = {"one": root / "one", "two": root / "two", "plain": root / "plain"}
    for n, key in ((1, "one"), (2, "two")):
        proc = _torchrun(n, _args(data, out[key], 2))
        assert proc.returncode == 0, proc.stderr[-3000:]
        STDERR[key] = proc.stderr
    plain = _run([sys.executable, *_args(data, out["plain"], 2, distributed=False)])  # the same command, no torchrun
    assert plain.returncode == 0, plain.stderr[-3000:]
    return out


STDERR: dict[str, str] = {}


def test_a_distributed_run_prints_no_warning(runs):
    """No deprecation warning (all_to_all, DDP's buffers) or any other, from any rank, on 1 or 2 ranks."""
    for key in ("one", "two"):
        assert "warn" not in STDERR[key].lower() and "deprecat" not in STDERR[key].lower(), STDERR[key][-3000:]


TABLE_STATE = ("codes.data", "step", "updates", "row_state.sum_sq", "step_state.m", "step_state.v")


def test_plain_run_equals_one_rank_distributed(runs):
    """The same seed, with and without torchrun (1 rank): identical metrics, logs and tables (each table's seed
    comes from the run's seed and the table's name, however the model is built)."""
    plain, one = _metrics(runs["plain"]), _metrics(runs["one"])
    assert plain["world_size"] == 1 and one["world_size"] == 1
    for key in ("test_auc", "test_logloss", "best_val_auc", "best_epoch"):
        assert plain[key] == one[key], key
    logs = [json.loads((runs[r] / "log.json").read_text()) for r in ("plain", "one")]
    assert [r["val_auc"] for r in logs[0]] == [r["val_auc"] for r in logs[1]]
    a, b = _table(runs["plain"], keys=TABLE_STATE), _table(runs["one"], keys=TABLE_STATE)
    for key in TABLE_STATE:
        assert torch.equal(a[key], b[key]), key


def test_two_processes_match_one(runs):
    a, b = _metrics(runs["one"]), _metrics(runs["two"])
    assert a["world_size"] == 1 and b["world_size"] == 2
    assert abs(a["test_auc"] - b["test_auc"]) <= 1e-4
    one, two = _table(runs["one"]), _table(runs["two"])
    assert torch.equal(one["codes.data"], two["codes.data"])  # SR draws keyed by global row
    # Two ranks average the dense gradients in another order (DDP's all-reduce), so a step's float32 update can
    # differ in its last bits; its stochastic cast to the state dtype (bfloat16) then flips for the rare value whose
    # draw lies between the two, which moves it by exactly one ulp of that dtype. So: at most one ulp, rarely.
    s1, s2 = one["step"].float(), two["step"].float()
    ulp = torch.finfo(one["step"].dtype).eps * s1.abs()  # >= one ulp at the value, < two
    assert bool(((s1 - s2).abs() <= ulp).all()), (s1 - s2).abs().max()
    assert float((s1 != s2).float().mean()) <= 0.01


@pytest.mark.parametrize("first, second", [(2, 1), (1, 2)])
def test_resharding_resume(data, runs, tmp_path, first, second):
    """One epoch on `first` ranks, then resume on `second`: the result equals the uninterrupted run."""
    run = tmp_path / f"r{first}{second}"
    assert _torchrun(first, _args(data, run, 1)).returncode == 0
    assert json.loads((run / "checkpoint.json").read_text())["world"] == first
    proc = _torchrun(second, _args(data, run, 2, "--resume"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    reference = _metrics(runs["one" if second == 1 else "two"])
    assert abs(_metrics(run)["test_auc"] - reference["test_auc"]) <= 1e-4
    assert torch.equal(_table(run)["codes.data"], _table(runs["one"])["codes.data"])


def _worker_pids(out: Path, local_rank: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(out).encode() in cmd and f"LOCAL_RANK={local_rank}".encode() in env:
            pids.append(int(proc.name))
    return pids


def test_killed_rank_fails_the_job_and_keeps_the_checkpoint(data, tmp_path):
    run = tmp_path / "killed"
    job = subprocess.Popen([*TORCHRUN, "--nproc-per-node=2", *_args(data, run, 30)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.time() + 300
    while time.time() < deadline and job.poll() is None and not (run / "checkpoint.json").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    victims = _worker_pids(run, "1")
    assert victims, "rank 1 not found"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    output, _ = job.communicate(timeout=300)
    assert job.returncode != 0
    assert "rank      : 1" in output and "Signal 9" in output  # torchrun names the failed rank and the cause
    pointer = json.loads((run / "checkpoint.json").read_text())
    folder = run / pointer["folder"]
    checkpoint.load(folder / "dense.pt")  # verified: checksum and data-only contents
    for r in range(pointer["world"]):
        checkpoint.load(folder / f"shard-{r}-of-{pointer['world']}.pt")
    assert not (run / "metrics.json").exists()


def test_planted_shard_is_refused_and_never_run(data, runs, tmp_path):
    """A pickle payload in a shard of both kept checkpoints: --resume refuses them, the marker never appears."""
    import shutil

    from test_security import assert_live, plant

    run, marker = tmp_path / "run", tmp_path / "MARKER"
    shutil.copytree(runs["one"], run)
    pointer = json.loads((run / "checkpoint.json").read_text())
    shards = [run / pointer["folder"] / "shard-0-of-1.pt", run / pointer["previous"]["folder"] / "shard-0-of-1.pt"]
    for shard in shards:
        plant(shard, marker)
    assert_live(shards[0], marker)
    proc = _torchrun(1, _args(data, run, 3, "--resume"))
    assert proc.returncode != 0 and not marker.exists()
    assert f"{shards[0]}: refused: it holds Python objects" in proc.stderr and "could run code" in proc.stderr
    assert "lptsim/ctr/" not in proc.stderr  # one line from the worker; the only traceback is torchrun's own


def test_distributed_needs_torchrun(data, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    proc = subprocess.run([sys.executable, *_args(data, tmp_path / "x", 1)], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "torchrun" in proc.stderr and "Traceback" not in proc.stderr


def test_gradient_clipping_over_shards_matches_one_process(data, tmp_path):
    """The clipping norm sums the touched rows' squared gradients over every rank's shard."""
    runs = {n: tmp_path / f"clip{n}" for n in (1, 2)}
    for n, run in runs.items():
        proc = _torchrun(n, _args(data, run, 1, "--grad-clip", "0.05"))
        assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = _table(runs[1]), _table(runs[2])
    assert torch.equal(one["codes.data"], two["codes.data"])
    # Two ranks average the dense gradients in another order (DDP's all-reduce), so a step's float32 update can
    # differ in its last bits; its stochastic cast to the state dtype (bfloat16) then flips for the rare value whose
    # draw lies between the two, which moves it by exactly one ulp of that dtype. So: at most one ulp, rarely.
    s1, s2 = one["step"].float(), two["step"].float()
    ulp = torch.finfo(one["step"].dtype).eps * s1.abs()  # >= one ulp at the value, < two
    assert bool(((s1 - s2).abs() <= ulp).all()), (s1 - s2).abs().max()
    assert float((s1 != s2).float().mean()) <= 0.01
    assert json.loads((runs[2] / "run.json").read_text())["config"]["grad_clip"] == 0.05
