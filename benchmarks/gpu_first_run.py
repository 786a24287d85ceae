"""The first run on a GPU: every answer the kernels owe, within about 3 minutes on an H100.

    PYTHONPATH=. python benchmarks/gpu_first_run.py [--json first_run.json] [--budget 170]
    PYTHONPATH=. python benchmarks/gpu_first_run.py --smoke      # tiny, on the CPU (kernels interpreted)

Sections, in this order; the JSON is rewritten (atomically) after each, so a run cut short still leaves what it
measured, and a section that would start after ``--budget`` seconds is recorded as skipped:

1. ``exactness``: the kernels on the device against the torch reference on the CPU, every state tensor bit for bit
   (codes, steps, counters, moments, accumulators): 2 bits in float32 and bfloat16 state, 3 bits, two-pass; the
   kernel tables are built on the device (the keyed initial rows of lptsim.ctr.kernels.init_rows), so the initial
   table is compared too (``initial_identical``).
2. ``stages``: per-stage times (lookup, backward, update) of one-pass ALPT-2 with the table defaults (bfloat16
   state) at the goal shape (33.76M x 16, batch 8,192 x 39 Zipf ids), and of two-pass ALPT-2; tables built on the
   device by the keyed kernel (``device_table``: the CPU's values, in about a second, not 2.6 minutes).
3. ``host_vs_gpu``: the host's time to issue one step (no synchronisation) against the GPU's own time for it
   (the step issued behind a spin kernel, so that a slow host does not show up as GPU time: ``gpu_ms``).
4. ``cuda_graph``: the whole step captured in a CUDA graph and replayed (it never syncs, so it can be captured); a
   replay must change the table exactly as an eager step does and advance its counter by one.
5. ``profile``: the profiler's table of the step's kernels.
6. ``baselines``, same run: FP32 ``nn.Embedding(sparse=True)`` + SGD, plain-PyTorch ALPT, ``torch.unique`` of the
   batch, and copy bandwidth.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_embedding_step import (  # noqa: E402
    EXACT_CASES,
    alpt_step,
    check_exactness,
    device_table,
    fp32_case,
    plain_alpt_case,
    timed_ms,
    zipf_ids,
)

GOAL = dict(rows=33_760_000, batch=8192, fields=39, dim=16)
SMOKE = dict(rows=300, batch=4, fields=39, dim=16)


def write_json(path: Path | None, data: dict) -> None:
    """Atomically (re)write the results: a temporary file renamed over the old one."""
    if path is None:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def stage_times(emb, opt, ids, up, device: str, repeats: int) -> dict:
    """Median wall ms of the lookup (forward), the backward and the update (TableOptimizer.step) of one step, the
    device synchronised around each (so each includes the host's issue time and one synchronisation)."""
    up2 = up.flip(0)
    times = {"lookup": [], "backward": [], "update": [], "step": []}
    warmup = 2 if device == "cuda" else 1
    for i in range(repeats + warmup):
        _sync(device)
        t0 = time.perf_counter()
        out = emb(ids)
        _sync(device)
        t1 = time.perf_counter()
        (out * up).sum().backward()
        _sync(device)
        t2 = time.perf_counter()
        opt.step((lambda: (emb(ids) * up2).sum()) if emb.config.two_pass else None)
        _sync(device)
        t3 = time.perf_counter()
        if i >= warmup:  # after warm-up (compilation)
            for k, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                times[k].append(dt * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def gpu_ms(fn, repeats: int, issue_ms: float, cuda=torch.cuda) -> dict:
    """The GPU's own time for ``fn`` (median ms of ``repeats`` calls), also when the host is the slower side.

    Events recorded around a call time the span from the GPU reaching the start event to it reaching the end one;
    when the host issues the work more slowly than the GPU runs it, that span is the host's issue time, not the
    GPU's. So each call is issued behind a spin kernel (``cuda._sleep``) of about twice ``issue_ms``: the host
    queues the whole call while the GPU is still spinning, and the events then time the device's work alone.
    ``covered``: the share of calls whose start event had not been reached when the host had issued the call (1.0
    means every timing is the GPU's alone; the spin is made 4x longer and the timing repeated, up to 3 times,
    until it is). ``cuda`` is a parameter only for the tests (a simulated device)."""
    fn()
    cuda.synchronize()
    a, b = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
    probe = 1_000_000
    a.record()
    cuda._sleep(probe)
    b.record()
    cuda.synchronize()
    cycles_per_ms = probe / max(a.elapsed_time(b), 1e-3)
    spin_ms = 2 * issue_ms + 0.5
    for _ in range(4):
        times, covered = [], 0
        for _ in range(repeats):
            start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
            cuda._sleep(int(spin_ms * cycles_per_ms))
            start.record()
            fn()
            end.record()
            covered += not start.query()  # the GPU was still spinning when the host had issued everything
            cuda.synchronize()
            times.append(start.elapsed_time(end))
        if covered == repeats:
            break
        spin_ms *= 4
    return {"gpu_ms": statistics.median(times), "covered": covered / repeats, "spin_ms": spin_ms}


def host_vs_gpu(step, device: str, repeats: int) -> dict:
    """The host's time to issue ``step`` (no synchronisation inside) and the GPU's own time for it (:func:`gpu_ms`;
    wall time on a CPU). ``events_ms``: plain events around each step (the wall time of a step on an idle GPU,
    which is the host's issue time when the host is the slower side)."""
    step()
    _sync(device)
    host = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        step()
        host.append((time.perf_counter() - t) * 1e3)
    _sync(device)
    h = statistics.median(host)
    events = timed_ms(step, repeats, device, warmup=1 if device == "cuda" else 0)
    out = {"host_issue_ms": h, "events_ms": events}
    if device == "cuda":
        out.update(gpu_ms(step, repeats, h))
    else:
        out["gpu_ms"] = events
    out["host_bound"] = h >= out["gpu_ms"]
    return out


def replay_check(table, replay, step, sync) -> dict:
    """Whether one ``replay()`` (the captured step) changes ``table`` exactly as one eager ``step()`` from the same
    state does, every state tensor bit for bit (so the replay reads the current counter and draws new SR bits),
    and by how much it advances the write-back counter (1 per step). The state is restored in place between the
    two (the graph holds the tensors' addresses)."""
    from lptsim.ctr.table.state import state_tensors, tensor_differences

    state = state_tensors(table)
    before = {k: v.clone() for k, v in state.items()}
    replay()
    sync()
    replayed = {k: v.clone() for k, v in state.items()}
    for k, v in state.items():
        v.copy_(before[k])
    step()
    sync()
    differing = tensor_differences(replayed, state)
    advanced = int(replayed["updates"]) - int(before["updates"]) if "updates" in state else None
    return {"replay_identical_to_eager": not any(differing.values()), "replay_differing": differing,
            "updates_advanced_per_replay": advanced}


def graph_replay(step, device: str, repeats: int, table=None) -> dict:
    """Capture one whole step in a CUDA graph; check that a replay equals an eager step (:func:`replay_check`, with
    ``table``) and time the replay against the eager step."""
    if device != "cuda":
        return {"skipped": "needs CUDA"}
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    check = {} if table is None else replay_check(table, graph.replay, step, torch.cuda.synchronize)
    replay = timed_ms(graph.replay, repeats, device, warmup=2)
    eager = timed_ms(step, repeats, device, warmup=1)
    return {"replay_ms": replay, "eager_ms": eager, "speedup": eager / replay, **check}


def profile_table(step, device: str, rows: int = 20) -> dict:
    """The profiler's table of one step's operators and kernels (sorted by device time on a GPU)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    if device == "cuda":  # warm (the CPU smoke run has run the step already)
        step()
    _sync(device)
    with profile(activities=activities) as prof:
        for _ in range(3 if device == "cuda" else 1):
            step()
        _sync(device)
    sort = "cuda_time_total" if device == "cuda" else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=rows)
    print(table)
    return {"sort": sort, "table": table}


def baselines(shape: dict, ids, up, device: str, repeats: int) -> dict:
    """FP32 sparse SGD, plain-PyTorch ALPT, torch.unique of the batch, and copy bandwidth, in this run."""
    out = {}
    for name, fn in (("fp32_sparse_sgd", fp32_case(shape["rows"], shape["dim"], ids, up, False, device)),
                     ("plain_torch_alpt", plain_alpt_case(shape["rows"], shape["dim"], ids, up, device)),
                     ("torch_unique", lambda: torch.unique(ids, return_inverse=True))):
        out[name + "_ms"] = timed_ms(fn, repeats, device, warmup=1)
    buf = torch.empty((256 << 20) if device == "cuda" else (4 << 20), dtype=torch.uint8, device=device)
    ms = timed_ms(lambda: buf.clone(), repeats, device, warmup=1)
    out["copy_bandwidth_bytes_per_s"] = 2 * buf.numel() / (ms * 1e-3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=Path("first_run.json"))
    parser.add_argument("--budget", type=float, default=170.0, help="seconds; later sections are skipped")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; runs on the CPU under the interpreter")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        if not args.smoke:
            print("gpu_first_run: needs a CUDA GPU (or --smoke, a tiny run on the CPU)", file=sys.stderr)
            return 2
        os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernels are first imported
    shape = SMOKE if args.smoke else GOAL
    repeats = 1 if args.smoke else args.repeats
    start = time.perf_counter()
    import triton

    data = {"device": torch.cuda.get_device_name() if device == "cuda" else "CPU (Triton interpreter)",
            "torch": torch.__version__, "triton": triton.__version__, "python": sys.version.split()[0],
            "shape": shape, "sections": {}}
    print(data["device"], "torch", torch.__version__, "triton", triton.__version__)
    write_json(args.json, data)

    gen = torch.Generator().manual_seed(0)
    n = shape["batch"] * shape["fields"]
    ids = zipf_ids(shape["rows"], n, gen, device).view(shape["batch"], shape["fields"])
    up = torch.randn(shape["batch"], shape["fields"], shape["dim"], generator=gen).to(device)
    tables = {}

    def goal_table(variant: str):
        if variant not in tables:
            emb = device_table(shape["rows"], shape["dim"], device, bits=2, method="alpt", alpt_variant=variant)
            from lptsim.ctr.table import TableOptimizer

            tables[variant] = (emb, TableOptimizer(emb))
        return tables[variant]

    def one_pass_step():
        emb, opt = goal_table("one-pass")
        alpt_step(emb, opt, ids, up, None)

    exact_rows, exact_batch = (300, 4) if args.smoke else (100_000, 1024)
    # The smoke run (in the suite) checks that every section runs, at the least cost: two exactness cases, one step.
    cases = [c for c in EXACT_CASES if c[:2] == (2, "bfloat16")] if args.smoke else EXACT_CASES
    variants = ("one-pass",) if args.smoke else ("one-pass", "two-pass")
    budget = float("inf") if args.smoke else args.budget
    sections = [
        ("exactness", lambda: check_exactness(exact_rows, exact_batch, shape["fields"], device, cases,
                                              steps=1 if args.smoke else 3)),
        ("stages", lambda: {v: stage_times(*goal_table(v), ids, up, device, repeats) for v in variants}),
        ("host_vs_gpu", lambda: host_vs_gpu(one_pass_step, device, repeats)),
        ("cuda_graph", lambda: graph_replay(one_pass_step, device, repeats, goal_table("one-pass")[0])),
        ("profile", lambda: profile_table(one_pass_step, device)),
        ("baselines", lambda: baselines(shape, ids, up, device, repeats)),
    ]
    failed = False
    for name, fn in sections:
        elapsed = time.perf_counter() - start
        if elapsed > budget:
            data["sections"][name] = {"skipped": f"over the budget ({elapsed:.0f} s > {budget:.0f} s)"}
        else:
            t = time.perf_counter()
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 (recorded; the other sections still run)
                result, failed = {"error": f"{type(exc).__name__}: {exc}"[:2000]}, True
            data["sections"][name] = {"seconds": time.perf_counter() - t, "result": result}
            print(f"[{name}] {time.perf_counter() - t:.1f} s: "
                  f"{json.dumps(result, default=str)[:400] if name != 'profile' else 'table above'}")
        write_json(args.json, data)
    exact = data["sections"]["exactness"].get("result")
    ok = isinstance(exact, list) and all(e["identical"] for e in exact)
    graph = data["sections"]["cuda_graph"].get("result") or {}
    replay_ok = graph.get("replay_identical_to_eager", True) and graph.get("updates_advanced_per_replay") in (1, None)
    data["total_seconds"] = time.perf_counter() - start
    write_json(args.json, data)
    print(f"total {data['total_seconds']:.1f} s; exactness {'ok' if ok else 'FAILED'}"
          f"{'' if replay_ok else '; CUDA graph replay differs from the eager step'}")
    return 0 if ok and replay_ok and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
