"""The renderer: a frame + its landmarks + an AU code change -> the edited frame.

1. Target landmarks (:func:`cmet.face.expression.target_landmarks`): the frame's own landmarks
   (so its lips, pose and expression stay) moved by the AU displacement fields in the face's pose.
2. Piecewise-affine mesh warp (OpenCV): a Delaunay triangulation of the 468 FaceMesh vertices plus
   a fixed ring around the face and the image border (fixed points, so the warp fades out); every
   target pixel is mapped back through its triangle's affine map and sampled with ``cv2.remap``.
3. What a warp cannot do, painted in target coordinates:
   * a mouth interior where the mouth opens more than in the source (dark gradient, upper teeth
     under the upper lip, lower teeth for AU20/AU26, a tongue), not a stretched lip;
   * shading where the muscles bunch: vertical glabellar furrows (AU4), nose-bridge wrinkles
     (AU9), nasolabial folds (AU9/10/12/6), marionette lines (AU15), crow's feet (AU6), forehead
     wrinkles (AU1/2), a brow shadow (AU4/7), cheek highlights (AU6/12), chin dimpling (AU17).
     Strengths scale with the AU intensities and the face size (IOD).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from cmet.errors import ConfigError
from cmet.face.expression import (
    CHIN,
    INNER_LIP_CONTOUR,
    Canonical,
    target_landmarks,
)
from cmet.face.facs import AU_NAMES
from cmet.face.landmarks import LEFT_EYE_OUTER, LOWER_LIP_INNER, RIGHT_EYE_OUTER, UPPER_LIP_INNER

FACE_OVAL = [
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
]
N_BORDER = 16
#: AUs whose fields are not scaled past their apex by the render gain: the emotional jaw drop
#: (0.25 IOD at apex is already wide; more breaks the lip track and reads as shouting = angry)
JAW_AUS = ("AU26_emo",)
#: AUs that part the lips without the jaw (upper lip up, lower lip down): on video they take
#: ``face.video_lip_gain`` instead of the render gain (the opened mouth must stay trackable)
LIP_OPENING_AUS = ("AU10", "AU16")
# mouth interior colours: a dark cavity and a dark, low tongue (a bright tongue near the lower lip
# reads to FaceMesh as lip and breaks the lip track)
CAVITY_RGB = (70, 28, 30)
TONGUE_RGB = (150, 72, 78)
TONGUE_H = 0.42


def control_points(p2d: np.ndarray, shape: tuple[int, int], ring: float = 1.5) -> np.ndarray:
    """[468, 2] landmarks -> [468 + 36 + 16, 2]: the mesh, a fixed ring around the face oval
    (scaled ``ring`` about the face centre) and points on a frame around the image."""
    h, w = shape
    c = p2d[FACE_OVAL].mean(0)
    ringp = c + ring * (p2d[FACE_OVAL] - c)
    m = max(h, w)
    lo, hi = -0.5 * m, 1.5 * m
    t = np.linspace(0, 1, N_BORDER // 4, endpoint=False)
    border = np.concatenate(
        [
            np.stack([lo + (hi - lo) * t, np.full_like(t, lo)], 1),
            np.stack([np.full_like(t, hi), lo + (hi - lo) * t], 1),
            np.stack([hi - (hi - lo) * t, np.full_like(t, hi)], 1),
            np.stack([np.full_like(t, lo), hi - (hi - lo) * t], 1),
        ]
    )
    return np.concatenate([p2d, ringp, border]).astype(np.float32)


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles [K, 3] (indices) of control points [N, 2]."""
    from scipy.spatial import Delaunay

    return Delaunay(points.astype(np.float64)).simplices.astype(np.int32)


