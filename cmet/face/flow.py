"""Landmarks refined by dense optical flow from the person's neutral reference image.

FaceMesh (the 468-point model that runs here) reports a face's *shape* well but under-reports
how far the lips, lids and cheeks move: its shape prior pulls the points back (a mouth corner
the image shows 9 px further in is reported ~1 px in; see ``cmet face
roundtrip --landmarks facemesh``). The renderer and real muscles move *pixels*, so the motion of
each vertex is measured where the pixels are: dense optical flow (OpenCV DIS) from the neutral
reference to the frame, sampled at the reference's landmarks.

Per frame: (1) FaceMesh gives the frame's landmarks; a 2-D similarity on the rigid vertices maps
the frame into the reference's pose (so head motion is not flow); (2) the face box of both is
cropped, converted to a lip-contrast channel (L + ``lip_contrast`` x (a* - 128) of CIE Lab: the
lips are redder than the skin, not darker) and upsampled ``upscale`` x (sub-pixel accuracy for
small motions); (3) DIS flow reference -> frame, sampled at the reference landmarks; (4) back to
the frame's pose. Depth (z) stays FaceMesh's. Costs ~8 ms a frame on 256 px faces here.
"""

from __future__ import annotations

import numpy as np

from cmet.face.expression import RIGID, _umeyama


def _channel(img: np.ndarray, lip_contrast: float) -> np.ndarray:
    import cv2

    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).astype(np.float32)
    return np.clip(lab[..., 0] + lip_contrast * (lab[..., 1] - 128.0), 0, 255).astype(np.uint8)


class FlowRefiner:
    """Refines a frame's FaceMesh landmarks by optical flow from one neutral reference image.

    reference [H, W, 3] RGB uint8 and its landmarks [468, 3] (pixels)."""

    def __init__(
        self,
        reference: np.ndarray,
        reference_landmarks: np.ndarray,
        upscale: float = 2.0,
        lip_contrast: float = 2.0,
        margin: float = 0.15,
    ):
        import cv2

        self.ref_lm = np.asarray(reference_landmarks, np.float32)
        self.upscale = float(upscale)
        self.lip_contrast = float(lip_contrast)
        h, w = reference.shape[:2]
        lo, hi = self.ref_lm[:, :2].min(0), self.ref_lm[:, :2].max(0)
        pad = margin * (hi - lo)
        self.x0, self.y0 = (np.floor(lo - pad).astype(int)).clip(0, None)
        self.x1, self.y1 = int(min(w, np.ceil(hi[0] + pad[0]))), int(min(h, np.ceil(hi[1] + pad[1])))
        self.ref_ch = self._prep(reference)
        self.at = ((self.ref_lm[:, :2] - [self.x0, self.y0]) * self.upscale).astype(np.float32)
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def _prep(self, img: np.ndarray) -> np.ndarray:
        import cv2

        c = _channel(np.ascontiguousarray(img[self.y0 : self.y1, self.x0 : self.x1]), self.lip_contrast)
        if self.upscale != 1:
            c = cv2.resize(c, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_CUBIC)
        return c

    def refine(self, img: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """frame [H, W, 3] RGB uint8 + its FaceMesh landmarks [468, 3] -> refined [468, 3] pixels."""
        import cv2

        lm = np.asarray(landmarks, np.float64)
        # frame -> reference pose: 2-D similarity on the rigid vertices
        s, R, t = _umeyama(
            np.c_[lm[RIGID, :2], np.zeros(len(RIGID))], np.c_[self.ref_lm[RIGID, :2], np.zeros(len(RIGID))]
        )
        A = np.c_[s * R[:2, :2], t[:2]]  # [2, 3] frame px -> reference px
        H, W = img.shape[:2]
        same = np.allclose(A, [[1, 0, 0], [0, 1, 0]], atol=1e-3)
        warped = (
            img
            if same
            else cv2.warpAffine(img, A, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        )
        f = self.dis.calc(self.ref_ch, self._prep(warped), None)
        fx = cv2.remap(f[..., 0], self.at[:, 0:1], self.at[:, 1:2], cv2.INTER_LINEAR)[:, 0]
        fy = cv2.remap(f[..., 1], self.at[:, 0:1], self.at[:, 1:2], cv2.INTER_LINEAR)[:, 0]
        p_ref = self.ref_lm[:, :2].astype(np.float64) + np.stack([fx, fy], 1) / self.upscale
        # back to the frame's pose
        Ainv = cv2.invertAffineTransform(A)
        p = p_ref @ Ainv[:, :2].T + Ainv[:, 2]
        out = lm.copy()
        out[:, :2] = p
        return out.astype(np.float32)


class RefinedMesh:
    """A landmark model with ``mesh(img, name)`` like :class:`cmet.face.landmarks.FaceMesh`:
    FaceMesh, then :class:`FlowRefiner` from the identity's neutral ``reference`` image."""

    def __init__(self, mesher, reference: np.ndarray, reference_landmarks: np.ndarray | None = None, **kw):
        self.mesher = mesher
        lm = mesher.mesh(reference, "reference") if reference_landmarks is None else reference_landmarks
        self.refiner = FlowRefiner(reference, lm, **kw)

    def mesh(self, img: np.ndarray, name: str = "image") -> np.ndarray:
        return self.refiner.refine(img, self.mesher.mesh(img, name))
