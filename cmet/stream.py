"""The edit as two streaming passes over a video of any length and resolution (bounded memory).

1. :func:`track_faces` -- a light tracking pass: the video decoded at constant frame rate (at most
   :data:`TRACK_SIDE` pixels on its long side), every face followed (:class:`cmet.face.faces.FaceTracker`);
   only landmarks are kept (a disk-backed store), never frames.
2. :func:`plan_face` -- per face to edit: the codes (:func:`cmet.face.expression.encode`, in chunks),
   frames where the face is lost or turned away (:data:`MAX_TURN_RAD`), the edit's weight with a
   ramp in and out (:func:`cmet.face.crop.ramp_weights`), smoothed crop boxes and the renderer of the
   face in its crop (:func:`cmet.face.render.make_renderer` at the working size).
3. :func:`render_stream` -- a second decode at native size, frame by frame: each face's geometry
   worked out in its crop at the working size, the native frame read once through the composed warp
   (:class:`cmet.face.compose.View`), the frame written straight into the encoder's pipe
   (:class:`cmet.media.VideoSink`).

Memory: a few frames, the per-frame codes ``[T, D_v]`` (76 B a frame) and the landmark store on disk.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cmet.errors import DataError, FaceNotFoundError, VideoError
from cmet.face.crop import FaceCrop, crop_boxes, ramp_weights
from cmet.face.faces import FaceTrack, FaceTracker, rank_faces
from cmet.media import VideoInfo, iter_frames, probe_video

#: the tracking decode's long side (pixels): FaceMesh reads 192 px crops, a face needs no more
TRACK_SIDE = 960
#: the renderer's working crop size (pixels)
WORK_SIZE = 320
#: a face turned (yaw or pitch against its neutral) by more than this is not edited (radians, ~34 deg)
MAX_TURN_RAD = 0.6
#: the edit fades in and out over this long around frames where the face is lost (s)
RAMP_S = 0.24
#: a decode that ends this far (s) before the header's duration is reported as truncated
TRUNCATED_S = 0.5


@dataclass
class Tracking:
    """Stage 1: the video's header, the faces found (largest first) and what the pass noticed."""

    name: str
    info: VideoInfo
    fps: float
    n_frames: int
    faces: list[FaceTrack]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class FacePlan:
    """One face to edit: its codes, where it is edited and how strongly, and its crops."""

    face: FaceTrack
    rank: int
    landmarks: np.ndarray  # [T, 468, 3] native pixels (memmap)
    codes: object  # cmet.face.expression.Codes: au [T, D_v], lips, pose
    neutral_codes: np.ndarray  # [T, D_v] slow AU codes (the model's input)
    seen: np.ndarray  # [T] bool: tracked, facing the camera
    weights: np.ndarray  # [T] the edit's weight (0 = frame passes through)
    boxes: np.ndarray  # [T, 3] crop centre x, y, side (native pixels)
    crop: FaceCrop
    renderer: object  # cmet.face.render.Renderer in crop pixels

    def summary(self) -> dict:
        return {
            **self.face.summary(),
            "face": self.rank,
            "frames_edited": int((self.weights > 0).sum()),
            "frames_passed_through": int((self.weights <= 0).sum()),
            "frames_turned_away": int((~self.seen & self.face.seen[: len(self.seen)]).sum()),
        }


def select_faces(faces: list[FaceTrack], which: str | int) -> list[tuple[int, FaceTrack]]:
    """``which``: "largest" (default), "all", or a rank N (0 = largest) -> [(rank, track)]."""
    if not faces:
        raise FaceNotFoundError("no face found")
    if which in ("largest", None):
        return [(0, faces[0])]
    if which == "all":
        return list(enumerate(faces))
    try:
        n = int(which)
    except (TypeError, ValueError):
        raise DataError(f"face must be 'largest', 'all' or a face number, got {which!r}") from None
    if not 0 <= n < len(faces):
        raise DataError(f"face {n} does not exist: the video has {len(faces)} face(s) (0 = the largest)")
    return [(n, faces[n])]


