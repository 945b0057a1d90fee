"""AU expression encoder (pose/identity/lips removed) and the mesh-warp renderer."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.face.facs import AU_NAMES, D_EXPR, prototype


@pytest.fixture(scope="module")
def can(astronaut_landmarks):
    from cmet.face.expression import canonical

    return canonical(astronaut_landmarks)


def test_basis_shapes_and_locality(can):
    assert can.basis.shape == (D_EXPR, 468, 3)
    mag = np.linalg.norm(can.basis[..., :2], axis=-1)
    assert (mag.max(1) > 0.02).all(), "every AU moves some vertex"
    # brow AUs do not move the chin; mouth AUs do not move the brows
    assert mag[AU_NAMES.index("AU1"), 152] < 1e-6 and mag[AU_NAMES.index("AU12"), 105] < 1e-6
    assert len(can.rigid) >= 12


def test_neutral_encodes_to_zero(can, astronaut_landmarks):
    from cmet.face.expression import encode

    c = encode(can, astronaut_landmarks[None], lips_ref=np.zeros(1))
    assert np.abs(c.au).max() < 1e-3 and np.abs(c.pose).max() < 1e-3 and np.abs(c.lips).max() < 1e-5


def test_geometric_round_trip_with_pose_removed(can, astronaut_landmarks):
    """code -> target landmarks (in a rotated, scaled, shifted head) -> code: exact projection."""
    import cv2

    from cmet.face.expression import encode, target_landmarks

    rng = np.random.default_rng(1)
    R = cv2.Rodrigues(np.array([0.1, -0.15, 0.05]))[0]
    c0 = astronaut_landmarks.mean(0)
    moved = (astronaut_landmarks - c0) @ R.T * 1.2 + c0 + [7, -4, 0]
    codes = rng.uniform(0, 1, (12, D_EXPR)) * (rng.uniform(size=(12, D_EXPR)) < 0.5)
    rec = np.stack(
        [encode(can, target_landmarks(can, moved, c)[None], lips_ref=np.zeros(1)).au[0] for c in codes]
    )
    assert np.abs(rec - codes).max() < 0.05
    pose = encode(can, moved[None], lips_ref=np.zeros(1)).pose[0]
    assert np.allclose(pose[:3], [0.1, -0.15, 0.05], atol=0.02)
    assert pose[5] == pytest.approx(np.log(1.2), abs=0.02)


def test_jaw_is_lips_not_expression(can, astronaut_landmarks):
    """Speech jaw motion lands in the lips code/jaw column, not in the AUs."""
    from cmet.face.expression import displacement, encode

    opened = can.from_canonical(can.mesh + displacement(can, np.zeros(D_EXPR), jaw=0.15))
    c = encode(can, opened[None])
    assert c.jaw[0] == pytest.approx(0.15, abs=0.02)
    assert c.lips[0, 0] > 0.1
    assert np.abs(c.au).max() < 0.1


def test_render_shapes_identity_and_locality(can, astronaut_face, astronaut_landmarks):
    from cmet.face.render import FaceRenderer

    r = FaceRenderer(can, astronaut_face.shape[:2])
    same = r.render(astronaut_face, astronaut_landmarks, np.zeros(D_EXPR))
    assert same.shape == astronaut_face.shape and same.dtype == np.uint8
    assert np.abs(same.astype(int) - astronaut_face).max() == 0
    happy, tgt = r.render(astronaut_face, astronaut_landmarks, prototype("happy"), return_landmarks=True)
    diff = np.abs(happy.astype(int) - astronaut_face).sum(-1)
    assert (
        diff[100:, :].sum() > 0.9 * diff.sum() > 0
    )  # a change, around the mouth (measured 97 % below row 100)
    assert diff[:8, :8].max() == 0 and diff[-8:, -8:].max() == 0  # far background untouched
    assert tgt[61, 1] < astronaut_landmarks[61, 1] - 1  # the lip corners went up


def test_mouth_interior_is_dark_when_the_jaw_drops(can, astronaut_face, astronaut_landmarks):
    from cmet.face.render import FaceRenderer

    r = FaceRenderer(can, astronaut_face.shape[:2], shading_strength=0.0)
    code = np.zeros(D_EXPR)
    code[AU_NAMES.index("AU26_emo")] = 1.0
    out, tgt = r.render(astronaut_face, astronaut_landmarks, code, return_landmarks=True)
    # down the middle of the opening, between the rows of teeth: a dark gap (the cavity), not lips or
    # skin stretched across it, nor the teeth stretched tall to fill it
    x = int(round(tgt[13, 0]))
    line = out[int(round(tgt[13, 1])) : int(round(tgt[14, 1])) + 1, x - 1 : x + 2].mean((1, 2))
    assert line.min() < 100, line.round()


def test_shading_appears_where_muscles_bunch(astronaut_landmarks):
    from cmet.face.shading import shading

    iod = float(np.linalg.norm(astronaut_landmarks[263, :2] - astronaut_landmarks[33, :2]))
    dark0, _ = shading((256, 256), astronaut_landmarks[:, :2], iod, {})
    dark4, _ = shading((256, 256), astronaut_landmarks[:, :2], iod, {"AU4": 1.0})
    assert dark0.max() == 0
    g = ((astronaut_landmarks[107, :2] + astronaut_landmarks[336, :2]) / 2).round().astype(int)
    assert dark4[g[1] - 12 : g[1] + 12, g[0] - 12 : g[0] + 12].max() > 0.1
