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
   on the AU basis ``B [D_EXPR, 468, 3]`` (see :func:`cmet.face.au_fields.au_basis`). Each AU field is a hand-made
   displacement field (Gaussian falloff around FaceMesh anchor vertices, FACS direction of
   motion), built on the person's neutral mesh, in IOD units at intensity 1.0 (E apex).
5. Calibrated encoder (optional, :func:`cmet.face.calibration.calibrate`): the person's neutral image is rendered with
   a few hundred random AU codes and the landmark model's answer is fitted per AU (a forward
   model with a noise model); the projection is then on what the landmark model *sees* of each
   AU, weighted by how reliably it sees it. With FaceMesh refined by optical flow from the
   neutral image (:mod:`cmet.face.flow`) this closes the round trip codes -> render ->
   landmarks -> codes (``cmet face roundtrip``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmet.face.au_fields import CHIN, FOREHEAD, RIGID, au_basis
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
    #: :func:`cmet.face.calibration.calibrate`); the encoder projects on it when present, else on ``basis``
    observed: np.ndarray | None = None
    #: [468, 3] what the landmark model reports for the unedited face (see :func:`cmet.face.calibration.calibrate`)
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

    On a calibrated :class:`Canonical` (:func:`cmet.face.calibration.calibrate`) the projection is on the observed
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
    """The calibration's noise model (:func:`cmet.face.calibration.calibrate` sets it with ``observed``) as a map on
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