def track_faces(
    video: str | Path,
    work_dir: Path,
    *,
    max_seconds: float | None = None,
    max_faces: int = 4,
    progress: bool = False,
) -> Tracking:
    """Pass 1: decode ``video`` (constant frame rate, <= TRACK_SIDE px) and track every face in it.

    No face on any frame -> FaceNotFoundError; a decode that stops early -> a warning with the frame
    count it could read (``Tracking.warnings``, also issued with :func:`warnings.warn`)."""
    t = time.perf_counter()
    name = Path(str(video)).name
    info = probe_video(video, count=False)
    scale = min(1.0, TRACK_SIDE / max(info.w, info.h))
    tracker = FaceTracker(work_dir, info.fps, scale=scale)
    frames = iter_frames(video, fps=info.fps, scale=scale, max_seconds=max_seconds)
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, desc="track", unit="frame", leave=False)
    n = 0
    for f in frames:
        tracker.update(f)
        n += 1
    faces = tracker.finish()
    if n == 0:
        raise VideoError(f"video {name} has no readable frames (corrupt or empty)")
    notes = []
    want = info.duration_s if not max_seconds else min(info.duration_s, max_seconds)
    if want > 0 and n / info.fps < want - TRUNCATED_S:
        notes.append(
            f"video {name}: decoding stopped after {n} frames ({n / info.fps:.2f} s) of the "
            f"{want:.2f} s its header announces (~{int(round(want * info.fps))} frames): a corrupt or "
            "truncated file; the readable frames are edited"
        )
    ranked = rank_faces(faces, min_seen=max(1, min(int(info.fps), n // 10)))
    if not ranked:
        raise FaceNotFoundError(f"no face found in {name}")
    if len(ranked) > 1:
        notes.append(
            f"video {name} shows {len(ranked)} faces: "
            + "; ".join(
                f"face {i} ({f.mean_size:.0f} px, seen on {f.n_seen} frames)" for i, f in enumerate(ranked)
            )
        )
    for msg in notes:
        warnings.warn(msg, stacklevel=2)
    return Tracking(name, info, info.fps, n, ranked, notes, time.perf_counter() - t)


def _fill_lost(seen: np.ndarray) -> np.ndarray:
    """[T] bool -> [T] index of the nearest seen frame (each frame's own where seen)."""
    idx = np.where(seen)[0]
    pos = np.arange(len(seen))
    j = np.clip(np.searchsorted(idx, pos), 0, len(idx) - 1)
    k = np.clip(j - 1, 0, len(idx) - 1)
    return np.where(np.abs(idx[k] - pos) <= np.abs(idx[j] - pos), idx[k], idx[j])


def plan_face(
    face: FaceTrack,
    rank: int,
    fps: float,
    face_cfg,
    *,
    model_input,
    work_size: int = WORK_SIZE,
    chunk: int = 1024,
) -> FacePlan:
    """Stage 1b for one face: codes, turned-away frames, weights, crop boxes, renderer -> FacePlan.
    ``model_input(au [T, D_v], fps) -> [T, D_v]``: the model's input from the AU codes."""
    from cmet.face.expression import Codes, canonical, encode, neutral_reference
    from cmet.face.render import make_renderer

    lm = face.landmarks()
    seen = face.seen
    pick = _fill_lost(seen)
    first = np.where(seen)[0][: int(face_cfg.neutral_frames)]
    neutral = neutral_reference(np.asarray(lm[first]), len(first))
    can = canonical(neutral)
    parts = [encode(can, np.asarray(lm[pick[s : s + chunk]])) for s in range(0, len(pick), chunk)]
    codes = Codes(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("au", "lips", "pose", "jaw")))
    turned = np.abs(codes.pose[:, :2]).max(1) > MAX_TURN_RAD
    ok = seen & ~turned
    weights = ramp_weights(ok, int(round(RAMP_S * fps)))
    boxes = crop_boxes(lm, seen, fps)
    side = float(np.median(boxes[ok, 2])) if ok.any() else float(boxes[:, 2].mean())
    size = int(min(work_size, max(64, round(side)))) // 2 * 2
    crop = FaceCrop(size)
    ref = int(first[0])
    from cmet.face.crop import Box

    neutral_crop = crop.to_crop(neutral, Box.of(boxes[ref]))
    renderer = make_renderer(face_cfg, canonical(neutral_crop), (size, size), video=True)
    return FacePlan(face, rank, lm, codes, model_input(codes.au, fps), ok, weights, boxes, crop, renderer)


def render_stream(
    video, tracking: Tracking, plans, deltas, sink, *, jaws=None, progress: bool = False
) -> int:
    """Pass 2: decode ``video`` at native size and constant rate, edit each planned face with its
    offsets ``deltas[k]`` [T, D_v] (already weighted and clipped) and jaw track ``jaws[k]`` [T] (or
    None: the face's own lips), write every frame into ``sink`` (a :class:`cmet.media.VideoSink`).
    Returns the frames written."""
    from cmet.face.crop import Box

    frames = iter_frames(video, fps=tracking.fps, max_frames=tracking.n_frames)
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, desc="render", unit="frame", total=tracking.n_frames, leave=False)
    n = 0
    for i, frame in enumerate(frames):
        frame = frame if frame.flags.writeable else frame.copy()
        for plan, delta, jaw in zip(plans, deltas, jaws or [None] * len(plans), strict=True):
            if i >= len(plan.weights) or plan.weights[i] <= 0:
                continue
            box = Box.of(plan.boxes[i])
            before = plan.crop.cut(frame, box)
            lm = plan.crop.to_crop(plan.landmarks[i], box)
            # the edit is written straight into the native frame, each pixel read once from it
            plan.renderer.render(
                before, lm, delta[i], 0.0 if jaw is None else float(jaw[i]), view=plan.crop.view(frame, box)
            )
        sink.write(frame)
        n += 1
    return n
