"""The edited mouth's interior from the person's own footage, with rigid teeth (Synthesizing Obama,
Suwajanakorn et al. 2017; Video Rewrite 1997).

A mesh warp that widens the mouth stretches whatever the source frame shows between the lips: with
a smile the teeth come out scaled sideways. Teeth are rigid. :func:`compose_interior` paints the
target inner-lip polygon from *donors* read rigid across (:func:`rigid_read`): each target column is
the donor's column at the same offset from the mouth's middle, rotated and scaled only with the head
(the eye line), so the teeth keep their width and spacing; down each column the donor's opening is
laid between the target's lips (the upper teeth stay under the upper lip, the lower lip's inside on
the lower lip). Where a column falls past the donor's corners (the target mouth is wider than the
donor's), or near its corners where its lips converge (:data:`CORNER_FADE`: that thin wedge laid
tall between wider lips is lip, a pale seam), the person's own mouth shows instead: the lips' wet
inside along the line, then the mouth shadow (:func:`shadow_colour`: the darker part of the donor's
interior), deeper towards the back, with the footage's own grain (:func:`grain_sigma`: a clean
painted patch is a colour no camera records): the dark corridor at the corners of a smile, never
teeth stretched into it.

Donors: the frame itself (its own teeth, this moment's light), or where its mouth is not open
enough, the bank's open-mouth moments nearest in lip shape (:class:`cmet.face.mouth_bank.MouthBank`)
blended by weight and sharpened against the nearest (its detail layer added back, so the blend does
not soften the teeth edges), their light matched to this frame's by the lip ring
(:func:`lip_ring_colour`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from cmet.face.au_fields import INNER_LIP_CONTOUR
from cmet.face.landmarks import LEFT_EYE_OUTER, LOWER_LIP_INNER, RIGHT_EYE_OUTER, UPPER_LIP_INNER
from cmet.face.mouth import LOWER_ARC, UPPER_ARC, lip_arc_y, lip_colour
from cmet.face.realism import luma

#: the edit widened or opened the mouth this much (IOD) past render.UNSEEN: the interior is fully composed
MOVED_FULL = 0.03
#: the share of the donor's interior (the darkest pixels) whose mean colour is its mouth shadow
SHADOW_SHARE = 0.8
#: the target polygon's edge is feathered over this (IOD): the lips' inner edge is soft
FEATHER = 0.012
#: a mouth's cavity without a bank to learn it from: the lips' colour times this (cmet.face.mouth's)
CAVITY_TONE = 0.28
#: the mouth shadow's brightness at the lips and at the back of the mouth (x the shadow colour): a
#: real interior spans the person's dark range (W009_038's open mouths: value 32-160 about evenly),
#: not one level (W009 -> happy mouth colour with the gap fixed, before the grain: 1.2/0.8 0.217,
#: 1.4/0.6 0.203)
RIM_LIGHT, DEEP = 1.4, 0.6
#: the lips' wet inner surface shows along the inner-lip line over this share of the opening, in the
#: lips' colour times this
WET, WET_TONE = 0.08, 0.9
#: the most the light correction shifts a banked interior's colour (levels)
MAX_FIT = 40.0


@dataclass(eq=False)
class Donor:
    """An open mouth to read from: pixels [h, w, 3] uint8 around it, its landmarks [468, 2] in them
    and its lip-ring colour [3] (the light of its moment; None: this frame's own)."""

    img: np.ndarray
    lm: np.ndarray
    ring: np.ndarray | None = None

    @classmethod
    def cut(cls, frame: np.ndarray, lm: np.ndarray, margin: float = 0.35, ring=None) -> Donor | None:
        """The donor around the inner lips of landmarks lm [468, >=2] in frame [H, W, 3] (a margin of
        ``margin`` x the mouth width); None when off the frame."""
        lip = lm[INNER_LIP_CONTOUR, :2]
        m = margin * float(np.linalg.norm(lm[308, :2] - lm[78, :2])) + 3
        H, W = frame.shape[:2]
        x0, y0 = np.maximum(np.floor(lip.min(0) - m).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(lip.max(0) + m).astype(int) + 1, [W, H])
        if x1 - x0 < 3 or y1 - y0 < 3:
            return None
        # a copy: the frame is edited in place after this
        return cls(np.array(frame[y0:y1, x0:x1]), (lm[:, :2] - [x0, y0]).astype(np.float32), ring)

    @cached_property
    def opening(self) -> np.ndarray:
        """:meth:`opening_mask`, computed once."""
        return self.opening_mask()

    @cached_property
    def shadow(self) -> np.ndarray | None:
        """:func:`shadow_colour`, computed once."""
        return shadow_colour(self)

    @cached_property
    def grain(self) -> np.ndarray | None:
        """:func:`grain_sigma`, computed once."""
        return grain_sigma(self)

    def opening_mask(self) -> np.ndarray:
        """[h, w] float32: 1 inside the donor's inner-lip polygon shrunk by a pixel (its anti-aliased
        edge is lip), feathered over a pixel."""
        import cv2

        m = np.zeros(self.img.shape[:2], np.uint8)
        pts = np.round(self.lm[INNER_LIP_CONTOUR] * 16).astype(np.int32)
        cv2.fillPoly(m, [pts], 255, lineType=cv2.LINE_AA, shift=4)
        m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
        return cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), 0.9)


