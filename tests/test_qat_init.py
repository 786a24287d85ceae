"""QAT baselines cannot start dead: LSQ's initial step follows its paper (2 <|w|> / sqrt(Qp), per row) and PACT's
clip is set the same way, so a 4-bit model's predictions differ between rows after its first step. The control,
the fixed initial step clip / 2^(bits-1) of lptsim 0.2 (``qat_init="clip"``), is shown dead on the same data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lptsim.ctr.data.dataset import PreparedData
from lptsim.ctr.data.synthetic import SyntheticSpec, synthetic_prepared
from lptsim.ctr.embedding import LowPrecisionEmbedding
from lptsim.ctr.train import TrainConfig, batch_loss, make_model, parameter_groups
from lptsim.quant import QuantSpec, quantize


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> PreparedData:
    prepared, _ = synthetic_prepared(tmp_path_factory.mktemp("syn"), SyntheticSpec(rows=2000, seed=5))
    return PreparedData.load(prepared)


def predictions_after_one_step(data: PreparedData, method: str, qat_init: str) -> np.ndarray:
    """A 4-bit DCN (init_std 1e-4, the default) after one Adam step on 256 training rows: its predictions on the
    held-out test rows."""
    torch.manual_seed(0)
    cfg = TrainConfig(model="dcn", method=method, bits=4, hidden=(32, 32), cross_layers=2,
                      embedding_options={"qat_init": qat_init})
    model = make_model(cfg, data)
    opt = torch.optim.Adam(parameter_groups(model, 0.0), lr=cfg.lr)
    ids = torch.as_tensor(np.array(data.ids["train"][:256]), dtype=torch.int64)
    y = torch.as_tensor(np.array(data.labels["train"][:256]), dtype=torch.float32)
    model.train()
    batch_loss(model(ids), y, 1, y.numel()).backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        test = torch.as_tensor(np.array(data.ids["test"]), dtype=torch.int64)
        return torch.sigmoid(model(test)).double().numpy()


@pytest.mark.parametrize("method", ["lsq", "pact"])
def test_qat_starts_alive_and_the_old_init_starts_dead(data, method):
    alive = predictions_after_one_step(data, method, "weights")
    dead = predictions_after_one_step(data, method, "clip")
    # control: every code 0, so every row's input is the same zeros and so is every prediction
    assert np.ptp(dead) == 0
    # many distinct predictions, not a few rows that escaped (float noise alone would not spread them this far)
    assert np.unique(alive).size > 0.9 * alive.size and np.ptp(alive) > 1e-4


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_lsq_initial_step_is_the_papers_and_gives_every_row_a_nonzero_code(bits):
    emb = LowPrecisionEmbedding(500, 16, bits=bits, method="lsq", init_std=1e-4)
    w = emb.weight.detach().double()
    qp = max(QuantSpec(bits).qmax, 1)
    expected = 2 * w.abs().mean(dim=1) / math.sqrt(qp)  # Esser et al. (2020), sec. 2.1, row by row
    torch.testing.assert_close(emb.steps().double(), expected, rtol=1e-6, atol=0)
    codes = quantize(emb.weight.detach(), emb.steps().unsqueeze(1), emb.spec, "nearest")
    assert bool((codes != 0).any(dim=1).all())  # the proof in lptsim.ctr.qat: the row's largest |w| is not 0
    if bits <= 4:  # the dead start it replaces: half the fixed step (0.05 / 2^bits >= 3e-3) is 30 sigma
        old = LowPrecisionEmbedding(500, 16, bits=bits, method="lsq", init_std=1e-4, qat_init="clip")
        old_codes = quantize(old.weight.detach(), old.steps().unsqueeze(1), old.spec, "nearest")
        assert bool((old_codes == 0).all())


def test_pact_initial_clip():
    emb = LowPrecisionEmbedding(500, 16, bits=4, method="pact", init_std=1e-4)
    # qmax LSQ steps of the expected magnitude of N(0, 1e-4^2): 7 * 2 * 1e-4 * sqrt(2/pi) / sqrt(7)
    assert float(emb.alpha().detach()) == pytest.approx(2 * math.sqrt(7) * 1e-4 * math.sqrt(2 / math.pi), rel=1e-6)
