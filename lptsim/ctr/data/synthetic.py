"""Synthetic Criteo-like CTR data with a known best AUC.

Fields: numeric counts (some missing) and categorical values with Zipf-distributed
frequencies over vocabularies of many sizes. Labels are drawn from a hidden teacher, a
factorisation machine on the (bucketed) features, so the Bayes-optimal ranking is by the
teacher's probability and the best achievable AUC on any split is the teacher's AUC there.
The generator writes the raw Criteo text format (so the whole prepare pipeline is
exercised) and a side file with the teacher's probabilities.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from lptsim.ctr.data.schema import CRITEO


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and difficulty of the synthetic data. The defaults train in seconds on a CPU."""

    rows: int = 100_000
    numeric: int = 13
    categorical: int = 26
    max_vocab: int = 200
    min_vocab: int = 4
    zipf: float = 1.2
    rank: int = 2  # rank of the teacher's pairwise interactions
    interaction: float = 0.2  # scale of the interaction factors
    signal_values: int = 1_000_000  # only the most frequent values of each field affect the label
    signal: float = 1.0  # scale of the teacher's logits: larger = higher best AUC
    positive_rate: float = 0.25
    missing_rate: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rows", "max_vocab", "min_vocab", "rank"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.numeric != 13 or self.categorical != 26:
            raise ValueError("the Criteo text format has 13 numeric and 26 categorical fields")
        if not 0 < self.positive_rate < 1 or not 0 <= self.missing_rate < 1:
            raise ValueError("positive_rate must be in (0, 1) and missing_rate in [0, 1)")


def _zipf_sample(rng: np.random.Generator, vocab: int, s: float, n: int) -> np.ndarray:
    cdf = np.cumsum(1.0 / np.arange(1, vocab + 1) ** s)
    return np.searchsorted(cdf / cdf[-1], rng.random(n), side="right").clip(0, vocab - 1)


def _bucket(v: np.ndarray) -> np.ndarray:
    out = v.copy()
    big = v > 2
    out[big] = np.floor(np.log(v[big]) ** 2).astype(np.int64)
    return out


def generate(spec: SyntheticSpec) -> dict[str, np.ndarray]:
    """Draw the data: ``numeric`` (rows, 13, with -1 = missing), ``categorical`` (rows, 26, -1 =
    missing), ``prob`` (teacher probabilities) and ``label``."""
    rng = np.random.default_rng(spec.seed)
    n, k = spec.rows, spec.rank
    vocabs = np.unique(np.geomspace(spec.min_vocab, spec.max_vocab, spec.categorical).astype(int))
    vocabs = np.resize(vocabs, spec.categorical)
    numeric = np.floor(rng.lognormal(mean=1.0, sigma=1.5, size=(n, spec.numeric))).astype(np.int64)
    numeric[rng.random(numeric.shape) < spec.missing_rate] = -1
    cats = np.stack([_zipf_sample(rng, int(v), spec.zipf, n) for v in vocabs], axis=1)
    cats[rng.random(cats.shape) < spec.missing_rate / 2] = -1
    # Teacher: first-order effects and rank-k interactions per (field, value); missing -> 0.
    logit = np.zeros(n)
    factors = np.zeros((n, k))
    sq = np.zeros(n)
    buckets = np.where(numeric >= 0, np.minimum(_bucket(np.maximum(numeric, 0)), 127), -1)
    columns = [(buckets[:, j], 128) for j in range(spec.numeric)] + [(cats[:, j], int(vocabs[j]))
                                                                    for j in range(spec.categorical)]
    for col, size in columns:
        # Only the head of each Zipf vocabulary carries signal (the tail behaves like OOV), so the
        # teacher is learnable from a sample of modest size and the best AUC is within reach.
        head = (np.arange(size) < spec.signal_values)
        w = rng.normal(0, 0.3, size) * head
        u = rng.normal(0, spec.interaction, (size, k)) * head[:, None]
        present = col >= 0
        idx = np.where(present, col, 0)
        logit += np.where(present, w[idx], 0.0)
        v = np.where(present[:, None], u[idx], 0.0)
        factors += v
        sq += np.sum(v * v, axis=1)
    logit += 0.5 * (np.sum(factors * factors, axis=1) - sq)
    logit = spec.signal * (logit - logit.mean()) / logit.std()
    # Shift so the mean probability matches the positive rate (bisection on the offset).
    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.mean(1 / (1 + np.exp(-(logit + mid)))) < spec.positive_rate else (lo, mid)
    prob = 1 / (1 + np.exp(-(logit + (lo + hi) / 2)))
    label = (rng.random(n) < prob).astype(np.uint8)
    return {"numeric": numeric, "categorical": cats, "prob": prob, "label": label}


def write_criteo_text(path: str | Path, spec: SyntheticSpec) -> Path:
    """Write the synthetic rows in Criteo ``train.txt`` format and the teacher's probabilities
    beside it (``<path>.teacher.npy``); return the path of the text file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = generate(spec)
    cols: dict[str, pa.Array] = {"label": pa.array(data["label"].astype(np.int64))}
    for j in range(spec.numeric):
        v = data["numeric"][:, j]
        cols[CRITEO.numeric[j]] = pa.array(v, mask=v < 0)
    for j in range(spec.categorical):
        v = data["categorical"][:, j]
        # 8-hex-digit "hashes" like Criteo's, distinct per (field, value).
        hexes = np.char.mod("%08x", (v.astype(np.int64) * 2654435761 + j * 40503 + 12345) % (1 << 32))
        cols[CRITEO.categorical[j]] = pa.array(hexes, mask=v < 0)
    pcsv.write_csv(pa.table(cols), path, write_options=pcsv.WriteOptions(
        include_header=False, delimiter="\t", quoting_style="none"))
    np.save(f"{path}.teacher.npy", data["prob"])
    (Path(f"{path}.spec.json")).write_text(__import__("json").dumps(asdict(spec)))
    return path


def teacher_auc(raw_path: str | Path, prepared: str | Path, split: str = "test") -> float:
    """AUC of the hidden teacher on a prepared split: the best any model can reach there."""
    from sklearn.metrics import roc_auc_score

    from lptsim.ctr.data.prepare import SPLITS, load_json, split_of_lines

    prob = np.load(f"{raw_path}.teacher.npy", allow_pickle=False)
    seed = load_json(Path(prepared) / "manifest.json")["options"]["seed"]
    lines = np.flatnonzero(split_of_lines(np.arange(prob.size), seed) == SPLITS.index(split))
    labels = np.load(Path(prepared) / f"{split}_labels.npy", allow_pickle=False)
    return float(roc_auc_score(labels, prob[lines]))


def synthetic_prepared(folder: str | Path, spec: SyntheticSpec, progress: bool = False) -> tuple[Path, float]:
    """Generate (once) the raw file under ``folder``, prepare it, return (prepared dir, teacher test AUC)."""
    from lptsim.ctr.data.prepare import prepare
    from lptsim.ctr.data.schema import CRITEO

    folder = Path(folder)
    raw = folder / "train.txt"
    prepared = folder / "prepared"
    spec_file = Path(f"{raw}.spec.json")
    if not (spec_file.exists() and __import__("json").loads(spec_file.read_text()) == asdict(spec)
            and (prepared / "manifest.json").exists()):
        write_criteo_text(raw, spec)
        prepare(raw, CRITEO, prepared, seed=spec.seed, progress=progress, force=True)  # its own cache
    return prepared, teacher_auc(raw, prepared)
