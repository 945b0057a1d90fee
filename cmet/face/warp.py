"""Piecewise-affine mesh warp (OpenCV): a Delaunay triangulation of the 468 FaceMesh vertices plus
a fixed ring around the face and the image border (fixed points, so the warp fades out); every
target pixel is mapped back through its triangle's affine map and sampled with ``cv2.remap``."""

from __future__ import annotations

import numpy as np

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


def control_points(p2d: np.ndarray, shape: tuple[int, int], ring: float | np.ndarray = 1.5) -> np.ndarray:
    """[468, 2] landmarks -> [468 + 36 + 16, 2]: the mesh, a fixed ring around the face oval
    (scaled ``ring`` about the face centre: one scale, or one per FACE_OVAL vertex [36]) and points
    on a frame around the image."""
    h, w = shape
    c = p2d[FACE_OVAL].mean(0)
    ringp = c + np.reshape(ring, (-1, 1)) * (p2d[FACE_OVAL] - c)
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
    M = affine_dst_to_src(Dh[ok], S[ok])
    Dk = D[ok]
    x0 = int(max(0, np.floor(Dk[..., 0].min()) - 1))
    y0 = int(max(0, np.floor(Dk[..., 1].min()) - 1))
    x1 = int(min(w, np.ceil(Dk[..., 0].max()) + 2))
    y1 = int(min(h, np.ceil(Dk[..., 1].max()) + 2))
    if x1 <= x0 or y1 <= y0:
        return img.copy()
    mx, my, _ = triangle_maps(M, Dk, (x0, y0, x1, y1))
    out = img.copy()  # outside the box every pixel maps to itself
    out[y0:y1, x0:x1] = cv2.remap(
        img, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return out


def affine_dst_to_src(Dh: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Per triangle the affine map from its target corners to its source corners: ``[x y 1] @ M = [u v]``.
    Dh [K, 3, 3] (target corners with a column of ones), S [K, 3, 2] -> M [K, 3, 2]."""
    return np.linalg.solve(Dh, S)


def triangle_maps(M: np.ndarray, D: np.ndarray, box: tuple[int, int, int, int]):
    """The inverse maps of a piecewise-affine warp on the pixel box (x0, y0, x1, y1) for ``cv2.remap``.

    M [K, 3, 2] per-triangle affine maps target -> source (:func:`affine_dst_to_src`), D [K, 3, 2] the
    triangles' target corners (pixels) -> (mx, my [h', w'] float32 source coordinates, covered [h', w']
    bool). Each pixel takes its triangle's map (rasterised at 1/16 px); a pixel in no triangle maps to
    itself. Built from per-triangle coefficient tables: no per-pixel 3x2 gather."""
    import cv2

    x0, y0, x1, y1 = box
    K = len(M)
    ids = np.full((y1 - y0, x1 - x0), K, np.int32)  # K = none: the identity row appended below
    pts = np.round((np.asarray(D, np.float64) - [x0, y0]) * 16).astype(np.int32)
    for k in range(K):
        cv2.fillConvexPoly(ids, pts[k], k, lineType=cv2.LINE_8, shift=4)
    coef = np.concatenate([np.reshape(M, (K, 6)), [[1, 0, 0, 1, 0, 0]]]).astype(np.float32).T  # [6, K+1]
    a00, a01, a10, a11, a20, a21 = (np.take(c, ids) for c in coef)  # [h', w'] each
    xs = np.arange(x0, x1, dtype=np.float32)[None, :]
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    return xs * a00 + ys * a10 + a20, xs * a01 + ys * a11 + a21, ids < K