def warp(img: np.ndarray, src: np.ndarray, dst: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Piecewise-affine warp: the pixel at ``src`` control points moves to ``dst``.

    img [H, W, C] uint8, src/dst [N, 2], tris [K, 3] -> [H, W, C] uint8.
    """
    import cv2

    h, w = img.shape[:2]
    S = src[tris].astype(np.float64)  # [K, 3, 2]
    D = dst[tris].astype(np.float64)
    # only triangles with a moved vertex need remapping; the others map to themselves
    moved = np.abs(S - D).max(axis=(1, 2)) > 1e-3
    Dh = np.concatenate([D, np.ones((len(tris), 3, 1))], 2)  # [K, 3, 3]
    ok = moved & (np.abs(np.linalg.det(Dh)) > 1e-9)
    if not ok.any():
        return img.copy()
    # affine dst -> src per triangle: solve [x y 1] @ M = [u v]
    M = np.linalg.solve(Dh[ok], S[ok])  # [K', 3, 2]
    Dk = D[ok]
    x0 = int(max(0, np.floor(Dk[..., 0].min()) - 1))
    y0 = int(max(0, np.floor(Dk[..., 1].min()) - 1))
    x1 = int(min(w, np.ceil(Dk[..., 0].max()) + 2))
    y1 = int(min(h, np.ceil(Dk[..., 1].max()) + 2))
    if x1 <= x0 or y1 <= y0:
        return img.copy()
    ids = np.full((y1 - y0, x1 - x0), -1, np.int32)
    pts = np.round((Dk - [x0, y0]) * 16).astype(np.int32)
    for k in range(len(pts)):
        cv2.fillConvexPoly(ids, pts[k], k, lineType=cv2.LINE_8, shift=4)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    Mk = M.astype(np.float32)[np.clip(ids, 0, None)]  # [h', w', 3, 2]
    mx_r = xs * Mk[..., 0, 0] + ys * Mk[..., 1, 0] + Mk[..., 2, 0]
    my_r = xs * Mk[..., 0, 1] + ys * Mk[..., 1, 1] + Mk[..., 2, 1]
    none = ids < 0
    mx_r[none], my_r[none] = xs[none], ys[none]
    my, mx = np.mgrid[0:h, 0:w].astype(np.float32)
    mx[y0:y1, x0:x1] = mx_r
    my[y0:y1, x0:x1] = my_r
    return cv2.remap(img, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _line(canvas: np.ndarray, pts: np.ndarray, value: float, thick: float):
    import cv2

    if value <= 0:
        return
    cv2.polylines(
        canvas,
        [np.round(pts * 16).astype(np.int32)],
        False,
        float(value),
        thickness=max(1, int(round(thick))),
        lineType=cv2.LINE_AA,
        shift=4,
    )


def shading(shape, p: np.ndarray, iod: float, au: dict[str, float], strength: float = 1.0):
    """Darkening and highlight maps [H, W] (0 = unchanged) for target landmarks p [468, 2]."""
    import cv2

    h, w = shape
    dark = np.zeros((h, w), np.float32)  # fine lines (wrinkles, furrows)
    soft = np.zeros((h, w), np.float32)  # broad folds and shadows
    light = np.zeros((h, w), np.float32)
    th = max(1.0, iod / 55.0)
    # wrinkles saturate: an AU beyond its apex (render gain > 1) does not paint darker lines
    a = {k: min(1.0, max(0.0, float(au.get(k, 0.0)))) * strength for k in AU_NAMES}
    ex = p[263] - p[33]
    ex /= np.linalg.norm(ex) + 1e-9
    ey = np.array([-ex[1], ex[0]])  # down the face
    mid_brow = (p[107] + p[336]) / 2
    # AU4: two vertical glabellar furrows + a horizontal procerus line, brow shadow
    if a["AU4"] > 0:
        # with the inner brows raised too (AU1+4, sadness/fear) the brows slant: fewer vertical furrows
        furrow = a["AU4"] * (1 - 0.8 * min(a["AU1"], a["AU4"]) / a["AU4"])
        for sgn in (-1, 1):
            top = mid_brow + sgn * 0.07 * iod * ex - 0.10 * iod * ey
            bot = mid_brow + sgn * 0.05 * iod * ex + 0.12 * iod * ey
            _line(dark, np.stack([top, (top + bot) / 2 + sgn * 0.01 * iod * ex, bot]), 0.4 * furrow, th)
        _line(soft, np.stack([mid_brow - 0.06 * iod * ex, mid_brow + 0.06 * iod * ex]), 0.35 * furrow, th * 4)
        _line(dark, np.stack([p[193], p[168], p[417]]), 0.2 * a["AU4"], th)
        for brow, lid in (
            ([46, 53, 52, 65, 55], [157, 158, 159, 160, 161]),
            ([276, 283, 282, 295, 285], [384, 385, 386, 387, 388]),
        ):
            poly = np.concatenate([p[brow], p[lid]])
            hull = cv2.convexHull(np.round(poly * 16).astype(np.int32))
            tmp = np.zeros_like(dark)
            cv2.fillConvexPoly(tmp, hull, 0.22 * max(a["AU4"], 0.5 * a["AU7"]), lineType=cv2.LINE_AA, shift=4)
            soft = np.maximum(soft, tmp)
    # AU9: horizontal wrinkles over the nose bridge
    if a["AU9"] > 0:
        c0 = (p[168] + p[6]) / 2
        for k, off in enumerate((-0.06, 0.0, 0.06)):
            cc = c0 + off * iod * ey
            half = (0.09 - 0.015 * k) * iod * ex
            _line(dark, np.stack([cc - half, cc + 0.015 * iod * ey, cc + half]), 0.45 * a["AU9"], th)
    # nasolabial folds: ala -> beyond the mouth corner
    nl = 0.45 * a["AU12"] + 0.55 * a["AU10"] + 0.5 * a["AU9"] + 0.15 * a["AU6"] + 0.25 * a["AU20"]
    if nl > 0:
        for ala, _mid, corner, sgn in ((129, 206, 61, -1), (358, 426, 291, 1)):
            start = p[ala] + sgn * 0.03 * iod * ex
            end = p[corner] + sgn * 0.05 * iod * ex + 0.03 * iod * ey
            middle = (start + end) / 2 + sgn * 0.05 * iod * ex
            _line(soft, np.stack([start, middle, end]), min(0.5, 0.8 * nl), th * 2.5)
            _line(dark, np.stack([start, middle, end]), min(0.25, 0.4 * nl), th)
            if a["AU6"] + a["AU12"] > 0:
                cv2.circle(
                    light,
                    tuple(np.round((p[205 if sgn < 0 else 425] + sgn * 0.04 * iod * ex) * 16).astype(int)),
                    int(0.12 * iod * 16),
                    0.10 * (a["AU6"] + 0.5 * a["AU12"]),
                    -1,
                    cv2.LINE_AA,
                    shift=4,
                )
    # AU15: marionette lines
    if a["AU15"] > 0:
        for corner, sgn in ((61, -1), (291, 1)):
            s0 = p[corner] + sgn * 0.02 * iod * ex
            _line(
                soft, np.stack([s0, s0 + 0.12 * iod * ey + sgn * 0.01 * iod * ex]), 0.35 * a["AU15"], th * 2
            )
    # AU6: crow's feet
    if a["AU6"] > 0:
        for corner, sgn in ((33, -1), (263, 1)):
            o = p[corner] + sgn * 0.06 * iod * ex
            for ang in (-0.35, 0.0, 0.35):
                d = sgn * ex * np.cos(ang) + ey * np.sin(ang)
                _line(dark, np.stack([o, o + 0.08 * iod * d]), 0.3 * a["AU6"], th)
    # AU1/AU2: forehead wrinkles
    # (full width with the outer brow raiser; AU1 alone only wrinkles the centre a little)
    fh = a["AU2"] + 0.3 * a["AU1"]
    if fh > 0:
        width = 0.42 * a["AU2"] / max(fh, 1e-6) + 0.2 * (1 - a["AU2"] / max(fh, 1e-6))
        for k, off in enumerate((0.16, 0.26, 0.36)):
            cc = mid_brow - off * iod * ey
            half = (width - 0.05 * k) * iod * ex
            _line(
                dark,
                np.stack(
                    [
                        cc - half,
                        cc - half / 2 - 0.02 * iod * ey,
                        cc,
                        cc + half / 2 - 0.02 * iod * ey,
                        cc + half,
                    ]
                ),
                0.25 * fh,
                th,
            )
    # AU17: chin dimpling
    if a["AU17"] > 0:
        cv2.circle(
            soft,
            tuple(np.round(((p[17] + p[152]) / 2) * 16).astype(int)),
            int(0.07 * iod * 16),
            0.12 * a["AU17"],
            -1,
            cv2.LINE_AA,
            shift=4,
        )
    sig = max(0.8, iod / 70.0)
    dark = cv2.GaussianBlur(dark, (0, 0), sig) + cv2.GaussianBlur(soft, (0, 0), sig * 2.5)
    light = cv2.GaussianBlur(light, (0, 0), sig * 4)
    return np.clip(dark, 0, 0.7), np.clip(light, 0, 0.3)


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


def _signed_gap(p: np.ndarray) -> float:
    """Inner-lip gap (pixels) of landmarks [468, >=2], positive when the lower lip is below the
    upper one along the face's down direction (eyes' midpoint -> chin)."""
    down = p[CHIN, :2] - (p[RIGHT_EYE_OUTER, :2] + p[LEFT_EYE_OUTER, :2]) / 2
    down = down / (np.linalg.norm(down) + 1e-9)
    return float((p[LOWER_LIP_INNER, :2] - p[UPPER_LIP_INNER, :2]) @ down)


class FaceRenderer:
    """Renders AU code changes onto the frames of one identity (fixed triangulation)."""

    def __init__(
        self,
        can: Canonical,
        shape: tuple[int, int],
        shading_strength: float = 1.0,
        gain: float = 1.0,
        jaw_gain: float | None = None,
        au_gains: dict[str, float] | None = None,
    ):
        self.can = can
        self.shape = shape
        self.tris = triangulate(control_points(can.neutral_px[:, :2], shape))
        self.shading_strength = shading_strength
        self.gain = gain
        # per-AU gain: the JAW_AUS fields get ``jaw_gain`` (default min(gain, 1): on a talking video
        # the lip track must survive; a still portrait has none to keep and may use ``gain``)
        gj = min(gain, 1.0) if jaw_gain is None else jaw_gain
        self.gains = np.array([gj if a in JAW_AUS else gain for a in AU_NAMES], np.float32)
        # explicit per-AU overrides (e.g. the lip-opening AUs on a talking video, cmet.edit)
        for a, g in (au_gains or {}).items():
            if a not in AU_NAMES:
                raise ValueError(f"au_gains: unknown action unit {a!r}; known: {list(AU_NAMES)}")
            self.gains[AU_NAMES.index(a)] = float(g)

    def render(
        self,
        frame: np.ndarray,
        landmarks: np.ndarray,
        delta_au: np.ndarray,
        jaw: float = 0.0,
        return_landmarks: bool = False,
    ):
        """frame [H, W, 3] uint8 + its landmarks [468, 3] + AU change [D_EXPR] -> [H, W, 3] uint8."""
        delta = np.asarray(delta_au, np.float32) * self.gains
        tgt = target_landmarks(self.can, landmarks, delta, jaw)
        src_c = control_points(landmarks[:, :2], frame.shape[:2])
        dst_c = control_points(tgt[:, :2], frame.shape[:2])
        dst_c[468:] = src_c[468:]  # the ring and border stay put
        out = warp(frame, src_c, dst_c, self.tris)
        iod = float(np.linalg.norm(tgt[263, :2] - tgt[33, :2]))
        au = {k: float(v) for k, v in zip(AU_NAMES, delta, strict=True)}
        # signed inner-lip gap along the face's down axis: lips pressed past each other (a
        # negative gap) must not count as an opening that paints teeth
        src_open = _signed_gap(landmarks) / iod
        dst_open = _signed_gap(tgt) / iod
        out = mouth_interior(out, tgt[:, :2], iod, dst_open - src_open, au)
        if self.shading_strength > 0:
            dark, light = shading(out.shape[:2], tgt[:, :2], iod, au, self.shading_strength)
            f = out.astype(np.float32)
            f = f * (1 - dark[..., None])
            f = f + light[..., None] * (255 - f)
            out = np.clip(f, 0, 255).astype(np.uint8)
        return (out, tgt) if return_landmarks else out


class Renderer(Protocol):
    """What the edit and the evaluations need of a renderer for one identity."""

    def render(
        self,
        frame: np.ndarray,
        landmarks: np.ndarray,
        delta_au: np.ndarray,
        jaw: float = 0.0,
        return_landmarks: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """frame [H, W, 3] uint8 + its landmarks [468, 3] + AU change [D_EXPR] -> [H, W, 3] uint8
        (and the target landmarks [468, 3] with ``return_landmarks``)."""
        ...


#: the face-config fields the renderer reads (``configs/face/default.yaml``)
RENDER_KEYS = ("render_gain", "shading", "video_jaw_gain", "video_lip_gain")


def _setting(face_cfg: Any, overrides: dict[str, float], key: str, needed: bool) -> float | None:
    """``overrides[key]``, else the face config's value; None when neither has it and not ``needed``."""
    if key in overrides:
        return float(overrides[key])
    if face_cfg is not None:
        has = key in face_cfg if isinstance(face_cfg, Mapping) else hasattr(face_cfg, key)
        if has:
            v = face_cfg[key] if isinstance(face_cfg, Mapping) else getattr(face_cfg, key)
            return float(v)
    if needed:
        raise ConfigError(
            f"face config has no {key!r} (the renderer on a video needs {', '.join(RENDER_KEYS)})"
        )
    return None


