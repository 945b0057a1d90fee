"""The generated MEAD-like set: layout, determinism, caching, splits, and that emotion is really in it."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.errors import DataError

TINY = [
    "data=generated",
    "data.identities.train=1",
    "data.identities.val=1",
    "data.identities.test=1",
    "data.levels=[1,3]",
    "data.clips_per_cell=2",
    "data.neutral_clips=3",
    "data.extended_clips=1",
    "data.emotions=[angry,happy,neutral,sad]",
    "~data.extended",
    "+data.extended={sarcastic: {angry: 0.5, happy: 0.5}}",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from cmet.config import compose
    from cmet.data import build_feature_set
    from cmet.data.generated import generate

    root = tmp_path_factory.mktemp("gen")
    cfg = compose([f"paths.work_dir={root}/work", f"data.out_dir={root}/a", *TINY])
    table = generate(cfg, root / "a")
    fs = build_feature_set(cfg)  # reuses the clips just made (same out_dir)
    return cfg, table, fs, root


def test_layout_and_table(tiny):
    cfg, table, fs, root = tiny
    # 3 ids x (angry, happy, sad x 2 levels x 2 + neutral 3 + sarcastic 1) = 3 x 16
    assert len(table) == 48
    a = table.iloc[0]
    assert "/audio/" in a["audio_path"] and a["audio_path"].endswith(".wav")
    assert "/tracks/" in a["track_path"]
    assert set(table.loc[table["emotion"] == "neutral", "level"]) == {1}
    assert table.loc[table["extended"], "emotion"].unique().tolist() == ["sarcastic"]
    by_split = table.groupby("split")["identity"].unique()
    ids = [set(v) for v in by_split]
    assert len(ids) == 3 and not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])


def test_feature_set_contract(tiny):
    cfg, table, fs, root = tiny
    fs.validate()
    assert fs.n_clips == 48 and fs.d_speech == fs.speech.shape[1] > 50
    assert fs.d_expr == 19 and fs.lips.shape[1] == 8 and fs.pose.shape[1] == 6
    assert fs.extended_emotions == ["sarcastic"]
    assert fs.meta["source"] == "generated" and fs.meta["speech_encoder"]["name"].startswith("prosody")
    assert (fs.clips["fps"] == 25).all() and (fs.clips["n_frames"] > 25).all()


def test_deterministic_and_cached(tiny, tmp_path):
    from cmet.data.generated import generate

    cfg, table, fs, root = tiny
    wav0 = table.iloc[5]["audio_path"]
    mtime = __import__("os").stat(wav0).st_mtime_ns
    again = generate(cfg, root / "a")  # cached: nothing rewritten
    assert __import__("os").stat(wav0).st_mtime_ns == mtime
    assert again["clip_id"].tolist() == table["clip_id"].tolist()
    other = generate(cfg, tmp_path / "b")  # from scratch elsewhere: byte-identical
    i = 5
    assert open(other.iloc[i]["audio_path"], "rb").read() == open(table.iloc[i]["audio_path"], "rb").read()
    # a clip deleted is regenerated identically
    import os

    p = table.iloc[7]["audio_path"]
    data = open(p, "rb").read()
    os.remove(p)
    generate(cfg, root / "a")
    assert open(p, "rb").read() == data


def test_other_config_in_same_folder_is_refused(tiny):
    from cmet.config import compose
    from cmet.data.generated import generate

    cfg, table, fs, root = tiny
    cfg2 = compose([f"paths.work_dir={root}/work", *TINY, "data.seed=99"])
    with pytest.raises(DataError, match="another configuration"):
        generate(cfg2, root / "a")


def test_emotion_is_in_speech_and_face(tiny):
    from cmet.audio.prosody import feature_names
    from cmet.face.facs import AU_NAMES

    cfg, table, fs, root = tiny
    c = fs.clips
    names = feature_names()
    f0 = fs.speech[:, names.index("f0_mean")]
    hi = (c["level"] == 3).to_numpy()
    # pitch: angry & happy above neutral above sad, per identity (Scherer 2003 directions)
    for ident in c["identity"].unique():
        m = (c["identity"] == ident).to_numpy()
        mean = {
            e: f0[m & (c["emotion"] == e).to_numpy() & (hi | (c["emotion"] == "neutral").to_numpy())].mean()
            for e in ("angry", "happy", "neutral", "sad")
        }
        assert mean["happy"] > mean["neutral"] > mean["sad"], (ident, mean)
        assert mean["angry"] > mean["neutral"]
    expr = fs.clip_mean_expr()
    au12 = expr[:, AU_NAMES.index("AU12")]
    au4 = expr[:, AU_NAMES.index("AU4")]
    emo = c["emotion"].to_numpy()
    assert au12[emo == "happy"].mean() > 3 * au12[emo == "neutral"].mean() + 0.1
    assert au4[emo == "angry"].mean() > au4[emo == "happy"].mean() + 0.2
    lv = c["level"].to_numpy()
    assert au12[(emo == "happy") & (lv == 3)].mean() > au12[(emo == "happy") & (lv == 1)].mean()


def test_lips_follow_the_speech(tiny):
    import soundfile as sf

    from cmet.face.tracks import envelope_at_fps

    cfg, table, fs, root = tiny
    r = fs.clips.iloc[3]
    w, sr = sf.read(r["audio_path"])
    env = envelope_at_fps(w, sr, int(r["n_frames"]), 25.0)
    lips_open = fs.frames(3, "lips")[:, 0]
    assert np.corrcoef(env, lips_open)[0, 1] > 0.7


def test_look_images(tiny, tmp_path):
    import cv2

    from cmet.data.look import apex_code, contact_sheet, schematic_face, spectrogram_panel
    from cmet.face.facs import prototype

    cfg, table, fs, root = tiny
    a = contact_sheet(
        table,
        tmp_path / "sheet.png",
        sorted(table["identity"].unique())[:2],
        levels=(1, 3),
        size=64,
        renderer="schematic",
    )
    b = spectrogram_panel(table, tmp_path / "spec.png")
    sheet = cv2.imread(str(a))
    assert sheet is not None and sheet.shape[1] == 86 + 5 * 64  # 4 emotions + 1 extended column
    assert cv2.imread(str(b)) is not None
    # the schematic fallback differs between emotions; the apex is the strong part of a clip
    assert np.abs(schematic_face(prototype("happy")).astype(int) - schematic_face(prototype("sad"))).sum() > 0
    expr = np.zeros((20, 19), np.float32)
    expr[10:] = prototype("happy")
    assert np.allclose(apex_code(expr), prototype("happy"))
