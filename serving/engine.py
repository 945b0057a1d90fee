"""What the service runs: the model bundle, the speech encoder and the face pipeline of the library.

An :class:`Engine` is built from a *model folder* (what ``serving.build`` imports into the BentoML
model store)::

    bundle/        the ModelBundle folder (model.safetensors, bundle.json, banks.npz)
    assets/        the face model files (MediaPipe detector + mesh, the FER judge) -> CMET_ASSETS
    serving.json   where the model came from (registry name, version, alias, run id) and its figures

No BentoML here: the service (serving.service) wraps an Engine; tests and the load script can drive it
directly. The library calls are lazy imports (cmet.model.bundle, cmet.edit, cmet.audio).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np

from cmet.errors import ModelError
from serving.inputs import Target

SERVING_JSON = "serving.json"


class Engine:
    """The loaded model plus the calls the API makes. ``parallel`` bounds the edits that run at once
    (the face runtime's interpreters and the 2-core CPU do not gain from more)."""

    def __init__(self, model_dir: str | Path, device=None, parallel: int = 1, cfg_overrides=None):
        from cmet.device import pick_device

        self.model_dir = Path(model_dir)
        # a serving model folder (bundle/ + assets/ + serving.json) or a bare ModelBundle folder
        bundle_dir = (
            self.model_dir if (self.model_dir / "bundle.json").is_file() else self.model_dir / "bundle"
        )
        if not (bundle_dir / "bundle.json").is_file():
            raise ModelError(
                f"{self.model_dir} is neither a serving model folder (bundle/bundle.json) nor a bundle"
            )
        assets = self.model_dir / "assets"
        if assets.is_dir() and any(assets.iterdir()):
            os.environ.setdefault("CMET_ASSETS", str(assets))
        self.device = device if device is not None else pick_device("auto")
        from cmet.model.bundle import ModelBundle

        t0 = time.perf_counter()
        self.bundle = ModelBundle.load(bundle_dir, self.device)
        self.load_s = time.perf_counter() - t0
        info = self.model_dir / SERVING_JSON
        self.info = json.loads(info.read_text()) if info.is_file() else {}
        self._sem = threading.BoundedSemaphore(max(1, int(parallel)))
        from cmet.config import compose

        # composed once: Hydra's global state is not for concurrent requests
        self.cfg = compose(list(cfg_overrides or []))
        self._encoder = None
        self._enc_lock = threading.Lock()

    # ---------------------------------------------------------------- what the model knows
    @property
    def emotions(self) -> list[str]:
        """Every emotion that can be asked for by name: the banks (training emotions, extended ones too)."""
        return list(self.bundle.banks)

    @property
    def d_speech(self) -> int:
        return int(self.bundle.d_speech)

    def emotion_counts(self) -> dict[str, int]:
        """{emotion: number of speech clips in its bank}."""
        return {str(e): int(np.asarray(self.bundle.banks[e]).shape[0]) for e in self.bundle.banks}

    def version(self) -> dict:
        meta = dict(getattr(self.bundle, "meta", {}) or {})
        metrics = dict(getattr(self.bundle, "metrics", {}) or {})
        return {
            "model": self.info.get("registered_name", meta.get("name", "cmet")),
            "version": str(self.info.get("version", meta.get("version", "unregistered"))),
            "alias": self.info.get("alias"),
            "source": self.info.get("source"),
            "run_id": self.info.get("run_id"),
            "bento_model": self.info.get("bento_model"),
            "speech_encoder": meta.get("speech_encoder") or meta.get("encoder"),
            "emotions": self.emotions,
            "metrics": _jsonable(metrics),
            "device": str(self.device),
        }

    # ---------------------------------------------------------------- speech -> features
    def speech_features(self, paths, field: str = "target_speech") -> np.ndarray:
        """Speech clips -> [k, D_a] with the speech encoder the bundle was trained with.

        Silent / corrupt / too-short audio raises AudioError (-> 422)."""
        from cmet.audio import get_encoder
        from cmet.audio.encoders import ENCODERS

        audio = self._audio_cfg()
        if audio.get("encoder") not in ENCODERS or audio.get("encoder") == "precomputed":
            raise ModelError(
                f"{field}: this model was trained on speech features from {audio.get('encoder')!r}, which the "
                "service cannot compute from audio here; send precomputed features (target_features / "
                "neutral_features, .npy [k, D]) or pick an emotion by name"
            )
        with self._enc_lock:
            if self._encoder is None:
                self._encoder = get_encoder(audio)
        arr = np.asarray(self._encoder.encode_files([Path(p) for p in paths]), np.float32)
        if arr.ndim != 2 or arr.shape[1] != self.d_speech:
            raise ModelError(
                f"{field}: the speech encoder {getattr(self._encoder, 'name', '?')!r} gives features of shape "
                f"{tuple(arr.shape)}, this model expects [k, {self.d_speech}]; send target_features instead"
            )
        return arr

    def _audio_cfg(self):
        from omegaconf import OmegaConf

        meta = dict(getattr(self.bundle, "meta", {}) or {})
        audio = meta.get("audio")
        if not isinstance(audio, dict):
            enc = meta.get("speech_encoder") or "prosody"
            audio = {"encoder": enc if isinstance(enc, str) else dict(enc).get("encoder", "prosody")}
        return OmegaConf.create(audio)

    def target_value(self, target: Target):
        """A Target -> what the library's inference takes: a name, a {name: weight} blend, or [k, D_a]."""
        if target.kind == "name":
            return target.emotion
        if target.kind == "blend":
            return dict(target.blend)
        if target.kind == "features":
            return target.features
        return self.speech_features(target.speech_paths)

    # ---------------------------------------------------------------- the two heavy calls
    def edit(
        self,
        video: Path,
        target,
        *,
        neutral=None,
        intensity: float = 1.0,
        out_path: Path | None,
        render: bool = True,
    ):
        """Edit a video (render=True -> out_path mp4) or only compute its codes (render=False):
        cmet.edit.edit_video -> EditResult (per-frame codes, per-stage timings)."""
        from cmet.edit import edit_video

        with self._sem:
            return edit_video(
                video,
                target=target,
                bundle=self.bundle,
                out_path=out_path if render else None,
                intensity=intensity,
                neutral=neutral,
                render=render,
                cfg=self.cfg,
            )

    def edit_portrait(
        self,
        portrait: Path,
        speech: Path,
        target,
        *,
        neutral=None,
        intensity: float = 1.0,
        out_path: Path,
        max_s: float = 20.0,
        fps: float = 25.0,
    ):
        """A still portrait + driving speech -> mp4 of the speech's length with the target expression.

        Uses cmet.edit.edit_portrait when the face library has one; otherwise the portrait is held as a
        still video for the speech's duration and edited like a video, with the speech muxed in. In that
        fallback the expression is animated, the lips are not (the renderer takes lip motion from video).
        """
        import cv2

        from cmet import edit as _edit
        from cmet.audio.io import load_audio
        from cmet.errors import FaceNotFoundError
        from cmet.media import write_video

        fn = getattr(_edit, "edit_portrait", None)
        if fn is not None:
            with self._sem:
                return fn(
                    portrait,
                    speech,
                    target=target,
                    bundle=self.bundle,
                    out_path=out_path,
                    intensity=intensity,
                    neutral=neutral,
                )
        wave, _ = load_audio(speech)  # AudioError (422) for silent / corrupt audio
        seconds = len(wave) / 16000.0
        if seconds > max_s:
            from serving.inputs import PayloadTooLargeError

            raise PayloadTooLargeError(f"driving_speech: {seconds:.1f} s is over the limit of {max_s:g} s")
        img = cv2.imread(str(portrait), cv2.IMREAD_COLOR)
        if img is None:
            raise FaceNotFoundError(f"portrait {Path(portrait).name}: not a readable image")
        h, w = img.shape[:2]
        img = img[: h - h % 2, : w - w % 2, ::-1]  # RGB, even size for H.264
        n = max(int(self.bundle.model_cfg.get("window", 5)), int(round(seconds * fps)))
        still = Path(out_path).with_name("portrait_still.mp4")
        write_video(still, np.repeat(img[None], n, axis=0), fps, audio_from=speech)
        return self.edit(still, target, neutral=neutral, intensity=intensity, out_path=out_path)


def result_codes(result) -> dict:
    """An edit result -> JSON-ready per-frame codes and timings."""
    from cmet.face.facs import AU_NAMES

    out: dict = {"au_names": list(AU_NAMES)}
    for key in ("neutral_codes", "codes", "offsets", "edited_codes", "lips", "pose"):
        val = getattr(result, key, None)
        if val is not None:
            out[key] = np.round(np.asarray(val, np.float64), 5).tolist()
    for key in ("fps", "n_frames", "face_found"):
        val = getattr(result, key, None)
        if val is not None:
            out[key] = _jsonable(val)
    timings = getattr(result, "timings", None)
    if timings:
        out["timings_s"] = {k: round(float(v), 4) for k, v in dict(timings).items()}
    return out


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, float | int | str | bool) or x is None:
        return x
    return str(x)
