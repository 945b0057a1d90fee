"""The disentangled expression encoder: FaceMesh landmarks -> (AU code, lips code, pose code).

Choice (documented, as the issue asks): an *interpretable* code of FACS action-unit intensities
(:data:`cmet.face.facs.AU_NAMES`), obtained by projecting landmark displacements on an action-unit
displacement basis defined on the 468 mesh vertices. No learned part.

1. Canonical frame. Each identity has a *neutral mesh* (a portrait itself, or the per-vertex
   median of the first frames of a neutral video). Its canonical frame: origin between the outer
   eye corners, x along the eyes (to the image right), y from forehead to chin (orthogonalised),
   z = x cross y; unit = the 3-D inter-ocular distance (IOD). The person's own neutral shape *is*
   the canonical mesh, so identity is removed by construction (0 code = their neutral face).
2. Head pose removed: a similarity Umeyama/Procrustes alignment of each frame to the neutral mesh
   on the rigid vertices (those no AU field and no jaw motion moves: upper forehead, temples,
   face sides; ``Canonical.rigid``). Pose code [6]: rotation vector
   (rad, frame relative to neutral) + translation (x, y in IOD units, log scale).
3. Lips and jaw kept apart. The lips code [2] is measured directly: mouth opening (inner-lip gap /
   IOD) and mouth width (corner distance / IOD), both relative to neutral. In the AU projection the
   speech jaw is a nuisance column (``jaw``, 1 unit = 1 IOD of lower-lip drop): when the source's
   mouth-opening track is known (editing a video, a rendered portrait) the jaw is fixed to it and
   only the opening *beyond* it is AU26_emo; otherwise the jaw column is solved freely and
   AU26_emo is 0 (the two are collinear in landmark space).
4. AU intensities: non-negative least squares of the aligned displacement [468*2] (x, y; the
   depth FaceMesh predicts from a 2-D image is too weak a cue and is left out by default), with a
   2-D affine nuisance field solved alongside (FaceMesh stretches the whole mesh slightly when
   one part of the face moves; without it a brow raise leaks into the lip AUs).
   on the AU basis ``B [D_EXPR, 468, 3]`` (see :func:`au_basis`). Each AU field is a hand-made
   displacement field (Gaussian falloff around FaceMesh anchor vertices, FACS direction of
   motion), built on the person's neutral mesh, in IOD units at intensity 1.0 (E apex).
5. Calibrated encoder (optional, :func:`calibrate`): the person's neutral image is rendered with
   a few hundred random AU codes and the landmark model's answer is fitted per AU (a forward
   model with a noise model); the projection is then on what the landmark model *sees* of each
   AU, weighted by how reliably it sees it. With FaceMesh refined by optical flow from the
   neutral image (:mod:`cmet.face.flow`) this closes the round trip codes -> render ->
   landmarks -> codes (``python -m cmet.face.evaluate roundtrip``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmet.face.facs import AU_NAMES, D_EXPR
from cmet.face.landmarks import (
    LEFT_EYE_OUTER,
    LOWER_LIP_INNER,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    RIGHT_EYE_OUTER,
    UPPER_LIP_INNER,
)

D_LIPS = 2
D_POSE = 6
FOREHEAD, CHIN = 10, 152
#: vertices that define the head pose: every AU field and the jaw are 0 there by construction
RIGID = [10, 109, 338, 67, 297, 151, 127, 356, 234, 454, 162, 389, 21, 251, 168, 6, 197, 133, 362, 33, 263]

# FaceMesh vertex groups (subject's right = image left)
R_BROW_INNER, L_BROW_INNER = [107, 66, 55, 65], [336, 296, 285, 295]
R_BROW_MID, L_BROW_MID = [105, 52], [334, 282]
R_BROW_OUTER, L_BROW_OUTER = [70, 46, 63, 53], [300, 276, 293, 283]
R_UPPER_LID, L_UPPER_LID = [246, 161, 160, 159, 158, 157, 173], [466, 388, 387, 386, 385, 384, 398]
R_LOWER_LID, L_LOWER_LID = [7, 163, 144, 145, 153, 154, 155], [249, 390, 373, 374, 380, 381, 382]
R_CHEEK, L_CHEEK = [50, 101, 118, 117, 123, 187, 205, 36], [280, 330, 347, 346, 352, 411, 425, 266]
R_ALA, L_ALA = [129, 49, 64, 98, 48, 102, 115, 219], [358, 279, 294, 327, 278, 331, 344, 439]
NOSE_BRIDGE = [6, 197, 195, 168]
UPPER_LIP_OUTER = [185, 40, 39, 37, 0, 267, 269, 270, 409]
UPPER_LIP_INNER_SET = [191, 80, 81, 82, 13, 312, 311, 310, 415]
LOWER_LIP_INNER_SET = [95, 88, 178, 87, 14, 317, 402, 318, 324]
LOWER_LIP_OUTER = [146, 91, 181, 84, 17, 314, 405, 321, 375]
R_CORNER, L_CORNER = [61, 78, 62, 76, 184, 146, 185, 95, 191], [291, 308, 292, 306, 408, 375, 409, 324, 415]
INNER_LIP_CONTOUR = [
    78,
    191,
    80,
    81,
    82,
    13,
    312,
    311,
    310,
    415,
    308,
    324,
    318,
    402,
    317,
    14,
    87,
    178,
    88,
    95,
]
OUTER_LIP_CONTOUR = [
    61,
    185,
    40,
    39,
    37,
    0,
    267,
    269,
    270,
    409,
    291,
    375,
    321,
    405,
    314,
    17,
    84,
    181,
    91,
    146,
]
CHIN_SET = [152, 175, 199, 200, 18, 83, 313, 201, 421, 208, 428, 171, 396, 148, 377, 32, 262]


def _umeyama(src: np.ndarray, dst: np.ndarray, w: np.ndarray | None = None):
    """Similarity (s, R, t) minimising sum_i w_i |s R src_i + t - dst_i|^2; src, dst [N, 3]."""
    w = np.ones(len(src)) if w is None else np.asarray(w, np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    xs, xd = src - mu_s, dst - mu_d
    cov = (xd * w[:, None]).T @ xs
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2, 2] = -1
    R = U @ D @ Vt
    var_s = (w[:, None] * xs**2).sum()
    s = float(np.trace(np.diag(S) @ D) / var_s)
    t = mu_d - s * R @ mu_s
    return s, R, t


def _rotvec(R: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.Rodrigues(R.astype(np.float64))[0].reshape(3)


def robust_similarity(src: np.ndarray, dst: np.ndarray, idx: np.ndarray, scale: float, iters: int = 4):
    """Umeyama on vertices ``idx`` with iteratively reweighted (Cauchy) weights, so that the few
    vertices the landmark model drags along with an expression do not tilt the pose.
    src, dst [468, 3]; scale: residual scale in dst units. Returns (s, R, t)."""
    a, b = src[idx], dst[idx]
    w = np.ones(len(idx))
    for _ in range(iters):
        s, R, t = _umeyama(a, b, w)
        r = np.linalg.norm((s * (R @ a.T)).T + t - b, axis=1)
        w = 1.0 / (1.0 + (r / scale) ** 2)
    return s, R, t


@dataclass
class Canonical:
    """A person's neutral mesh in its canonical frame (see module docstring)."""

    neutral_px: np.ndarray  # [468, 3] pixels
    origin: np.ndarray  # [3]
    R: np.ndarray  # [3, 3] rows = canonical axes in pixel space
    iod: float  # pixels
    mesh: np.ndarray  # [468, 3] neutral in canonical units (IOD)
    basis: np.ndarray  # [D_EXPR, 468, 3] AU displacement fields (canonical units, intensity 1)
    jaw: np.ndarray  # [468, 3] speech jaw field (1 unit = 1 IOD of lower-lip drop)
    rigid: np.ndarray  # [K] vertices that no AU field and no jaw motion moves (pose alignment)
    #: [D_EXPR, 468, 3] what the landmark model *sees* when each AU field is rendered (see
    #: :func:`calibrate`); the encoder projects on it when present, else on ``basis``
    observed: np.ndarray | None = None
    #: [468, 3] what the landmark model reports for the unedited face (see :func:`calibrate`)
    observed_offset: np.ndarray | None = None
    #: [468, 3] 1 / the calibration residual's spread per coordinate (0 for z)
    observed_weight: np.ndarray | None = None
    #: [k, 1404] main directions of the (weighted) calibration residual, projected out when encoding
    observed_noise: np.ndarray | None = None

    @property
    def mouth_opening(self) -> float:
        return float(np.linalg.norm(self.mesh[UPPER_LIP_INNER, :2] - self.mesh[LOWER_LIP_INNER, :2]))

    def to_canonical(self, p_px: np.ndarray) -> np.ndarray:
        return (p_px - self.origin) @ self.R.T / self.iod

    def from_canonical(self, c: np.ndarray) -> np.ndarray:
        return c * self.iod @ self.R + self.origin


