"""The action-unit displacement fields on the 468 FaceMesh vertices: hand-made fields (Gaussian
falloff around anchor vertices, FACS direction of motion) built on a person's neutral mesh in
canonical units (IOD), at intensity 1.0 (EMFACS apex); the speech jaw field beside them."""

from __future__ import annotations

import numpy as np

from cmet.face.facs import AU_NAMES
from cmet.face.landmarks import LOWER_LIP_INNER, MOUTH_LEFT, MOUTH_RIGHT, UPPER_LIP_INNER

FOREHEAD, CHIN = 10, 152
#: vertices that define the head pose: every AU field and the jaw are 0 there by construction
RIGID = [10, 109, 338, 67, 297, 151, 127, 356, 234, 454, 162, 389, 21, 251, 168, 6, 197, 133, 362, 33, 263]

# FaceMesh vertex groups (subject's right = image left)
R_BROW_INNER, L_BROW_INNER = [107, 66, 55, 65], [336, 296, 285, 295]
R_BROW_MID, L_BROW_MID = [105, 52], [334, 282]
R_BROW_OUTER, L_BROW_OUTER = [70, 46, 63, 53], [300, 276, 293, 283]
R_UPPER_LID, L_UPPER_LID = [246, 161, 160, 159, 158, 157, 173], [466, 388, 387, 386, 385, 384, 398]
R_LOWER_LID, L_LOWER_LID = [7, 163, 144, 145, 153, 154, 155], [249, 390, 373, 374, 380, 381, 382]
#: a lid's share of its AU motion along the lid vertices above (corner ... corner)
LID_TAPER = [0.35, 0.75, 1.0, 1.0, 1.0, 0.75, 0.35]
R_CHEEK, L_CHEEK = [50, 101, 118, 117, 123, 187, 205, 36], [280, 330, 347, 346, 352, 411, 425, 266]
R_ALA, L_ALA = [129, 49, 64, 98, 48, 102, 115, 219], [358, 279, 294, 327, 278, 331, 344, 439]
NOSE_BRIDGE = [6, 197, 195, 168]
UPPER_LIP_OUTER = [185, 40, 39, 37, 0, 267, 269, 270, 409]
UPPER_LIP_INNER_SET = [191, 80, 81, 82, 13, 312, 311, 310, 415]
LOWER_LIP_INNER_SET = [95, 88, 178, 87, 14, 317, 402, 318, 324]
LOWER_LIP_OUTER = [146, 91, 181, 84, 17, 314, 405, 321, 375]
#: the two vertex rings inside each lip's red, between its inner and outer contour (corners left
#: out): they move with their lip, else a jaw drop carries the inner lower lip past them (a fold)
LOWER_LIP_RINGS = [96, 89, 179, 86, 15, 316, 403, 319, 325, 77, 90, 180, 85, 16, 315, 404, 320, 307]
UPPER_LIP_RINGS = [183, 42, 41, 38, 12, 268, 271, 272, 407, 184, 74, 73, 72, 11, 302, 303, 304, 408]
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
    lower[LOWER_LIP_INNER_SET + LOWER_LIP_OUTER + LOWER_LIP_RINGS] = 1.0
    lower[UPPER_LIP_INNER_SET + UPPER_LIP_OUTER + UPPER_LIP_RINGS] = 0.0
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
    # a lid moves most at its middle and little next to the eye corners (fixed: RIGID), which a
    # lid vertex moved in full would cross (a fold at the canthus)
    wul = np.zeros(n)
    wul[R_UPPER_LID + L_UPPER_LID] = LID_TAPER + LID_TAPER
    B["AU5"] = up(wul, 0.05) + up(_g(mesh, R_UPPER_LID + L_UPPER_LID, 0.08) * above_eye, 0.025)
    wll = np.zeros(n)
    wll[R_LOWER_LID + L_LOWER_LID] = LID_TAPER + LID_TAPER
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
