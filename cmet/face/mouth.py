"""The mouth interior a warp cannot make, where the mouth opens more than in the source.

On video the person's own interior comes from their open-mouth frames (:mod:`cmet.face.mouth_bank`).
Without such frames (a portrait, a video whose mouth never opens) a textured, shaded model is
rendered into the target inner-lip polygon, never a flat fill (:func:`mouth_model`), in the person's
own colours: a cavity in the hue of their lips, darkest at the back and the corners; a tongue (lip
hue, lit from the front) resting low; upper teeth hanging from the upper lip along its curve (a
smile, AU10/AU12) and lower teeth for AU20/AU26, in the colour of their eye whites under this light
(:func:`teeth_colour`), each tooth with its own width along the arch, the crown shorter towards the
corners, soft interproximal shading, darker under the lip and a fixed fine grain (no flicker).
"""

from __future__ import annotations

import numpy as np

from cmet.face.au_fields import CHIN, INNER_LIP_CONTOUR, OUTER_LIP_CONTOUR
from cmet.face.landmarks import LEFT_EYE_OUTER, LOWER_LIP_INNER, RIGHT_EYE_OUTER, UPPER_LIP_INNER

#: enamel under frontal light (scaled by the arch and gum shading)
TEETH_RGB = (212, 202, 184)
#: tooth widths along the half arch (central incisor, lateral, canine, premolar), half-mouth units
TOOTH_WIDTHS = (0.2, 0.17, 0.16, 0.15, 0.15)
#: a lip colour for when the lips cannot be sampled
LIP_FALLBACK_RGB = (150, 80, 80)


def signed_gap(p: np.ndarray) -> float:
    """Inner-lip gap (pixels) of landmarks [468, >=2], positive when the lower lip is below the
    upper one along the face's down direction (eyes' midpoint -> chin)."""
    down = p[CHIN, :2] - (p[RIGHT_EYE_OUTER, :2] + p[LEFT_EYE_OUTER, :2]) / 2
    down = down / (np.linalg.norm(down) + 1e-9)
    return float((p[LOWER_LIP_INNER, :2] - p[UPPER_LIP_INNER, :2]) @ down)


