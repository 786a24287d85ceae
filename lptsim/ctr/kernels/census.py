"""A census of one training step of a table: the device launches it issues and the scratch bytes it allocates.

Counted by observation, not by reading the code: every Triton kernel launch (``JITFunction.run``, also under the
interpreter), and every torch operator the step dispatches (a :class:`~torch.utils._python_dispatch.TorchDispatchMode`).
Views and pure allocations (``empty*``) issue no device work; every other operator is a launch (on CUDA a kernel,
a fill or a copy). Scratch bytes are the bytes of the fresh tensors the step allocates (outputs of non-view,
non-in-place operators, ``empty*`` included): the table's own buffers are updated in place and are not counted.
The structural test (tests/test_kernels_census.py) bounds both; docs/scaling.md models their cost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes

_ALLOC = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"}
_FREE = {"detach", "lift_fresh", "alias", "_local_scalar_dense", "_record_function_enter_new",
         "_record_function_exit"}  # no device work of their own


@dataclass
class Census:
    """What one step issued: launches by name (``triton:<kernel>`` or ``aten:<op>``) and scratch bytes."""

    launches: Counter = field(default_factory=Counter)
    scratch_bytes: int = 0

    @property
    def total_launches(self) -> int:
        return sum(self.launches.values())

    @property
    def triton_launches(self) -> int:
        return sum(v for k, v in self.launches.items() if k.startswith("triton:"))


class _Ops(TorchDispatchMode):
    def __init__(self, census: Census):
        super().__init__()
        self.census = census

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        schema = func._schema
        writes = any(r.alias_info is not None and r.alias_info.is_write for r in schema.returns)  # in place / out=
        view = not writes and any(r.alias_info is not None for r in schema.returns)
        if name in _ALLOC:
            self.census.scratch_bytes += _nbytes(out)
        elif writes:  # a launch that writes an existing tensor: no new bytes
            self.census.launches[f"aten:{name}"] += 1
        elif not view and name not in _FREE:
            self.census.launches[f"aten:{name}"] += 1
            self.census.scratch_bytes += _nbytes(out)
        return out


def _nbytes(out) -> int:
    if isinstance(out, torch.Tensor):
        return out.numel() * out.element_size()
    if isinstance(out, tuple | list):
        return sum(_nbytes(o) for o in out)
    return 0


@contextmanager
def counting() -> Census:
    """Count launches and scratch bytes of what runs inside (yields the :class:`Census`, filled on exit)."""
    from triton.runtime import jit as triton_jit

    census = Census()
    classes = {triton_jit.JITFunction}
    interp = getattr(__import__("triton.runtime.interpreter", fromlist=["x"]), "InterpretedFunction", None)
    if interp is not None:
        classes.add(interp)
    saved = {cls: cls.run for cls in classes}

    def wrap(run):
        def counted(self, *args, **kwargs):
            census.launches[f"triton:{getattr(self, '__name__', None) or self.fn.__name__}"] += 1
            with _disable_current_modes():  # the interpreter's own copies are not the step's
                return run(self, *args, **kwargs)
        return counted

    for cls, run in saved.items():
        cls.run = wrap(run)
    try:
        with _Ops(census):
            yield census
    finally:
        for cls, run in saved.items():
            cls.run = run


def step_census(step: Callable[[], None]) -> Census:
    """The census of one call of ``step`` (run it once before, so that compiling and caching are not counted)."""
    with counting() as census:
        step()
    return census
