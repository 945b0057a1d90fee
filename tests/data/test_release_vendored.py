"""The vendored release vectors: the embedded default dataset without ../shared."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.data import build_feature_set
from cmet.data.vendor import ENCODER, load_vendored
from cmet.errors import ConfigError


def test_vendored_counts_and_shapes():
    v = load_vendored()
    c = v.clips
    assert v.speech.shape == (452, 1024) and v.speech.dtype == np.float32
    assert np.isfinite(v.speech).all()
    assert sorted(set(c.loc[c["set"] == "MEAD", "identity"])) == ["M003", "M030", "W009", "W015"]
    assert (c["set"] == "MEAD").sum() == 352 and (c["set"] == "gemini").sum() == 100
    assert sorted(set(c.loc[c["extended"], "emotion"])) == [
        "charismatic",
        "desirous",
        "empathetic",
        "romantic",
    ]
    assert set(c.loc[c["set"] == "gemini", "e2v+L_ser"]) - {"<unk>"} <= {
        "angry",
        "contempt",
        "disgusted",
        "fear",
        "happy",
        "neutral",
        "sad",
        "surprised",
    }
    assert (c.loc[c["set"] == "MEAD", "e2v+L_ser"] == "").all()
    assert c["clip_id"].is_unique


def test_release_au_without_shared_uses_vendored(compose_cfg, tmp_path):
    cfg = compose_cfg("data=release_au", f"data.release_dir={tmp_path}/absent")
    fs = build_feature_set(cfg)
    assert fs.meta["vectors"] == "vendored"
    assert fs.meta["speech_encoder"]["name"] == ENCODER["name"] and fs.d_speech == 1024
    assert fs.n_clips == 452 and fs.d_expr == 19
    assert set(fs.extended_emotions) == {"charismatic", "desirous", "empathetic", "romantic"}
    assert set(fs.clips.loc[fs.clips["split"] == "test", "identity"]) == {"W009"}


def test_vendored_other_fps_needs_audio(compose_cfg, tmp_path):
    cfg = compose_cfg("data=release_au", f"data.release_dir={tmp_path}/absent", "data.fps=30")
    with pytest.raises(ConfigError, match="25 fps"):
        build_feature_set(cfg)


#: computed arrays of the two paths agree to this (absolute, in code units): the lip tracks follow the
#: speech envelope, which the vendored copy stores as computed on the machine that vendored it and the
#: release path computes here from the audio (filtering and resampling in float32); another CPU (SIMD
#: width, FMA) moves such results by a few float32 ulps: up to 8e-7 seen between an Intel and an AMD
#: host, i.e. ~3 ulp at the largest lip value (2.5). 1e-5 allows ~40 ulp there and is still 1e-4 of the
#: smallest lip movement that shows (~0.1).
COMPUTED_ATOL = 1e-5


@pytest.mark.shared
def test_vendored_identical_to_release(compose_cfg, release_dir):
    """The release folder and the vendored copy give the same data: the speech vectors and the clip
    table exactly (read, not computed: the same bytes); the computed arrays (expression, lip and pose
    tracks) to :data:`COMPUTED_ATOL`, not byte for byte (the vendored envelopes come from another CPU)."""
    a = build_feature_set(
        compose_cfg("data=release_au", f"data.release_dir={release_dir}", "data.vectors=release")
    )
    b = build_feature_set(
        compose_cfg("data=release_au", f"data.release_dir={release_dir}", "data.vectors=vendored")
    )
    assert (a.meta["vectors"], b.meta["vectors"]) == ("release", "vendored")
    assert (
        a.speech.dtype == b.speech.dtype and a.speech.tobytes() == b.speech.tobytes()
    )  # stored, as released
    for k in ("expr", "lips", "pose"):
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and x.shape == y.shape, k
        np.testing.assert_allclose(x, y, rtol=0, atol=COMPUTED_ATOL, err_msg=k)
    assert a.clips.equals(b.clips)
    # the lips do move with the speech: a tolerance this size cannot hide a wrong envelope
    assert float(np.abs(np.diff(a.lips, axis=0)).max()) > 1000 * COMPUTED_ATOL


def test_release_au_carries_the_tts_clips_ser_labels(compose_cfg, tmp_path):
    fs = build_feature_set(compose_cfg("data=release_au", f"data.release_dir={tmp_path}/absent"))
    labels = fs.meta["ser_labels"]
    ext = set(fs.clips.loc[fs.clips["extended"], "clip_id"])
    assert set(labels) == ext and len(labels) == 100
    assert (
        sum(v == "sad" for v in labels.values()) == 56 and labels["M003_charismatic_charismatic_0"] == "happy"
    )
