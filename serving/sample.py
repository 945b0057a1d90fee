"""The demo page's bundled sample clip, written at build time (never committed).

From the real MEAD video of the release (``asset/video/W009_038.mp4``) when ../shared is present: its
first seconds with their audio. Otherwise a synthetic talking face (a drawn face whose mouth opens with
a generated voice-like tone), so the page and the tests still have a clip.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from cmet.media import ffmpeg_exe

RELEASE_VIDEO = Path("asset/video/W009_038.mp4")


# H.264 + AAC mp4 that browsers play from the first byte
_MP4 = [
    "-c:v",
    "libx264",
    "-pix_fmt",
    "yuv420p",
    "-preset",
    "veryfast",
    "-c:a",
    "aac",
    "-movflags",
    "+faststart",
]


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", *args], check=True, capture_output=True)


def cut_clip(src: Path, dst: Path, seconds: float, start_s: float = 0.0) -> Path:
    """The first ``seconds`` of ``src`` (video re-encoded H.264 + AAC audio) -> ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    _ffmpeg(
        "-ss",
        f"{start_s:.3f}",
        "-i",
        str(src),
        "-t",
        f"{seconds:.3f}",
        *_MP4,
        "-crf",
        "20",
        "-b:a",
        "96k",
        str(dst),
    )
    return dst


def synthetic_face_video(
    dst: Path, seconds: float = 2.0, size: int = 256, fps: int = 25, seed: int = 0
) -> Path:
    """A drawn frontal face that 'talks' (mouth opening follows a syllable rhythm) with a tone track.

    [T = seconds * fps frames of size x size x 3] + 16 kHz mono audio -> H.264/AAC mp4.
    """
    import cv2

    rng = np.random.default_rng(seed)
    n = max(1, int(round(seconds * fps)))
    t = np.arange(n) / fps
    opening = np.clip(0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0, 1)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "v.mp4"
        wav = Path(tmp) / "a.wav"
        vw = cv2.VideoWriter(str(raw), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
        s = size / 256.0
        for i in range(n):
            img = np.full((size, size, 3), (200, 190, 180), np.uint8)
            c = (size // 2, int(size * 0.52))
            cv2.ellipse(img, c, (int(78 * s), int(100 * s)), 0, 0, 360, (150, 180, 225), -1)
            for dx in (-32, 32):
                eye = (c[0] + int(dx * s), c[1] - int(25 * s))
                cv2.ellipse(img, eye, (int(14 * s), int(8 * s)), 0, 0, 360, (255, 255, 255), -1)
                cv2.circle(img, eye, int(5 * s), (60, 40, 30), -1)
                cv2.line(
                    img,
                    (eye[0] - int(16 * s), eye[1] - int(18 * s)),
                    (eye[0] + int(16 * s), eye[1] - int(20 * s)),
                    (60, 50, 40),
                    max(1, int(4 * s)),
                )
            cv2.line(
                img, (c[0], c[1] - int(10 * s)), (c[0] - int(6 * s), c[1] + int(18 * s)), (110, 140, 190), 2
            )
            mh = int((3 + 16 * opening[i]) * s)
            cv2.ellipse(img, (c[0], c[1] + int(45 * s)), (int(26 * s), mh), 0, 0, 360, (70, 60, 150), -1)
            vw.write(img)
        vw.release()
        sr = 16000
        ts = np.arange(int(seconds * sr)) / sr
        env = np.interp(ts, t, opening)
        audio = 0.25 * env * np.sin(2 * np.pi * 160 * ts) * (1 + 0.3 * np.sin(2 * np.pi * 3 * ts))
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sr)
            w.writeframes((audio * 32767).astype("<i2").tobytes())
        dst.parent.mkdir(parents=True, exist_ok=True)
        _ffmpeg("-i", str(raw), "-i", str(wav), *_MP4, "-shortest", str(dst))
    return dst


def make_sample(
    dst: Path, release_dir: Path | None, seconds: float = 2.0, size: int = 256, fps: int = 25
) -> dict:
    """Write the sample clip; -> {"path", "source"} (``mead`` or ``synthetic``)."""
    if release_dir is not None and (Path(release_dir) / RELEASE_VIDEO).is_file():
        cut_clip(Path(release_dir) / RELEASE_VIDEO, dst, seconds)
        return {"path": str(dst), "source": f"mead:{RELEASE_VIDEO.name}[0:{seconds:g}s]"}
    synthetic_face_video(dst, seconds=seconds, size=size, fps=fps)
    return {"path": str(dst), "source": "synthetic"}


def ensure_sample(
    static_dir: Path, release_dir: Path | None, seconds: float = 2.0, size: int = 256
) -> Path | None:
    """The demo page's sample clip in ``static_dir``: the one a bento build wrote, else made now (a
    service run from the source tree, before any build) -> its path, or None when it cannot be
    written (a read-only install: the page then says the sample is missing)."""
    import uuid
    import warnings

    dst = Path(static_dir) / "sample.mp4"
    if dst.is_file():
        return dst
    tmp = dst.with_name(f".sample-{uuid.uuid4().hex[:12]}.mp4")
    try:
        make_sample(tmp, release_dir, seconds=seconds, size=size)
        tmp.replace(dst)  # atomic: two workers starting at once each write their own file
    except Exception as e:  # noqa: BLE001 - the service runs without its sample rather than not at all
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        warnings.warn(f"the demo page's sample clip could not be written to {dst}: {e}", stacklevel=2)
        return None
    return dst
