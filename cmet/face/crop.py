"""Work in the face, keep the frame: a tracked square crop around one face at a working resolution,
and the edit pasted back into the native frame.

* :func:`crop_boxes`: per-frame square boxes ``[T, 3]`` (centre x, centre y, side in pixels) from a
  face's landmark track, held over frames where the face was lost and smoothed over time (a jittery
  crop would make the resampling shimmer).
* :class:`FaceCrop`: ``cut(frame, box)`` -> the crop ``[S, S, 3]`` at working size ``S``;
  ``to_crop(landmarks, box)`` maps landmarks into it; ``view(frame, box)`` says where the crop sits in
  the native frame (:class:`cmet.face.compose.View`): the renderer works out the edit in the crop and
  writes it into the native frame at its own resolution, each pixel read once; pixels it leaves alone
  keep their native detail exactly.
* :func:`ramp_weights`: 1 where the face is tracked, 0 on lost frames, with a linear ramp over
  ``ramp`` frames in and out (an edit fades instead of popping).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: crop side / face size (landmark extent): the renderer's fixed ring sits at most 0.7 x the face size
#: from the centre, the crop edge at 1.0: nothing the renderer moves reaches the crop's edge
CROP_SCALE = 2.0


def crop_boxes(
    landmarks: np.ndarray, seen: np.ndarray, fps: float, smooth_s: float = 0.4, chunk: int = 2048
) -> np.ndarray:
    """Landmarks [T, 468, 3] (a memmap is read in chunks) + seen [T] -> boxes [T, 3] (cx, cy, side).

    Lost frames hold the nearest seen frame's box; centre and side are Gaussian-smoothed over
    ``smooth_s`` (sigma = smooth_s / 2)."""
    from scipy.ndimage import gaussian_filter1d

    T = len(seen)
    raw = np.zeros((T, 3), np.float64)
    for s in range(0, T, chunk):
        p = np.asarray(landmarks[s : s + chunk, :, :2], np.float64)
        lo, hi = p.min(1), p.max(1)
        raw[s : s + chunk, :2] = (lo + hi) / 2
        raw[s : s + chunk, 2] = (hi - lo).max(1) * CROP_SCALE
    seen = np.asarray(seen, bool)
    if not seen.any():
        return raw.astype(np.float32)
    idx = np.where(seen)[0]
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(T)), 0, len(idx) - 1)]
    prev = idx[np.clip(np.searchsorted(idx, np.arange(T), side="right") - 1, 0, len(idx) - 1)]
    pick = np.where(np.abs(prev - np.arange(T)) <= np.abs(nearest - np.arange(T)), prev, nearest)
    raw = raw[pick]
    sigma = max(0.0, smooth_s * fps / 2)
    if sigma > 0 and T > 1:
        raw = gaussian_filter1d(raw, sigma, axis=0, mode="nearest")
    return raw.astype(np.float32)


def ramp_weights(seen: np.ndarray, ramp: int) -> np.ndarray:
    """seen [T] bool -> weights [T] in [0, 1]: 0 on unseen frames, rising linearly over ``ramp``
    frames after and before each (and at the video's ends: an edit starts and ends at full weight)."""
    seen = np.asarray(seen, bool)
    T = len(seen)
    if ramp <= 0 or seen.all():
        return seen.astype(np.float32)
    dist = np.full(T, np.inf)  # distance to the nearest unseen frame
    bad = np.where(~seen)[0]
    pos = np.arange(T)
    j = np.searchsorted(bad, pos)
    left = np.where(j > 0, pos - bad[np.clip(j - 1, 0, None)], np.inf)
    right = np.where(j < len(bad), bad[np.clip(j, None, len(bad) - 1)] - pos, np.inf)
    dist = np.minimum(left, right)
    return np.clip(dist / (ramp + 1), 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Box:
    """One frame's crop in the native frame: top-left ``x0, y0`` and side ``side`` (ints)."""

    x0: int
    y0: int
    side: int

    @classmethod
    def of(cls, b: np.ndarray) -> Box:
        side = max(8, int(round(float(b[2]))))
        return cls(int(round(float(b[0]) - side / 2)), int(round(float(b[1]) - side / 2)), side)


class FaceCrop:
    """Cut, map and paste square face crops of working size ``size`` (pixels)."""

    def __init__(self, size: int):
        self.size = int(size)

    def scale(self, box: Box) -> float:
        """Crop pixels per native pixel."""
        return self.size / box.side

    def cut(self, frame: np.ndarray, box: Box) -> np.ndarray:
        """[H, W, 3] uint8 -> [S, S, 3] uint8 (outside the frame: its edge pixels repeated)."""
        import cv2

        h, w = frame.shape[:2]
        x0, y0, s = box.x0, box.y0, box.side
        xa, ya, xb, yb = max(0, x0), max(0, y0), min(w, x0 + s), min(h, y0 + s)
        if xb <= xa or yb <= ya:
            return np.zeros((self.size, self.size, 3), np.uint8)
        part = frame[ya:yb, xa:xb]
        if (xa, ya, xb, yb) != (x0, y0, x0 + s, y0 + s):
            part = cv2.copyMakeBorder(part, ya - y0, y0 + s - yb, xa - x0, x0 + s - xb, cv2.BORDER_REPLICATE)
        n = self.size
        if s > 2 * n:  # linear to twice the size, then an exact 2:1 area average (fast, little aliasing)
            part = cv2.resize(part, (2 * n, 2 * n), interpolation=cv2.INTER_LINEAR)
            return cv2.resize(part, (n, n), interpolation=cv2.INTER_AREA)
        return cv2.resize(part, (n, n), interpolation=cv2.INTER_AREA if s > n else cv2.INTER_LINEAR)

    def to_crop(self, landmarks: np.ndarray, box: Box) -> np.ndarray:
        """[468, 3] native pixels -> [468, 3] crop pixels (z scaled alike)."""
        k = self.scale(box)
        p = np.asarray(landmarks, np.float32).copy()
        p[:, 0] = (p[:, 0] - box.x0 + 0.5) * k - 0.5
        p[:, 1] = (p[:, 1] - box.y0 + 0.5) * k - 0.5
        p[:, 2] *= k
        return p

    def view(self, frame: np.ndarray, box: Box):
        """The crop's place in ``frame`` as a :class:`cmet.face.compose.View` (a renderer writes its
        edit of the crop into the frame through it, at the frame's resolution)."""
        from cmet.face.compose import View

        return View(frame, float(box.x0), float(box.y0), self.scale(box))
