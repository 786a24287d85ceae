"""Peers' training protocols as presets, and TOML config files that hold a whole TrainConfig.

A config file is TOML: the top-level keys are :class:`~lptsim.ctr.train.TrainConfig` fields and the
``[embedding_options]`` table holds the tables' options (lptsim.ctr.table.TableConfig fields: ``optimizer``,
``lr``, ``init_std``, ``clip``, ``step_lr``, ...). Any subset may be given; the rest keep their defaults.
The command line resolves a configuration as: defaults < ``--preset`` < ``--config FILE`` < flags.

Presets (values from the peers' published code and configs, Criteo):

* ``fuxictr`` (FuxiCTR 2.3.10): dim 16, Adam lr 1e-3 for dense layers and embeddings, batch 256, up
  to 10 epochs, early stop patience 2 on validation AUC, reduce-LR-on-plateau x0.1 (floor 1e-6),
  embedding L2 1e-5, gradient-norm clip 10, embedding init N(0, 1e-4^2), Xavier-normal dense init
  with zero biases, DNN/DCN MLP 400-400-400, DCN 3 cross layers. (FuxiCTR zeroes a padding row that
  lptsim's id space does not have; its L2 reaches every row, lptsim's the rows a batch touches.)
* ``alpt-paper`` (the ALPT authors' code): dim 16, MLP 1024-512-256 with BatchNorm and ReLU, DCN 3
  cross layers, Adam lr 1e-3 with weight decay 3e-6 on every table row at every step, as the authors' dense Adam
  does (``table_decay = "every-row"``: exact, replayed lazily when a row is next touched), embedding init
  N(0, 0.003^2), one step per table, the initial table rounded stochastically, step learning rate 1e-6 with Adam,
  early stop 2, training rows in file order every epoch, and the BatchNorm statistics recomputed over the training
  split before each evaluation (``bn_refresh``; not in the authors' code, whose second forward pass updates them a
  second time each step: see analysis/results/ctr/ABLATION_alpt_paper.md for what each choice measured).
  **Batch size**: the paper's 10,000 is for full Criteo (about 3,700 steps per epoch). On small data use the
  batch the authors' code was run with on the 10k-row sample, ``--batch-size 256`` (32 steps per epoch on its
  8,000 training rows); at 10,000 an epoch of that sample is one step, and training warns below 20 steps.
  lptsim's ``step_lr`` is relative to the initial step ``clip / 2^(bits-1)``, so the preset sets
  ``step_lr = 1e-6 / initial step`` for the run's ``bits`` (a written config keeps that number: change both if
  you change ``bits``).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from lptsim.ctr.table import TableConfig
from lptsim.ctr.trainconfig import SET_BY_RUN, TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

def embedding_defaults() -> dict[str, Any]:
    """The table options a config's [embedding_options] may set, with their defaults (TableConfig's fields but
    the run's own method, bits and seed)."""
    return {k: v for k, v in TableConfig.options().items() if k not in SET_BY_RUN}


def _fuxictr(bits: int) -> dict:
    return {"dim": 16, "lr": 1e-3, "batch_size": 256, "epochs": 10, "patience": 2, "lr_schedule": "plateau",
            "lr_gamma": 0.1, "plateau_patience": 0, "min_lr": 1e-6, "lr_milestones": [], "embedding_l2": 1e-5,
            "grad_clip": 10.0, "dense_init": "xavier_normal", "hidden": [400, 400, 400], "cross_layers": 3,
            "dropout": 0.0, "batch_norm": False, "bn_refresh": False, "shuffle": True, "weight_decay": 0.0,
            "table_decay": "touched",
            "embedding_options": {"optimizer": "adam", "lr": 1e-3, "init_std": 1e-4}}


def _alpt_paper(bits: int) -> dict:
    clip = embedding_defaults().get("clip", 0.05)
    # one step per table and a stochastically rounded initial table, as the authors' code does
    options = {"optimizer": "adam", "lr": 1e-3, "init_std": 0.003, "step_lr": 1e-6 / (clip / 2 ** (bits - 1)),
               "step_optimizer": "adam", "step_granularity": "table", "init_rounding": "stochastic"}
    return {"dim": 16, "lr": 1e-3, "batch_size": 10_000, "epochs": 10, "patience": 2, "lr_schedule": "none",
            "lr_milestones": [], "embedding_l2": 0.0, "weight_decay": 3e-6, "grad_clip": 0.0, "dense_init": "torch",
            "hidden": [1024, 512, 256], "batch_norm": True, "bn_refresh": True, "cross_layers": 3, "dropout": 0.0,
            "shuffle": False, "table_decay": "every-row", "embedding_options": options}


PRESETS = {"fuxictr": _fuxictr, "alpt-paper": _alpt_paper}


def preset(name: str, bits: int = 8) -> dict:
    """The settings of a preset (for a run with ``bits``-bit codes)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name](bits)


def _field_types() -> dict[str, Any]:
    defaults = asdict(TrainConfig())
    return {f.name: defaults[f.name] for f in fields(TrainConfig)}


def check_config(values: dict, source: str) -> dict:
    """Refuse unknown keys and values of the wrong type, naming the key and ``source``; return ``values``."""
    known = _field_types()
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"{source}: unknown key {key!r}; known keys: {', '.join(sorted(known))}")
        default = known[key]
        if key == "embedding_options":
            if not isinstance(value, dict):
                raise ValueError(f"{source}: 'embedding_options' should be a table ([embedding_options])")
            allowed = embedding_defaults()
            for k in value:
                if k not in allowed:
                    raise ValueError(f"{source}: unknown key 'embedding_options.{k}'; the tables "
                                     f"take: {', '.join(sorted(allowed))}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{source}: {key!r} should be true or false, got {value!r}")
        elif isinstance(default, tuple):
            if not (isinstance(value, list | tuple) and all(isinstance(v, int) and not isinstance(v, bool)
                                                            for v in value)):
                raise ValueError(f"{source}: {key!r} should be a list of integers, got {value!r}")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{source}: {key!r} should be a number, got {value!r}")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{source}: {key!r} should be an integer, got {value!r}")
        elif isinstance(default, str) and not isinstance(value, str):
            raise ValueError(f"{source}: {key!r} should be a string, got {value!r}")
    return values


def load_config(path: str | Path) -> dict:
    """The settings in a TOML config file, checked key by key (errors name the key and the file)."""
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"--config {path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--config {path}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"--config {path}: not valid TOML ({exc})") from None
    return check_config(values, f"config {path}")


def config_text(cfg: TrainConfig, origin: str) -> str:
    """``cfg`` as an editable TOML file (every field, so the file says exactly what a run does)."""
    import tomli_w

    values = asdict(cfg)
    values["hidden"], values["lr_milestones"] = list(cfg.hidden), list(cfg.lr_milestones)
    options = values.pop("embedding_options")
    header = (f"# lptsim CTR training configuration ({origin}).\n"
              "# Pass it back with `lptsim ctr train --config FILE`; command-line flags override it.\n"
              "# Keys: lptsim.ctr.train.TrainConfig fields; [embedding_options]: lptsim.ctr.table.TableConfig "
              "fields.\n")
    return header + tomli_w.dumps({**values, "embedding_options": options})


def merge(base: dict, update: dict) -> dict:
    """``base`` updated by ``update``; the ``embedding_options`` tables are merged key by key."""
    out = {**base, **update}
    if "embedding_options" in base and "embedding_options" in update:
        out["embedding_options"] = {**base["embedding_options"], **update["embedding_options"]}
    return out
