"""413 and 422 answers of the real service app (in-process ASGI client, the default limits of
configs/serving): each limit and each unusable content reaches the client as one JSON error naming
the field and the limit, with the HTTP status of serving.errors.status_for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _error(r) -> str:
    """The error body's words: its code and its message (one JSON object)."""
    body = r.json()
    body = body[0] if isinstance(body, list) else body
    return " ".join(str(body[k]) for k in ("error", "message") if k in body)


def _mp4(path: Path, frames: np.ndarray, fps: float = 25.0, wav: Path | None = None) -> Path:
    from cmet.media import write_video

    return Path(write_video(path, frames, fps, wav))


def _post_video(client, path: Path, **data):
    return client.post(
        "/edit",
        files={"video": (path.name, path.read_bytes(), "video/mp4")},
        data=data or {"emotion": "happy"},
    )


def test_frames_over_the_side_limit_are_413(client, tmp_path):
    big = _mp4(tmp_path / "wide.mp4", np.full((6, 16, 4000, 3), 100, np.uint8))  # default limit 3840 px
    r = _post_video(client, big)
    assert r.status_code == 413, r.text
    assert "4000x16" in _error(r) and "3840" in _error(r)


def test_video_over_the_length_limit_is_413(client, tmp_path):
    long = _mp4(tmp_path / "long.mp4", np.full((21 * 5, 32, 32, 3), 90, np.uint8), fps=5.0)  # 21 s > 20 s
    r = _post_video(client, long)
    assert r.status_code == 413, r.text
    assert "longer than the limit of 20 s" in _error(r)
    # the same clip is accepted by the task endpoint's longer limit (it fails later: no face)
    r = client.post(
        "/edit_job/submit",
        files={"video": ("long.mp4", long.read_bytes(), "video/mp4")},
        data={"emotion": "happy"},
    )
    assert r.status_code == 200, r.text


def test_feature_upload_over_the_value_limit_is_413(client, sample_video, tmp_path):
    feats = tmp_path / "many.npy"
    np.save(feats, np.zeros((20, 16384), np.float32))  # 327 680 values > 262 144
    files = {
        "video": ("face.mp4", sample_video.read_bytes(), "video/mp4"),
        "target_features": ("many.npy", feats.read_bytes(), "application/octet-stream"),
    }
    r = client.post("/expressions", files=files)
    assert r.status_code == 413, r.text
    assert "target_features" in _error(r)


def test_video_without_a_face_is_422(client, tmp_path):
    wall = _mp4(tmp_path / "wall.mp4", np.full((10, 128, 128, 3), 120, np.uint8))
    r = _post_video(client, wall)
    assert r.status_code == 422, r.text
    assert "face" in _error(r).lower() and "wall.mp4" in _error(r)


def test_corrupt_driving_speech_is_422(client, sample_video, tmp_path):
    import cv2

    cap = cv2.VideoCapture(str(sample_video))
    ok, frame = cap.read()
    cap.release()
    assert ok
    img = tmp_path / "p.png"
    cv2.imwrite(str(img), frame)
    files = {
        "portrait": ("p.png", img.read_bytes(), "image/png"),
        "driving_speech": ("s.wav", b"RIFF\x00\x00\x00\x00WAVEgarbage" * 40, "audio/wav"),
    }
    r = client.post("/edit", files=files, data={"emotion": "sad"})
    assert r.status_code == 422, r.text
    assert "cannot read audio" in _error(r)


@pytest.mark.parametrize("status", [413, 422])
def test_status_mapping_names_every_user_error(status):
    """serving.errors.status_for is the one table behind these answers."""
    from cmet.errors import AudioError, FaceNotFoundError, VideoError
    from serving.errors import status_for
    from serving.inputs import PayloadTooLargeError

    errs = {413: [PayloadTooLargeError("x")], 422: [FaceNotFoundError("x"), AudioError("x"), VideoError("x")]}
    assert {int(status_for(e)) for e in errs[status]} == {status}
