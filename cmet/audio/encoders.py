"""Speech encoders behind one interface, chosen by ``cfg.audio.encoder``.

``get_encoder(cfg.audio) -> SpeechEncoder`` with ``.name``, ``.dim`` and
``.encode(list of 16 kHz mono waves) -> [N, D] float32`` (one utterance embedding a clip; the
whole list is encoded in one pass, batched inside):

* ``prosody`` (the offline default): :mod:`cmet.audio.prosody`, a prosodic + spectral +
  voice-quality descriptor; numpy/scipy only, no weights. Chosen on the evidence of the issue
  (emotion2vec+large 87/91/91 % at k=1/3/5, Whisper tiny.en 29/35/42 %, eGeMAPS 24/28/30 % with a
  research-only licence, log-mel statistics 17 %): the only options that install from PyPI without
  a hub are the hand-made descriptors, and ours is measured by
  :func:`cmet.audio.evaluate.evaluate_speaker_transfer` (``cmet speech eval``). Measured on the
  real MEAD speech of ../shared (352 clips, 4 speakers, 50 draws), k = 1/3/5: prosody-v4 raw
  25/20/19 %; z-scored with the other 3 speakers' statistics 35/44/45 %; shrinkage LDA fit on
  the other 3 speakers 34/43/49 %; emotion2vec+large features with the same code 88/92/91 %.
* ``emotion2vec``: the paper's encoder (emotion2vec+large) through FunASR from a local model
  folder (optional extra ``pip install -e '.[emotion2vec]'``); :mod:`cmet.audio.emotion2vec`.
* ``hf``: any transformers speech encoder in a local folder (wav2vec2, HuBERT, WavLM,
  data2vec-audio, Whisper's encoder) with hidden-state ``layer`` and ``pooling`` (mean | max |
  meanmax) from config.
* ``precomputed``: the authors' release layout, ``<dir>/<feature_subdir>/<stem>.npy`` beside
  each audio file, ``.npy`` vectors or folders of either, with an optional raw-speech encoder
  (``audio.raw``) for audio without vectors; :mod:`cmet.audio.emotion2vec`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cmet.errors import AudioError, ConfigError

SR = 16_000


def _get(cfg, key, default=None):
    if cfg is None:
        return default
    if isinstance(cfg, dict):
        return cfg.get(key, default)
    return cfg.get(key, default) if hasattr(cfg, "get") else getattr(cfg, key, default)


class SpeechEncoder:
    """Base: utterance embeddings of 16 kHz mono waves."""

    name: str = "base"
    dim: int = 0
    #: the shortest clip (samples) the encoder accepts; shorter -> AudioError
    min_samples: int = 0

    def __init__(self, cfg=None) -> None:
        self.cfg = {} if cfg is None else (dict(cfg) if isinstance(cfg, dict) else _to_dict(cfg))

    def config_key(self) -> str:
        """A short hash of what determines the embedding (for the feature cache)."""
        skip = ("batch_size", "workers", "progress", "device")
        blob = json.dumps(
            {"name": self.name, **{k: v for k, v in self.cfg.items() if k not in skip}},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def check(self, waves: Sequence[np.ndarray], names: Sequence[str] | None = None) -> list[np.ndarray]:
        out = []
        for i, w in enumerate(waves):
            w = np.asarray(w, dtype=np.float32)
            label = names[i] if names is not None else f"clip {i}"
            if w.ndim != 1:
                raise AudioError(f"{label}: encoder input must be a mono wave [samples]; got shape {w.shape}")
            if w.shape[0] < self.min_samples:
                raise AudioError(
                    f"{label} is {w.shape[0] / SR:.3f} s long; the {self.name} encoder needs at least "
                    f"{self.min_samples / SR:.3f} s"
                )
            out.append(w)
        return out

    def encode(self, waves: Sequence[np.ndarray]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_files(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Load (hygiene: resample, downmix, checks) and encode files: [N, D]."""
        from cmet.audio.io import load_audio

        waves = [load_audio(p, SR)[0] for p in paths]
        return self.encode(self.check(waves, [str(p) for p in paths]))


def _to_dict(cfg) -> dict:
    try:
        from omegaconf import OmegaConf

        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except Exception:
        return dict(cfg)


