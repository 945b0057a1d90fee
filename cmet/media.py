"""Video decode and encode through ffmpeg pipes (the binary shipped by imageio-ffmpeg).

* :func:`iter_frames` streams RGB frames ``[H, W, 3] uint8`` out of one ffmpeg process;
  :func:`read_video` collects them into ``[T, H, W, 3]``.
* :func:`probe_video` reads a file's header (size, fps, frame count, duration, audio) without decoding.
* :func:`write_video` pipes ``[T, H, W, 3]`` RGB frames into an H.264 mp4, the audio of another
  file muxed in.

Every unreadable input raises :class:`cmet.errors.VideoError` naming the file.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmet.errors import VideoError


@dataclass(frozen=True)
class VideoInfo:
    """What the header of a video says: frame size ``w x h``, ``fps``, ``n_frames`` (counted from
    the packets of the first video stream), ``duration_s`` and whether it has an audio stream."""

    path: Path
    w: int
    h: int
    fps: float
    n_frames: int
    duration_s: float
    has_audio: bool


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg (a pinned dependency)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _header(path: Path) -> str:
    """ffmpeg's description of ``path`` (its stderr when asked for no output)."""
    r = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True)
    return r.stderr.decode(errors="replace")


def has_audio(path: str | Path) -> bool:
    """Whether ``path`` has an audio stream."""
    return bool(re.search(r"Stream #\S+.*: Audio:", _header(Path(path))))


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise VideoError(f"video {p} does not exist")
    return p


def probe_video(path: str | Path) -> VideoInfo:
    """The header of a video -> :class:`VideoInfo`. No video stream or no usable fps -> VideoError."""
    import imageio_ffmpeg

    p = _existing(path)
    text = _header(p)
    video = re.search(r"Stream #\S+.*: Video: .*", text)
    if video is None:
        raise VideoError(f"cannot open video {p} (not a video, or a codec ffmpeg cannot read)")
    size = re.search(r", (\d{2,5})x(\d{2,5})[\s,\[]", video.group(0))
    rate = re.search(r", ([\d.]+) fps", video.group(0)) or re.search(r", ([\d.]+) tbr", video.group(0))
    fps = float(rate.group(1)) if rate else 0.0
    if size is None or not (0 < fps < 1000):
        raise VideoError(f"video {p}: unusable frame size or frame rate ({video.group(0).strip()[:120]})")
    try:
        n_frames, duration = imageio_ffmpeg.count_frames_and_secs(str(p))
    except RuntimeError as e:
        raise VideoError(f"video {p}: cannot count its frames ({str(e)[-200:]})") from None
    return VideoInfo(
        path=p,
        w=int(size.group(1)),
        h=int(size.group(2)),
        fps=fps,
        n_frames=int(n_frames),
        duration_s=float(duration),
        has_audio=bool(re.search(r"Stream #\S+.*: Audio:", text)),
    )


def iter_frames(path: str | Path, *, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode ``path`` frame by frame through one ffmpeg pipe: yields ``[H, W, 3]`` uint8 RGB, at most
    ``max_frames``. The process ends when the iterator is exhausted or closed."""
    import imageio_ffmpeg

    p = _existing(path)
    gen = imageio_ffmpeg.read_frames(str(p), pix_fmt="rgb24")
    try:
        try:
            meta = next(gen)
        except (OSError, RuntimeError, StopIteration) as e:
            raise VideoError(
                f"cannot open video {p} (not a video, or a codec ffmpeg cannot read): {e}"
            ) from None
        w, h = meta["size"]
        n = 0
        while max_frames is None or n < max_frames:
            try:
                raw = next(gen)
            except StopIteration:
                return
            except RuntimeError as e:
                raise VideoError(f"video {p}: decoding failed after {n} frames ({str(e)[:200]})") from None
            n += 1
            yield np.frombuffer(raw, np.uint8).reshape(h, w, 3).copy()
    finally:
        gen.close()


def read_video(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, float]:
    """Decode a video to RGB frames ``[T, H, W, 3]`` uint8 and its fps (the first ``max_seconds``
    when given). Missing, unreadable or frameless -> VideoError."""
    p = _existing(path)
    fps = probe_video(p).fps
    limit = None if not max_seconds else max(1, int(round(max_seconds * fps)))
    frames = list(iter_frames(p, max_frames=limit))
    if not frames:
        raise VideoError(f"video {p} has no readable frames (corrupt or empty)")
    return np.stack(frames), fps


def write_video(
    path: str | Path, frames: np.ndarray, fps: float, audio_from: str | Path | None = None, crf: int = 18
) -> Path:
    """Frames ``[T, H, W, 3]`` uint8 RGB -> H.264 mp4 (yuv420p), with the audio of ``audio_from`` (a
    video or a wav) muxed in when given. Exactly T frames at ``fps``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t, h, w = frames.shape[:3]
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps}", "-i", "-"]
    if audio_from is not None:
        cmd += ["-i", str(audio_from), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "128k"]
    if w % 2 or h % 2:
        cmd += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p"]
    cmd += ["-frames:v", str(t), "-movflags", "+faststart", str(path)]
    r = subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), capture_output=True)
    if r.returncode != 0:
        raise VideoError(f"ffmpeg could not write {path}: {r.stderr.decode(errors='replace')[-400:]}")
    return path
