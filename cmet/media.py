"""Video decode and encode through ffmpeg pipes (the binary shipped by imageio-ffmpeg).

* :func:`probe_video` reads a file's header (size, fps, duration, rotation, audio) -> :class:`VideoInfo`.
* :func:`iter_frames` streams upright RGB frames ``[H, W, 3] uint8`` out of one ffmpeg process, at
  the file's own timing or resampled to a constant rate (a variable-rate video becomes CFR at its
  average rate), optionally scaled down; :func:`read_video` collects them into ``[T, H, W, 3]``.
* :class:`VideoSink` pipes frames one at a time into an H.264 mp4 (the audio of another file muxed
  in, the input's rotation kept as display metadata), written under a temporary name and renamed
  when complete; :func:`write_video` writes ``[T, H, W, 3]`` through it.

Every unreadable input raises :class:`cmet.errors.VideoError` naming the file.
"""

from __future__ import annotations

import queue
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmet.errors import VideoError


@dataclass(frozen=True)
class VideoInfo:
    """What the header of a video says: the upright frame size ``w x h`` (as decoded: a rotated
    phone video's display size), ``fps`` (the average rate), ``n_frames`` (counted from the packets,
    or ``duration_s x fps`` when not counted), ``duration_s``, whether it has an audio stream, and the
    display ``rotation`` (degrees counter-clockwise, 0/90/180/270)."""

    path: Path
    w: int
    h: int
    fps: float
    n_frames: int
    duration_s: float
    has_audio: bool
    rotation: int = 0


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


def probe_video(path: str | Path, *, count: bool = True) -> VideoInfo:
    """The header of a video -> :class:`VideoInfo`; ``count=False`` skips counting the packets (a
    full read of the file) and estimates ``n_frames`` from the duration. No video stream or no
    usable fps -> VideoError."""
    import imageio_ffmpeg

    p = _existing(path)
    text = _header(p)
    video = re.search(r"Stream #\S+.*: Video: .*", text)
    if video is None:
        raise VideoError(f"cannot open video {p} (not a video, or a codec ffmpeg cannot read)")
    size = re.search(r", (\d{1,5})x(\d{1,5})[\s,\[]", video.group(0))
    rate = re.search(r", ([\d.]+) fps", video.group(0)) or re.search(r", ([\d.]+) tbr", video.group(0))
    fps = float(rate.group(1)) if rate else 0.0
    if size is None or not (0 < fps < 1000):
        raise VideoError(f"video {p}: unusable frame size or frame rate ({video.group(0).strip()[:120]})")
    rot = re.search(r"rotation of (-?[\d.]+) degrees", text[video.start() :])
    rotation = int(round(float(rot.group(1)))) % 360 if rot else 0
    w, h = int(size.group(1)), int(size.group(2))
    if rotation in (90, 270):
        w, h = h, w
    dur = re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", text)
    duration = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else 0.0
    n_frames = int(round(duration * fps))
    if count:
        try:
            n_frames, duration = imageio_ffmpeg.count_frames_and_secs(str(p))
        except RuntimeError as e:
            raise VideoError(f"video {p}: cannot count its frames ({str(e)[-200:]})") from None
    return VideoInfo(
        path=p,
        w=w,
        h=h,
        fps=fps,
        n_frames=int(n_frames),
        duration_s=float(duration),
        has_audio=bool(re.search(r"Stream #\S+.*: Audio:", text)),
        rotation=rotation,
    )


def scaled_size(w: int, h: int, scale: float) -> tuple[int, int]:
    """The frame size ``iter_frames(..., scale=scale)`` decodes to (at least 2 px a side)."""
    if scale == 1.0:
        return w, h
    return max(2, int(round(w * scale))), max(2, int(round(h * scale)))


#: frames a helper thread decodes ahead / queues for the encoder, so the pipes' copies and the codecs
#: overlap the edit's own work (at 1920x1080 a frame is 6.2 MB: three are 19 MB)
PIPE_DEPTH = 3


