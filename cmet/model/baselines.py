"""Baselines under the same interface and evaluation as C-MET (what the paper compares with).

* **label-based** (EAT-like): a one-hot emotion category -> an expression offset. Implemented as the
  closed-form least-squares solution of a linear map from the one-hot label to the offset, i.e. the
  per-emotion mean of ``v_{neutral->e}`` over the training identities and levels (a learned MLP on a
  one-hot input converges to the same thing under an MSE loss). It cannot express an emotion outside
  its list: extended emotions are reported as n/a (no nearest-label mapping).
* **speech-direct** (FLOAT-like): the connector architecture trained the same way, but fed the mean
  target speech embedding itself instead of a difference (``Connector(speech_input="direct")``,
  trained by :func:`cmet.train.train`), so emotion stays entangled with speaker and words.
* **reference-based** (EDTalk/EAMM-like): a reference clip of the target emotion of the same identity
  (and level); offset = time mean of its expression codes minus the identity's neutral mean.
  Needs such a clip: with real data none exists for extended emotions; the simulator has them, so
  it is reported there too (an optimistic, oracle-like baseline).
"""

from __future__ import annotations

import numpy as np

from cmet.data.features import NEUTRAL, FeatureSet
from cmet.data.sampling import CellIndex
from cmet.errors import DataError


def fit_label_offsets(train: FeatureSet, emotions: list[str], min_clips: int = 1) -> dict[str, np.ndarray]:
    """Per-emotion mean offset from neutral over training (identity, level) cells: {e: [D_v]}."""
    idx = CellIndex(train, emotions, min_clips=min_clips)
    sums: dict[str, list[np.ndarray]] = {e: [] for e in emotions}
    for (ident, emo, _lv), clips in idx.cells.items():
        if emo == NEUTRAL:
            continue
        neu = idx.cells.get((ident, NEUTRAL, idx.neutral_level))
        if neu is None:
            continue
        sums[emo].append(idx.clip_expr[clips].mean(0) - idx.clip_expr[neu].mean(0))
    out = {NEUTRAL: np.zeros(train.d_expr, np.float32)}
    for e, vs in sums.items():
        if vs:
            out[e] = np.mean(vs, axis=0).astype(np.float32)
    return out


def label_offset(offsets: dict[str, np.ndarray], emotion: str) -> np.ndarray | None:
    """The label baseline's offset [D_v] for an emotion; None for an emotion outside its label set."""
    return offsets.get(emotion)


def reference_offset(ref_codes: np.ndarray, neutral_clip_means: np.ndarray) -> np.ndarray:
    """Reference-based offset: mean(ref clip codes [L, D_v]) - mean(neutral clip means [m, D_v]) -> [D_v]."""
    ref_codes = np.asarray(ref_codes, np.float32)
    if ref_codes.ndim != 2 or len(ref_codes) == 0:
        raise DataError(f"reference clip codes must be [L>=1, D_v]; got {ref_codes.shape}")
    return ref_codes.mean(0) - np.asarray(neutral_clip_means, np.float32).mean(0)
