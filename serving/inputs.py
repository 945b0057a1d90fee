"""Request checking for the service: limits, uploads, videos, images, features, the target.

Everything here raises a :class:`~cmet.errors.CmetError` subclass with a message naming the problem;
:func:`serving.errors.to_http` turns it into the matching 4xx. No BentoML import here, so the checks
are usable (and tested) without a server. Uploads are recognised by their bytes (serving.sniff);
nothing from a request is unpickled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmet.errors import ConfigError, DataError, UnknownEmotionError, VideoError
from cmet.target import Target, parse_blend
from serving.errors import PayloadTooLargeError, UnsupportedMediaError
from serving.sniff import read_npy, sniff


@dataclass(frozen=True)
class Limits:
    max_upload_mb: float = 50.0
    max_request_mb: float = 120.0
    max_video_s: float = 20.0
    max_task_video_s: float = 120.0
    max_frame_side: int = 3840  # decoder safety only; the budget below decides
    max_pixel_seconds: float = 1024 * 1024 * 20.0  # width x height x seconds of one /edit video
    max_task_pixel_seconds: float = 1920 * 1080 * 120.0  # of one job (/edit_job/submit)
    min_frames: int = 5
    max_speech_clips: int = 32
    max_speech_s: float = 60.0
    intensity: tuple[float, float] = (0.0, 3.0)
    max_blend_terms: int = 8
    max_timeline_entries: int = 256  # entries of a timeline / windows of a timeline_speech track
    max_feature_values: int = 262_144  # elements of one .npy upload (32 clips x 8192 dims)
    max_feature_abs: float = 1000.0  # |x| of any speech feature value

    @classmethod
    def from_cfg(cls, limits) -> Limits:
        d = dict(limits)
        if "intensity" in d:
            d["intensity"] = tuple(float(x) for x in d["intensity"])
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"serving.limits: unknown keys {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class CheckedVideo:
    """A video upload that passed the limits: frames counted by decoding (containers lie)."""

    path: Path
    n_frames: int
    fps: float
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps if self.fps > 0 else 0.0


def check_upload(path: Path, field: str, limits: Limits, kind: str | None = None) -> Path:
    """An uploaded file exists, is not empty, is under ``max_upload_mb`` and (``kind``: video | audio
    | image | npy) holds that kind of bytes -> its path, renamed to the suffix of what it holds."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{field}: no file received")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{field}: the uploaded file is empty")
    if size > limits.max_upload_mb * 2**20:
        raise PayloadTooLargeError(
            f"{field}: {size / 2**20:.1f} MB is over the upload limit of {limits.max_upload_mb:g} MB"
        )
    if kind is None:
        return path
    suffix = "." + {"jpeg": "jpg"}.get(found := sniff(path, kind, field), found)
    if path.suffix.lower() != suffix:  # decoders that go by the name (audio) get the right one
        path = path.rename(path.with_name(f"{path.stem or field}{suffix}"))
    return path


