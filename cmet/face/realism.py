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
* :func:`sharpness_ratio` -- detail kept: variance of the Laplacian of the mouth (lips, teeth,
  inner lips: the outer-lip polygon's box) on the edit against the same input frame, median over the
  input's open-mouth frames (1 = as sharp; a second resampling or a blurred interior lowers it).
* :func:`teeth_stretch` -- the horizontal scale of the teeth against the same input frame: the
  scale of the input's column profile of the upper-teeth band that best matches the edit's (1 = the
  teeth kept their width; a mouth warp that widens the teeth with the smile reads 1.3-1.5).
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


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of RGB values [..., 3] -> [...] float32 (grey level)."""
    return np.asarray(rgb, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def lip_box(lm: np.ndarray, shape: tuple[int, int], margin: float = 0.0) -> tuple[int, int, int, int] | None:
    """The outer-lip polygon's box (x0, y0, x1, y1) of landmarks [468, 2|3], grown by ``margin`` x its
    width, clipped to ``shape`` (H, W); None when empty."""
    q = lm[OUTER_LIP_CONTOUR, :2]
    lo, hi = q.min(0), q.max(0)
    g = margin * float(hi[0] - lo[0])
    H, W = shape
    x0, y0 = int(max(0, np.floor(lo[0] - g))), int(max(0, np.floor(lo[1] - g)))
    x1, y1 = int(min(W, np.ceil(hi[0] + g) + 1)), int(min(H, np.ceil(hi[1] + g) + 1))
    return None if x1 - x0 < 4 or y1 - y0 < 4 else (x0, y0, x1, y1)


def laplacian_variance(img: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Variance of the grey-level Laplacian (3x3) of img [H, W, 3] inside box (x0, y0, x1, y1)."""
    import cv2

    x0, y0, x1, y1 = box
    g = luma(img[max(0, y0 - 1) : y1 + 1, max(0, x0 - 1) : x1 + 1])
    return float(cv2.Laplacian(g, cv2.CV_32F, ksize=1)[1:-1, 1:-1].var())


def sharpness_ratio(
    frames_in: np.ndarray,
    lm_in: np.ndarray,
    frames_out: np.ndarray,
    lm_out: np.ndarray,
    thresh: float = OPEN_IOD,
) -> tuple[float, int]:
    """(median over the input's open-mouth frames of laplacian_variance(edit, its lip box) /
    laplacian_variance(input, its lip box), number of frames); frames [T, H, W, 3], landmarks
    [T, 468, 2|3] tracked on each video."""
    idx = open_frames(lm_in, thresh)
    r = []
    for i in idx:
        bi, bo = lip_box(lm_in[i], frames_in.shape[1:3]), lip_box(lm_out[i], frames_out.shape[1:3])
        if bi is None or bo is None:
            continue
        r.append(laplacian_variance(frames_out[i], bo) / max(laplacian_variance(frames_in[i], bi), 1e-6))
    return (float(np.median(r)), len(r)) if r else (float("nan"), 0)


#: horizontal scales teeth_stretch tries (1 = unchanged)
STRETCH_GRID = np.round(np.arange(0.70, 1.801, 0.01), 3)


def teeth_profile(img: np.ndarray, lm: np.ndarray) -> tuple[np.ndarray, float, float] | None:
    """The upper-teeth band's column profile: (grey-level x-derivative [2 R + 1] over x = centre - R ...
    centre + R, centre x, R) with R half the mouth width; the band runs from the upper inner lip a
    third of the way to the lower one. None when the mouth is closed or off the image."""
    from cmet.face.landmarks import LOWER_LIP_INNER, UPPER_LIP_INNER

    top, bot = lm[UPPER_LIP_INNER, :2], lm[LOWER_LIP_INNER, :2]
    gap = float(bot[1] - top[1])
    R = 0.5 * float(abs(lm[308, 0] - lm[78, 0]))
    if gap < 3 or R < 6:
        return None
    cx = float(top[0])
    y0, y1 = int(round(top[1] + 0.05 * gap)), int(round(top[1] + 0.4 * gap)) + 1
    x0, x1 = int(np.floor(cx - R)) - 2, int(np.ceil(cx + R)) + 3
    H, W = img.shape[:2]
    if y0 < 0 or x0 < 0 or y1 > H or x1 > W or y1 - y0 < 1:
        return None
    col = luma(img[y0:y1, x0:x1]).mean(0)
    xs = np.arange(x0, x1, dtype=np.float64)
    grid = cx + np.arange(-int(R), int(R) + 1, dtype=np.float64)
    prof = np.interp(grid, xs, col)
    return np.gradient(prof), cx, float(int(R))


def stretch_of(p_in: np.ndarray, p_out: np.ndarray) -> float | None:
    """The horizontal scale s (from :data:`STRETCH_GRID`) for which the input's teeth profile
    ``p_in`` stretched by s best correlates with the edit's ``p_out`` (both [2 R + 1], centred)."""
    R = (len(p_out) - 1) // 2
    u = np.arange(-R, R + 1, dtype=np.float64)
    ri = (len(p_in) - 1) // 2
    best, arg = -np.inf, None
    for s in STRETCH_GRID:
        q = np.interp(u / s, np.arange(-ri, ri + 1), p_in, left=np.nan, right=np.nan)
        ok = np.isfinite(q)
        if ok.sum() < 0.5 * len(u):
            continue
        a, b = q[ok] - q[ok].mean(), p_out[ok] - p_out[ok].mean()
        c = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
        if c > best:
            best, arg = c, float(s)
    return arg if best > 0.3 else None


def teeth_stretch(
    frames_in: np.ndarray,
    lm_in: np.ndarray,
    frames_out: np.ndarray,
    lm_out: np.ndarray,
    thresh: float = OPEN_IOD,
) -> tuple[float, int]:
    """(median horizontal scale of the teeth, edit against the same input frame, number of frames it
    was read on): the input's open-mouth frames (1 = rigid; see :func:`stretch_of`)."""
    r = []
    for i in open_frames(lm_in, thresh):
        a, b = teeth_profile(frames_in[i], lm_in[i]), teeth_profile(frames_out[i], lm_out[i])
        if a is None or b is None:
            continue
        s = stretch_of(a[0], b[0])
        if s is not None:
            r.append(s)
    return (float(np.median(r)), len(r)) if r else (float("nan"), 0)


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