def lip_colour(img: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Mean RGB [3] of the lips (between the outer and inner lip contours) of img [H, W, 3]."""
    import cv2

    outer = np.round(p[OUTER_LIP_CONTOUR, :2]).astype(np.int32)
    H, W = img.shape[:2]
    x0, y0 = np.clip(outer.min(0), 0, [W, H])
    x1, y1 = np.clip(outer.max(0) + 1, 0, [W, H])
    m = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), np.uint8)  # the lips' box only
    cv2.fillPoly(m, [outer - [x0, y0]], 1)
    cv2.fillPoly(m, [np.round(p[INNER_LIP_CONTOUR, :2]).astype(np.int32) - [x0, y0]], 0)
    px = img[y0:y1, x0:x1][m.astype(bool)]
    return px.astype(np.float32).mean(0) if len(px) else np.array(LIP_FALLBACK_RGB, np.float32)


def _mouth_coords(shape: tuple[int, int], p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(t [h, w]: 0 at the upper inner lip, 1 at the lower; across [h, w]: 0 centre, 1 corners;
    the inner-lip gap in pixels) for landmarks p [468, 2] in crop pixels."""
    h, w = shape
    top, bot = p[UPPER_LIP_INNER], p[LOWER_LIP_INNER]
    gap = float(np.linalg.norm(bot - top)) + 1e-6
    down = (bot - top) / gap
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = ((xs - top[0]) * down[0] + (ys - top[1]) * down[1]) / gap
    c = (p[78] + p[308]) / 2
    half_w = float(np.linalg.norm(p[308] - p[78])) / 2 + 1e-6
    across = np.abs((xs - c[0]) * down[1] - (ys - c[1]) * down[0]) / half_w
    return t, across, gap


def _teeth_shade(across: np.ndarray, grain: np.ndarray) -> np.ndarray:
    """Shading [h, w] of a row of teeth: soft gaps between teeth, the arch turning from the light."""
    edges = np.concatenate([[0.0], np.cumsum(TOOTH_WIDTHS)])
    a = np.clip(across, 0, edges[-1] - 1e-3)
    k = np.searchsorted(edges, a, side="right") - 1
    frac = (a - edges[k]) / np.asarray(TOOTH_WIDTHS)[k]
    gaps = 1 - 0.12 * np.exp(-((frac / 0.2) ** 2)) - 0.12 * np.exp(-(((frac - 1) / 0.2) ** 2))
    return gaps * np.clip(1 - 0.6 * across**2, 0, 1) * (1 + 0.03 * grain)


#: the eye openings (FaceMesh), whose whites give the person's own "white" under this light
EYE_CONTOURS = (
    [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246],
    [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466],
)
#: enamel against the sclera: a little darker and yellower than the eye's white
ENAMEL = (0.95, 0.92, 0.84)


def teeth_colour(img: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The teeth's colour [3] in this person's light: the brightest tenth of their eye whites
    (inside both eye openings of landmarks p [468, >=2] in img [H, W, 3]) times :data:`ENAMEL`;
    :data:`TEETH_RGB` when the eyes show too few pixels."""
    from cmet.face.realism import luma, polygon_mask

    px = np.concatenate([img[polygon_mask(img.shape[:2], p[c, :2])] for c in EYE_CONTOURS])
    if len(px) < 12:
        return np.asarray(TEETH_RGB, np.float32)
    lum = luma(px)
    white = px[lum >= np.percentile(lum, 90)].astype(np.float32).mean(0)
    return np.clip(white * np.asarray(ENAMEL, np.float32), 0, 255)


#: the upper and lower inner-lip arcs (corner to corner)
UPPER_ARC = INNER_LIP_CONTOUR[:11]
LOWER_ARC = [*INNER_LIP_CONTOUR[10:], INNER_LIP_CONTOUR[0]]


def lip_arc_y(p: np.ndarray, arc: list[int], xs: np.ndarray) -> np.ndarray:
    """The y of a lip arc (landmark indices ``arc``, corner to corner, of landmarks p [468, >=2]) at
    the columns xs (any shape; held past the arc's ends)."""
    pts = p[arc, :2]
    o = np.argsort(pts[:, 0])
    return np.interp(xs, pts[o, 0], pts[o, 1]).astype(np.float32)


def mouth_model(
    shape: tuple[int, int], p: np.ndarray, iod: float, au: dict[str, float], lip_rgb, teeth_rgb=TEETH_RGB
) -> np.ndarray:
    """The shaded mouth model [h, w, 3] float32 RGB of a crop (landmarks p [468, 2] in crop pixels):
    a cavity in the lips' hue, darkest at the back and at the corners (the buccal corridor); a tongue;
    rows of teeth in ``teeth_rgb`` (:func:`teeth_colour`: the person's own light) hanging from the
    upper inner lip along its curve (standing on the lower), tallest at the centre and shorter
    towards the corners as the arch turns away, each tooth shaded, darker under the lip."""
    import cv2

    t, across, gap = _mouth_coords(shape, p)
    h, w = shape
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    lip = np.asarray(lip_rgb, np.float32)
    col = (0.28 * lip)[None, None] * (0.85 - 0.3 * np.clip(across, 0, 1) ** 2)[..., None]  # darker corners
    tongue = np.sqrt(np.clip(1 - (across / 0.65) ** 2 - ((t - 1.0) / 0.45) ** 2, 0, 1))[..., None]
    col = col * (1 - tongue) + (0.7 * lip + 12.0) * (0.75 + 0.25 * tongue) * tongue
    grain = cv2.GaussianBlur(
        np.random.default_rng(0).normal(0, 1, shape).astype(np.float32), (0, 0), max(0.6, iod / 90)
    )
    shade = _teeth_shade(across, grain)
    upper = float(np.clip(au.get("AU12", 0) + au.get("AU10", 0) + 0.2 * au.get("AU20", 0), 0, 1))
    lower = float(np.clip(au.get("AU20", 0) + 0.5 * au.get("AU26_emo", 0) - au.get("AU12", 0), 0, 1))
    arch = np.clip(1 - 0.7 * across**2, 0.2, 1)  # the visible crown shortens towards the corners
    top = lip_arc_y(p, UPPER_ARC, xs)
    bot = lip_arc_y(p, LOWER_ARC, xs)
    rows = [(ys - top, 0.05 + 0.06 * upper)] + ([(bot - ys, 0.06 * lower)] if lower > 0.2 else [])
    enamel = np.asarray(teeth_rgb, np.float32)
    for dist, height in rows:
        tall = np.minimum(0.45 * gap, height * iod) * arch  # [h, w] visible crown (pixels)
        pos = dist / np.maximum(tall, 1e-3)  # 0 at the lip, 1 at the biting edge
        inside = (pos > -0.2) & (across < sum(TOOTH_WIDTHS))
        m = (np.clip((1 - pos) * 4, 0, 1) * np.clip(pos * 4 + 0.8, 0, 1) * inside)[..., None]
        light = 0.7 + 0.3 * np.clip(pos * 2.5, 0, 1) - 0.08 * np.clip(pos - 0.8, 0, 1) * 5  # lip shadow, edge
        tooth = enamel * (light * shade)[..., None]
        col = col * (1 - m) + tooth * m
    return col