def canonical(neutral_px: np.ndarray) -> Canonical:
    """Canonical frame + AU basis of a neutral mesh [468, 3] (pixels)."""
    p = np.asarray(neutral_px, np.float64)
    re, le = p[RIGHT_EYE_OUTER], p[LEFT_EYE_OUTER]
    x = le - re
    iod = float(np.linalg.norm(x))
    x /= iod
    y = p[CHIN] - p[FOREHEAD]
    y -= x * (y @ x)
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    R = np.stack([x, y, z])
    origin = (re + le) / 2
    mesh = (p - origin) @ R.T / iod
    basis, jaw = au_basis(mesh)
    mag = np.maximum(np.abs(basis).max(0).max(-1), np.abs(jaw).max(-1))
    rigid = np.union1d(np.where(mag < 1e-6)[0], RIGID)
    return Canonical(p.astype(np.float32), origin, R, iod, mesh.astype(np.float32), basis, jaw, rigid)


def _g(mesh: np.ndarray, idx, sigma: float) -> np.ndarray:
    """[468] max-Gaussian weight (2-D distance) around the anchor vertices ``idx``."""
    a = mesh[idx, :2]
    d2 = ((mesh[:, None, :2] - a[None]) ** 2).sum(-1).min(1)
    w = np.exp(-d2 / (2 * sigma**2)) - np.exp(-(2.5**2) / 2)
    return np.clip(w, 0, None) / (1 - np.exp(-(2.5**2) / 2))  # compact support: 0 beyond 2.5 sigma


