"""The mouth interior from the person's own frames (Video Rewrite 1997; Synthesizing Obama 2017).

On a video the input's open-mouth frames (teeth, tongue, inner lips as that person shows them) are
collected into a small bank, each with its inner-lip contour. Where an edit opens the mouth wider
than the source frame shows it, the bank entry whose mouth *shape* is nearest to the edited mouth
is retrieved and warped into the edited inner-lip polygon (piecewise-affine on a fan of the 20
contour vertices around their centre), its colour shifted by the difference of light between the
bank's moment and this frame (:func:`lip_ring_colour`: the lips around the mouth in both; a constant
correction is the harmonic, Poisson-cloning fit of degree 0, and the lips, unlike the inner-lip edge,
are the same surface in both frames), then blended in with a feathered mask; the warp itself has
already carried the lips. Retrieval keeps the previous entry while it stays nearly as good
(hysteresis), so the interior does not jump between frames.

Shape descriptor (:func:`mouth_shape`): the 20 inner-lip vertices in the mouth's own frame (origin
between the corners, x along the corner line, unit = the corner distance) -> [40].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cmet.face.au_fields import INNER_LIP_CONTOUR
from cmet.face.landmarks import mouth_opening

#: corner vertices of the inner-lip contour
CORNERS = (78, 308)


def mouth_frame(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Landmarks [468, >=2] -> (origin [2], x axis [2], unit length) of the mouth's own frame."""
    a, b = p[CORNERS[0], :2], p[CORNERS[1], :2]
    d = b - a
    L = float(np.linalg.norm(d)) + 1e-9
    return (a + b) / 2, d / L, L


def mouth_shape(p: np.ndarray) -> np.ndarray:
    """Inner-lip contour in the mouth frame: landmarks [468, >=2] -> [40] (scale/rotation free)."""
    o, ex, L = mouth_frame(p)
    ey = np.array([-ex[1], ex[0]])
    q = p[INNER_LIP_CONTOUR, :2] - o
    return (np.stack([q @ ex, q @ ey], 1) / L).reshape(-1).astype(np.float32)


def fan_triangles(n: int) -> np.ndarray:
    """Triangles [n, 3] of a fan: contour vertices 0..n-1 around a centre vertex n."""
    i = np.arange(n)
    return np.stack([i, (i + 1) % n, np.full(n, n)], 1).astype(np.int32)


