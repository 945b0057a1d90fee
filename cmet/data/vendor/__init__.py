"""The speech vectors of the C-MET authors' release, vendored into the package (no audio).

Two files beside this module, written by ``cmet data vendor [RELEASE_DIR]`` (:mod:`cmet.data.vendor.build`) from
the release folder (``../shared/data/cmet_release``):

* ``cmet_release_e2v.npz`` (``np.savez_compressed``): ``speech`` [N, 1024] float32, the authors'
  emotion2vec+large utterance vectors exactly as released; ``envelope`` [F] float32, each clip's speech
  amplitude envelope at :data:`FPS` (:func:`cmet.face.tracks.envelope_at_fps` of the 16 kHz audio;
  clip i is ``envelope[env_start_i : env_start_i + n_env_i]``), so the lip tracks need no audio.
* ``cmet_release_clips.csv``: one row a clip, in the row order of
  :func:`cmet.data.release_au.read_release_clips`: clip_id, set (MEAD | gemini), identity, emotion,
  level, sentence, extended, audio_relpath (relative to the release folder), n_samples, sample_rate
  (duration = n_samples / sample_rate), env_start, n_env, and for gemini the ``e2v+L_ser``, ``ID``,
  ``intensity`` and ``voice_name`` columns of ``audios/gemini/test.csv``.

Attribution: the vectors come from the authors' public release (Apache-2.0, repository
ChanHyeok-Choi/C-MET); the MEAD speech they were computed from belongs to the MEAD dataset (research
use). See NOTICE.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cmet.errors import DataError

VENDOR_DIR = Path(__file__).resolve().parent
VECTORS_FILE = "cmet_release_e2v.npz"
CLIPS_FILE = "cmet_release_clips.csv"
#: the video rate the envelopes are stored at
FPS = 25.0
#: what the vectors are (the FeatureSet / bundle speech-encoder spec)
ENCODER = {"name": "emotion2vec+large", "dim": 1024, "config": {"source": "precomputed"}}


@dataclass(frozen=True)
class VendoredRelease:
    """clips: the clip table (see the module docstring); speech [N, 1024]; envelope [F] at :data:`FPS`."""

    clips: pd.DataFrame
    speech: np.ndarray
    envelope: np.ndarray

    def clip_envelope(self, i: int) -> np.ndarray:
        """The envelope of clip row ``i``: [n_env_i] float32 at :data:`FPS`."""
        r = self.clips.iloc[i]
        return self.envelope[int(r["env_start"]) : int(r["env_start"]) + int(r["n_env"])]


def load_vendored(folder: str | Path = VENDOR_DIR) -> VendoredRelease:
    """Read the vendored vectors + clip table (DataError naming a missing or inconsistent file)."""
    folder = Path(folder)
    vec, csv = folder / VECTORS_FILE, folder / CLIPS_FILE
    for f in (vec, csv):
        if not f.is_file():
            raise DataError(f"vendored release file missing: {f} (regenerate: cmet data vendor)")
    with np.load(vec, allow_pickle=False) as z:
        speech, envelope = z["speech"], z["envelope"]
    clips = pd.read_csv(csv, dtype={"sentence": str, "identity": str, "ID": str}, keep_default_na=False)
    if len(clips) != speech.shape[0]:
        raise DataError(f"{csv.name} has {len(clips)} rows but {vec.name} {speech.shape[0]} vectors")
    if len(clips) and int((clips["env_start"] + clips["n_env"]).max()) > envelope.shape[0]:
        raise DataError(f"{csv.name} indexes past the {envelope.shape[0]} envelope frames of {vec.name}")
    clips["extended"] = clips["extended"].astype(str).str.lower().isin(["true", "1"])
    return VendoredRelease(clips, speech, envelope)
