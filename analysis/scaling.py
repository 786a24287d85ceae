"""Communication model of row-wise sharded LPT training (the numbers behind docs/scaling.md).

    python analysis/scaling.py

Per step and per GPU (W GPUs, per-GPU batch B, F fields, dimension D, b-bit codes, P dense
parameters), with all-to-all for the tables and a ring all-reduce for the dense part:
  ids out:          (W-1)/W * B*F*8 bytes
  embeddings back:  (W-1)/W * B*F*payload, payload = 4D (FP32 rows) or D*b/8 + 4 (codes + row step)
  gradients out:    (W-1)/W * B*F*4D (FP32; 2D as bf16)
  dense all-reduce: 2(W-1)/W * 4P
Time = bytes / bandwidth, with NVLink inside an 8-GPU node and InfiniBand across nodes (the
all-to-all crosses nodes for a fraction (W-8)/W of the traffic, and that part sets the pace).
"""

from __future__ import annotations

NVLINK_GBPS = 450.0  # H100 NVLink 4, per direction per GPU
IB_GBPS = 50.0  # 400 Gb/s NDR per GPU


def step_bytes(world: int, batch: int, fields: int, dim: int, bits: int | None, dense_params: int) -> dict:
    f = (world - 1) / world
    payload = 4 * dim if bits is None else dim * bits / 8 + 4
    return {"ids": f * batch * fields * 8, "embeddings": f * batch * fields * payload,
            "gradients": f * batch * fields * 4 * dim, "dense": 2 * f * 4 * dense_params}


def step_ms(world: int, parts: dict) -> float:
    table = parts["ids"] + parts["embeddings"] + parts["gradients"]
    if world <= 8:
        return 1e3 * (table + parts["dense"]) / (NVLINK_GBPS * 1e9)
    off_node = (world - 8) / world
    return 1e3 * (table * off_node / (IB_GBPS * 1e9) + table * (1 - off_node) / (NVLINK_GBPS * 1e9)
                  + parts["dense"] / (IB_GBPS * 1e9))


def main() -> None:
    batch, fields, dense = 8192, 26, 5_000_000
    print(f"per-GPU batch {batch}, {fields} sparse fields, {dense / 1e6:.0f}M dense parameters\n")
    print("| GPUs | dim | payload | ids MB | embeddings MB | gradients MB | dense MB | comm ms/step |")
    print("|---|---|---|---|---|---|---|---|")
    for dim in (16, 128):
        for world in (8, 64, 512):
            for bits, label in ((None, "FP32 rows"), (8, "int8 codes + step"), (4, "4-bit codes + step"),
                                (2, "2-bit codes + step")):
                p = step_bytes(world, batch, fields, dim, bits, dense)
                mb = {k: v / 1e6 for k, v in p.items()}
                print(f"| {world} | {dim} | {label} | {mb['ids']:.1f} | {mb['embeddings']:.1f} | "
                      f"{mb['gradients']:.1f} | {mb['dense']:.1f} | {step_ms(world, p):.2f} |")


if __name__ == "__main__":
    main()