def _ahead(gen: Iterator, depth: int) -> Iterator:
    """Run generator ``gen`` in a helper thread up to ``depth`` items ahead of the consumer. Its
    exceptions are raised in the consumer; closing the consumer stops and closes ``gen``."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for x in gen:
                if not put(("item", x)):
                    return
            put(("end", None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put(("error", e))
        finally:
            gen.close()

    t = threading.Thread(target=run, name="cmet-decode", daemon=True)
    t.start()
    try:
        while True:
            kind, x = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise x
            yield x
    finally:
        stop.set()
        t.join(timeout=10)


def iter_frames(
    path: str | Path,
    *,
    max_frames: int | None = None,
    fps: float | None = None,
    scale: float = 1.0,
    max_seconds: float | None = None,
) -> Iterator[np.ndarray]:
    """Decode ``path`` frame by frame through one ffmpeg pipe: yields upright ``[H, W, 3]`` uint8 RGB,
    decoded :data:`PIPE_DEPTH` frames ahead by a helper thread (each frame its own writable array).

    ``fps``: frames resampled to this constant rate (frames repeated or dropped by their
    timestamps: a variable-rate video comes out CFR); ``scale``: frames scaled by this factor
    (:func:`scaled_size`); at most ``max_frames`` / ``max_seconds``. Unreadable from the start ->
    VideoError; a decode failing later ends the iteration (the caller compares the count it got
    with the header's duration). The process ends when the iterator is exhausted or closed."""
    p = _existing(path)
    info = probe_video(p, count=False)
    return _ahead(_decode(p, info, max_frames, fps, scale, max_seconds), PIPE_DEPTH)


def _decode(p: Path, info, max_frames, fps, scale, max_seconds) -> Iterator[np.ndarray]:
    """The ffmpeg pipe of :func:`iter_frames` (run in its helper thread)."""
    w, h = scaled_size(info.w, info.h, scale)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(p)]
    if max_seconds:
        cmd += ["-t", f"{max_seconds:.6f}"]
    cmd += ["-map", "0:v:0", "-an", "-sn", "-dn"]
    filters = [f"fps={fps:.6f}"] if fps else []  # the fps filter: frames by timestamp, duration x fps of them
    if (w, h) != (info.w, info.h):
        filters.append(f"scale={w}:{h}:flags=area")
    if filters:
        cmd += ["-vf", ",".join(filters)]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    nbytes = w * h * 3
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, bufsize=nbytes)
        n = 0
        try:
            while max_frames is None or n < max_frames:
                buf = bytearray(nbytes)  # read straight into a writable frame (no copy)
                if proc.stdout.readinto(buf) < nbytes:
                    break
                n += 1
                yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
        finally:
            proc.stdout.close()
            if proc.poll() is None:
                proc.kill()
            rc = proc.wait()
        if n == 0 and rc != 0:
            err.seek(0)
            msg = err.read().decode(errors="replace").strip()[-300:]
            raise VideoError(f"cannot open video {p} (not a video, or a codec ffmpeg cannot read): {msg}")


def read_video(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, float]:
    """Decode a video to RGB frames ``[T, H, W, 3]`` uint8 and its fps (the first ``max_seconds``
    when given). Missing, unreadable or frameless -> VideoError."""
    p = _existing(path)
    fps = probe_video(p, count=False).fps
    limit = None if not max_seconds else max(1, int(round(max_seconds * fps)))
    frames = list(iter_frames(p, max_frames=limit))
    if not frames:
        raise VideoError(f"video {p} has no readable frames (corrupt or empty)")
    return np.stack(frames), fps


#: frames larger than this (pixels; 1280x720 is 0.92 M) are encoded with the fastest x264 preset
#: (same CRF 18: the quality is kept, the file is about a third larger): at 1920x1080 decode + encode
#: alone take 14 ms a frame against 19-25 ms with superfast on the 2 cores the edit shares with them,
#: which brings a 60 s 1080p edit from 0.90x to 1.06x real time (``make bench``, section video)
FAST_PRESET_ABOVE_PX = 1_000_000
FAST_PRESET = "ultrafast"


