"""The lines a run prints before its first step: what it trains, on what data and device, its parameters and table
memory, and where and how often it writes checkpoints."""

from __future__ import annotations

import torch

from lptsim.ctr.protocol import embedding_modules


def banner(trainer) -> str:
    """What is about to run: model and method, data and steps, device, parameters, table memory, checkpoints."""
    cfg, data, mib = trainer.cfg, trainer.data, 2.0 ** 20
    tables = embedding_modules(trainer.model)
    in_tables = {id(p) for t in tables for p in t.parameters()}  # QAT weights count with their table
    dense = sum(p.numel() for p in trainer.model.parameters() if id(p) not in in_tables)
    shapes = " + ".join(f"{int(t.num_embeddings):,} x {int(t.dim)}" for t in tables)
    table = sum(int(t.table_bytes()) for t in tables if hasattr(t, "table_bytes"))
    held = sum(int(t.memory_bytes()) for t in tables if hasattr(t, "memory_bytes"))
    fp32 = sum(int(t.fp32_bytes()) for t in tables if hasattr(t, "fp32_bytes"))
    device = cfg.device
    if device.startswith("cuda"):
        device += f" ({torch.cuda.get_device_name(torch.device(device))})"
    else:
        device += f" ({torch.get_num_threads()} thread{'s' * (torch.get_num_threads() != 1)})"
    world = f" x {trainer.ctx.world} ranks (tables sharded by rows)" if trainer.ctx.world > 1 else ""
    shard = " (rank 0's shard)" if trainer.ctx.world > 1 else ""
    method = "fp (FP32 tables)" if cfg.method == "fp" else f"{cfg.method}, {cfg.bits} bits"
    n = int(data.labels["train"].shape[0])
    steps = trainer.steps_per_epoch()
    smaller = "" if cfg.method == "fp" else \
        f", {fp32 / max(table, 1):.1f}x smaller than FP32's {fp32 / mib:,.2f} MiB"
    lines = [f"{cfg.model} with {method} on {data.root}: {n:,} training rows, {steps:,} step{'s' * (steps != 1)} "
             f"of {cfg.batch_size:,} per epoch, up to {cfg.epochs} epoch{'s' * (cfg.epochs != 1)}; device "
             f"{device}{world}",
             f"parameters: {dense:,} dense, tables {shapes}; table memory {table / mib:,.2f} MiB{smaller}; "
             f"{held / mib:,.2f} MiB with steps and optimizer state{shard}",
             f"checkpoints in {trainer.store.out}: at each epoch's end and {trainer.every.describe()} (Ctrl-C also "
             "writes one)"]
    if trainer.state["epoch"] or trainer.state["step"]:
        lines.append(f"resuming after {trainer.saved_at()}")
    return "\n".join(lines)
