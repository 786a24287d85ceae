"""End to end: DCN training throughput (samples/s), plain PyTorch FP32 against lptsim's ALPT kernels, same run.

    PYTHONPATH=. python benchmarks/gpu_dcn_train.py [--rows 33760000] [--batch 8192] [--steps 200] [--json out.json]
    PYTHONPATH=. python benchmarks/gpu_dcn_train.py --smoke      # tiny, on the CPU (kernels interpreted)

Workload (issue 17): DCN (3 cross layers, MLP 400-400-400), 39 fields, dim 16, one shared table of --rows rows,
Zipf-like ids and random labels generated up front in pinned host memory; a prefetching loader copies batch
i+1 to the GPU on a side stream (non_blocking) while step i runs. Both runs pay the same loader, model, loss
(BCE with logits) and dense Adam (lr 1e-3); they differ in the table: FP32 ``nn.Embedding(sparse=True)`` with
SparseAdam, or lptsim one-pass ALPT (8/4/2 bits, row-wise Adagrad rows, Adam steps, the table defaults: bfloat16
state; Triton kernels), every table built on the device by the keyed kernel (the CPU initialisation of a
33.76M-row table takes minutes). Throughput is measured over --steps steps after warm-up, with one
synchronisation at the end. Goal (issue 17): >= 2x the FP32 baseline (anchor 2.12M samples/s for FP32 on an
H200). Not yet run on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812

sys.path.insert(0, str(Path(__file__).resolve().parent))

METHODS = ("fp32", "alpt-8", "alpt-4", "alpt-2")


class Prefetcher:
    """Batches from pinned host tensors, copied to ``device`` one step ahead on a side stream."""

    def __init__(self, ids: torch.Tensor, labels: torch.Tensor, batch: int, device: str):
        self.ids, self.labels, self.batch, self.device = ids, labels, batch, device
        self.count = ids.shape[0] // batch
        self.stream = torch.cuda.Stream() if device == "cuda" else None
        self.i = 0
        self.next = self._load(0)

    def _load(self, i: int):
        sl = slice(i * self.batch, (i + 1) * self.batch)
        if self.stream is None:
            return self.ids[sl], self.labels[sl]
        with torch.cuda.stream(self.stream):
            return self.ids[sl].to(self.device, non_blocking=True), self.labels[sl].to(self.device, non_blocking=True)

    def get(self):
        if self.stream is not None:
            torch.cuda.current_stream().wait_stream(self.stream)
        out = self.next
        if self.stream is not None:
            for t in out:
                t.record_stream(torch.cuda.current_stream())
        self.i = (self.i + 1) % self.count
        self.next = self._load(self.i)
        return out


def make_data(rows: int, batch: int, fields: int, batches: int, pin: bool):
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(batches * batch, fields, generator=gen)
    ids = ((rows**u - 1).long() % rows).clamp_(0, rows - 1)
    labels = (torch.rand(batches * batch, generator=gen) < 0.25).float()
    if pin:
        ids, labels = ids.pin_memory(), labels.pin_memory()
    return ids, labels


def run(method: str, args, ids, labels, device: str) -> float:
    """Samples per second of ``method`` ("fp32" or "alpt-<bits>")."""
    from lptsim.ctr.embedding import embedding_factory
    from lptsim.ctr.models import build_model
    from lptsim.ctr.table import TableOptimizer

    fields = ids.shape[1]
    if method == "fp32":
        def factory(n, d, name, row_offset=0):
            emb = torch.nn.Embedding(n, d, sparse=True, device=device)  # built on the device
            torch.nn.init.normal_(emb.weight, std=1e-4)
            return emb
    else:  # the table defaults (bfloat16 state), one-pass ALPT; built on the device (the keyed kernel on CUDA)
        tables = embedding_factory("alpt", bits=int(method.split("-")[1]), alpt_variant="one-pass", backend="triton")

        def factory(n, d, name, row_offset=0):
            return tables(n, d, name, row_offset, device=device if device == "cuda" else None)
    model = build_model("dcn", args.rows, fields, dim=16, embedding=factory).to(device)
    table_opt = TableOptimizer(model)
    assert all(t.backend.name == "triton" for t in table_opt.tables), "the kernels do not serve this configuration"
    sparse = [p for n, p in model.named_parameters() if n.startswith("embedding.")] if method == "fp32" else []
    dense = [p for p in model.parameters() if all(p is not q for q in sparse)]
    opts = [torch.optim.Adam(dense, lr=1e-3)] + ([torch.optim.SparseAdam(sparse, lr=1e-3)] if sparse else [])
    loader = Prefetcher(ids, labels, args.batch, device)

    def step():
        x, y = loader.get()
        for o in opts:
            o.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(model(x), y).backward()
        for o in opts:
            o.step()
        table_opt.step()

    for _ in range(args.warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return args.steps * args.batch / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=33_760_000)  # the goal shape
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--fields", type=int, default=39)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; runs on the CPU under the interpreter")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.smoke:
        args.rows, args.batch, args.steps, args.warmup = 500, 8, 1, 1
    if device == "cpu":
        if not args.smoke:
            print("gpu_dcn_train: needs a CUDA GPU (or --smoke, a tiny run on the CPU)", file=sys.stderr)
            return 2
        os.environ.setdefault("TRITON_INTERPRET", "1")
    ids, labels = make_data(args.rows, args.batch, args.fields, 8, pin=device == "cuda")
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (Triton interpreter)"
    print(name, "torch", torch.__version__)
    results = [dict(method=m, samples_per_s=run(m, args, ids, labels, device)) for m in METHODS]
    base = results[0]["samples_per_s"]
    print(f"\nDCN, {args.rows:,}-row table x 16, batch {args.batch:,} x {args.fields}, {args.steps} steps\n")
    print(f"{'table':10s} {'samples/s':>12s} {'vs FP32':>8s}")
    for r in results:
        r["ratio_to_fp32"] = r["samples_per_s"] / base
        print(f"{r['method']:10s} {r['samples_per_s']:12,.0f} {r['ratio_to_fp32']:7.2f}x")
    if args.json:
        args.json.write_text(json.dumps(dict(device=name, rows=args.rows, batch=args.batch, fields=args.fields,
                                             steps=args.steps, results=results), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
