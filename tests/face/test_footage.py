"""The user's own footage: face crops and their place in the frame, every face tracked, odd inputs (cmet.stream)."""

from __future__ import annotations

import numpy as np
import pytest


def test_cut_and_view_agree_with_the_landmark_map():
    """The crop cut from a frame, the landmarks mapped into it and the view back onto the frame agree:
    View.to_frame inverts FaceCrop.to_crop, and the frame box of the whole crop is the crop's box
    (clipped to the frame where it runs past the edges)."""
    from cmet.face.crop import Box, FaceCrop

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (359, 641, 3), dtype=np.uint8)
    fc = FaceCrop(128)
    box = Box(500, 250, 200)  # runs past the right and bottom edges
    assert fc.cut(frame, box).shape == (128, 128, 3)
    view = fc.view(frame, box)
    assert view.frame is frame and view.k == pytest.approx(128 / 200)
    p = np.array([[510.0, 260.0, 8.0], [600.25, 300.5, -2.0]], np.float32)
    np.testing.assert_allclose(view.to_frame(fc.to_crop(p, box)), p, atol=1e-4)
    x0, y0, x1, y1 = view.frame_box((0, 0, 128, 128))  # the crop's first pixel reaches 499.5
    assert (x0, y0) in ((499, 249), (500, 250)) and (x1, y1) == (641, 359)


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


@pytest.fixture(scope="module")
def cfg():
    from cmet.config import compose

    return compose([])


@pytest.fixture(scope="module")
def two_face_video(tmp_path_factory, astronaut_face):
    """641x359 (odd), 30 frames, no audio: a large face and a small one that leaves for frames 12-17."""
    import cv2

    from cmet.media import write_video

    d = tmp_path_factory.mktemp("two")
    base = two_face_frame(astronaut_face)
    frames = []
    for i in range(30):
        M = np.float32([[1, 0, np.sin(i / 3) * 2], [0, 1, 0]])
        f = cv2.warpAffine(base, M, (641, 359), borderMode=cv2.BORDER_REPLICATE)
        if 12 <= i < 18:
            f[100:250, 400:550] = 90
        frames.append(f)
    return write_video(d / "two.mp4", np.stack(frames), 25.0), np.stack(frames)


def test_edit_keeps_the_frame_edits_the_largest_face_and_reports_the_other(
    cfg, tiny_bundle, two_face_video, tmp_path
):
    from cmet.edit import edit_video
    from cmet.errors import DataError
    from cmet.media import has_audio, probe_video, read_video

    mp4, _ = two_face_video
    src, _ = read_video(mp4)
    with pytest.warns(UserWarning, match="shows 2 faces"):
        res = edit_video(mp4, "happy", bundle=tiny_bundle, cfg=cfg, out=tmp_path / "one.mp4")
    info = probe_video(res.out)
    assert (info.w, info.h, info.n_frames, info.has_audio) == (642, 360, 30, False)  # H.264 4:2:0: even sides
    assert not has_audio(res.out)
    out, _ = read_video(res.out)
    out = out[:, :359, :641]
    rep = res.report
    assert [f["face"] for f in rep["faces_found"]] == [0, 1] and len(rep["faces_edited"]) == 1
    assert rep["faces_found"][0]["mean_size_px"] > 1.5 * rep["faces_found"][1]["mean_size_px"]
    assert rep["faces_edited"][0]["frames_passed_through"] == 0
    big = np.abs(out[:, 40:296, 20:276].astype(float) - src[:, 40:296, 20:276]).mean(-1)
    small = np.abs(out[:, 100:250, 400:550].astype(float) - src[:, 100:250, 400:550]).mean(-1)
    assert (big > 20).mean() > 0.003 and (small > 20).mean() < 0.0005  # only the large face moved

    res_all = edit_video(mp4, "happy", bundle=tiny_bundle, cfg=cfg, out=tmp_path / "all.mp4", face="all")
    ed = {f["face"]: f for f in res_all.report["faces_edited"]}
    assert set(ed) == {0, 1} and ed[1]["frames_passed_through"] >= 6  # the lost frames (and the ramp)
    w = res_all.report["faces_edited"][1]
    assert w["frames_edited"] + w["frames_passed_through"] == 30
    out_all, _ = read_video(res_all.out)
    small_all = np.abs(out_all[:, 100:250, 400:550].astype(float) - src[:, 100:250, 400:550]).mean(-1)
    assert (small_all[:10] > 20).mean() > 0.003  # the second face is edited where it is seen
    assert (small_all[12:18] > 20).mean() < 0.0005  # and passes through where it is gone
    with pytest.raises(DataError, match="face 5 does not exist: the video has 2 face"):
        edit_video(mp4, "happy", bundle=tiny_bundle, cfg=cfg, face=5)


