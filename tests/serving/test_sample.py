"""The demo page's sample clip exists also for a service run from the source tree (no bento build)."""

from __future__ import annotations

import pytest


def test_sample_clip_is_made_when_the_build_did_not_write_one(tmp_path):
    """Made once (synthetic without ../shared), kept afterwards; a folder it cannot write to gives a
    warning and no clip, not a failed start."""
    from cmet.media import probe_video
    from serving.sample import ensure_sample

    static = tmp_path / "static"
    static.mkdir()
    clip = ensure_sample(static, None, seconds=1.0, size=128)
    assert clip == static / "sample.mp4" and probe_video(clip).n_frames == 25
    assert [p.name for p in static.iterdir()] == ["sample.mp4"]  # no temporary file left
    mtime = clip.stat().st_mtime_ns
    assert ensure_sample(static, None) == clip and clip.stat().st_mtime_ns == mtime  # kept, not rewritten
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.warns(UserWarning, match="could not be written"):
        assert ensure_sample(blocker / "static", None, seconds=1.0, size=128) is None
