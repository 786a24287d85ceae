"""The run store: a training run's folder, written safely and read back with checks.

A run folder holds ``run.json`` (the configuration and the data it trains on, written first), ``data/`` (its own
copy of the prepared folder's vocabulary, schema and feature map, for predict and export), ``checkpoint``
(after every epoch and, inside an epoch, every few minutes or steps; the one before is kept), ``best`` (weights at
the best validation AUC), ``log.csv`` / ``log.json`` (one row per epoch), ``curve.png``, optionally
``tensorboard/``, and at the end ``metrics.json``. Checkpoints go
through the run's context (one file, or one shard per rank: :mod:`lptsim.ctr.parallel`), hold tensors and plain
values only, carry a checksum (:mod:`lptsim.ctr.checkpoint`) and say which lptsim and table format wrote them.
Before any tensor is read, a resumed run's ``run.json`` is checked against the options and the data.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from torch import nn

from lptsim import __version__
from lptsim.atomic import temporary_path, write_bytes_atomic, write_json_atomic, write_text_atomic
from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.parallel import Local
from lptsim.ctr.table.state import TABLE_FORMAT
from lptsim.outdir import claim

MUTABLE = ("epochs", "device")  # options a resumed run may change (extend it, move it)
# Options added after runs were first recorded, with the behaviour those runs had (for resuming them).
LEGACY = {"dense_init": "torch", "embedding_l2": 0.0, "weight_decay": 0.0, "grad_clip": 0.0, "lr_schedule": "step",
          "plateau_patience": 0, "min_lr": 1e-6, "shuffle": True, "bn_refresh": False, "table_decay": "touched"}
FIRST_RELEASE = "0.1.0"  # checkpoints without a version were written by it (table format 1)


DATA_COPY = "data"  # the run folder's copy of its data folder's vocabulary, schema and feature map
DATA_FILES = ("feature_map.json", "manifest.json", "vocab.npz")


def keep_data_files(src: Path, dest: Path) -> None:
    """Give the run its own ``DATA_FILES`` from the prepared folder ``src`` (hard links where the file system
    allows and the file already has the mode the umask gives, else copies): prepare replaces files rather than
    rewriting them, so a folder prepared again later leaves these as they were. Files already kept (a resumed
    run, checked to be on the same data) stay."""
    mask = os.umask(0)
    os.umask(mask)
    for name in DATA_FILES:
        source, target = src / name, dest / name
        if target.exists() or not source.exists():
            continue
        dest.mkdir(parents=True, exist_ok=True)
        tmp = temporary_path(target)
        try:
            if source.stat().st_mode & 0o777 != 0o666 & ~mask:
                raise OSError("another mode: copy")  # a link shares the mode; a run's files follow the umask
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)


class RunWarning(UserWarning):
    """Something a user should know about a run that still goes on (e.g. resumed from an older checkpoint)."""


def _plain(value):
    """``value`` as JSON would give it back (tuples -> lists), for comparing configurations."""
    return json.loads(json.dumps(value))


def data_fingerprint(data: PreparedData) -> dict:
    """What identifies the prepared data a run trains on (not where it lies)."""
    return fingerprint_of(data.manifest, data.feature_map)


def fingerprint_of(m: dict, fm: dict) -> dict:
    """:func:`data_fingerprint` from a prepared folder's manifest and feature map alone (no arrays read)."""
    return _plain({"sha256": m.get("sha256"), "rows": m.get("rows"), "options": m.get("options"),
                   "fields": fm["fields"], "vocab_sizes": fm["vocab_sizes"]})


def run_record(cfg, data: PreparedData) -> dict:
    """What ``run.json`` holds for a run of ``cfg`` (a TrainConfig) on ``data``."""
    return {"config": _plain(asdict(cfg)), "data": data_fingerprint(data), "data_path": str(Path(data.root).resolve()),
            "lptsim_version": __version__}


def _recorded(config: dict) -> dict:
    """A saved configuration as this release records it: options added since with the behaviour old runs had
    (LEGACY), and fp runs at 32 bits (earlier releases recorded the unused default, 8)."""
    config = {**LEGACY, **_plain(config)}
    if config.get("method") == "fp":
        config["bits"] = 32
    return config


