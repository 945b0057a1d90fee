"""Bad input: one clear CmetError each (wrong dims, NaN, unknown emotion, too few clips, missing file)."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.errors import ConfigError, DataError, ModelError, UnknownEmotionError


def test_wrong_code_dims(tiny_bundle):
    with pytest.raises(DataError, match=r"D_v=19"):
        tiny_bundle.predict_offsets(np.zeros((10, 7), np.float32), "happy")


def test_wrong_speech_dims(tiny_bundle):
    with pytest.raises(DataError, match=r"dimension 5.*D_a=64"):
        tiny_bundle.predict_offsets(np.zeros((10, 19), np.float32), np.zeros((4, 5), np.float32))


def test_nan_codes_and_speech(tiny_bundle):
    codes = np.zeros((10, 19), np.float32)
    codes[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        tiny_bundle.predict_offsets(codes, "happy")
    sp = np.zeros((3, 64), np.float32)
    sp[0, 0] = np.inf
    with pytest.raises(DataError, match="NaN"):
        tiny_bundle.predict_offsets(np.zeros((10, 19), np.float32), sp)


def test_unknown_emotion(tiny_bundle):
    with pytest.raises(UnknownEmotionError, match="'joyful'.*knows"):
        tiny_bundle.edit_codes(np.zeros((10, 19), np.float32), "joyful")
    with pytest.raises(UnknownEmotionError, match="'joyful'"):
        tiny_bundle.semantic_speech_vector({"happy": 0.5, "joyful": 0.5})


def test_missing_bundle_files(tmp_path):
    from cmet.model.bundle import ModelBundle

    with pytest.raises(ModelError, match="lacks bundle.json"):
        ModelBundle.load(tmp_path / "nowhere")


def test_unknown_source(tiny_cfg_factory):
    from cmet.data import build_feature_set

    cfg = tiny_cfg_factory("data.source=nonsense")
    with pytest.raises(ConfigError, match="unknown data source 'nonsense'"):
        build_feature_set(cfg)


def test_too_few_clips_in_training(tiny_cfg_factory):
    from cmet.errors import TooFewClipsError
    from cmet.train import train

    cfg = tiny_cfg_factory("data.clips_per_cell=2", "train.steps=1")
    with pytest.raises(TooFewClipsError, match="identity 'sim_id00'.*fewer than min_clips=3"):
        train(cfg, out_dir=cfg.paths.work_dir + "/few")


def test_nan_features_refused(tiny_features, tiny_cfg_factory, tmp_path):
    from cmet.data.features import FeatureSet
    from cmet.train import train

    bad = FeatureSet(tiny_features.clips, tiny_features.speech.copy(), tiny_features.expr.copy())
    bad.expr[5, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        train(tiny_cfg_factory("train.steps=1"), features=bad, out_dir=tmp_path / "nan")


def test_simulator_bad_basis(tiny_cfg_factory):
    from cmet.data import build_feature_set

    with pytest.raises(ConfigError, match="d_expr=19"):
        build_feature_set(tiny_cfg_factory("data.d_expr=10"))
