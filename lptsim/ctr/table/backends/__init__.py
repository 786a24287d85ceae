"""Where a table's lookups and updates run: the torch reference or the Triton kernels, chosen once per placement.

Both backends offer the same verbs to the table and the :class:`~lptsim.ctr.table.optim.TableOptimizer`:
``lookup(ids, record)`` (rows, and the record of a training lookup), ``gather(rows)``, ``row_grads(touched)``,
``stage(touched, group)``, ``second_pass(touched)`` and ``commit(touched, group)``.
"""

from __future__ import annotations

import torch

from lptsim.ctr import kernels
from lptsim.ctr.table.backends.torch_reference import TorchBackend
from lptsim.ctr.table.backends.triton_launch import TritonBackend, coverage


class BackendError(ValueError):
    """The requested backend cannot serve this table (the message says why and what to use instead)."""


def check_backend(config, num_embeddings: int) -> None:
    """At construction: refuse ``backend="triton"`` for a configuration the kernels do not cover."""
    why = coverage(config, num_embeddings) if config.backend == "triton" else None
    if why:
        raise BackendError(f"backend='triton' cannot serve this table: {why}; use backend='torch' (or 'auto', which "
                           "runs the kernels where they apply)")


def choose_backend(table, device: torch.device):
    """The backend of ``table`` on ``device``: ``torch`` always the reference; ``triton`` the kernels (an error
    where they cannot run); ``auto`` the kernels for CUDA tables they cover, the reference otherwise."""
    cfg = table.config
    if cfg.backend == "torch" or not cfg.quantized:
        return TorchBackend(table)
    covered = coverage(cfg, table.num_embeddings) is None
    if cfg.backend == "triton":
        if kernels.triton_problem():
            raise BackendError(f"backend='triton': {kernels.triton_problem()}; use backend='torch' or 'auto'")
        if not kernels.available(device):
            raise BackendError(f"backend='triton' needs a CUDA device or TRITON_INTERPRET=1 (the table is on "
                               f"{device}); use backend='torch' or 'auto'")
        return TritonBackend(table)
    if device.type == "cuda" and covered and kernels.available(device):
        return TritonBackend(table)
    return TorchBackend(table)


__all__ = ["BackendError", "TorchBackend", "TritonBackend", "check_backend", "choose_backend", "coverage"]
