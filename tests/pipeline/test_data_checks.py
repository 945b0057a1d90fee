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


def _failed_cols(rep) -> dict:
    return {f.column: f for f in rep.failures}


def test_duplicate_clip_id_and_bad_level_and_split_are_named(tiny_fs):
    c = tiny_fs.clips.copy()
    c.loc[1, "clip_id"] = c.loc[0, "clip_id"]  # the same clip twice
    c["level"] = c["level"].astype(object)
    c.loc[2, "level"] = 7  # not a configured level
    c.loc[3, "split"] = "holdout"  # not train/val/test
    rep = check_raw(c, LIM)
    assert not rep.success
    text = rep.summary()
    cols = _failed_cols(rep)
    assert {"clip_id", "level", "split"} <= set(cols), text
    assert c.loc[0, "clip_id"] in text and "7" in text and "holdout" in text
    # each fault alone is caught by its own expectation, naming the offending clip
    for col, value, row in (("clip_id", c.loc[0, "clip_id"], 1), ("level", 7, 2), ("split", "holdout", 3)):
        one = tiny_fs.clips.copy().astype({"level": object})
        one.loc[row, col] = value
        got = _failed_cols(check_raw(one, LIM))
        assert col in got and one.loc[row, "clip_id"] in got[col].rows, (
            col,
            {k: v.rows for k, v in got.items()},
        )


def test_nan_speech_is_named(tiny_fs):
    tiny_fs.speech[6, 3] = np.nan
    rep = check_features(tiny_fs, LIM)
    cols = _failed_cols(rep)
    assert cols["speech_finite"].rows == [tiny_fs.clips["clip_id"].iloc[6]], rep.summary()
    assert cols["speech_norm"].rows == [tiny_fs.clips["clip_id"].iloc[6]]  # a NaN norm is out of range
    assert set(cols) == {"speech_finite", "speech_norm"}, rep.summary()


@pytest.mark.parametrize("kind", ["speech", "expr"])
def test_row_count_mismatch_is_reported(kind, make_fs):
    from cmet.data.features import FeatureSet

    fs = make_fs()
    arr = getattr(fs, kind)[:-2]  # two rows fewer than the clip table says
    broken = object.__new__(FeatureSet)
    broken.__dict__.update(fs.__dict__)
    setattr(broken, kind, arr)
    rep = check_features(broken, LIM)
    assert not rep.success
    assert f"{kind}_rows_match" in _failed_cols(rep), rep.summary()


def test_d_expr_out_of_range_is_reported(make_fs):
    wide = make_fs(d_v=1100)  # over the 1024 allowed
    rep = check_features(wide, LIM)
    assert set(_failed_cols(rep)) == {"d_expr"}, rep.summary()
    assert "1100" in rep.summary()
    assert check_features(make_fs(d_v=19), LIM).success
