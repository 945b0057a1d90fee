"""``cmet edit``: a whole (short) edit and the clear errors on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cmet.errors import DataError, FaceNotFoundError, UnknownEmotionError, VideoError


@pytest.fixture(scope="module")
def cfg():
    from cmet.config import compose

    return compose([])


def test_edit_short_video(cfg, tiny_bundle, short_video, tmp_path):
    from cmet.edit import edit_video
    from cmet.media import has_audio, read_video

    mp4, wav = short_video
    res = edit_video(mp4, "happy", bundle=tiny_bundle, cfg=cfg, out=tmp_path / "out.mp4")
    res.write_codes(tmp_path / "c.json")
    frames, fps = read_video(res.out)
    assert len(frames) == 12 and fps == pytest.approx(25.0)
    assert has_audio(res.out)
    assert res.offsets.shape == (12, 19) and res.neutral_codes.shape == (12, 19)
    for stage in ("landmarks", "audio", "model", "render", "encode", "total"):
        assert stage in res.timings
    d = json.loads((tmp_path / "c.json").read_text())
    assert len(d["edited_codes"]) == 12 and len(d["au_names"]) == 19
    # intensity 0: no edit, the frames come back (up to the codec)
    res0 = edit_video(mp4, "happy", bundle=tiny_bundle, cfg=cfg, out=tmp_path / "same.mp4", intensity=0.0)
    a, _ = read_video(mp4)
    b, _ = read_video(res0.out)
    same = np.abs(a.astype(float) - b).mean()
    assert same < 3.0
    # intensity 1: the face changed, by much more than the codec's round trip, and only inside the face
    moved = (np.abs(a.astype(float) - frames).mean(-1) > 20).mean()  # share of pixels changed by > 20
    codec = (np.abs(a.astype(float) - b).mean(-1) > 20).mean()
    assert moved > 0.005 and codec < 0.001, (moved, codec)  # measured 1.8 % and 0 %
    assert np.abs(res.offsets).max() > 0.05 and np.allclose(res0.offsets, 0.0, atol=1e-6)
    # the audio track is kept with its duration
    import soundfile as sf

    assert _audio_seconds(res.out, tmp_path) == pytest.approx(sf.info(str(wav)).duration, abs=0.05)


def _audio_seconds(path, tmp_path) -> float:
    """Decoded duration of a file's audio track (ffmpeg -> wav -> soundfile)."""
    import subprocess

    import soundfile as sf

    from cmet.media import ffmpeg_exe

    wav = tmp_path / f"{path.stem}_track.wav"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-i", str(path), "-vn", "-ac", "1", "-ar", "16000", str(wav)],
        check=True,
        capture_output=True,
    )
    info = sf.info(str(wav))
    return info.frames / info.samplerate


def test_unknown_emotion(cfg, tiny_bundle, short_video, tmp_path):
    from cmet.edit import edit_video

    with pytest.raises(UnknownEmotionError, match="joyful"):
        edit_video(short_video[0], "joyful", bundle=tiny_bundle, cfg=cfg, out=tmp_path / "x.mp4")
    with pytest.raises(UnknownEmotionError, match="blend"):
        edit_video(
            short_video[0], {"happy": 0.5, "joyful": 0.5}, bundle=tiny_bundle, cfg=cfg, out=tmp_path / "x.mp4"
        )


def test_corrupt_and_missing_video(cfg, tiny_bundle, tmp_path):
    from cmet.edit import edit_video

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(VideoError, match="bad.mp4"):
        edit_video(bad, "happy", bundle=tiny_bundle, cfg=cfg, out=tmp_path / "x.mp4")
    with pytest.raises(VideoError, match="does not exist"):
        edit_video(tmp_path / "nope.mp4", "happy", bundle=tiny_bundle, cfg=cfg, out=tmp_path / "x.mp4")


def test_video_shorter_than_a_chunk(cfg, tiny_bundle, astronaut_face, tmp_path):
    from cmet.edit import edit_video
    from cmet.media import write_video

    short = write_video(tmp_path / "short.mp4", np.stack([astronaut_face] * 3), 25.0)
    with pytest.raises(VideoError, match="shorter than one chunk"):
        edit_video(short, "happy", bundle=tiny_bundle, cfg=cfg, out=tmp_path / "x.mp4")


def test_video_without_a_face(cfg, tiny_bundle, tmp_path):
    from cmet.edit import edit_video
    from cmet.media import write_video

    wall = write_video(tmp_path / "wall.mp4", np.full((8, 128, 128, 3), 120, np.uint8), 25.0)
    with pytest.raises(FaceNotFoundError, match="wall.mp4"):
        edit_video(wall, "happy", bundle=tiny_bundle, cfg=cfg, out=tmp_path / "x.mp4")


def test_feature_folder_of_the_wrong_dimension(tiny_bundle, tmp_path):
    from cmet.target import load_feature_folder, parse_blend

    d = tmp_path / "feats"
    d.mkdir()
    np.save(d / "a.npy", np.zeros(1024, np.float32))
    with pytest.raises(DataError, match=r"a.npy has shape \(1024,\); this model expects \[8\]"):
        load_feature_folder(d, 8)
    np.save(d / "a.npy", np.zeros((1, 8), np.float32))
    assert load_feature_folder(d, 8).shape == (1, 8)
    with pytest.raises(DataError, match="no .npy"):
        load_feature_folder(tmp_path, 8)
    assert parse_blend("happy=0.7,surprised=0.3") == pytest.approx({"happy": 0.7, "surprised": 0.3})
    with pytest.raises(DataError):
        parse_blend("happy=0.7,surprised")


