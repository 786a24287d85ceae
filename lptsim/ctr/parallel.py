"""How a training run is spread over processes: one process (``Local``) or torch.distributed (``Distributed``).

The trainer talks to one of these for everything that differs between the two: which rows of a
batch this process reads, wrapping the model (DDP for the dense part), gathering predictions for
the metrics, and checkpoints (one file, or one shard per rank that reshards on load).

Distributed layout (the scheme TorchRec uses for row-wise sharded tables): every low-precision
table is split by rows, rank r owning rows [r*ceil(n/W), (r+1)*ceil(n/W)); ids travel to their
owners and embeddings (and, backwards, gradients) come back with all-to-all. SR draws and initial
values are keyed by global row, and each table's seed by its name (lptsim.ctr.embedding.TableFactory), so
results do not depend on the number of ranks, nor on whether the run is distributed at all.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from lptsim.atomic import write_json_atomic
from lptsim.ctr import checkpoint
from lptsim.ctr.embedding import TableFactory
from lptsim.ctr.table.state import migrate_table_state


class Local:
    """A single process: the whole batch, the whole table, one checkpoint file."""

    rank, world = 0, 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def embedding(self, factory):
        return factory

    def wrap(self, model: nn.Module) -> nn.Module:
        return model

    def unwrap(self, model: nn.Module) -> nn.Module:
        return getattr(model, "module", model)

    def batches(self, data, split: str, batch_size: int, shuffle: bool = False, seed: int = 0,
                epoch: int = 0, skip: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """(ids, labels, size of the global batch) for this process's part of each global batch (from batch
        ``skip`` on)."""
        for ids, y in data.batches(split, batch_size, shuffle=shuffle, seed=seed, epoch=epoch, skip=skip):
            n = y.numel()
            lo, hi = self.rank * n // self.world, (self.rank + 1) * n // self.world
            yield ids[lo:hi], y[lo:hi], n

    def gather(self, *arrays: np.ndarray) -> list[np.ndarray]:
        return list(arrays)

    def sum(self, *values: float) -> list[float]:
        return list(values)

    def barrier(self) -> None:
        pass

    def any(self, flag: bool) -> bool:
        """True when ``flag`` is true on any rank (every rank takes the same decision)."""
        return flag

    # Checkpoints: out/<name>.pt, the one it replaced kept as out/<name>.prev.pt (lptsim.ctr.checkpoint).
    def exists(self, out: Path, name: str) -> bool:
        path = out / f"{name}.pt"
        return path.exists() or checkpoint.previous_path(path).exists()

    def describe(self, out: Path, name: str) -> str:
        """The file a user would look for."""
        return str(out / f"{name}.pt")

    def save(self, out: Path, name: str, model: nn.Module, extra: dict) -> None:
        checkpoint.save({"model": self.unwrap(model).state_dict(), **extra}, out / f"{name}.pt")

    def load(self, out: Path, name: str, model: nn.Module, device: str, accept: Accept | None = None,
             apply: bool = True) -> tuple[dict, str | None]:
        """Load ``name`` (or, if unusable, the one before it) into ``model``; return (payload without the model
        state, why the newest file was skipped or None). ``accept(payload)`` may reject a file with a reason;
        ``apply=False`` only checks. Raises CheckpointError naming every file tried."""
        path = out / f"{name}.pt"
        errors = []
        for candidate in (path, checkpoint.previous_path(path)):
            if candidate != path and not candidate.exists():
                break
            try:
                payload = checkpoint.load(candidate, device)
                why = accept(payload) if accept else None
                if why:
                    raise checkpoint.CheckpointError(f"{candidate}: {why}")
                if apply:
                    _load_state(self.unwrap(model), payload["model"], candidate)
            except checkpoint.CheckpointError as exc:
                errors.append(str(exc))
                continue
            payload.pop("model")
            return payload, "; ".join(errors) or None
        raise checkpoint.CheckpointError("; ".join(errors))


Accept = Callable[[dict], "str | None"]


def _load_state(module: nn.Module, state: dict, path: Path, strict: bool = True) -> None:
    """``load_state_dict`` with a one-line CheckpointError naming the file when the shapes or names differ."""
    try:
        module.load_state_dict(state, strict=strict)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip() and "Error(s)" not in ln), str(exc))
        raise checkpoint.CheckpointError(f"{path}: does not fit this model ({first[:200]})") from None


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; gradient times ``scale`` (averages the table's gradients over ranks, as DDP does)."""

    @staticmethod
    def forward(ctx, x, scale):  # noqa: D102
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return grad * ctx.scale, None


