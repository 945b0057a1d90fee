"""Autoregressive inference, intensity, blends (fast: a recording model and the tiny bundle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cmet.infer import autoregressive_offsets, blend, predict_offsets_batch, speech_difference


class Recorder(torch.nn.Module):
    """A fake connector: offset = mean of its inputs + chunk counter; records the references."""

    window = 5

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.refs = []

    def forward(self, ref, a, x):
        self.refs.append(ref.clone())
        return x * 0 + a[:, :1, None] + len(self.refs)


def test_autoregressive_chunks_and_reference():
    m = Recorder()
    codes = torch.randn(2, 12, 3)  # 12 frames, T=5 -> 3 chunks, last one padded
    a = torch.tensor([[10.0], [20.0]])
    out = autoregressive_offsets(m, codes, a, 5)
    assert out.shape == (2, 12, 3)
    assert len(m.refs) == 3
    assert torch.all(m.refs[0] == 0)  # zeros for the first chunk
    for c in (1, 2):  # then the previous chunk's prediction
        assert torch.allclose(m.refs[c], a[:, :1, None] + c + torch.zeros(2, 5, 3))
    assert torch.allclose(out[:, 10:], a[:, :1, None] + 3 + torch.zeros(2, 2, 3))


def test_batch_equals_single(tiny_bundle, tiny_features):
    test = tiny_features.split("test")
    seqs = [test.frames(i) for i in range(3)]
    a = np.random.default_rng(0).standard_normal((3, test.d_speech)).astype(np.float32)
    batch = predict_offsets_batch(tiny_bundle.connector, seqs, a)
    for s, av, o in zip(seqs, a, batch, strict=True):
        single = predict_offsets_batch(tiny_bundle.connector, [s], av[None])[0]
        assert o.shape == s.shape
        np.testing.assert_allclose(o, single, atol=1e-5)


def _neutral_clip(fs):
    test = fs.split("test")
    i = int(np.flatnonzero(test.clips["emotion"].to_numpy() == "neutral")[0])
    return test.frames(i)


def test_intensity_zero_returns_input_exactly(tiny_bundle, tiny_features):
    codes = _neutral_clip(tiny_features)
    np.testing.assert_array_equal(tiny_bundle.edit_codes(codes, "happy", intensity=0.0), codes)


@pytest.mark.parametrize("emotion", ["happy", "angry", "surprised"])
def test_edit_size_grows_with_intensity(tiny_bundle, tiny_features, emotion):
    codes = _neutral_clip(tiny_features)
    sizes = [
        float(np.linalg.norm(tiny_bundle.predict_offsets(codes, emotion, intensity=s).mean(0)))
        for s in (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)
    ]
    assert sizes[0] == 0.0
    assert all(b > a for a, b in zip(sizes, sizes[1:], strict=False)), sizes


def test_intensity_vector_scales_linearly():
    rng = np.random.default_rng(0)
    t, n = rng.standard_normal((10, 8)), rng.standard_normal((10, 8))
    a1, a2 = speech_difference(t, n, 1.0), speech_difference(t, n, 2.0)
    np.testing.assert_allclose(a2, 2 * a1, rtol=1e-5)
    assert np.linalg.norm(a1) == pytest.approx(np.linalg.norm(t.mean(0) - n.mean(0)), rel=1e-5)
    assert np.all(speech_difference(t, n, 0.0) == 0)


def test_blend_is_weighted_sum(tiny_bundle):
    b = tiny_bundle
    mix = b.semantic_speech_vector({"happy": 0.3, "sad": 0.7})
    expected = 0.3 * b.semantic_speech_vector("happy") + 0.7 * b.semantic_speech_vector("sad")
    np.testing.assert_allclose(mix, expected, rtol=1e-5, atol=1e-6)
    assert blend({"x": np.ones(3)}, {"x": 2.0}).tolist() == [2.0, 2.0, 2.0]


def test_neutral_to_neutral_is_near_zero(tiny_run, tiny_bundle, tiny_features):
    codes = _neutral_clip(tiny_features)
    # the neutral bank against itself: a = 0 exactly -> the learned map must give ~0 at the origin
    nn = np.linalg.norm(tiny_bundle.predict_offsets(codes, "neutral").mean(0))
    emo = np.mean(
        [
            np.linalg.norm(tiny_bundle.predict_offsets(codes, e).mean(0))
            for e in ("angry", "happy", "sad", "surprised")
        ]
    )
    assert nn < 0.2 * emo, (nn, emo)
    # disjoint neutral clips of a held-out identity (speech difference = content + noise only)
    metrics = tiny_run[0]
    assert metrics["nn_norm/cmet"] < 0.6 * metrics["v_norm"], (metrics["nn_norm/cmet"], metrics["v_norm"])
