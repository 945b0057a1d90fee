"""Heavy checks of the face side on the release data (``make test-full``)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_portraits_judged_by_fer(release_dir, tmp_path):
    from cmet.face.evaluate import evaluate_portraits

    res = evaluate_portraits(release_dir, tmp_path, gain=1.6, progress=False)
    assert res["n_portraits"] == 14
    assert (tmp_path / "portraits_contact_sheet.png").is_file()
    # first hand-made try: 44% overall; prototypes calibrated on ChatGPT_* only. With drawn dark
    # furrows it measured 62% overall (62% held out); the realism issue's renderer (creases as a
    # bounded smooth luminance change, the eyeglass band and upper face outline rigid, a close control
    # ring) reads less to this judge: 51% overall, 55% held out, happy 71%, mean rise 0.37 (84
    # renders, deterministic); with the warp kept one-to-one (no folded triangles, brows in one
    # piece, a lowered brow hooding the lid): 56% overall, 60% held out, happy 71%, mean rise 0.38.
    # A render that does nothing scores ~0 and rises 0.
    assert res["overall_top1"] >= 0.48
    assert res["held_out_top1"] >= 0.5 and res["n_held_out_renders"] == 42
    assert res["per_emotion_top1"]["happy"] >= 0.7
    assert res["mean_rise_p_target"] > 0.2


def test_round_trip_through_the_landmark_model(release_dir):
    """codes -> render -> FaceMesh + flow -> calibrated encoder -> codes on a real MEAD portrait:
    every code >= 0.9 with one AU at a time, and >= 0.8 (mean >= 0.95) with ~4 AUs at a time;
    FaceMesh alone stays far below (measured over 14 faces: 10/19 codes >= 0.9 against 19/19)."""
    import cv2

    from cmet.face.evaluate import round_trip

    im = cv2.imread(str(release_dir / "asset" / "identity" / "W009_001_identity_source.jpg"))[:, :, ::-1]
    im = np.ascontiguousarray(im)
    r = round_trip(im, n=76, name="W009", modes=(("single", None), ("sparse", 0.2)))["modes"]
    single, sparse = r["single"]["corr"], r["sparse0.2"]["corr"]
    assert min(single.values()) >= 0.9, single
    assert min(sparse.values()) >= 0.8 and np.mean(list(sparse.values())) >= 0.95, sparse
    fm = round_trip(im, n=76, name="W009", mode="single", landmarks="facemesh", tta=4)["corr"]
    assert sum(v >= 0.9 for v in fm.values()) < sum(v >= 0.9 for v in single.values())


def test_edit_the_release_video(release_dir, trained_bundle, tmp_path):
    """A 19-d bundle trained here edits W009_038.mp4: same frames/fps, audio, lips kept, p(happy) rises."""
    from cmet.config import compose
    from cmet.edit import edit_video
    from cmet.face.edit_measures import check_edit

    video = release_dir / "asset" / "video" / "W009_038.mp4"
    r = edit_video(
        video, "happy", bundle=trained_bundle, cfg=compose([]), out=tmp_path / "happy.mp4", max_seconds=2.0
    )
    chk = check_edit(video, r, "happy")
    assert chk["n_frames_out"] == 50 and chk["fps_out"] == pytest.approx(chk["fps_in"]) and chk["audio_out"]
    assert chk["mouth_corr"] > 0.8, chk
    assert chk["rise_p_target"] > 0.05, chk
