"""Audio input hygiene: any file, any rate, any channel count -> 16 kHz mono float32, checked.

* wav / flac / ogg: read with soundfile; mp3 / m4a / aac / mp4 (its audio track) / webm: decoded
  with the ffmpeg binary that ``imageio-ffmpeg`` ships (no system ffmpeg needed).
* Channels are averaged (downmix); any sample rate is resampled to 16 kHz with
  ``scipy.signal.resample_poly`` (polyphase, anti-aliased).
* Every load returns an :class:`AudioReport`: original rate/channels, duration, peak, RMS level,
  fraction of clipped samples and of silent frames, and warnings. A silent clip (peak below
  ``-60 dBFS``), an unreadable file and a clip shorter than asked for raise
  :class:`~cmet.errors.AudioError` naming the file. Clipping is reported, not fatal.
* :func:`find_audio` lists the audio files of a folder and raises a clear error when there is none.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from math import gcd
from pathlib import Path

import numpy as np

from cmet.errors import AudioError, DataError
from cmet.media import ffmpeg_exe

TARGET_SR = 16_000
SOUNDFILE_EXTS = {".wav", ".flac", ".ogg", ".aiff", ".aif"}
FFMPEG_EXTS = {".mp3", ".m4a", ".aac", ".mp4", ".mov", ".webm", ".mkv", ".opus", ".wma"}
AUDIO_EXTS = SOUNDFILE_EXTS | FFMPEG_EXTS

SILENCE_PEAK_DBFS = -60.0  # a clip whose peak is below this is silent
CLIP_LEVEL = 0.999  # |x| at or above this counts as clipped
CLIP_WARN_FRACTION = 1e-3  # warn when more than 0.1 % of samples are clipped


@dataclass
class AudioReport:
    """What :func:`load_audio` found about a clip (all levels in dBFS)."""

    source: str
    orig_sr: int
    channels: int
    duration_s: float
    peak_dbfs: float
    rms_dbfs: float
    clipped_fraction: float
    silent_fraction: float
    resampled: bool
    downmixed: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def clipped(self) -> bool:
        return self.clipped_fraction > CLIP_WARN_FRACTION

    def as_dict(self) -> dict:
        return asdict(self)


def _db(x: float) -> float:
    return float(20.0 * np.log10(max(x, 1e-10)))


def decode_with_ffmpeg(path: str | Path, sr: int = TARGET_SR) -> np.ndarray:
    """Decode any ffmpeg-readable file's first audio stream to mono float32 at ``sr``: [S]."""
    cmd = [
        ffmpeg_exe(),
        "-v",
        "error",
        "-nostdin",
        "-i",
        str(path),
        "-map",
        "0:a:0",
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(sr),
        "-f",
        "f32le",
        "-",
    ]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        why = msg[-1] if msg else f"ffmpeg exit code {proc.returncode}"
        if "matches no streams" in " ".join(msg):
            why = "the file has no audio track"
        raise AudioError(f"cannot decode audio of {path}: {why}")
    wave = np.frombuffer(proc.stdout, dtype=np.float32).copy()
    if wave.size == 0:
        raise AudioError(f"cannot decode audio of {path}: no audio samples (empty or no audio track)")
    return wave