def _differences(saved: dict, now: dict, skip: tuple[str, ...] = ()) -> list[str]:
    keys = [k for k in dict.fromkeys([*saved, *now]) if k not in skip and saved.get(k) != now.get(k)]
    return [f"{k} {saved.get(k)!r} there, {now.get(k)!r} here" for k in keys]


class RunStore:
    """The files of one run folder ``out``, through the run's context ``ctx`` (every rank holds one)."""

    def __init__(self, out: Path, run: dict, ctx: Local, tensorboard: bool = False, curve: bool = False):
        self.out, self.run, self.ctx = Path(out), run, ctx
        self.board = _tensorboard(self.out) if tensorboard and ctx.main else None
        self.curve = curve and ctx.main

    @classmethod
    def open(cls, out: str | Path, cfg, data: PreparedData, ctx: Local, resume: bool, force: bool = False,
             tensorboard: bool = False, curve: bool = False) -> RunStore:
        """Claim ``out`` for a run (``force``: any folder) and check it: new, or (``resume``) the same run."""
        out = Path(out)
        if ctx.main:
            claim(out, "run", force=force)
        ctx.barrier()
        store = cls(out, run_record(cfg, data), ctx, tensorboard, curve)
        store.check_folder(resume)
        ctx.barrier()  # every rank has checked the folder before run.json is (re)written
        return store

    # -- run.json ---------------------------------------------------------------------------------------------------
    def check_folder(self, resume: bool) -> None:
        """Before any tensor is read: is there a run, and was it started with these options and this data?"""
        record = self.out / "run.json"
        holds_run = record.exists() or self.has_checkpoint()
        if not resume:
            if holds_run:
                raise ValueError(f"{self.out} already holds a run; pass --resume to continue it or choose another "
                                 "--out")
            return
        if not holds_run:
            raise ValueError(f"{self.out} holds no run to resume (no run.json or checkpoint); drop --resume to start "
                             "one")
        try:
            saved = json.loads(record.read_text())
            assert isinstance(saved, dict) and isinstance(saved["config"], dict) and isinstance(saved["data"], dict)
        except (OSError, ValueError, AssertionError, KeyError):
            raise ValueError(f"{record}: missing or damaged, so the run's options are unknown; start a new run in "
                             "another folder") from None
        why = _differences(_recorded(saved["config"]), self.run["config"], skip=MUTABLE)
        if why:
            raise ValueError(f"{self.out}: the run there has a different configuration ({'; '.join(why)}); resume "
                             "with the same options or use another --out")
        if saved["data"] != self.run["data"]:
            why = _differences(saved["data"], self.run["data"])
            raise ValueError(f"{self.out}: the run there was trained on other data ({'; '.join(why)[:300]}); resume "
                             "with the same --data or use another --out")

    def write_record(self, data: PreparedData | None = None) -> None:
        """``run.json``, and (``data``) the run's own copy of what predict and export read from its data folder."""
        if self.ctx.main:
            write_json_atomic(self.out / "run.json", self.run)
            if data is not None:
                keep_data_files(Path(data.root), self.out / DATA_COPY)

    # -- checkpoints ------------------------------------------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        return self.ctx.exists(self.out, "checkpoint")

    def save_checkpoint(self, model: nn.Module, payload: dict) -> None:
        """The run's state after an epoch (``payload``: optimizers, schedulers, RNG, trainer state)."""
        self.ctx.save(self.out, "checkpoint", model, {**payload, "config": self.run["config"], "data": self.run["data"],
                                                      "lptsim_version": __version__, "table_format": TABLE_FORMAT})

    def load_checkpoint(self, model: nn.Module, device: str) -> dict:
        """Load the newest usable checkpoint of this run into ``model``; return its payload (without the model).
        Warns when it fell back to the previous one, or when an older lptsim wrote it."""
        payload, skipped = self.ctx.load(self.out, "checkpoint", model, device, accept=self._foreign)
        if skipped:
            warnings.warn(f"{skipped}; resumed from the previous checkpoint (epoch {payload['state']['epoch']})",
                          RunWarning, stacklevel=3)
        return payload

    def _foreign(self, payload: dict) -> str | None:
        """Why a checkpoint does not belong to this run, or None."""
        why = _differences(_recorded(payload.get("config", {})), self.run["config"], skip=MUTABLE)
        if why or _plain(payload.get("data")) != self.run["data"]:
            return "saved by a run with other options or data" + (f" ({'; '.join(why)})" if why else "")
        return None

    def save_best(self, model: nn.Module, epoch: int) -> None:
        self.ctx.save(self.out, "best", model, {"epoch": epoch, "lptsim_version": __version__,
                                                "table_format": TABLE_FORMAT})

    def load_best(self, model: nn.Module, device: str, epoch: int, apply: bool = True) -> None:
        """Load (``apply=False``: only check) the best weights, which must be those of ``epoch``."""
        self.ctx.load(self.out, "best", model, device, accept=_epoch_is(epoch), apply=apply)

    def last_good(self, saved_at: str | None) -> str:
        """Where the last good checkpoint is (``saved_at``: "epoch 2" or "epoch 3, step 40"; None: none written),
        for an error message."""
        if saved_at and self.has_checkpoint():
            return f"The last good checkpoint ({saved_at}) is {self.ctx.describe(self.out, 'checkpoint')}."
        return f"No checkpoint was written yet, so {self.out} holds none."

    # -- logs and metrics -------------------------------------------------------------------------------------------
    def log_epoch(self, history: list[dict]) -> None:
        """The per-epoch logs (csv, json; tensorboard when asked) after an epoch."""
        if self.ctx.main:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
            write_text_atomic(self.out / "log.csv", buf.getvalue())
            write_text_atomic(self.out / "log.json", json.dumps(history, indent=2))
        if self.board is not None:
            row = history[-1]
            for key, value in row.items():
                if key != "epoch":
                    self.board.add_scalar(key, value, row["epoch"])
            self.board.flush()

    def write_curve(self, history: list[dict]) -> None:
        """``curve.png``: train and validation log loss, and validation AUC, per epoch (when asked for)."""
        if not (self.curve and history):
            return
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        epochs = [row["epoch"] for row in history]
        fig = Figure(figsize=(8, 3.2))
        FigureCanvasAgg(fig)  # no pyplot: no global state, no display needed (Agg)
        loss, auc = fig.subplots(1, 2)
        loss.plot(epochs, [row["train_logloss"] for row in history], marker="o", label="train")
        loss.plot(epochs, [row["val_logloss"] for row in history], marker="o", label="validation")
        loss.set(xlabel="epoch", ylabel="log loss", title="log loss")
        loss.legend()
        auc.plot(epochs, [row["val_auc"] for row in history], marker="o", color="C2")
        auc.set(xlabel="epoch", ylabel="AUC", title="validation AUC")
        for ax in (loss, auc):
            ax.set_xticks(epochs if len(epochs) <= 12 else ax.get_xticks())
            ax.grid(alpha=0.3)
        fig.suptitle(str(self.out), fontsize=9)
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.82, wspace=0.28)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        write_bytes_atomic(self.out / "curve.png", buf.getvalue())

    def write_metrics(self, metrics: dict) -> None:
        if self.ctx.main:
            write_json_atomic(self.out / "metrics.json", metrics)

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def checkpoint_release(payload: dict) -> str:
    """The lptsim release that wrote a checkpoint (the first release wrote no version)."""
    return str(payload.get("lptsim_version", FIRST_RELEASE))


def _epoch_is(epoch: int) -> Callable[[dict], str | None]:
    return lambda p: None if p.get("epoch") == epoch else f"holds epoch {p.get('epoch')}, not the best epoch {epoch}"


def _tensorboard(out: Path):
    """A SummaryWriter on ``out/tensorboard``, or None (with a warning) when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn("--tensorboard: the tensorboard package is not installed (pip install tensorboard); "
                      "logging to log.csv only", RunWarning, stacklevel=4)
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))