def warp_into(
    src_img: np.ndarray,
    src_pts: np.ndarray,
    dst_pts: np.ndarray,
    tris: np.ndarray,
    box: tuple[int, int, int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-affine warp of src_img [h, w, 3] so that src_pts [N, 2] land on dst_pts [N, 2]
    (target frame pixels), evaluated on the target box (x0, y0, x1, y1) -> (patch [bh, bw, 3]
    float32, covered [bh, bw] bool)."""
    import cv2

    from cmet.face.warp import affine_dst_to_src, triangle_maps

    S, D = src_pts[tris].astype(np.float64), dst_pts[tris].astype(np.float64)
    Dh = np.concatenate([D, np.ones((len(tris), 3, 1))], 2)
    ok = np.abs(np.linalg.det(Dh)) > 1e-6
    mx, my, covered = triangle_maps(affine_dst_to_src(Dh[ok], S[ok]), D[ok], box)
    patch = cv2.remap(src_img.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return patch, covered


#: the most the light correction shifts the bank interior's colour (levels)
MAX_FIT = 40.0
#: the lip ring whose colour measures the light: from the inner-lip line out to this share of the
#: mouth width
RING = 0.12


def lip_ring_colour(img: np.ndarray, p: np.ndarray) -> np.ndarray | None:
    """Mean colour [3] of the lips around the inner-lip polygon of landmarks p [468, >=2] in img
    [H, W, 3] (a ring from the polygon out to :data:`RING` x the mouth width); None if empty."""
    import cv2

    lip = p[INNER_LIP_CONTOUR, :2].astype(np.float64)
    mw = float(np.linalg.norm(p[CORNERS[1], :2] - p[CORNERS[0], :2]))
    grow = max(1, int(round(RING * mw)))
    H, W = img.shape[:2]
    x0, y0 = np.maximum(np.floor(lip.min(0)).astype(int) - grow - 1, 0)
    x1, y1 = np.minimum(np.ceil(lip.max(0)).astype(int) + grow + 2, [W, H])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    poly = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(poly, [np.round((lip - [x0, y0]) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    ring = cv2.dilate(poly, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)).astype(bool) & ~poly.astype(bool)
    if ring.sum() < 3:
        return None
    return img[y0:y1, x0:x1][ring].astype(np.float32).mean(0)


@dataclass
class MouthBank:
    """Open-mouth crops of one person: crops (uint8 RGB), their inner-lip contours (crop pixels),
    shape descriptors [40] and openings (inner-lip gap / IOD). Filled up front
    (:meth:`from_frames`) or as a video streams past the renderer (:meth:`offer`)."""

    crops: list[np.ndarray] = field(default_factory=list)
    contours: list[np.ndarray] = field(default_factory=list)
    shapes: list[np.ndarray] = field(default_factory=list)
    openings: list[float] = field(default_factory=list)
    rings: list = field(default_factory=list)  # lip-ring colour [3] of each entry (None: unknown)
    size: int = 40
    min_open: float = 0.08
    hysteresis: float = 0.15
    _last: int | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.crops)

    def offer(self, frame: np.ndarray, p: np.ndarray) -> bool:
        """Keep frame [H, W, 3] (landmarks p [468, >=2]) if its mouth is open at least ``min_open``,
        the bank is not full and no kept mouth has nearly the same shape. Returns whether kept."""
        mo = float(mouth_opening(p[None])[0])
        if mo < self.min_open or len(self) >= self.size:
            return False
        shape = mouth_shape(p)
        if self.shapes and float(np.min(np.linalg.norm(np.stack(self.shapes) - shape, axis=1))) < 0.03:
            return False
        lip = p[INNER_LIP_CONTOUR, :2]
        m = 0.35 * float(np.linalg.norm(p[CORNERS[1], :2] - p[CORNERS[0], :2]))
        H, W = frame.shape[:2]
        x0, y0 = np.maximum(np.floor(lip.min(0) - m).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(lip.max(0) + m).astype(int), [W, H])
        if x1 - x0 < 3 or y1 - y0 < 3:
            return False
        self.crops.append(np.ascontiguousarray(frame[y0:y1, x0:x1]))
        self.contours.append((lip - [x0, y0]).astype(np.float32))
        self.shapes.append(shape)
        self.openings.append(mo)
        self.rings.append(lip_ring_colour(frame, p))
        return True

    @classmethod
    def from_frames(
        cls, frames: np.ndarray, landmarks: np.ndarray, min_open: float = 0.08, size: int = 40
    ) -> MouthBank | None:
        """The open-mouth frames of a video (frames [T, H, W, 3], landmarks [T, 468, >=2]), widest
        first, spread over the range of openings; None when fewer than 3 open the mouth that wide."""
        mo = mouth_opening(landmarks)
        idx = np.flatnonzero(mo >= min_open)
        if len(idx) < 3:
            return None
        idx = idx[np.argsort(-mo[idx])]
        idx = idx[np.unique(np.linspace(0, len(idx) - 1, min(4 * size, len(idx))).round().astype(int))]
        bank = cls(size=size, min_open=min_open)
        for i in idx:
            bank.offer(frames[i], landmarks[i])
        return bank

    def retrieve(self, p: np.ndarray) -> int:
        """Index of the entry nearest in mouth shape to landmarks p [468, >=2] (sticky)."""
        d = np.linalg.norm(np.stack(self.shapes) - mouth_shape(p)[None], axis=1)
        best = int(np.argmin(d))
        if self._last is not None and d[self._last] <= (1 + self.hysteresis) * d[best] + 1e-3:
            best = self._last
        self._last = best
        return best

    def paste(self, img: np.ndarray, p: np.ndarray, alpha: float = 1.0) -> np.ndarray:
        """The retrieved interior warped into the inner-lip polygon of target landmarks p [468, >=2]
        of img [H, W, 3] uint8, blended with weight ``alpha`` (feathered at the lips)."""
        import cv2

        if alpha <= 0:
            return img
        k = self.retrieve(p)
        lip = p[INNER_LIP_CONTOUR, :2].astype(np.float64)
        H, W = img.shape[:2]
        mw = float(np.linalg.norm(p[CORNERS[1], :2] - p[CORNERS[0], :2]))
        m = int(max(3, 0.1 * mw))
        x0, y0 = np.maximum(np.floor(lip.min(0)).astype(int) - m, 0)
        x1, y1 = np.minimum(np.ceil(lip.max(0)).astype(int) + m, [W, H])
        if x1 - x0 < 3 or y1 - y0 < 3:
            return img
        src = np.concatenate([self.contours[k], self.contours[k].mean(0, keepdims=True)])
        dst = np.concatenate([lip, lip.mean(0, keepdims=True)])
        patch, covered = warp_into(self.crops[k], src, dst, fan_triangles(len(lip)), (x0, y0, x1, y1))
        roi = img[y0:y1, x0:x1].astype(np.float32)
        now = lip_ring_colour(img, p)
        if now is not None and self.rings[k] is not None:  # this frame's light on the bank's interior
            patch += np.clip(now - self.rings[k], -MAX_FIT, MAX_FIT)
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.fillPoly(mask, [np.round((lip - [x0, y0]) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.7, 0.02 * mw)) * covered * float(np.clip(alpha, 0, 1))
        out = img.copy()
        out[y0:y1, x0:x1] = np.clip(roi * (1 - mask[..., None]) + patch * mask[..., None], 0, 255).astype(
            np.uint8
        )
        return out