def make_renderer(
    face_cfg: Any,
    can: Canonical,
    shape: tuple[int, int],
    *,
    video: bool = False,
    **overrides: float,
) -> Renderer:
    """The one way to build a renderer for one identity from the face config.

    ``face_cfg``: the face section of the config (``cfg.face``: ``render_gain``, ``shading``,
    ``video_jaw_gain``, ``video_lip_gain``) or None (the plain renderer: gain 1 = the FACS apex
    fields, full shading). ``overrides``: any of those keys, replacing the config's value.
    ``video``: the settings of a talking video: the emotional jaw drop at ``video_jaw_gain`` and
    the lip-opening AUs (:data:`LIP_OPENING_AUS`) at ``video_lip_gain`` x apex, so the speech lip
    track survives; otherwise (a still portrait) every field, jaw included, at ``render_gain``.
    """
    bad = sorted(set(overrides) - set(RENDER_KEYS))
    if bad:
        raise ConfigError(f"make_renderer: unknown setting(s) {bad}; known: {list(RENDER_KEYS)}")
    gain = _setting(face_cfg, overrides, "render_gain", False)
    gain = 1.0 if gain is None else gain
    shading_strength = _setting(face_cfg, overrides, "shading", False)
    shading_strength = 1.0 if shading_strength is None else shading_strength
    if not video:
        return FaceRenderer(can, shape, shading_strength=shading_strength, gain=gain, jaw_gain=gain)
    jaw_gain = _setting(face_cfg, overrides, "video_jaw_gain", True)
    lip_gain = _setting(face_cfg, overrides, "video_lip_gain", True)
    return FaceRenderer(
        can,
        shape,
        shading_strength=shading_strength,
        gain=gain,
        jaw_gain=jaw_gain,
        au_gains=dict.fromkeys(LIP_OPENING_AUS, lip_gain),
    )
