"""Shading a warp cannot make, painted in target coordinates where the muscles bunch: vertical
glabellar furrows (AU4), nose-bridge wrinkles (AU9), nasolabial folds (AU9/10/12/6), marionette
lines (AU15), crow's feet (AU6), forehead wrinkles (AU1/2), a brow shadow (AU4/7), cheek highlights
(AU6/12), chin dimpling (AU17). Strengths scale with the AU intensities and the face size (IOD)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmet.face.facs import AU_NAMES

#: the most a crease darkens / a highlight lightens the skin (multiplicative, 0 = unchanged)
MAX_DARK = 0.15
MAX_LIGHT = 0.10


@dataclass(frozen=True)
class _Face:
    """Target landmarks p [468, 2], inter-ocular distance (pixels), line thickness and the face's
    unit axes ``ex`` (right eye -> left eye) and ``ey`` (down the face)."""

    p: np.ndarray
    iod: float
    th: float
    ex: np.ndarray
    ey: np.ndarray


@dataclass(frozen=True)
class _Maps:
    """[H, W] float32 canvases: fine lines (wrinkles, furrows), broad folds and shadows, highlights."""

    dark: np.ndarray
    soft: np.ndarray
    light: np.ndarray


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


def _brow_lowerer(m: _Maps, f: _Face, mid_brow: np.ndarray, a: dict[str, float]):
    """AU4: two vertical glabellar furrows + a horizontal procerus line, brow shadow (AU4/AU7)."""
    import cv2

    p, iod, th, ex, ey = f.p, f.iod, f.th, f.ex, f.ey
    # with the inner brows raised too (AU1+4, sadness/fear) the brows slant: fewer vertical furrows
    furrow = a["AU4"] * (1 - 0.8 * min(a["AU1"], a["AU4"]) / a["AU4"])
    for sgn in (-1, 1):
        top = mid_brow + sgn * 0.07 * iod * ex - 0.10 * iod * ey
        bot = mid_brow + sgn * 0.05 * iod * ex + 0.12 * iod * ey
        _line(m.dark, np.stack([top, (top + bot) / 2 + sgn * 0.01 * iod * ex, bot]), 0.4 * furrow, th)
    _line(m.soft, np.stack([mid_brow - 0.06 * iod * ex, mid_brow + 0.06 * iod * ex]), 0.35 * furrow, th * 4)
    _line(m.dark, np.stack([p[193], p[168], p[417]]), 0.2 * a["AU4"], th)
    for brow, lid in (
        ([46, 53, 52, 65, 55], [157, 158, 159, 160, 161]),
        ([276, 283, 282, 295, 285], [384, 385, 386, 387, 388]),
    ):
        poly = np.concatenate([p[brow], p[lid]])
        hull = cv2.convexHull(np.round(poly * 16).astype(np.int32))
        tmp = np.zeros_like(m.dark)
        cv2.fillConvexPoly(tmp, hull, 0.22 * max(a["AU4"], 0.5 * a["AU7"]), lineType=cv2.LINE_AA, shift=4)
        np.maximum(m.soft, tmp, out=m.soft)


def _nose_wrinkles(m: _Maps, f: _Face, au9: float):
    """AU9: horizontal wrinkles over the nose bridge."""
    c0 = (f.p[168] + f.p[6]) / 2
    for k, off in enumerate((-0.06, 0.0, 0.06)):
        cc = c0 + off * f.iod * f.ey
        half = (0.09 - 0.015 * k) * f.iod * f.ex
        _line(m.dark, np.stack([cc - half, cc + 0.015 * f.iod * f.ey, cc + half]), 0.45 * au9, f.th)


def _nasolabial(m: _Maps, f: _Face, nl: float, a: dict[str, float]):
    """Nasolabial folds of strength ``nl``: ala -> beyond the mouth corner; cheek highlights (AU6/12)."""
    import cv2

    p, iod, th, ex, ey = f.p, f.iod, f.th, f.ex, f.ey
    for ala, _mid, corner, sgn in ((129, 206, 61, -1), (358, 426, 291, 1)):
        start = p[ala] + sgn * 0.03 * iod * ex
        end = p[corner] + sgn * 0.05 * iod * ex + 0.03 * iod * ey
        middle = (start + end) / 2 + sgn * 0.05 * iod * ex
        _line(m.soft, np.stack([start, middle, end]), min(0.5, 0.8 * nl), th * 2.5)
        _line(m.dark, np.stack([start, middle, end]), min(0.25, 0.4 * nl), th)
        if a["AU6"] + a["AU12"] > 0:
            cv2.circle(
                m.light,
                tuple(np.round((p[205 if sgn < 0 else 425] + sgn * 0.04 * iod * ex) * 16).astype(int)),
                int(0.12 * iod * 16),
                0.10 * (a["AU6"] + 0.5 * a["AU12"]),
                -1,
                cv2.LINE_AA,
                shift=4,
            )


def _marionette(m: _Maps, f: _Face, au15: float):
    """AU15: marionette lines down from the mouth corners."""
    for corner, sgn in ((61, -1), (291, 1)):
        s0 = f.p[corner] + sgn * 0.02 * f.iod * f.ex
        _line(
            m.soft,
            np.stack([s0, s0 + 0.12 * f.iod * f.ey + sgn * 0.01 * f.iod * f.ex]),
            0.35 * au15,
            f.th * 2,
        )


def _crows_feet(m: _Maps, f: _Face, au6: float):
    """AU6: three lines fanning out from each outer eye corner."""
    for corner, sgn in ((33, -1), (263, 1)):
        o = f.p[corner] + sgn * 0.06 * f.iod * f.ex
        for ang in (-0.35, 0.0, 0.35):
            d = sgn * f.ex * np.cos(ang) + f.ey * np.sin(ang)
            _line(m.dark, np.stack([o, o + 0.08 * f.iod * d]), 0.3 * au6, f.th)


def _forehead(m: _Maps, f: _Face, mid_brow: np.ndarray, a: dict[str, float]):
    """AU1/AU2: forehead wrinkles (full width with the outer brow raiser; AU1 alone only wrinkles
    the centre a little)."""
    iod, ex, ey = f.iod, f.ex, f.ey
    fh = a["AU2"] + 0.3 * a["AU1"]
    width = 0.42 * a["AU2"] / max(fh, 1e-6) + 0.2 * (1 - a["AU2"] / max(fh, 1e-6))
    for k, off in enumerate((0.16, 0.26, 0.36)):
        cc = mid_brow - off * iod * ey
        half = (width - 0.05 * k) * iod * ex
        wave = [cc - half, cc - half / 2 - 0.02 * iod * ey, cc, cc + half / 2 - 0.02 * iod * ey, cc + half]
        _line(m.dark, np.stack(wave), 0.25 * fh, f.th)


def _chin(m: _Maps, f: _Face, au17: float):
    """AU17: chin dimpling."""
    import cv2

    cv2.circle(
        m.soft,
        tuple(np.round(((f.p[17] + f.p[152]) / 2) * 16).astype(int)),
        int(0.07 * f.iod * 16),
        0.12 * au17,
        -1,
        cv2.LINE_AA,
        shift=4,
    )


def shading(shape, p: np.ndarray, iod: float, au: dict[str, float], strength: float = 1.0):
    """Darkening and highlight maps [H, W] (0 = unchanged) for target landmarks p [468, 2]."""

    h, w = shape
    m = _Maps(np.zeros((h, w), np.float32), np.zeros((h, w), np.float32), np.zeros((h, w), np.float32))
    # wrinkles saturate: an AU beyond its apex (render gain > 1) does not paint darker lines
    a = {k: min(1.0, max(0.0, float(au.get(k, 0.0)))) * strength for k in AU_NAMES}
    ex = p[263] - p[33]
    ex /= np.linalg.norm(ex) + 1e-9
    f = _Face(p, iod, max(1.0, iod / 55.0), ex, np.array([-ex[1], ex[0]]))
    mid_brow = (p[107] + p[336]) / 2
    if a["AU4"] > 0:
        _brow_lowerer(m, f, mid_brow, a)
    if a["AU9"] > 0:
        _nose_wrinkles(m, f, a["AU9"])
    nl = 0.45 * a["AU12"] + 0.55 * a["AU10"] + 0.5 * a["AU9"] + 0.15 * a["AU6"] + 0.25 * a["AU20"]
    if nl > 0:
        _nasolabial(m, f, nl, a)
    if a["AU15"] > 0:
        _marionette(m, f, a["AU15"])
    if a["AU6"] > 0:
        _crows_feet(m, f, a["AU6"])
    if a["AU2"] + 0.3 * a["AU1"] > 0:
        _forehead(m, f, mid_brow, a)
    if a["AU17"] > 0:
        _chin(m, f, a["AU17"])
    # a ratio image of the person's own skin, not strokes: every crease a Gaussian valley about
    # IOD/35 wide, folds and shadows wider, the contrast bounded (MAX_DARK, MAX_LIGHT)
    spread = iod / 40.0
    sig = float(np.hypot(max(0.8, iod / 70.0), spread))
    dark = _blur(m.dark, sig)
    dark += _blur(m.soft, float(np.hypot(2.5 * sig, spread)))
    light = _blur(m.light, float(np.hypot(4 * sig, spread)))
    return np.clip(dark, 0, MAX_DARK, out=dark), np.clip(light, 0, MAX_LIGHT, out=light)


def nonzero_box(canvas: np.ndarray, margin: int = 0) -> tuple[int, int, int, int] | None:
    """The box (x0, y0, x1, y1) of ``canvas``'s non-zero pixels grown by ``margin`` and clipped to
    it; None when all are zero."""
    import cv2

    x, y, w, h = cv2.boundingRect((canvas != 0).view(np.uint8))
    if w == 0 or h == 0:
        return None
    H, W = canvas.shape[:2]
    return max(0, x - margin), max(0, y - margin), min(W, x + w + margin), min(H, y + h + margin)


def _blur(canvas: np.ndarray, sigma: float) -> np.ndarray:
    """``cv2.GaussianBlur(canvas, (0, 0), sigma)`` [H, W] float32, computed only around the
    non-zero pixels (the same result: the box keeps the kernel's reach of zeros around them,
    where the border reflection reads zeros too)."""
    import cv2

    out = np.zeros_like(canvas)
    box = nonzero_box(canvas, int(np.ceil(4 * sigma)) + 2)  # OpenCV's float kernel reaches ~4 sigma
    if box is not None:
        x0, y0, x1, y1 = box
        out[y0:y1, x0:x1] = cv2.GaussianBlur(canvas[y0:y1, x0:x1], (0, 0), sigma)
    return out


def apply_shading(img: np.ndarray, dark: np.ndarray, light: np.ndarray) -> np.ndarray:
    """img [H, W, 3] uint8 darkened by ``dark`` and lightened by ``light`` ([H, W] each, from
    :func:`shading`): ``f (1 - dark)``, then ``+ light (255 - f)`` -> a new [H, W, 3] uint8 (only
    the box where either map is non-zero is computed)."""
    out = img.copy()
    box = nonzero_box(np.maximum(dark, light))
    if box is None:
        return out
    x0, y0, x1, y1 = box
    f = img[y0:y1, x0:x1].astype(np.float32)
    f *= 1 - dark[y0:y1, x0:x1, None]
    f += light[y0:y1, x0:x1, None] * (255 - f)
    out[y0:y1, x0:x1] = np.clip(f, 0, 255)
    return out
