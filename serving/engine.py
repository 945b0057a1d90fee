"""What the service runs: the model bundle, its speech encoder and the face pipeline of the library.

An :class:`Engine` is built from a *model folder* (what ``serving.build`` imports into the BentoML
model store)::

    bundle/        the ModelBundle folder (model.safetensors, bundle.json, banks.npz)
    assets/        the face model files (MediaPipe detector + mesh, the FER judge) -> CMET_ASSETS
    serving.json   where the model came from (registry name, version, alias, run id) and its figures

No BentoML here: the service (serving.service) wraps an Engine; tests and the load script can drive it
directly. It takes checked :class:`serving.request.EditRequest` objects.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np

from cmet.errors import ModelError

SERVING_JSON = "serving.json"


class Engine:
    """The loaded model plus the calls the API makes. ``parallel`` bounds the edits that run at once
    (the face runtime's interpreters and the 2-core CPU do not gain from more)."""

    def __init__(self, model_dir: str | Path, device=None, parallel: int = 1, cfg_overrides=None):
        from cmet.config import compose
        from cmet.device import pick_device
        from cmet.model.bundle import ModelBundle

        self.model_dir = Path(model_dir)
        # a serving model folder (bundle/ + assets/ + serving.json) or a bare ModelBundle folder
        bundle_dir = (
            self.model_dir if (self.model_dir / "bundle.json").is_file() else self.model_dir / "bundle"
        )
        if not (bundle_dir / "bundle.json").is_file():
            raise ModelError(
                f"{self.model_dir.name} is neither a serving model folder (bundle/bundle.json) nor a bundle"
            )
        assets = self.model_dir / "assets"
        if assets.is_dir() and any(assets.iterdir()):
            os.environ.setdefault("CMET_ASSETS", str(assets))
        self.device = device if device is not None else pick_device("auto")
        t0 = time.perf_counter()
        self.bundle = ModelBundle.load(bundle_dir, self.device)
        self.load_s = time.perf_counter() - t0
        info = self.model_dir / SERVING_JSON
        self.info = json.loads(info.read_text()) if info.is_file() else {}
        self._sem = threading.BoundedSemaphore(max(1, int(parallel)))
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

    def nearest_basic(self, offsets) -> dict | None:
        """The edit's nearest basic emotion by :func:`cmet.readout.nearest_basic` (the bench's and the model
        card's readout) and its cosine with each basic direction; None for a model without label offsets."""
        from cmet.readout import basic_directions, nearest_basic, readout_scores

        if offsets is None or "label" not in self.bundle.baselines:
            return None
        dirs = basic_directions(self.bundle)
        return {"emotion": nearest_basic(offsets, dirs), "cosine": readout_scores(offsets, dirs)}

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
            "source": _public_source(self.info.get("source")),
            "run_id": self.info.get("run_id"),
            "bento_model": self.info.get("bento_model"),
            "speech_encoder": _jsonable(meta.get("speech_encoder")),
            "emotions": self.emotions,
            "metrics": _jsonable(metrics),
            "device": str(self.device),
        }

    # ---------------------------------------------------------------- speech -> features
    def encoder(self):
        """The speech encoder this bundle was trained with (cmet.audio.encoder_for_bundle); a
        ModelError naming it when it cannot run here."""
        from cmet.audio import encoder_for_bundle

        with self._enc_lock:
            if self._encoder is None:
                self._encoder = encoder_for_bundle(self.bundle)
            return self._encoder

    def speech_features(self, paths, field: str = "target_speech") -> np.ndarray:
        """Speech clips -> [k, D_a] with the bundle's encoder. Silent / corrupt audio: AudioError."""
        try:
            enc = self.encoder()
        except ModelError as e:
            raise ModelError(f"{field}: {e}") from None
        arr = np.asarray(enc.encode_files([Path(p) for p in paths]), np.float32)
        if arr.ndim != 2 or arr.shape[1] != self.d_speech or not np.isfinite(arr).all():
            raise ModelError(
                f"{field}: the speech encoder gave features of shape {tuple(arr.shape)}, "
                f"not finite [k, {self.d_speech}]; send target_features instead"
            )
        return arr

    def resolve(self, target) -> tuple[object, str]:
        """A cmet.target.Target -> (what the model takes, its description): cmet.target.resolve_target."""
        from cmet.target import resolve_target

        if target.kind == "speech":
            feats = self.speech_features(target.speech_paths)
            value, _ = resolve_target(_features_target(feats), self.bundle)
            return value, target.describe()
        return resolve_target(target, self.bundle)

    def resolve_timeline(self, timeline):
        """A cmet.timeline.Timeline -> its ResolvedTimeline (every segment's target resolved, an
        unknown emotion naming its entry): cmet.timeline.resolve_timeline."""
        from cmet.timeline import resolve_timeline

        return resolve_timeline(timeline, self.bundle)

    # ---------------------------------------------------------------- the heavy calls
    def edit(self, req, out_path: Path | None):
        """A checked EditRequest -> cmet.edit.edit_video's EditResult (per-frame codes, timings); the
        mp4 at ``out_path`` when ``req.render``. Non-finite codes: ModelError (never a silent edit)."""
        from cmet.edit import edit_video

        video = req.video.path if req.video is not None else self._still_video(req, out_path)
        with self._sem:
            res = edit_video(
                video,
                req.value,
                bundle=self.bundle,
                cfg=self.cfg,
                out=out_path if req.render else None,
                intensity=req.intensity,
                neutral=req.neutral,
                speech_lips=req.video is None,
            )
        for key in ("offsets", "edited_codes"):
            val = getattr(res, key, None)
            if val is not None and not np.isfinite(np.asarray(val, np.float64)).all():
                raise ModelError(f"the model gave non-finite {key} for this input; nothing was rendered")
        return res

    def _still_video(self, req, out_path: Path) -> Path:
        """A portrait held still for the driving speech's length (25 fps, the speech muxed in); the
        expression is animated by the edit, the lips follow the renderer's video model."""
        import cv2

        from cmet.audio.io import TARGET_SR, load_audio
        from cmet.errors import FaceNotFoundError
        from cmet.media import write_video

        wave, _ = load_audio(req.driving_speech)
        img = cv2.imread(str(req.portrait), cv2.IMREAD_COLOR)
        if img is None:
            raise FaceNotFoundError("portrait: not a readable image")
        h, w = img.shape[:2]
        img = img[: h - h % 2, : w - w % 2, ::-1]  # RGB, even size for H.264
        fps = 25.0
        n = max(int(self.bundle.model_cfg.get("window", 5)), int(round(len(wave) / TARGET_SR * fps)))
        still = Path(out_path).with_name("portrait_still.mp4")
        return write_video(still, np.repeat(img[None], n, axis=0), fps, audio_from=req.driving_speech)


def _features_target(feats: np.ndarray):
    from cmet.target import Target

    return Target(kind="features", features=feats)


def result_codes(result) -> dict:
    """An edit result -> JSON-ready per-frame codes and timings."""
    from cmet.face.facs import AU_NAMES

    out: dict = {"au_names": list(AU_NAMES)}
    for key in ("neutral_codes", "offsets", "edited_codes", "lips", "pose"):
        val = getattr(result, key, None)
        if val is not None:
            out[key] = np.round(np.asarray(val, np.float64), 5).tolist()
    for key in ("fps", "n_frames"):
        val = getattr(result, key, None)
        if val is not None:
            out[key] = _jsonable(val)
    timings = getattr(result, "timings", None)
    if timings:
        out["timings_s"] = {k: round(float(v), 4) for k, v in dict(timings).items()}
    return out


def _public_source(source):
    """The model's source without server paths (a folder becomes its name)."""
    if isinstance(source, str) and source.startswith("/"):
        return Path(source).name
    return source


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
