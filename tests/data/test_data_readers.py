"""MEAD and CREMA-D readers on tiny fixtures made here in the real layouts; the release_au source."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

from cmet.data.readers import parse_crema_name, read_crema_d, read_mead
from cmet.errors import ConfigError, DataError


def _wav(path, dur=0.4, f0=150.0, sr=16000):
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sr * dur)) / sr
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * f0 * t), sr)
    return path


def _mp4(path, n_frames=12, fps=25):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (32, 32))
    for i in range(n_frames):
        vw.write(np.full((32, 32, 3), i * 10 % 255, np.uint8))
    vw.release()
    return path


def _m4a(src, dst):
    from cmet.audio.io import ffmpeg_exe

    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-c:a", "aac", str(dst)], check=True)
    return dst


def test_mead_layout(tmp_path):
    root = tmp_path / "MEAD"
    src = _wav(tmp_path / "src.wav", dur=0.5)
    for ident, emo, lv, clip, nf in [
        ("M003", "angry", 3, "001", 12),
        ("M003", "neutral", 1, "001", 15),
        ("W017", "happy", 2, "004", 10),
    ]:
        _mp4(root / ident / "video" / "front" / emo / f"level_{lv}" / f"{clip}.mp4", nf)
        _m4a(src, root / ident / "audio" / emo / f"level_{lv}" / f"{clip}.m4a")
    # audio without video: timed from the audio; a non-front view and a bad emotion folder are skipped
    _m4a(src, root / "W017" / "audio" / "sad" / "level_1" / "009.m4a")
    _mp4(root / "W017" / "video" / "left_30" / "happy" / "level_2" / "004.mp4")
    _mp4(root / "W017" / "video" / "front" / "bored" / "level_1" / "001.mp4")
    t = read_mead(root, test_identities=["M003"])
    assert len(t) == 4
    r = t.set_index("clip_id")
    assert r.loc["M003_angry_L3_001", "n_frames"] == 12 and r.loc["M003_angry_L3_001", "split"] == "test"
    assert r.loc["M003_angry_L3_001", "audio_path"].endswith("M003/audio/angry/level_3/001.m4a")
    assert r.loc["W017_happy_L2_004", "split"] == "train" and r.loc["W017_happy_L2_004", "level"] == 2
    sad = r.loc["W017_sad_L1_009"]
    assert pd.isna(sad["video_path"]) and abs(sad["n_frames"] - 12) <= 2  # 0.5 s at 25 fps (+ aac padding)
    assert len(t.attrs["skipped"]) == 1 and "bored" in t.attrs["skipped"][0]
    from cmet.data.features import normalise_clip_table

    normalise_clip_table(t)  # fits the data contract


def test_crema_d_names():
    assert parse_crema_name("1001_DFA_ANG_XX") == dict(
        actor="1001", sentence="DFA", emotion="angry", level=2, level_code="XX"
    )
    assert parse_crema_name("1076_IEO_HAP_HI")["level"] == 3
    assert parse_crema_name("1002_IEO_NEU_XX")["level"] == 1
    assert parse_crema_name("1001_DFA_XXX_XX") is None and parse_crema_name("notes") is None


def test_crema_d_layout(tmp_path):
    root = tmp_path / "CREMA-D"
    for name in ["1001_DFA_ANG_XX", "1001_DFA_NEU_XX", "1002_IEO_SAD_LO", "1002_IEO_HAP_HI"]:
        _wav(root / "AudioWAV" / f"{name}.wav", dur=0.8)
    _mp4(root / "VideoMP4" / "1001_DFA_ANG_XX.mp4", 20)
    _wav(root / "AudioWAV" / "readme_like_file.wav")
    t = read_crema_d(root, test_identities=["1002"])
    assert len(t) == 4 and t.attrs["skipped"][0].endswith("readme_like_file.wav")
    r = t.set_index("clip_id")
    assert r.loc["1001_DFA_ANG_XX", "n_frames"] == 20 and r.loc["1001_DFA_ANG_XX", "video_path"].endswith(
        ".mp4"
    )
    assert r.loc["1001_DFA_NEU_XX", "n_frames"] == 20  # 0.8 s at 25 fps from the audio
    assert set(t.loc[t["split"] == "test", "identity"]) == {"1002"}
    assert r.loc["1002_IEO_SAD_LO", "level"] == 1 and r.loc["1002_IEO_HAP_HI", "emotion"] == "happy"


def test_empty_or_missing_folders(tmp_path):
    (tmp_path / "e").mkdir()
    with pytest.raises(DataError, match="no MEAD clips"):
        read_mead(tmp_path / "e")
    with pytest.raises(DataError, match="no CREMA-D clips"):
        read_crema_d(tmp_path / "e")
    with pytest.raises(DataError, match="not found"):
        read_mead(tmp_path / "nope")


def test_release_au_missing_data_is_a_clear_error(compose_cfg, tmp_path):
    from cmet.data import build_feature_set

    # data.vectors=release insists on the folder (auto falls back to the vendored vectors)
    cfg = compose_cfg("data=release_au", f"data.release_dir={tmp_path}/absent", "data.vectors=release")
    with pytest.raises(DataError, match="release data is not at"):
        build_feature_set(cfg)


def test_release_au_source(release_dir, compose_cfg):
    from cmet.data import build_feature_set
    from cmet.face.facs import AU_NAMES

    cfg = compose_cfg("data=release_au", f"data.release_dir={release_dir}", "data.lips_from_audio=false")
    fs = build_feature_set(cfg)
    assert fs.d_speech == 1024 and fs.d_expr == len(AU_NAMES)
    assert set(fs.clips.loc[fs.clips["split"] == "test", "identity"]) == {"W009"}
    assert set(fs.clips.loc[fs.clips["split"] == "val", "identity"]) == {"M030"}
    assert fs.extended_emotions == ["charismatic", "desirous", "empathetic", "romantic"]
    assert len(fs.train_emotions) == 8
    emo = fs.clips["emotion"].to_numpy()
    m = fs.clip_mean_expr()
    assert (
        m[emo == "happy", AU_NAMES.index("AU12")].mean()
        > m[emo == "sad", AU_NAMES.index("AU12")].mean() + 0.3
    )
    # the other speaker as test
    fs2 = build_feature_set(
        compose_cfg(
            "data=release_au",
            f"data.release_dir={release_dir}",
            "data.lips_from_audio=false",
            "data.test_identity=M003",
            "data.val_identity=null",
        )
    )
    assert set(fs2.clips.loc[fs2.clips["split"] == "test", "identity"]) == {"M003"}
    with pytest.raises(ConfigError, match="not in the data"):
        build_feature_set(
            compose_cfg("data=release_au", f"data.release_dir={release_dir}", "data.test_identity=X999")
        )