class ProsodyEncoder(SpeechEncoder):
    """The offline default: :func:`cmet.audio.prosody.describe` per clip, normalised with the fixed
    reference of :mod:`cmet.audio.prosody_ref` (``normalise: false`` for the raw descriptor) -> [N, 94]."""

    def __init__(self, cfg=None) -> None:
        super().__init__(cfg)
        from cmet.audio import prosody

        self._p = prosody
        self.normalise = bool(self.cfg.get("normalise", True))
        self.name = f"prosody-{prosody.VERSION}" + ("z" if self.normalise else "")
        self.dim = len(prosody.feature_names())
        self.min_samples = prosody.MIN_SAMPLES
        if self.normalise:
            from cmet.audio import prosody_ref

            if len(prosody_ref.REF_MEAN) != self.dim:
                raise ConfigError(
                    f"prosody_ref constants have {len(prosody_ref.REF_MEAN)} dims, the descriptor "
                    f"{self.dim}: regenerate them (python -m cmet.audio.prosody_ref) or normalise=false"
                )
            self._mu = np.asarray(prosody_ref.REF_MEAN, np.float32)
            self._sd = np.asarray(prosody_ref.REF_SCALE, np.float32)

    def config_key(self) -> str:
        # the name holds everything that changes the output (descriptor version, normalisation)
        return hashlib.sha256(self.name.encode()).hexdigest()[:12]

    def _norm(self, x: np.ndarray) -> np.ndarray:
        return ((x - self._mu) / self._sd).astype(np.float32) if self.normalise else x.astype(np.float32)

    def encode(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        waves = self.check(waves)
        if not waves:
            return np.zeros((0, self.dim), np.float32)
        progress = bool(self.cfg.get("progress", len(waves) > 50))
        workers = int(self.cfg.get("workers", 2))
        from tqdm import tqdm

        if workers > 1 and len(waves) >= 40:  # processes: the descriptor is numpy-bound, one clip a task
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(workers) as ex:
                it = ex.map(self._p.describe, waves, chunksize=16)
                out = list(
                    tqdm(
                        it,
                        total=len(waves),
                        desc=f"encode ({self.name})",
                        unit="clip",
                        leave=False,
                        disable=not progress,
                    )
                )
            return self._norm(np.stack(out))
        it = tqdm(waves, desc=f"encode ({self.name})", unit="clip", leave=False, disable=not progress)
        return self._norm(np.stack([self._p.describe(w) for w in it]))


class HFEncoder(SpeechEncoder):
    """A transformers speech encoder from a local folder; hidden state ``layer`` pooled over time."""

    def __init__(self, cfg=None, device=None) -> None:
        super().__init__(cfg)
        import torch
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

        from cmet.device import pick_device

        folder = self.cfg.get("model_dir")
        if not folder or not Path(folder).is_dir():
            raise ConfigError(
                f"audio.model_dir must be a local folder with a transformers speech model; got {folder!r}"
            )
        self.device = device or pick_device(self.cfg.get("device", "auto") or "auto")
        conf = AutoConfig.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True)
        self.is_whisper = conf.model_type == "whisper"
        if hasattr(model, "get_encoder") and self.is_whisper:
            model = model.get_encoder()
        self.model = model.to(self.device).eval()
        try:
            self.fe = AutoFeatureExtractor.from_pretrained(folder, local_files_only=True)
        except Exception as e:
            raise ConfigError(f"no feature extractor (preprocessor_config.json) in {folder}: {e}") from e
        self.layer = int(self.cfg.get("layer", -1))
        self.pooling = str(self.cfg.get("pooling", "mean"))
        if self.pooling not in ("mean", "max", "meanmax"):
            raise ConfigError(f"audio.pooling must be mean, max or meanmax; got {self.pooling!r}")
        hidden = int(getattr(conf, "hidden_size", 0) or getattr(conf, "d_model", 0))
        self.dim = hidden * (2 if self.pooling == "meanmax" else 1)
        self.name = f"hf-{conf.model_type}-{Path(folder).name}-L{self.layer}-{self.pooling}"
        self.min_samples = int(self.cfg.get("min_samples", 400))
        self.batch_size = int(self.cfg.get("batch_size", 8))
        self._torch = torch

    def config_key(self) -> str:
        h = hashlib.sha256(super().config_key().encode())
        for f in sorted(Path(self.cfg["model_dir"]).glob("*.json")):
            h.update(f.read_bytes())
        return h.hexdigest()[:12]

    def encode(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        torch = self._torch
        waves = self.check(waves)
        out = []
        for i in range(0, len(waves), self.batch_size):
            batch = waves[i : i + self.batch_size]
            lens = [len(w) for w in batch]
            if self.is_whisper:
                inp = self.fe(batch, sampling_rate=SR, return_tensors="pt")
                feats = inp["input_features"].to(self.device)
                with torch.no_grad():
                    hs = self.model(feats, output_hidden_states=True).hidden_states[self.layer]
                # whisper pads to 30 s: keep the frames that cover real audio (2 mel frames a token, 10 ms hop)
                n_tok = [max(1, int(np.ceil(n / 320))) for n in lens]
            else:
                inp = self.fe(batch, sampling_rate=SR, return_tensors="pt", padding=True)
                x = inp["input_values"].to(self.device)
                with torch.no_grad():
                    hs = self.model(x, output_hidden_states=True).hidden_states[self.layer]
                t = hs.shape[1]
                n_tok = [max(1, int(round(t * n / max(lens)))) for n in lens]
            for j, n in enumerate(n_tok):
                h = hs[j, : min(n, hs.shape[1])]
                if self.pooling == "mean":
                    v = h.mean(0)
                elif self.pooling == "max":
                    v = h.max(0).values
                else:
                    v = torch.cat([h.mean(0), h.max(0).values])
                out.append(v.float().cpu().numpy())
        return np.stack(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)


#: audio.encoder -> "module:Class" (imported only when chosen)
ENCODERS = {
    "prosody": "cmet.audio.encoders:ProsodyEncoder",
    "hf": "cmet.audio.encoders:HFEncoder",
    "emotion2vec": "cmet.audio.emotion2vec:Emotion2VecEncoder",
    "precomputed": "cmet.audio.emotion2vec:PrecomputedEncoder",
    "e2v_student": "cmet.audio.student:StudentEncoder",
}


def get_encoder(audio_cfg) -> SpeechEncoder:
    """The encoder named by ``audio_cfg.encoder`` (``prosody`` when absent)."""
    kind = _get(audio_cfg, "encoder", "prosody")
    if kind not in ENCODERS:
        raise ConfigError(f"unknown audio.encoder {kind!r}; known: {sorted(ENCODERS)}")
    import importlib

    mod, cls = ENCODERS[kind].split(":")
    return getattr(importlib.import_module(mod), cls)(audio_cfg)
