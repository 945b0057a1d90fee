"""Audio hygiene: formats, rates, channels, silence, clipping, corrupt files, empty folders."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.audio.io import check_audio, find_audio, load_audio
from cmet.errors import AudioError, CmetError


def _peak_hz(w: np.ndarray, sr: int = 16000) -> float:
    spec = np.abs(np.fft.rfft(w * np.hanning(w.size)))
    return float(np.fft.rfftfreq(w.size, 1 / sr)[spec.argmax()])


def test_wrong_rate_and_stereo_are_resampled_and_downmixed(wav_file):
    sr = 44100
    t = np.arange(sr) / sr
    left = 0.4 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, left], axis=1)
    p = wav_file("st.wav", stereo, sr)
    w, rep = load_audio(p)
    assert w.dtype == np.float32 and w.ndim == 1
    assert abs(w.size - 16000) <= 2
    assert abs(_peak_hz(w) - 440) < 3  # pitch survives resampling
    assert rep.orig_sr == 44100 and rep.channels == 2 and rep.resampled and rep.downmixed
    assert any("resampled" in x for x in rep.warnings) and any("downmixed" in x for x in rep.warnings)


def test_flac_8k(wav_file, tone):
    p = wav_file("a.flac", tone(200, 8000, 0.5), 8000)
    w, rep = load_audio(p)
    assert rep.orig_sr == 8000 and abs(w.size - 8000) <= 2
    assert abs(_peak_hz(w) - 200) < 5


@pytest.mark.parametrize("ext,codec", [(".mp3", "libmp3lame"), (".m4a", "aac")])
def test_compressed_formats_via_ffmpeg(tmp_path, wav_file, tone, ffmpeg, ext, codec):
    src = wav_file("src.wav", tone(220, 22050, 1.0), 22050)
    out = tmp_path / f"x{ext}"
    ffmpeg("-i", str(src), "-c:a", codec, str(out))
    w, rep = load_audio(out)
    assert abs(w.size / 16000 - 1.0) < 0.08  # encoder padding only
    assert abs(_peak_hz(w) - 220) < 5
    assert rep.orig_sr == 22050


def test_audio_track_of_an_mp4_and_mp4_without_audio(tmp_path, ffmpeg):
    vid = tmp_path / "v.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:duration=1",
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:s=32x32:d=1",
        "-shortest",
        "-c:v",
        "mpeg4",
        "-c:a",
        "aac",
        str(vid),
    )
    w, _ = load_audio(vid)
    assert abs(_peak_hz(w) - 300) < 5
    mute = tmp_path / "mute.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=32x32:d=1", "-c:v", "mpeg4", str(mute))
    with pytest.raises(AudioError, match="no audio"):
        load_audio(mute)


def test_silent_audio_is_an_error(wav_file):
    p = wav_file("silent.wav", np.zeros(16000, np.float32))
    with pytest.raises(AudioError, match="silent"):
        load_audio(p)


def test_corrupt_file_is_a_clear_error(tmp_path):
    p = tmp_path / "broken.wav"
    p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(200)))
    with pytest.raises(AudioError, match="broken.wav"):
        load_audio(p)
    q = tmp_path / "broken.m4a"
    q.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(AudioError, match="broken.m4a"):
        load_audio(q)


def test_clipping_is_reported_not_fatal(tone):
    w = np.clip(tone(150, 16000, 1.0, amp=2.0), -1, 1)
    rep = check_audio(w, 16000, "loud")
    assert rep.clipped and any("clipping" in x for x in rep.warnings)
    rep2 = check_audio(tone(150, 16000, 1.0, amp=0.2), 16000, "ok")
    assert not rep2.clipped and rep2.warnings == []


def test_too_short_and_missing_and_unsupported(tmp_path, wav_file, tone):
    p = wav_file("short.wav", tone(150, 16000, 0.05))
    with pytest.raises(AudioError, match="at least"):
        load_audio(p, min_duration_s=0.5)
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(AudioError, match="unsupported"):
        load_audio(tmp_path / "x.txt")


def test_folder_without_audio(tmp_path, wav_file, tone):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    with pytest.raises(AudioError, match="no audio files"):
        find_audio(tmp_path / "empty")
    with pytest.raises(CmetError):
        find_audio(tmp_path / "missing")
    wav_file("d/a.wav", tone())
    wav_file("d/sub/b.flac", tone())
    assert [p.name for p in find_audio(tmp_path / "d")] == ["a.wav", "b.flac"]
