"""The speech-side figure: k-clip differences, nearest centroid of the other speakers."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.audio.evaluate import evaluate_speaker_transfer, mead_release_table, precomputed_feature
from cmet.errors import DataError

EMOS = ["angry", "happy", "sad", "fear"]


def _toy(emotion_scale: float, seed: int = 0, n_spk: int = 4, n: int = 8, d: int = 32, specific: float = 0.0):
    """Embeddings = speaker offset (large) + shared emotion direction x scale + noise
    (+ a direction per speaker and emotion x ``specific``, that no other speaker shares)."""
    rng = np.random.default_rng(seed)
    dirs = {e: rng.standard_normal(d) for e in EMOS}
    x, spk, emo = [], [], []
    for s in range(n_spk):
        off = 5 * rng.standard_normal(d)
        own = {e: rng.standard_normal(d) for e in EMOS}
        for e in ["neutral", *EMOS]:
            for _ in range(n):
                v = off + rng.standard_normal(d)
                if e != "neutral":
                    v = v + emotion_scale * dirs[e] + specific * own[e]
                x.append(v)
                spk.append(f"S{s}")
                emo.append(e)
    return np.array(x), spk, emo


def test_shared_emotion_directions_transfer_across_speakers():
    x, spk, emo = _toy(1.0)
    r = evaluate_speaker_transfer(x, spk, emo, ks=(1, 5), n_draws=20)
    assert r["chance"] == 0.25
    assert r["acc"][5] > 0.95 and r["acc"][5] >= r["acc"][1] - 0.02
    assert np.asarray(r["confusion"][5]).sum() == 4 * 4 * 20


def test_no_emotion_signal_is_at_chance():
    x, spk, emo = _toy(0.0, seed=3)
    r = evaluate_speaker_transfer(x, spk, emo, ks=(5,), n_draws=30)
    assert abs(r["acc"][5] - 0.25) < 0.12


def test_projection_is_fit_without_the_tested_speaker():
    """Emotion lives only in directions each speaker has alone: a projection fit on the OTHER speakers
    cannot carry it to the tested one (chance); one fit with the tested speaker's labels reads it (1.0)."""
    for seed in (5, 6):
        x, spk, emo = _toy(0.0, seed=seed, specific=2.0)
        r = evaluate_speaker_transfer(x, spk, emo, ks=(3,), n_draws=10, projection="lda")
        assert r["acc"][3] < 0.45, (seed, r["acc"])  # chance 0.25; measured 0.11 / 0.24, leaky fit 1.0
    # the same protocol does read a direction that the speakers share
    x, spk, emo = _toy(0.6, seed=5)
    for proj in ("standardize", "lda"):
        r = evaluate_speaker_transfer(x, spk, emo, ks=(3,), n_draws=10, projection=proj)
        assert r["acc"][3] > 0.9, (proj, r["acc"])


def test_bad_inputs():
    x, spk, emo = _toy(1.0)
    with pytest.raises(DataError, match="no neutral"):
        evaluate_speaker_transfer(x, spk, ["angry"] * len(emo))
    with pytest.raises(DataError, match="at least 2 speakers"):
        evaluate_speaker_transfer(x, ["S0"] * len(spk), emo)
    with pytest.raises(DataError, match="must agree"):
        evaluate_speaker_transfer(x[:-1], spk, emo)


@pytest.mark.shared
def test_emotion2vec_release_features_reproduce_the_quoted_figure(release_dir):
    """The protocol on the paper's own features gives the issue's 87/91/91 % (within a few points)."""
    t = mead_release_table(release_dir)
    x = np.stack([precomputed_feature(p) for p in t["audio_path"]])
    r = evaluate_speaker_transfer(x, t["identity"], t["emotion"], ks=(1, 3, 5), n_draws=50, seed=0)
    assert len(r["emotions"]) == 7
    assert r["acc"][1] > 0.80 and r["acc"][3] > 0.85 and r["acc"][5] > 0.85


@pytest.mark.slow
@pytest.mark.shared
def test_default_encoder_on_real_mead_speech(release_dir, tmp_path):
    """The default encoder's figure on the real MEAD speech (encodes 720 clips, ~1 min)."""
    from cmet.audio import get_encoder
    from cmet.audio.cache import encode_cached
    from cmet.env import project_root

    t = mead_release_table(release_dir)
    enc = get_encoder({"encoder": "prosody", "progress": True})
    x, _ = encode_cached(enc, list(t["audio_path"]), project_root() / ".cmet" / "cache")
    r = evaluate_speaker_transfer(x, t["identity"], t["emotion"], ks=(1, 3, 5), n_draws=50, seed=0)
    print("prosody speaker-transfer acc", r["acc"])
    assert r["acc"][5] > 2 * r["chance"]
