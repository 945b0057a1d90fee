"""The paper's speech space (emotion2vec+large, 1024-d): vectors read beside the audio, or computed.

* :class:`PrecomputedEncoder` (``audio.encoder=precomputed``): the authors' layout. A path may be an
  audio file with ``<feature_subdir>/<stem>.npy`` beside it, a ``.npy`` vector itself, or a folder of
  either (its audio files, else its ``.npy`` files). An audio file without its vector goes to the raw
  encoder of ``audio.raw`` (emotion2vec through FunASR, or the student) if one is configured; otherwise
  one :class:`~cmet.errors.ModelError` says what to install or which vectors to pass.
* :class:`Emotion2VecEncoder` (``audio.encoder=emotion2vec``): emotion2vec through FunASR (optional extra
  ``pip install -e '.[emotion2vec]'``), from a local model folder in FunASR's own format (``config.yaml``
  + ``model.pt`` [+ ``tokens.txt``]) or, on a machine with internet, FunASR's own download of
  ``audio.model`` (e.g. ``iic/emotion2vec_plus_large``).

``audio.raw``: ``emotion2vec`` | ``e2v_student`` | ``auto`` (emotion2vec when FunASR is installed and
``audio.model_dir`` or ``$CMET_EMOTION2VEC_DIR`` names a local model folder, else the student encoder when
its weights ship, else none) | null (none).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cmet.audio.encoders import SpeechEncoder, _get
from cmet.errors import ConfigError, ModelError

FEATURE_SUBDIR = "emotion2vec+large_features"
E2V_NAME = "emotion2vec+large"
E2V_DIM = 1024


def raw_speech_help(dim: int = E2V_DIM, subdir: str = FEATURE_SUBDIR) -> str:
    """What to do when raw speech cannot be encoded into the emotion2vec space here."""
    return (
        f"to encode raw speech into the model's emotion2vec+large space ({dim}-d) install FunASR "
        f"(pip install -e '.[emotion2vec]') and set audio.raw=emotion2vec with audio.model_dir = a local "
        f"emotion2vec+large folder; or pass the clips' {dim}-d vectors instead: .npy files, or audio files "
        f"with {subdir}/<name>.npy beside them (the authors' layout)"
    )


class Emotion2VecEncoder(SpeechEncoder):
    """emotion2vec through FunASR: utterance embedding (mean over frames) of each 16 kHz wave."""

    def __init__(self, cfg=None) -> None:
        super().__init__(cfg)
        try:
            from funasr import AutoModel
        except ImportError as e:
            raise ModelError(
                f"the emotion2vec encoder needs FunASR ({e}); {raw_speech_help(int(self.cfg.get('dim', E2V_DIM)))}"
            ) from None
        from cmet.device import pick_device

        folder = self.cfg.get("model_dir")
        if folder:
            if not (Path(folder) / "config.yaml").is_file() or not (Path(folder) / "model.pt").is_file():
                raise ConfigError(
                    f"audio.model_dir={folder!r} is not an emotion2vec model folder in FunASR's format "
                    "(config.yaml + model.pt)"
                )
            model, hub = str(folder), "ms"
        else:
            model, hub = str(self.cfg.get("model") or "iic/emotion2vec_plus_large"), self.cfg.get("hub", "ms")
        device = str(pick_device(self.cfg.get("device", "auto") or "auto"))
        try:
            self.model = AutoModel(
                model=model, hub=hub, disable_update=True, device=device, log_level="ERROR"
            )
        except Exception as e:  # FunASR raises bare AssertionError/OSError for a missing or broken model
            raise ModelError(f"FunASR could not load the emotion2vec model {model!r}: {e}") from e
        conf = getattr(self.model, "kwargs", {}).get("model_conf", {}) or {}
        self.dim = int(conf.get("embed_dim", self.cfg.get("dim", E2V_DIM)))
        self.name = str(self.cfg.get("name") or f"emotion2vec-{Path(model).name}")
        self.min_samples = int(self.cfg.get("min_samples", 1600))

    def encode(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        waves = self.check(waves)
        out = []
        for w in waves:
            res = self.model.generate(w, granularity="utterance", extract_embedding=True, disable_pbar=True)
            out.append(np.asarray(res[0]["feats"], dtype=np.float32).reshape(-1))
        return np.stack(out) if out else np.zeros((0, self.dim), np.float32)


class PrecomputedEncoder(SpeechEncoder):
    """Vectors computed elsewhere (the authors' layout), with an optional raw-speech encoder for the rest."""

    def __init__(self, cfg=None, raw: SpeechEncoder | None = None) -> None:
        super().__init__(cfg)
        self.subdir = str(self.cfg.get("feature_subdir", FEATURE_SUBDIR))
        self.name = f"precomputed-{self.subdir}"
        self.dim = int(self.cfg.get("dim") or 0)  # 0: the width of the first vector read
        self._raw = raw

    @classmethod
    def from_spec(cls, spec, audio_cfg=None) -> PrecomputedEncoder:
        """The encoder of a model whose speech space is precomputed vectors (``spec``: an EncoderSpec);
        raw speech through ``audio_cfg.raw`` (default ``auto``)."""
        cfg = {
            "feature_subdir": spec.config.get("feature_subdir", FEATURE_SUBDIR),
            "dim": spec.dim,
            "raw": "auto",
        }
        for k in ("raw", "model_dir", "model", "hub", "device"):
            if _get(audio_cfg, k) is not None:
                cfg[k] = _get(audio_cfg, k)
        enc = cls(cfg)
        enc.name = spec.name
        return enc

    def _raw_kind(self) -> str | None:
        kind = self.cfg.get("raw")
        if kind != "auto":
            return kind or None
        import importlib.util
        import os

        folder = self.cfg.get("model_dir") or os.environ.get("CMET_EMOTION2VEC_DIR")
        if folder and Path(folder).is_dir() and importlib.util.find_spec("funasr") is not None:
            self.cfg["model_dir"] = str(folder)
            return "emotion2vec"
        from cmet.audio import student

        return "e2v_student" if student.shipped(self.dim) else None

    @property
    def raw(self) -> SpeechEncoder | None:
        """The encoder for audio without a vector beside it (``audio.raw``), built on first use."""
        kind = None if self._raw is not None else self._raw_kind()
        if kind:
            if kind == "precomputed":
                raise ConfigError("audio.raw cannot be precomputed")
            from cmet.audio.encoders import get_encoder

            self._raw = get_encoder({**self.cfg, "encoder": kind})
            if self._raw.dim != self.dim:
                raise ModelError(
                    f"audio.raw={kind} gives {self._raw.dim}-d vectors; the precomputed space is {self.dim}-d"
                )
        return self._raw

    def _raw_or_error(self, what: str) -> SpeechEncoder:
        enc = self.raw
        if enc is None:
            raise ModelError(f"{what}; {raw_speech_help(self.dim or E2V_DIM, self.subdir)}")
        return enc

    def encode(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        return self._raw_or_error(
            f"{len(waves)} raw wave(s) have no precomputed {self.subdir} vectors"
        ).encode(waves)

    def encode_files(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Files or folders -> [N, D] (N after folders are expanded)."""
        from cmet.audio.io import speech_files
        from cmet.data.release import load_feature

        files = speech_files(paths)
        out: list[np.ndarray | None] = []
        todo: list[int] = []
        for i, p in enumerate(files):
            beside = p.parent / self.subdir / f"{p.stem}.npy"
            if p.suffix.lower() == ".npy" or beside.is_file():
                out.append(load_feature(p if p.suffix.lower() == ".npy" else beside, self.dim or None))
                self.dim = self.dim or int(out[-1].shape[0])
            else:
                out.append(None)
                todo.append(i)
        if todo:
            first = files[todo[0]]
            enc = self._raw_or_error(
                f"{first.name}: no {self.subdir}/{first.stem}.npy beside it ({len(todo)} clip(s) without vectors)"
            )
            for i, v in zip(todo, enc.encode_files([files[i] for i in todo]), strict=True):
                out[i] = np.asarray(v, np.float32)
        return np.stack(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)


__all__ = ["Emotion2VecEncoder", "PrecomputedEncoder", "raw_speech_help"]
