"""Realism measures (mouth colour, flicker, identity) and the person's own mouth bank."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.face.au_fields import INNER_LIP_CONTOUR


@pytest.fixture(scope="module")
def can(astronaut_landmarks):
    from cmet.face.expression import canonical

    return canonical(astronaut_landmarks)


def _video(face: np.ndarray, n: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 2.0, (n, *face.shape))
    return np.clip(face[None].astype(np.float32) + noise, 0, 255).astype(np.uint8)


def test_hsv_histogram_and_distance():
    from cmet.face.realism import bhattacharyya, hsv_histogram

    red = np.tile(np.array([[200, 30, 30]], np.uint8), (50, 1))
    white = np.tile(np.array([[230, 230, 225]], np.uint8), (50, 1))
    h_red, h_white = hsv_histogram(red), hsv_histogram(white)
    assert h_red.shape == (12, 8, 8) and h_red.sum() == pytest.approx(1.0)
    assert bhattacharyya(h_red, h_red) == pytest.approx(0.0, abs=1e-6)
    assert bhattacharyya(h_red, h_white) > 0.9


def test_mouth_colour_distance_sees_a_painted_mouth(astronaut_face, astronaut_landmarks):
    import cv2

    from cmet.face.realism import mouth_colour_distance

    frames = _video(astronaut_face)
    lm = np.repeat(astronaut_landmarks[None], len(frames), 0)
    lm_open = lm.copy()
    lm_open[:, 14, 1] += 0.2 * np.linalg.norm(lm[0, 263, :2] - lm[0, 33, :2])  # the input counts as open
    d_self, n = mouth_colour_distance(frames, lm_open, frames, lm_open)
    assert n == len(frames) and d_self == pytest.approx(0.0, abs=1e-6)
    painted = frames.copy()
    for f in painted:  # a flat white bar where the mouth is
        cv2.fillPoly(f, [np.round(lm_open[0][INNER_LIP_CONTOUR, :2]).astype(np.int32)], (235, 235, 235))
    d, _ = mouth_colour_distance(frames, lm_open, painted, lm_open)
    assert d > 0.5
    closed, n_closed = mouth_colour_distance(frames, lm, frames, lm, thresh=10.0)
    assert n_closed == 0 and np.isnan(closed)


def test_flicker_ratio(astronaut_face, astronaut_landmarks):
    from cmet.face.realism import flicker_ratio

    frames = _video(astronaut_face, seed=1)
    lm = np.repeat(astronaut_landmarks[None], len(frames), 0)
    assert flicker_ratio(frames, frames, lm) == pytest.approx(1.0)
    rng = np.random.default_rng(2)
    jittery = np.clip(frames + rng.normal(0, 8, frames.shape), 0, 255).astype(np.uint8)
    assert flicker_ratio(frames, jittery, lm) > 2.0


def _paste(bank, img, lm):
    """The bank's nearest entry composed into the inner-lip polygon of img's landmarks lm (the
    renderer's path for a source mouth that shows nothing: a banked donor, all weight on it)."""
    from cmet.face.interior import compose_interior

    (i, _), *_ = bank.nearest(lm[:, :2], 1)
    return compose_interior(img.copy(), lm[:, :2], [(bank.donor(i), 1.0)], 1.0, cavity=bank.cavity)


def test_mouth_bank_gives_the_persons_own_interior_in_this_frames_light(astronaut_face, astronaut_landmarks):
    """The bank's interior (a white stripe of 'teeth') is composed into the open mouth; the bank frame's
    colour cast (green at 0.7: another moment's light) is fitted away by the lip-ring step."""
    import cv2

    from cmet.face.mouth_bank import MouthBank, mouth_shape
    from cmet.face.realism import polygon_mask

    lm = astronaut_landmarks.copy()
    iod = np.linalg.norm(lm[263, :2] - lm[33, :2])
    lm[[14, 87, 178, 88, 95, 317, 402, 318, 324], 1] += 0.12 * iod  # lower inner lip down: open
    inside = polygon_mask(astronaut_face.shape[:2], lm[INNER_LIP_CONTOUR])
    assert inside.sum() > 20
    frames = _video(astronaut_face, n=4)
    ys, xs = np.nonzero(inside)
    mid = (ys >= np.percentile(ys, 25)) & (ys <= np.percentile(ys, 50))
    frames[:, ys[mid], xs[mid]] = 250  # upper teeth across the upper middle of the opening
    frames[:, :, :, 1] = (frames[:, :, :, 1] * 0.7).astype(np.uint8)  # a colour cast over the bank frame
    bank = MouthBank.from_frames(frames, np.repeat(lm[None], len(frames), 0), min_open=0.05)
    assert bank is not None and len(bank) == 1  # four frames of the same mouth shape: kept once
    assert mouth_shape(lm).shape == (2 * len(INNER_LIP_CONTOUR),)
    assert bank.cavity is not None and bank.cavity.shape == (3,)
    out = _paste(bank, astronaut_face, lm)
    core = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    teeth = np.zeros_like(inside)
    teeth[ys[mid], xs[mid]] = True
    teeth = cv2.erode(teeth.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & core
    rest = core & ~cv2.dilate(teeth.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    assert teeth.sum() > 5 and rest.sum() > 5
    # the stripe is there, where it was (the same mouth shape: read in place): brighter than the rest
    contrast = out[teeth].astype(float).mean() - out[rest].astype(float).mean()
    assert contrast > 60, contrast
    # the cast is not: green against red on the teeth as in this frame's light (the bank's: 0.7 of it)
    g_over_r = lambda im, m: im[m][:, 1].astype(float).mean() / max(im[m][:, 0].astype(float).mean(), 1)  # noqa: E731
    assert g_over_r(out, teeth) > 0.85
    near = cv2.dilate(inside.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    assert np.array_equal(out[~near], astronaut_face[~near])  # outside the mouth: untouched
    assert MouthBank.from_frames(frames, np.repeat(astronaut_landmarks[None], len(frames), 0), 0.5) is None


def test_bank_interior_keeps_its_colour_when_the_light_is_the_same(
    astronaut_face, astronaut_landmarks, monkeypatch
):
    """The light correction is the difference of the lip rings: ~0 when the bank's moment was lit
    like this frame (the interior is then the bank's as it is), the ring's own colour measured."""
    import cmet.face.interior as interior
    import cmet.face.mouth_bank as mb
    from cmet.face.realism import polygon_mask

    lm = astronaut_landmarks.copy()
    iod = np.linalg.norm(lm[263, :2] - lm[33, :2])
    lm[[14, 87, 178, 88, 95, 317, 402, 318, 324], 1] += 0.12 * iod
    frames = _video(astronaut_face, n=3, seed=5)
    bank = mb.MouthBank.from_frames(frames, np.repeat(lm[None], len(frames), 0), min_open=0.05)
    out = _paste(bank, astronaut_face, lm)
    monkeypatch.setattr(interior, "lip_ring_colour", lambda img, p: None)
    plain = _paste(bank, astronaut_face, lm)
    inside = polygon_mask(out.shape[:2], lm[INNER_LIP_CONTOUR])
    assert np.abs(out[inside].astype(float).mean(0) - plain[inside].astype(float).mean(0)).max() < 2.0
    monkeypatch.undo()
    ring = interior.lip_ring_colour(astronaut_face, lm[:, :2])
    tinted = astronaut_face.copy()
    tinted[..., 2] = (tinted[..., 2] * 0.5).astype(np.uint8)
    assert ring.shape == (3,)
    np.testing.assert_allclose(interior.lip_ring_colour(tinted, lm[:, :2])[2], 0.5 * ring[2], atol=1.0)


@pytest.mark.slow
def test_identity_distance_same_and_other(release_dir):
    import cv2

    from cmet.face.identity import SAME_PERSON, identity_distances

    ids = release_dir / "asset" / "identity"
    a = cv2.imread(str(ids / "W009_001_identity_source.jpg"))[:, :, ::-1].copy()
    b = cv2.imread(str(ids / "M003_001_identity_source.jpg"))[:, :, ::-1].copy()
    b = cv2.resize(b, a.shape[1::-1])
    same = identity_distances(a[None], a[None])
    assert same[0] == pytest.approx(0.0, abs=1e-4)
    # another person's face in the same box is far (the box comes from the input frame)
    from cmet.face.identity import Reference, face_box

    other = Reference([face_box(b)], Reference.of(a[None]).desc).distances(b[None])
    assert other[0] > SAME_PERSON


def _draw_glasses(img: np.ndarray, p: np.ndarray) -> np.ndarray:
    import cv2

    img = img.copy()
    iod = float(np.linalg.norm(p[263, :2] - p[33, :2]))
    t = max(2, int(round(iod / 25)))  # a frame ~3.5 mm thick at ~90 mm between the outer eye corners
    for a, b in ((33, 133), (362, 263)):
        c = np.round((p[a, :2] + p[b, :2]) / 2).astype(int)
        cv2.ellipse(img, tuple(c), (int(0.3 * iod), int(0.2 * iod)), 0, 0, 360, (30, 30, 30), t, cv2.LINE_AA)
    left = np.round((p[133, :2] + p[33, :2]) / 2 + [0.3 * iod, 0]).astype(int)
    right = np.round((p[362, :2] + p[263, :2]) / 2 - [0.3 * iod, 0]).astype(int)
    cv2.line(img, tuple(left), tuple(right), (30, 30, 30), t, cv2.LINE_AA)
    return img


def test_eyeglasses_found_and_frozen(astronaut_face, astronaut_landmarks, mesher):
    from cmet.face.rigid import has_eyeglasses, vertex_weights

    assert not has_eyeglasses(astronaut_face[None], astronaut_landmarks[None])
    g = _draw_glasses(astronaut_face, astronaut_landmarks)
    assert has_eyeglasses(g[None], mesher.mesh(g, "astronaut with glasses")[None])
    w, wg = vertex_weights(astronaut_landmarks), vertex_weights(astronaut_landmarks, glasses=True)
    assert w[10] == 0.0 and w[[13, 14, 61, 291, 152]].min() == 1.0  # forehead top fixed, mouth/chin free
    assert w[[10, 338, 109, 297, 67]].max() == 0.0  # the upper face oval (hairline) never moves
    assert (
        wg[[159, 386, 145, 374, 168]].max() == 0.0 and w[[159, 386]].min() > 0.9
    )  # lids frozen only with glasses
    assert wg[[13, 14, 61, 291]].min() == 1.0


def test_lip_model_follows_the_speech():
    from cmet.face.portrait_lips import LipModel, frame_features

    sr, fps, n = 16_000, 25.0, 50
    t = np.arange(int(n / fps * sr)) / sr
    rng = np.random.default_rng(0)
    loud = (np.sin(2 * np.pi * 2.0 * t) > 0).astype(np.float32)  # 2 Hz bursts of noise = syllables
    wave = (0.3 * loud * rng.normal(0, 1, t.size) + 1e-4 * rng.normal(0, 1, t.size)).astype(np.float32)
    f = frame_features(wave, sr, n, fps)
    assert f.shape == (n, 8) and np.isfinite(f).all()
    jaw = LipModel.default().from_speech(wave, sr, n, fps)
    frame_loud = loud[(np.arange(n) / fps * sr).astype(int) + int(sr / fps / 2)] > 0
    assert jaw.min() >= 0 and jaw[frame_loud].mean() > 0.05 > jaw[~frame_loud].mean() + 0.02


@pytest.mark.slow
def test_lip_model_constants_are_the_release_fit(release_dir):
    from cmet.face.portrait_lips import COEF, INTERCEPT, fit_release

    m = fit_release(release_dir)
    assert np.allclose(m.coef, COEF, atol=2e-3) and abs(m.intercept - INTERCEPT) < 2e-3


def test_renderer_keeps_glasses_and_hair_still(can, astronaut_face, astronaut_landmarks, mesher):
    from cmet.face.facs import AU_NAMES, D_EXPR
    from cmet.face.realism import polygon_mask
    from cmet.face.render import FaceRenderer

    code = np.zeros(D_EXPR, np.float32)
    code[[AU_NAMES.index("AU1"), AU_NAMES.index("AU2")]] = 1.5  # brows up
    lm = astronaut_landmarks
    g = _draw_glasses(astronaut_face, lm)
    plain = FaceRenderer(can, g.shape[:2], shading_strength=0.0, glasses=False).render(g, lm, code)
    rigid = FaceRenderer(can, g.shape[:2], shading_strength=0.0, glasses=True).render(g, lm, code)
    iod = float(np.linalg.norm(lm[263, :2] - lm[33, :2]))
    band = np.zeros(g.shape[:2], bool)  # the drawn frames' rows between the outer eye corners
    y = int(round((lm[33, 1] + lm[263, 1]) / 2))
    band[
        y - int(0.2 * iod) : y + int(0.2 * iod), int(lm[33, 0] - 0.1 * iod) : int(lm[263, 0] + 0.1 * iod)
    ] = True
    moved_plain = np.abs(plain.astype(int) - g)[band].mean()
    moved_rigid = np.abs(rigid.astype(int) - g)[band].mean()
    assert moved_rigid < 0.3 * moved_plain
    # hair and background outside the face oval do not move, with or without glasses
    import cv2

    from cmet.face.realism import face_hull

    oval = polygon_mask(g.shape[:2], face_hull(lm))
    near = cv2.dilate(oval.astype(np.uint8), np.ones((int(0.35 * iod),) * 2, np.uint8)).astype(bool)
    assert np.abs(plain.astype(int) - g)[~near].max() == 0


#: the lower half of the inner-lip contour (13 / 14: upper / lower inner lip at the middle)
LOWER_INNER = [14, 87, 178, 88, 95, 317, 402, 318, 324]


def test_video_renderer_uses_the_persons_own_mouth(can, astronaut_face, astronaut_landmarks):
    from cmet.face.facs import AU_NAMES, D_EXPR
    from cmet.face.mouth import signed_gap
    from cmet.face.mouth_bank import MouthBank
    from cmet.face.realism import polygon_mask
    from cmet.face.render import FaceRenderer

    lm = astronaut_landmarks.copy()
    iod = float(np.linalg.norm(lm[263, :2] - lm[33, :2]))
    open_lm = lm.copy()
    open_lm[LOWER_INNER, 1] += 0.1 * iod
    open_frame = astronaut_face.copy()
    inside = polygon_mask(open_frame.shape[:2], open_lm[INNER_LIP_CONTOUR])
    open_frame[inside] = (20, 160, 40)  # an unmistakable (green) interior of "this person"
    r = FaceRenderer(
        can, astronaut_face.shape[:2], shading_strength=0.0, mouth_bank=MouthBank(), glasses=False
    )
    code = np.zeros(D_EXPR, np.float32)
    r.render(open_frame, open_lm, code)  # the renderer sees an open mouth: kept in its bank
    assert len(r.mouth_bank) == 1
    # the astronaut's own mouth is open (teeth, 0.12 IOD): a little more opening stretches that
    # frame's own interior by the warp, no banked interior is painted over it
    code[AU_NAMES.index("AU26_emo")] = 0.3
    out, tgt = r.render(astronaut_face, lm, code, return_landmarks=True)
    assert 0.01 < signed_gap(tgt) - signed_gap(lm) < signed_gap(lm)
    g = out[polygon_mask(out.shape[:2], tgt[INNER_LIP_CONTOUR])].astype(int)
    assert (g[:, 1] > g[:, 0] + 40).mean() < 0.05
    # a jaw drop past twice the source's opening: the frame's own teeth stay (read rigidly, never the
    # banked mouth of another moment painted over them), a gap opens between the rows
    code[AU_NAMES.index("AU26_emo")] = 1.0
    out, tgt = r.render(astronaut_face, lm, code, return_landmarks=True)
    assert signed_gap(tgt) - signed_gap(lm) > 2 * signed_gap(lm)
    g = out[polygon_mask(out.shape[:2], tgt[INNER_LIP_CONTOUR])].astype(int)
    assert (g[:, 1] > g[:, 0] + 40).mean() < 0.05
    # a closed source mouth (lower inner lip on the upper one) opened by the edit shows the banked
    # (green) interior of "this person", as wide as it was banked (rigid), the rest its shadow
    closed = lm.copy()
    closed[LOWER_INNER] -= (lm[14] - lm[13])[None]
    out, tgt = r.render(astronaut_face, closed, code, return_landmarks=True)
    inner = polygon_mask(out.shape[:2], tgt[INNER_LIP_CONTOUR])
    g = out.astype(int)
    green = inner & (g[..., 1] > g[..., 0] + 40)
    assert green.sum() > 0.2 * inner.sum()
    cols = np.flatnonzero(green.any(0))
    banked = np.flatnonzero(inside.any(0))
    assert abs(len(cols) - len(banked)) <= 0.1 * len(banked) + 2  # not widened to the target mouth


def _grid(n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    from cmet.face.warp import triangulate

    pts = np.stack(np.meshgrid(np.arange(n) * 10.0, np.arange(n) * 10.0), -1).reshape(-1, 2)
    return pts.astype(np.float32), triangulate(pts)


def test_unfolder_removes_a_fold_and_leaves_a_fold_free_warp_alone():
    from cmet.face.warp import Unfolder, signed_areas

    pts, tris = _grid()
    free = np.ones(len(pts))
    edge = (pts % 40 == 0).any(1)
    free[edge] = 0.0
    unf = Unfolder(tris, pts, free)
    ok = pts.copy()
    ok[12] += [3.0, -2.0]  # the centre moved inside its ring: nothing to do
    out, left = unf(pts, ok)
    assert left == 0 and np.array_equal(out, ok)
    bad = pts.copy()
    bad[12] += [16.0, 0.0]  # the centre pushed past its right neighbour: triangles fold
    oriented = unf.tris
    assert (signed_areas(bad, oriented) < 0).any()
    out, left = unf(pts, bad)
    assert left == 0 and (signed_areas(out, oriented) > 0).all()
    assert np.array_equal(out[edge], pts[edge])  # the fixed vertices never move
    assert out[12, 0] - pts[12, 0] > 5.0  # the push is damped, not undone: the neighbours give way
    assert out[13, 0] > pts[13, 0]


def test_unfolder_moves_a_tied_group_as_one_piece():
    from cmet.face.warp import Unfolder

    pts, tris = _grid()
    free = np.ones(len(pts))
    free[(pts % 40 == 0).any(1)] = 0.0
    bad = pts.copy()
    bad[[12, 17]] += [0.0, -16.0]  # a "brow" (two vertices, one above the other) pushed up past row 1
    out, _ = Unfolder(tris, pts, free, tied=((12, 17),))(pts, bad)
    assert np.allclose(out[12] - bad[12], out[17] - bad[17])  # same step: the piece keeps its shape
    out_free, _ = Unfolder(tris, pts, free)(pts, bad)
    assert not np.allclose(out_free[12] - bad[12], out_free[17] - bad[17])


def test_a_strong_brow_raise_keeps_the_brows_and_folds_nothing(can, astronaut_face, astronaut_landmarks):
    """Surprise past the apex: the warp stays one-to-one and each brow keeps its thickness (a brow
    run into the still forehead used to be squeezed into a hard drawn line)."""
    from cmet.face.facs import AU_NAMES
    from cmet.face.render import RING, FaceRenderer
    from cmet.face.rigid import BROW_PAIRS
    from cmet.face.warp import control_points, signed_areas

    code = np.zeros(len(AU_NAMES), np.float32)
    for a, v in (("AU1", 1.2), ("AU2", 1.4), ("AU5", 1.0), ("AU4", 0.0)):
        code[AU_NAMES.index(a)] = v
    rend = FaceRenderer(can, astronaut_face.shape[:2], gain=1.6, glasses=False)
    _, tgt = rend.render(astronaut_face, astronaut_landmarks, code, return_landmarks=True)
    src = control_points(astronaut_landmarks[:, :2], astronaut_face.shape[:2], RING)
    dst = control_points(tgt[:, :2], astronaut_face.shape[:2], RING)
    dst[468:] = src[468:]
    s, d = signed_areas(src, rend._unfold.tris), signed_areas(dst, rend._unfold.tris)
    assert (d[s > 1.0] > 0).all(), "a triangle folded over its neighbours"
    p0, p1 = astronaut_landmarks, tgt
    thick0 = np.array([p0[lo, 1] - p0[up, 1] for up, lo in BROW_PAIRS])
    thick1 = np.array([p1[lo, 1] - p1[up, 1] for up, lo in BROW_PAIRS])
    assert (thick1 > 0.6 * thick0).all(), (thick0, thick1)
    assert (p1[[105, 334], 1] < p0[[105, 334], 1] - 0.1 * np.linalg.norm(p0[263, :2] - p0[33, :2])).all()
    assert rend.unfold_stats == {"frames": 1, "folded_warp": 1, "folded_left": 0}  # folded, then fixed


def test_unfolder_leaves_degenerate_and_loose_triangles_alone():
    """A triangle of next to no source area (across closed lips) and a squeezed (not folded)
    triangle on a ``loose`` vertex (the fixed ring) are not "fixed": relaxing them would drag skin."""
    from cmet.face.warp import Unfolder

    pts, tris = _grid()
    free = np.ones(len(pts))
    edge = (pts % 40 == 0).any(1)
    free[edge] = 0.0
    squeezed = pts.copy()
    squeezed[7] += [0.0, -8.5]  # row 1 pushed toward the fixed top row: squeezed to 15%, not folded
    out, left = Unfolder(tris, pts, free, loose=tuple(np.flatnonzero(edge)))(pts, squeezed)
    assert left == 0 and np.array_equal(out, squeezed)
    out, left = Unfolder(tris, pts, free)(pts, squeezed)  # the same squeeze inside the face is relaxed
    assert out[7, 1] > squeezed[7, 1] + 0.5
    # closed lips: A, B and C (between them, 0.1 px off their line: a 0.5 px^2 triangle), then C
    # moved through the line (the lips parted): the thin triangle flips, nothing else does
    from cmet.face.warp import signed_areas

    lips = np.array([[0, 0], [10, 0], [5, 0.1], [-10, -10], [20, -10], [20, 10], [-10, 10]], np.float32)
    t = np.array([[0, 1, 2], [3, 4, 1], [3, 1, 0], [3, 0, 6], [0, 2, 6], [2, 5, 6], [2, 1, 5], [1, 4, 5]])
    opened = lips.copy()
    opened[2] = [5, -3.0]
    ring = np.array([1, 1, 1, 0, 0, 0, 0], float)
    assert (signed_areas(opened, t) * np.sign(signed_areas(lips, t)) < 0).sum() == 1
    out, left = Unfolder(t, lips, ring)(lips, opened)
    assert left == 0 and np.array_equal(out, opened)