class _AllToAll(torch.autograd.Function):
    """``dist.all_to_all_single`` of rows (first dimension split by ``out_sizes`` / ``in_sizes``) with its
    backward: the gradients travel the reverse way (what torch.distributed.nn's deprecated version did)."""

    @staticmethod
    def forward(ctx, x, out_sizes: list[int], in_sizes: list[int]):  # noqa: D102
        ctx.sizes = out_sizes, in_sizes
        out = x.new_empty((sum(out_sizes), *x.shape[1:]))
        dist.all_to_all_single(out, x.contiguous(), out_sizes, in_sizes)
        return out

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        out_sizes, in_sizes = ctx.sizes
        back = grad.new_empty((sum(in_sizes), *grad.shape[1:]))
        dist.all_to_all_single(back, grad.contiguous(), in_sizes, out_sizes)
        return back, None, None


def all_to_all_rows(x: torch.Tensor, out_sizes: list[int], in_sizes: list[int]) -> torch.Tensor:
    """Send ``x``'s rows to the ranks (``in_sizes[r]`` rows to rank r, in order) and receive ``out_sizes[r]``
    rows from each; differentiable."""
    return _AllToAll.apply(x, out_sizes, in_sizes)


class ShardedEmbedding(nn.Module):
    """A row-wise shard of an embedding table, looked up for all ranks through all-to-all."""

    def __init__(self, num_embeddings: int, dim: int, rank: int, world: int, make_local):
        super().__init__()
        if num_embeddings < world:
            raise ValueError(f"a table of {num_embeddings} rows cannot be sharded over {world} ranks")
        self.num_embeddings, self.dim, self.rank, self.world = num_embeddings, dim, rank, world
        self.per = -(-num_embeddings // world)
        self.start = min(rank * self.per, num_embeddings)
        self.count = max(min(self.per, num_embeddings - self.start), 1)
        self.local = make_local(self.count, dim, self.start)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        flat = ids.reshape(-1)
        if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= self.num_embeddings):
            bad = int(flat.min()) if int(flat.min()) < 0 else int(flat.max())
            raise IndexError(f"embedding id {bad} is outside [0, {self.num_embeddings})")
        owner = torch.div(flat, self.per, rounding_mode="floor")
        order = torch.argsort(owner, stable=True)
        send_ids = flat[order] - owner[order] * self.per
        send = torch.bincount(owner, minlength=self.world)
        recv = torch.empty_like(send)
        dist.all_to_all_single(recv, send)
        send_sizes, recv_sizes = send.tolist(), recv.tolist()
        recv_ids = torch.empty(sum(recv_sizes), dtype=flat.dtype, device=flat.device)
        dist.all_to_all_single(recv_ids, send_ids, recv_sizes, send_sizes)
        rows = self.local(recv_ids)
        if torch.is_grad_enabled():
            rows = _ScaleGrad.apply(rows, 1.0 / self.world)
        back = all_to_all_rows(rows, send_sizes, recv_sizes)
        return back[torch.argsort(order)].view(*ids.shape, self.dim)

    def memory_bytes(self) -> int:
        return self.local.memory_bytes()

    def table_bytes(self) -> int:
        return self.local.table_bytes()

    def fp32_bytes(self) -> int:
        return self.local.fp32_bytes()


def _row_buffers(table: nn.Module) -> dict[str, torch.Tensor]:
    """The table's per-row state (first dimension = its rows); the rest is per-table."""
    return {k: v for k, v in table.state_dict().items() if v.dim() >= 1 and v.shape[0] == table.num_embeddings}


