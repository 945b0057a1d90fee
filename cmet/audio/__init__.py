"""Speech side: audio IO and hygiene, encoders behind one interface, feature cache, evaluation.

Public entry points (imported lazily, nothing heavy at import time):

* :func:`get_encoder` ``(cfg.audio) -> SpeechEncoder`` (``.name``, ``.dim``, ``.encode(waves) -> [N, D]``)
* :func:`extract_features` ``(cfg, clip_table) -> FeatureSet``: speech embeddings (cached by audio
  content hash + encoder config) and the per-frame codes from the clips' track files
* :func:`evaluate_speaker_transfer`: the speech-side figure (k-clip differences, nearest centroid of
  the other speakers)
* :func:`load_audio`: any file -> 16 kHz mono + :class:`~cmet.audio.io.AudioReport`
* :func:`encoder_for_bundle` ``(bundle) -> SpeechEncoder``: the encoder a model was trained with
  (its :class:`~cmet.audio.spec.EncoderSpec` in ``bundle.json``)
"""

from __future__ import annotations

from cmet.audio.spec import EncoderSpec, encoder_for_bundle


def get_encoder(audio_cfg):
    from cmet.audio.encoders import get_encoder as _g

    return _g(audio_cfg)


def load_audio(path, sr: int = 16_000, min_duration_s: float = 0.0):
    from cmet.audio.io import load_audio as _l

    return _l(path, sr, min_duration_s)


def evaluate_speaker_transfer(*args, **kwargs):
    from cmet.audio.evaluate import evaluate_speaker_transfer as _e

    return _e(*args, **kwargs)


def extract_features(cfg, clip_table):
    from cmet.audio.extract import extract_features as _x

    return _x(cfg, clip_table)


__all__ = [
    "EncoderSpec",
    "encoder_for_bundle",
    "get_encoder",
    "load_audio",
    "evaluate_speaker_transfer",
    "extract_features",
]
