"""Every face of a video, tracked frame by frame in one streaming pass.

:class:`FaceTracker` takes frames one at a time (``update(frame)``) and keeps, for each face it has
seen, a :class:`FaceTrack`: FaceMesh landmarks [468, 3] per frame (One-Euro smoothed online),
written to a disk-backed store, and a per-frame flag saying whether the face was really seen in that
frame (landmark presence >= ``presence``). A lost frame holds the last landmarks, flagged lost.

* Existing faces follow their own landmarks (the MediaPipe ROI rule, :class:`cmet.face.landmarks.FaceMesh`).
* The detector runs on the first frame, every ``detect_every`` frames and whenever a face is lost:
  a detection that overlaps no tracked face starts a new track (up to ``max_faces``); one that
  overlaps a lost face re-acquires it.
* :func:`rank_faces` orders the tracks by their mean face size (0 = the largest).

Memory: one frame and the per-face filter state; landmarks go to ``work_dir`` (5.6 kB a frame a face).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cmet.face.landmarks import N_LANDMARKS, FaceMesh, _as_rgb, _iou

#: a detection overlapping a tracked face's box by more than this IoU is that face
SAME_FACE_IOU = 0.3


class OnlineOneEuro:
    """The One-Euro filter of :func:`cmet.face.landmarks.one_euro`, one sample at a time."""

    def __init__(self, fps: float, min_cutoff: float = 1.5, beta: float = 0.05, d_cutoff: float = 1.0):
        self.fps, self.min_cutoff, self.beta, self.d_cutoff = fps, min_cutoff, beta, d_cutoff
        self.y: np.ndarray | None = None
        self.dx = None

    def _alpha(self, cutoff):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau * self.fps)

    def reset(self) -> None:
        self.y, self.dx = None, None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x [...] -> the filtered sample [...] (float32)."""
        x = np.asarray(x, np.float64)
        if self.y is None:
            self.y, self.dx = x, np.zeros_like(x)
            return x.astype(np.float32)
        dx = (x - self.y) * self.fps
        a_d = self._alpha(self.d_cutoff)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self.dx))
        self.y = a * x + (1 - a) * self.y
        return self.y.astype(np.float32)


@dataclass
class FaceTrack:
    """One face over the video: ``landmarks`` [T, 468, 3] pixels (held where lost), ``seen`` [T] bool."""

    id: int
    first_frame: int
    path: Path
    seen_list: list[bool] = field(default_factory=list)
    sizes: list[float] = field(default_factory=list)  # face size (px) on the frames it was seen
    last: np.ndarray | None = None  # [468, 3] last landmarks
    lost: bool = False
    filt: OnlineOneEuro | None = None
    _fh: object = None

    @property
    def n_seen(self) -> int:
        return int(sum(self.seen_list))

    @property
    def mean_size(self) -> float:
        return float(np.mean(self.sizes)) if self.sizes else 0.0

    @property
    def seen(self) -> np.ndarray:
        return np.asarray(self.seen_list, bool)

    def box(self) -> np.ndarray:
        """[4] x0, y0, x1, y1 of the last landmarks."""
        p = self.last[:, :2]
        return np.concatenate([p.min(0), p.max(0)])

    def landmarks(self) -> np.ndarray:
        """[T, 468, 3] float32, memory-mapped from the store (read only)."""
        n = len(self.seen_list)
        return np.memmap(self.path, np.float32, mode="r", shape=(n, N_LANDMARKS, 3))

    def summary(self) -> dict:
        b = self.box()
        return {
            "face": self.id,
            "first_frame": self.first_frame,
            "frames_seen": self.n_seen,
            "mean_size_px": round(self.mean_size, 1),
            "last_box": [round(float(v), 1) for v in b],
        }


