"""Readers of the real dataset layouts -> clip tables (then :func:`cmet.audio.extract_features`).

* **MEAD**: ``<root>/<ID>/video/front/<emotion>/level_<n>/<clip>.mp4`` with the speech beside it at
  ``<root>/<ID>/audio/<emotion>/level_<n>/<clip>.m4a``. A clip with audio and no video (or the
  reverse) is kept with the missing path as <NA>; frame counts come from the video (OpenCV) or,
  without video, from the audio duration at ``fps``.
* **CREMA-D**: files named ``<actor>_<sentence>_<EMO>_<LEVEL>.<ext>`` (e.g. ``1001_DFA_ANG_XX.wav``)
  anywhere under the root (``AudioWAV/``, ``VideoFlash/``...). EMO: ANG DIS FEA HAP NEU SAD;
  LEVEL: LO=1, MD=2, HI=3, XX (unspecified) = 2 (neutral: 1, the reference level of the method).

Both return the clip-table columns of :mod:`cmet.data.features` (``split`` from
``test_identities`` / ``val_identities``; everything else train). Names that do not follow the
layout are skipped and counted in ``table.attrs["skipped"]``; no matching file -> DataError.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from cmet.data.features import BASIC_EMOTIONS
from cmet.errors import DataError

MEAD_TEST_SPEAKERS = ("M003", "M030", "W009", "W015")
CREMA_EMOTIONS = {
    "ANG": "angry",
    "DIS": "disgusted",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
CREMA_LEVELS = {"LO": 1, "MD": 2, "HI": 3, "XX": 2}
CREMA_RE = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emo>[A-Z]{3})_(?P<level>LO|MD|HI|XX)$")
MEAD_AUDIO_EXTS = (".m4a", ".wav", ".mp3", ".flac")
VIDEO_EXTS = (".mp4", ".flv", ".avi", ".mov")


def _split(identity: str, test: Iterable[str], val: Iterable[str]) -> str:
    return "test" if identity in set(test) else ("val" if identity in set(val) else "train")


def video_frames(path: str | Path) -> tuple[int, float]:
    """(frame count, fps) of a video file via OpenCV; (0, 0) when unreadable."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0, 0.0
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()


def audio_duration(path: str | Path) -> float:
    """Duration in seconds (soundfile for wav/flac, else decoded with ffmpeg)."""
    path = Path(path)
    if path.suffix.lower() in (".wav", ".flac", ".ogg"):
        import soundfile as sf

        return float(sf.info(str(path)).duration)
    from cmet.audio.io import decode_with_ffmpeg

    return decode_with_ffmpeg(path).size / 16000.0


def _finish(rows: list[dict], skipped: list[str], root: Path, what: str, fps: float) -> pd.DataFrame:
    if not rows:
        raise DataError(
            f"no {what} clips found under {root} (expected layout: see cmet.data.readers); "
            f"{len(skipped)} file(s) did not match"
        )
    df = pd.DataFrame(rows)
    need = df["n_frames"].isna() | (df["n_frames"] <= 0)
    for i in np.flatnonzero(need.to_numpy()):
        ap = df.at[i, "audio_path"]
        if ap is None or pd.isna(ap):
            raise DataError(f"clip {df.at[i, 'clip_id']}: unreadable video and no audio to time it")
        df.at[i, "n_frames"] = max(1, int(round(audio_duration(ap) * fps)))
    df["n_frames"] = df["n_frames"].astype(int)
    df["duration_s"] = df["n_frames"] / df["fps"]
    df = df.sort_values("clip_id").reset_index(drop=True)
    df.attrs["skipped"] = skipped
    return df


