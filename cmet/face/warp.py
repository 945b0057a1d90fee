"""Piecewise-affine mesh warp (OpenCV): a Delaunay triangulation of the 468 FaceMesh vertices plus
a fixed ring around the face and the image border (fixed points, so the warp fades out); every
target pixel is mapped back through its triangle's affine map (:func:`inverse_map`) and the image read
once through it (:func:`cmet.face.compose.sample`)."""

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
#: the Unfolder's least mobility: the vertices an expression moves most still give way this much
STIFF_FLOOR = 0.15
#: source triangles smaller than this (pixels^2) are left alone by the Unfolder
MIN_AREA = 2.0
#: a source area no target area is ever below (a triangle the Unfolder leaves alone)
NEVER = -1e18
#: area slack (pixels^2) of the Unfolder's tests: a triangle counts as squeezed or folded past it
TOL = 0.5
#: the Unfolder stops when this many steps in a row leave as many squeezed triangles
STALL = 25
#: the Unfolder's Jacobi step toward the neighbours' mean displacement (1 = all the way)
STEP = 1.0


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


#: a triangle whose corners all move less than this (pixels) is left where it is
STILL_PX = 0.05


def inverse_map(src: np.ndarray, dst: np.ndarray, tris: np.ndarray, shape: tuple[int, int]):
    """The inverse map of the piecewise-affine warp moving control points ``src`` to ``dst`` ([N, 2]
    each, triangles ``tris`` [K, 3]) on an image of ``shape`` (H, W), over the box of the triangles
    that move (a corner by more than :data:`STILL_PX`) -> (box (x0, y0, x1, y1), mx, my [h, w] float32
    source coordinates), or None when nothing moves. Outside the box every pixel maps to itself."""
    h, w = shape
    S = src[tris].astype(np.float64)  # [K, 3, 2]
    D = dst[tris].astype(np.float64)
    moved = np.abs(S - D).max(axis=(1, 2)) > STILL_PX
    Dh = np.concatenate([D, np.ones((len(tris), 3, 1))], 2)  # [K, 3, 3]
    ok = moved & (np.abs(np.linalg.det(Dh)) > 1e-9)
    if not ok.any():
        return None
    M = affine_dst_to_src(Dh[ok], S[ok])
    Dk = D[ok]
    x0 = int(max(0, np.floor(Dk[..., 0].min()) - 1))
    y0 = int(max(0, np.floor(Dk[..., 1].min()) - 1))
    x1 = int(min(w, np.ceil(Dk[..., 0].max()) + 2))
    y1 = int(min(h, np.ceil(Dk[..., 1].max()) + 2))
    if x1 <= x0 or y1 <= y0:
        return None
    mx, my, _ = triangle_maps(M, Dk, (x0, y0, x1, y1))
    return (x0, y0, x1, y1), mx, my


def warp(
    img: np.ndarray, src: np.ndarray, dst: np.ndarray, tris: np.ndarray, kernel: str = "cubic"
) -> np.ndarray:
    """Piecewise-affine warp: the pixel at ``src`` control points moves to ``dst``; each output pixel
    read once (:func:`cmet.face.compose.sample`).

    img [H, W, C] uint8, src/dst [N, 2], tris [K, 3] -> [H, W, C] uint8.
    """
    from cmet.face.compose import sample

    inv = inverse_map(src, dst, tris, img.shape[:2])
    out = img.copy()  # outside the box every pixel maps to itself
    if inv is None:
        return out
    (x0, y0, x1, y1), mx, my = inv
    out[y0:y1, x0:x1] = sample(img, mx, my, kernel)
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


