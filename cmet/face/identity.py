"""Identity kept? dlib's face-recognition ResNet (128-d descriptor) as a metric.

The descriptor model (``dlib_face_recognition_resnet_model_v1``, 99.38% on LFW) and the 5-point
shape predictor it aligns with ship in the ``face-recognition-models`` wheel; the runtime is the
``dlib-bin`` wheel. Nothing is downloaded at run time. Two faces are the same person for dlib
when their descriptors are closer than :data:`SAME_PERSON` (Euclidean distance).

An edit is compared frame by frame with its own input (same frame index, same face box: the box
the HOG detector finds on the *input* frame, so the detector's jitter is not counted as identity
change); :func:`natural_variation` is the same distance inside the input between frames ``lag_s``
apart (what talking and head motion alone change).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmet.errors import FaceNotFoundError, ModelError

#: dlib's same-person threshold on the descriptor distance
SAME_PERSON = 0.6


def _model_file(name: str) -> Path:
    """A file of the ``face-recognition-models`` wheel (found without importing the package: its
    ``__init__`` needs ``pkg_resources``, absent from a modern setuptools-free venv)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the identity metric needs the wheel face-recognition-models (pip install "
            "face-recognition-models dlib-bin; both are project dependencies)"
        )
    p = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not p.is_file():
        raise ModelError(f"face-recognition-models has no {name} (reinstall the wheel)")
    return p


@functools.lru_cache(maxsize=1)
def _dlib_models():
    try:
        import dlib
    except ImportError as e:
        raise ModelError(f"the identity metric needs dlib (pip install dlib-bin): {e}") from None
    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(_model_file("shape_predictor_5_face_landmarks.dat")))
    rec = dlib.face_recognition_model_v1(str(_model_file("dlib_face_recognition_resnet_model_v1.dat")))
    return dlib, det, sp, rec


Box = tuple[int, int, int, int]  # left, top, right, bottom (pixels)


def face_box(img: np.ndarray, landmarks: np.ndarray | None = None, name: str = "image") -> Box:
    """The largest HOG-detected face of img [H, W, 3] uint8 RGB; without a detection, the box
    of ``landmarks`` [468, 2|3] (FaceMesh) when given, else FaceNotFoundError."""
    dlib, det, _, _ = _dlib_models()
    rects = det(np.ascontiguousarray(img), 1)
    if len(rects):
        r = max(rects, key=lambda r: r.width() * r.height())
        return (r.left(), r.top(), r.right(), r.bottom())
    if landmarks is not None:
        lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
        return (int(lo[0]), int(lo[1] + 0.15 * (hi[1] - lo[1])), int(hi[0]), int(hi[1]))
    raise FaceNotFoundError(f"{name}: dlib finds no face")


def descriptor(img: np.ndarray, box: Box) -> np.ndarray:
    """img [H, W, 3] uint8 RGB + face box -> [128] float32 descriptor (5-point aligned chip)."""
    dlib, _, sp, rec = _dlib_models()
    img = np.ascontiguousarray(img, dtype=np.uint8)
    shape = sp(img, dlib.rectangle(*[int(v) for v in box]))
    return np.asarray(rec.compute_face_descriptor(img, shape), np.float32)


def descriptors(frames: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """frames [T, H, W, 3] + one box per frame -> [T, 128]."""
    return np.stack([descriptor(f, b) for f, b in zip(frames, boxes, strict=True)])


def boxes_for(frames: np.ndarray, landmarks: np.ndarray | None = None) -> list[Box]:
    """One face box per frame [T, H, W, 3] (landmarks [T, 468, 2|3] as the fallback)."""
    return [
        face_box(f, None if landmarks is None else landmarks[i], f"frame {i}") for i, f in enumerate(frames)
    ]


@dataclass(frozen=True)
class Reference:
    """The input side of a comparison: face boxes and descriptors [T, 128] of the input frames."""

    boxes: list[Box]
    desc: np.ndarray

    @classmethod
    def of(cls, frames: np.ndarray, landmarks: np.ndarray | None = None) -> Reference:
        boxes = boxes_for(frames, landmarks)
        return cls(boxes, descriptors(frames, boxes))

    def distances(self, frames_out: np.ndarray) -> np.ndarray:
        """Descriptor distance of each edited frame [T, H, W, 3] to its input frame: [T]."""
        if len(frames_out) != len(self.boxes):
            raise ValueError(f"{len(self.boxes)} input frames vs {len(frames_out)} edited frames")
        return np.linalg.norm(self.desc - descriptors(frames_out, self.boxes), axis=1)


def identity_distances(
    frames_in: np.ndarray, frames_out: np.ndarray, landmarks: np.ndarray | None = None
) -> np.ndarray:
    """Descriptor distance of each edited frame to the same input frame: [T] (boxes from the input)."""
    return Reference.of(frames_in, landmarks).distances(frames_out)


def natural_variation(
    frames: np.ndarray, fps: float, lag_s: float = 2.0, landmarks: np.ndarray | None = None, stride: int = 5
) -> np.ndarray:
    """Descriptor distance between frames ``lag_s`` apart inside one video [T, H, W, 3] -> [n]."""
    lag = max(1, int(round(lag_s * fps)))
    idx = np.arange(0, max(0, len(frames) - lag), max(1, stride))
    if len(idx) == 0:
        return np.zeros(0, np.float32)
    both = np.concatenate([idx, idx + lag])
    lm = None if landmarks is None else landmarks[both]
    d = descriptors(frames[both], boxes_for(frames[both], lm))
    return np.linalg.norm(d[: len(idx)] - d[len(idx) :], axis=1)
