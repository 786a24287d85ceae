"""One embedding training step on a GPU: FP32 baselines, plain-PyTorch int8 ALPT, and lptsim's kernels.

Run on a CUDA machine: PYTHONPATH=. python benchmarks/gpu_embedding_step.py [--rows 20000000] [--batch 131072]
Workload (issue 7): a rows x 16 table, batch x 39 Zipf-distributed ids, random upstream gradient;
median of --repeats timed steps with CUDA events. Prints ms per step, bytes moved and the share
of the byte floor (minimum bytes / copy bandwidth measured in the same run). It first checks the
kernels against the torch reference (codes bit for bit) at a smaller size.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from lptsim.ctr.embedding import LowPrecisionEmbedding


def cuda_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def zipf_ids(rows: int, n: int, gen: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, device="cuda", generator=gen)
    return ((rows ** u - 1).long() % rows).clamp_(0, rows - 1)  # log-uniform: heavy head, long tail


def check_exactness() -> None:
    for bits in (2, 4, 8):
        kw = dict(bits=bits, method="alpt", alpt_variant="one-pass", init_std=0.02, seed=1)
        ref = LowPrecisionEmbedding(100_000, 16, backend="torch", **kw).cuda()
        ker = LowPrecisionEmbedding(100_000, 16, backend="triton", **kw).cuda()
        gen = torch.Generator(device="cuda").manual_seed(bits)
        for _ in range(3):
            ids = zipf_ids(100_000, 4096 * 39, gen).view(4096, 39)
            up = torch.randn(4096, 39, 16, device="cuda", generator=gen)
            for emb in (ref, ker):
                (emb(ids) * up).sum().backward()
                emb.apply_update()
        same = torch.equal(ref.codes.data, ker.codes.data)
        rel = ((ker.step - ref.step).abs() / ref.step).max().item()
        print(f"exactness, {bits} bits: codes identical: {same}; max relative step difference {rel:.2e}")
        assert same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--batch", type=int, default=131_072)
    parser.add_argument("--fields", type=int, default=39)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    check_exactness()
    dim, n = 16, args.batch * args.fields
    gen = torch.Generator(device="cuda").manual_seed(0)
    ids = zipf_ids(args.rows, n, gen).view(args.batch, args.fields)
    up = torch.randn(args.batch, args.fields, dim, device="cuda", generator=gen)
    uniq = torch.unique(ids).numel()
    buf = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    copy_ms = cuda_ms(lambda: buf.clone(), args.repeats)
    bandwidth = 2 * buf.numel() / (copy_ms * 1e-3)
    rows = []

    def fp32(sparse_adam: bool):
        emb = torch.nn.Embedding(args.rows, dim, sparse=True).cuda()
        opt = (torch.optim.SparseAdam if sparse_adam else torch.optim.SGD)(emb.parameters(), lr=1e-3)

        def step():
            opt.zero_grad()
            (emb(ids) * up).sum().backward()
            opt.step()
        return step

    def plain_int8_alpt():
        codes = torch.zeros(args.rows, dim, dtype=torch.int8, device="cuda")
        steps = torch.full((args.rows,), 1e-3, device="cuda")

        def step():
            u, inv = torch.unique(ids, return_inverse=True)
            g = torch.zeros(u.numel(), dim, device="cuda").index_add_(0, inv.view(-1), up.view(-1, dim))
            w = codes[u].float() * steps[u, None] - 1e-3 * g
            codes[u] = torch.floor(w / steps[u, None] + torch.rand_like(w)).clamp_(-128, 127).to(torch.int8)
        return step

    def ours(bits: int):
        emb = LowPrecisionEmbedding(args.rows, dim, bits=bits, method="alpt", alpt_variant="one-pass",
                                    backend="triton").cuda()

        def step():
            (emb(ids) * up).sum().backward()
            emb.apply_update()
        return step

    ids_bytes = n * 8
    cases = [("FP32 nn.Embedding(sparse) + SGD", fp32(False), ids_bytes + uniq * dim * 4 * 3 + n * dim * 4 * 2),
             ("FP32 SparseAdam", fp32(True), ids_bytes + uniq * dim * 4 * 7 + n * dim * 4 * 2),
             ("plain PyTorch int8 ALPT", plain_int8_alpt(), ids_bytes + uniq * (dim * 2 + 8) + n * dim * 4 * 2)]
    for bits in (8, 4, 2):
        cases.append((f"lptsim ALPT kernels, {bits} bits", ours(bits),
                      ids_bytes + uniq * (dim * bits // 8 * 2 + 4 * 4) + n * dim * 4 * 2))
    floor_bytes = ids_bytes + uniq * (dim * 2 + 8) + n * dim * 4 * 2  # int8: read+write rows, steps; fwd out, grad in
    for name, fn, nbytes in cases:
        ms = cuda_ms(fn, args.repeats)
        rows.append((name, ms, nbytes))
    floor_ms = floor_bytes / bandwidth * 1e3
    print(f"\ntable {args.rows:,} x {dim}, batch {args.batch:,} x {args.fields} ids ({uniq:,} unique); copy "
          f"bandwidth {bandwidth / 1e12:.2f} TB/s; int8 byte floor {floor_ms:.3f} ms\n")
    print(f"{'step':36s} {'ms':>8s} {'MB moved':>9s} {'floor %':>8s}")
    for name, ms, nbytes in rows:
        print(f"{name:36s} {ms:8.3f} {nbytes / 1e6:9.1f} {100 * floor_ms / ms:7.1f}%")


if __name__ == "__main__":
    main()
