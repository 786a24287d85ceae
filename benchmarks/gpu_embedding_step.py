"""One embedding training step: FP32 baselines, plain-PyTorch ALPT, and lptsim's kernels, like with like.

    PYTHONPATH=. python benchmarks/gpu_embedding_step.py [--rows 33760000] [--batch 8192] [--json out.json]
    PYTHONPATH=. python benchmarks/gpu_embedding_step.py --smoke      # tiny, runs on the CPU (interpreter)

Workload (issues 7/17/27; defaults: the goal shape, 33.76M rows x 16, batch 8,192 x 39): a rows x 16 table built on
the device (``device_table``), batch x 39 Zipf-like ids, a fixed random upstream gradient. Every case
pays the same harness: forward lookup, loss ``(out * upstream).sum()``, backward, the update. Cases: FP32
``nn.Embedding(sparse=True)`` + SGD (the ratio's baseline) and + SparseAdam; plain PyTorch int8 ALPT (one pass:
row-wise Adagrad on the rows, Adam on the per-row steps, SR write-back: the algorithm the kernels run); lptsim
ALPT with the table defaults (bfloat16 state; the same optimizers), one pass at 8, 4, 2 bits and two-pass at 2
bits. Prints one table (method, bits, ms, ratio to FP32 sparse SGD, modelled bytes moved, share of the byte floor
= minimum bytes / copy bandwidth measured in the same run) and the exactness report (kernels against the CPU
torch reference, every state tensor bit for bit: codes, steps, counters, moments, accumulators; 2 and 3 bits,
float32 and bfloat16 state, one- and two-pass), and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch


def timed_ms(fn, repeats: int, device: str, warmup: int = 2) -> float:
    """Median wall time of ``fn`` in ms (CUDA events on a GPU) after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def zipf_ids(rows: int, n: int, gen: torch.Generator, device: str) -> torch.Tensor:
    u = torch.rand(n, generator=gen).to(device)
    return ((rows ** u - 1).long() % rows).clamp_(0, rows - 1)  # log-uniform: heavy head, long tail


EXACT_CASES = (  # (bits, state dtype, ALPT variant): the goal's 2 bits in both state dtypes, odd bits, two-pass
    (2, "float32", "one-pass"), (2, "bfloat16", "one-pass"), (3, "bfloat16", "one-pass"), (2, "bfloat16", "two-pass"),
    (8, "float32", "one-pass"))


def alpt_step(emb, opt, ids, up, up2):
    """One training step through the public API (two-pass ALPT's closure weighs its rows by ``up2``)."""
    (emb(ids) * up).sum().backward()
    opt.step((lambda: (emb(ids) * up2).sum()) if emb.config.two_pass else None)


def check_exactness(rows: int, batch: int, fields: int, device: str, cases=EXACT_CASES, steps: int = 3) -> list[dict]:
    """The kernels on ``device`` against the torch reference on the CPU: after ``steps`` Zipf steps, every state
    tensor (codes, steps, counters, moments, accumulators: ``state_tensors``) must be identical bit for bit."""
    from lptsim.ctr.embedding import LowPrecisionEmbedding
    from lptsim.ctr.table import TableOptimizer
    from lptsim.ctr.table.state import state_differences

    report = []
    for bits, state, variant in cases:
        kw = dict(bits=bits, method="alpt", alpt_variant=variant, init_std=0.02, seed=1, state_dtype=state)
        ref = LowPrecisionEmbedding(rows, 16, backend="torch", **kw)
        ker = device_table(rows, 16, device, **kw)  # on CUDA its initial rows come from the keyed kernel
        assert ker.backend.name == "triton", "the kernels do not serve this configuration"
        initial = state_differences(ref, ker)  # the device's initial table against the CPU's
        opts = {id(ref): TableOptimizer(ref), id(ker): TableOptimizer(ker)}
        gen = torch.Generator().manual_seed(bits)
        for _ in range(steps):
            ids = zipf_ids(rows, batch * fields, gen, "cpu").view(batch, fields)
            up, up2 = (torch.randn(batch, fields, 16, generator=gen) for _ in range(2))
            alpt_step(ref, opts[id(ref)], ids, up, up2)
            alpt_step(ker, opts[id(ker)], ids.to(device), up.to(device), up2.to(device))
        diff = state_differences(ref, ker)
        identical = not any(diff.values())
        report.append(dict(bits=bits, state=state, variant=variant, identical=identical, differing=diff,
                           initial_identical=not any(initial.values()), initial_differing=initial))
        print(f"exactness, {bits} bits, {state}, {variant}: initial table identical: {not any(initial.values())}; "
              f"after {steps} steps every state tensor identical: {identical} "
              f"({', '.join(f'{k} {v}' for k, v in diff.items())})")
    return report


