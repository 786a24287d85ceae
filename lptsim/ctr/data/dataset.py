"""A prepared dataset on disk (memory-mapped), and batches for training and evaluation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lptsim.ctr.data.prepare import SPLITS, load_json


@dataclass
class PreparedData:
    """``ids[split]`` (rows, fields) int32 global ids and ``labels[split]`` (rows,) uint8, memory-mapped."""

    root: Path
    feature_map: dict
    manifest: dict
    ids: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]

    @classmethod
    def load(cls, root: str | Path) -> PreparedData:
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"{root}: no such folder; run `lptsim ctr prepare ... --out {root}` first")
        feature_map = load_json(root / "feature_map.json")
        manifest = load_json(root / "manifest.json")
        ids, labels = {}, {}
        for s in SPLITS:
            try:
                ids[s] = np.load(root / f"{s}_ids.npy", mmap_mode="r")
                labels[s] = np.load(root / f"{s}_labels.npy", mmap_mode="r")
            except FileNotFoundError as exc:
                raise ValueError(f"{root}: missing {Path(exc.filename).name}; prepare did not finish") from None
            if ids[s].shape != (labels[s].shape[0], len(feature_map["fields"])):
                raise ValueError(f"{root}: {s} arrays disagree with feature_map.json")
        return cls(root, feature_map, manifest, ids, labels)

    @property
    def num_embeddings(self) -> int:
        return int(self.feature_map["num_embeddings"])

    @property
    def num_fields(self) -> int:
        return len(self.feature_map["fields"])

    def batches(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0,
                epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(ids int64 (B, fields), labels float32 (B,)) batches; the order depends only on (seed, epoch)."""
        ids, labels = self.ids[split], self.labels[split]
        n = labels.shape[0]
        order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else None
        for start in range(0, n, batch_size):
            if order is None:
                sel = slice(start, start + batch_size)
                x, y = ids[sel], labels[sel]
            else:
                idx = np.sort(order[start: start + batch_size])  # sorted reads are kinder to the page cache
                x, y = ids[idx], labels[idx]
            yield torch.from_numpy(np.asarray(x, dtype=np.int64)), torch.from_numpy(np.asarray(y, dtype=np.float32))
