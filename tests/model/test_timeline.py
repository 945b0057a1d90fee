"""The emotion timeline (issue 25): the one parser, its errors naming the entry, the cross-fade, the
per-segment offsets and the speech-track mode."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from cmet.errors import DataError, ModelError, UnknownEmotionError
from cmet.timeline import Timeline, fade_in, resolve_timeline
from cmet.timeline_parse import parse_timeline


# ------------------------------------------------------------------------------ parser
def test_string_form_entries_intensity_transition_blend():
    tl = parse_timeline("0:neutral, 2.0:happy@0.8, 4.5s:sad~0.5, 7:happy=0.7+surprised=0.3")
    s = tl.segments
    assert [x.start_s for x in s] == [0.0, 2.0, 4.5, 7.0]
    assert s[0].is_neutral and s[1].target.emotion == "happy" and s[1].intensity == 0.8
    assert s[2].transition_s == 0.5 and s[2].target.emotion == "sad"
    assert dict(s[3].target.blend) == pytest.approx({"happy": 0.7, "surprised": 0.3})
    # a default transition (1 s) shortened to the gaps to its neighbours; a first entry at 0 has none
    assert s[0].transition_s == 0.0 and s[1].transition_s == 1.0 and s[3].transition_s == 1.0
    assert parse_timeline("0:happy, 0.4:sad").segments[1].transition_s == pytest.approx(0.4)
    # describe() is parseable again to the same timeline (what the provenance tag carries)
    again = parse_timeline(tl.describe())
    assert [(x.start_s, x.intensity, x.transition_s) for x in again.segments] == [
        (x.start_s, x.intensity, x.transition_s) for x in s
    ]


def test_file_forms_yaml_json_and_mapping_read_like_the_string(tmp_path):
    ref = parse_timeline("0:happy, 2.5:sad@0.5~0.4, 5:surprised")
    entries = [
        {"start": 0, "emotion": "happy"},
        {"start": 2.5, "emotion": "sad", "intensity": 0.5, "transition": 0.4},
        "5:surprised",
    ]
    (tmp_path / "t.json").write_text(json.dumps({"segments": entries}))
    (tmp_path / "t.yaml").write_text(
        "segments:\n  - {start: 0, emotion: happy}\n  - {start: 2.5, emotion: sad, intensity: 0.5, transition: 0.4}\n"
        "  - '5:surprised'\n"
    )
    key = lambda t: [(x.start_s, x.target.describe(), x.intensity, x.transition_s) for x in t.segments]  # noqa: E731
    for form in (tmp_path / "t.json", str(tmp_path / "t.yaml"), json.dumps(entries), entries):
        assert key(parse_timeline(form)) == key(ref)


def test_file_targets_features_relative_to_the_file(tmp_path):
    np.save(tmp_path / "v.npy", np.ones((3, 8), np.float32))
    (tmp_path / "t.yaml").write_text("- {start: 0, features: v.npy}\n- '1:happy'\n")
    tl = parse_timeline(tmp_path / "t.yaml", d_speech=8)
    assert tl.segments[0].target.kind == "features" and tl.segments[0].target.features.shape == (3, 8)
    with pytest.raises(DataError, match=r"timeline entry 1.*expects \[k, 4\]"):
        parse_timeline(tmp_path / "t.yaml", d_speech=4)
    with pytest.raises(DataError, match="not accepted here"):
        parse_timeline(f"0:{tmp_path / 'v.npy'}", allow_paths=False)


@pytest.mark.parametrize(
    "text, words",
    [
        ("0:happy, 3:sad, 2:angry", r"timeline entry 3 \('2:angry'\) starts at 2 s, not after entry 2"),
        ("0:happy, 2:sad, 2:angry", r"entry 3.*starts must increase"),
        ("0:happy, 2:sad~1.5, 2.5:angry~0.5", r"entry 3.*overlaps entry 2's transition"),
        ("0:happy, 2:sad~-1", r"entry 2.*transition -1 s is negative"),
        ("0:happy, 2:sad@-1", r"entry 2.*intensity -1 is negative"),
        ("0:happy, x:sad", r"entry 2.*start 'x' is not a number"),
        ("0:happy, 2", r"entry 2 \('2'\) is not START:TARGET"),
        ("0:happy=0.7,sad=0.3", r"join a blend's terms with '\+'"),
        ("0:happy, 2:", r"entry 2.*is not START:TARGET"),
        ("", "timeline: empty"),
        ("0:happy, 2:/no/such/file.npy", r"entry 2.*does not exist"),
        ('[{"start": 0}]', r"entry 1.*exactly one of emotion"),
        ('[{"start": 0, "emotion": "happy", "speed": 2}]', r"entry 1.*unknown keys \['speed'\]"),
        ('{"segments": [], "fade": 1}', r"needs 'segments'"),
        ("[1, 2", "not valid JSON"),
    ],
)
def test_bad_timelines_name_the_entry(text, words):
    with pytest.raises(DataError, match=words):
        parse_timeline(text)


def test_unknown_emotion_and_start_past_the_end_name_the_entry(tiny_bundle):
    with pytest.raises(UnknownEmotionError, match=r"timeline entry 2 \('2:joy'\).*unknown emotion 'joy'"):
        resolve_timeline(parse_timeline("0:happy, 2:joy"), tiny_bundle)
    with pytest.raises(
        DataError, match=r"timeline entry 2 \('9:sad'\) starts at 9 s, past the end of the video \(7.00 s\)"
    ):
        parse_timeline("0:happy, 9:sad").check_duration(7.0)


def test_bad_yaml_file_is_a_clear_error(tmp_path):
    (tmp_path / "t.yaml").write_text("segments: [ {start: 0, emotion: happy\n")
    with pytest.raises(DataError, match="t.yaml: not valid YAML"):
        parse_timeline(tmp_path / "t.yaml")
    with pytest.raises(DataError, match="does not exist"):
        parse_timeline(tmp_path / "none.yaml")


# ------------------------------------------------------------------------------ cross-fade
def test_weights_partition_of_unity_and_raised_cosine():
    tl = parse_timeline("0:happy, 2:sad~1, 4:angry~0")
    w = tl.weights(150, 25.0)
    assert w.shape == (3, 150)
    np.testing.assert_allclose(w.sum(0), 1.0, atol=1e-12)
    t = np.arange(150) / 25.0
    np.testing.assert_allclose(w[1][(t >= 2.5) & (t < 4)], 1.0)  # held between the transitions
    np.testing.assert_allclose(w[1][t == 2.0], 0.5)  # centred on the start
    np.testing.assert_allclose(w[2][t < 4], 0.0)  # ~0: a cut
    assert (np.diff(w[1][(t >= 1.5) & (t <= 2.5)]) > 0).all()  # monotone fade
    np.testing.assert_allclose(fade_in(np.array([1.5, 2.0, 2.5]), 2.0, 1.0), [0.0, 0.5, 1.0], atol=1e-12)
    # before a first segment that starts later: the input's own face (all weights 0)
    late = parse_timeline("1:happy~0").weights(50, 25.0)
    assert late[0, :25].max() == 0.0 and late[0, 25:].min() == 1.0


def _codes(tiny_features, n=125):
    """[n, D_v] neutral codes: the test split's neutral clips one after another."""
    test = tiny_features.split("test")
    idx = np.flatnonzero(test.clips["emotion"].to_numpy() == "neutral")
    return np.concatenate([test.frames(int(i)) for i in idx])[:n].astype(np.float32)


