"""The decode and encode pipes of cmet.media run in helper threads: frames arrive whole and in order,
a consumer that stops early stops ffmpeg, an encoder that dies is one VideoError and leaves no file."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cmet.errors import VideoError


def _frames(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frames whose mean grey level encodes their index (survives H.264)."""
    return np.stack([np.full((h, w, 3), (10 + 8 * i) % 240, np.uint8) for i in range(n)])


def test_frames_in_order_and_writable(tmp_path):
    from cmet.media import iter_frames, write_video

    path = write_video(tmp_path / "v.mp4", _frames(20), 25.0)
    got = list(iter_frames(path))
    assert len(got) == 20
    levels = [float(f.mean()) for f in got]
    assert np.allclose(levels, [10 + 8 * i for i in range(20)], atol=3)
    assert all(f.flags.writeable for f in got) and got[0].base is not got[1].base


def test_stopping_early_ends_the_decoder_thread(tmp_path):
    from cmet.media import iter_frames, write_video

    path = write_video(tmp_path / "v.mp4", _frames(30), 25.0)
    before = {t.name for t in threading.enumerate()}
    it = iter_frames(path)
    assert next(it).shape == (48, 64, 3)
    it.close()
    assert not [t for t in threading.enumerate() if t.name == "cmet-decode" and "cmet-decode" not in before]


def test_a_dead_encoder_is_one_error_and_no_file(tmp_path):
    from cmet.media import VideoSink

    out = tmp_path / "o.mp4"
    with pytest.raises(VideoError, match="ffmpeg"):
        with VideoSink(out, 64, 48, 25.0) as sink:
            sink.write(_frames(1)[0])
            sink.proc.kill()  # the encoder dies mid-video
            for f in _frames(200):
                sink.write(f)
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))
    assert not [t for t in threading.enumerate() if t.name == "cmet-encode"]


@pytest.mark.parametrize("size", [(48, 64), (47, 63)])
def test_colours_survive_the_encoder_at_even_and_odd_sizes(tmp_path, size):
    """Even sizes go to x264 as yuv420p converted here (cv2), odd ones as rgb24 through ffmpeg's own
    conversion: both give the colours back (BT.601 limited range, the decoder's assumption)."""
    from cmet.media import VideoSink, iter_frames

    h, w = size
    colours = np.array([[200, 40, 40], [40, 180, 60], [30, 60, 210], [128, 128, 128], [16, 16, 16]], np.uint8)
    frames = np.stack([np.broadcast_to(c, (h, w, 3)) for c in colours for _ in range(3)])
    with VideoSink(tmp_path / "c.mp4", w, h, 25.0) as sink:
        assert sink._yuv == (h % 2 == 0 and w % 2 == 0)
        for f in frames:
            sink.write(np.ascontiguousarray(f))
    got = np.stack(list(iter_frames(tmp_path / "c.mp4")))[:, :h, :w]  # odd sides are padded by one
    assert got.shape == frames.shape
    err = np.abs(got[:, 8:-8, 8:-8].astype(int) - frames[:, 8:-8, 8:-8]).mean(axis=(1, 2))
    assert err.max() < 4, err
