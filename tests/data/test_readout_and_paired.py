"""The one readout of an edit (nearest basic emotion) and the paired comparison the gate uses."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.errors import DataError, ModelError
from cmet.evaluate import paired_gain, paired_metrics
from cmet.readout import basic_directions, nearest_basic, readout_scores


class _Bundle:
    def __init__(self, label):
        self.baselines = {"label": label} if label is not None else {}


DIRS = {
    "happy": np.array([1.0, 0.0, 0.0]),
    "sad": np.array([0.0, 1.0, 0.0]),
    "angry": np.array([0.0, 0.0, 2.0]),
}


def test_nearest_basic_by_cosine_and_small_edits_read_neutral():
    assert nearest_basic(np.array([0.9, 0.2, 0.1]), DIRS) == "happy"
    assert nearest_basic(np.array([[0.0, 0.1, 0.5], [0.0, 0.1, 0.7]]), DIRS) == "angry"  # time mean of [T, D]
    assert nearest_basic(np.array([0.1, 0.1, 0.0]), DIRS) == "neutral"  # 0.14 < 0.25 * 1
    assert nearest_basic(np.array([0.1, 0.1, 0.0]), DIRS, neutral_share=0.0) in ("happy", "sad")
    s = readout_scores(np.array([1.0, 1.0, 0.0]), DIRS)
    assert s["happy"] == pytest.approx(0.7071, abs=1e-4) and s["angry"] == 0.0


def test_basic_directions_come_from_the_label_baseline():
    b = _Bundle({"happy": np.ones(3), "neutral": np.zeros(3), "charismatic": np.ones(3)})
    assert list(basic_directions(b)) == ["happy"]
    with pytest.raises(ModelError, match="no label-baseline"):
        basic_directions(_Bundle(None))


def test_paired_gain_is_deterministic_and_sees_ties():
    rng = np.random.default_rng(0)
    a = rng.random(200) < 0.8
    tie = paired_gain(a, a)
    assert tie["gain"] == 0 and tie["lower"] == 0 and tie["upper"] == 0 and tie["p_sign"] == 1.0
    b = a.copy()
    b[:40] = False  # b loses up to 40 episodes a wins
    g = paired_gain(a, b)
    assert g == paired_gain(a, b)  # fixed seed
    assert g["gain"] > 0 and g["lower"] > 0 and g["p_sign"] < 1e-3
    noisy = paired_gain(np.r_[a[:100], ~a[100:103]], np.r_[a[:100], a[100:103]])
    assert noisy["lower"] < 0 < noisy["upper"]  # a 3-episode difference is not evidence
    with pytest.raises(DataError, match="aligned"):
        paired_gain(a, a[:10])


def test_paired_metrics_from_score_predictions():
    preds = {
        "cmet": (["happy", "sad", "sad"], ["happy", "sad", "happy"]),
        "speech_direct": (["happy", "sad", "sad"], ["sad", "sad", "happy"]),
    }
    m = paired_metrics(preds)
    assert m["acc_emo_gain/speech_direct"] == pytest.approx(1 / 3)
    assert set(m) == {f"acc_emo_gain{s}/speech_direct" for s in ("", "_lb", "_ub", "_p")}
    assert paired_metrics({"cmet": preds["cmet"]}) == {}
