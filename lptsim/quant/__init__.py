"""The single quantization core: every rounding in lptsim goes through here.

>>> from lptsim.quant import QuantSpec, quantize, dequantize
>>> import numpy as np
>>> quantize(np.array([0.26, -0.74], dtype=np.float32), 0.5, QuantSpec(4), "nearest").tolist()
[1, -1]
"""

from lptsim.quant.lsq import lsq_step_grad
from lptsim.quant.packing import pack, packed_nbytes, unpack
from lptsim.quant.philox import uniforms
from lptsim.quant.rounding import ROUNDINGS, dequantize, quantize
from lptsim.quant.spec import QuantSpec

__all__ = [
    "QuantSpec",
    "quantize",
    "dequantize",
    "pack",
    "unpack",
    "packed_nbytes",
    "lsq_step_grad",
    "uniforms",
    "ROUNDINGS",
]