class VideoSink:
    """Frames ``[h, w, 3]`` uint8 RGB, one at a time, -> an H.264 mp4 (yuv420p) at ``fps``, with the
    audio of ``audio_from`` (a video or a wav; none when it has no audio) and the display
    ``rotation`` of the input (frames are given upright and stored as the input stored them).

    Use as a context manager: the file appears at ``path`` only when every frame was written and
    ffmpeg finished; on an exception the partial file is removed."""

    def __init__(
        self,
        path: str | Path,
        w: int,
        h: int,
        fps: float,
        audio_from: str | Path | None = None,
        *,
        crf: int = 18,
        preset: str | None = None,
        rotation: int = 0,
    ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix or '.mp4'}")
        self.w, self.h, self.rotation, self.n = w, h, int(rotation) % 360, 0
        k = self.rotation // 90
        cw, ch = (h, w) if k % 2 else (w, h)  # stored (coded) size
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        if self.rotation:
            cmd += ["-noautorotate", "-display_rotation:v:0", str(self.rotation)]
        # even sizes: frames converted to yuv420p here (cv2, BT.601 limited range: what ffmpeg's own
        # rgb24 -> yuv420p conversion gives, at a sixth of its cost; half the bytes through the pipe)
        self._yuv = cw % 2 == 0 and ch % 2 == 0
        pix = "yuv420p" if self._yuv else "rgb24"
        cmd += ["-f", "rawvideo", "-pix_fmt", pix, "-s", f"{cw}x{ch}", "-r", f"{fps}", "-i", "-"]
        if audio_from is not None and has_audio(audio_from):
            cmd += ["-i", str(audio_from), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "128k"]
        if cw % 2 or ch % 2:
            cmd += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
        preset = preset or (FAST_PRESET if w * h > FAST_PRESET_ABOVE_PX else "veryfast")
        cmd += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p"]
        cmd += ["-movflags", "+faststart", "-f", "mp4", str(self.tmp)]
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._err)
        # frames go into the encoder's pipe from a helper thread, PIPE_DEPTH queued
        self._q: queue.Queue = queue.Queue(maxsize=PIPE_DEPTH)
        self._broken = threading.Event()
        self._writer = threading.Thread(target=self._feed, name="cmet-encode", daemon=True)
        self._writer.start()

    def _feed(self) -> None:
        import cv2

        while (frame := self._q.get()) is not None:
            if self._yuv:  # [ch * 3 / 2, cw] planar Y, U, V
                frame = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)
            try:
                self.proc.stdin.write(memoryview(frame).cast("B"))
            except (BrokenPipeError, ValueError, OSError):
                self._broken.set()
                while self._q.get() is not None:  # unblock the producer until close/abort
                    pass
                return

    def write(self, frame: np.ndarray) -> None:
        """One upright frame [h, w, 3] uint8 RGB (queued: not to be changed after the call)."""
        if frame.shape != (self.h, self.w, 3):
            raise VideoError(f"frame {self.n} has shape {frame.shape}, the video is {self.h}x{self.w}x3")
        if self._broken.is_set():
            raise VideoError(f"ffmpeg stopped writing {self.path}: {self._stderr()}")
        if self.rotation:
            frame = np.rot90(frame, -(self.rotation // 90))
        self._q.put(np.ascontiguousarray(frame, np.uint8))
        self.n += 1

    def _drain(self) -> None:
        """Hand the writer its end mark and wait for it."""
        if self._writer.is_alive():
            self._q.put(None)
            self._writer.join()

    def _stderr(self) -> str:
        self._err.seek(0)
        return self._err.read().decode(errors="replace")[-400:]

    def close(self) -> Path:
        """Finish the file -> its path (VideoError when ffmpeg failed or no frame was written)."""
        self._drain()
        if self._broken.is_set():
            self.abort()
            raise VideoError(f"ffmpeg stopped writing {self.path}: {self._stderr()}")
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = self.proc.wait()
        if rc != 0 or self.n == 0:
            self.abort()
            why = self._stderr() if rc != 0 else "no frames"
            raise VideoError(f"ffmpeg could not write {self.path}: {why}")
        self.tmp.replace(self.path)
        self._err.close()
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and remove the partial file."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._drain()  # the writer sees the broken pipe, or its end mark
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(
    path: str | Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    audio_from: str | Path | None = None,
    crf: int = 18,
) -> Path:
    """Frames ``[T, H, W, 3]`` uint8 RGB -> H.264 mp4 (yuv420p) through :class:`VideoSink`, with the
    audio of ``audio_from`` muxed in when given. Exactly T frames at ``fps``."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or len(frames) == 0:
        raise VideoError(f"write_video {path}: expected frames [T, H, W, 3], got shape {frames.shape}")
    with VideoSink(path, frames.shape[2], frames.shape[1], fps, audio_from, crf=crf) as sink:
        for f in frames:
            sink.write(f)
    return Path(path)
