"""The mouth interior from the person's own frames (Video Rewrite 1997; Synthesizing Obama 2017).

On a video the input's open-mouth frames (teeth, tongue, inner lips as that person shows them) are
collected into a small bank, each with its landmarks, its mouth shape and the colour of its lip ring
(:func:`lip_ring_colour`: the light of its moment). Where an edit opens the mouth wider than the
source frame shows it, the entries nearest in mouth *shape* (:meth:`MouthBank.nearest`: the first
kept while it stays nearly as good, so the interior does not jump between frames) are the donors of
:func:`cmet.face.interior.compose_interior`, which reads them rigidly (teeth never stretched).

Shape descriptor (:func:`mouth_shape`): the 20 inner-lip vertices in the mouth's own frame (origin
between the corners, x along the corner line, unit = the corner distance) -> [40].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cmet.face.au_fields import INNER_LIP_CONTOUR
from cmet.face.interior import lip_ring_colour
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


@dataclass
class MouthBank:
    """Open-mouth moments of one person: each a :class:`cmet.face.interior.Donor` (its crop, its
    landmarks in it, its lip-ring colour; its opening mask and shadow computed once), its shape
    descriptor [40] and opening (inner-lip gap / IOD). Filled up front (:meth:`from_frames`) or as a
    video streams past the renderer (:meth:`offer`)."""

    donors: list = field(default_factory=list)
    shapes: list[np.ndarray] = field(default_factory=list)
    openings: list[float] = field(default_factory=list)
    size: int = 40
    min_open: float = 0.08
    hysteresis: float = 0.15
    _last: int | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.donors)

    def offer(self, frame: np.ndarray, p: np.ndarray) -> bool:
        """Keep frame [H, W, 3] (landmarks p [468, >=2]) if its mouth is open at least ``min_open``,
        the bank is not full and no kept mouth has nearly the same shape. Returns whether kept."""
        mo = float(mouth_opening(p[None])[0])
        if mo < self.min_open or len(self) >= self.size:
            return False
        shape = mouth_shape(p)
        if self.shapes and float(np.min(np.linalg.norm(np.stack(self.shapes) - shape, axis=1))) < 0.03:
            return False
        from cmet.face.interior import Donor

        d = Donor.cut(frame, p, margin=0.35, ring=lip_ring_colour(frame, p))
        if d is None:
            return False
        self.donors.append(d)
        self.shapes.append(shape)
        self.openings.append(mo)
        return True

    @property
    def cavity(self) -> np.ndarray | None:
        """The person's mouth shadow: the entries' shadow of median brightness (None: no entry yet)."""
        from cmet.face.interior import luminance

        shadows = [d.shadow for d in self.donors if d.shadow is not None]
        if not shadows:
            return None
        lum = [luminance(s) for s in shadows]
        return shadows[int(np.argsort(lum)[len(lum) // 2])]

    @property
    def grain(self) -> np.ndarray | None:
        """The footage's grain [3] (a camera's, not a moment's): the median over the entries of their
        :func:`cmet.face.interior.grain_sigma` (None: no entry measured)."""
        grains = [d.grain for d in self.donors if d.grain is not None]
        return None if not grains else np.median(np.stack(grains), 0).astype(np.float32)

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

    def nearest(self, p: np.ndarray, k: int = 2) -> list[tuple[int, float]]:
        """The ``k`` entries nearest in mouth shape to landmarks p [468, >=2]: [(index, distance)],
        nearest first; the last call's nearest stays first while within ``hysteresis`` of the best."""
        d = np.linalg.norm(np.stack(self.shapes) - mouth_shape(p)[None], axis=1)
        order = [int(i) for i in np.argsort(d)[:k]]
        if (
            self._last is not None
            and self._last < len(d)
            and d[self._last] <= (1 + self.hysteresis) * d[order[0]] + 1e-3
        ):
            order = [self._last] + [i for i in order if i != self._last][: k - 1]
        self._last = order[0]
        return [(i, float(d[i])) for i in order]

    def donor(self, i: int):
        """Entry ``i`` as a :class:`cmet.face.interior.Donor`."""
        return self.donors[i]