def test_segment_offsets_equal_the_whole_clip_edit_away_from_transitions(tiny_bundle, tiny_features):
    """Each segment's held frames carry the same offsets as the one-target edit of the whole clip
    (its autoregressive chain conditioned on that segment's target, warmed up early)."""
    from cmet.infer import timeline_offsets
    from cmet.timeline import resolve_plan

    codes, fps = _codes(tiny_features), 25.0
    tl = parse_timeline("0:happy, 2.4:sad~0.6")
    off = timeline_offsets(tiny_bundle, codes, resolve_plan(tl, tiny_bundle), fps)
    w = tl.weights(len(codes), fps)
    for i, e in enumerate(("happy", "sad")):
        whole = tiny_bundle.predict_offsets(codes, e)
        held = w[i] > 0.999
        np.testing.assert_allclose(off[held], whole[held], atol=0.05 * np.abs(whole).max())
    # neutral = no edit; intensity scales the segment
    tl0 = resolve_plan(parse_timeline("0:neutral, 2.4:sad@0.5~0"), tiny_bundle)
    half = timeline_offsets(tiny_bundle, codes, tl0, fps)
    cut = int(2.4 * fps)
    assert np.abs(half[:cut]).max() == 0.0
    sad_half = tiny_bundle.predict_offsets(codes, "sad", intensity=0.5)
    np.testing.assert_allclose(half[cut + 25 :], sad_half[cut + 25 :], atol=0.05 * np.abs(sad_half).max())