def test_cli_edit_error_is_one_line(tiny_bundle, short_video, tmp_path):
    import subprocess
    import sys

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "edit",
            "--video",
            str(short_video[0]),
            "--emotion",
            "joyful",
            "--out",
            str(tmp_path / "o.mp4"),
            "--model",
            str(tiny_bundle),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "unknown emotion 'joyful'" in r.stderr and "Traceback" not in r.stderr


def test_hold_lip_offsets_makes_lip_aus_constant_and_keeps_the_rest():
    from cmet.edit import LIP_AUS, hold_lip_offsets
    from cmet.face.facs import AU_NAMES, D_EXPR

    rng = np.random.default_rng(0)
    off = rng.uniform(0, 1, (50, D_EXPR)).astype(np.float32)
    held = hold_lip_offsets(off, fps=25.0, window_s=4.0)  # 100 frames > 50: one constant
    lip = [AU_NAMES.index(a) for a in LIP_AUS]
    other = [k for k in range(D_EXPR) if k not in lip]
    assert np.allclose(held[:, lip].std(0), 0, atol=1e-6)
    assert np.allclose(held[:, lip].mean(0), off[:, lip].mean(0), atol=1e-5)
    assert np.array_equal(held[:, other], off[:, other])
    # a window shorter than the clip: smoothed, not constant; 0 = unchanged
    part = hold_lip_offsets(off, fps=25.0, window_s=0.4)
    assert 0 < part[:, lip].std(0).mean() < off[:, lip].std(0).mean()
    assert np.array_equal(hold_lip_offsets(off, 25.0, 0.0), off)


def test_renderer_au_gains_override_and_bad_name(astronaut_face, astronaut_landmarks):
    from cmet.face.expression import canonical
    from cmet.face.facs import AU_NAMES
    from cmet.face.render import FaceRenderer

    can = canonical(astronaut_landmarks)
    r = FaceRenderer(can, astronaut_face.shape[:2], gain=1.6, jaw_gain=0.6, au_gains={"AU10": 1.0})
    assert r.gains[AU_NAMES.index("AU10")] == 1.0
    assert r.gains[AU_NAMES.index("AU26_emo")] == np.float32(0.6)
    assert r.gains[AU_NAMES.index("AU12")] == np.float32(1.6)
    with pytest.raises(ValueError, match="AU99"):
        FaceRenderer(can, astronaut_face.shape[:2], au_gains={"AU99": 1.0})


def test_model_lookup_never_writes_an_mlflow_store_in_the_cwd(tmp_path, monkeypatch):
    """default_bundle_dir() asks the registry; from a library caller that did not configure the
    environment, MLflow would create ./mlflow.db: the lookup configures the project's store."""
    from cmet.config import compose
    from cmet.errors import ModelError
    from flows.registry import default_bundle_dir

    root, cwd = tmp_path / "proj", tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("CMET_ROOT", str(root))
    monkeypatch.chdir(cwd)
    with pytest.raises(ModelError, match="no trained model"):
        default_bundle_dir(compose([]))
    assert not (cwd / "mlflow.db").exists() and not (cwd / "mlruns").exists()
    assert (root / ".cmet" / "mlflow").is_dir()


def test_cli_edit_output_carries_the_provenance_tags(tiny_bundle, short_video, tmp_path):
    import subprocess
    import sys

    from cmet.provenance import read_tags

    out = tmp_path / "o.mp4"
    cmd = [sys.executable, "-m", "flows.cli", "edit", "--video", str(short_video[0]), "--emotion", "happy"]
    r = subprocess.run([*cmd, "--out", str(out), "--model", str(tiny_bundle)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-800:]
    t = read_tags(out)
    assert t.get("cmet_edited") == "true" and t.get("cmet_target") == "happy", t
    assert t.get("cmet_tool", "").startswith("cmet-ops ") and t.get("cmet_date", "").endswith("Z"), t
    assert "synthetically edited" in t.get("comment", ""), t


def test_a_bundle_folder_loads_while_the_video_is_tracked(cfg, tiny_bundle, short_video, tmp_path):
    """Given a folder, edit_video checks the target on the bundle's banks before any video work and
    loads the weights in a helper thread: the same edit as with the loaded bundle; a weights file
    that does not load is still one ModelError (after the tracking)."""
    import shutil
    import subprocess
    import sys

    from cmet.edit import edit_video
    from cmet.errors import ModelError
    from cmet.model.bundle import ModelBundle

    folder = tiny_bundle
    mp4 = short_video[0]
    loaded = edit_video(mp4, "happy", bundle=ModelBundle.load(folder), cfg=cfg)
    lazy = edit_video(mp4, "happy", bundle=folder, cfg=cfg, threads=1)
    np.testing.assert_allclose(lazy.offsets, loaded.offsets, atol=1e-6)
    assert "wait_model" in lazy.timings
    with pytest.raises(UnknownEmotionError, match="joyful"):  # before the video: a missing one is not read
        edit_video(tmp_path / "absent.mp4", "joyful", bundle=folder, cfg=cfg)
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelError):
        edit_video(mp4, "happy", bundle=broken, cfg=cfg)
    # the header alone (sizes, banks) needs no torch
    code = (
        "import sys; from cmet.model.bundle import ModelBundle; "
        f"b = ModelBundle.load({str(folder)!r}, weights=False); "
        "print(b.d_speech, sorted(b.banks)[:1], b.connector is None, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-2:] == ["True", "False"] and out.startswith("8")
