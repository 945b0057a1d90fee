"""Feature extraction stage: clip table (audio + track files) -> FeatureSet.

Speech: the configured encoder (``cfg.audio``; a data source may pin one with ``cfg.data.encoder``),
one pass over the clips not yet in the cache (cache key = audio content hash + encoder config).
Expression / lips / pose: the per-clip track files (``track_path`` column, npz with expr, lips, pose).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cmet.data.features import FeatureSet
from cmet.errors import DataError


def load_tracks(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Concatenate the per-clip track files of a clip table -> {"expr", "lips", "pose"}: [F, D] each."""
    out: dict[str, list[np.ndarray]] = {"expr": [], "lips": [], "pose": []}
    for p, n in zip(table["track_path"], table["n_frames"], strict=True):
        if not Path(p).is_file():
            raise DataError(f"face-track file missing: {p}")
        with np.load(p) as z:
            for k in out:
                arr = z[k]
                if arr.shape[0] != int(n):
                    raise DataError(f"track {p}: {k} has {arr.shape[0]} frames, clip table says {n}")
                out[k].append(arr.astype(np.float32))
    return {k: np.concatenate(v) if v else np.zeros((0, 1), np.float32) for k, v in out.items()}


def audio_config(cfg):
    """The encoder config to use: ``cfg.audio``, unless the data source pins another encoder."""
    from omegaconf import OmegaConf

    audio = OmegaConf.to_container(cfg.audio, resolve=True) if "audio" in cfg else {}
    pinned = cfg.data.get("encoder") if "data" in cfg else None
    if pinned and audio.get("encoder") != pinned:
        audio = {"encoder": pinned}
    return audio


def extract_features(cfg, clip_table: pd.DataFrame) -> FeatureSet:
    """[N clips] table -> FeatureSet with speech [N, D_a] and expr/lips/pose [F, D]."""
    from cmet.audio.cache import encode_cached
    from cmet.audio.encoders import get_encoder
    from cmet.audio.spec import spec_of

    if len(clip_table) == 0:
        raise DataError("clip table is empty: nothing to extract")
    for col in ("audio_path", "track_path"):
        if col not in clip_table:
            raise DataError(f"clip table lacks column {col!r} needed for feature extraction")
    missing = [p for p in clip_table["audio_path"] if not Path(str(p)).is_file()]
    if missing:
        raise DataError(f"{len(missing)} audio file(s) missing, e.g. {missing[0]}")
    audio = audio_config(cfg)
    enc = get_encoder(audio)
    cache_dir = cfg.paths.cache_dir if "paths" in cfg else None
    speech, stats = encode_cached(enc, list(clip_table["audio_path"]), cache_dir)
    tracks = load_tracks(clip_table)
    spec = spec_of(enc, speech.shape[1], audio)
    meta = {"speech_encoder": spec.to_dict(), "encoder_key": enc.config_key(), "speech_cache": stats}
    fs = FeatureSet(
        clip_table.drop(columns=[c for c in ("frame_start",) if c in clip_table]),
        speech.astype(np.float32),
        tracks["expr"],
        tracks["lips"],
        tracks["pose"],
        meta,
    )
    return fs
