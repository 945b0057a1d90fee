"""The service's video limit is a budget of pixels x seconds (``serving.limits.max_pixel_seconds``,
``max_task_pixel_seconds`` for jobs): small frames may run long, large frames short; the side limit
is only a decoder-safety cap."""

from __future__ import annotations

import numpy as np
import pytest

from serving.errors import PayloadTooLargeError


def _clip(path, w, h, seconds, fps=5.0):
    from cmet.media import write_video

    return write_video(path, np.full((int(seconds * fps), h, w, 3), 90, np.uint8), fps)


def test_pixel_seconds_budget_trades_size_for_length(tmp_path):
    from serving.inputs import Limits, probe_video

    lim = Limits(max_pixel_seconds=64 * 64 * 4.0, max_task_pixel_seconds=64 * 64 * 40.0, max_video_s=20.0)
    small_long = _clip(tmp_path / "small.mp4", 32, 32, 10.0)  # 32x32 x 10 s = 2.5 budget-s of 64x64
    assert probe_video(small_long, lim, max_s=lim.max_video_s).n_frames == 50
    big = _clip(tmp_path / "big.mp4", 64, 64, 6.0)  # 64x64 x 6 s > 4 s
    with pytest.raises(
        PayloadTooLargeError, match=r"64x64 frames for longer than 4 s: over the limit of .* pixel x seconds"
    ):
        probe_video(big, lim, max_s=lim.max_video_s)
    job = probe_video(big, lim, max_s=lim.max_task_video_s)  # a job has the larger budget
    assert job.n_frames == 30 and (job.width, job.height) == (64, 64)


def test_defaults_take_a_minute_of_1080p_as_a_job_not_as_a_request():
    from serving.inputs import Limits

    lim = Limits()
    assert 1920 <= lim.max_frame_side
    assert 1920 * 1080 * 60 <= lim.max_task_pixel_seconds
    assert 1920 * 1080 * 60 > lim.max_pixel_seconds >= 1024 * 1024 * 20  # today's largest request still fits
