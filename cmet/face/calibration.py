"""The calibrated encoder: what the landmark model *sees* of each AU on one person, fitted on renders
of random sparse codes (a forward model with a noise model); :func:`cmet.face.expression.encode`
then projects on it (generalised least squares)."""

from __future__ import annotations

import numpy as np

from cmet.face.expression import Canonical, align
from cmet.face.facs import D_EXPR


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
