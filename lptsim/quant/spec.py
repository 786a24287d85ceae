"""QuantSpec: the signed integer range that ``bits`` bits of code can hold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_BITS = 1
MAX_BITS = 16


@dataclass(frozen=True)
class QuantSpec:
    """Signed ``bits``-bit codes: ``qmin = -2**(bits-1)``, ``qmax = 2**(bits-1) - 1``.

    >>> QuantSpec(4).qmin, QuantSpec(4).qmax
    (-8, 7)
    """

    bits: int

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)):
            raise ValueError(f"bits must be an integer in [{MIN_BITS}, {MAX_BITS}], got {self.bits!r}")
        if not MIN_BITS <= int(self.bits) <= MAX_BITS:
            raise ValueError(f"bits must be in [{MIN_BITS}, {MAX_BITS}], got {self.bits}")
        object.__setattr__(self, "bits", int(self.bits))

    @property
    def qmin(self) -> int:
        """Smallest code, ``-2**(bits-1)``."""
        return -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        """Largest code, ``2**(bits-1) - 1``."""
        return (1 << (self.bits - 1)) - 1

    @property
    def levels(self) -> int:
        """Number of representable codes, ``2**bits``."""
        return 1 << self.bits

    @property
    def code_dtype(self) -> np.dtype:
        """Smallest numpy signed integer type that holds every code (int8 or int16)."""
        return np.dtype(np.int8) if self.bits <= 8 else np.dtype(np.int16)
