"""The keyed initial rows built on the device (lptsim.ctr.kernels.init_rows) against the CPU's, bit for bit.

The reference is the CPU construction (normal_rows + initial_codes + CodeStore's numpy packing), independent code
that shares only the Philox core. Without CUDA the kernel runs in the interpreter (tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("triton")

from lptsim.ctr.embedding import LowPrecisionEmbedding  # noqa: E402
from lptsim.ctr.kernels import init_rows  # noqa: E402
from lptsim.ctr.table.state import state_tensors  # noqa: E402
from lptsim.ctr.table.store import initial_rows_on  # noqa: E402
from lptsim.quant import pack, unpack  # noqa: E402

ROWS, DIM, OFFSET = 300, 13, 77  # an odd dim: padded rows below 8 bits; an offset: a shard's global counters


def _stored(table) -> torch.Tensor:
    return table.codes.data if table.config.quantized else table.weight


@pytest.mark.parametrize("bits", [2, 3, 8, 16, None])
@pytest.mark.parametrize("rounding", ["stochastic", "nearest"])
def test_device_rows_equal_the_cpu_construction(bits, rounding):
    options = dict(method="fp") if bits is None else dict(bits=bits, method="alpt")
    ref = LowPrecisionEmbedding(ROWS, DIM, row_offset=OFFSET, seed=5, init_rounding=rounding, init_std=0.05,
                                **options)
    got = initial_rows_on("cpu", ref.config, ROWS, DIM, OFFSET)
    want = _stored(ref)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert torch.equal(got, want), int((got != want).sum())
    if bits is not None and bits <= 8:  # not a trivial table: the codes spread over the range
        codes = unpack(want, bits, (ROWS, ref.codes.padded_dim)) if bits < 8 else want
        assert len(torch.unique(codes[:, :DIM])) >= min(2**bits, 4)


def test_device_rows_do_not_depend_on_the_chunking(monkeypatch):
    """Counters are global elements: building in launches of 7 rows gives the one-launch table."""
    ref = LowPrecisionEmbedding(40, DIM, bits=3, method="alpt", seed=2, init_std=0.05)
    whole = initial_rows_on("cpu", ref.config, 40, DIM, 0)
    monkeypatch.setattr(init_rows, "CHUNK_ROWS", 7)
    assert torch.equal(initial_rows_on("cpu", ref.config, 40, DIM, 0), whole)


def test_device_rows_see_the_seed_and_the_offset():
    """The comparison above can fail: another seed, or the rows of another shard, differ."""
    ref = LowPrecisionEmbedding(ROWS, DIM, bits=8, method="alpt", seed=5, init_std=0.05)
    base = initial_rows_on("cpu", ref.config, ROWS, DIM, 0)
    assert not torch.equal(initial_rows_on("cpu", ref.config.replace(seed=6), ROWS, DIM, 0), base)
    assert not torch.equal(initial_rows_on("cpu", ref.config, ROWS, DIM, 1), base)
    assert torch.equal(initial_rows_on("cpu", ref.config, ROWS - 1, DIM, 1), base[1:])


@pytest.mark.parametrize("bits", range(1, 8))
def test_pack_codes_is_lptsim_pack_per_row(bits):
    rng = np.random.default_rng(bits)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    per_byte = 8 // np.gcd(8, bits)
    codes = rng.integers(lo, hi + 1, size=(9, 2 * per_byte))
    got = init_rows.pack_codes(torch.from_numpy(codes).to(torch.int16), bits)
    want = np.stack([pack(row.astype(np.int8), bits) for row in codes])
    np.testing.assert_array_equal(got.numpy(), want)


def test_device_table_needs_the_kernels(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    ref = LowPrecisionEmbedding(8, 4, bits=2, method="alpt")
    with pytest.raises(ValueError, match="device='cpu'.*Triton"):
        initial_rows_on("cpu", ref.config, 8, 4, 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_table_built_on_cuda_equals_the_cpu_table():
    options = dict(bits=2, method="alpt", seed=3, init_std=0.05)
    cpu = LowPrecisionEmbedding(5000, 16, **options)
    gpu = LowPrecisionEmbedding(5000, 16, device="cuda", **options)
    a, b = state_tensors(cpu), state_tensors(gpu)
    assert a.keys() == b.keys()
    for name in a:
        # libdevice's float64 log/cos may differ from numpy's by an ulp: a code can change only where the value
        # lies within an ulp of a float32 rounding boundary (about 2**-28 per element), so none is expected here
        assert torch.equal(a[name], b[name].cpu()), name
