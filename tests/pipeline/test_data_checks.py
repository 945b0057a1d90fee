"""GX suites on a hand-made feature set: clean data passes, each injected fault fails with a readable
report naming the problem (and the offending rows)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_checks.run import DataCheckError, check_features, check_raw
from data_checks.suites import CheckLimits

LIM = CheckLimits(emotions=("angry", "happy", "neutral"), levels=(1, 2, 3), frames=(5, 100))


def test_clean_data_passes(tiny_fs, tmp_path):
    rep = check_raw(tiny_fs, LIM).save(tmp_path)
    assert rep.success and rep.n_expectations > 20, rep.summary()
    assert check_features(tiny_fs, LIM).success
    saved = json.loads((tmp_path / "data_check_raw.json").read_text())
    assert saved["success"] is True and "clips" in saved["results"]


def test_raw_faults_each_named(tiny_fs, tmp_path):
    c = tiny_fs.clips.copy()
    c["audio_path"] = c["audio_path"].astype(object)
    c.loc[3, "emotion"] = "furious"  # unknown emotion
    c.loc[5, "audio_path"] = str(tmp_path / "gone.wav")  # missing file
    c.loc[c["identity"] == "id2", "split"] = "test"  # id2 now in train? no: all of id2 -> test ...
    c.loc[0, "split"] = "train"  # ... one clip of id1 stays train: still fine
    c.loc[c.index[-1], "split"] = "train"  # one clip of id4 (test) in train: identity leak
    rep = check_raw(c, LIM).save(tmp_path)
    assert not rep.success
    text = rep.summary()
    assert "column=emotion" in text and "furious" in text
    assert "column=files_ok" in text and c.loc[5, "clip_id"] in text
    assert "column=n_splits" in text and "id4" in text
    assert "id2" not in [r for f in rep.failures if f.column == "n_splits" for r in f.rows]
    assert (tmp_path / "data_check_raw.html").read_text().count("FAIL") >= 3
    with pytest.raises(DataCheckError, match="data check 'raw' failed"):
        rep.raise_if_failed()


def test_too_few_clips_per_cell_and_frame_mismatch(tiny_fs):
    c = tiny_fs.clips.copy()
    drop = c.index[(c["identity"] == "id1") & (c["emotion"] == "happy") & (c["level"] == 2)][:2]
    c = c.drop(index=drop)
    c.loc[c.index[0], "duration_s"] = 9.0  # n_frames no longer ~ duration x fps
    rep = check_raw(c, LIM)
    cols = {f.column for f in rep.failures}
    assert cols == {"n_clips", "frame_error"}, rep.summary()
    assert "id1/happy/L2" in rep.summary()


def test_feature_faults(tiny_fs):
    tiny_fs.expr[tiny_fs.clips["frame_start"].iloc[7] + 1, 2] = np.nan  # a NaN frame in clip 7
    tiny_fs.speech[4] *= 1e6  # an absurd speech norm
    rep = check_features(tiny_fs, LIM)
    assert not rep.success
    by_col = {f.column: f for f in rep.failures}
    assert by_col["expr_finite"].rows == [tiny_fs.clips["clip_id"].iloc[7]]
    assert by_col["speech_norm"].rows == [tiny_fs.clips["clip_id"].iloc[4]]


def test_limits_from_config(compose_cfg):
    cfg = compose_cfg()
    lim = CheckLimits.from_cfg(cfg)
    assert "neutral" in lim.emotions and "sarcastic" in lim.emotions  # extended emotions allowed
    assert lim.levels == (1, 2, 3) and lim.min_clips_per_cell == cfg.pipeline.checks.min_clips_per_cell
