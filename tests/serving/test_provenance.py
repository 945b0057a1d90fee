"""Provenance: tags in every served mp4 (read back as ffprobe lists them) and the optional visible mark."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest


def _frame(path, i=5):
    import cv2

    cap = cv2.VideoCapture(str(path))
    for _ in range(i + 1):
        ok, f = cap.read()
    cap.release()
    assert ok
    return f.astype(np.int16)


def test_tags_are_written_and_read_back(sample_video, tmp_path):
    from cmet.provenance import read_tags, stamp, tags

    out = tmp_path / "o.mp4"
    shutil.copy(sample_video, out)
    meta = tags({"model": "cmet", "version": "7", "alias": "champion"}, "happy:0.60+sad:0.40", 1.5, "0.1.0")
    stamp(out, meta)
    got = read_tags(out)
    for k in (
        "cmet_edited",
        "cmet_tool",
        "cmet_model",
        "cmet_target",
        "cmet_intensity",
        "cmet_date",
        "comment",
    ):
        assert got[k] == meta[k], k
    assert np.array_equal(_frame(out), _frame(sample_video))  # -c copy: the frames are untouched
    ffprobe = shutil.which("ffprobe")
    if ffprobe:  # the same tags through ffprobe itself where it is installed
        import json

        r = subprocess.run(
            [ffprobe, "-v", "error", "-show_format", "-of", "json", str(out)], capture_output=True
        )
        assert json.loads(r.stdout)["format"]["tags"]["cmet_target"] == "happy:0.60+sad:0.40"


def test_visible_mark_changes_only_a_corner(sample_video, tmp_path):
    from cmet.provenance import read_tags, stamp

    out = tmp_path / "m.mp4"
    shutil.copy(sample_video, out)
    stamp(out, {"cmet_edited": "true"}, mark="AI-edited")
    assert read_tags(out)["cmet_edited"] == "true"
    a, b = _frame(sample_video), _frame(out)
    h, w = a.shape[:2]
    diff = np.abs(a - b).max(axis=2)
    corner = diff[int(h * 0.75) :, : int(w * 0.6)]
    assert corner.mean() > 10  # the mark is drawn
    assert diff[: h // 2].mean() < 3  # the face area is only re-encoded


def test_stamp_failure_is_a_clear_error(tmp_path):
    from cmet.errors import VideoError
    from cmet.provenance import stamp

    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(VideoError, match="provenance"):
        stamp(bad, {"a": "b"})
    assert bad.read_bytes() == b"not a video"


def test_cli_names_the_champion_by_registry_version():
    """`cmet edit` with the default model tags the identity flows.registry.default_bundle returns for
    the champion (tested in tests/pipeline/test_fetch_bundle.py); a folder given with --model keeps
    its own name."""
    from cmet.provenance import tags

    champion = {"model": "cmet", "version": "3", "alias": "champion"}
    assert tags(champion, "happy", 1.0, "0")["cmet_model"] == "cmet v3 (champion)"
    own = {"model": "my_bundle", "version": "local"}
    assert tags(own, "happy", 1.0, "0")["cmet_model"] == "my_bundle vlocal"
