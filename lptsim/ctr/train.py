"""The trainer: a plain loop with small hooks (``fit -> train_epoch -> train_step``, ``checkpoint_and_earlystop``).

Dense layers train with Adam; the low-precision tables with one :class:`~lptsim.ctr.table.TableOptimizer` (whose
``step(closure)`` runs ALPT's passes); the learning-rate schedule (step, reduce-on-plateau, none) drives both.
Early stopping on validation AUC; the run folder, its checkpoints and logs belong to the run store
(:mod:`lptsim.ctr.runstore`). ``resume=True`` checks ``run.json`` against the options before any tensor is read,
then continues from the checkpoint (or, if damaged, the one before); on the CPU the result equals an
uninterrupted run (data order depends only on (seed, epoch); the torch RNG state is checkpointed), also from a
checkpoint written inside an epoch (every few minutes of training, ``CheckpointEvery``, and at Ctrl-C).

Training stops with :class:`TrainingError` when the loss is not finite or explodes (the mean of the last batches
exceeds ``DIVERGENCE_FACTOR`` times the log loss of a constant predictor).

Protocol options (peers' settings; see lptsim.ctr.protocol and lptsim.ctr.presets): dense initialisation,
embedding L2 on the touched rows, weight decay (dense Adam's coupled decay; for the tables the same ``wd * w`` on
the touched rows' gradient), gradient-norm clipping over the dense gradients and the touched rows' gradients
together, step or reduce-on-plateau learning rate (on the dense and the table optimizer alike, so the tables'
learning rates keep their ratio to the dense one), shuffling, BatchNorm, and a BatchNorm-statistics refresh.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import deque
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from tqdm.auto import tqdm

from lptsim.ctr.banner import banner
from lptsim.ctr.data.dataset import PreparedData, check_splits
from lptsim.ctr.embedding import TableFactory
from lptsim.ctr.evaluation import TrainingError, auc_logloss, evaluate
from lptsim.ctr.interrupts import CheckpointEvery, TrainingInterrupted, ctrl_c_stops_at_a_step
from lptsim.ctr.models import build_model, init_dense
from lptsim.ctr.parallel import Local
from lptsim.ctr.protocol import (
    TouchedRowsL2,
    clip_gradients,
    counter_schedule,
    embedding_modules,
    make_scheduler,
    plain_schedule,
    refresh_batch_norm,
)
from lptsim.ctr.runstore import LEGACY, RunStore, RunWarning, checkpoint_release, data_fingerprint
from lptsim.ctr.table import TableOptimizer
from lptsim.ctr.table.optim import rng_state, set_rng_state
from lptsim.ctr.trainconfig import LR_SCHEDULES, TrainConfig, check_device

DIVERGENCE_FACTOR = 10.0  # stop when the recent loss is this many times a constant predictor's
DIVERGENCE_WINDOW = 20  # batches averaged for that test
MIN_EPOCH_STEPS = 20  # fewer optimizer steps per epoch than this: warn (a batch too large for the data)

__all__ = ["DIVERGENCE_FACTOR", "LEGACY", "LR_SCHEDULES", "CheckpointEvery", "RunWarning", "TrainConfig", "Trainer",
           "TrainingError", "TrainingInterrupted",
           "auc_logloss", "batch_loss", "check_device", "data_fingerprint", "evaluate", "make_model", "train"]


def make_model(cfg: TrainConfig, data: PreparedData, ctx: Local | None = None) -> nn.Module:
    """The model with the configured tables (each seeded from the run seed and its name; sharded by ``ctx`` when
    distributed)."""
    table = cfg.table_config()
    if table.step_granularity == "field" and table.field_starts is None:  # steps shared by a field's rows
        table = table.replace(field_starts=tuple(data.feature_map["offsets"])[: data.num_fields])
    model = build_model(cfg.model, data.num_embeddings, data.num_fields, dim=cfg.dim,
                        embedding=(ctx or Local()).embedding(TableFactory(table)), hidden=cfg.hidden,
                        dropout=cfg.dropout, batch_norm=cfg.batch_norm, cross_layers=cfg.cross_layers)
    init_dense(model, cfg.dense_init)
    return model


def dense_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters trained by the dense Adam (low-precision tables hold buffers, updated by the TableOptimizer)."""
    return [p for p in model.parameters() if p.requires_grad]


