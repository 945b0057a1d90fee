"""The service's ``timeline`` / ``timeline_speech`` fields: the same parser as the CLI, the same
errors (400 naming the entry), the timeline in the output's provenance tags."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.serving.conftest import D_SPEECH


def _video(p):
    return {"video": ("face.mp4", p.read_bytes(), "video/mp4")}


def err(r):
    return r.json()["message"]


def test_timeline_edit_writes_its_segments_in_the_provenance(client, sample_video, tmp_path):
    from cmet.provenance import read_tags

    r = client.post("/edit", files=_video(sample_video), data={"timeline": "0:happy, 0.5:sad~0.2"})
    assert r.status_code == 200, r.text
    out = tmp_path / "t.mp4"
    out.write_bytes(r.content)
    tags = read_tags(out)
    assert tags["cmet_target"] == "timeline"
    assert tags["cmet_timeline"] == "0:happy@1~0, 0.5:sad@1~0.2"
    assert "timeline" in tags["comment"]


def test_timeline_offsets_follow_the_segments(client, sample_video):
    """The per-frame offsets of a two-segment timeline equal the single-target edits away from the
    transition (same parser and blend as the library), and the JSON form reads like the string."""
    one = {
        e: client.post("/expressions", files=_video(sample_video), data={"emotion": e})
        for e in ("happy", "sad")
    }
    string = client.post("/expressions", files=_video(sample_video), data={"timeline": "0:happy, 0.6:sad~0"})
    js = json.dumps([{"start": 0, "emotion": "happy"}, {"start": 0.6, "emotion": "sad", "transition": 0}])
    as_json = client.post("/expressions", files=_video(sample_video), data={"timeline": js})
    for r in (*one.values(), string, as_json):
        assert r.status_code == 200, r.text
    off = np.asarray(string.json()["offsets"])
    np.testing.assert_allclose(off, np.asarray(as_json.json()["offsets"]), atol=1e-6)
    cut = int(round(0.6 * string.json()["fps"]))
    assert not np.allclose(off[:cut], off[cut:].mean(0), atol=1e-3)
    assert string.json()["target"].startswith("0:happy")


@pytest.mark.parametrize(
    "data, words",
    [
        ({"timeline": "0:happy, 0.3:sad, 0.2:angry"}, "timeline entry 3"),  # unsorted
        ({"timeline": "0:happy, 0.5:happy, 0.5:sad"}, "starts must increase"),
        ({"timeline": "0:happy, 5:sad"}, "past the end of the video"),
        ({"timeline": "0:happy, 0.5:joy"}, "unknown emotion 'joy'"),
        ({"timeline": "0:happy, 0.5:sad~-1"}, "negative"),
        ({"timeline": "0:happy, 0.5:sad~0.8, 0.7:angry~0.2"}, "overlaps"),
        ({"timeline": "0:/etc/passwd.npy"}, "not accepted here"),
        ({"timeline": "0:happy", "emotion": "sad"}, "exactly one target"),
        ({"emotion": "sad", "transition": "0.5"}, "transition goes with timeline"),
        ({"timeline": "0:happy", "timeline_hop": "0.5"}, "timeline_hop goes with timeline_speech"),
        ({"timeline": "happy"}, "is not START:TARGET"),
    ],
)
def test_bad_timelines_are_400_naming_the_entry(client, sample_video, data, words):
    r = client.post("/edit", files=_video(sample_video), data=data)
    assert r.status_code == 400, r.text
    assert words in err(r), err(r)


def test_timeline_speech_windows(client, sample_video, tmp_path):
    """A .npy [windows, D] track with its hop edits window by window; without a hop it is a 400; a
    track longer than the video names the window past the end; raw audio needs the model's encoder."""
    rng = np.random.default_rng(1)
    track = tmp_path / "track.npy"
    np.save(track, rng.normal(size=(2, D_SPEECH)).astype(np.float32))
    up = {
        **_video(sample_video),
        "timeline_speech": ("track.npy", track.read_bytes(), "application/octet-stream"),
    }
    r = client.post("/expressions", files=up, data={"timeline_hop": "0.5", "transition": "0.2"})
    assert r.status_code == 200, r.text
    assert "2 windows" in r.json()["target"]
    r = client.post("/expressions", files=up)
    assert r.status_code == 400 and "window hop" in err(r)
    r = client.post("/expressions", files=up, data={"timeline_hop": "0.9"})
    assert r.status_code == 200, r.text
    r = client.post("/expressions", files=up, data={"timeline_hop": "2"})
    assert r.status_code == 400 and "timeline entry 2" in err(r) and "past the end" in err(r)
    np.save(track, rng.normal(size=(2, D_SPEECH + 1)).astype(np.float32))
    up["timeline_speech"] = ("track.npy", track.read_bytes(), "application/octet-stream")
    r = client.post("/expressions", files=up, data={"timeline_hop": "0.5"})
    assert r.status_code == 400 and f"[windows, {D_SPEECH}]" in err(r)


def test_timeline_speech_raw_audio_without_an_encoder_is_a_clear_400(client, sample_video, tmp_path):
    import subprocess

    from cmet.media import ffmpeg_exe

    wav = tmp_path / "s.wav"
    subprocess.run(
        [ffmpeg_exe(), "-y", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=220:duration=1", str(wav)],
        check=True,
    )
    up = {**_video(sample_video), "timeline_speech": ("s.wav", wav.read_bytes(), "audio/wav")}
    r = client.post("/edit", files=up)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "not_supported_by_model" and "timeline_speech: raw audio" in err(r)
    assert "beside it" not in err(r)  # an upload: no server file names, no folder to look beside
