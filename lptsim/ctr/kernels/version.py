"""The Triton version the kernels need, checked without importing them (so the check has no import cycle)."""

from __future__ import annotations

import re

MIN_TRITON = (3, 6)  # the oldest Triton the kernels are tested with (3.6 on the GPU machines, 3.9 here)


def triton_problem() -> str | None:
    """Why the installed Triton cannot run the kernels (absent, or older than :data:`MIN_TRITON`), or None."""
    try:
        import triton
    except ImportError:
        return "Triton is not installed (pip install 'lptsim[gpu]')"
    version = tuple(int(x) for x in re.findall(r"\d+", triton.__version__)[:2])
    if version < MIN_TRITON:
        return (f"lptsim's kernels need Triton >= {'.'.join(map(str, MIN_TRITON))} (tested with 3.6 and 3.9); this "
                f"is Triton {triton.__version__}")
    return None


def check_triton() -> None:
    """Raise ImportError with :func:`triton_problem`'s message where the kernels cannot run."""
    problem = triton_problem()
    if problem:
        raise ImportError(problem)
