"""Each loss, with numerical checks."""

from __future__ import annotations

import math

import pytest
import torch

from cmet.errors import ConfigError
from cmet.model.losses import direction_loss, focal_mse, recon_loss, supcon_loss


def test_focal_mse_numerical():
    x = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    y = torch.tensor([[0.0, 0.0], [0.0, 0.0]])

    def f(d):
        return d * d * (2 / (1 + math.exp(-0.2 * abs(d))) - 1)

    expected = (f(1.0) + f(-2.0) + f(0.0) + f(3.0)) / 4
    assert focal_mse(x, y, 0.2).item() == pytest.approx(expected, rel=1e-6)
    # f(1) = 1 * (2*sigmoid(0.2) - 1) = tanh(0.1)
    assert f(1.0) == pytest.approx(math.tanh(0.1))
    assert focal_mse(y, y).item() == 0.0


def test_recon_kinds():
    x, y = torch.ones(2, 5, 3), torch.zeros(2, 5, 3)
    assert recon_loss(x, y, "mse").item() == pytest.approx(1.0)
    assert recon_loss(x, y, "l1").item() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="recon"):
        recon_loss(x, y, "huber")


def test_direction_loss_zero_for_opposite():
    v = torch.randn(4, 5, 10)
    assert direction_loss(v, -v).item() == pytest.approx(0.0, abs=1e-6)
    assert direction_loss(v, -2.5 * v, squared=False).item() == pytest.approx(0.0, abs=1e-6)
    assert direction_loss(v, v).item() == pytest.approx(4.0, rel=1e-5)  # (1 + 1)^2
    assert direction_loss(v, v, squared=False).item() == pytest.approx(2.0, rel=1e-5)


def test_supcon_prefers_aligned_pairs():
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    protos = torch.randn(3, 16)
    s = protos[labels] + 0.05 * torch.randn(6, 16)
    v_aligned = protos[labels] + 0.05 * torch.randn(6, 16)
    v_shuffled = protos[labels[[2, 3, 4, 5, 0, 1]]]
    good, bad = supcon_loss(s, v_aligned, labels), supcon_loss(s, v_shuffled, labels)
    assert good < bad
    # lower bound: log(#positives) per anchor when positives are perfectly separated
    assert good.item() >= math.log(2) - 1e-3


def test_supcon_temperature_matters():
    torch.manual_seed(1)
    labels = torch.arange(8)
    s, v = torch.randn(8, 16), torch.randn(8, 16)
    assert supcon_loss(s, v, labels, 0.1).item() != pytest.approx(supcon_loss(s, v, labels, 1.0).item())
