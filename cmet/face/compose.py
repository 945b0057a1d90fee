"""One resampling per output pixel: a renderer's working-image warp composed onto the frame it edits.

A renderer works on a face crop at a working size (:class:`cmet.face.crop.FaceCrop`), but the
frame it edits is read once, at its own resolution: the piecewise-affine inverse map the renderer
builds in working pixels (cheap: the working size) is converted to frame pixels and upsampled
(bilinear: the map is piecewise linear and continuous, so this is exact inside the triangles), and
the frame is sampled through it with a bicubic kernel (:func:`sample`). No second resampling (a
crop cut, warped, then pasted back), so the skin's pores, the lip lines and the teeth edges the
source frame has are carried into the output at its resolution.

:class:`View` says where the working image sits in the frame: working pixel ``c`` is frame pixel
``(c + 0.5) / k - 0.5 + origin`` (the crop's own mapping, :meth:`cmet.face.crop.FaceCrop.to_crop`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the kernel the frame is read with where the warp moves it (OpenCV's 4x4 bicubic, a = -0.75)
KERNEL = "cubic"


@dataclass(frozen=True)
class View:
    """A frame [H, W, 3] uint8 (edited in place) and the working image's place in it: working pixel
    ``c`` = frame pixel ``(c + 0.5) / k - 0.5 + (x0, y0)``."""

    frame: np.ndarray
    x0: float = 0.0
    y0: float = 0.0
    k: float = 1.0

    @property
    def identity(self) -> bool:
        return self.k == 1.0 and self.x0 == 0.0 and self.y0 == 0.0

    def to_frame(self, p: np.ndarray) -> np.ndarray:
        """Working pixels [..., >=2] -> frame pixels (a copy; a third column is scaled alike)."""
        q = np.array(p, np.float32, copy=True)
        q[..., 0] = (q[..., 0] + 0.5) / self.k - 0.5 + self.x0
        q[..., 1] = (q[..., 1] + 0.5) / self.k - 0.5 + self.y0
        if q.shape[-1] > 2:
            q[..., 2] /= self.k
        return q

    def frame_box(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
        """Working box (x0, y0, x1, y1) -> the frame box covering it, clipped to the frame (None: off it)."""
        H, W = self.frame.shape[:2]
        bx0, by0, bx1, by1 = box
        if self.identity:
            x0, y0, x1, y1 = max(0, bx0), max(0, by0), min(W, bx1), min(H, by1)
            return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)
        x0 = max(0, int(np.floor(bx0 / self.k + self.x0 - 0.5)))
        y0 = max(0, int(np.floor(by0 / self.k + self.y0 - 0.5)))
        x1 = min(W, int(np.ceil(bx1 / self.k + self.x0 - 0.5)) + 1)
        y1 = min(H, int(np.ceil(by1 / self.k + self.y0 - 0.5)) + 1)
        return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)

    def upsample(
        self, arr: np.ndarray, box: tuple[int, int, int, int], fbox: tuple[int, int, int, int]
    ) -> np.ndarray:
        """``arr`` [h, w, (C<=4)] float32 given on the working box ``box`` -> its bilinear reading on
        the frame box ``fbox`` [fh, fw, (C)] (outside ``box``: its edge values)."""
        import cv2

        if self.identity and box == fbox:
            return arr
        fx0, fy0, fx1, fy1 = fbox
        gx = ((np.arange(fx0, fx1, dtype=np.float32) - self.x0 + 0.5) * self.k - 0.5 - box[0])[None, :]
        gy = ((np.arange(fy0, fy1, dtype=np.float32) - self.y0 + 0.5) * self.k - 0.5 - box[1])[:, None]
        shape = (fy1 - fy0, fx1 - fx0)
        gx, gy = np.broadcast_to(gx, shape).copy(), np.broadcast_to(gy, shape).copy()
        return cv2.remap(arr, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def frame_maps(view: View, mx: np.ndarray, my: np.ndarray, box: tuple[int, int, int, int]):
    """An inverse map in working pixels on the working box ``box`` (mx, my [h, w]: the working
    source coordinates of each working target pixel) -> (frame box, MX, MY [fh, fw] float32: the frame
    source coordinates of each frame pixel in it), or None when the box is off the frame."""
    fbox = view.frame_box(box)
    if fbox is None:
        return None
    if view.identity:
        x0, y0, x1, y1 = fbox
        sx, sy = x0 - box[0], y0 - box[1]
        return fbox, mx[sy : sy + y1 - y0, sx : sx + x1 - x0], my[sy : sy + y1 - y0, sx : sx + x1 - x0]
    m = np.dstack([(mx + 0.5) / view.k - 0.5 + view.x0, (my + 0.5) / view.k - 0.5 + view.y0]).astype(
        np.float32
    )
    up = view.upsample(m, box, fbox)
    return fbox, np.ascontiguousarray(up[..., 0]), np.ascontiguousarray(up[..., 1])


def sample(src: np.ndarray, MX: np.ndarray, MY: np.ndarray, kernel: str = KERNEL) -> np.ndarray:
    """src [H, W, 3] uint8 read once at the frame coordinates (MX, MY) [h, w] -> [h, w, 3] uint8
    (``kernel``: "cubic", or "linear" for a cheap preview)."""
    import cv2

    interp = cv2.INTER_CUBIC if kernel == "cubic" else cv2.INTER_LINEAR
    return cv2.remap(src, MX, MY, interp, borderMode=cv2.BORDER_REPLICATE)
