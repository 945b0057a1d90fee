"""Request checking for the service: limits, file probing, target parsing.

Everything here raises a :class:`~cmet.errors.CmetError` subclass with a message naming the problem;
:func:`serving.errors.to_http` turns it into the matching 4xx. No BentoML import here, so the checks are
usable (and tested) without a server. Nothing from a request is unpickled: features are read with
``np.load(allow_pickle=False)``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmet.errors import CmetError, ConfigError, DataError, UnknownEmotionError, VideoError


class PayloadTooLargeError(CmetError):
    """An upload, a video or a frame over the configured limit (HTTP 413)."""


class UnsupportedMediaError(DataError):
    """A file that is not of the kind the field asks for (HTTP 415)."""


@dataclass(frozen=True)
class Limits:
    max_upload_mb: float = 50.0
    max_request_mb: float = 120.0
    max_video_s: float = 20.0
    max_task_video_s: float = 120.0
    max_frame_side: int = 1024
    min_frames: int = 5
    max_speech_clips: int = 32
    max_speech_s: float = 60.0
    intensity: tuple[float, float] = (0.0, 3.0)
    max_blend_terms: int = 8

    @classmethod
    def from_cfg(cls, limits) -> Limits:
        d = dict(limits)
        if "intensity" in d:
            d["intensity"] = tuple(float(x) for x in d["intensity"])
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class VideoInfo:
    n_frames: int
    fps: float
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps if self.fps > 0 else 0.0


def check_upload(path: Path, field: str, limits: Limits) -> Path:
    """An uploaded file exists, is not empty and is under ``max_upload_mb``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{field}: no file received")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{field}: the uploaded file is empty")
    if size > limits.max_upload_mb * 1024 * 1024:
        raise PayloadTooLargeError(
            f"{field}: {size / 2**20:.1f} MB is over the upload limit of {limits.max_upload_mb:g} MB"
        )
    return path


def probe_video(path: Path, limits: Limits, max_s: float | None = None, field: str = "video") -> VideoInfo:
    """Open a video and check it against the limits. Counts the frames by decoding (containers lie).

    Raises UnsupportedMediaError (not a video), PayloadTooLargeError (too long / frames too big),
    VideoError (too few frames).
    """
    import cv2

    check_upload(path, field, limits)
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
        max_frames = int(max_s * (fps or 25.0)) + 1
        n = 0
        while True:
            ok = cap.grab()
            if not ok:
                break
            n += 1
            if n > max_frames:
                raise PayloadTooLargeError(
                    f"{field}: longer than the limit of {max_s:g} s "
                    f"({'use the edit_job task for long clips' if max_s < limits.max_task_video_s else 'cut it'})"
                )
    finally:
        cap.release()
    if n == 0 or not w or not h:
        raise UnsupportedMediaError(f"{field}: not a video (no decodable frame)")
    if n < limits.min_frames:
        raise VideoError(f"{field}: {n} frame(s); at least {limits.min_frames} are needed")
    return VideoInfo(n_frames=n, fps=fps, width=w, height=h)


def check_image(path: Path, limits: Limits, field: str = "portrait") -> tuple[int, int]:
    """A decodable image within the frame-size limit -> (height, width)."""
    import cv2

    check_upload(path, field, limits)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise UnsupportedMediaError(f"{field}: not a readable image (png/jpg expected)")
    h, w = img.shape[:2]
    if max(h, w) > limits.max_frame_side:
        raise PayloadTooLargeError(f"{field}: {w}x{h} is over the limit of {limits.max_frame_side} px a side")
    return h, w


def load_features(
    path: Path, d_speech: int | None, limits: Limits, field: str = "target_features"
) -> np.ndarray:
    """Precomputed speech features from a ``.npy`` file -> [k, D_a] float32.

    Accepts (D,), (k, D) and (k, 1, D) (the release's per-clip layout). Pickled / object arrays are
    refused, as are NaN/inf and a width that differs from the model's speech dimension.
    """
    check_upload(path, field, limits)
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise UnsupportedMediaError(f"{field}: not a .npy array file (send np.save output, [k, D] float)")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise DataError(f"{field}: refused: object arrays / pickles are not accepted ({e})") from None
    except (OSError, EOFError) as e:
        raise UnsupportedMediaError(f"{field}: not a .npy array file ({e})") from None
    if isinstance(arr, np.lib.npyio.NpzFile):  # pragma: no cover - np.load on .npz
        raise UnsupportedMediaError(f"{field}: a .npz archive; send one .npy array [k, D]")
    if arr.dtype.kind not in "fiu":
        raise DataError(f"{field}: dtype {arr.dtype} is not numeric")
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
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise DataError(f"{field}: contains NaN or inf")
    return arr


