"""``lptsim ctr export``: a trained run's tables as packed codes + steps, its dense weights, and the feature map and
vocabulary, in one safetensors file.

Format version 2 (safetensors; data only, no code runs when it is read), for each table ``T`` of the model
(``embedding``: (rows, dim); ``linear``: the first-order (rows, 1) table of LR/FM/DeepFM):

* low-precision tables (``lpt-dr``, ``lpt-sr``, ``alpt``, and ``lsq``/``pact`` quantized as their
  forward pass does), codes in ``[-2^(bits-1), 2^(bits-1)-1]``: up to 8 bits, ``T.packed`` uint8, the codes
  of the (rows, dim) table in row-major order packed by :func:`lptsim.quant.pack` (code i in bits
  ``i*bits .. (i+1)*bits-1`` of the little-endian bit stream, two's complement: a 4-bit table takes half a
  byte per weight); more than 8 bits, ``T.codes`` int16 (rows, dim). ``T.step`` float32, one step per row
  (rows,) or one for the table (1,); a table with one step per field is written with its steps per row. Row
  r's values are ``codes[r] * T.step[r]`` (or ``* T.step[0]``).
* ``fp`` tables: ``T.weight`` float32 (rows, dim).
* ``dense.<name>``: every other tensor of the model's state (the dense layers' weights and biases, BatchNorm
  statistics), as ``model.state_dict()`` names it.
* ``vocab.values`` int64, ``vocab.fields`` int32, ``vocab.ids`` int64: the vocabulary (raw value,
  field index, id within the field); a raw value's global row is ``offsets[field] + id``; values
  not listed map to ``offsets[field] + 0`` (OOV), missing ones to ``offsets[field] + 1``.

The header's metadata (strings): ``format`` = ``lptsim-ctr-export``, ``version`` = ``2``,
``method``, ``bits``, ``model``, ``tables`` (JSON list), ``shapes`` (JSON: each table's (rows, dim)),
``feature_map`` (JSON: fields, offsets, vocab_sizes, ...), ``schema`` (JSON), ``config`` (JSON TrainConfig).
Raw values are the int64 hashes and buckets of lptsim.ctr.data.transforms. :func:`load_export` reads it back
(version 1 too: codes unpacked int8, no dense weights), unpacking the codes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save
from torch import nn

from lptsim.atomic import write_bytes_atomic
from lptsim.ctr.data.prepare import load_json, schema_record
from lptsim.ctr.embedding import EMBEDDINGS
from lptsim.ctr.inference import data_folder_of, load_run, run_schema
from lptsim.ctr.qat import LSQEmbedding
from lptsim.quant import pack, quantize, unpack

FORMAT, VERSION = "lptsim-ctr-export", "2"


def table_arrays(table: nn.Module) -> dict[str, np.ndarray]:
    """``codes`` and ``step`` (or ``weight`` for fp) of one table, as its forward pass sees it."""
    n, config = table.num_embeddings, table.config
    with torch.no_grad():
        if not (config.quantized or config.qat):  # the FP32 baseline
            return {"weight": table.weight.detach().cpu().float().numpy()}
        if config.quantized:
            rows = torch.arange(n, device=table.codes.data.device)
            codes = table.codes.read(rows)
            # one step per field is written out per row, so a row's value stays codes[r] * step[r]
            step = table.step[table.step_index(rows)] if config.step_granularity == "field" else table.step
        elif isinstance(table, LSQEmbedding):
            step = table.steps()
            codes = quantize(table.weight, step.unsqueeze(1), table.spec, "nearest")
        else:  # pact
            alpha = table.alpha()
            step = (alpha / table.spec.qmax).reshape(1)
            clipped = torch.maximum(torch.minimum(table.weight, alpha), -alpha)
            codes = quantize(clipped, step, table.spec, "nearest")
        dtype = np.int8 if table.bits <= 8 else np.int16
        return {"codes": codes.cpu().numpy().astype(dtype), "step": step.detach().cpu().float().numpy().reshape(-1)}


def export_run(run: str | Path, out: str | Path, data: str | Path | None = None) -> dict:
    """Write the run's best tables (and the vocabulary of its data folder) to ``out``; return a summary."""
    model, cfg, saved = load_run(run, "cpu")
    data_dir = data_folder_of(run, saved, data)
    fm = load_json(data_dir / "feature_map.json")
    tensors: dict[str, np.ndarray] = {}
    names, shapes, packed = [], {}, False
    for name in ("embedding", "linear"):
        table = getattr(model, name, None)
        if table is None:
            continue
        if not isinstance(table, EMBEDDINGS):
            raise ValueError(f"{run}: table {name} is a {type(table).__name__}; export reads lptsim's tables")
        names.append(name)
        arrays = table_arrays(table)
        shapes[name] = [table.num_embeddings, int((arrays.get("codes", arrays.get("weight"))).shape[1])]
        if "codes" in arrays and table.bits <= 8:
            arrays["packed"] = pack(arrays.pop("codes"), table.bits)
            packed = True
        tensors.update({f"{name}.{k}": v for k, v in arrays.items()})
    dense = {k: v for k, v in model.state_dict().items() if k.split(".")[0] not in names}
    tensors.update({f"dense.{k}": v.detach().cpu().contiguous().numpy() for k, v in dense.items()})
    with np.load(data_dir / "vocab.npz", allow_pickle=False) as z:
        for key in ("values", "fields", "ids"):
            tensors[f"vocab.{key}"] = np.ascontiguousarray(z[key])
    metadata = {"format": FORMAT, "version": VERSION, "method": cfg.method, "bits": str(cfg.bits),
                "model": cfg.model, "tables": json.dumps(names), "shapes": json.dumps(shapes),
                "feature_map": json.dumps(fm), "schema": json.dumps(schema_record(run_schema(data_dir))),
                "config": json.dumps(saved["config"])}
    payload = save(tensors, metadata=metadata)
    write_bytes_atomic(Path(out), payload)
    return {"out": str(out), "bytes": len(payload), "tables": names, "method": cfg.method, "bits": cfg.bits,
            "packed": packed, "dense_tensors": len(dense), "dense_parameters": int(sum(v.numel() for v in
                                                                                        dense.values())),
            "vocabulary": int(tensors["vocab.values"].size)}