def read_mead(
    root: str | Path,
    test_identities: Iterable[str] = MEAD_TEST_SPEAKERS,
    val_identities: Iterable[str] = (),
    view: str = "front",
    fps: float = 25.0,
    count_frames: bool = True,
) -> pd.DataFrame:
    """Clip table of a MEAD folder (see the module docstring for the layout)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"MEAD folder not found: {root}")
    clips: dict[tuple, dict] = {}
    skipped: list[str] = []
    for ident_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        ident = ident_dir.name
        for kind, base, exts in (
            ("video", ident_dir / "video" / view, VIDEO_EXTS),
            ("audio", ident_dir / "audio", MEAD_AUDIO_EXTS),
        ):
            if not base.is_dir():
                continue
            for f in sorted(base.rglob("*")):
                if not f.is_file() or f.suffix.lower() not in exts:
                    continue
                rel = f.relative_to(base).parts
                m = re.fullmatch(r"level_(\d)", rel[1]) if len(rel) == 3 else None
                if m is None or rel[0] not in BASIC_EMOTIONS:
                    skipped.append(str(f))
                    continue
                key = (ident, rel[0], int(m.group(1)), f.stem)
                row = clips.setdefault(
                    key,
                    _new_row(
                        f"{ident}_{rel[0]}_L{m.group(1)}_{f.stem}",
                        ident,
                        rel[0],
                        int(m.group(1)),
                        f.stem,
                        _split(ident, test_identities, val_identities),
                        fps,
                    ),
                )
                row[f"{kind}_path"] = str(f)
    _count_frames(clips.values(), fps, count_frames)
    return _finish(list(clips.values()), skipped, root, "MEAD", fps)


def _new_row(
    clip_id: str, identity: str, emotion: str, level: int, sentence: str, split: str, fps: float
) -> dict:
    """A clip-table row whose audio/video paths and frame count are filled in as files are found."""
    return dict(
        clip_id=clip_id,
        identity=identity,
        emotion=emotion,
        level=level,
        sentence=sentence,
        split=split,
        n_frames=np.nan,
        fps=fps,
        audio_path=None,
        video_path=None,
        extended=False,
    )


def _count_frames(rows: Iterable[dict], fps: float, count_frames: bool) -> None:
    """Frame count and fps of each row's video (left as NaN / the default fps where there is none)."""
    if not count_frames:
        return
    for row in rows:
        if row["video_path"]:
            n, vfps = video_frames(row["video_path"])
            if n > 0:
                row["n_frames"], row["fps"] = n, (vfps or fps)


def parse_crema_name(stem: str) -> dict | None:
    """``1001_DFA_ANG_XX`` -> {actor, sentence, emotion, level}; None when the name does not match."""
    m = CREMA_RE.match(stem)
    if not m or m.group("emo") not in CREMA_EMOTIONS:
        return None
    emo = CREMA_EMOTIONS[m.group("emo")]
    level = 1 if emo == "neutral" else CREMA_LEVELS[m.group("level")]
    return dict(
        actor=m.group("actor"),
        sentence=m.group("sentence"),
        emotion=emo,
        level=level,
        level_code=m.group("level"),
    )


def read_crema_d(
    root: str | Path,
    test_identities: Iterable[str] = (),
    val_identities: Iterable[str] = (),
    fps: float = 25.0,
    count_frames: bool = True,
) -> pd.DataFrame:
    """Clip table of a CREMA-D folder: audio and video of the same name are one clip."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"CREMA-D folder not found: {root}")
    clips: dict[str, dict] = {}
    skipped: list[str] = []
    for f in sorted(root.rglob("*")):
        if not f.is_file():
            continue
        ext = f.suffix.lower()
        kind = (
            "audio" if ext in (".wav", ".mp3", ".flac", ".m4a") else ("video" if ext in VIDEO_EXTS else None)
        )
        if kind is None:
            continue
        p = parse_crema_name(f.stem)
        if p is None:
            skipped.append(str(f))
            continue
        row = clips.setdefault(
            f.stem,
            _new_row(
                f.stem,
                p["actor"],
                p["emotion"],
                p["level"],
                p["sentence"],
                _split(p["actor"], test_identities, val_identities),
                fps,
            ),
        )
        row[f"{kind}_path"] = str(f)
    _count_frames(clips.values(), fps, count_frames)
    return _finish(list(clips.values()), skipped, root, "CREMA-D", fps)
