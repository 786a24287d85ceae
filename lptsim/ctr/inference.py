"""Use a trained run: load its best weights, evaluate it on a prepared folder, predict raw rows.

A run folder records its configuration and the fingerprint of its data (``run.json``), where that data lay
(``run.json``'s ``data_path``, or ``metrics.json``'s ``data``), and keeps its own copy of that folder's
vocabulary (``vocab.npz``), schema (the manifest) and feature map in ``data/`` (runs from before lptsim kept
one fall back to the recorded folder, checked to be unchanged). Raw rows are mapped to ids through these,
exactly as ``ctr prepare`` mapped the training rows: unseen or rare values become the field's OOV id.
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from lptsim.atomic import discard, open_new, temporary_path
from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.data.prepare import load_json, schema_from_record
from lptsim.ctr.data.reader import BlockReader
from lptsim.ctr.data.schema import SCHEMAS, Schema
from lptsim.ctr.data.vocab import load_vocabulary
from lptsim.ctr.parallel import Local
from lptsim.ctr.runstore import DATA_COPY, fingerprint_of
from lptsim.ctr.train import TrainConfig, auc_logloss, make_model
from lptsim.outdir import kind_of


def _read_run(run: Path) -> dict:
    record = run / "run.json"
    if not record.exists():
        if not run.exists():
            raise ValueError(f"{run}: no such folder; --run takes the --out folder of `lptsim ctr train`")
        if kind_of(run) == "prepared":
            raise ValueError(f"{run}: holds prepared data, not a training run; --run takes the --out folder of "
                             f"`lptsim ctr train`, e.g. train one with `lptsim ctr train --data {run} --out "
                             f"{run.parent / (run.name + '-run')}`")
        raise ValueError(f"{run}: not a run folder (no run.json); --run takes the --out folder of `lptsim ctr train`")
    saved = load_json(record)
    if not isinstance(saved.get("config"), dict) or not isinstance(saved.get("data"), dict):
        raise ValueError(f"{record}: damaged (no config or data); the run cannot be used")
    return saved


def load_run(run: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, TrainConfig, dict]:
    """(model with the run's best weights in eval mode, its TrainConfig, run.json)."""
    run = Path(run)
    saved = _read_run(run)
    values = dict(saved["config"])
    values["device"] = device
    cfg = TrainConfig(**values)
    fp = saved["data"]
    offsets = np.concatenate([[0], np.cumsum(fp["vocab_sizes"])[:-1]]).tolist()  # steps per field need them
    shape = SimpleNamespace(num_embeddings=int(sum(fp["vocab_sizes"])), num_fields=len(fp["fields"]),
                            feature_map={"offsets": offsets})
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, shape).to(device)
    if not (run / "best.pt").exists():
        raise ValueError(f"{run}: has no best.pt (no finished epoch, or a distributed run: its shards are not read "
                         "here)")
    Local().load(run, "best", model, device)
    model.eval()
    return model, cfg, saved


def data_folder_of(run: str | Path, saved: dict, data: str | Path | None = None) -> Path:
    """The folder whose vocabulary, schema and feature map turn raw rows into the run's ids: ``data`` when given,
    else the run's own copy (``run/data``, kept since the run was trained), else the prepared folder the run
    records. Each is checked against the run's data fingerprint, so a folder prepared again is refused."""
    run = Path(run)
    if data is not None:
        folder, what = Path(data), "--data"
    elif (run / DATA_COPY / "feature_map.json").exists():
        folder, what = run / DATA_COPY, "the run's copy"
    else:
        folder, what = _recorded_data_folder(run, saved), "the folder the run was trained on"
    check_same_data(folder, saved, what)
    return folder


def _recorded_data_folder(run: Path, saved: dict) -> Path:
    if saved.get("data_path"):
        return Path(saved["data_path"])
    metrics = run / "metrics.json"
    if metrics.exists():
        path = load_json(metrics).get("data")
        if path:
            return Path(path)
    raise ValueError(f"{run}: does not record its data folder; pass --data DIR (the folder it was trained on)")


def check_same_data(folder: Path, saved: dict, what: str) -> None:
    """Refuse a prepared folder whose vocabulary is not the one the run was trained with (one line, naming it)."""
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder ({what}); pass --data DIR, the prepared folder the run was "
                         "trained on")
    now = fingerprint_of(load_json(folder / "manifest.json"), load_json(folder / "feature_map.json"))
    if now == saved["data"]:
        return
    if now["fields"] != saved["data"]["fields"] or now["vocab_sizes"] != saved["data"]["vocab_sizes"]:
        why = "other fields or vocabulary sizes"
    else:
        why = "the same sizes, but prepared from other rows or with other options, so its ids mean other values"
    raise ValueError(f"{folder} ({what}): not the prepared data the run was trained on ({why}); it was prepared "
                     "again or is another folder. Pass --data with a folder prepared from the same file and options "
                     "(see the run's run.json, 'data')")


def _check_same_features(run: Path, saved: dict, data: PreparedData, what: str) -> None:
    """``data`` must map values to ids as the run's data did: same fields and sizes, and (where the run keeps a
    copy of its vocabulary) the same vocabulary."""
    fp = saved["data"]
    kept = run / DATA_COPY / "vocab.npz"
    same = fp["fields"] == data.feature_map["fields"] and fp["vocab_sizes"] == data.feature_map["vocab_sizes"]
    if same and kept.exists() and (data.root / "vocab.npz").exists():
        same = filecmp.cmp(kept, data.root / "vocab.npz", shallow=False)
    if not same:
        raise ValueError(f"{data.root}: its vocabulary differs from the one the run was trained with; {what} needs "
                         "the folder the run was trained on (use `lptsim ctr predict` for new raw rows)")