def signed_areas(points: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Signed area of each triangle: points [N, 2], tris [K, 3] -> [K] (pixels^2)."""
    p = np.asarray(points, np.float64)
    a, b, c = p[tris[:, 0]], p[tris[:, 1]], p[tris[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


class Unfolder:
    """Keeps a piecewise-affine warp one-to-one: no triangle folds over its neighbours.

    A large AU displacement can carry a vertex across its neighbours (a brow raised into the
    forehead vertices above it, an upper lid lowered past the lower lid, the inner lower lip
    dropped past the lip's middle ring). The warp then paints one triangle over another: a hard
    edge and doubled skin, the "drawn stroke" look. :meth:`__call__` relaxes the displacement of
    the vertices of every triangle squeezed below ``min_ratio`` of its source area toward the mean
    displacement of their mesh neighbours (Jacobi steps of Laplacian smoothing). The vertices the
    expression moves most are the stiffest (they carry it: a raised brow keeps its shape and
    height), the passive ones around them give way most (the forehead skin above rises a little
    and takes the squeeze), and the ``free`` = 0 vertices (the image border, the control ring, the
    upper face outline, eyeglass frames) never move.
    """

    def __init__(
        self,
        tris: np.ndarray,
        ref: np.ndarray,
        free: np.ndarray,
        tied: tuple[tuple[int, ...], ...] = (),
        overlap: tuple[int, ...] = (),
        loose: tuple[int, ...] = (),
        min_ratio: float = 0.2,
        iters: int = 150,
    ):
        """tris [K, 3] over the N control points ``ref`` [N, 2] they were built on (each triangle is
        oriented to a positive area there); free [N] in [0, 1] (0: the vertex never moves); ``tied``:
        groups of vertices relaxed as one piece (a brow's upper and lower edge: the hair between
        them is not squeezed into a line); ``overlap``: vertices whose triangles (all three corners
        among them) may fold while they move down the image: one skin surface sliding over another
        in depth (a lowered brow hoods the upper lid), which the warp shows as the later triangle
        drawn over the earlier; ``loose``: vertices whose triangles may be squeezed as far as they
        go, only not folded (the fixed ring around the face: the neck under a dropped jaw)."""
        from scipy.sparse import coo_matrix

        tris = np.asarray(tris)
        flip = signed_areas(ref, tris) < 0
        self.tris = np.where(flip[:, None], tris[:, [0, 2, 1]], tris)
        self.free = np.clip(np.asarray(free, np.float64), 0.0, 1.0)
        n = len(self.free)
        i = self.tris[:, [0, 1, 2, 1, 2, 0]].ravel()
        j = self.tris[:, [1, 2, 0, 0, 1, 2]].ravel()
        adj = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
        adj.data[:] = 1.0  # an edge shared by two triangles counts once
        deg = np.asarray(adj.sum(1)).ravel()
        # dense operators (a face: 520 control points, ~1000 triangles; a few MB): row slices of
        # them cost microseconds where sparse slicing costs tenths of a millisecond a call
        self.adj = adj.toarray() > 0  # [N, N]
        self.mean_nb = adj.multiply(1.0 / np.maximum(deg, 1)[:, None]).toarray()  # [N, N]
        k = len(self.tris)
        self.vert_tris = np.zeros((n, k), bool)  # [N, K] vertex in triangle
        self.vert_tris[self.tris.ravel(), np.repeat(np.arange(k), 3)] = True
        # tied groups as one "group mean" operator: step <- tie @ step
        tie = np.eye(n)
        for g in tied:
            g = np.asarray(g, np.int64)
            tie[np.ix_(g, np.arange(n))] = 0.0
            tie[np.ix_(g, g)] = 1.0 / len(g)
        self.tie = tie
        self.may_fold = np.isin(self.tris, np.asarray(overlap, np.int64)).all(1)
        self.min_ratio = np.where(
            np.isin(self.tris, np.asarray(loose, np.int64)).any(1), 0.0, float(min_ratio)
        )
        self.iters = int(iters)
        #: the last call's folded triangles (turned over, by more than TOL past the source's
        #: own orientation; not the ones allowed to fold): in the target it was given, in its result
        self.last = (0, 0)

    def _src_areas(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Source areas [K]; :data:`NEVER` (never "squeezed") for an ``overlap`` triangle moving down the
        image (a brow lowered over the lid; raised, the same skin must not fold) and for one under
        :data:`MIN_AREA`."""
        s = signed_areas(src, self.tris)
        dy = np.asarray(dst, np.float64)[:, 1] - np.asarray(src, np.float64)[:, 1]
        s[self.may_fold & (dy[self.tris].mean(1) > 0)] = NEVER
        # a triangle of next to no area in the source (across closed lips) shows nothing to fold:
        # pulling its corners together would drag the lip into the mouth it opens
        s[np.abs(s) < MIN_AREA] = NEVER
        return s

    def _bad(self, s: np.ndarray, d: np.ndarray, tk: np.ndarray | None = None) -> np.ndarray:
        """[K] bool, squeezed triangles among all (or the triangles ``tk``): below ``min_ratio`` of
        their source area s (or, where the source triangle is folded already, folded further than
        in the source); target areas d."""
        ratio = self.min_ratio if tk is None else self.min_ratio[tk]
        return d < np.minimum(ratio * s, s) - TOL

    def __call__(
        self, src: np.ndarray, dst: np.ndarray, warm: np.ndarray | None = None
    ) -> tuple[np.ndarray, int]:
        """src, dst [N, 2] control points -> (dst [N, 2] without folds where it could, the number of
        triangles still squeezed after ``iters`` steps). ``warm`` [N, 2]: a first guess of the
        correction (a video's previous frame's, damped), tried only when ``dst`` needs one.

        The steps run on a working set (the squeezed triangles, two rings of vertices around them
        and every triangle touching those) with small dense operators, the whole mesh checked
        again after it settles."""
        src = np.asarray(src, np.float64)
        disp = np.asarray(dst, np.float64) - src
        s_all = self._src_areas(src, dst)
        d = d_raw = signed_areas(dst, self.tris)
        bad = raw_bad = self._bad(s_all, d)
        self.last = (0, 0)  # (no squeezed triangle: none folded either)
        if not bad.any():
            return np.asarray(dst, np.float32), 0
        size = np.linalg.norm(disp, axis=1)
        mobility = self.free * np.clip(1.0 - size / max(float(size.max()), 1e-9), STIFF_FLOOR, 1.0)
        if warm is not None:
            disp = disp + np.asarray(warm, np.float64) * (self.free > 0)[:, None]
            d = signed_areas(src + disp, self.tris)
            bad = self._bad(s_all, d)
        steps = 0
        while bad.any() and steps < self.iters:
            w = np.zeros(len(disp), bool)
            w[self.tris[bad].ravel()] = True
            for _ in range(2):
                w |= self.adj[w].any(0)
            tk = np.flatnonzero(self.vert_tris[w].any(0))  # every triangle touching the working set
            on_set = np.zeros(len(disp), bool)
            on_set[self.tris[tk].ravel()] = True
            on_set |= (self.tie[on_set] != 0).any(0)  # with the rest of their tied groups
            verts = np.flatnonzero(on_set)
            # local operators: neighbour means (the neighbours outside ``verts`` do not move during
            # the steps: their share is a constant) and the tied groups' means
            a_loc = self.mean_nb[np.ix_(verts, verts)]
            c_out = self.mean_nb[verts] @ disp - a_loc @ disp[verts]
            tie_loc = self.tie[np.ix_(verts, verts)]
            T = np.searchsorted(verts, self.tris[tk])
            s, src_l, d_l = s_all[tk], src[verts], disp[verts]
            mob_l, fixed_l = mobility[verts], self.free[verts] == 0
            b = self._bad(s, signed_areas(src_l + d_l, T), tk)
            best, since = int(b.sum()), 0
            while b.any() and steps < self.iters and since < STALL:
                steps += 1
                on = np.zeros(len(verts), bool)
                on[T[b].ravel()] = True
                on &= mob_l > 0
                step = np.zeros_like(d_l)
                step[on] = STEP * mob_l[on, None] * ((a_loc[on] @ d_l) + c_out[on] - d_l[on])
                step = tie_loc @ step  # a tied group takes its members' mean step
                step[fixed_l] = 0.0
                d_l += step
                b = self._bad(s, signed_areas(src_l + d_l, T), tk)
                since = 0 if b.sum() < best else since + 1
                best = min(best, int(b.sum()))
            disp[verts] = d_l
            d = signed_areas(src + disp, self.tris)
            bad = self._bad(s_all, d)
            if b.any() or np.isin(np.flatnonzero(bad), tk).all():
                break  # stalled (or nothing new outside the working set): what is left stays
        floor = np.minimum(0.0, s_all) - TOL
        folded, folded_raw = int((d < floor).sum()), int((d_raw < floor).sum())
        if folded > folded_raw:  # a relaxation that stalled may fold elsewhere: never worse
            self.last = (folded_raw, folded_raw)
            return np.asarray(dst, np.float32), int(raw_bad.sum())
        self.last = (folded_raw, folded)
        return (src + disp).astype(np.float32), int(bad.sum())
