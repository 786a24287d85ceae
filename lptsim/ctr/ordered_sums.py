"""Sums in a fixed order: what the Triton kernels compute, so the torch reference matches them bit for bit.

Floating-point addition is not associative; torch's ``sum``, ``index_add_`` and ``F.embedding``'s backward add in
orders that differ between CPU and CUDA. The kernels add row elements column by column from 0, and the gradients
of duplicate ids in a fixed tree (:func:`ordered_segment_sum`); the reference path calls these functions. On the
CPU the segment sum runs as one numba pass (the same additions in the same order as the torch form, which serves
other devices).
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch


def ordered_row_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over dim 1 in column order 0, 1, ..., starting from 0: the order the Triton kernels sum in, so the
    torch reference and the kernels agree bit for bit (torch's own ``sum`` order is unspecified)."""
    acc = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for c in range(x.shape[1]):
        acc = acc + x[:, c]
    return acc


def sqrt_rn(x: torch.Tensor) -> torch.Tensor:
    """Correctly rounded float32 square root (the kernels' ``sqrt_rn``): torch's vectorised CPU ``sqrt`` is not
    (about 0.7% of float32 results are one ulp off); the float64 root rounded to float32 is."""
    return x.double().sqrt().to(x.dtype)


def div_rn(a: torch.Tensor, b: torch.Tensor | float) -> torch.Tensor:
    """``a / b`` correctly rounded on every device (the kernels' ``div_rn``). On CUDA, torch computes a tensor
    divided by a Python number (a CPU scalar) as ``a * (1 / b)``, two roundings; a divisor that is a tensor on
    ``a``'s device (here a 0-dim one, in ``a``'s dtype: a Python number is rounded to it, as a kernel's float
    argument is) takes the IEEE division everywhere."""
    if not isinstance(b, torch.Tensor):
        b = torch.full((), b, dtype=a.dtype, device=a.device)
    return torch.div(a, b)


SEGMENT_CHUNK = 32  # additions per lane and level of the kernels' run sums (ordered_segment_sum)


def ordered_segment_sum(values: torch.Tensor, index: torch.Tensor, num: int) -> torch.Tensor:
    """(num, dim): the rows of ``values`` (n, dim) added up per ``index`` value, in the kernels' fixed order.

    The rows of one index, in batch order (a stable sort), are summed in chunks: at level k (stride C**k,
    C = SEGMENT_CHUNK) the row at rank r of its run, with r % (stride * C) == 0, adds ranks r, r + stride, ...,
    r + (C - 1) * stride from 0; after the least L >= 1 levels with C**L >= n, rank 0 holds the sum. A run of
    at most C rows is thus summed plainly in batch order; a long run (a hot id) in a tree a GPU can share out.
    """
    if values.shape[0] and values.device.type == "cpu" and values.dtype in (torch.float32, torch.float64):
        return _ordered_segment_sum_cpu(values.contiguous(), index, num)
    return ordered_segment_sum_torch(values, index, num)


def ordered_segment_sum_torch(values: torch.Tensor, index: torch.Tensor, num: int) -> torch.Tensor:
    """:func:`ordered_segment_sum` in torch operations, on any device (the CPU runs the numba form)."""
    n, dim = values.shape
    out = torch.zeros(num, dim, dtype=values.dtype, device=values.device)
    if n == 0:
        return out
    sorted_idx, perm = torch.sort(index, stable=True)
    start = torch.searchsorted(sorted_idx, sorted_idx)
    end = torch.searchsorted(sorted_idx, sorted_idx, right=True)
    rank = torch.arange(n, device=values.device) - start
    buf = values[perm]
    stride = 1
    while True:
        heads = torch.nonzero(rank % (stride * SEGMENT_CHUNK) == 0).flatten()
        acc = torch.zeros(heads.numel(), dim, dtype=values.dtype, device=values.device)
        for i in range(SEGMENT_CHUNK):
            q = heads + i * stride
            ok = (q < end[heads]).unsqueeze(1)
            acc = torch.where(ok, acc + buf[q.clamp(max=n - 1)], acc)
        buf[heads] = acc
        stride *= SEGMENT_CHUNK
        if stride >= n:
            break
    first = rank == 0
    out[sorted_idx[first]] = buf[first]
    return out




@nb.njit(cache=True)
def _segment_sum_sorted(buf: np.ndarray, starts: np.ndarray, n: int, chunk: int) -> np.ndarray:
    """The levels of :func:`ordered_segment_sum` on rows already sorted by index (``starts``: run bounds), in
    place; returns the run sums. Each addition is the torch form's: float32, same operands, same order."""
    runs = starts.size - 1
    dim = buf.shape[1]
    acc = np.zeros(dim, dtype=buf.dtype)
    stride = 1
    while True:
        for k in range(runs):
            s, length = starts[k], starts[k + 1] - starts[k]
            for r in range(0, length, stride * chunk):
                acc[:] = 0
                for i in range(chunk):
                    q = r + i * stride
                    if q >= length:
                        break
                    for j in range(dim):
                        acc[j] = acc[j] + buf[s + q, j]
                for j in range(dim):
                    buf[s + r, j] = acc[j]
        stride *= chunk
        if stride >= n:
            break
    out = np.empty((runs, dim), dtype=buf.dtype)
    for k in range(runs):
        out[k] = buf[starts[k]]
    return out


def _ordered_segment_sum_cpu(values: torch.Tensor, index: torch.Tensor, num: int) -> torch.Tensor:
    n, dim = values.shape
    sorted_idx, perm = torch.sort(index, stable=True)
    ids, counts = torch.unique_consecutive(sorted_idx, return_counts=True)
    starts = np.zeros(ids.numel() + 1, dtype=np.int64)
    np.cumsum(counts.numpy(), out=starts[1:])
    buf = np.ascontiguousarray(values[perm].numpy())
    sums = _segment_sum_sorted(buf, starts, n, SEGMENT_CHUNK)
    out = torch.zeros(num, dim, dtype=values.dtype)
    out[ids] = torch.from_numpy(sums)
    return out