@torch.no_grad()
def _probabilities(model: torch.nn.Module, ids: np.ndarray, batch_size: int, device: str) -> np.ndarray:
    out = []
    for a in range(0, ids.shape[0], batch_size):
        x = torch.as_tensor(np.asarray(ids[a: a + batch_size], dtype=np.int64), device=device)
        out.append(torch.sigmoid(model(x)).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, log loss and calibration (mean prediction / mean label) of probabilities ``p`` for labels ``y``."""
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0 or y.min() == y.max():
        raise ValueError(f"AUC needs rows of both classes ({y.size} rows, {int(y.sum())} positive)")
    return {**auc_logloss(y, p), "calibration": float(p.mean() / y.mean()), "rows": int(y.size),
            "mean_prediction": float(p.mean()), "mean_label": float(y.mean())}


def evaluate_run(run: str | Path, data: str | Path, split: str = "test", device: str = "cpu",
                 batch_size: int = 8192) -> dict:
    """The run's best weights scored on ``split`` of a prepared folder (prepared with the run's vocabulary)."""
    model, _, saved = load_run(run, device)
    prepared = PreparedData.load(data)
    _check_same_features(Path(run), saved, prepared, "evaluate")
    if split not in prepared.ids:
        raise ValueError(f"--split must be one of {sorted(prepared.ids)}, got {split!r}")
    p = _probabilities(model, prepared.ids[split], batch_size, device)
    return {**scores(prepared.labels[split], p), "split": split, "data": str(prepared.root)}


def run_schema(data_dir: Path) -> Schema:
    """The schema a prepared folder was read with (from its manifest)."""
    manifest = load_json(data_dir / "manifest.json")
    if isinstance(manifest.get("schema"), dict):
        try:
            return schema_from_record(manifest["schema"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{data_dir / 'manifest.json'}: damaged schema ({exc}); prepare the data again") from None
    name = manifest.get("options", {}).get("dataset")
    if name in SCHEMAS:
        return SCHEMAS[name]
    raise ValueError(f"{data_dir}: its manifest does not record the schema; prepare the data again")


def has_labels(source: str | Path, schema: Schema) -> bool:
    """Whether the rows of ``source`` carry the label column (most sampled lines have all of ``schema``'s
    columns) or not (one column fewer: rows to predict). Undecidable samples count as labelled."""
    from collections import Counter

    from lptsim.ctr.data.source import read_head

    head = read_head(source, 1 << 20)
    lines = [ln.rstrip(b"\r") for ln in head.split(b"\n")[:2000]]
    delim = schema.delimiter.encode()
    if schema.header and lines:
        lines = lines[1:]
    counts = Counter(ln.count(delim) + 1 for ln in lines if ln)
    return not counts or counts.most_common(1)[0][0] != len(schema.columns) - 1


def predict_file(run: str | Path, source: str | Path, out: str | Path, data: str | Path | None = None,
                 device: str = "cpu", strict: bool = False, batch_size: int = 8192) -> dict:
    """Raw rows (the training file's format, with or without the label column) -> ``out``: CSV
    ``line,label,probability`` (labelled rows) or ``line,probability`` (unlabelled), one per kept row.

    Bad lines are skipped and counted as ``ctr prepare`` does (``strict``: the first one stops). Returns
    a summary: rows, bad lines (by reason, the first ones) and, for labelled rows of both classes, the scores.
    """
    model, _, saved = load_run(run, device)
    data_dir = data_folder_of(run, saved, data)
    table = load_vocabulary(data_dir / "vocab.npz")
    schema = run_schema(data_dir)
    labelled = has_labels(source, schema)
    reader = BlockReader(source, schema if labelled else schema.without_label(), strict=strict,
                         other_format=lambda other: f"this run was trained on {schema.name} rows; predict them with a "
                                                    f"run trained on {other} data")
    out = Path(out)
    if out.exists() and out.resolve() == Path(source).resolve():
        raise ValueError(f"--out {out}: is the input file; give another name")
    tmp = temporary_path(out)
    labels, probs = [], []
    try:
        with open_new(tmp, "w") as f:
            f.write("line,label,probability\n" if labelled else "line,probability\n")
            for block in reader:
                p = _probabilities(model, table.lookup(block.values), batch_size, device)
                if labelled:
                    f.writelines(f"{ln + 1},{y},{q:.8g}\n" for ln, y, q in zip(block.lines.tolist(),
                                                                                 block.labels.tolist(), p.tolist(),
                                                                                 strict=True))
                else:
                    f.writelines(f"{ln + 1},{q:.8g}\n" for ln, q in zip(block.lines.tolist(), p.tolist(),
                                                                          strict=True))
                labels.append(block.labels)
                probs.append(p)
        os.replace(tmp, out)
    except BaseException:
        discard(tmp)
        raise
    y = np.concatenate(labels) if labels else np.zeros(0)
    p = np.concatenate(probs) if probs else np.zeros(0)
    summary = {"rows": int(y.size), "labelled": labelled, "lines": reader.lines_read, "bad_lines": reader.bad.count,
               "bad_lines_by_reason": dict(reader.bad.by_reason.most_common()),
               "first_bad_lines": [{"line": ln, "reason": r} for ln, r in reader.bad.first], "out": str(out),
               "mean_prediction": float(p.mean()) if p.size else float("nan")}
    if labelled and y.size and y.min() != y.max():
        summary.update(scores(y, p))
    return summary
