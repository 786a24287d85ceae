"""Moving arrays between numpy and torch so the core works in one library (numpy)."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_torch(x: Any) -> bool:
    """True for a torch.Tensor (without importing torch when it is not loaded)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def to_numpy(x: Any) -> Any:
    """A numpy view or copy of a torch tensor; anything else is returned as it is."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    return x


def float_numpy(x: Any, name: str) -> tuple[np.ndarray, Any]:
    """``x`` as a contiguous float32/float64 numpy array, and what to convert back to."""
    if is_torch(x):
        import torch

        if not torch.is_floating_point(x):
            raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
        t = x.detach()
        if t.dtype != torch.float64:
            t = t.float()
        return np.ascontiguousarray(t.cpu().numpy()), x
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be a floating-point array, got dtype {arr.dtype}")
    dtype = np.float64 if arr.dtype == np.float64 else np.float32
    return np.ascontiguousarray(arr, dtype=dtype), None


def like(result: np.ndarray, template: Any) -> Any:
    """Return ``result`` in the library (and device) of ``template``; numpy if None."""
    if template is None:
        return result
    import torch

    return torch.from_numpy(result).to(template.device)