def _ffmpeg(*args):
    import subprocess

    from cmet.media import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True, capture_output=True)


def test_rotated_variable_rate_video_keeps_rotation_rate_and_audio(cfg, tiny_bundle, short_video, tmp_path):
    """A phone video: stored sideways with a display rotation of 90 degrees, variable frame rate
    (a 0.2 s gap after frame 5), speech: the edit comes out upright-displayed, rotated the same way,
    at constant rate (the average), the audio as long as the video."""
    from cmet.edit import edit_video
    from cmet.media import iter_frames, probe_video, write_video

    mp4, wav = short_video
    frames = np.stack([np.rot90(f, -1) for f in iter_frames(mp4)])  # stored sideways
    sideways = write_video(tmp_path / "side.mp4", frames, 25.0, wav)
    vfr = tmp_path / "phone.mp4"
    _ffmpeg("-noautorotate", "-display_rotation:v:0", "90", "-i", str(sideways), "-vf",
            "setpts='if(lt(N,6),N,N+5)/25/TB'", "-fps_mode", "vfr", "-c:a", "copy", str(vfr))  # fmt: skip
    src = probe_video(vfr)
    assert src.rotation == 90 and src.n_frames == 12 and src.fps < 25.0  # 12 frames over 0.68 s
    res = edit_video(vfr, "happy", bundle=tiny_bundle, cfg=cfg, out=tmp_path / "out.mp4")
    info = probe_video(res.out)
    assert info.rotation == 90 and (info.w, info.h) == (src.w, src.h) == (256, 256)
    assert info.fps == pytest.approx(src.fps, rel=0.02)
    assert info.n_frames == res.n_frames == pytest.approx(src.duration_s * src.fps, abs=1)
    from tests.face.test_edit import _audio_seconds

    assert _audio_seconds(res.out, tmp_path) == pytest.approx(_audio_seconds(mp4, tmp_path), abs=0.05)


def test_corrupt_tail_warns_with_the_frames_it_could_read(cfg, tiny_bundle, astronaut_face, tmp_path):
    from cmet.edit import edit_video
    from cmet.media import write_video

    rng = np.random.default_rng(0)  # noise: every frame costs bytes, the cut falls mid-video
    noise = rng.integers(-12, 13, (50, 1, 256, 256, 3))
    frames = np.clip(astronaut_face[None].astype(int) + noise[:, 0], 0, 255).astype(np.uint8)
    full = write_video(tmp_path / "full.mp4", frames, 25.0).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full[: int(len(full) * 0.55)])
    with pytest.warns(UserWarning, match=r"decoding stopped after (\d+) frames .* of the 2.00 s") as rec:
        res = edit_video(cut, "happy", bundle=tiny_bundle, cfg=cfg, out=tmp_path / "o.mp4")
    assert 5 <= res.n_frames < 45 and any(str(res.n_frames) in str(w.message) for w in rec)
    assert any("decoding stopped" in w for w in res.report["warnings"])