def parameter_groups(model: nn.Module, weight_decay: float, every_row: bool = False) -> list[dict]:
    """Adam's groups: dense layers with ``weight_decay``; parameters inside tables (QAT weights, whose decay
    is the touched-row term, and their steps) without; with ``every_row`` (``table_decay="every-row"``) the QAT
    weights join the decayed group, so the dense Adam decays every row at every step."""
    in_tables = {id(p) for t in embedding_modules(model) for p in t.parameters()}
    decayed = {id(t.weight) for t in embedding_modules(model) if every_row and getattr(t.config, "qat", False)}
    params = dense_parameters(model)
    dense = [p for p in params if id(p) not in in_tables or id(p) in decayed]
    tables = [p for p in params if id(p) in in_tables and id(p) not in decayed]
    return [g for g in ({"params": dense, "weight_decay": weight_decay}, {"params": tables, "weight_decay": 0.0})
            if g["params"]]


def batch_loss(logits: torch.Tensor, y: torch.Tensor, world: int, global_n: int) -> torch.Tensor:
    """This rank's share of the global batch's mean log loss (DDP's averaging then gives the mean)."""
    return F.binary_cross_entropy_with_logits(logits, y, reduction="sum") * (world / global_n)


def clip_touched(model: nn.Module, table_opt: TableOptimizer, max_norm: float, ctx: Local) -> None:
    """Clip the dense gradients (the same on every rank after DDP) and the touched rows' gradients (this rank's
    shard; their squared norms summed over ranks) to one joint norm."""
    dense = [p.grad for p in dense_parameters(model) if p.grad is not None]
    rows = [r.grad for r in table_opt.touched_rows() if r.grad is not None]
    extra = 0.0
    if ctx.world > 1:
        local = sum(float(g.double().pow(2).sum()) for g in rows)
        (everyone,) = ctx.sum(local)
        extra = everyone - local
    clip_gradients([*dense, *rows], max_norm, total_sq_extra=extra)


