"""Reader of the authors' release layout: real data in ../shared (skips when absent) + small made-up folders."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.data.release import load_feature, parse_mead_name, read_release_features
from cmet.errors import DataError


def test_mead_release(release_dir):
    df, x = read_release_features(release_dir, "MEAD")
    assert x.shape == (len(df), 1024) and x.dtype == np.float32
    assert set(df["identity"]) == {"M003", "M030", "W009", "W015"}
    assert (df.loc[df["emotion"] == "neutral", "level"] == 1).all()
    assert (df.loc[df["emotion"] != "neutral", "level"] == 3).all()
    assert len(df[df["emotion"] == "neutral"]) == 160
    assert np.isfinite(x).all()


def test_gemini_release(release_dir):
    df, x = read_release_features(release_dir, "gemini")
    assert x.shape == (100, 1024)
    assert set(df["emotion"]) == {"charismatic", "desirous", "empathetic", "romantic"}
    assert set(df["identity"]) <= {"M003", "M030", "W009", "W015"}
    assert {"sentence", "voice", "ser_emotion"} <= set(df.columns)


def test_names():
    assert parse_mead_name("M003_level_3_005", "angry") == dict(identity="M003", level=3, clip="005")
    assert parse_mead_name("W009_017", "neutral") == dict(identity="W009", level=1, clip="017")
    with pytest.raises(DataError, match="cannot parse"):
        parse_mead_name("W009_017", "angry")


def _layout(root, shape=(1024,)):
    d = root / "audios" / "MEAD" / "happy" / "emotion2vec+large_features"
    d.mkdir(parents=True)
    np.save(d / "M001_level_2_001.npy", np.ones(shape, np.float32))
    return d


def test_one_by_d_features_and_wrong_dims(tmp_path):
    _layout(tmp_path, (1, 1024))
    df, x = read_release_features(tmp_path, "MEAD")
    assert x.shape == (1, 1024) and df["level"].tolist() == [2]
    with pytest.raises(DataError, match="dimension 1024; expected 768"):
        read_release_features(tmp_path, "MEAD", dim=768)


def test_bad_shape_and_missing(tmp_path):
    d = _layout(tmp_path, (2, 1024))
    with pytest.raises(DataError, match=r"shape \(2, 1024\)"):
        read_release_features(tmp_path, "MEAD")
    with pytest.raises(DataError, match="release folder not found"):
        read_release_features(tmp_path / "nope", "MEAD")
    with pytest.raises(DataError, match="not found"):
        load_feature(d / "missing.npy")
    with pytest.raises(DataError, match="unknown release set"):
        read_release_features(tmp_path, "CREMA")