@pytest.mark.parametrize("suffix,codec", [(".mkv", "mpeg4"), (".avi", "mjpeg"), (".mov", "libx264")])
def test_any_container_ffmpeg_reads(cfg, tiny_bundle, short_video, tmp_path, suffix, codec):
    from cmet.edit import edit_video
    from cmet.media import probe_video

    src = tmp_path / f"in{suffix}"
    _ffmpeg("-i", str(short_video[0]), "-c:v", codec, "-an", str(src))  # silent, another container
    res = edit_video(src, "happy", bundle=tiny_bundle, cfg=cfg, out=tmp_path / "out.mp4")
    info = probe_video(res.out)
    assert (info.n_frames, info.w, info.h, info.has_audio) == (12, 256, 256, False)


def test_view_upsamples_a_working_map_exactly_where_it_is_linear():
    """A map given on working pixels, read on the frame's pixels (View.upsample): a linear ramp comes
    back as the same ramp in frame pixels (the composed warp's inverse map is piecewise linear), to
    OpenCV's interpolation grid (1/32 of a working pixel: 1/16 of a level on a slope of 2)."""
    from cmet.face.compose import View

    frame = np.zeros((300, 400, 3), np.uint8)
    v = View(frame, 40.0, 30.0, 96 / 150)
    box = (10, 12, 70, 80)  # working pixels
    ys, xs = np.mgrid[box[1] : box[3], box[0] : box[2]].astype(np.float32)
    ramp = np.dstack([2 * xs + 1, 0.5 * ys - 3]).astype(np.float32)
    fbox = v.frame_box(box)
    up = v.upsample(ramp, box, fbox)
    fy, fx = np.mgrid[fbox[1] + 2 : fbox[3] - 2, fbox[0] + 2 : fbox[2] - 2].astype(np.float32)
    cx = (fx - 40.0 + 0.5) * v.k - 0.5  # the working coordinate of each frame pixel
    cy = (fy - 30.0 + 0.5) * v.k - 0.5
    inner = up[2:-2, 2:-2]
    np.testing.assert_allclose(inner[..., 0], 2 * cx + 1, atol=2 / 32 + 1e-4)
    np.testing.assert_allclose(inner[..., 1], 0.5 * cy - 3, atol=0.5 / 32 + 1e-4)


def test_shading_blur_only_around_the_marks_is_the_full_blur():
    import cv2

    from cmet.face.shading import _blur

    rng = np.random.default_rng(2)
    for sigma in (0.9, 3.0, 11.0):
        canvas = np.zeros((200, 240), np.float32)
        canvas[90:100, 100:130] = rng.random((10, 30), dtype=np.float32)
        canvas[5:8, 230:240] = 0.7  # marks at the canvas edge: the reflection there must match
        full = cv2.GaussianBlur(canvas, (0, 0), sigma)
        assert np.abs(_blur(canvas, sigma) - full).max() < 1e-5
    assert not _blur(np.zeros((10, 10), np.float32), 2.0).any()


def test_mesh_warp_moves_the_marked_point_and_keeps_the_rest():
    """The piecewise-affine warp: a point at a moved control point arrives at its target; pixels
    outside the moved triangles are the input's, bit for bit."""
    from cmet.face.warp import triangulate, warp

    img = np.zeros((120, 160, 3), np.uint8)
    img[::8] = 90  # stripes: texture for the untouched part
    img[58:63, 78:83] = 255  # a white dot at the centre control point
    grid = np.array([[x, y] for y in (0, 30, 60, 90, 119) for x in (0, 40, 80, 120, 159)], np.float32)
    tris = triangulate(grid)
    dst = grid.copy()
    c = int(np.where((grid == [80, 60]).all(1))[0][0])
    dst[c] += [12, -9]
    out = warp(img, grid, dst, tris)
    ys, xs = np.where(out[..., 0] > 128)
    assert abs(xs.mean() - 92) <= 1.5 and abs(ys.mean() - 51) <= 1.5  # (no move: 80, 60)
    moved = np.zeros(out.shape[:2], bool)
    moved[20:100, 30:130] = True  # the triangles around the moved point lie in here
    assert np.array_equal(out[~moved], img[~moved])
