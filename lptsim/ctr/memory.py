"""Training memory of an embedding table, computed without allocating it.

``memory_plan(num_rows, dim, bits, ...)`` returns the bytes each part of a table would hold
(codes, steps, row optimizer state, step optimizer state, counters): the numbers
``LowPrecisionEmbedding(...).memory_bytes()`` (lptsim.ctr.embedding) reports once allocated, for tables of any size
(e.g. Criteo's 33.76M rows), so a configuration can be sized before it is built.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from lptsim.ctr.contract import ROW_OPTIMIZERS, STEP_OPTIMIZERS
from lptsim.ctr.table.config import METHODS, STEP_GRANULARITIES
from lptsim.ctr.table.store import code_row_bytes
from lptsim.quant import QuantSpec
from lptsim.quant.floats import float_dtype

COUNTER_BYTES = 8  # an int64 counter (updates, Adam's step count)


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes by part; ``total`` is what ``memory_bytes()`` reports for the allocated table."""

    table: int  # codes (LPT/ALPT) or FP32 weights (fp, lsq, pact)
    steps: int  # step sizes (and, per field, the field boundaries)
    row_state: int  # the row optimizer's state (or, for lsq/pact, the dense Adam's two moments)
    step_state: int  # ALPT's step optimizer state
    counters: int

    @property
    def total(self) -> int:
        return self.table + self.steps + self.row_state + self.step_state + self.counters

    def per_row(self, num_rows: int) -> float:
        """Average bytes per row."""
        return self.total / num_rows

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


def memory_plan(num_rows: int, dim: int, bits: int = 8, method: str = "alpt", optimizer: str = "adagrad",
                step_optimizer: str = "adam", step_granularity: str = "row", num_fields: int = 1,
                state_dtype: str = "float32") -> MemoryPlan:
    """Bytes a table with these settings holds in training (see :class:`MemoryPlan`)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if optimizer not in ROW_OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {ROW_OPTIMIZERS}, got {optimizer!r}")
    if step_optimizer not in STEP_OPTIMIZERS:
        raise ValueError(f"step_optimizer must be one of {STEP_OPTIMIZERS}, got {step_optimizer!r}")
    if step_granularity not in STEP_GRANULARITIES:
        raise ValueError(f"step_granularity must be one of {STEP_GRANULARITIES}, got {step_granularity!r}")
    if num_rows < 1 or dim < 1 or num_fields < 1:
        raise ValueError(f"num_rows, dim and num_fields must be >= 1, got {num_rows}, {dim}, {num_fields}")
    QuantSpec(bits)
    size = float_dtype(state_dtype).itemsize
    fp32 = 4 * num_rows * dim
    if method == "lsq":  # FP32 weights + a step per row, each with the dense Adam's two moments
        return MemoryPlan(fp32, 4 * num_rows, 2 * (fp32 + 4 * num_rows), 0, 0)
    if method == "pact":  # FP32 weights + one clip value
        return MemoryPlan(fp32, 4, 2 * (fp32 + 4), 0, 0)
    row_state = {"sgd": 0, "adagrad": num_rows * size, "adam": 2 * num_rows * dim * size}[optimizer]
    counters = COUNTER_BYTES if optimizer == "adam" else 0
    if method == "fp":
        return MemoryPlan(fp32, 0, row_state, 0, counters + (COUNTER_BYTES if size < 4 else 0))
    n_steps = {"row": num_rows, "table": 1, "field": num_fields}[step_granularity]
    steps = n_steps * size + (COUNTER_BYTES * num_fields if step_granularity == "field" else 0)
    step_state = 0
    if method == "alpt":
        step_state = {"sgd": 0, "adagrad": n_steps * size, "adam": 2 * n_steps * size}[step_optimizer]
    return MemoryPlan(num_rows * code_row_bytes(dim, bits), steps, row_state, step_state, counters + COUNTER_BYTES)


def plan_table(num_rows: int = 33_760_000, dim: int = 16, num_fields: int = 39) -> str:
    """A markdown table of training memory for a table of this size: FP32 with each row optimizer, then ALPT at
    2/4/8 bits for each step granularity, step optimizer and state dtype (row-wise Adagrad on the rows)."""
    gb = 1e9
    lines = [f"{num_rows:,} x {dim} table ({num_fields} fields); GB = 10^9 bytes; B/row beside codes = training "
             "state beyond the codes", "",
             "| method | bits | row optimizer | steps | step optimizer | state dtype | GB | B/row | B/row beside codes "
             "| vs FP32 + Adam |", "|---|---|---|---|---|---|---|---|---|---|"]
    base = memory_plan(num_rows, dim, 8, "fp", "adam").total
    for opt in ("adam", "adagrad", "sgd"):
        p = memory_plan(num_rows, dim, 8, "fp", opt)
        lines.append(f"| fp | 32 | {opt} | | | float32 | {p.total / gb:.2f} | {p.per_row(num_rows):.1f} | "
                     f"{(p.total - p.table) / num_rows:.1f} | {base / p.total:.1f}x |")
    for bits in (2, 4, 8):
        for gran in ("row", "field", "table"):
            for step_opt in ("adam", "adagrad", "sgd"):
                for dtype in ("float32", "bfloat16"):
                    p = memory_plan(num_rows, dim, bits, "alpt", "adagrad", step_opt, gran, num_fields, dtype)
                    lines.append(f"| alpt | {bits} | adagrad | {gran} | {step_opt} | {dtype} | {p.total / gb:.2f} | "
                                 f"{p.per_row(num_rows):.1f} | {(p.total - p.table) / num_rows:.1f} | "
                                 f"{base / p.total:.1f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(plan_table())
