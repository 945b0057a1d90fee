"""Request checks without a server: limits, probing, features, blends, the one-target rule."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.errors import ConfigError, DataError, UnknownEmotionError, VideoError
from serving.errors import PayloadTooLargeError, UnsupportedMediaError
from serving.inputs import (
    Limits,
    check_intensity,
    load_features,
    parse_target,
    probe_video,
)

KNOWN = ["angry", "happy", "neutral", "sad"]


def test_probe_counts_frames_and_reads_size(sample_video):
    info = probe_video(sample_video, Limits())
    assert info.n_frames == 25 and info.fps == pytest.approx(25.0)
    assert (info.width, info.height) == (128, 128)
    assert info.duration_s == pytest.approx(1.0)


@pytest.mark.parametrize(
    "limits, err, words",
    [
        (Limits(max_video_s=0.5), PayloadTooLargeError, "longer than the limit of 0.5 s"),
        (Limits(max_frame_side=100), PayloadTooLargeError, "over the limit of 100 px"),
        (Limits(min_frames=30), VideoError, "at least 30"),
        (Limits(max_upload_mb=0.001), PayloadTooLargeError, "upload limit"),
    ],
)
def test_probe_limits(sample_video, limits, err, words):
    with pytest.raises(err, match=words):
        probe_video(sample_video, limits)


def test_not_a_video(tmp_path):
    p = tmp_path / "x.mp4"
    p.write_bytes(b"this is not a video" * 100)
    with pytest.raises(UnsupportedMediaError, match="expected video .* holds unrecognised bytes"):
        probe_video(p, Limits())
    png = tmp_path / "x.mp4"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(UnsupportedMediaError, match="holds png"):
        probe_video(png, Limits())
    empty = tmp_path / "e.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        probe_video(empty, Limits())


def test_features_shapes_and_refusals(tmp_path):
    lim = Limits()
    p = tmp_path / "f.npy"
    np.save(p, np.ones((3, 1, 16), np.float32))  # the release's per-clip layout
    assert load_features(p, 16, lim).shape == (3, 16)
    np.save(p, np.ones(16, np.float64))
    out = load_features(p, 16, lim)
    assert out.shape == (1, 16) and out.dtype == np.float32
    with pytest.raises(DataError, match="does not match the model's speech dimension 16"):
        np.save(p, np.ones((2, 8), np.float32))
        load_features(p, 16, lim)
    arr = np.ones((2, 16), np.float32)
    arr[0, 3] = np.nan
    np.save(p, arr)
    with pytest.raises(DataError, match="NaN"):
        load_features(p, 16, lim)
    np.save(p, np.ones((40, 16), np.float32))
    with pytest.raises(PayloadTooLargeError, match="limit is 32"):
        load_features(p, 16, lim)


def test_pickled_features_are_never_loaded(tmp_path):
    p = tmp_path / "evil.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"\(pickles\) are not accepted"):
        load_features(p, 16, Limits())
    q = tmp_path / "junk.npy"
    q.write_bytes(b"\x80\x04junk")
    with pytest.raises(UnsupportedMediaError, match="expected npy"):
        load_features(q, 16, Limits())


def test_blend_in_every_spelling_and_bounded_weights():
    kw = dict(
        emotion=None, target_speech=None, target_features=None, known=KNOWN, d_speech=16, limits=Limits()
    )
    want = {"happy": 0.75, "sad": 0.25}
    for spelling in ('{"happy": 3, "sad": 1}', {"happy": 3, "sad": 1}, "happy:3,sad:1", "happy=3, sad=1"):
        t = parse_target(blend=spelling, **kw)
        assert t.kind == "blend" and dict(t.blend) == pytest.approx(want), spelling
    with pytest.raises(UnknownEmotionError, match="'joy'"):
        parse_target(blend="joy:1", **kw)
    for bad in (
        "1e308,1e308",
        "happy:1e308,sad:1e308",
        "happy:-1",
        '{"happy": NaN}',
        "happy:x",
        '{"happy": 0}',
    ):
        with pytest.raises(DataError):
            parse_target(blend=bad, **kw)
    many = ",".join(f"{e}:1" for e in KNOWN)
    with pytest.raises(DataError, match="limit is 2"):
        parse_target(**{**kw, "limits": Limits(max_blend_terms=2)}, blend=many)


def test_intensity_range():
    lim = Limits(intensity=(0.0, 2.0))
    assert check_intensity("1.5", lim) == 1.5
    for bad in (-0.1, 2.5, float("nan"), "x"):
        with pytest.raises(ConfigError, match="intensity"):
            check_intensity(bad, lim)


def test_exactly_one_target(tmp_path):
    lim = Limits()
    kw = dict(known=KNOWN, d_speech=16, limits=lim)
    assert (
        parse_target(emotion="happy", blend=None, target_speech=None, target_features=None, **kw).kind
        == "name"
    )
    with pytest.raises(DataError, match="exactly one target"):
        parse_target(emotion=None, blend=None, target_speech=None, target_features=None, **kw)
    with pytest.raises(DataError, match=r"\['emotion', 'blend'\]"):
        parse_target(emotion="happy", blend="sad:1", target_speech=None, target_features=None, **kw)
    with pytest.raises(UnknownEmotionError):
        parse_target(emotion="nope", blend=None, target_speech=None, target_features=None, **kw)


def test_engine_takes_a_bare_bundle_folder_too(model_dir):
    from serving.engine import Engine

    e = Engine(model_dir / "bundle")
    assert e.emotions == ["angry", "happy", "neutral", "sad"] and e.d_speech == 16
    assert e.version()["version"] == "unregistered"
    with pytest.raises(Exception, match="neither a serving model folder"):
        Engine(model_dir / "nothing")


def test_speech_target_uses_the_encoder_the_bundle_names(tmp_path, sample_video):
    """A bundle trained on prosody features (its spec in bundle.json): the service encodes speech clips
    with that encoder; the 94-d features then drive the edit."""
    import soundfile as sf

    from cmet.audio.encoders import get_encoder
    from serving.engine import Engine
    from serving.request import EditFields, build_request
    from tests.serving.conftest import make_model_dir

    enc = get_encoder({"encoder": "prosody"})
    spec = {"name": enc.name, "dim": enc.dim, "config": {"encoder": "prosody"}}
    engine = Engine(make_model_dir(tmp_path / "m", d_speech=enc.dim, encoder=spec))
    t = np.arange(16000) / 16000
    wav = tmp_path / "s.wav"
    sf.write(
        wav, (0.3 * np.sin(2 * np.pi * 200 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), 16000
    )
    req = build_request(
        EditFields(video=sample_video, target_speech=[wav]), engine, Limits(), max_s=20.0, render=False
    )
    assert req.target.kind == "speech" and req.description == "speech x1"
    assert np.asarray(req.value).shape == (1, enc.dim)
    np.testing.assert_allclose(req.value, enc.encode_files([wav]), rtol=1e-5)
