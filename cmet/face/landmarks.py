"""Face detection and 468-point FaceMesh landmarks with the MediaPipe models under ai-edge-litert.

* Detection: BlazeFace short range (128x128 input, 896 SSD anchors on strides 8/16/16/16 with
  2/6 anchors a cell, fixed anchor size; regressors = box centre/size + 6 keypoints in input
  pixels). The image is letterboxed to a square, scores pass a sigmoid, boxes a weighted NMS.
* Landmarks: FaceMesh (192x192 RGB in [0, 1]) on a crop rotated so that the eyes are level,
  the box enlarged 1.5x (the MediaPipe ROI rule). Output: [468, 3] in image pixels (z in the
  same pixel scale, relative to the face centre).
* Video: after the first frame the ROI comes from the previous frame's landmarks (tracking); the
  detector runs again when the face-presence score drops. A One-Euro filter smooths the tracks.

Nothing here imports mediapipe; the .tflite files come from :mod:`cmet.face.assets`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmet.errors import FaceNotFoundError

N_LANDMARKS = 468
# FaceMesh indices used across the face package (subject's right = image left for a frontal face)
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_OUTER = 33, 133, 362, 263
UPPER_LIP_INNER, LOWER_LIP_INNER, MOUTH_RIGHT, MOUTH_LEFT = 13, 14, 61, 291


def _anchors() -> np.ndarray:
    """BlazeFace short-range SSD anchors: [896, 2] centres in [0, 1]."""
    out = []
    for stride, n in ((8, 2), (16, 6)):
        cells = 128 // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        c = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 1, 2)
        out.append(np.repeat(c, n, axis=1).reshape(-1, 2))
    a = np.concatenate(out).astype(np.float32)
    assert a.shape == (896, 2)
    return a


@dataclass
class Detection:
    box: np.ndarray  # [4] x0, y0, x1, y1 in image pixels
    keypoints: np.ndarray  # [6, 2] right eye, left eye, nose, mouth, right ear, left ear (pixels)
    score: float


def _interpreter(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    return it


class FaceMesh:
    """Detector + landmark model. ``mesh(frame_rgb) -> [468, 3]``; ``track(frames)`` for video."""

    def __init__(self, min_score: float = 0.5, presence: float = 0.5, tta: int = 1):
        """``tta``: landmarks averaged over this many slightly shifted/scaled/rotated crops of the
        face (test-time augmentation). FaceMesh's output moves by ~0.005 inter-ocular distances
        with the crop's sub-pixel placement -- as much as a small action unit moves the lips; the
        mean of 8 crops halves that jitter at 8x the landmark cost (~2 ms a crop here)."""
        from cmet.face.assets import model_path

        self.det = _interpreter(model_path("face_detection_short_range.tflite"))
        self.lmk = _interpreter(model_path("face_landmark.tflite"))
        self.anchors = _anchors()
        self.min_score = min_score
        self.presence = presence
        self.tta = max(1, int(tta))
        # fixed jitter set (deterministic): (dx, dy) in crop sizes, scale, rotation (rad)
        rng = np.random.default_rng(0)
        self._jitter = [(0.0, 0.0, 1.0, 0.0)] + [
            (
                rng.uniform(-0.03, 0.03),
                rng.uniform(-0.03, 0.03),
                rng.uniform(0.94, 1.06),
                rng.uniform(-0.05, 0.05),
            )
            for _ in range(self.tta - 1)
        ]

    # -- detection ------------------------------------------------------------------------
    def detect(self, img: np.ndarray) -> list[Detection]:
        """All faces in an RGB uint8 image [H, W, 3], best first."""
        import cv2

        h, w = img.shape[:2]
        s = max(h, w)
        pad = np.zeros((s, s, 3), np.uint8)
        oy, ox = (s - h) // 2, (s - w) // 2
        pad[oy : oy + h, ox : ox + w] = img
        x = cv2.resize(pad, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1.0
        d = self.det.get_input_details()[0]["index"]
        self.det.set_tensor(d, x[None])
        self.det.invoke()
        outs = {o["name"]: self.det.get_tensor(o["index"])[0] for o in self.det.get_output_details()}
        reg, cls = outs["regressors"], outs["classificators"][:, 0]
        score = 1.0 / (1.0 + np.exp(-np.clip(cls.astype(np.float64), -100, 100)))
        keep = np.where(score >= self.min_score)[0]
        if keep.size == 0:
            return []
        r = reg[keep] / 128.0
        a = self.anchors[keep]
        cx, cy = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1]
        bw, bh = r[:, 2], r[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)
        kps = r[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
        sc = score[keep]
        # weighted NMS
        order = np.argsort(-sc)
        used = np.zeros(len(order), bool)
        dets = []
        for i_pos, i in enumerate(order):
            if used[i_pos]:
                continue
            ious = _iou(boxes[i], boxes[order])
            grp = (ious > 0.3) & ~used
            used |= grp
            wgt = sc[order][grp][:, None]
            b = (boxes[order][grp] * wgt).sum(0) / wgt.sum()
            k = (kps[order][grp] * wgt[:, :, None]).sum(0) / wgt.sum()
            to_px = lambda p: p * s - np.array([ox, oy], np.float32)  # noqa: E731
            bpx = np.concatenate([to_px(b[:2]), to_px(b[2:])])
            dets.append(Detection(bpx, to_px(k), float(sc[i])))
        return dets

    # -- landmarks ------------------------------------------------------------------------
    def _roi_landmarks(self, img: np.ndarray, center, size: float, angle: float):
        """FaceMesh on a rotated square ROI, averaged over the ``tta`` jittered crops around it;
        returns ([468, 3] pixels, presence score of the unjittered crop)."""
        if self.tta == 1:
            return self._roi_landmarks_once(img, center, size, angle)
        runs = [
            self._roi_landmarks_once(
                img, (center[0] + dx * size, center[1] + dy * size), size * sc, angle + da
            )
            for dx, dy, sc, da in self._jitter
        ]
        return np.mean([p for p, _ in runs], 0).astype(np.float32), runs[0][1]

    def _roi_landmarks_once(self, img: np.ndarray, center, size: float, angle: float):
        """Run FaceMesh on a rotated square ROI; returns ([468, 3] pixels, presence score)."""
        import cv2

        c, sn = np.cos(angle), np.sin(angle)
        # maps ROI pixel (u, v) in [0, 192) to image: p = center + R @ ((u, v) - 96) * size / 192
        k = size / 192.0
        A = np.array([[c * k, -sn * k], [sn * k, c * k]], np.float32)
        t = np.asarray(center, np.float32) - A @ np.array([96.0, 96.0], np.float32)
        M = np.concatenate([A, t[:, None]], 1)
        crop = cv2.warpAffine(
            img, M, (192, 192), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        x = crop.astype(np.float32) / 255.0
        self.lmk.set_tensor(self.lmk.get_input_details()[0]["index"], x[None])
        self.lmk.invoke()
        outs = {o["name"]: self.lmk.get_tensor(o["index"]) for o in self.lmk.get_output_details()}
        pts = outs["conv2d_21"].reshape(N_LANDMARKS, 3)
        pres = float(1.0 / (1.0 + np.exp(-outs["conv2d_31"].reshape(-1)[0])))
        xy = pts[:, :2] @ A.T + t
        z = pts[:, 2:3] * k
        return np.concatenate([xy, z], 1).astype(np.float32), pres

    @staticmethod
    def _roi_from_detection(d: Detection):
        re, le = d.keypoints[0], d.keypoints[1]
        angle = float(np.arctan2(le[1] - re[1], le[0] - re[0]))
        center = (d.box[:2] + d.box[2:]) / 2
        size = float(max(d.box[2] - d.box[0], d.box[3] - d.box[1]) * 1.5)
        return center, size, angle

    @staticmethod
    def _roi_from_landmarks(p: np.ndarray):
        re, le = p[RIGHT_EYE_OUTER, :2], p[LEFT_EYE_OUTER, :2]
        angle = float(np.arctan2(le[1] - re[1], le[0] - re[0]))
        c, s = np.cos(-angle), np.sin(-angle)
        R = np.array([[c, -s], [s, c]])
        q = p[:, :2] @ R.T
        lo, hi = q.min(0), q.max(0)
        center = ((lo + hi) / 2) @ R  # back to image frame
        size = float(max(hi - lo) * 1.5)
        return center, size, angle

    def mesh(self, img: np.ndarray, name: str = "image", refine: bool = True) -> np.ndarray:
        """Landmarks of the most confident face of an RGB uint8 image: [468, 3] float32 pixels.

        Raises FaceNotFoundError (naming ``name``) when there is no face.
        """
        img = _as_rgb(img, name)
        dets = self.detect(img)
        if not dets:
            raise FaceNotFoundError(f"no face found in {name}")
        first = self._roi_landmarks_once if refine else self._roi_landmarks
        pts, pres = first(img, *self._roi_from_detection(dets[0]))
        if pres < self.presence:
            raise FaceNotFoundError(f"no face found in {name} (landmark presence {pres:.2f})")
        if refine:  # second pass on the ROI from the landmarks themselves (tighter, level eyes)
            p2, pres2 = self._roi_landmarks(img, *self._roi_from_landmarks(pts))
            if pres2 >= self.presence:
                pts = p2
        return pts

    def track(self, frames, name: str = "video", smooth: bool = True, progress: bool = False) -> np.ndarray:
        """Landmarks for every frame of a video: [T, 468, 3]. Smoothed with a One-Euro filter."""
        out = []
        prev = None
        it = frames
        if progress:
            from tqdm import tqdm

            it = tqdm(frames, desc="landmarks", unit="frame", leave=False)
        for i, f in enumerate(it):
            f = _as_rgb(f, f"{name} frame {i}")
            pts = None
            if prev is not None:
                p, pres = self._roi_landmarks(f, *self._roi_from_landmarks(prev))
                if pres >= self.presence:
                    pts = p
            if pts is None:
                try:
                    pts = self.mesh(f, name=f"{name} (frame {i})")
                except FaceNotFoundError:
                    if prev is None:
                        raise FaceNotFoundError(f"no face found in {name} (frame {i})") from None
                    pts = prev  # a lost frame keeps the last landmarks
            out.append(pts)
            prev = pts
        if not out:
            raise FaceNotFoundError(f"no frames in {name}")
        arr = np.stack(out)
        if smooth:
            arr = one_euro(arr)
        return arr


def _as_rgb(img, name: str) -> np.ndarray:
    from cmet.errors import DataError

    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, 2)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.shape[0] < 16 or img.shape[1] < 16:
        raise DataError(f"{name}: expected an RGB image [H, W, 3], got shape {img.shape}")
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img[:, :, :3])


def _iou(b: np.ndarray, bs: np.ndarray) -> np.ndarray:
    x0 = np.maximum(b[0], bs[:, 0])
    y0 = np.maximum(b[1], bs[:, 1])
    x1 = np.minimum(b[2], bs[:, 2])
    y1 = np.minimum(b[3], bs[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda q: (q[..., 2] - q[..., 0]) * (q[..., 3] - q[..., 1])  # noqa: E731
    return inter / (area(b) + area(bs) - inter + 1e-9)


def one_euro(
    x: np.ndarray, fps: float = 25.0, min_cutoff: float = 1.5, beta: float = 0.05, d_cutoff: float = 1.0
) -> np.ndarray:
    """One-Euro filter along axis 0 of a track [T, ...] (Casiez et al. 2012): little lag on fast
    motion, strong smoothing of jitter at rest. Speed is measured per element."""
    x = np.asarray(x, np.float64)
    if len(x) < 2:
        return x.astype(np.float32)

    def alpha(cutoff):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau * fps)

    y = np.empty_like(x)
    y[0] = x[0]
    dx_prev = np.zeros_like(x[0])
    for t in range(1, len(x)):
        dx = (x[t] - y[t - 1]) * fps
        a_d = alpha(d_cutoff)
        dx_hat = a_d * dx + (1 - a_d) * dx_prev
        cutoff = min_cutoff + beta * np.abs(dx_hat)
        a = alpha(cutoff)
        y[t] = a * x[t] + (1 - a) * y[t - 1]
        dx_prev = dx_hat
    return y.astype(np.float32)


def inter_ocular(p: np.ndarray) -> float | np.ndarray:
    """Distance between the outer eye corners (pixels) of [468, 2|3] or [T, 468, 2|3]."""
    return np.linalg.norm(p[..., RIGHT_EYE_OUTER, :2] - p[..., LEFT_EYE_OUTER, :2], axis=-1)


def mouth_opening(p: np.ndarray) -> np.ndarray:
    """Inner-lip gap / inter-ocular distance of [..., 468, 2|3] -> [...]."""
    gap = np.linalg.norm(p[..., UPPER_LIP_INNER, :2] - p[..., LOWER_LIP_INNER, :2], axis=-1)
    return gap / inter_ocular(p)