def shadow_colour(donor: Donor) -> np.ndarray | None:
    """Mean RGB [3] float32 of the darkest :data:`SHADOW_SHARE` of the donor's interior pixels (its
    mouth shadow); None when its opening holds fewer than 8 pixels."""
    inside = donor.opening > 0.5
    px = donor.img[inside].astype(np.float32)
    if len(px) < 8:
        return None
    lum = luma(px)
    k = max(4, int(SHADOW_SHARE * len(px)))
    return px[np.argpartition(lum, k - 1)[:k]].mean(0)


def grain_sigma(donor: Donor) -> np.ndarray | None:
    """The footage's grain in the donor's mouth shadow: per channel [3] float32, the robust spread
    (1.4826 x the median absolute deviation) of its fine layer (the pixels minus a 1-px Gaussian
    blur) over the darker half of its interior, a pixel in from any edge; None when that holds fewer
    than 16 pixels."""
    import cv2

    inside = donor.opening > 0.5
    if inside.sum() < 16:
        return None
    img = donor.img.astype(np.float32)
    fine = img - cv2.GaussianBlur(img, (0, 0), 1.0)
    lum = luma(img)
    dark = (inside & (lum <= np.median(lum[inside]))).astype(np.uint8)
    dark = cv2.erode(dark, np.ones((3, 3), np.uint8)).astype(bool)  # not the teeth's or lips' edges
    if dark.sum() < 16:
        return None
    r = fine[dark]
    return (1.4826 * np.median(np.abs(r - np.median(r, 0)), 0)).astype(np.float32)


def grain_field(shape: tuple[int, int]) -> np.ndarray:
    """[h, w, 3] float32 unit-variance noise, the same for every call of a shape (seeded): the grain
    laid on a painted shadow (one field for every donor of a frame, so a blend keeps its strength)."""
    return np.random.default_rng(0).standard_normal((*shape, 3), np.float32)


#: the lip ring whose colour measures the light: from the inner-lip line out to this share of the
#: mouth width
RING = 0.12


def lip_ring_colour(img: np.ndarray, p: np.ndarray) -> np.ndarray | None:
    """Mean colour [3] of the lips around the inner-lip polygon of landmarks p [468, >=2] in img
    [H, W, 3] (a ring from the polygon out to :data:`RING` x the mouth width); None if empty."""
    import cv2

    lip = p[INNER_LIP_CONTOUR, :2].astype(np.float64)
    mw = float(np.linalg.norm(p[308, :2] - p[78, :2]))
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