def test_transitions_change_no_faster_than_the_input_does(tiny_bundle, tiny_features):
    """Inside a cross-fade the per-frame change of the edited codes stays within the input's own
    largest per-frame change; a cut (~0) does not (so the measure can fail)."""
    from cmet.face.edit_measures import code_steps
    from cmet.infer import timeline_offsets
    from cmet.timeline import resolve_plan

    codes, fps = _codes(tiny_features), 25.0
    natural = code_steps(codes).max()

    def worst(text):
        tl = parse_timeline(text)
        edited = codes + timeline_offsets(tiny_bundle, codes, resolve_plan(tl, tiny_bundle), fps)
        k = int(2.4 * fps)
        return code_steps(edited)[k - 15 : k + 15].max()

    assert worst("0:happy@3, 2.4:sad@3~1") <= natural
    assert worst("0:happy@3, 2.4:sad@3~0") > natural


# ------------------------------------------------------------------------------ speech track
def _fake_bundle(d=8):
    from cmet.audio.spec import EncoderSpec

    spec = EncoderSpec(
        "emotion2vec+large", d, {"source": "precomputed", "feature_subdir": "emotion2vec+large_features"}
    )
    return SimpleNamespace(d_speech=d, speech_encoder=spec)


def test_speech_track_npy_with_hop_or_sidecar(tmp_path):
    from cmet.timeline_speech import speech_timeline

    b = _fake_bundle()
    feats = np.arange(24, dtype=np.float32).reshape(3, 8)
    np.save(tmp_path / "track.npy", feats)
    with pytest.raises(DataError, match="no times for them"):
        speech_timeline(tmp_path / "track.npy", b)
    tl = speech_timeline(tmp_path / "track.npy", b, hop_s=2.0, transition_s=0.5)
    assert [s.start_s for s in tl.segments] == [0.0, 2.0, 4.0]
    assert all(s.target.kind == "features" for s in tl.segments) and tl.segments[1].transition_s == 0.5
    np.testing.assert_array_equal(tl.segments[2].target.features, feats[2:3])  # read, not computed
    (tmp_path / "track.json").write_text(json.dumps({"starts_s": [0, 1.5, 4]}))
    tl = speech_timeline(tmp_path / "track.npy", b)
    assert [s.start_s for s in tl.segments] == [0.0, 1.5, 4.0] and "3 windows" in tl.describe()
    (tmp_path / "track.json").write_text(json.dumps({"starts_s": [0, 3, 2]}))
    with pytest.raises(DataError, match="increasing"):
        speech_timeline(tmp_path / "track.npy", b)
    np.save(tmp_path / "wide.npy", np.ones((2, 9), np.float32))
    with pytest.raises(DataError, match=r"\[8\]|8\]"):
        speech_timeline(tmp_path / "wide.npy", b, hop_s=1)
    with pytest.raises(DataError, match="hop"):
        speech_timeline(tmp_path / "track.npy", b, hop_s=-1)


def test_speech_track_raw_audio_goes_through_the_models_encoder(tiny_bundle, tmp_path):
    """Raw audio of a model whose speech space has no encoder here -> the encoder's ModelError."""
    import wave as wavmod

    from cmet.timeline_speech import speech_timeline

    path = tmp_path / "speech.wav"
    x = (0.3 * np.sin(np.arange(32000) * 2 * np.pi * 220 / 16000) * 32767).astype(np.int16)
    with wavmod.open(str(path), "wb") as f:
        f.setnchannels(1), f.setsampwidth(2), f.setframerate(16000), f.writeframes(x.tobytes())
    with pytest.raises(ModelError, match=r"speech.wav.*no emotion2vec\+large_features/speech.npy.*simulated"):
        speech_timeline(path, tiny_bundle)