def probe_video(path: Path, limits: Limits, max_s: float | None = None, field: str = "video") -> CheckedVideo:
    """Open a video and check it against the limits, decoding at most ``max_s`` seconds of it.

    UnsupportedMediaError (not a video), PayloadTooLargeError (too long / frames too big), VideoError
    (too few frames)."""
    import cv2

    path = check_upload(path, field, limits, kind="video")
    max_s = limits.max_video_s if max_s is None else max_s
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise UnsupportedMediaError(f"{field}: not a readable video (could not open the container)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if max(w, h) > limits.max_frame_side:
            raise PayloadTooLargeError(
                f"{field}: frames of {w}x{h} are over the limit of {limits.max_frame_side} px a side"
            )
        if not math.isfinite(fps) or fps <= 0 or fps > 240:
            fps = 25.0 if w and h else 0.0
        budget = (
            limits.max_task_pixel_seconds if max_s >= limits.max_task_video_s else limits.max_pixel_seconds
        )
        budget_s = budget / max(1, w * h)
        if budget_s < max_s:  # large frames: the pixel x seconds budget is the limit
            why = (
                f"{w}x{h} frames for longer than {budget_s:.3g} s: over the limit of {budget / 1e6:g} million "
                "pixel x seconds"
            )
            max_s = budget_s
        else:
            why = None
        n = _count_frames(cap, int(max_s * (fps or 25.0)) + 1, field, max_s, limits, why)
    finally:
        cap.release()
    if n == 0 or not w or not h:
        raise UnsupportedMediaError(f"{field}: not a video (no decodable frame)")
    if n < limits.min_frames:
        raise VideoError(f"{field}: {n} frame(s); at least {limits.min_frames} are needed")
    return CheckedVideo(Path(path), n_frames=n, fps=fps, width=w, height=h)


def _count_frames(
    cap, max_frames: int, field: str, max_s: float, limits: Limits, why: str | None = None
) -> int:
    n = 0
    while cap.grab():
        n += 1
        if n > max_frames:
            hint = "use /edit_job/submit for long clips" if max_s < limits.max_task_video_s else "cut it"
            raise PayloadTooLargeError(f"{field}: {why or f'longer than the limit of {max_s:g} s'} ({hint})")
    return n


def check_image(path: Path, limits: Limits, field: str = "portrait") -> Path:
    """A decodable png/jpeg/webp within the frame-size limit -> its path."""
    import cv2

    path = check_upload(path, field, limits, kind="image")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise UnsupportedMediaError(f"{field}: not a readable image (png/jpg expected)")
    h, w = img.shape[:2]
    if max(h, w) > limits.max_frame_side:
        raise PayloadTooLargeError(f"{field}: {w}x{h} is over the limit of {limits.max_frame_side} px a side")
    return path


def check_audio(path: Path, limits: Limits, field: str, max_s: float | None = None) -> Path:
    """An audio upload (wav/flac/mp3/ogg/m4a by its bytes) that decodes, is not silent and is no
    longer than ``max_s`` (default ``max_speech_s``)."""
    from cmet.audio.io import TARGET_SR, load_audio
    from cmet.errors import AudioError

    path = check_upload(path, field, limits, kind="audio")
    max_s = limits.max_speech_s if max_s is None else max_s
    try:
        wave, _ = load_audio(path)  # AudioError (422) for silent / corrupt audio
    except AudioError as e:  # name the field, not the server's temporary file
        raise AudioError(f"{field}: {str(e).replace(str(path), 'upload')}") from None
    seconds = len(wave) / float(TARGET_SR)
    if seconds > max_s:
        raise PayloadTooLargeError(f"{field}: {seconds:.1f} s of audio; the limit is {max_s:g} s")
    return path


def load_features(
    path: Path, d_speech: int | None, limits: Limits, field: str = "target_features"
) -> np.ndarray:
    """Precomputed speech features from a ``.npy`` file -> [k, D_a] float32.

    Accepts (D,), (k, D) and (k, 1, D) (the release's per-clip layout); the header is bounded before
    loading and the values must be finite within ``max_feature_abs`` (serving.sniff.read_npy)."""
    path = check_upload(path, field, limits, kind="npy")
    arr = read_npy(path, field, max_values=limits.max_feature_values, max_abs=limits.max_feature_abs)
    if arr.ndim == 3 and arr.shape[1] == 1:
        arr = arr[:, 0, :]
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{field}: shape {tuple(arr.shape)}; expected (D,), (k, D) or (k, 1, D)")
    if arr.shape[0] > limits.max_speech_clips:
        raise PayloadTooLargeError(
            f"{field}: {arr.shape[0]} feature rows; the limit is {limits.max_speech_clips}"
        )
    if d_speech is not None and arr.shape[1] != d_speech:
        raise DataError(
            f"{field}: feature width {arr.shape[1]} does not match the model's speech dimension {d_speech}"
        )
    return arr


def check_intensity(x, limits: Limits) -> float:
    lo, hi = limits.intensity
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise ConfigError(f"intensity: {x!r} is not a number") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise ConfigError(f"intensity: {x} is outside the accepted range [{lo:g}, {hi:g}]")
    return x


def check_emotion(name: str, known) -> str:
    name = (name or "").strip()
    if name not in known:
        shown = name if len(name) <= 64 else name[:64] + "..."
        raise UnknownEmotionError(f"unknown emotion {shown!r}; this model knows: {sorted(known)}")
    return name


def parse_target(
    *,
    emotion: str | None,
    blend: str | dict | None,
    target_speech: list[Path] | None,
    target_features: list[Path] | Path | None,
    known,
    d_speech: int | None,
    limits: Limits,
) -> Target:
    """Exactly one way of naming the target emotion must be given -> a :class:`cmet.target.Target`."""
    given = [
        n
        for n, v in (
            ("emotion", emotion),
            ("blend", blend),
            ("target_speech", target_speech),
            ("target_features", target_features),
        )
        if v not in (None, "", [], {})
    ]
    if len(given) != 1:
        raise DataError(
            "give exactly one target: emotion (a name), blend ({emotion: weight}), target_speech (audio clips), "
            "timeline, timeline_speech "
            f"or target_features (.npy [k, D]); got {given or 'none'}"
        )
    which = given[0]
    if which == "emotion":
        return Target(kind="name", emotion=check_emotion(emotion, known))
    if which == "blend":
        weights = parse_blend(blend, known=list(known))
        if len(weights) > limits.max_blend_terms:
            raise DataError(f"blend: {len(weights)} terms; the limit is {limits.max_blend_terms}")
        return Target(kind="blend", blend=tuple(weights.items()))
    if which == "target_speech":
        if len(target_speech) > limits.max_speech_clips:
            raise PayloadTooLargeError(
                f"target_speech: {len(target_speech)} clips; the limit is {limits.max_speech_clips}"
            )
        paths = tuple(check_audio(p, limits, "target_speech") for p in target_speech)
        return Target(kind="speech", speech_paths=paths)
    return Target(kind="features", features=load_feature_files(target_features, d_speech, limits))


def load_feature_files(
    paths: list[Path] | Path, d_speech: int | None, limits: Limits, field: str = "target_features"
) -> np.ndarray:
    """One or several ``.npy`` uploads (each as :func:`load_features`) -> their rows stacked [k, D_a];
    the row limit holds for the total."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if len(paths) > limits.max_speech_clips:
        raise PayloadTooLargeError(f"{field}: {len(paths)} files; the limit is {limits.max_speech_clips}")
    arrs = [load_features(p, d_speech, limits, field) for p in paths]
    if len({a.shape[1] for a in arrs}) != 1:
        raise DataError(f"{field}: the files have different widths {sorted({a.shape[1] for a in arrs})}")
    arr = np.concatenate(arrs)
    if arr.shape[0] > limits.max_speech_clips:
        raise PayloadTooLargeError(
            f"{field}: {arr.shape[0]} feature rows; the limit is {limits.max_speech_clips}"
        )
    return arr