class Distributed(Local):
    """torch.distributed (torchrun's environment): gloo on CPUs, NCCL on GPUs."""

    def __init__(self, timeout_s: int = 120):
        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
        self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def embedding(self, factory: TableFactory):
        config = factory.config  # a learned step shared across shards would drift apart on each of them
        if config.learns_steps and config.step_granularity != "row":
            raise ValueError("distributed training shards the table by rows: ALPT needs step_granularity='row' "
                             f"there, got {config.step_granularity!r}")
        if config.every_row_decay > 0:  # a shard no id reaches in a step would miss that update's decay
            raise ValueError("table_decay='every-row' runs in one process only; distributed runs decay the touched "
                             "rows (table_decay='touched')")
        return lambda n, d, name: ShardedEmbedding(
            n, d, self.rank, self.world, lambda rows, dim, start: factory(rows, dim, name, row_offset=start))

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP over the dense part. The tables' shards are rank-local: DDP must neither broadcast them from rank 0
        nor average their gradients, so it is told to leave them alone (the way row-wise sharding libraries do),
        and other buffers (BatchNorm statistics) are not synced in the forward pass."""
        ddp = nn.parallel.DistributedDataParallel
        ignore = [f"{name}.{key}" for name, m in model.named_modules() if isinstance(m, ShardedEmbedding)
                  for key, _ in [*m.named_parameters(), *m.named_buffers()]]
        ddp._set_params_and_buffers_to_ignore_for_model(model, ignore)
        if "forward_sync_buffers" in inspect.signature(ddp).parameters:  # torch >= 2.13 (broadcast_buffers deprecated)
            return ddp(model, forward_sync_buffers=False)
        return ddp(model, broadcast_buffers=False)

    def gather(self, *arrays: np.ndarray) -> list[np.ndarray]:
        parts: list = [None] * self.world
        dist.all_gather_object(parts, arrays)
        return [np.concatenate([p[i] for p in parts]) for i in range(len(arrays))]

    def sum(self, *values: float) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device="cuda" if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        dist.barrier()

    def any(self, flag: bool) -> bool:
        return not self._agree(not flag)

    def _agree(self, ok: bool) -> bool:
        """True when ``ok`` on every rank."""
        flag = torch.tensor([1 if ok else 0], device="cuda" if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    # Sharded checkpoints: out/<name>.json names a folder <name>.d-XXXXXXXX beside it holding dense.pt and one
    # shard per rank, and the folder saved before it ("previous"), kept until the next save.
    def exists(self, out: Path, name: str) -> bool:
        return (out / f"{name}.json").exists()

    def describe(self, out: Path, name: str) -> str:
        return str(out / f"{name}.json")

    def _entries(self, out: Path, name: str) -> list[tuple[Path, int]]:
        """(folder, world size) named by the pointer, newest first; each checked to be a folder of this run."""
        pointer = out / f"{name}.json"
        try:
            record = json.loads(pointer.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise checkpoint.CheckpointError(f"{pointer}: damaged ({exc})") from None
        entries = [record, record.get("previous")] if isinstance(record, dict) else [record]
        found = []
        for e in entries:
            if e is None:
                continue
            ok = (isinstance(e, dict) and isinstance(e.get("folder"), str) and isinstance(e.get("world"), int)
                  and re.fullmatch(rf"{re.escape(name)}\.d-[0-9a-f]{{8}}", e["folder"]) and 1 <= e["world"] <= 1 << 16)
            if not ok:
                raise checkpoint.CheckpointError(f"{pointer}: should name a folder {name}.d-XXXXXXXX beside it and a "
                                                 f"world size, found {str(e)[:120]}")
            found.append((out / e["folder"], e["world"]))
        return found

    def save(self, out: Path, name: str, model: nn.Module, extra: dict) -> None:
        base = self.unwrap(model)
        sharded = {n for n, m in base.named_modules() if isinstance(m, ShardedEmbedding)}
        token = [uuid.uuid4().hex[:8] if self.main else None]
        dist.broadcast_object_list(token)
        folder = out / f"{name}.d-{token[0]}"
        folder.mkdir(parents=True, exist_ok=True)
        shards = {n: {"start": m.start, "count": m.count, "state": m.local.state_dict()}
                  for n, m in base.named_modules() if isinstance(m, ShardedEmbedding)}
        checkpoint.save(shards, folder / f"shard-{self.rank}-of-{self.world}.pt")
        if self.main:
            dense = {k: v for k, v in base.state_dict().items() if not any(k.startswith(s + ".") for s in sharded)}
            checkpoint.save({"model": dense, **extra}, folder / "dense.pt")
        self.barrier()  # every shard is on disk (and verified) before the pointer moves
        if self.main:
            entries = self._entries(out, name)
            previous = {"folder": entries[0][0].name, "world": entries[0][1]} if entries else None
            write_json_atomic(out / f"{name}.json", {"folder": folder.name, "world": self.world,
                                                     "previous": previous})
            keep = {folder.name, previous["folder"] if previous else None}
            for old in out.glob(f"{name}.d-*"):  # older folders, and any left by an interrupted save
                if old.name not in keep and re.fullmatch(rf"{re.escape(name)}\.d-[0-9a-f]{{8}}", old.name):
                    shutil.rmtree(old, ignore_errors=True)
        self.barrier()

    def load(self, out: Path, name: str, model: nn.Module, device: str, accept: Accept | None = None,
             apply: bool = True) -> tuple[dict, str | None]:
        """Load (resharding the tables when the number of ranks changed); fall back to the previous folder
        when a file of the newest is unusable. Every rank takes the same decision."""
        errors = []
        for folder, old_world in self._entries(out, name):
            try:
                payload = checkpoint.load(folder / "dense.pt", device)
                why = accept(payload) if accept else None
                if why:
                    raise checkpoint.CheckpointError(f"{folder}: {why}")
                shards = [checkpoint.load(folder / f"shard-{r}-of-{old_world}.pt", device) for r in range(old_world)]
                ok = True
            except checkpoint.CheckpointError as exc:
                errors.append(str(exc))
                ok = False
            if not self._agree(ok):
                if ok:
                    errors.append(f"{folder}: unusable on another rank")
                continue
            if apply:
                self._apply(model, payload.pop("model"), shards, folder)
            payload.pop("model", None)
            return payload, "; ".join(errors) or None
        raise checkpoint.CheckpointError("; ".join(errors) or f"{out / f'{name}.json'}: not found")

    def _apply(self, model: nn.Module, dense: dict, shards: list[dict], folder: Path) -> None:
        base = self.unwrap(model)
        _load_state(base, dense, folder / "dense.pt", strict=False)
        try:
            for module_name, m in base.named_modules():
                if not isinstance(m, ShardedEmbedding):
                    continue
                state = m.local.state_dict()
                per_row = _row_buffers(m.local)
                for shard in shards:
                    s = shard[module_name]
                    migrate_table_state(s["state"])  # a shard saved by lptsim 0.1.0: this release's names
                    lo, hi = max(s["start"], m.start), min(s["start"] + s["count"], m.start + m.count)
                    for key, value in s["state"].items():
                        if key in per_row and hi > lo:
                            state[key][lo - m.start: hi - m.start] = value[lo - s["start"]: hi - s["start"]]
                        elif key not in per_row:
                            state[key] = value  # per-table state (step counters, a per-table step)
                _load_state(m.local, state, folder)
        except (KeyError, TypeError, RuntimeError, IndexError) as exc:
            raise checkpoint.CheckpointError(f"{folder}: its shards do not fit this model ({exc})") from None


def context(distributed: bool) -> Local:
    """``Distributed()`` under torchrun (or when asked), else ``Local()``."""
    if distributed:
        if "RANK" not in os.environ:
            raise ValueError("--distributed needs torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR); "
                             "launch with `torchrun --nproc-per-node N -m lptsim ctr train ... --distributed`")
        return Distributed()
    return Local()