@pytest.mark.shared
def test_speech_track_of_real_mead_clips_happy_then_sad(tmp_path):
    """A real track: two MEAD clips of W009 (happy, then sad) one after another, with the paper's
    emotion2vec+large vectors of the clips beside it as the windows; the window times are the clips'
    starts (sidecar), and each window's vector is the released vector of its clip."""
    import soundfile as sf

    from cmet.config import compose
    from cmet.timeline_speech import speech_timeline

    rel = __import__("pathlib").Path(str(compose([]).paths.release_dir)) / "audios" / "MEAD"
    if not rel.is_dir():
        pytest.skip("../shared release absent")
    clips = [sorted((rel / e).glob("W009_level_3_*.wav"))[0] for e in ("happy", "sad")]
    waves = [sf.read(c, dtype="float32")[0] for c in clips]
    sf.write(tmp_path / "track.wav", np.concatenate(waves), 16000)
    vecs = [np.load(c.parent / "emotion2vec+large_features" / f"{c.stem}.npy").reshape(-1) for c in clips]
    (tmp_path / "emotion2vec+large_features").mkdir()
    np.save(tmp_path / "emotion2vec+large_features" / "track.npy", np.stack(vecs))
    starts = [0.0, len(waves[0]) / 16000]
    (tmp_path / "emotion2vec+large_features" / "track.json").write_text(json.dumps({"starts_s": starts}))
    tl = speech_timeline(tmp_path / "track.wav", _fake_bundle(1024))
    assert [s.start_s for s in tl.segments] == pytest.approx(starts)
    for s, v in zip(tl.segments, vecs, strict=True):
        np.testing.assert_array_equal(s.target.features[0], v)
    # without the sidecar the two windows tile the track evenly
    (tmp_path / "emotion2vec+large_features" / "track.json").unlink()
    tl = speech_timeline(tmp_path / "track.wav", _fake_bundle(1024))
    assert tl.segments[1].start_s == pytest.approx(sum(len(w) for w in waves) / 16000 / 2)


# ------------------------------------------------------------------------------ the CLI
@pytest.mark.parametrize(
    "kw, words",
    [
        ({"timeline": "0:happy, 2:sad, 1:angry"}, "timeline entry 3"),
        ({"timeline": "0:happy, 2:sad~-1"}, "negative"),
        ({"timeline": "0:happy", "emotion": "sad"}, "exactly one of"),
        ({"emotion": "sad", "transition": 1.0}, "--transition goes with"),
        ({"timeline": "0:happy", "timeline_hop": 1.0}, "--timeline-hop goes with --timeline-speech"),
    ],
)
def test_cli_target_options_refuse_bad_timelines(kw, words):
    from flows.commands.edit import cli_target

    with pytest.raises(DataError, match=words):
        cli_target(d_speech=8, **kw)


def test_cli_bad_timeline_is_one_line_exit_2_and_writes_nothing(tiny_run, tmp_path):
    import subprocess
    import sys

    from serving.sample import synthetic_face_video

    video = synthetic_face_video(tmp_path / "v.mp4", seconds=1.0, size=128)
    cmd = [sys.executable, "-m", "flows.cli", "edit", "--video", str(video), "--out", str(tmp_path / "o.mp4")]
    cmd += ["--model", tiny_run[0]["bundle_dir"], "--timeline", "0:happy, 2:sad, 1:angry"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "timeline entry 3 ('1:angry') starts at 1 s, not after entry 2" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o.mp4").exists()


def test_timeline_object_refuses_bad_segments_itself():
    from cmet.target import Target
    from cmet.timeline import Segment

    with pytest.raises(DataError, match="no entries"):
        Timeline(())
    with pytest.raises(DataError, match="starts must increase"):
        Timeline((Segment(1.0, Target.of("happy")), Segment(0.5, Target.of("sad"))))