class Trainer:
    """One run: the model, its two optimizers and schedules, and the loop (FuxiCTR's shape: ``fit`` ->
    ``train_epoch`` -> ``train_step``, then ``checkpoint_and_earlystop`` after each epoch)."""

    def __init__(self, data: PreparedData, cfg: TrainConfig, store: RunStore, ctx: Local, progress: bool = True,
                 echo: bool = True, checkpoint_every: CheckpointEvery | None = None):
        self.data, self.cfg, self.store, self.ctx = data, cfg, store, ctx
        self.every = checkpoint_every or CheckpointEvery()
        self.stop_requested = False
        self.progress, self.echo = progress and ctx.main, echo and ctx.main
        self.reference = check_splits(data)
        if ctx.main:
            warn_few_steps(int(data.labels["train"].shape[0]), cfg.batch_size)
        torch.manual_seed(cfg.seed)
        self.model = make_model(cfg, data, ctx).to(cfg.device)
        self.wrapped = ctx.wrap(self.model)
        self.dense_opt = torch.optim.Adam(parameter_groups(self.model, cfg.weight_decay,
                                                           cfg.table_decay == "every-row"), lr=cfg.lr)
        self.table_opt = TableOptimizer(self.model)
        self.schedules = [make_scheduler(cfg.lr_schedule, opt, cfg.lr_milestones, cfg.lr_gamma, cfg.plateau_patience,
                                         [cfg.min_lr * g["lr"] / cfg.lr for g in opt.param_groups])
                          for opt in (self.dense_opt, self.table_opt)]  # the tables keep their ratio to the dense lr
        touched_decay = cfg.weight_decay if cfg.table_decay == "touched" else 0.0  # every-row: the tables do it
        self.l2 = TouchedRowsL2(embedding_modules(self.model), cfg.embedding_l2 + touched_decay)
        # epoch: finished epochs; step and partial: the batches done in the next one and their sums (a checkpoint
        # written inside an epoch); recent: the divergence test's window
        self.state = {"epoch": 0, "history": [], "best_auc": -math.inf, "best_epoch": 0, "bad_epochs": 0,
                      "train_seconds": 0.0, "samples": 0, "step": 0, "partial": [0.0, 0, 0.0], "recent": []}
        self.recent: deque[float] = deque(maxlen=DIVERGENCE_WINDOW)
        self.where = ""

    # -- the loop ---------------------------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train until ``epochs`` or early stopping; return the final metrics (best weights on the test split)."""
        if self.echo:
            print(banner(self), flush=True)
        stop = self.state["bad_epochs"] >= self.cfg.patience
        with ctrl_c_stops_at_a_step(self.request_stop):
            while self.state["epoch"] < self.cfg.epochs and not stop:
                epoch = self.state["epoch"] + 1
                stop = self.checkpoint_and_earlystop(epoch, *self.train_epoch(epoch))
        return self.finish()

    def request_stop(self) -> bool:
        """Ask training to stop after the current step (Ctrl-C); False when it was asked already."""
        first, self.stop_requested = not self.stop_requested, True
        return first

    def steps_per_epoch(self) -> int:
        return -(-int(self.data.labels["train"].shape[0]) // self.cfg.batch_size)

    def train_epoch(self, epoch: int) -> tuple[float, int, float]:
        """One pass over the training split (from the step a mid-epoch checkpoint reached); returns (mean train log
        loss, rows, seconds) over all ranks. Writes a checkpoint when one is due, and at Ctrl-C."""
        cfg, ctx, state = self.cfg, self.ctx, self.state
        self.wrapped.train()
        first = state["step"]
        total, count, before = state["partial"]
        start = last_save = time.perf_counter()
        rows = self.data.labels["train"].shape[0]
        bar = tqdm(total=rows, initial=min(first * cfg.batch_size, rows), desc=f"epoch {epoch}/{cfg.epochs}",
                   unit="rows", disable=not self.progress, leave=False)
        try:
            for step, (ids, y, n) in enumerate(ctx.batches(self.data, "train", cfg.batch_size, shuffle=cfg.shuffle,
                                                           seed=cfg.seed, epoch=epoch, skip=first), start=first):
                self.where = f"epoch {epoch}, step {step}"
                total += self.train_step(ids.to(cfg.device), y.to(cfg.device), n) * n / ctx.world
                count += y.numel()
                bar.update(n)
                bar.set_postfix(loss=f"{total / max(count, 1):.4f}")
                now = time.perf_counter()
                due = (self.every.steps is not None and (step + 1) % self.every.steps == 0) or \
                    (self.every.seconds is not None and now - last_save >= self.every.seconds)
                if ctx.any(due or self.stop_requested):
                    interrupted = ctx.any(self.stop_requested)
                    self.save_mid_epoch(step + 1, total, count, before + now - start)
                    last_save = time.perf_counter()
                    if interrupted:
                        raise TrainingInterrupted(f"epoch {epoch}, step {step + 1} of {self.steps_per_epoch()}",
                                                  self.store.ctx.describe(self.store.out, "checkpoint"))
        finally:
            bar.close()  # cleared, so whatever is printed next starts a line of its own
        seconds = before + time.perf_counter() - start
        total, count = ctx.sum(total, count)
        return total / count, int(count), seconds

    def save_mid_epoch(self, step: int, total: float, count: int, seconds: float) -> None:
        """A checkpoint after ``step`` batches of the current epoch, with the epoch's running sums (over all ranks:
        rank 0 carries them on resume)."""
        total, count = self.ctx.sum(total, count)
        self.state.update(step=step, partial=[total if self.ctx.main else 0.0, int(count) if self.ctx.main else 0,
                                              seconds], recent=list(self.recent))
        self.store.save_checkpoint(self.model, self.checkpoint_payload())

    def train_step(self, ids: torch.Tensor, y: torch.Tensor, n: int) -> float:
        """One batch: forward, backward, clip, the tables' update (ALPT's passes), the dense update."""
        replay = rng_state()  # ALPT's second pass sees this batch's random draws (dropout) again
        self.l2.clear()
        loss = batch_loss(self.wrapped(ids), y, self.ctx.world, n)
        value = self.check_loss(loss)
        self.dense_opt.zero_grad(set_to_none=True)
        (loss + self.l2.penalty() * self.ctx.world).backward()
        if self.cfg.grad_clip > 0:
            clip_touched(self.model, self.table_opt, self.cfg.grad_clip, self.ctx)
        self.table_opt.step(lambda: self.replay_loss(ids, y, n, replay))
        self.dense_opt.step()
        return value

    def replay_loss(self, ids: torch.Tensor, y: torch.Tensor, n: int, rng: tuple) -> torch.Tensor:
        """The batch's loss again, with the same random draws (ALPT's second pass; the model without DDP's hooks)."""
        set_rng_state(rng)
        return batch_loss(self.model(ids), y, self.ctx.world, n)

    def checkpoint_and_earlystop(self, epoch: int, train_loss: float, count: int, seconds: float) -> bool:
        """After an epoch: divergence check, schedules, validation, best weights, checkpoint, logs; True to stop."""
        cfg, state = self.cfg, self.state
        self.check_divergence(train_loss, "the epoch's train log loss", f"the end of epoch {epoch}")
        self.table_opt.flush()  # every-row decay: every row up to date before it is read (and saved)
        lr_used = self.dense_opt.param_groups[0]["lr"]
        if cfg.lr_schedule != "plateau":
            for s in self.schedules:
                s.step()
        if cfg.bn_refresh:
            refresh_batch_norm(self.model, (ids.to(cfg.device) for ids, _, _ in self.ctx.batches(
                self.data, "train", cfg.batch_size * 4)))
        val = evaluate(self.model, self.data, "val", cfg.batch_size * 4, cfg.device, self.ctx)
        if cfg.lr_schedule == "plateau":
            for s in self.schedules:
                s.step(val["auc"])
        state["train_seconds"] += seconds
        state["samples"] += count
        improved = val["auc"] > state["best_auc"]
        if improved:
            state.update(best_auc=val["auc"], best_epoch=epoch, bad_epochs=0)
            self.store.save_best(self.model, epoch)
        else:
            state["bad_epochs"] += 1
        state.update(epoch=epoch, step=0, partial=[0.0, 0, 0.0], recent=list(self.recent))
        state["history"].append({"epoch": epoch, "train_logloss": train_loss, "val_auc": val["auc"],
                                 "val_logloss": val["logloss"], "lr": lr_used, "seconds": round(seconds, 3),
                                 "samples_per_s": round(count / seconds, 1)})
        self.store.save_checkpoint(self.model, self.checkpoint_payload())
        self.store.log_epoch(state["history"])
        if seconds >= 60:  # long epochs: the curve so far (short runs draw it once, at the end)
            self.store.write_curve(state["history"])
        if self.echo:
            print(f"epoch {epoch}: train logloss {train_loss:.4f}, val AUC {val['auc']:.4f}, "
                  f"val logloss {val['logloss']:.4f}{' *' if improved else ''}")
        return state["bad_epochs"] >= cfg.patience

    def finish(self) -> dict:
        """The best weights on the test split; ``metrics.json``."""
        cfg, state = self.cfg, self.state
        self.l2.remove()
        self.store.close()
        self.store.load_best(self.model, cfg.device, state["best_epoch"])
        test = evaluate(self.model, self.data, "test", cfg.batch_size * 4, cfg.device, self.ctx)
        metrics = {"test_auc": test["auc"], "test_logloss": test["logloss"], "best_epoch": state["best_epoch"],
                   "best_val_auc": state["best_auc"], "epochs_run": state["epoch"],
                   "train_samples_per_s": state["samples"] / max(state["train_seconds"], 1e-9),
                   "config": self.store.run["config"], "data": str(self.data.root), "world_size": self.ctx.world}
        emb = getattr(self.model, "embedding", None) or getattr(self.model, "linear", None)
        if hasattr(emb, "memory_bytes"):
            metrics.update(embedding_bytes=int(emb.memory_bytes()), table_bytes=int(emb.table_bytes()),
                           fp32_table_bytes=int(emb.fp32_bytes()))
        self.store.write_metrics(metrics)
        self.store.write_curve(state["history"])
        self.ctx.barrier()
        return metrics

    # -- checks -----------------------------------------------------------------------------------------------------
    def check_loss(self, loss: torch.Tensor) -> float:
        """The batch's data loss (the step's one host sync); stops on a non-finite or exploding loss."""
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingError(f"non-finite loss ({value}) at {self.where}; stopped. "
                                + self.store.last_good(self.saved_at()))
        if self.ctx.world == 1:  # one process decides alone; ranks compare at the end of the epoch
            self.recent.append(value)
            if len(self.recent) == self.recent.maxlen:
                self.check_divergence(sum(self.recent) / len(self.recent),
                                      f"the mean log loss of the last {len(self.recent)} batches", self.where)
        return value

    def check_divergence(self, mean: float, what: str, where: str) -> None:
        """Stop when a mean log loss is over DIVERGENCE_FACTOR x that of a constant predictor (or not finite)."""
        if not mean <= DIVERGENCE_FACTOR * max(self.reference, math.log(2)):
            raise TrainingError(f"training diverged at {where}: {what} is {mean:.3g}, over {DIVERGENCE_FACTOR:g}x that "
                                f"of always predicting the base rate ({self.reference:.3f}); lower --lr (now "
                                f"{self.cfg.lr:g}). " + self.store.last_good(self.saved_at()))

    # -- checkpoints ------------------------------------------------------------------------------------------------
    def saved_at(self) -> str | None:
        """Where the last checkpoint stands ("epoch 2", "epoch 3, step 40"), or None before the first."""
        epoch, step = self.state["epoch"], self.state["step"]
        return f"epoch {epoch + 1}, step {step}" if step else (f"epoch {epoch}" if epoch else None)

    def checkpoint_payload(self) -> dict:
        dense, table = (plain_schedule(s.state_dict()) for s in self.schedules)
        return {"optimizer": self.dense_opt.state_dict(), "scheduler": dense,
                "table_optimizer": self.table_opt.state_dict(), "table_scheduler": table,
                "torch_rng": torch.get_rng_state(), "state": self.state}

    def resume(self) -> None:
        """Continue from the run's checkpoint, at an epoch's end or inside one (or start at epoch 1 when none was
        written)."""
        cfg = self.cfg
        if not self.store.has_checkpoint():
            warnings.warn(f"{self.store.out}: the run has no checkpoint yet; starting it from epoch 1", RunWarning,
                          stacklevel=3)
            return
        ckpt = self.store.load_checkpoint(self.model, cfg.device)
        self.dense_opt.load_state_dict(ckpt["optimizer"])
        self.schedules[0].load_state_dict(counter_schedule(ckpt["scheduler"]))
        if "table_optimizer" in ckpt:
            self.table_opt.load_state_dict(ckpt["table_optimizer"])
            self.schedules[1].load_state_dict(counter_schedule(ckpt["table_scheduler"]))
        else:  # lptsim 0.1.0 scaled the tables' lr by the dense lr's ratio: continue exactly that way
            ratio = self.dense_opt.param_groups[0]["lr"] / cfg.lr
            for g in self.table_opt.param_groups:
                g["lr"] = g.get("initial_lr", g["lr"]) * ratio
            fresh = self.schedules[1].state_dict()
            self.schedules[1].load_state_dict({**counter_schedule(ckpt["scheduler"]), **{
                k: fresh[k] for k in ("base_lrs", "min_lrs") if k in fresh},
                "_last_lr": [g["lr"] for g in self.table_opt.param_groups]})
            warnings.warn(f"{self.store.out}: checkpoint written by lptsim {checkpoint_release(ckpt)}; its tables were "
                          "read into this release's layout, and random draws from here on follow this release's "
                          "streams (not those the old release would have drawn)", RunWarning, stacklevel=3)
        torch.set_rng_state(ckpt["torch_rng"])
        self.state = {**self.state, **ckpt["state"]}  # older checkpoints: written at epoch ends, without a step
        if self.ctx.world > 1 and not self.ctx.main:
            self.state["partial"] = [0.0, 0, self.state["partial"][2]]  # rank 0 carries the epoch's sums
        self.recent.extend(self.state["recent"])
        if self.state["best_epoch"]:  # the best weights must be there for the final evaluation: check them now
            self.store.load_best(self.model, cfg.device, self.state["best_epoch"], apply=False)


def warn_few_steps(rows: int, batch_size: int) -> int:
    """Warn (RunWarning) when an epoch of ``rows`` training rows at ``batch_size`` is fewer than MIN_EPOCH_STEPS
    optimizer steps; return the steps per epoch."""
    steps = math.ceil(rows / batch_size)
    if steps < MIN_EPOCH_STEPS:
        warnings.warn(f"an epoch is only {steps} step{'s' if steps != 1 else ''} ({rows:,} training rows at batch size "
                      f"{batch_size:,}; fewer than {MIN_EPOCH_STEPS}): the model will barely train; use "
                      f"--batch-size {max(1, rows // MIN_EPOCH_STEPS):,} or less for data this small", RunWarning,
                      stacklevel=3)
    return steps


def train(data: PreparedData, cfg: TrainConfig, out: str | Path, resume: bool = False,
          progress: bool = True, ctx: Local | None = None, force: bool = False, echo: bool | None = None,
          tensorboard: bool = False, checkpoint_every: CheckpointEvery | None = None, curve: bool = False) -> dict:
    """Train, checkpointing each epoch (and inside epochs, ``checkpoint_every``: default every
    ``DEFAULT_CHECKPOINT_SECONDS`` of training) into ``out``; return the final metrics (also ``out/metrics.json``).
    Ctrl-C stops after the current step with a checkpoint there (:class:`TrainingInterrupted`).

    ``ctx`` spreads the run over processes (lptsim.ctr.parallel); the default is one process.
    ``out`` must be a new or empty folder or a run folder (``force``: any folder). ``progress``:
    progress bars; ``echo``: the per-epoch summary lines (default: as ``progress``);
    ``tensorboard``: also log each epoch to ``out/tensorboard`` (skipped with a warning when the
    tensorboard package is absent); ``curve``: draw ``out/curve.png`` (the training curve; the CLI's runs do).
    """
    ctx = ctx or Local()
    check_splits(data)
    store = RunStore.open(out, cfg, data, ctx, resume=resume, force=force, tensorboard=tensorboard, curve=curve)
    trainer = Trainer(data, cfg, store, ctx, progress=progress, echo=progress if echo is None else echo,
                      checkpoint_every=checkpoint_every)
    if resume:
        trainer.resume()
    store.write_record(data)
    return trainer.fit()