def luminance(rgb: np.ndarray) -> float:
    return float(luma(rgb))


def head_similarity(d_lm: np.ndarray, t_lm: np.ndarray) -> np.ndarray:
    """[2, 2]: target offsets -> donor offsets, the head's rotation and scale between them (the eye
    line of each; the same scale across and down, so teeth are never stretched sideways)."""
    ed = d_lm[LEFT_EYE_OUTER, :2] - d_lm[RIGHT_EYE_OUTER, :2]
    et = t_lm[LEFT_EYE_OUTER, :2] - t_lm[RIGHT_EYE_OUTER, :2]
    s = float(np.linalg.norm(ed) / max(np.linalg.norm(et), 1e-6))
    a = float(np.arctan2(ed[1], ed[0]) - np.arctan2(et[1], et[0]))
    return s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


#: a donor's opening fades out over this share of its half-width before its corners (its corner
#: wedge is lip and shadow: laid tall between the wider target's lips it reads as a pale seam)
CORNER_FADE = 0.25
#: ... and where its opening is under this share of its opening at the middle
CORNER_OPEN = 0.35

#: a donor's opening is laid between the target's lips at most this much taller (a jaw dropped
#: further opens a gap of mouth shadow between the rows: teeth are never stretched tall)
TALL_MAX = 2.0