class FaceTracker:
    """Streaming multi-face tracker; ``update(frame)`` per frame, then ``finish()`` -> tracks."""

    def __init__(
        self,
        work_dir: Path,
        fps: float,
        *,
        scale: float = 1.0,
        detect_every: int = 12,
        max_faces: int = 4,
        presence: float = 0.5,
        mesher: FaceMesh | None = None,
    ):
        """``scale``: the frames passed in are the video's frames x ``scale`` (a smaller tracking
        decode); the stored landmarks are in the video's own pixels."""
        self.mesher = mesher or FaceMesh(presence=presence)
        self.work_dir, self.fps, self.scale = Path(work_dir), fps, scale
        self.detect_every, self.max_faces = max(1, detect_every), max_faces
        self.tracks: list[FaceTrack] = []
        self.n = 0

    def _new_track(self, pts: np.ndarray) -> FaceTrack:
        tid = len(self.tracks)
        path = self.work_dir / f"face{tid}.f32"
        tr = FaceTrack(tid, self.n, path, filt=OnlineOneEuro(self.fps))
        tr._fh = open(path, "wb")  # noqa: SIM115 - closed in finish()
        blank = np.zeros((N_LANDMARKS, 3), np.float32).tobytes()
        for _ in range(self.n):  # frames before the face appeared
            tr._fh.write(blank)
        tr.seen_list = [False] * self.n
        tr.last = pts
        self.tracks.append(tr)
        return tr

    def _mesh_from_detection(self, img, det):
        m = self.mesher
        pts, pres = m._roi_landmarks(img, *m._roi_from_detection(det))
        if pres < m.presence:
            return None
        p2, pres2 = m._roi_landmarks(img, *m._roi_from_landmarks(pts))
        return p2 if pres2 >= m.presence else pts

    def update(self, frame: np.ndarray) -> None:
        """Track every face on one frame [h, w, 3] uint8 RGB."""
        img = _as_rgb(frame, f"frame {self.n}")
        m = self.mesher
        found: dict[int, np.ndarray] = {}
        for tr in self.tracks:
            if tr.lost:
                continue
            p, pres = m._roi_landmarks(img, *m._roi_from_landmarks(tr.last * self._to_img))
            if pres >= m.presence:
                found[tr.id] = p
        if self.n % self.detect_every == 0 or len(found) < len(self.tracks) or not self.tracks:
            self._detect(img, found)
        for tr in self.tracks:
            p = found.get(tr.id)
            if p is None:
                if not tr.lost:
                    tr.filt.reset()
                tr.lost = True
                tr.seen_list.append(False)
            else:
                pts = tr.filt(p / self._to_img)
                tr.last, tr.lost = pts, False
                tr.seen_list.append(True)
                tr.sizes.append(float(np.ptp(pts[:, :2], 0).max()))
            tr._fh.write(np.ascontiguousarray(tr.last, np.float32).tobytes())
        self.n += 1

    @property
    def _to_img(self) -> np.ndarray:
        """Video pixels -> the passed frame's pixels (x, y and z scale alike)."""
        return np.float32(self.scale)

    def _detect(self, img: np.ndarray, found: dict[int, np.ndarray]) -> None:
        """Detections that overlap no found face: re-acquire a lost face or start a new one."""
        for det in detect_tiled(self.mesher, img):
            boxes = {tid: np.concatenate([p[:, :2].min(0), p[:, :2].max(0)]) for tid, p in found.items()}
            if any(_iou(det.box, b[None])[0] > SAME_FACE_IOU for b in boxes.values()):
                continue
            pts = self._mesh_from_detection(img, det)
            if pts is None:
                continue
            box = np.concatenate([pts[:, :2].min(0), pts[:, :2].max(0)])
            lost = [t for t in self.tracks if t.id not in found]
            best, best_iou = None, 0.05
            for t in lost:
                iou = float(_iou(box, (t.box() * self.scale)[None])[0])
                if iou > best_iou:
                    best, best_iou = t, iou
            if best is None and len(self.tracks) >= self.max_faces:
                continue
            if best is None:
                best = self._new_track(pts / self._to_img)
            found[best.id] = pts

    def finish(self) -> list[FaceTrack]:
        """Close the stores -> the tracks (landmarks readable with :meth:`FaceTrack.landmarks`)."""
        for tr in self.tracks:
            if tr._fh is not None:
                tr._fh.close()
                tr._fh = None
        return self.tracks


def detect_tiled(mesher: FaceMesh, img: np.ndarray) -> list:
    """Faces of the whole frame and of overlapping squares along its long side (BlazeFace short
    range sees the frame letterboxed to 128 px: a face under ~20 % of a wide frame's width is found
    only in a square of the frame's short side) -> detections in frame pixels, best first."""
    h, w = img.shape[:2]
    dets = list(mesher.detect(img))
    s, long = min(h, w), max(h, w)
    if long > 1.2 * s:
        n = int(np.ceil(long / s)) + 1
        for off in np.linspace(0, long - s, n).round().astype(int):
            tile = img[:, off : off + s] if w > h else img[off : off + s]
            for d in mesher.detect(tile):
                shift = np.array([off, 0] if w > h else [0, off], np.float32)
                d.box = d.box + np.tile(shift, 2)
                d.keypoints = d.keypoints + shift
                dets.append(d)
    dets.sort(key=lambda d: -d.score)
    keep: list = []
    for d in dets:
        if all(_iou(d.box, k.box[None])[0] <= SAME_FACE_IOU for k in keep):
            keep.append(d)
    return keep


def rank_faces(tracks: list[FaceTrack], min_seen: int = 1) -> list[FaceTrack]:
    """Tracks seen on at least ``min_seen`` frames, largest mean face size first."""
    keep = [t for t in tracks if t.n_seen >= min_seen]
    return sorted(keep, key=lambda t: (-t.mean_size, t.id))
