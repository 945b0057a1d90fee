"""The mouth interior a warp cannot make: where the mouth opens more than in the source, a dark
cavity, upper teeth under the upper lip, lower teeth for AU20/AU26 and a tongue are painted into
the target inner-lip polygon (not a stretched lip)."""

from __future__ import annotations

import numpy as np

from cmet.face.au_fields import CHIN, INNER_LIP_CONTOUR
from cmet.face.landmarks import LEFT_EYE_OUTER, LOWER_LIP_INNER, RIGHT_EYE_OUTER, UPPER_LIP_INNER

# mouth interior colours: a dark cavity and a dark, low tongue (a bright tongue near the lower lip
# reads to FaceMesh as lip and breaks the lip track)
CAVITY_RGB = (70, 28, 30)
TONGUE_RGB = (150, 72, 78)
TONGUE_H = 0.42


def signed_gap(p: np.ndarray) -> float:
    """Inner-lip gap (pixels) of landmarks [468, >=2], positive when the lower lip is below the
    upper one along the face's down direction (eyes' midpoint -> chin)."""
    down = p[CHIN, :2] - (p[RIGHT_EYE_OUTER, :2] + p[LEFT_EYE_OUTER, :2]) / 2
    down = down / (np.linalg.norm(down) + 1e-9)
    return float((p[LOWER_LIP_INNER, :2] - p[UPPER_LIP_INNER, :2]) @ down)


def mouth_interior(
    img: np.ndarray, p: np.ndarray, iod: float, added_open: float, au: dict[str, float]
) -> np.ndarray:
    """Paint a mouth interior into the target inner-lip polygon where the mouth opened more than
    in the source. img [H, W, 3] uint8, p [468, 2] target landmarks, added_open (IOD units)."""
    import cv2

    if added_open <= 0.01:
        return img
    H, W = img.shape[:2]
    lip = p[INNER_LIP_CONTOUR]
    m = int(max(4, iod * 0.1))
    x0, y0 = (np.floor(lip.min(0)).astype(int) - m).clip(0, None)
    x1, y1 = np.ceil(lip.max(0)).astype(int) + m
    x1, y1 = min(W, x1), min(H, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return img
    full = img
    img = full[y0:y1, x0:x1]
    p = p - [x0, y0]
    h, w = img.shape[:2]
    poly = np.round(p[INNER_LIP_CONTOUR] * 16).astype(np.int32)
    mask = np.zeros((h, w), np.float32)
    cv2.fillPoly(mask, [poly], 1.0, lineType=cv2.LINE_AA, shift=4)
    if mask.sum() < 2:
        return full
    top, bot = p[UPPER_LIP_INNER], p[LOWER_LIP_INNER]
    gap = float(np.linalg.norm(bot - top)) + 1e-6
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    down = bot - top
    down /= gap
    tpos = ((xs - top[0]) * down[0] + (ys - top[1]) * down[1]) / gap  # 0 at upper lip, 1 at lower
    cx = (p[78] + p[308]) / 2
    half_w = float(np.linalg.norm(p[308] - p[78])) / 2 + 1e-6
    across = np.abs((xs - cx[0]) * down[1] - (ys - cx[1]) * down[0]) / half_w  # 0 centre, 1 corners
    # dark cavity, darker at the back/centre
    base = np.array(CAVITY_RGB, np.float32)
    cav = base[None, None] * (0.55 + 0.45 * np.clip(across, 0, 1))[..., None]
    col = cav.copy()
    # upper teeth: a band under the upper lip, narrower than the mouth
    # upper teeth show with a raised upper lip (smile AU12, AU10); lower teeth with the stretched,
    # dropped lower lip of fear (AU20, AU26)
    show = float(np.clip(au.get("AU12", 0) + au.get("AU10", 0) + 0.2 * au.get("AU20", 0), 0, 1))
    show_low = float(np.clip(au.get("AU20", 0) + 0.5 * au.get("AU26_emo", 0) - au.get("AU12", 0), 0, 1))
    teeth_h = min(0.35, (0.015 + 0.055 * show) * iod / gap)
    teeth = (tpos < teeth_h) & (across < 0.78)
    tcol = np.array([228, 222, 210], np.float32) * (1 - 0.35 * np.clip(across, 0, 1))[..., None]
    col[teeth] = tcol[teeth]
    # lower teeth (lip stretcher / emotional jaw drop)
    if show_low > 0.2:
        lt = (tpos > 1 - min(0.3, 0.06 * show_low * iod / gap)) & (across < 0.7)
        col[lt] = 0.9 * tcol[lt]
    # tongue: an ellipse resting on the lower teeth
    tongue = ((across / 0.62) ** 2 + ((tpos - 1.0) / TONGUE_H) ** 2) < 1.0
    tongue &= ~teeth
    if show_low > 0.2:
        tongue &= ~lt
    col[tongue] = (
        np.array(TONGUE_RGB, np.float32) * (0.8 + 0.2 * (1 - np.clip(across, 0, 1)))[tongue][..., None]
    )
    col = cv2.GaussianBlur(col, (0, 0), max(0.6, iod / 120))
    alpha = np.clip(added_open / 0.05, 0, 1) * cv2.GaussianBlur(mask, (0, 0), 0.7)
    out = img.astype(np.float32) * (1 - alpha[..., None]) + col * alpha[..., None]
    res = full.copy()
    res[y0:y1, x0:x1] = np.clip(out, 0, 255).astype(np.uint8)
    return res