def gap_weight(up: np.ndarray, lo: np.ndarray, mid: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """[h, w] 1 where a target row is past both halves of the donor's opening (its upper read below
    the donor's middle ``mid``, its lower read above it): the gap between the rows, which shows mouth
    shadow, not the donor's other half read again (its teeth twice); soft over a target pixel."""
    return np.clip(np.minimum(up - mid, mid - lo) * scale + 0.5, 0, 1)


def rigid_read(donor: Donor, t_lm: np.ndarray, box: tuple[int, int, int, int]):
    """The donor's mouth read onto the target box (x0, y0, x1, y1) of landmarks t_lm [468, >=2],
    rigid across and with the lips down -> (colour [h, w, 3] float32 weighted by the cover, cover
    [h, w] float32: how much of the pixel the donor's opening covers; the rest is the mouth's own:
    the lips' inside, then shadow).

    Across, every column is the donor's at the same offset from the mouth's middle (the upper inner
    lip), only rotated and scaled with the head (:func:`head_similarity`): the teeth keep their
    width and spacing however wide the smile (past the donor's corners lies the dark corridor of a
    wide mouth, never teeth stretched into it). Down, each column's opening (upper to lower inner
    lip) is the donor's opening in that column, up to :data:`TALL_MAX` taller: the upper half hangs
    from the upper lip, the lower half stands on the lower lip, and a jaw dropped further shows the
    gap between them (mouth shadow)."""
    import cv2

    x0, y0, x1, y1 = box
    shape = (y1 - y0, x1 - x0)
    xs = np.arange(x0, x1, dtype=np.float32)[None, :]
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    R = head_similarity(donor.lm, t_lm)
    a, d = t_lm[UPPER_LIP_INNER, :2], donor.lm[UPPER_LIP_INNER]
    # rigid across: the donor column of each target column (and its rotation's slant)
    ux = np.broadcast_to(d[0] + R[0, 0] * (xs - a[0]) + R[0, 1] * (ys - a[1]), shape)
    # down: the fraction of the way from the target's upper to its lower inner lip in this column,
    # the same fraction of the donor's opening in its column
    ttop, tbot = lip_arc_y(t_lm, UPPER_ARC, xs), lip_arc_y(t_lm, LOWER_ARC, xs)
    dtop, dbot = lip_arc_y(donor.lm, UPPER_ARC, ux), lip_arc_y(donor.lm, LOWER_ARC, ux)
    hd = np.maximum(dbot - dtop, 1.0)
    scale = np.minimum(np.maximum(tbot - ttop, 0.0) / hd, TALL_MAX)  # taller: up to TALL_MAX
    scale = np.maximum(scale, 1e-3)
    up = dtop + (ys - ttop) / scale  # the upper teeth hang from the upper lip
    lo = dbot - (tbot - ys) / scale  # the lower lip's inside stands on the lower lip
    mid = 0.5 * (dtop + dbot)
    gap = gap_weight(up, lo, mid, scale)
    uy = np.where(up <= mid, up, lo)
    ux, uy = np.ascontiguousarray(ux, np.float32), np.ascontiguousarray(uy, np.float32)
    c = cv2.remap(donor.img, ux, uy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    m = cv2.remap(donor.opening, ux, uy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    m = m * (1 - np.where((up > mid) & (lo < mid), gap, 0.0)).astype(np.float32)
    # towards the donor's corners (its lips converge: a tall read of the thin wedge smears lip) its
    # opening fades into the target's own shadow: the dark buccal corridor of a wide mouth
    left, right = sorted((float(donor.lm[78, 0]), float(donor.lm[308, 0])))
    edge = np.minimum(ux - left, right - ux) / (CORNER_FADE * max(0.5 * (right - left), 1.0))
    # ... and where its opening thins to under CORNER_OPEN of its opening at the middle
    mid_h = float((lip_arc_y(donor.lm, LOWER_ARC, d[:1]) - lip_arc_y(donor.lm, UPPER_ARC, d[:1]))[0])
    thin = (dbot - dtop) / max(CORNER_OPEN * mid_h, 1.0)
    m = m * (_smoothstep(edge) * _smoothstep(thin)).astype(np.float32)
    return c * m[..., None], m


def sharpen_to(blend: np.ndarray, nearest: np.ndarray, weight: float) -> np.ndarray:
    """A weighted blend [h, w, 3] of reads with the nearest read's detail layer (``nearest`` minus
    its Gaussian blur) added back for the share ``1 - weight`` the blend took from the others."""
    import cv2

    if weight >= 1.0:
        return blend
    detail = nearest - cv2.GaussianBlur(nearest, (0, 0), 1.0)
    return blend + (1.0 - weight) * detail


def inner_box(t_lm: np.ndarray, shape: tuple[int, int], margin: int = 2) -> tuple[int, int, int, int] | None:
    lip = t_lm[INNER_LIP_CONTOUR, :2]
    H, W = shape
    x0, y0 = np.maximum(np.floor(lip.min(0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(lip.max(0)).astype(int) + margin + 1, [W, H])
    return None if x1 - x0 < 3 or y1 - y0 < 3 else (int(x0), int(y0), int(x1), int(y1))


def cavity_shade(t_lm: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Over the box: (factor [h, w, 1] float32 on the mouth shadow: :data:`RIM_LIGHT` at the target's
    inner-lip line (light reaching past the lips), falling to :data:`DEEP` a third of the opening in,
    the back of the mouth; rim [h, w, 1]: 1 on the lips' wet inner surface along the line, fading over
    :data:`WET` of the opening): a shaded cavity in the person's own colours, not a flat fill."""
    import cv2

    x0, y0, x1, y1 = box
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    pts = np.round((t_lm[INNER_LIP_CONTOUR, :2] - [x0, y0]) * 16).astype(np.int32)
    cv2.fillPoly(m, [pts], 1, lineType=cv2.LINE_8, shift=4)
    dist = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    gap = float(np.linalg.norm(t_lm[LOWER_LIP_INNER, :2] - t_lm[UPPER_LIP_INNER, :2]))
    f = RIM_LIGHT + (DEEP - RIM_LIGHT) * _smoothstep(dist / max(1.0, gap / 3))
    rim = 1 - _smoothstep(dist / max(1.5, WET * gap))
    return f[..., None].astype(np.float32), rim[..., None].astype(np.float32)


def compose_interior(
    img: np.ndarray,
    t_lm: np.ndarray,
    donors: list[tuple[Donor, float]],
    amount: float,
    fallback: np.ndarray | None = None,
    fallback_weight: float = 0.0,
    cavity: np.ndarray | None = None,
    grain: np.ndarray | None = None,
) -> np.ndarray:
    """Paint the target inner-lip polygon of landmarks t_lm [468, >=2] in img [H, W, 3] uint8 (in
    place; returned) from ``donors`` [(Donor, weight)] (nearest first; weights summing to at most 1),
    each read rigidly (:func:`rigid_read`) with its own shadow past its opening, its light matched to
    this frame's; ``fallback`` [H, W, 3] float32 (a modelled interior, e.g. :func:`cmet.face.mouth.mouth_model`
    on the box) takes ``fallback_weight``. ``cavity`` [3]: the person's darkest mouth shadow (the bank's,
    :attr:`cmet.face.mouth_bank.MouthBank.cavity`): a donor whose opening is all teeth has no shadow of
    its own darker than its teeth. ``grain`` [3]: the footage's grain laid on the painted shadow (the
    bank's, :attr:`cmet.face.mouth_bank.MouthBank.grain`; None: each donor's own, :func:`grain_sigma`).
    Blended in with weight ``amount`` (feathered at the lips)."""
    import cv2

    box = inner_box(t_lm, img.shape[:2])
    if box is None or amount <= 0:
        return img
    x0, y0, x1, y1 = box
    depth, rim = cavity_shade(t_lm, box)
    lips = lip_colour(img, t_lm)
    wet = WET_TONE * lips  # the inside of the lips: their colour, in their shade
    if cavity is None:  # no bank: the modelled cavity, in the lips' hue
        cavity = CAVITY_TONE * lips
    now = noise = None
    col = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
    total = 0.0
    first = None
    for donor, wt in donors:
        if wt <= 0:
            continue
        c, ins = rigid_read(donor, t_lm, box)
        shade = donor.shadow
        if shade is None or luminance(cavity) < luminance(shade):
            shade = cavity
        bare = rim * wet + (1 - rim) * shade * depth  # where no tooth covers: lips' inside, then shadow
        sigma = donor.grain if grain is None else grain
        if sigma is not None:  # the footage's own grain, not a clean painted patch
            noise = grain_field(bare.shape[:2]) if noise is None else noise
            bare = bare + noise * sigma
        c = c + (1 - ins[..., None]) * bare  # (c is already weighted by the cover)
        if donor.ring is not None:  # another moment's light: shifted to this frame's (lip rings)
            now = lip_ring_colour(img, t_lm) if now is None else now
            if now is not None:
                c += np.clip(now - donor.ring, -MAX_FIT, MAX_FIT)
        first = (c, wt) if first is None else first
        col += wt * c
        total += wt
    if fallback is not None and fallback_weight > 0:
        col += fallback_weight * fallback
        total += fallback_weight
    if total <= 0:
        return img
    col /= total
    if first is not None:
        col = sharpen_to(col, first[0], first[1] / total)
    mask = np.zeros((y1 - y0, x1 - x0), np.float32)
    pts = np.round((t_lm[INNER_LIP_CONTOUR, :2] - [x0, y0]) * 16).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1.0, lineType=cv2.LINE_AA, shift=4)
    iod = float(np.linalg.norm(t_lm[LEFT_EYE_OUTER, :2] - t_lm[RIGHT_EYE_OUTER, :2]))
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, FEATHER * iod)) * mask  # soft inside the line only
    mask = (mask * float(np.clip(amount, 0, 1)))[..., None]
    roi = img[y0:y1, x0:x1].astype(np.float32)
    img[y0:y1, x0:x1] = np.clip(roi + mask * (col - roi), 0, 255).astype(np.uint8)
    return img
