"""The FER judge: label order, fer's crop, both back-ends."""

from __future__ import annotations

import numpy as np
import pytest


def test_label_order():
    from cmet.face.judge import EMOTION_TO_LABEL, LABELS

    assert LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert EMOTION_TO_LABEL["disgusted"] == "disgust" and EMOTION_TO_LABEL["surprised"] == "surprise"


def test_crop_follows_fer():
    from cmet.face.judge import crop, to_square

    assert to_square((10, 20, 50, 70)) == (0, 20, 70, 70)
    img = np.zeros((200, 200), np.uint8)
    img[-2:, :] = 100  # the padding takes the mean of the two bottom rows
    img[60:140, 60:140] = 255
    f = crop(img, (60, 60, 80, 80))
    assert f.shape == (64, 64) and f.dtype == np.float32
    assert f.min() >= -1 and f.max() <= 1
    # box widened by 10 px a side: the 80 px square sits inside a 100 px crop
    assert f[32, 32] == pytest.approx(1.0) and f[2, 2] == pytest.approx(-1.0)
    # a box at the corner reaches into the 40 px padding of value 100 -> (100/255-0.5)*2
    g = crop(img, (0, 0, 60, 60))
    assert g[0, 0] == pytest.approx((100 / 255 - 0.5) * 2, abs=0.02)


def test_judge_reads_the_smiling_astronaut(assets):
    from skimage.data import astronaut

    from cmet.face.judge import Judge

    v = Judge()([astronaut()])
    assert v.top1 == ["happy"] and v.p("happy")[0] > 0.8
    assert v.probs.shape == (1, 7) and v.probs.sum() == pytest.approx(1.0, abs=1e-3)


def test_torch_port_matches_tflite(assets):
    from skimage.data import astronaut

    from cmet.face.judge import Judge, crop, haar_box

    img = astronaut()
    face = crop(img, haar_box(img))
    rng = np.random.default_rng(0)
    faces = np.stack([face, np.clip(face + rng.normal(0, 0.3, face.shape), -1, 1).astype(np.float32)])
    a = Judge("tflite").classify(faces)
    b = Judge("torch").classify(faces)
    assert np.abs(a - b).max() < 0.05


def test_no_face_for_the_judge():
    from cmet.errors import FaceNotFoundError
    from cmet.face.judge import haar_box

    with pytest.raises(FaceNotFoundError, match="blank"):
        haar_box(np.full((120, 120, 3), 90, np.uint8), "blank")
