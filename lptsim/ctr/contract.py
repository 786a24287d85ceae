"""The low-precision table's numerical contract: what the torch reference and the Triton kernels agree on.

Both backends import these names (the kernels as ``tl.constexpr`` globals); none of them is written as a bare
number anywhere else. It sits beside :mod:`lptsim.ctr.table` rather than inside it: the kernels
(:mod:`lptsim.ctr.kernels`), a layer below the table, import it, and the table package imports the kernels.

**Random draws.** Every random number a table uses is a Philox uniform (:mod:`lptsim.quant.philox`) at a
(key, counter) pair. The key of a table's update ``t`` (t = 1, 2, ...: the write-backs done so far, plus one) is
``step_seed(seed, t)``; the initial table uses ``t = 0`` (:data:`INIT_UPDATE`). Under one key, each named
:class:`Stream` owns its own counter range: the stream's number in the top bits, the global element (or row,
or step) index below (:func:`counter`). So no two streams can draw the same (key, counter) pair: the initial
values, their rounding, the SR write-back and every 16-bit state buffer are independent by construction. Each
stream keys its draws by *global* index (``row_offset`` included), so a shard draws exactly what the whole table
would, and a draw never depends on which rows share a batch.

**Optimizers.** Row optimizers (``sgd``, row-wise ``adagrad``, ``adam`` with a global step count) and ALPT's
step optimizers (``adam``, ``adagrad``, ``sgd``) have one integer coding each for the kernels
(:data:`OPT_CODE`, :data:`STEP_MODE`); their constants (betas, eps) live here.
"""

from __future__ import annotations

import zlib
from enum import IntEnum

# -- optimizers -------------------------------------------------------------------------------------------------
ROW_OPTIMIZERS = ("sgd", "adagrad", "adam")
STEP_OPTIMIZERS = ("adam", "adagrad", "sgd")
DEFAULT_ROW_LR = {"sgd": 0.1, "adagrad": 0.01, "adam": 1e-3}
ROW_BETAS, ROW_EPS = (0.9, 0.999), 1e-8  # Adam / Adagrad on the rows (torch.optim's defaults)
STEP_BETAS, STEP_EPS = (0.9, 0.999), 1e-12  # Adam / Adagrad on ALPT's step sizes
OPT_CODE = {"sgd": 0, "adagrad": 1, "adam": 2}  # the kernels' OPT: the row optimizer
STEP_MODE = {None: 0, "sgd": 1, "adam": 2, "adagrad": 3}  # the kernels' STEP_MODE: 0 = fixed steps (LPT)
STEP_KIND = {"table": 0, "row": 1, "field": 2}  # the kernels' STEP_KIND: one step, per row, indexed per row

POWER_BITS = 63  # bias corrections: binary powering over the low 63 bits of the step count (any int64 count)


def bias_correction(beta: float, t: int) -> float:
    """Adam's ``1 - beta**t`` as the kernels compute it, rounded to float32 (returned as a Python float).

    ``beta**t`` by binary powering in float64 over :data:`POWER_BITS` bits (each product an IEEE multiply, the
    same on every device), not by a library ``pow`` (CUDA's float64 ``pow`` and Python's ``**`` may differ in the
    last bit, and the float32 rounding can then differ too). The Triton kernels run the same loop on the device.
    """
    import numpy as np

    p, b, e = 1.0, float(beta), int(t)
    for _ in range(POWER_BITS):
        if e & 1:
            p = p * b
        b = b * b
        e >>= 1
    return float(np.float32(1.0 - p))


# -- random streams ---------------------------------------------------------------------------------------------
INIT_UPDATE = 0  # the key of the initial table's draws is step_seed(seed, INIT_UPDATE); updates count from 1
STREAM_SHIFT = 56  # counter = stream << STREAM_SHIFT | index: 2**56 indices per stream
MAX_INDEX = 1 << STREAM_SHIFT


class Stream(IntEnum):
    """The named random streams of a table; each draws in its own counter range (see the module docstring)."""

    INIT_VALUES = 1  # Box-Muller inputs of the initial rows: counters 2e and 2e + 1 for element e
    INIT_ROUNDING = 2  # stochastic rounding of the initial rows: counter e
    WRITE_BACK = 3  # SR of the codes written back by an update: counter e
    ROW_SUM_SQ = 4  # 16-bit state writes, one stream per buffer: row-wise Adagrad (counter: row)
    ROW_EXP_AVG = 5  # Adam's first moment (counter: e)
    ROW_EXP_AVG_SQ = 6  # Adam's second moment (counter: e)
    STEP_SUM_SQ = 7  # ALPT's step state (counter: the step's index)
    STEP_M = 8
    STEP_V = 9
    STEP = 10  # the steps themselves


def counter_base(stream: Stream) -> int:
    """The first counter of ``stream``'s range (index 0)."""
    return int(stream) << STREAM_SHIFT


def counter(stream: Stream, index: int) -> int:
    """The counter of ``index`` (a global element, row or step index, < 2**56) in ``stream``."""
    if not 0 <= index < MAX_INDEX:
        raise ValueError(f"stream index {index} is outside [0, 2**{STREAM_SHIFT})")
    return counter_base(stream) | index


def step_seed(seed: int, step: int) -> int:
    """The Philox key of a table's update ``step`` (0: the initial table): splitmix64 of (seed, step)."""
    z = (seed * 0x9E3779B97F4A7C15 + step + 1) & (2**64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return z ^ (z >> 31)


def table_seed(run_seed: int, name: str) -> int:
    """The seed of the table ``name`` of a run: derived from the run's seed and the table's name, never from the
    order tables happen to be built in (so a sharded run, which builds its tables differently, gets the same)."""
    return step_seed(run_seed, zlib.crc32(name.encode()))


__all__ = ["ROW_OPTIMIZERS", "STEP_OPTIMIZERS", "DEFAULT_ROW_LR", "ROW_BETAS", "ROW_EPS", "STEP_BETAS", "STEP_EPS",
           "OPT_CODE", "STEP_MODE", "STEP_KIND", "INIT_UPDATE", "STREAM_SHIFT", "MAX_INDEX", "Stream", "counter_base",
           "counter", "step_seed", "table_seed", "POWER_BITS", "bias_correction"]
