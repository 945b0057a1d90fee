"""Realism II: the edit reads the frame once (detail kept), teeth stay rigid, a portrait's new interior
is shaded in the person's own colours. Each test also shows its measure failing when the artefact
it names is put back (a second resampling, a bilinear read, teeth scaled sideways, a flat bar)."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.face.au_fields import INNER_LIP_CONTOUR
from cmet.face.facs import AU_NAMES, D_EXPR

LOWER_INNER = [14, 87, 178, 88, 95, 317, 402, 318, 324]


def _textured(face: np.ndarray, scale: int = 2, seed: int = 0) -> np.ndarray:
    """The face upscaled ``scale`` x with fine, pore-like noise: detail at the native resolution that
    a working-size crop cannot hold."""
    import cv2

    big = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC).astype(np.float32)
    big += np.random.default_rng(seed).normal(0, 9.0, big.shape[:2])[..., None]
    return np.clip(big, 0, 255).astype(np.uint8)


def _smile(gain: float = 1.0) -> np.ndarray:
    code = np.zeros(D_EXPR, np.float32)
    code[AU_NAMES.index("AU12")] = gain
    code[AU_NAMES.index("AU6")] = 0.5 * gain
    return code


def test_sharpness_ratio_and_teeth_stretch_measure_what_they_name(astronaut_face, astronaut_landmarks):
    import cv2

    from cmet.face.realism import sharpness_ratio, stretch_of, teeth_profile

    lm = astronaut_landmarks.copy()
    iod = np.linalg.norm(lm[263, :2] - lm[33, :2])
    lm[LOWER_INNER, 1] += 0.1 * iod  # the input's mouth counts as open
    frames = np.stack([astronaut_face] * 3)
    lms = np.repeat(lm[None], 3, 0)
    same, n = sharpness_ratio(frames, lms, frames, lms)
    assert n == 3 and same == pytest.approx(1.0)
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 1.2) for f in frames])
    assert sharpness_ratio(frames, lms, blurred, lms)[0] < 0.3
    # a row of "teeth" (a square wave) and the same row 1.3 x wider about the mouth's centre
    x = np.arange(-40, 41, dtype=np.float64)
    teeth = np.gradient(np.sign(np.sin(x / 4.0)) + 0.2 * np.sin(x / 9.0))
    wide = np.gradient(np.sign(np.sin(x / (4.0 * 1.3))) + 0.2 * np.sin(x / (9.0 * 1.3)))
    assert stretch_of(teeth, teeth) == pytest.approx(1.0)
    assert stretch_of(teeth, wide) == pytest.approx(1.3, abs=0.03)
    assert teeth_profile(astronaut_face, astronaut_landmarks) is not None  # the astronaut smiles: teeth


def test_an_edit_reads_the_native_frame_once(astronaut_face, astronaut_landmarks, monkeypatch):
    """A face crop at half the frame's resolution (a 1080p frame's face at the working size): the edit
    written through the view keeps the frame's fine detail where the warp moves it (sharpness of the
    lips' box, edit/input: >= 0.6 read bicubic, the default; >= 0.8 with the detail layer); rendering
    the crop and resampling the result back to the frame (a chained second resampling) loses most of
    it (< 0.1), and so does a plain bilinear read."""
    import cv2

    import cmet.face.compose as compose
    from cmet.face.crop import Box, FaceCrop
    from cmet.face.expression import canonical
    from cmet.face.realism import laplacian_variance, lip_box
    from cmet.face.render import FaceRenderer

    frame = _textured(astronaut_face)
    lm = astronaut_landmarks.copy()
    lm[:, :2] = (lm[:, :2] + 0.5) * 2 - 0.5
    lm[:, 2] *= 2
    fc = FaceCrop(256)
    box = Box(0, 0, 512)  # the whole frame at half resolution
    lm_c = fc.to_crop(lm, box)
    code = _smile(0.5)

    def edit(via_view: bool, kernel: str = "cubic") -> tuple[np.ndarray, np.ndarray]:
        monkeypatch.setattr(compose, "KERNEL", kernel)
        r = FaceRenderer(canonical(lm_c), (256, 256), shading_strength=0.0, glasses=False)
        crop = fc.cut(frame, box)
        if via_view:
            out = frame.copy()
            _, tgt = r.render(crop, lm_c, code, return_landmarks=True, view=fc.view(out, box))
        else:  # a chained second resampling: the crop warped, then resampled back onto the frame
            after, tgt = r.render(crop, lm_c, code, return_landmarks=True)
            out = cv2.resize(after, (512, 512), interpolation=cv2.INTER_LINEAR)
        return out, fc.view(frame, box).to_frame(tgt)

    b_in = lip_box(lm, frame.shape[:2], margin=0.15)
    ref = laplacian_variance(frame, b_in)

    def ratio(out, tgt):
        return laplacian_variance(out, lip_box(tgt, frame.shape[:2], margin=0.15)) / ref

    once, tgt = edit(True)
    assert np.abs(tgt[61, :2] - lm[61, :2]).max() > 2  # the corners moved: the lips were resampled
    # (measured: 0.68 bicubic, 0.86 with the detail layer; 0.02 chained, 0.46 bilinear)
    assert ratio(once, tgt) >= 0.6
    assert ratio(*edit(True, "detail")) >= 0.8
    assert ratio(*edit(False)) < 0.1
    assert ratio(*edit(True, "linear")) < ratio(once, tgt) - 0.1
    far = np.zeros(frame.shape[:2], bool)
    far[:40] = True
    assert np.array_equal(once[far], frame[far])  # what the edit does not move: the frame's pixels


def _open_with_teeth(face: np.ndarray, lm: np.ndarray):
    """The astronaut's mouth opened (lower inner lip down 0.1 IOD) with a row of vertical "teeth"
    stripes across its upper part -> (frame, landmarks)."""
    from cmet.face.realism import polygon_mask

    lm = lm.copy()
    iod = np.linalg.norm(lm[263, :2] - lm[33, :2])
    lm[LOWER_INNER, 1] += 0.1 * iod
    img = face.copy()
    inside = polygon_mask(img.shape[:2], lm[INNER_LIP_CONTOUR])
    ys, xs = np.nonzero(inside)
    img[ys, xs] = (40, 25, 25)  # a dark mouth
    top = lm[13, 1]
    upper = (ys < top + 0.5 * (lm[14, 1] - top)) & (ys > top + 1)
    stripe = np.floor((xs - lm[13, 0]) / 4.0) % 2 == 0
    img[ys[upper], xs[upper]] = np.where(stripe[upper, None], (235, 230, 220), (150, 140, 130))
    return img, lm


def test_teeth_stay_rigid_when_a_smile_widens_the_mouth(
    can, astronaut_face, astronaut_landmarks, monkeypatch
):
    """A smile widens the mouth by ~15 %: the frame's own teeth keep their width (teeth stretch <= 1.05
    against the input frame); the mesh warp's interior (the rigid interior switched off) stretches
    them with the lips (>= 1.1), which the measure reads."""
    import cmet.face.render as render
    from cmet.face.expression import canonical
    from cmet.face.realism import stretch_of, teeth_profile

    img, lm = _open_with_teeth(astronaut_face, astronaut_landmarks)

    def edit():
        r = render.FaceRenderer(canonical(lm), img.shape[:2], shading_strength=0.0, glasses=False)
        return r.render(img, lm, _smile(1.0), return_landmarks=True)

    out, tgt = edit()
    width = lambda p: np.linalg.norm(p[308, :2] - p[78, :2])  # noqa: E731
    assert width(tgt) > 1.08 * width(lm)
    a, b = teeth_profile(img, lm), teeth_profile(out, tgt)
    assert a is not None and b is not None
    assert stretch_of(a[0], b[0]) <= 1.05
    monkeypatch.setattr(render, "UNSEEN", np.inf)  # the warp's own interior: the teeth go with the lips
    out, tgt = edit()
    assert stretch_of(a[0], teeth_profile(out, tgt)[0]) >= 1.1


@pytest.fixture(scope="module")
def can(astronaut_landmarks):
    from cmet.face.expression import canonical

    return canonical(astronaut_landmarks)


def _closed(lm: np.ndarray) -> np.ndarray:
    closed = lm.copy()
    closed[LOWER_INNER] -= (lm[14] - lm[13])[None]
    return closed


def test_a_portrait_opened_by_the_edit_gets_teeth_in_its_own_light_along_the_lip(
    astronaut_face, astronaut_landmarks
):
    """A closed-mouth portrait (no open frame to read) opened by a smile and a jaw drop: the modelled
    interior's teeth take the colour of the person's eye whites (a blue cast on the eyes turns them
    bluer), and the row is an arch, not a bar: its visible height at the centre is more than 1.3 x
    the height near the corners."""
    from cmet.face.expression import canonical
    from cmet.face.mouth import EYE_CONTOURS, mouth_model, teeth_colour
    from cmet.face.realism import polygon_mask
    from cmet.face.render import FaceRenderer

    lm = _closed(astronaut_landmarks)
    code = _smile(0.5)
    code[AU_NAMES.index("AU26_emo")] = 0.8
    r = FaceRenderer(canonical(lm), astronaut_face.shape[:2], shading_strength=0.0, glasses=False)
    out, tgt = r.render(astronaut_face, lm, code, return_landmarks=True)
    inner = polygon_mask(out.shape[:2], tgt[INNER_LIP_CONTOUR])
    assert inner.sum() > 100
    # the person's own light: eye whites tinted blue -> bluer teeth
    tinted = astronaut_face.copy()
    eyes = polygon_mask(tinted.shape[:2], tgt[EYE_CONTOURS[0], :2]) | polygon_mask(
        tinted.shape[:2], tgt[EYE_CONTOURS[1], :2]
    )
    tinted[eyes] = (tinted[eyes] * np.array([0.6, 0.8, 1.0])).astype(np.uint8)
    c0, c1 = teeth_colour(astronaut_face, tgt), teeth_colour(tinted, tgt)
    assert c1[2] - c1[0] > c0[2] - c0[0] + 20
    # the row of teeth follows the arch: taller at the centre than towards the corners
    iod = float(np.linalg.norm(tgt[263, :2] - tgt[33, :2]))
    x0, y0 = np.floor(tgt[INNER_LIP_CONTOUR, :2].min(0)).astype(int) - 2
    x1, y1 = np.ceil(tgt[INNER_LIP_CONTOUR, :2].max(0)).astype(int) + 3
    q = tgt[:, :2] - [x0, y0]
    model = mouth_model((y1 - y0, x1 - x0), q, iod, {"AU12": 1.0}, (150, 80, 80), c0)
    teeth = model.mean(-1) > 0.5 * np.mean(c0)  # [h, w] where teeth are drawn
    cx = int(round(q[13, 0]))
    half = 0.5 * float(np.linalg.norm(q[308] - q[78]))
    centre = teeth[:, cx - 1 : cx + 2].sum(0).mean()
    side = teeth[:, int(cx + 0.7 * half) - 1 : int(cx + 0.7 * half) + 2].sum(0).mean()
    assert centre > 1.3 * max(side, 0.5), (centre, side)


def test_a_wider_smile_shows_dark_corners_not_the_donors_pale_corner_wedge(
    astronaut_face, astronaut_landmarks, monkeypatch
):
    """A donor's opening narrows to its corners, where the lips converge and what lies between them is
    lip: laid between a target mouth 25 % wider, that wedge would read as pale seams. The rigid read
    fades the donor out towards its corners (CORNER_FADE, CORNER_OPEN): the target's columns facing
    the donor's corner wedge are mouth shadow (darker than the donor's teeth and than its pale wedge);
    with the fade switched off they show the wedge."""
    import cmet.face.interior as interior
    from cmet.face.interior import Donor, compose_interior, luminance
    from cmet.face.realism import polygon_mask

    img, lm = _open_with_teeth(astronaut_face, astronaut_landmarks)
    left, right = sorted((float(lm[78, 0]), float(lm[308, 0])))
    half = 0.5 * (right - left)
    inside = polygon_mask(img.shape[:2], lm[INNER_LIP_CONTOUR])
    ys, xs = np.nonzero(inside)
    wedge = np.minimum(xs - left, right - xs) < 0.2 * half  # the donor's corner wedges
    pale = (225, 175, 165)  # lip-pink, light
    img[ys[wedge], xs[wedge]] = pale
    donor = Donor.cut(img, lm)
    tgt = lm.copy()
    mouth = np.r_[INNER_LIP_CONTOUR, 61, 291, 78, 308]
    cx = float(lm[13, 0])
    tgt[mouth, 0] = cx + 1.25 * (lm[mouth, 0] - cx)  # the same opening, 25 % wider
    # the target columns that read the donor's wedge (the read is rigid across: same offset from the middle)
    t_in = polygon_mask(img.shape[:2], tgt[INNER_LIP_CONTOUR])
    tys, txs = np.nonzero(t_in)
    off = np.minimum(txs - left, right - txs)
    facing = (off < 0.15 * half) & (off > 0.03 * half)
    assert facing.sum() > 10

    def composed():
        out = astronaut_face.copy()
        compose_interior(out, tgt, [(donor, 1.0)], 1.0)
        return out[tys[facing], txs[facing]].astype(np.float32).mean(0)

    faded = composed()
    assert luminance(faded) < 0.6 * luminance(pale), (faded, pale)
    monkeypatch.setattr(interior, "CORNER_OPEN", 0.0)  # the fade off: the wedge is read
    monkeypatch.setattr(interior, "CORNER_FADE", 1e-6)
    seam = composed()
    assert luminance(seam) > luminance(faded) + 25, (seam, faded)


def test_a_mouth_opened_past_tall_max_shows_one_row_of_teeth_and_a_gap(
    astronaut_face, astronaut_landmarks, monkeypatch
):
    """The lower lip dropped so far that the target's opening is 3 x the donor's (past TALL_MAX): down
    the middle column one band of upper teeth (at most TALL_MAX x the input's height), then mouth
    shadow; the donor's teeth are not read again into the gap between the halves (two bands)."""
    import cmet.face.interior as interior
    from cmet.face.interior import TALL_MAX, Donor, compose_interior
    from cmet.face.realism import polygon_mask

    img, lm = _open_with_teeth(astronaut_face, astronaut_landmarks)
    tgt = lm.copy()
    tgt[LOWER_INNER, 1] += 2.0 * float(lm[14, 1] - lm[13, 1])
    donor = Donor.cut(img, lm)
    cx = int(round(lm[13, 0]))

    def bands(frame, p):
        """(teeth rows, bright bands) down the middle column inside the inner lips."""
        inside = polygon_mask(frame.shape[:2], p[INNER_LIP_CONTOUR])[:, cx]
        col = frame[:, cx - 3 : cx + 4].astype(np.float32).mean((1, 2))
        bright = (col > 120) & inside
        return int(bright.sum()), int(np.count_nonzero(np.diff(bright.astype(np.int8)) == 1))

    h_in, n_in = bands(img, lm)
    assert h_in >= 3 and n_in == 1
    h, n = bands(compose_interior(astronaut_face.copy(), tgt, [(donor, 1.0)], 1.0), tgt)
    assert n == 1 and h <= TALL_MAX * h_in + 1, (h, n, h_in)
    # no gap: the rows past both halves read the donor's other half, its teeth again
    monkeypatch.setattr(interior, "gap_weight", lambda up, lo, mid, scale: np.zeros_like(up))
    h2, n2 = bands(compose_interior(astronaut_face.copy(), tgt, [(donor, 1.0)], 1.0), tgt)
    assert n2 == 2, (h2, n2)


def test_the_painted_mouth_shadow_carries_the_footages_grain(
    astronaut_face, astronaut_landmarks, monkeypatch
):
    """A donor whose mouth shadow has camera grain (sigma 6 levels), its mouth opened to 3 x (past
    TALL_MAX: a gap of painted shadow between the rows): the gap has grain of about the donor's
    strength (0.5-2 x in its fine layer); painted without it (grain_sigma None) it is a clean patch
    (< 0.3 x) that no camera records."""
    import cv2

    import cmet.face.interior as interior
    from cmet.face.interior import Donor, compose_interior
    from cmet.face.realism import polygon_mask

    img, lm = _open_with_teeth(astronaut_face, astronaut_landmarks)
    inside = polygon_mask(img.shape[:2], lm[INNER_LIP_CONTOUR])
    dark = inside & (img.astype(np.float32).mean(-1) < 60)
    noisy = img.astype(np.float32)
    noisy[dark] += np.random.default_rng(1).normal(0, 6.0, (int(dark.sum()), 3))
    img = np.clip(noisy, 0, 255).astype(np.uint8)
    h = float(lm[14, 1] - lm[13, 1])
    tgt = lm.copy()
    tgt[LOWER_INNER, 1] += 2.0 * h
    # the gap: the middle third of the opening, around the middle column (4 px off the teeth: the
    # fine layer's blur reaches that far)
    top, cx = float(tgt[13, 1]), float(tgt[13, 0])
    half = 0.5 * float(np.linalg.norm(lm[308, :2] - lm[78, :2]))
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    gap = (yy > top + h + 4) & (yy < top + 2 * h - 4) & (np.abs(xx - cx) < 0.3 * half)
    assert gap.sum() > 20

    def fine_std():
        donor = Donor.cut(img, lm)  # a new donor: its grain is measured once
        out = compose_interior(astronaut_face.copy(), tgt, [(donor, 1.0)], 1.0).astype(np.float32)
        return float((out - cv2.GaussianBlur(out, (0, 0), 1.0))[gap].std())

    # the same fine-layer measure of the donor's own grain, off its edges
    ref = img.astype(np.float32) - cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0)
    ref_std = float(ref[cv2.erode(dark.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)].std())
    grained = fine_std()
    assert 0.5 * ref_std <= grained <= 2.0 * ref_std, (grained, ref_std)
    monkeypatch.setattr(interior, "grain_sigma", lambda donor: None)
    clean = fine_std()
    assert clean < 0.3 * ref_std, (clean, ref_std)