def load_export(path: str | Path) -> dict:
    """Read an export: ``{"metadata", "feature_map", "config", "tables": {name: {"codes", "step"} or
    {"weight"}}, "dense": {state_dict name: array}, "vocab": {"values", "fields", "ids"}}`` (numpy arrays; codes
    unpacked to int8, or int16 above 8 bits)."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = dict(f.metadata() or {})
        arrays = load_file(str(path))
    except (OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0] if str(exc) else exc})")\
            from None
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error type for damaged headers
        raise ValueError(f"{path}: not a readable safetensors file ({type(exc).__name__})") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path}: not an lptsim CTR export (format {metadata.get('format')!r})")
    tables: dict[str, dict[str, np.ndarray]] = {}
    shapes = json.loads(metadata.get("shapes", "{}"))
    for key, value in arrays.items():
        group, _, part = key.partition(".")
        if group in ("vocab", "dense"):
            continue
        if part == "packed":  # version 2: sub-byte codes packed
            part, value = "codes", unpack(value, int(metadata["bits"]), tuple(shapes[group]))
        tables.setdefault(group, {})[part] = value
    dense = {k.partition(".")[2]: v for k, v in arrays.items() if k.startswith("dense.")}
    return {"metadata": metadata, "feature_map": json.loads(metadata["feature_map"]),
            "config": json.loads(metadata["config"]), "tables": tables, "dense": dense,
            "vocab": {k: arrays[f"vocab.{k}"] for k in ("values", "fields", "ids")}}


def dequantized(table: dict[str, np.ndarray]) -> np.ndarray:
    """A loaded table's float32 rows: ``codes * step`` (per row or per table), or the fp weights."""
    if "weight" in table:
        return table["weight"]
    step = table["step"].astype(np.float32)
    return table["codes"].astype(np.float32) * (step[:, None] if step.size > 1 else step[0])
