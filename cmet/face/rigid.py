"""What an expression must not move: the head's outline above the eyes (hair, ears, background
beyond it) and eyeglass frames.

* :func:`vertex_weights`: a weight [468] in [0, 1] per FaceMesh vertex that scales the expression
  displacement of the warp. Vertices on and near the upper face oval (above the eyes) get 0,
  fading to 1 over :data:`OVAL_FADE` IOD inwards (a brow's two edges alike: :data:`BROW_PAIRS`);
  with eyeglasses, the eye band (lids, the cheeks' top, the nose bridge: where the frames sit)
  gets 0 and the brows fade in above it, so the frames move only with the head.
* :func:`eyeglasses_score`: edge evidence of eyeglass frames: a strong straight horizontal edge
  across the nose bridge between the eyes (where the bridge of the frames crosses; skin there is
  smooth), relative to the upper lids' edges, as a median over frames (frames persist, a shadow
  or a blink does not). :data:`GLASSES_SCORE` decides.
"""

from __future__ import annotations

import numpy as np

from cmet.face.landmarks import LEFT_EYE_OUTER, RIGHT_EYE_OUTER

#: vertices within this distance (IOD) of the upper face oval fade from 0 to full displacement
OVAL_FADE = 0.25
#: eyeglasses when the median edge ratio (bridge line vs upper lids) exceeds this (the 13 release
#: portraits and W009_038: 0.06-0.9; the same portraits with drawn frames: 1.18-3.5)
GLASSES_SCORE = 1.05
#: with eyeglasses, the brows fade in over this distance (IOD) above the eye band
BAND_FADE = 0.2
#: FaceMesh vertices: nose bridge between the eyes, forehead centre, under the lower lids
BRIDGE = (168, 6)
UPPER_LIDS = (159, 386)
#: the skin between each brow's lower edge and the upper lid's edge (FaceMesh eye-upper rings 1-2,
#: the brow's lower edge, the upper lid): a lowered brow may hood the lid (one surface over another)
BROW_HOOD = (46, 53, 52, 65, 55, 247, 30, 29, 27, 28, 56, 190, 113, 225, 224, 223, 222, 221, 189, 246, 161, 160, 159, 158, 157, 173,
             276, 283, 282, 295, 285, 467, 260, 259, 257, 258, 286, 414, 342, 445, 444, 443, 442, 441, 413, 466, 388, 387, 386, 385, 384, 398)  # fmt: skip
#: each brow's upper-edge vertices and the lower-edge vertex below each (subject's right, left):
#: the brow hair between them moves as one piece (see vertex_weights)
BROW_PAIRS = ((70, 46), (63, 53), (105, 52), (66, 65), (107, 55), (300, 276), (293, 283), (334, 282), (296, 295), (336, 285))  # fmt: skip
#: the face oval (silhouette) of the FaceMesh topology
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)  # fmt: skip
EYE_BAND_ROWS = (27, 159, 386, 257, 23, 145, 374, 253)  # upper/lower lid vertices: the band's rows


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _frame(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Face frame of landmarks [468, >=2]: (eye midpoint, x axis, y axis down, IOD)."""
    re, le = p[RIGHT_EYE_OUTER, :2], p[LEFT_EYE_OUTER, :2]
    iod = float(np.linalg.norm(le - re)) + 1e-9
    ex = (le - re) / iod
    return (re + le) / 2, ex, np.array([-ex[1], ex[0]]), iod


def vertex_weights(neutral_px: np.ndarray, glasses: bool = False) -> np.ndarray:
    """Displacement weight per vertex [468] of a neutral mesh [468, >=2] (pixels); see module doc."""
    o, ex, ey, iod = _frame(neutral_px)
    q = neutral_px[:, :2] - o
    xy = np.stack([q @ ex, q @ ey], 1) / iod  # face coordinates, IOD units, y down
    oval = xy[list(FACE_OVAL)]
    d = np.min(np.linalg.norm(xy[:, None] - oval[None], axis=2), axis=1)
    w = np.ones(len(xy))
    upper = xy[:, 1] < 0.1  # above (a little below) the eye line: forehead, temples
    w[upper] = _smooth(d[upper] / OVAL_FADE)
    # the brow's upper edge lies nearer the oval than its lower edge: faded alone it would rise less
    # and squeeze the brow hair into a thin hard line; both edges take the larger weight and the
    # forehead above (bare skin) takes the squeeze
    for up, lo in BROW_PAIRS:
        w[up] = w[lo] = max(w[up], w[lo])
    if glasses:
        rows = xy[list(EYE_BAND_ROWS), 1]
        top = float(rows.min()) - 0.05  # just above the upper lids: the frames' top rim
        inside = (xy[:, 1] >= top) & (xy[:, 1] <= float(rows.max()) + 0.3) & (np.abs(xy[:, 0]) <= 0.62)
        w[inside] = 0.0
        above = (xy[:, 1] < top) & (np.abs(xy[:, 0]) <= 0.7)
        w[above] *= _smooth((top - xy[above, 1]) / BAND_FADE)
    return w.astype(np.float32)


def _patch(gy: np.ndarray, centre: np.ndarray, half: np.ndarray | float) -> np.ndarray:
    """The [h, w] window of gy around centre [2] (pixels) with half sizes (x, y)."""
    h, w = gy.shape
    x0, y0 = np.maximum(np.floor(centre - half).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(centre + half).astype(int) + 1, [w, h])
    return gy[y0:y1, x0:x1] if x1 > x0 and y1 > y0 else np.zeros((1, 1), np.float32)


def eyeglasses_score(frames: np.ndarray, landmarks: np.ndarray, n: int = 15) -> float:
    """Median over ``n`` spread frames [T, H, W, 3] (landmarks [T, 468, >=2]) of the strongest
    horizontal edge line across the nose bridge (row mean of the vertical gradient) relative to
    the edge energy of the upper lids (a contrast-free scale: skin on the bridge ~0.1-0.9 of it,
    the bridge of a frame > 1.2)."""
    import cv2

    scores = []
    for i in np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)):
        p = landmarks[i, :, :2]
        _, _, _, iod = _frame(p)
        g = cv2.cvtColor(np.ascontiguousarray(frames[i]), cv2.COLOR_RGB2GRAY).astype(np.float32)
        g = cv2.GaussianBlur(g, (0, 0), max(0.6, iod / 150))
        gy = np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))
        bridge = _patch(gy, (p[BRIDGE[0]] + p[BRIDGE[1]]) / 2, np.array([0.08, 0.10]) * iod)
        lids = np.mean([_patch(gy, p[k], 0.05 * iod).mean() for k in UPPER_LIDS])
        scores.append(float(bridge.mean(1).max()) / max(float(lids), 1.0))
    return float(np.median(scores))


def has_eyeglasses(frames: np.ndarray, landmarks: np.ndarray) -> bool:
    """Eyeglass frames on the face of frames [T, H, W, 3] / landmarks [T, 468, >=2]?"""
    return eyeglasses_score(frames, landmarks) > GLASSES_SCORE