def check_intensity(x: float, limits: Limits) -> float:
    lo, hi = limits.intensity
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise ConfigError(f"intensity: {x!r} is not a number") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise ConfigError(f"intensity: {x} is outside the accepted range [{lo:g}, {hi:g}]")
    return x


def parse_blend(text: str, known: list[str] | tuple[str, ...], limits: Limits) -> dict[str, float]:
    """``'{"happy": 0.6, "surprised": 0.4}'`` or ``'happy:0.6,surprised:0.4'`` -> weights summing to 1."""
    text = (text or "").strip()
    if not text:
        raise DataError("blend: empty")
    pairs: dict[str, float] = {}
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"blend: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise DataError("blend: expected an object {emotion: weight}")
        items = list(obj.items())
    else:
        items = []
        for part in text.split(","):
            name, sep, w = part.partition(":")
            if not sep:
                raise DataError(f"blend: {part!r} is not emotion:weight")
            items.append((name.strip(), w.strip()))
    if len(items) > limits.max_blend_terms:
        raise DataError(f"blend: {len(items)} terms; the limit is {limits.max_blend_terms}")
    for name, w in items:
        try:
            wf = float(w)
        except (TypeError, ValueError):
            raise DataError(f"blend: weight {w!r} of {name!r} is not a number") from None
        if not math.isfinite(wf) or wf < 0:
            raise DataError(f"blend: weight of {name!r} must be a finite number >= 0, got {w!r}")
        check_emotion(str(name), known)
        pairs[str(name)] = pairs.get(str(name), 0.0) + wf
    total = sum(pairs.values())
    if total <= 0:
        raise DataError("blend: the weights sum to 0")
    return {k: v / total for k, v in pairs.items()}


def check_emotion(name: str, known: list[str] | tuple[str, ...]) -> str:
    name = (name or "").strip()
    if name not in known:
        raise UnknownEmotionError(f"unknown emotion {name!r}; this model knows: {sorted(known)}")
    return name


@dataclass(frozen=True)
class Target:
    """What the user asked for: exactly one of an emotion name, a blend, speech clips, or features."""

    kind: str  # "name" | "blend" | "speech" | "features"
    emotion: str | None = None
    blend: dict[str, float] | None = None
    speech_paths: tuple[Path, ...] = ()
    features: np.ndarray | None = None

    def describe(self) -> str:
        if self.kind == "name":
            return str(self.emotion)
        if self.kind == "blend":
            return "+".join(f"{k}:{v:.2f}" for k, v in (self.blend or {}).items())
        if self.kind == "speech":
            return f"speech x{len(self.speech_paths)}"
        return f"features {tuple(self.features.shape) if self.features is not None else ()}"


def parse_target(
    *,
    emotion: str | None,
    blend: str | None,
    target_speech: list[Path] | None,
    target_features: Path | None,
    known: list[str] | tuple[str, ...],
    d_speech: int | None,
    limits: Limits,
) -> Target:
    """Exactly one way of naming the target emotion must be given."""
    given = [
        n
        for n, v in (
            ("emotion", emotion),
            ("blend", blend),
            ("target_speech", target_speech),
            ("target_features", target_features),
        )
        if v not in (None, "", [])
    ]
    if len(given) != 1:
        raise DataError(
            "give exactly one target: emotion (a name), blend ({emotion: weight}), target_speech (audio clips) "
            f"or target_features (.npy [k, D]); got {given or 'none'}"
        )
    which = given[0]
    if which == "emotion":
        return Target("name", emotion=check_emotion(emotion, known))
    if which == "blend":
        return Target("blend", blend=parse_blend(blend, known, limits))
    if which == "target_speech":
        if len(target_speech) > limits.max_speech_clips:
            raise PayloadTooLargeError(
                f"target_speech: {len(target_speech)} clips; the limit is {limits.max_speech_clips}"
            )
        return Target(
            "speech", speech_paths=tuple(check_upload(p, "target_speech", limits) for p in target_speech)
        )
    return Target("features", features=load_features(target_features, d_speech, limits))


class BodyLimitMiddleware:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 before it is parsed (on its
    Content-Length, or while a chunked body streams in)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return await _reject(send, 400, "invalid Content-Length header")
            if n > self.max_bytes:
                return await _reject(
                    send,
                    413,
                    f"request body of {n / 2**20:.1f} MB is over the limit of "
                    f"{self.max_bytes / 2**20:.0f} MB",
                )
        if length is not None or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        # no Content-Length (chunked): read it here, counting, then hand it on
        chunks, seen = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            seen += len(body)
            if seen > self.max_bytes:
                return await _reject(
                    send, 413, f"request body over the limit of {self.max_bytes / 2**20:.0f} MB"
                )
            chunks.append(body)
            if not msg.get("more_body", False):
                break
        data = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _reject(send, status: int, message: str) -> None:
    body = json.dumps({"error": f"PayloadTooLargeError: {message}" if status == 413 else message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