def _smooth_step(x, lo, hi):
    t = np.clip((x - lo) / (hi - lo), 0, 1)
    return t * t * (3 - 2 * t)


def au_basis(mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The AU displacement basis on a neutral mesh in canonical units.

    mesh [468, 3] -> (B [D_EXPR, 468, 3], jaw [468, 3]); B[k] is the displacement (IOD units) of
    AU_NAMES[k] at intensity 1.0. x: image right (subject's left), y: down.
    """
    n = len(mesh)
    X, Y = mesh[:, 0], mesh[:, 1]
    side = np.sign(X)  # -1 subject's right (image left), +1 subject's left
    eye_y = mesh[[159, 386, 145, 374], 1].mean()
    mouth_y = mesh[[UPPER_LIP_INNER, LOWER_LIP_INNER], 1].mean()
    above_eye = 1 - _smooth_step(Y, eye_y - 0.09, eye_y - 0.01)  # brows/forehead (+ lid skin), not the eye
    # lower face (moves with the jaw): below the mouth line, inner lower lip included
    lower = _smooth_step(Y, mouth_y - 0.02, mouth_y + 0.08)
    lower[LOWER_LIP_INNER_SET + LOWER_LIP_OUTER] = 1.0
    lower[UPPER_LIP_INNER_SET + UPPER_LIP_OUTER] = 0.0
    mouth_c = mesh[[MOUTH_RIGHT, MOUTH_LEFT]].mean(0)
    jaw_w = lower * np.exp(-((X - mouth_c[0]) ** 2) / (2 * 0.75**2))
    B = {k: np.zeros((n, 3)) for k in AU_NAMES}

    def up(w, m):
        return np.stack([np.zeros(n), -w * m, np.zeros(n)], 1)

    # brows
    B["AU1"] = up((_g(mesh, R_BROW_INNER + L_BROW_INNER, 0.11) * above_eye), 0.11)
    B["AU1"][:, 0] += -side * _g(mesh, R_BROW_INNER + L_BROW_INNER, 0.08) * above_eye * 0.015
    B["AU2"] = up(_g(mesh, R_BROW_OUTER + L_BROW_OUTER, 0.12) * above_eye, 0.11)
    w4 = _g(mesh, R_BROW_INNER + L_BROW_INNER + R_BROW_MID + L_BROW_MID, 0.13) * above_eye
    B["AU4"] = up(w4, -0.09)
    B["AU4"][:, 0] = -side * w4 * 0.055 * _smooth_step(np.abs(X), 0.05, 0.2)
    B["AU4"] += up(_g(mesh, R_UPPER_LID + L_UPPER_LID, 0.05) * (1 - above_eye), -0.015)
    # lids
    wul = np.zeros(n)
    wul[R_UPPER_LID + L_UPPER_LID] = 1.0
    B["AU5"] = up(wul, 0.05) + up(_g(mesh, R_UPPER_LID + L_UPPER_LID, 0.08) * above_eye, 0.025)
    wll = np.zeros(n)
    wll[R_LOWER_LID + L_LOWER_LID] = 1.0
    B["AU6"] = up(_g(mesh, R_CHEEK + L_CHEEK, 0.14) * (1 - above_eye), 0.07) + up(wll, 0.02)
    B["AU6"][:, 0] += side * _g(mesh, [33, 263], 0.06) * -0.01
    B["AU7"] = (
        up(wll, 0.04) + up(_g(mesh, R_LOWER_LID + L_LOWER_LID, 0.06) * (1 - wll), 0.015) + up(wul, -0.015)
    )
    # nose / upper lip
    B["AU9"] = up(_g(mesh, R_ALA + L_ALA, 0.09), 0.055) + up(_g(mesh, NOSE_BRIDGE, 0.06), 0.02)
    B["AU9"] += up(_g(mesh, [0, 37, 267, 13], 0.08) * (1 - lower), 0.03)
    B["AU9"] += up(_g(mesh, R_BROW_INNER + L_BROW_INNER, 0.1) * above_eye, -0.035)
    wul_lip = _g(mesh, [0, 37, 267, 39, 269, 13, 82, 312], 0.1) * (1 - lower)
    B["AU10"] = up(wul_lip, 0.08) + up(_g(mesh, R_ALA + L_ALA, 0.07), 0.02)
    # lip corners
    wc = _g(mesh, [MOUTH_RIGHT, MOUTH_LEFT, 78, 308], 0.12)
    B["AU12"] = np.stack([side * wc * 0.07, -wc * 0.08, np.zeros(n)], 1)
    B["AU12"] += up(_g(mesh, R_CHEEK + L_CHEEK, 0.12), 0.025)
    # a broad smile parts the lips (AU12 with AU25): upper lip up a little, lower lip down
    B["AU12"] += up(_g(mesh, [13, 82, 312, 0, 37, 267], 0.08) * (1 - lower), 0.015)
    B["AU12"] += up(_g(mesh, [14, 87, 317, 17, 84, 314], 0.08) * lower, -0.04)
    # dimpler: the corners tightened back and in, and a little up (the tightener AU23 narrows the
    # whole mouth instead): localised at the corners
    wcs = _g(mesh, [MOUTH_RIGHT, MOUTH_LEFT, 78, 308], 0.06)
    B["AU14"] = np.stack([-side * wcs * 0.07, -wcs * 0.04, -wcs * 0.03], 1)
    B["AU15"] = up(wc, -0.07)
    B["AU15"][:, 0] += side * wc * 0.01
    B["AU16"] = up(_g(mesh, LOWER_LIP_OUTER[2:7] + LOWER_LIP_INNER_SET[2:7], 0.1) * lower, -0.055)
    wchin = _g(mesh, CHIN_SET, 0.14) * lower
    B["AU17"] = up(wchin, 0.045) + up(_g(mesh, LOWER_LIP_OUTER[2:7], 0.07) * lower, 0.025)
    B["AU20"] = np.stack([side * wc * 0.085, wc * 0.012, np.zeros(n)], 1)
    B["AU20"] += up(_g(mesh, LOWER_LIP_OUTER[1:8], 0.06) * lower, -0.015)
    wlips = _g(mesh, OUTER_LIP_CONTOUR, 0.05)
    # lip tightener: the lips narrowed (corners in) and their red thinned (outer contours toward
    # the mouth line; the stretcher AU20 pulling the corners out does not undo that part)
    B["AU23"] = np.stack([-side * wc * 0.045, np.zeros(n), wlips * 0.02], 1)
    B["AU23"] += up(_g(mesh, UPPER_LIP_OUTER[1:8], 0.04) * (1 - lower), -0.02)
    B["AU23"] += up(_g(mesh, LOWER_LIP_OUTER[1:8], 0.04) * lower, 0.025)
    B["AU23"][UPPER_LIP_INNER_SET + LOWER_LIP_INNER_SET, 1] = 0.0
    # lip pressor: the lips pressed together roll in (outer contours toward the mouth line); the
    # inner contours are in contact already and stay (moving them would cross the lips)
    B["AU24"] = up(_g(mesh, UPPER_LIP_OUTER[2:7], 0.06) * (1 - lower), -0.03)
    B["AU24"] += up(_g(mesh, LOWER_LIP_OUTER[2:7], 0.07) * lower, 0.035)
    B["AU24"][UPPER_LIP_INNER_SET + LOWER_LIP_INNER_SET + [MOUTH_RIGHT, MOUTH_LEFT, 78, 308]] = 0.0
    # jaw: 1 unit = 1 IOD drop of the lower inner lip; AU26_emo at intensity 1 = 0.25 IOD
    jaw = up(jaw_w, -1.0)
    jaw[:, 2] = -jaw_w * 0.2
    jaw[:, 0] = -side * jaw_w * 0.05 * _g(mesh, [MOUTH_RIGHT, MOUTH_LEFT], 0.1)  # corners in a little
    jaw /= max(1e-6, jaw[LOWER_LIP_INNER, 1])
    B["AU26_emo"] = 0.25 * jaw
    right = (side < 0).astype(float)
    B["R12"] = B["AU12"] * right[:, None]
    B["R14"] = B["AU14"] * right[:, None]
    for k in B:
        B[k][RIGID] = 0.0
    jaw[RIGID] = 0.0
    return np.stack([B[k] for k in AU_NAMES]).astype(np.float32), jaw.astype(np.float32)


@dataclass
class Codes:
    """Per-frame codes of a face track."""

    au: np.ndarray  # [T, D_EXPR]
    lips: np.ndarray  # [T, 2] (mouth opening, mouth width) minus the neutral's, IOD units
    pose: np.ndarray  # [T, 6] rotation vector, tx, ty (IOD), log scale
    jaw: np.ndarray  # [T] speech jaw coefficient used in the projection


def align(can: Canonical, p_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigidly align frame landmarks [468, 3] to the neutral: (aligned canonical mesh, pose [6])."""
    s, R, t = robust_similarity(
        np.asarray(p_px, np.float64), can.neutral_px.astype(np.float64), can.rigid, 0.01 * can.iod
    )
    aligned = (s * (R @ np.asarray(p_px, np.float64).T)).T + t
    rot = _rotvec(R.T)  # frame relative to neutral
    inv_t = -(R.T @ t) / s  # where the neutral origin goes
    pose = np.concatenate([rot, [inv_t[0] / can.iod, inv_t[1] / can.iod, -np.log(s)]])
    return can.to_canonical(aligned), pose.astype(np.float32)


def lips_code(can: Canonical, c: np.ndarray) -> np.ndarray:
    """[..., 468, 3] canonical meshes -> [..., 2] (opening, width) relative to the neutral."""
    op = np.linalg.norm(c[..., UPPER_LIP_INNER, :2] - c[..., LOWER_LIP_INNER, :2], axis=-1)
    wd = np.linalg.norm(c[..., MOUTH_RIGHT, :2] - c[..., MOUTH_LEFT, :2], axis=-1)
    m = can.mesh
    return np.stack([op - can.mouth_opening, wd - np.linalg.norm(m[MOUTH_RIGHT, :2] - m[MOUTH_LEFT, :2])], -1)


def encode(
    can: Canonical,
    frames_px: np.ndarray,
    lips_ref: np.ndarray | None = None,
    z_weight: float = 0.0,
    affine: bool | None = None,
) -> Codes:
    """Landmarks [T, 468, 3] (pixels) -> :class:`Codes`.

    ``lips_ref`` [T]: the source's mouth-opening track relative to neutral (``Codes.lips[:, 0]``
    of the unedited video); when given, the jaw is fixed to it and the rest is AU26_emo.

    On a calibrated :class:`Canonical` (:func:`calibrate`) the projection is on the observed
    basis, after removing the observed offset, weighting each coordinate by 1 / its residual
    spread and projecting out the calibration residual's main directions (generalised least
    squares); ``affine`` (the 2-D nuisance field) then defaults to off: the calibration has the
    landmark model's systematic drag in its basis already.
    """
    from scipy.optimize import nnls

    frames_px = np.asarray(frames_px, np.float64)
    if frames_px.ndim == 2:
        frames_px = frames_px[None]
    T = len(frames_px)
    calibrated = can.observed is not None
    affine = (not calibrated) if affine is None else affine
    wvec = np.array([1.0, 1.0, 0.0 if calibrated else z_weight])  # the calibration fits x, y only
    basis = can.observed if calibrated else can.basis
    Bf = (basis.astype(np.float64) * wvec).reshape(D_EXPR, -1).T  # [1404, D]
    J = (can.jaw.astype(np.float64) * wvec).reshape(-1)
    k26 = AU_NAMES.index("AU26_emo")
    au = np.zeros((T, D_EXPR), np.float32)
    pose = np.zeros((T, D_POSE), np.float32)
    lips = np.zeros((T, D_LIPS), np.float32)
    jaws = np.zeros(T, np.float32)
    # nuisance: a 2-D affine field (the landmark model stretches the whole mesh a little when a
    # part of the face moves); free sign = a +/- pair of non-negative columns
    m = can.mesh.astype(np.float64)
    aff = []
    for comp in range(2):
        for base in (m[:, 0], m[:, 1], np.ones(len(m))):
            f = np.zeros((len(m), 3))
            f[:, comp] = base
            aff.append((f * wvec).reshape(-1))
    Aff = np.stack(aff, 1)
    Aff = np.concatenate([Aff, -Aff], 1) if affine else np.zeros((len(Bf), 0))
    W = _whitener(can) if calibrated else (lambda v: v)
    Bf, J, Aff = W(Bf), W(J), W(Aff)
    for i in range(T):
        c, pose[i] = align(can, frames_px[i])
        lips[i] = lips_code(can, c)
        d = c - can.mesh - (can.observed_offset if calibrated else 0.0)
        d = W((d * wvec).reshape(-1))
        if lips_ref is not None:
            jaw = float(lips_ref[i])
            sol, _ = nnls(np.concatenate([Bf, Aff], 1), d - jaw * J)
            x = sol[:D_EXPR]
        else:
            cols = [k for k in range(D_EXPR) if k != k26]
            A = np.concatenate([Bf[:, cols], J[:, None], -J[:, None], Aff], 1)
            sol, _ = nnls(A, d)
            x = np.zeros(D_EXPR)
            x[cols] = sol[: len(cols)]
            jaw = float(sol[len(cols)] - sol[len(cols) + 1])
        au[i] = x
        jaws[i] = jaw
    return Codes(au, lips, pose, jaws)


def _whitener(can: Canonical):
    """The calibration's noise model (:func:`calibrate` sets it with ``observed``) as a map on
    [1404, ...] landmark vectors: weight each coordinate, project out the residual's main
    directions (see :func:`encode`)."""
    w = np.asarray(can.observed_weight, np.float64).reshape(-1)
    V = np.asarray(can.observed_noise, np.float64)  # [k, 1404]

    def apply(v):
        v = v * (w if v.ndim == 1 else w[:, None])
        return v - V.T @ (V @ v)

    return apply


def displacement(can: Canonical, au: np.ndarray, jaw: float | np.ndarray = 0.0) -> np.ndarray:
    """AU code(s) [..., D_EXPR] (+ jaw) -> canonical displacement [..., 468, 3]."""
    au = np.asarray(au, np.float32)
    d = np.tensordot(au, can.basis, axes=([-1], [0]))
    jaw = np.asarray(jaw, np.float32)
    return d + jaw[..., None, None] * can.jaw


def target_landmarks(
    can: Canonical, frame_px: np.ndarray, delta_au: np.ndarray, jaw: float = 0.0
) -> np.ndarray:
    """Move a frame's landmarks [468, 3] by an AU code change [D_EXPR] in the face's own pose.

    The frame keeps its own lips, pose and expression; ``delta_au`` (and an extra ``jaw``) are
    added in the canonical frame and mapped back with the frame's pose: returns [468, 3] pixels.
    """
    p = np.asarray(frame_px, np.float64)
    s, R, t = robust_similarity(p, can.neutral_px.astype(np.float64), can.rigid, 0.01 * can.iod)
    d_can = displacement(can, delta_au, jaw).astype(np.float64)  # [468, 3]
    d_neutral_px = d_can * can.iod @ can.R  # displacement in neutral pixel frame
    d_frame = (R.T @ d_neutral_px.T).T / s
    return (p + d_frame).astype(np.float32)


def neutral_reference(tracks_px: np.ndarray, n_first: int = 25) -> np.ndarray:
    """The neutral mesh of a neutral video: per-vertex median of the first frames, each aligned
    to the first (pose removed): [T, 468, 3] -> [468, 3]."""
    tr = np.asarray(tracks_px, np.float64)[:n_first]
    ref = tr[0]
    al = []
    for p in tr:
        s, R, t = _umeyama(p[RIGID], ref[RIGID])
        al.append((s * (R @ p.T)).T + t)
    return np.median(np.stack(al), 0).astype(np.float32)


def sparse_codes(n: int, rng: np.random.Generator, p_active: float, max_code: float = 1.0) -> np.ndarray:
    """[n, D_EXPR] random AU codes: each AU on with probability ``p_active``, intensity U(0, max_code)."""
    return rng.uniform(0, max_code, (n, D_EXPR)) * (rng.uniform(size=(n, D_EXPR)) < p_active)


def calibrate(
    can: Canonical,
    img: np.ndarray,
    landmarks: np.ndarray,
    mesher,
    renderer,
    n: int = 240,
    p_active: float = 0.2,
    seed: int = 0,
    ridge: float = 1e-3,
    n_noise: int = 20,
    progress: bool = False,
) -> Canonical:
    """Fill ``can.observed`` (+ ``can.observed_offset``): what the landmark model *sees* of each AU
    on this person, fitted by least squares on ``n`` renders of random sparse codes.

    The renderer moves pixels by the designed fields; FaceMesh follows some parts of a face (lips,
    brows) closely and others (cheeks, lids) weakly, drags neighbours along (the forehead with the
    brows, which then shifts the pose alignment), and reports AUs that act together not quite as
    the sum of each alone. Codes: each AU on with probability ``p_active`` (0.2: ~4 AUs at a
    time, as many as an EMFACS prototype has), intensity U(0, 1). Forward model, per coordinate:
    observed displacement = offset + sum_k code_k * observed_k (ridge ``ridge`` on the AU columns).
    The encoder then projects on ``observed`` after removing ``offset``: consistent with renderer
    + landmark model (the round trip) and with how FaceMesh sees the same motion on real faces.
    Noise model (``observed_weight``, ``observed_noise``): each coordinate weighted by 1 / the
    residual's spread, and the residual's ``n_noise`` main directions projected out (the
    landmarks' errors are correlated across neighbouring vertices).
    ~n renders + landmark runs per identity (about 8 s for n=240 with the flow-refined landmarks
    of :mod:`cmet.face.flow` on a 256 px face here).
    """
    codes = sparse_codes(n, np.random.default_rng(seed), p_active)
    codes[:D_EXPR] = np.eye(D_EXPR)  # every AU alone once (also when n is small)
    it = range(n)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="calibrate", unit="render", leave=False)
    X = []
    for i in it:
        out = renderer.render(img, landmarks, codes[i])
        c, _ = align(can, mesher.mesh(out, "calibration render"))
        X.append((c - can.mesh)[:, :2].reshape(-1))
    X = np.asarray(X, np.float64)
    A = np.concatenate([codes, np.ones((n, 1))], 1)
    reg = ridge * n * np.eye(A.shape[1])
    reg[-1, -1] = 0.0
    M = np.linalg.solve(A.T @ A + reg, A.T @ X)  # [D_EXPR + 1, 936]
    # noise model: per-coordinate spread of the residual, and its main correlated directions
    res = X - A @ M
    sd = res.std(0) + 1e-4
    rw = res / sd
    _, _, Vt = np.linalg.svd(rw - rw.mean(0), full_matrices=False)
    k = int(min(n_noise, max(0, n - D_EXPR - 2)))
    weight = np.zeros(can.basis.shape[1:], np.float32)
    weight[:, :2] = (1.0 / sd).reshape(-1, 2)
    noise = np.zeros((k, can.basis.shape[1], 3), np.float32)
    noise[:, :, :2] = Vt[:k].reshape(k, -1, 2)
    can.observed_weight = weight
    can.observed_noise = noise.reshape(k, -1)
    obs = np.zeros_like(can.basis)
    obs[:, :, :2] = M[:D_EXPR].reshape(D_EXPR, -1, 2)
    off = np.zeros(can.basis.shape[1:], np.float32)
    off[:, :2] = M[-1].reshape(-1, 2)
    can.observed = obs.astype(np.float32)
    can.observed_offset = off
    return can
