"""The emotion2vec+large space: vectors beside the audio / .npy folders, FunASR with a tiny random
emotion2vec saved in FunASR's own format, and one clear error when raw speech cannot be encoded."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import soundfile as sf

from cmet.audio import get_encoder
from cmet.audio.emotion2vec import PrecomputedEncoder
from cmet.audio.io import speech_files
from cmet.audio.spec import EncoderSpec, encoder_for_spec
from cmet.errors import DataError, ModelError

E2V = EncoderSpec("emotion2vec+large", 1024, {"source": "precomputed"})


def _authors_layout(folder, n=3, dim=1024, seed=0):
    """n wavs with emotion2vec+large_features/<stem>.npy beside them; returns the vectors [n, dim]."""
    rng = np.random.default_rng(seed)
    (folder / "emotion2vec+large_features").mkdir(parents=True)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    for i in range(n):
        sf.write(folder / f"c{i}.wav", 0.1 * rng.standard_normal(8000).astype(np.float32), 16000)
        np.save(folder / "emotion2vec+large_features" / f"c{i}.npy", vecs[i][None] if i % 2 else vecs[i])
    return vecs


def test_precomputed_reads_folders_of_wavs_and_of_npy(tmp_path):
    vecs = _authors_layout(tmp_path / "happy")
    enc = encoder_for_spec(E2V)
    assert isinstance(enc, PrecomputedEncoder) and (enc.name, enc.dim) == ("emotion2vec+large", 1024)
    assert np.array_equal(enc.encode_files([tmp_path / "happy"]), vecs)  # the folder: its wavs
    assert np.array_equal(enc.encode_files([tmp_path / "happy" / "emotion2vec+large_features"]), vecs)
    assert np.array_equal(enc.encode_files([tmp_path / "happy" / "c1.wav"]), vecs[[1]])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no audio files and no .npy"):
        speech_files([tmp_path / "empty"])
    # a folder of clips with their vectors beside them: each clip once
    for i, v in enumerate(vecs):
        np.save(tmp_path / "happy" / f"c{i}.npy", v)
    assert np.array_equal(enc.encode_files([tmp_path / "happy"]), vecs)
    np.save(tmp_path / "bad.npy", np.zeros(7, np.float32))
    with pytest.raises(DataError, match="dimension 7; expected 1024"):
        enc.encode_files([tmp_path / "bad.npy"])


def test_raw_speech_without_an_encoder_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("CMET_EMOTION2VEC_DIR", raising=False)
    from cmet.audio import student

    monkeypatch.setattr(student, "shipped", lambda dim=1024: False)
    sf.write(tmp_path / "mine.wav", np.zeros(16000, np.float32), 16000)
    enc = encoder_for_spec(E2V)
    with pytest.raises(
        ModelError, match=r"mine.wav: no emotion2vec\+large_features/mine.npy.*pip install.*\.npy"
    ):
        enc.encode_files([tmp_path / "mine.wav"])
    with pytest.raises(ModelError, match="raw wave"):
        enc.encode([np.zeros(16000, np.float32)])


def test_emotion2vec_without_funasr_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "funasr", None)  # import funasr -> ImportError
    with pytest.raises(ModelError, match=r"needs FunASR.*pip install -e '\.\[emotion2vec\]'.*\.npy"):
        get_encoder({"encoder": "emotion2vec", "model_dir": "/nowhere"})


def tiny_emotion2vec(folder, embed_dim=16):
    """A randomly initialised emotion2vec in FunASR's model-folder format: config.yaml + model.pt + tokens.txt."""
    import torch
    import yaml
    from funasr.models.emotion2vec.model import Emotion2vec

    audio = dict(
        type="AUDIO", prenet_depth=1, prenet_layerdrop=0.0, prenet_dropout=0.0, start_drop_path_rate=0.0,
        end_drop_path_rate=0.0, num_extra_tokens=2, init_extra_token_zero=False, mask_noise_std=0.01,
        mask_prob_min=None, inverse_mask=False, mask_prob=0.0, mask_prob_adjust=0.0, keep_masked_pct=0.0,
        mask_length=5, add_masks=False, remove_masks=False, mask_dropout=0.0, encoder_zero_mask=True,
        mask_channel_prob=0.0, mask_channel_length=64, local_grad_mult=1.0, use_alibi_encoder=True,
        alibi_scale=1.0, alibi_max_pos=None, learned_alibi=False, learned_alibi_scale=True,
        learned_alibi_scale_per_head=True, learned_alibi_scale_per_layer=False, num_alibi_heads=2,
        model_depth=2, decoder=None, extractor_mode="layer_norm",
        feature_encoder_spec="[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2",
        conv_pos_width=9, conv_pos_groups=4, conv_pos_depth=1, conv_pos_pre_ln=False,
    )  # fmt: skip
    model_conf = dict(
        loss_beta=0.0, loss_scale=None, depth=2, start_drop_path_rate=0.0, end_drop_path_rate=0.0,
        num_heads=2, norm_eps=1e-5, norm_affine=True, encoder_dropout=0.0, post_mlp_drop=0.0,
        attention_dropout=0.0, activation_dropout=0.0, dropout_input=0.0, layerdrop=0.0,
        embed_dim=embed_dim, mlp_ratio=2.0, layer_norm_first=False, average_top_k_layers=2,
        end_of_block_targets=False, clone_batch=1, normalize=True, modalities={"audio": audio},
    )  # fmt: skip
    labels = ["angry", "disgusted", "fearful", "happy", "neutral", "other", "sad", "surprised", "<unk>"]
    folder.mkdir(parents=True)
    conf = {
        "model": "Emotion2vec",
        "model_conf": model_conf,
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(conf))
    (folder / "tokens.txt").write_text("\n".join(labels) + "\n")
    torch.manual_seed(0)
    torch.save(Emotion2vec(model_conf=model_conf, vocab_size=len(labels)).state_dict(), folder / "model.pt")
    return folder


@pytest.mark.slow
def test_funasr_loads_a_tiny_random_emotion2vec_and_encodes_a_wav(tmp_path, tone):
    if os.environ.get("CMET_TEST_FULL") != "1":
        pytest.importorskip("funasr", reason="FunASR is the optional extra [emotion2vec]")
    folder = tiny_emotion2vec(tmp_path / "e2v_tiny")
    enc = get_encoder({"encoder": "emotion2vec", "model_dir": str(folder), "device": "cpu"})
    assert enc.dim == 16 and enc.name == "emotion2vec-e2v_tiny"
    sf.write(tmp_path / "a.wav", tone(140, 16000, 0.8), 16000)
    sf.write(tmp_path / "b.wav", tone(260, 16000, 1.1), 16000)
    x = enc.encode_files([tmp_path / "a.wav", tmp_path / "b.wav"])
    assert x.shape == (2, 16) and x.dtype == np.float32 and np.isfinite(x).all()
    assert not np.allclose(x[0], x[1])
    assert np.allclose(enc.encode_files([tmp_path / "a.wav"]), x[:1], atol=1e-5)  # deterministic
    # the raw-speech fallback of the precomputed space: audio without vectors goes through FunASR
    spec = EncoderSpec("emotion2vec+large", 16, {"source": "precomputed"})
    pre = PrecomputedEncoder.from_spec(
        spec, {"raw": "emotion2vec", "model_dir": str(folder), "device": "cpu"}
    )
    assert np.allclose(pre.encode_files([tmp_path]), x, atol=1e-5)
