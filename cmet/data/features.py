"""The data contract: a clip table plus per-clip speech embeddings and per-frame codes.

A :class:`FeatureSet` is what every stage after feature extraction reads. On disk it is a folder::

    clips.parquet   one row a clip (columns: CLIP_COLUMNS)
    speech.npy      [N, D_a] float32, row i = utterance embedding of clip i
    expr.npy        [F, D_v] float32, all frames of all clips, clip i is
                    expr[frame_start_i : frame_start_i + n_frames_i]
    lips.npy        [F, D_l] float32 (optional, same frame indexing)
    pose.npy        [F, D_p] float32 (optional, same frame indexing)
    meta.json       source, emotion lists, dimensions, content hash, free-form provenance

Dimensions are read from the arrays, never assumed. :meth:`FeatureSet.validate` raises
:class:`~cmet.errors.DataError` with a message that names the problem.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cmet.errors import DataError, UnknownEmotionError

#: MEAD's eight emotions, the basic set of the paper.
BASIC_EMOTIONS: tuple[str, ...] = (
    "angry",
    "contempt",
    "disgusted",
    "fear",
    "happy",
    "neutral",
    "sad",
    "surprised",
)
NEUTRAL = "neutral"
SPLITS = ("train", "val", "test")

#: column -> pandas dtype of the clip table
CLIP_COLUMNS: dict[str, str] = {
    "clip_id": "string",
    "identity": "string",
    "emotion": "string",
    "level": "int64",
    "sentence": "string",
    "split": "string",
    "n_frames": "int64",
    "fps": "float64",
    "duration_s": "float64",
    "frame_start": "int64",
    "audio_path": "string",  # may be <NA> for feature-only sources
    "video_path": "string",  # may be <NA>
    "extended": "bool",  # emotion held out of training (tested as blends / unseen)
}
REQUIRED_COLUMNS = ("clip_id", "identity", "emotion", "level", "split", "n_frames")

_FILES = {"speech": "speech.npy", "expr": "expr.npy", "lips": "lips.npy", "pose": "pose.npy"}


def normalise_clip_table(df: pd.DataFrame) -> pd.DataFrame:
    """Fill optional columns, fix dtypes and compute ``frame_start`` if absent."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"clip table lacks required column(s) {missing}; has {list(df.columns)}")
    df = df.copy().reset_index(drop=True)
    if "sentence" not in df:
        df["sentence"] = ""
    if "fps" not in df:
        df["fps"] = 25.0
    if "duration_s" not in df:
        df["duration_s"] = df["n_frames"] / df["fps"]
    if "frame_start" not in df:
        ends = np.cumsum(df["n_frames"].to_numpy())
        # an empty table (e.g. a split with no clips) must stay empty, not get one frame_start
        df["frame_start"] = (
            np.concatenate([[0], ends[:-1]]).astype(np.int64) if len(df) else np.zeros(0, np.int64)
        )
    for col in ("audio_path", "video_path"):
        if col not in df:
            df[col] = pd.NA
    if "extended" not in df:
        df["extended"] = False
    return df[list(CLIP_COLUMNS)].astype(CLIP_COLUMNS)


