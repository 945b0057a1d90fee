"""Does an edit look real? Three measures of an edited video against its input.

* :func:`mouth_colour_distance` -- the colours inside the open mouth (teeth, tongue, inner lips):
  pixels of the FaceMesh inner-lip polygon on the frames where the *input's* mouth is open
  (inner-lip gap >= :data:`OPEN_IOD` inter-ocular distances), pooled into one HSV histogram
  (12 x 8 x 8 bins) per video, Bhattacharyya distance edited vs input (0 = same distribution,
  1 = disjoint). A flat painted interior (white bar, uniform cavity) is far from the person's own.
* :func:`flicker_ratio` -- temporal stability: the mean absolute frame-to-frame change of the
  face outside the mouth (face oval minus the dilated outer-lip region of input and edit) in the
  edit, divided by the same in the input (1 = as stable as the input).
* identity (:mod:`cmet.face.identity`): dlib descriptor distance edited vs input, same frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from cmet.face.au_fields import INNER_LIP_CONTOUR, OUTER_LIP_CONTOUR
from cmet.face.landmarks import mouth_opening

#: the input's mouth counts as open from this inner-lip gap (inter-ocular distances; W009_038:
#: median 0.06, 75th percentile 0.087)
OPEN_IOD = 0.08
HSV_BINS = (12, 8, 8)


def polygon_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    """Filled polygon pts [K, 2] (pixels) -> bool mask [H, W]."""
    import cv2

    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(pts[:, :2] * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return m.astype(bool)


def hsv_histogram(pixels_rgb: np.ndarray) -> np.ndarray:
    """RGB pixels [N, 3] uint8 -> normalised HSV histogram [12, 8, 8] (sums to 1; zeros if N = 0)."""
    import cv2

    px = np.ascontiguousarray(pixels_rgb.reshape(-1, 1, 3).astype(np.uint8))
    if len(px) == 0:
        return np.zeros(HSV_BINS, np.float32)
    hsv = cv2.cvtColor(px, cv2.COLOR_RGB2HSV)
    h = cv2.calcHist([hsv], [0, 1, 2], None, list(HSV_BINS), [0, 180, 0, 256, 0, 256])
    return (h / max(h.sum(), 1e-9)).astype(np.float32)


def bhattacharyya(h1: np.ndarray, h2: np.ndarray) -> float:
    """Bhattacharyya (Hellinger) distance of two histograms (as OpenCV's HISTCMP_BHATTACHARYYA)."""
    import cv2

    return float(cv2.compareHist(h1.astype(np.float32), h2.astype(np.float32), cv2.HISTCMP_BHATTACHARYYA))


def open_frames(landmarks: np.ndarray, thresh: float = OPEN_IOD) -> np.ndarray:
    """Indices of the frames whose inner-lip gap is >= ``thresh`` IOD; landmarks [T, 468, 2|3]."""
    return np.flatnonzero(mouth_opening(landmarks) >= thresh)


def mouth_pixels(frames: np.ndarray, landmarks: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """RGB pixels [N, 3] inside the inner-lip polygon of frames[idx] (each with its own landmarks)."""
    out = [
        f[polygon_mask(f.shape[:2], lm[INNER_LIP_CONTOUR])]
        for f, lm in zip(frames[idx], landmarks[idx], strict=True)
    ]
    return np.concatenate(out) if out else np.zeros((0, 3), np.uint8)


def mouth_colour_distance(
    frames_in: np.ndarray,
    lm_in: np.ndarray,
    frames_out: np.ndarray,
    lm_out: np.ndarray,
    thresh: float = OPEN_IOD,
) -> tuple[float, int]:
    """(Bhattacharyya distance of the pooled open-mouth HSV histograms edited vs input, number of
    open frames). frames [T, H, W, 3] uint8 RGB, landmarks [T, 468, 2|3] tracked on each video."""
    idx = open_frames(lm_in, thresh)
    if len(idx) == 0:
        return float("nan"), 0
    h_in = hsv_histogram(mouth_pixels(frames_in, lm_in, idx))
    h_out = hsv_histogram(mouth_pixels(frames_out, lm_out, idx))
    return bhattacharyya(h_in, h_out), int(len(idx))


def outside_mouth_mask(shape: tuple[int, int], lm_in: np.ndarray, lm_out: np.ndarray | None) -> np.ndarray:
    """Face oval minus the outer-lip regions (dilated by 0.15 IOD) of all frames: [H, W] bool."""
    import cv2

    from cmet.face.landmarks import inter_ocular

    face = np.zeros(shape, bool)
    mouth = np.zeros(shape, np.uint8)
    for lms in (lm_in,) if lm_out is None else (lm_in, lm_out):
        for lm in lms:
            face |= polygon_mask(shape, face_hull(lm))
            mouth |= polygon_mask(shape, lm[OUTER_LIP_CONTOUR]).astype(np.uint8)
    r = max(1, int(0.15 * float(np.median(inter_ocular(lm_in)))))
    mouth = cv2.dilate(mouth, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return face & ~mouth.astype(bool)


def face_hull(lm: np.ndarray) -> np.ndarray:
    """The convex hull of the 468 FaceMesh vertices [468, 2|3] -> [K, 2] (the face oval)."""
    import cv2

    return cv2.convexHull(lm[:, :2].astype(np.float32)).reshape(-1, 2)


def frame_change(frames: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute frame-to-frame change (grey levels) inside mask: frames [T, H, W, 3] -> float."""
    f = frames.astype(np.float32).mean(-1)
    return float(np.abs(np.diff(f, axis=0))[:, mask].mean())


def flicker_ratio(
    frames_in: np.ndarray, frames_out: np.ndarray, lm_in: np.ndarray, lm_out: np.ndarray | None = None
) -> float:
    """Frame-to-frame change of the face outside the mouth, edit / input (1 = as stable)."""
    mask = outside_mouth_mask(frames_in.shape[1:3], lm_in, lm_out)
    return frame_change(frames_out, mask) / max(frame_change(frames_in, mask), 1e-6)


@dataclass
class Realism:
    mouth_colour: float  # Bhattacharyya distance, open-mouth HSV histograms edited vs input
    n_open: int  # open-mouth input frames it was measured on
    identity_median: float  # dlib descriptor distance, edited vs same input frame (median)
    identity_p90: float
    flicker: float  # frame-to-frame change outside the mouth, edit / input

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def measure(
    frames_in: np.ndarray,
    lm_in: np.ndarray,
    frames_out: np.ndarray,
    lm_out: np.ndarray,
    identity_stride: int = 5,
    identity_ref=None,
) -> Realism:
    """All three measures of one edit (landmarks tracked on each video, [T, 468, 3]); identity on
    every ``identity_stride``-th frame (``identity_ref``: a :class:`cmet.face.identity.Reference`
    of those input frames, reused across edits of one input)."""
    from cmet.face.identity import Reference

    mc, n_open = mouth_colour_distance(frames_in, lm_in, frames_out, lm_out)
    idx = np.arange(0, len(frames_in), max(1, identity_stride))
    ref = identity_ref if identity_ref is not None else Reference.of(frames_in[idx], lm_in[idx])
    d = ref.distances(frames_out[idx])
    return Realism(
        mouth_colour=mc,
        n_open=n_open,
        identity_median=float(np.median(d)),
        identity_p90=float(np.percentile(d, 90)),
        flicker=flicker_ratio(frames_in, frames_out, lm_in, lm_out),
    )
