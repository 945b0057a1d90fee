"""Shapes of every module, for the default and the paper's sizes."""

from __future__ import annotations

import pytest
import torch

from cmet.model.connector import CodeTokenizer, Connector, SpeechTokenizer, sinusoidal_positions


def test_tokenizers_shapes():
    x = torch.randn(3, 5, 19)
    assert CodeTokenizer(19, 32, 8, 2)(x).shape == (3, 5, 32)
    assert SpeechTokenizer(64, 32)(torch.randn(3, 64)).shape == (3, 1, 32)
    pe = sinusoidal_positions(7, 32)
    assert pe.shape == (7, 32) and torch.allclose(pe[0, 1::2], torch.ones(16))


def test_connector_sequence_and_head_shapes():
    m = Connector(
        d_speech=64,
        d_expr=10,
        d_model=32,
        n_layers=1,
        n_heads=2,
        ff_dim=64,
        window=5,
        conv_channels=8,
        conv_layers=2,
    ).eval()
    ref, a, x = torch.zeros(2, 5, 10), torch.randn(2, 64), torch.randn(2, 5, 10)
    assert m.tokens(ref, a, x).shape == (2, 11, 32)  # [T ref, 1 speech, T visual]
    assert m(ref, a, x).shape == (2, 5, 10)
    assert m.speech_token(a).shape == (2, 32)
    assert m.visual_feature(x).shape == (2, 32)
    # the head reads the LAST T outputs: changing the visual frames changes the prediction
    assert not torch.allclose(m(ref, a, x), m(ref, a, x + 1))


@pytest.mark.parametrize("name", ["cmet_small", "cmet_paper"])
def test_configs_build(name, compose_cfg):
    cfg = compose_cfg(f"model={name}")
    m = Connector.from_cfg(cfg.model, 1024, 10).eval()
    t = int(cfg.model.window)
    with torch.no_grad():
        out = m(torch.zeros(1, t, 10), torch.randn(1, 1024), torch.randn(1, t, 10))
    assert out.shape == (1, t, 10)
    if name == "cmet_paper":
        assert (cfg.model.d_model, cfg.model.n_layers, cfg.model.n_heads, cfg.model.ff_dim, t) == (
            1024,
            4,
            4,
            1024,
            5,
        )
        assert m.encoder.layers[0].self_attn.embed_dim == 1024 and len(m.encoder.layers) == 4


def test_bad_heads_is_config_error():
    from cmet.errors import ConfigError

    with pytest.raises(ConfigError, match="divisible"):
        Connector(64, 10, d_model=30, n_heads=4)