@dataclass
class FeatureSet:
    """Clip table + arrays. See the module docstring for the layout."""

    clips: pd.DataFrame
    speech: np.ndarray
    expr: np.ndarray
    lips: np.ndarray | None = None
    pose: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clips = normalise_clip_table(self.clips)

    # ------------------------------------------------------------------ dims
    @property
    def n_clips(self) -> int:
        return len(self.clips)

    @property
    def d_speech(self) -> int:
        return int(self.speech.shape[1])

    @property
    def d_expr(self) -> int:
        return int(self.expr.shape[1])

    @property
    def emotions(self) -> list[str]:
        """Emotions present in the table, basic ones first in MEAD order."""
        present = set(self.clips["emotion"])
        basic = [e for e in BASIC_EMOTIONS if e in present]
        return basic + sorted(present - set(basic))

    @property
    def train_emotions(self) -> list[str]:
        """Emotions seen in training (not flagged ``extended``)."""
        ext = set(self.clips.loc[self.clips["extended"], "emotion"])
        return [e for e in self.emotions if e not in ext]

    @property
    def extended_emotions(self) -> list[str]:
        return [e for e in self.emotions if e not in self.train_emotions]

    # ------------------------------------------------------------- accessors
    def frames(self, i: int, kind: str = "expr") -> np.ndarray:
        """Per-frame codes of clip ``i`` (row position): [n_frames_i, D]."""
        arr = getattr(self, kind)
        if arr is None:
            raise DataError(f"this feature set has no {kind!r} codes")
        row = self.clips.iloc[i]
        s = int(row["frame_start"])
        return arr[s : s + int(row["n_frames"])]

    def clip_mean_expr(self) -> np.ndarray:
        """Time mean of each clip's expression codes: [N, D_v]."""
        starts = self.clips["frame_start"].to_numpy()
        lens = self.clips["n_frames"].to_numpy()
        sums = np.add.reduceat(self.expr, starts, axis=0) if len(starts) else np.zeros((0, self.d_expr))
        return (sums / lens[:, None]).astype(np.float32)

    def subset(self, mask: np.ndarray | pd.Series) -> FeatureSet:
        """A new FeatureSet with the selected clips (frames re-packed)."""
        idx = np.flatnonzero(np.asarray(mask))
        clips = self.clips.iloc[idx].copy()
        pieces = {k: [] for k in ("expr", "lips", "pose")}
        for i in idx:
            for k in pieces:
                if getattr(self, k) is not None:
                    pieces[k].append(self.frames(int(i), k))

        def cat(k: str) -> np.ndarray | None:
            if getattr(self, k) is None:
                return None
            d = getattr(self, k).shape[1]
            return np.concatenate(pieces[k]) if pieces[k] else np.zeros((0, d), np.float32)

        clips = clips.drop(columns=["frame_start"])
        return FeatureSet(clips, self.speech[idx], cat("expr"), cat("lips"), cat("pose"), dict(self.meta))

    def split(self, name: str) -> FeatureSet:
        return self.subset(self.clips["split"] == name)

    # ------------------------------------------------------------ validation
    def validate(self, allowed_emotions: list[str] | None = None) -> FeatureSet:
        """Check the contract; raise DataError naming the first problem found."""
        n = self.n_clips
        if n == 0:
            raise DataError("feature set is empty (0 clips)")
        if self.speech.ndim != 2 or self.speech.shape[0] != n:
            raise DataError(f"speech embeddings must be [N={n}, D_a]; got shape {self.speech.shape}")
        total = int(self.clips["n_frames"].sum())
        for k in ("expr", "lips", "pose"):
            arr = getattr(self, k)
            if arr is None:
                continue
            if arr.ndim != 2 or arr.shape[0] != total:
                raise DataError(f"{k} codes must be [F={total} frames, D]; got shape {arr.shape}")
            bad = ~np.isfinite(arr).all(axis=1)
            if bad.any():
                f = int(np.flatnonzero(bad)[0])
                clip = self.clips.loc[self.clips["frame_start"] <= f, "clip_id"].iloc[-1]
                raise DataError(
                    f"{k} codes contain NaN/inf ({int(bad.sum())} frames, first in clip {clip!r})"
                )
        bad = ~np.isfinite(self.speech).all(axis=1)
        if bad.any():
            clips = self.clips["clip_id"][bad].tolist()[:3]
            raise DataError(f"speech embeddings contain NaN/inf in {int(bad.sum())} clip(s), e.g. {clips}")
        if (self.clips["n_frames"] <= 0).any():
            raise DataError("clip table has clips with n_frames <= 0")
        if self.clips["clip_id"].duplicated().any():
            dup = self.clips["clip_id"][self.clips["clip_id"].duplicated()].iloc[0]
            raise DataError(f"clip_id {dup!r} appears more than once")
        unknown = set(self.clips["split"]) - set(SPLITS)
        if unknown:
            raise DataError(f"unknown split(s) {sorted(unknown)}; allowed {list(SPLITS)}")
        if allowed_emotions is not None:
            unknown = set(self.clips["emotion"]) - set(allowed_emotions)
            if unknown:
                raise UnknownEmotionError(
                    f"unknown emotion(s) {sorted(unknown)} in clip table; allowed {list(allowed_emotions)}"
                )
        return self

    # ---------------------------------------------------------------- on disk
    def key(self) -> str:
        """What keys run folders trained on this data: the hash of the inputs it was built from
        (``meta["input_hash"]``, :func:`cmet.data.input_hash`) when known, else :meth:`content_hash`
        (a FeatureSet handed over as such, or a folder read from disk, is its own input)."""
        return str(self.meta.get("input_hash") or self.content_hash())

    def content_hash(self) -> str:
        """A hash of the table and arrays (stable across save/load): lineage (which arrays exactly), not
        a cache key, since arrays computed from the same inputs on another CPU may differ in their last
        bits (:meth:`key`)."""
        h = hashlib.sha256()
        h.update(pd.util.hash_pandas_object(self.clips.astype(str), index=False).values.tobytes())
        for k in ("speech", "expr", "lips", "pose"):
            arr = getattr(self, k)
            if arr is not None:
                h.update(k.encode())
                h.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
        return h.hexdigest()[:16]

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.clips.to_parquet(folder / "clips.parquet", index=False)
        for k, name in _FILES.items():
            arr = getattr(self, k)
            if arr is not None:
                np.save(folder / name, np.ascontiguousarray(arr, dtype=np.float32))
        meta = dict(self.meta)
        meta.update(
            n_clips=self.n_clips,
            d_speech=self.d_speech,
            d_expr=self.d_expr,
            d_lips=None if self.lips is None else int(self.lips.shape[1]),
            d_pose=None if self.pose is None else int(self.pose.shape[1]),
            emotions=self.emotions,
            extended_emotions=self.extended_emotions,
            content_hash=self.content_hash(),
        )
        (folder / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path, validate: bool = True) -> FeatureSet:
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"feature folder not found: {folder}")
        for req in ("clips.parquet", "speech.npy", "expr.npy"):
            if not (folder / req).is_file():
                raise DataError(f"feature folder {folder} lacks {req}")
        clips = pd.read_parquet(folder / "clips.parquet")
        arrays = {
            k: (np.load(folder / name) if (folder / name).is_file() else None) for k, name in _FILES.items()
        }
        meta_path = folder / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        fs = cls(clips, arrays["speech"], arrays["expr"], arrays["lips"], arrays["pose"], meta)
        return fs.validate() if validate else fs