def to_mono(wave: np.ndarray) -> np.ndarray:
    """[S] or [S, C] -> [S] (channel mean)."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    if wave.ndim != 1:
        raise AudioError(f"audio must be [samples] or [samples, channels]; got shape {wave.shape}")
    return wave


def resample(wave: np.ndarray, sr: int, target_sr: int = TARGET_SR) -> np.ndarray:
    """Polyphase resampling [S] at ``sr`` -> [S * target_sr / sr] (scipy.signal.resample_poly)."""
    if sr <= 0:
        raise AudioError(f"invalid sample rate {sr}")
    if sr == target_sr:
        return np.asarray(wave, dtype=np.float32)
    from scipy.signal import resample_poly

    g = gcd(int(sr), int(target_sr))
    return resample_poly(wave, target_sr // g, int(sr) // g).astype(np.float32)


def check_audio(
    wave: np.ndarray,
    sr: int = TARGET_SR,
    source: str = "<array>",
    *,
    orig_sr: int | None = None,
    channels: int = 1,
    min_duration_s: float = 0.0,
) -> AudioReport:
    """Measure a mono clip [S]; raise AudioError when it is empty, non-finite, silent or too short."""
    n = int(wave.shape[0])
    if n == 0:
        raise AudioError(f"audio {source} is empty (0 samples)")
    if not np.isfinite(wave).all():
        raise AudioError(f"audio {source} contains NaN/inf samples")
    dur = n / sr
    if dur < min_duration_s:
        raise AudioError(f"audio {source} is {dur:.3f} s long; at least {min_duration_s:.3f} s is needed")
    absw = np.abs(wave)
    peak = float(absw.max())
    rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
    hop = max(1, sr // 100)
    nf = max(1, n // hop)
    frames = wave[: nf * hop].reshape(nf, hop) if n >= hop else wave[None, :]
    frame_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-20)
    silent_fraction = float(np.mean(frame_db < max(_db(peak) - 50.0, SILENCE_PEAK_DBFS)))
    clipped_fraction = float(np.mean(absw >= CLIP_LEVEL))
    rep = AudioReport(
        source,
        int(orig_sr or sr),
        channels,
        dur,
        _db(peak),
        _db(rms),
        clipped_fraction,
        silent_fraction,
        bool(orig_sr and orig_sr != sr),
        channels > 1,
    )
    if rep.peak_dbfs < SILENCE_PEAK_DBFS:
        raise AudioError(
            f"audio {source} is silent (peak {rep.peak_dbfs:.1f} dBFS < {SILENCE_PEAK_DBFS} dBFS)"
        )
    if rep.clipped:
        rep.warnings.append(f"clipping: {100 * clipped_fraction:.2f}% of samples at full scale")
    if silent_fraction > 0.8:
        rep.warnings.append(f"mostly silence: {100 * silent_fraction:.0f}% of 10 ms frames are quiet")
    if rep.resampled:
        rep.warnings.append(f"resampled {orig_sr} Hz -> {sr} Hz")
    if rep.downmixed:
        rep.warnings.append(f"downmixed {channels} channels -> mono")
    return rep


def load_audio(
    path: str | Path, sr: int = TARGET_SR, min_duration_s: float = 0.0
) -> tuple[np.ndarray, AudioReport]:
    """Read any supported file -> (mono float32 wave [S] at ``sr``, :class:`AudioReport`)."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    ext = path.suffix.lower()
    if ext not in AUDIO_EXTS:
        raise AudioError(f"unsupported audio format {ext!r} for {path}; supported: {sorted(AUDIO_EXTS)}")
    if ext in SOUNDFILE_EXTS:
        import soundfile as sf

        try:
            data, orig_sr = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as e:  # soundfile raises LibsndfileError/RuntimeError on corrupt files
            raise AudioError(f"cannot read audio {path}: {e}") from e
        channels = int(data.shape[1])
        wave = resample(to_mono(data), int(orig_sr), sr)
    else:
        import soundfile as sf  # noqa: F401  (keeps the error types uniform)

        wave = decode_with_ffmpeg(path, sr)
        orig_sr, channels = _probe_rate_channels(path, sr)
    rep = check_audio(
        wave, sr, str(path), orig_sr=int(orig_sr), channels=channels, min_duration_s=min_duration_s
    )
    return wave, rep


def _probe_rate_channels(path: Path, default_sr: int) -> tuple[int, int]:
    """Original sample rate and channel count from ffmpeg's banner (best effort)."""
    import re

    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, check=False
    )
    text = proc.stderr.decode(errors="replace")
    m = re.search(r"Audio:.*?(\d+) Hz, (mono|stereo|\d+ channels|[\d.]+)", text)
    if not m:
        return default_sr, 1
    ch = {"mono": 1, "stereo": 2}.get(m.group(2))
    if ch is None:
        m2 = re.match(r"(\d+)", m.group(2))
        ch = int(m2.group(1)) if m2 else 1
    return int(m.group(1)), ch


def find_audio(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Sorted audio files under ``folder``; AudioError when the folder is missing or has none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioError(f"audio folder not found: {folder}")
    it = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(p for p in it if p.is_file() and p.suffix.lower() in AUDIO_EXTS)
    if not files:
        raise AudioError(f"no audio files ({', '.join(sorted(AUDIO_EXTS))}) in folder {folder}")
    return files


def save_wav(path: str | Path, wave: np.ndarray, sr: int = TARGET_SR) -> Path:
    """Write a mono float wave as 16-bit PCM wav."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(wave, -1.0, 1.0), sr, subtype="PCM_16")
    return path


def speech_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files and folders -> files (a folder: its audio files, sorted, else its ``.npy`` vectors: a
    clip and its precomputed vector beside it count once). None -> DataError."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file())
            found = [f for f in files if f.suffix.lower() in AUDIO_EXTS] or [
                f for f in files if f.suffix.lower() == ".npy"
            ]
            if not found:
                raise DataError(f"speech folder {p}: no audio files and no .npy vectors")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"speech clip {p} does not exist")
    if not out:
        raise DataError("no speech clips given")
    return out
