"""Encoders behind one interface: prosody (default), hf (tiny models built here), emotion2vec, precomputed;
the content-hash cache."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.audio import get_encoder
from cmet.audio.cache import encode_cached
from cmet.audio.dsp import yin_pitch
from cmet.audio.prosody import describe, feature_names
from cmet.errors import AudioError, ConfigError, ModelError


@pytest.mark.parametrize("f0", [90.0, 150.0, 320.0])
def test_yin_finds_the_pitch(tone, f0):
    est, ap = yin_pitch(tone(f0, 16000, 0.6).astype(np.float64))
    v = est[est > 0]
    assert v.size > 0.8 * est.size
    assert abs(np.median(v) / f0 - 1) < 0.02


def test_prosody_descriptor_tracks_pitch_loudness_and_brightness(tone):
    names = feature_names()
    low, high = describe(tone(120)), describe(tone(240))
    assert low.shape == (len(names),) and low.dtype == np.float32
    i = names.index("f0_mean")
    # one octave = 12 semitones = 1.2 in the descriptor's units (semitones / 10)
    assert abs((high[i] - low[i]) - 1.2) < 0.1
    dull, bright = describe(tone(150, n_harm=3)), describe(tone(150, n_harm=30))
    assert bright[names.index("centroid_mean")] > dull[names.index("centroid_mean")]
    assert np.array_equal(describe(tone(150)), describe(tone(150)))  # deterministic


def test_prosody_encoder_interface_and_short_clip(tone):
    enc = get_encoder({"encoder": "prosody", "progress": False})
    out = enc.encode([tone(120, dur=0.8), tone(200, dur=1.3)])
    assert out.shape == (2, enc.dim) and enc.dim == len(feature_names())
    with pytest.raises(AudioError, match="needs at least"):
        enc.encode([tone(120, dur=0.02)])
    with pytest.raises(ConfigError, match="unknown audio.encoder"):
        get_encoder({"encoder": "nope"})


def _tiny_wav2vec2(folder):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    cfg = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        do_stable_layer_norm=True,
    )
    import torch

    torch.manual_seed(0)
    Wav2Vec2Model(cfg).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, do_normalize=True, return_attention_mask=True
    ).save_pretrained(folder)


def test_hf_encoder_on_a_tiny_wav2vec2(tmp_path, tone):
    _tiny_wav2vec2(tmp_path / "w2v")
    waves = [tone(120, dur=0.5), tone(220, dur=0.9)]
    enc = get_encoder(
        {"encoder": "hf", "model_dir": str(tmp_path / "w2v"), "pooling": "mean", "layer": -1, "device": "cpu"}
    )
    a = enc.encode(waves)
    assert a.shape == (2, 16) and enc.dim == 16 and np.isfinite(a).all()
    assert not np.allclose(a[0], a[1])
    # one pass over the batch == clip by clip (padding does not leak into the pooled vector much)
    solo = np.concatenate([enc.encode([w]) for w in waves])
    assert np.allclose(a[0], solo[0], atol=0.15 * np.abs(solo[0]).max() + 1e-3)
    mm = get_encoder(
        {
            "encoder": "hf",
            "model_dir": str(tmp_path / "w2v"),
            "pooling": "meanmax",
            "layer": 1,
            "device": "cpu",
        }
    )
    b = mm.encode(waves)
    assert b.shape == (2, 32) and mm.name != enc.name and mm.config_key() != enc.config_key()
    with pytest.raises(ConfigError, match="pooling"):
        get_encoder({"encoder": "hf", "model_dir": str(tmp_path / "w2v"), "pooling": "median"})
    with pytest.raises(ConfigError, match="model_dir"):
        get_encoder({"encoder": "hf", "model_dir": str(tmp_path / "missing")})


def test_hf_encoder_on_a_tiny_whisper_encoder(tmp_path, tone):
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    cfg = WhisperConfig(
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=32,
        vocab_size=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    WhisperModel(cfg).save_pretrained(tmp_path / "wh")
    WhisperFeatureExtractor(feature_size=80).save_pretrained(tmp_path / "wh")
    enc = get_encoder(
        {"encoder": "hf", "model_dir": str(tmp_path / "wh"), "pooling": "mean", "device": "cpu"}
    )
    out = enc.encode([tone(120, dur=0.6), tone(250, dur=1.0)])
    assert out.shape == (2, 16) and np.isfinite(out).all() and not np.allclose(out[0], out[1])


def test_emotion2vec_without_funasr_says_how_to_install():
    pytest.importorskip("numpy")
    try:
        import funasr  # noqa: F401

        pytest.skip("funasr is installed here")
    except ImportError:
        pass
    with pytest.raises(ModelError, match="pip install"):
        get_encoder({"encoder": "emotion2vec", "model_dir": "/nonexistent"})


def test_precomputed_reads_the_release_layout(tmp_path, wav_file, tone):
    wav = wav_file("happy/M003_level_3_001.wav", tone())
    (tmp_path / "happy" / "feats").mkdir()
    np.save(tmp_path / "happy" / "feats" / "M003_level_3_001.npy", np.arange(8, dtype=np.float32)[None])
    enc = get_encoder({"encoder": "precomputed", "feature_subdir": "feats"})
    out = enc.encode_files([wav])
    assert out.shape == (1, 8) and out[0, 3] == 3 and enc.dim == 8
    other = wav_file("happy/M003_level_3_002.wav", tone())
    with pytest.raises(ModelError, match="no feats/M003_level_3_002.npy beside it"):
        enc.encode_files([other])
    with pytest.raises(ModelError, match="raw wave"):
        enc.encode([tone()])


def test_cache_by_content_hash(tmp_path, wav_file, tone):
    enc = get_encoder({"encoder": "prosody", "progress": False})
    calls = []
    orig = enc.encode

    def counting(waves):
        calls.append(len(waves))
        return orig(waves)

    enc.encode = counting
    a = wav_file("a.wav", tone(120))
    b = wav_file("b.wav", tone(200))
    x1, s1 = encode_cached(enc, [a, b], tmp_path / "cache")
    assert calls == [2] and s1["encoded"] == 2  # one pass for the batch
    x2, s2 = encode_cached(enc, [b, a], tmp_path / "cache")
    assert calls == [2] and s2["hits"] == 2 and np.array_equal(x2, x1[::-1])
    # same bytes under another name: still a hit; changed audio: re-encoded
    import shutil

    shutil.copy(a, tmp_path / "renamed.wav")
    wav_file("b.wav", tone(260))
    x3, s3 = encode_cached(enc, [tmp_path / "renamed.wav", b], tmp_path / "cache")
    assert s3 == {**s3, "hits": 1, "encoded": 1} and calls == [2, 1]
    assert not np.allclose(x3[1], x1[1])


def test_lpc_formants_of_a_synthetic_vowel():
    from scipy.linalg import solve_toeplitz

    from cmet.audio.dsp import levinson, lpc_formants
    from cmet.data.synth_speech import Speaker, synthesize

    r = np.array([[1.0, 0.5, 0.2, 0.05, 0.01]])
    assert np.allclose(levinson(r, 4)[0, 1:], solve_toeplitz(r[0, :4], -r[0, 1:5]))
    spk = Speaker("s", 110, 1.0, 1, 0.02, 0, 0.003)
    w, _ = synthesize([("", "a", True)] * 3, spk, "neutral", 1, np.random.default_rng(0))
    f = lpc_formants(w.astype(float), np.arange(20, 40))
    # the synthesiser's /a/ formants: 730, 1090, 2440 Hz (x tract 1.0, +-3 %)
    assert abs(f[0] - 0.73) < 0.06 and abs(f[3] - 1.09) < 0.08 and abs(f[6] - 2.44) < 0.15


def test_prosody_reference_normalisation(tone):
    from cmet.audio import prosody_ref

    raw = get_encoder({"encoder": "prosody", "normalise": False, "progress": False})
    z = get_encoder({"encoder": "prosody", "progress": False})
    w = [tone(130, dur=0.7)]
    assert z.name.endswith("z") and z.name != raw.name and z.config_key() != raw.config_key()
    expect = (raw.encode(w) - np.asarray(prosody_ref.REF_MEAN)) / np.asarray(prosody_ref.REF_SCALE)
    assert np.allclose(z.encode(w), expect, atol=1e-4)
    assert min(prosody_ref.REF_SCALE) > 0