def fp32_case(rows: int, dim: int, ids, up, sparse_adam: bool, device: str):
    emb = torch.nn.Embedding(rows, dim, sparse=True, device=device)  # built there: no 2 GB host table and copy
    opt = (torch.optim.SparseAdam if sparse_adam else torch.optim.SGD)(emb.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        (emb(ids) * up).sum().backward()
        opt.step()
    return step


def plain_alpt_case(rows: int, dim: int, ids, up, device: str):
    """One-pass ALPT in plain PyTorch: int8 codes, per-row steps; Adagrad rows, Adam steps, SR write-back."""
    codes = torch.zeros(rows, dim, dtype=torch.int8, device=device)
    steps = torch.full((rows,), 0.05 / 128, device=device)
    sum_sq = torch.zeros(rows, device=device)
    step_m, step_v = torch.zeros(rows, device=device), torch.zeros(rows, device=device)
    t = torch.zeros((), device=device)
    lr, eps, step_lr, scale = 0.01, 1e-8, 1e-2 * 0.05 / 128, 1 / math.sqrt(dim * 127)

    def step():
        u, inv = torch.unique(ids, return_inverse=True)
        s = steps[u]
        rows_ = (codes[u].float() * s[:, None]).requires_grad_(True)
        (rows_[inv] * up).sum().backward()
        g = rows_.grad
        acc = sum_sq[u] + (g * g).mean(1)
        sum_sq[u] = acc
        w = rows_.detach() - lr * g / (acc.sqrt() + eps)[:, None]
        v = w / s[:, None]
        rnd = torch.floor(v + 0.5).clamp(-128, 127)
        lsq = rnd - v * ((v > -128) & (v < 127))
        gs = (g * lsq).sum(1) * scale
        t.add_(1)
        m = step_m[u] * 0.9 + 0.1 * gs
        vv = step_v[u] * 0.999 + 0.001 * gs * gs
        step_m[u], step_v[u] = m, vv
        new = (s - step_lr * (m / (1 - 0.9 ** t)) / ((vv / (1 - 0.999 ** t)).sqrt() + 1e-12)).clamp_min(1e-8)
        steps[u] = new
        codes[u] = torch.floor(w / new[:, None] + torch.rand_like(w)).clamp_(-128, 127).to(torch.int8)
    return step


def device_table(rows: int, dim: int, device: str, **options):
    """A low-precision table of ``rows`` x ``dim`` (Triton backend) on ``device``, built there: its initial rows by
    the keyed kernel (the CPU's values, without the CPU's 4.6 s per million rows)."""
    from lptsim.ctr.embedding import LowPrecisionEmbedding

    return LowPrecisionEmbedding(rows, dim, backend="triton", device=device if device == "cuda" else None, **options)


def lptsim_case(rows: int, dim: int, bits: int, ids, up, device: str, variant: str = "one-pass",
                state: str | None = None):
    """lptsim ALPT on the kernels with the table defaults (bfloat16 state unless ``state``), ``variant``."""
    from lptsim.ctr.table import TableOptimizer

    extra = {} if state is None else {"state_dtype": state}
    emb = device_table(rows, dim, device, bits=bits, method="alpt", alpt_variant=variant, **extra)
    assert emb.backend.name == "triton", "the kernels do not serve this configuration"
    opt = TableOptimizer(emb)
    up2 = up.flip(0)
    return lambda: alpt_step(emb, opt, ids, up, up2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=33_760_000)  # the goal shape: Criteo's 33.76M rows x 16
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--fields", type=int, default=39)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; runs on the CPU under the interpreter")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.smoke:
        args.rows, args.batch, args.fields, args.repeats = 300, 4, 39, 1
    if device == "cpu":
        if not args.smoke:
            print("gpu_embedding_step: needs a CUDA GPU (or --smoke, a tiny run on the CPU)", file=sys.stderr)
            return 2
        os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernels are first imported
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (Triton interpreter)"
    print(name, "torch", torch.__version__)
    exact_rows, exact_batch = (100_000, 4096) if not args.smoke else (300, 4)
    warmup = 1 if args.smoke else 2
    cases = EXACT_CASES[:4] if args.smoke else EXACT_CASES  # the smoke run: the required four, two steps
    exactness = check_exactness(exact_rows, exact_batch, args.fields, device, cases, steps=2 if args.smoke else 3)

    dim, n = 16, args.batch * args.fields
    gen = torch.Generator().manual_seed(0)
    ids = zipf_ids(args.rows, n, gen, device).view(args.batch, args.fields)
    up = torch.randn(args.batch, args.fields, dim, generator=gen).to(device)
    uniq = torch.unique(ids).numel()
    buf = torch.empty((256 << 20) if device == "cuda" else (16 << 20), dtype=torch.uint8, device=device)
    copy_ms = timed_ms(lambda: buf.clone(), max(args.repeats, 5), device)
    bandwidth = 2 * buf.numel() / (copy_ms * 1e-3)

    ids_b, act_b = n * 8, n * dim * 4 * 2  # ids read; forward output written, upstream gradient read
    cases = [("FP32 nn.Embedding(sparse) + SGD", 32, fp32_case(args.rows, dim, ids, up, False, device),
              ids_b + act_b + uniq * dim * 4 * 3),
             ("FP32 SparseAdam", 32, fp32_case(args.rows, dim, ids, up, True, device),
              ids_b + act_b + uniq * dim * 4 * 7),
             ("plain PyTorch ALPT (one pass)", 8, plain_alpt_case(args.rows, dim, ids, up, device),
              ids_b + act_b + uniq * (dim * 2 + 4 * 8))]
    for bits in (8, 4, 2):  # the table defaults: bfloat16 state (2 bytes a value)
        cases.append(("lptsim ALPT kernels (one pass)", bits, lptsim_case(args.rows, dim, bits, ids, up, device),
                      ids_b + act_b + uniq * (math.ceil(dim * bits / 8) * 2 + 2 * 8)))
    cases.append(("lptsim ALPT kernels (two-pass)", 2, lptsim_case(args.rows, dim, 2, ids, up, device, "two-pass"),
                  ids_b + 2 * act_b + uniq * (math.ceil(dim * 2 / 8) * 2 + 2 * 8)))
    # The floor: ids, activations, and each touched row's int8 codes read + written, its step, Adagrad
    # accumulator and two Adam step moments read + written.
    floor_bytes = ids_b + act_b + uniq * (dim * 2 + 4 * 8)
    floor_ms = floor_bytes / bandwidth * 1e3
    results = []
    for label, bits, fn, nbytes in cases:
        results.append(dict(method=label, bits=bits, ms=timed_ms(fn, args.repeats, device, warmup), bytes=nbytes))
    base = results[0]["ms"]
    print(f"\ntable {args.rows:,} x {dim}, batch {args.batch:,} x {args.fields} ids ({uniq:,} unique); copy "
          f"bandwidth {bandwidth / 1e9:.1f} GB/s; int8 byte floor {floor_ms:.3f} ms\n")
    print(f"{'method':34s} {'bits':>4s} {'ms':>9s} {'vs FP32 SGD':>11s} {'MB moved':>9s} {'floor %':>8s}")
    for r in results:
        r["ratio_to_fp32_sgd"] = r["ms"] / base
        r["floor_share"] = floor_ms / r["ms"]
        print(f"{r['method']:34s} {r['bits']:4d} {r['ms']:9.3f} {r['ratio_to_fp32_sgd']:10.2f}x "
              f"{r['bytes'] / 1e6:9.1f} {100 * r['floor_share']:7.1f}%")
    if args.json:
        args.json.write_text(json.dumps(dict(device=name, torch=torch.__version__, rows=args.rows, batch=args.batch,
                                             fields=args.fields, unique=uniq, bandwidth_bytes_per_s=bandwidth,
                                             floor_ms=floor_ms, exactness=exactness, results=results), indent=1))
    return 0 if all(e["identical"] for e in exactness) else 1


if __name__ == "__main__":
    sys.exit(main())
