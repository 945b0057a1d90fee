"""The user's own footage: face crops pasted back, every face tracked, odd inputs (cmet.stream)."""

from __future__ import annotations

import numpy as np
import pytest


def test_paste_keeps_every_untouched_pixel_and_feathers_the_crop_border():
    from cmet.face.crop import Box, FaceCrop

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (359, 641, 3), dtype=np.uint8)
    fc = FaceCrop(128)
    box = Box(500, 250, 200)  # runs past the right and bottom edges
    before = fc.cut(frame, box)
    assert before.shape == (128, 128, 3)
    same = fc.paste(frame.copy(), before, before, box)
    assert np.array_equal(same, frame)  # no change in the crop -> the native frame, bit for bit
    after = before.copy()
    after[60:70, 60:70] = 255 - after[60:70, 60:70]  # a change in the middle
    after[0, :] = 0  # and one on the crop's edge: the feather must swallow it
    after[1:4, :] = np.clip(after[1:4, :].astype(int) + 40, 0, 255)  # near it: mostly swallowed
    out = fc.paste(frame.copy(), before, after, box)
    change = np.abs(out.astype(int) - frame).max(-1)
    assert change[250:256].max() <= 0.1 * 40 + 1  # the feather: <= 10 % of a change 3 px from the edge
    moved = change > 5
    ys, xs = np.where(moved)
    k = 200 / 128
    assert moved.any() and ys.min() >= 250 + 55 * k and xs.min() >= 500 + 55 * k
    assert ys.max() <= 250 + 75 * k and xs.max() <= 500 + 75 * k
    assert out.shape == frame.shape


def test_landmarks_map_into_the_crop():
    from cmet.face.crop import Box, FaceCrop

    fc = FaceCrop(100)
    p = np.array([[50.0, 70.0, 10.0], [149.5, 169.5, -4.0]], np.float32)
    q = fc.to_crop(p, Box(50, 70, 200))
    assert q[0, :2] == pytest.approx([-0.25, -0.25]) and q[1, :2] == pytest.approx([49.5, 49.5])
    assert q[:, 2] == pytest.approx([5.0, -2.0])


def test_ramp_weights_pass_lost_frames_through_with_a_ramp():
    from cmet.face.crop import ramp_weights

    seen = np.ones(40, bool)
    seen[20:25] = False
    w = ramp_weights(seen, 4)
    assert np.all(w[20:25] == 0) and w[0] == 1 and w[-1] == 1
    assert list(np.round(w[15:20], 2)) == [1.0, 0.8, 0.6, 0.4, 0.2]
    assert list(np.round(w[25:30], 2)) == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert np.array_equal(ramp_weights(np.ones(5, bool), 4), np.ones(5))


def test_crop_boxes_hold_lost_frames_and_smooth():
    from cmet.face.crop import CROP_SCALE, crop_boxes

    T = 30
    lm = np.zeros((T, 468, 3), np.float32)
    lm[:, :, 0] = np.linspace(100, 200, 468)[None] + np.arange(T)[:, None]
    lm[:, :, 1] = np.linspace(50, 150, 468)[None]
    seen = np.ones(T, bool)
    seen[10:15] = False
    lm[10:15] = 0  # garbage where lost
    b = crop_boxes(lm, seen, 25.0, smooth_s=0.0)
    assert b[12, 2] == pytest.approx(100 * CROP_SCALE) and b[0, 0] == pytest.approx(150)
    assert b[11, 0] == pytest.approx(150 + 9) and b[13, 0] == pytest.approx(150 + 15)


def two_face_frame(astronaut_face, w=641, h=359, small=150):
    import cv2

    canvas = np.full((h, w, 3), 90, np.uint8)
    canvas[40:296, 20:276] = astronaut_face
    canvas[100 : 100 + small, 400 : 400 + small] = cv2.resize(astronaut_face, (small, small))
    return canvas


def test_tracker_follows_two_faces_and_flags_the_lost_frames(assets, astronaut_face, tmp_path):
    from cmet.face.faces import FaceTracker, rank_faces

    tr = FaceTracker(tmp_path, 25.0)
    frame = two_face_frame(astronaut_face)
    for i in range(20):
        f = frame.copy()
        if 8 <= i < 12:
            f[100:250, 400:550] = 90  # the small face leaves for 4 frames
        tr.update(f)
    faces = rank_faces(tr.finish())
    assert len(faces) == 2 and faces[0].mean_size > 1.5 * faces[1].mean_size
    assert faces[0].seen.all()
    assert list(np.where(~faces[1].seen)[0]) == [8, 9, 10, 11]
    lm = faces[1].landmarks()
    assert lm.shape == (20, 468, 3) and 400 < lm[0, :, 0].mean() < 550
    assert np.array_equal(lm[9], lm[7])  # lost frames hold the last landmarks
