"""Reader of the speech features in the C-MET authors' release layout.

Layout (``root`` = the release folder, e.g. ``../shared/data/cmet_release``)::

    audios/<set>/<emotion>/emotion2vec+large_features/<name>.npy   float32 (1024,) or (1, 1024)
    audios/<set>/<emotion>/<name>.wav                              the clip itself
    audios/gemini/test.csv                                         emotion, sentence, voice_name,
                                                                   audio_path, e2v+L_ser, intensity, ID

Names: MEAD ``<ID>_level_<L>_<clip>`` (neutral ``<ID>_<clip>``, level 1); gemini ``<emotion>_<n>``
(identity = the paired MEAD speaker ``ID`` of test.csv, level from its ``intensity`` column, e.g.
``level_2``; the voice name and the sentence come along).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from cmet.errors import DataError

SETS = ("MEAD", "gemini")
FEATURE_SUBDIR = "emotion2vec+large_features"
_MEAD_EMO = re.compile(r"^(?P<id>[A-Za-z]\d+)_level_(?P<level>\d+)_(?P<clip>\w+)$")
_MEAD_NEU = re.compile(r"^(?P<id>[A-Za-z]\d+)_(?P<clip>\d+)$")
_GEMINI = re.compile(r"^(?P<emo>[a-z_]+)_(?P<n>\d+)$")


def load_feature(path: str | Path, dim: int | None = None) -> np.ndarray:
    """One utterance embedding: .npy of shape (D,) or (1, D) -> [D] float32 (DataError otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"speech feature file not found: {path}")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"cannot read speech feature {path}: {e}") from e
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise DataError(f"speech feature {path} has shape {x.shape}; expected (D,) or (1, D)")
    if dim is not None and x.shape[0] != dim:
        raise DataError(f"speech feature {path} has dimension {x.shape[0]}; expected {dim}")
    if not np.isfinite(x).all():
        raise DataError(f"speech feature {path} contains NaN/inf")
    return x.astype(np.float32)


def parse_mead_name(name: str, emotion: str) -> dict:
    """``M003_level_3_005`` / neutral ``M003_005`` -> {identity, level, clip}."""
    m = _MEAD_EMO.match(name)
    if m:
        return dict(identity=m["id"], level=int(m["level"]), clip=m["clip"])
    m = _MEAD_NEU.match(name)
    if m and emotion == "neutral":
        return dict(identity=m["id"], level=1, clip=m["clip"])
    raise DataError(
        f"cannot parse MEAD clip name {name!r} (expected <ID>_level_<L>_<clip> or neutral <ID>_<clip>)"
    )


def read_release_features(
    root: str | Path, set_name: str = "MEAD", dim: int | None = 1024, feature_subdir: str = FEATURE_SUBDIR
) -> tuple[pd.DataFrame, np.ndarray]:
    """Read every feature of ``audios/<set_name>/*/<feature_subdir>/*.npy``.

    Returns (table, features [N, D]); table columns: clip_id, identity, emotion, level, clip, set,
    feature_path, audio_path (+ sentence, voice, ser_emotion for gemini). Raises DataError for a missing
    folder, an unparseable name, a wrong shape/dimension or NaN.
    """
    if set_name not in SETS:
        raise DataError(f"unknown release set {set_name!r}; known: {list(SETS)}")
    base = Path(root) / "audios" / set_name
    if not base.is_dir():
        raise DataError(f"release folder not found: {base}")
    csv = None
    if set_name == "gemini":
        csv_path = base / "test.csv"
        if not csv_path.is_file():
            raise DataError(f"gemini metadata not found: {csv_path}")
        csv = pd.read_csv(csv_path)
        csv["stem"] = csv["audio_path"].map(lambda p: Path(str(p)).stem)
        csv = csv.set_index("stem")
    rows, feats = [], []
    emo_dirs = sorted(p for p in base.iterdir() if p.is_dir())
    if not emo_dirs:
        raise DataError(f"no emotion folders in {base}")
    for emo_dir in emo_dirs:
        fdir = emo_dir / feature_subdir
        if not fdir.is_dir():
            raise DataError(f"feature folder not found: {fdir}")
        emotion = emo_dir.name
        for f in sorted(fdir.glob("*.npy")):
            x = load_feature(f, dim)
            if dim is None:
                dim = x.shape[0]
            name = f.stem
            if set_name == "MEAD":
                info = parse_mead_name(name, emotion)
                extra = {}
            else:
                if not _GEMINI.match(name):
                    raise DataError(f"cannot parse gemini clip name {name!r} (expected <emotion>_<n>)")
                if csv is None or name not in csv.index:
                    raise DataError(f"gemini clip {name!r} is not listed in test.csv")
                r = csv.loc[name]
                lv = re.search(r"(\d+)", str(r["intensity"]))
                info = dict(identity=str(r["ID"]), level=int(lv.group(1)) if lv else 3, clip=name)
                extra = dict(
                    sentence=str(r["sentence"]), voice=str(r["voice_name"]), ser_emotion=str(r["e2v+L_ser"])
                )
            rows.append(
                dict(
                    clip_id=f"{set_name}/{emotion}/{name}",
                    emotion=emotion,
                    set=set_name,
                    feature_path=str(f),
                    audio_path=str(emo_dir / f"{name}.wav"),
                    **info,
                    **extra,
                )
            )
            feats.append(x)
    if not rows:
        raise DataError(f"no feature files (*.npy) under {base}/*/{feature_subdir}")
    return pd.DataFrame(rows), np.stack(feats)
