"""Expectation suites as code (Great Expectations 1.x), versioned with the project.

Two stages are checked before anything trains:

* ``raw``      the clip table (schema, allowed emotions / levels / splits, files exist, durations and
               frame counts in range, frames vs duration x fps) and two derived tables for the
               cross-row rules: one row per identity (it must sit in exactly one split) and one row
               per identity x emotion x level cell (at least ``min_clips_per_cell`` clips).
* ``features`` per-clip feature statistics (finite values, norms in range, frame rows match the
               table) and a one-row table of array dimensions.

GX 1.x only offers row-spanning SQL expectations (``UnexpectedRowsExpectation``) on SQL sources, so
cross-row rules are expressed on derived pandas tables with the standard expectations. Each table is
validated with its own suite; :mod:`data_checks.run` turns the results into a readable report.
Everything here is pure pandas / numpy except the suite builders, which import GX lazily.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cmet.data.features import CLIP_COLUMNS, SPLITS, FeatureSet


@dataclass(frozen=True)
class CheckLimits:
    """The numbers the suites check against (from ``cfg.pipeline.checks`` and ``cfg.data``)."""

    emotions: tuple[str, ...]
    levels: tuple[int, ...]
    min_clips_per_cell: int = 3
    frames: tuple[int, int] = (5, 2000)
    duration_s: tuple[float, float] = (0.2, 80.0)
    fps: tuple[float, float] = (10.0, 60.0)
    frame_tolerance: float = 1.5  # |n_frames - duration_s * fps| allowed, in frames
    check_files: bool = True
    speech_norm: tuple[float, float] = (1e-3, 1e4)
    expr_norm: tuple[float, float] = (0.0, 1e3)
    d_speech: tuple[int, int] = (1, 8192)
    d_expr: tuple[int, int] = (1, 1024)

    @classmethod
    def from_cfg(cls, cfg) -> CheckLimits:
        """Build from a composed config: allowed emotions = data.emotions + data.extended keys."""
        from omegaconf import OmegaConf

        data = OmegaConf.to_container(cfg.data, resolve=True)
        checks = OmegaConf.to_container(cfg.pipeline.checks, resolve=True)
        emotions = list(data.get("emotions") or [])
        ext = data.get("extended") or {}
        emotions += [e for e in (ext.keys() if isinstance(ext, Mapping) else ext) if e not in emotions]
        emotions += [e for e in checks.get("extra_emotions", []) if e not in emotions]
        levels = tuple(int(x) for x in (data.get("levels") or checks.get("levels") or [1, 2, 3]))
        kw = {
            k: (tuple(v) if isinstance(v, list) else v)
            for k, v in checks.items()
            if k in cls.__dataclass_fields__
        }
        return cls(emotions=tuple(emotions), levels=levels, **kw)


# --------------------------------------------------------------------------------- derived tables
def clip_table(fs_or_df: FeatureSet | pd.DataFrame, check_files: bool = True) -> pd.DataFrame:
    """The clip table plus derived per-row columns: ``frame_error`` and ``files_ok``.

    ``files_ok`` is True when every non-empty ``audio_path`` / ``video_path`` of the row exists.
    """
    df = (fs_or_df.clips if isinstance(fs_or_df, FeatureSet) else fs_or_df).copy()
    df = df.reset_index(drop=True)
    if {"n_frames", "duration_s", "fps"} <= set(df.columns):
        df["frame_error"] = (
            df["n_frames"].astype(float) - df["duration_s"].astype(float) * df["fps"].astype(float)
        ).abs()
    ok = np.ones(len(df), dtype=bool)
    missing: list[str] = [""] * len(df)
    if check_files:
        for col in ("audio_path", "video_path"):
            if col not in df:
                continue
            for i, p in enumerate(df[col].tolist()):
                if p is None or p is pd.NA or (isinstance(p, float) and np.isnan(p)) or str(p) == "":
                    continue
                if not Path(str(p)).exists():
                    ok[i] = False
                    missing[i] = str(p)
    df["files_ok"] = ok
    df["missing_file"] = missing
    for c in df.columns:  # GX renders pandas' nullable string dtype fine, but <NA> breaks JSON dumps
        if str(df[c].dtype) == "string":
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df


def identity_table(clips: pd.DataFrame) -> pd.DataFrame:
    """One row per identity: ``n_splits`` (must be 1), ``splits`` (names), ``n_emotions``, ``n_clips``."""
    g = clips.groupby("identity", sort=True)
    out = pd.DataFrame(
        {
            "identity": list(g.groups.keys()),
            "n_splits": g["split"].nunique().to_numpy(),
            "splits": g["split"].agg(lambda s: ",".join(sorted(set(map(str, s))))).to_numpy(),
            "n_emotions": g["emotion"].nunique().to_numpy(),
            "n_clips": g.size().to_numpy(),
        }
    )
    return out


def cell_table(clips: pd.DataFrame) -> pd.DataFrame:
    """One row per identity x emotion x level cell present: ``n_clips`` and a readable ``cell`` name."""
    g = clips.groupby(["identity", "emotion", "level"], sort=True).size().rename("n_clips").reset_index()
    g["cell"] = g["identity"].astype(str) + "/" + g["emotion"].astype(str) + "/L" + g["level"].astype(str)
    return g


def _row_norms(a: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.sqrt((np.asarray(a, dtype=np.float64) ** 2).sum(axis=1))


def feature_clip_table(fs: FeatureSet) -> pd.DataFrame:
    """One row per clip: finite flags and norms of its speech embedding and expression frames."""
    n = fs.n_clips
    starts = fs.clips["frame_start"].to_numpy()
    lens = fs.clips["n_frames"].to_numpy()
    total = int(lens.sum())
    sp_ok = (
        np.isfinite(fs.speech).all(axis=1)
        if fs.speech.ndim == 2 and len(fs.speech) == n
        else np.zeros(n, bool)
    )
    sp_norm = _row_norms(fs.speech) if fs.speech.ndim == 2 and len(fs.speech) == n else np.full(n, np.nan)
    out = {
        "clip_id": fs.clips["clip_id"].astype(str).to_numpy(),
        "speech_finite": sp_ok,
        "speech_norm": sp_norm,
    }
    for kind in ("expr", "lips", "pose"):
        arr = getattr(fs, kind)
        if arr is None:
            continue
        if arr.ndim != 2 or arr.shape[0] != total:  # the dims table reports this; keep rows readable
            out[f"{kind}_finite"] = np.zeros(n, bool)
            continue
        fin = np.isfinite(arr).all(axis=1)
        out[f"{kind}_finite"] = np.logical_and.reduceat(fin, starts) if n else fin[:0]
        if kind == "expr":
            norms = _row_norms(np.where(np.isfinite(arr), arr, 0.0))
            out["expr_norm_mean"] = np.add.reduceat(norms, starts) / lens if n else norms[:0]
    df = pd.DataFrame(out)
    # a NaN norm must fail the range check, not be skipped as "missing": make it an out-of-range value
    for c in ("speech_norm", "expr_norm_mean"):
        if c in df:
            df[c] = df[c].fillna(-1.0)
    return df


def dims_table(fs: FeatureSet) -> pd.DataFrame:
    """One row: array dimensions and whether the frame arrays have one row per table frame."""
    total = int(fs.clips["n_frames"].sum())
    row = {
        "n_clips": fs.n_clips,
        "speech_rows": int(fs.speech.shape[0]),
        "d_speech": int(fs.speech.shape[1]) if fs.speech.ndim == 2 else -1,
        "d_expr": int(fs.expr.shape[1]) if fs.expr.ndim == 2 else -1,
        "expr_rows_match": bool(fs.expr.shape[0] == total),
        "lips_rows_match": bool(fs.lips is None or fs.lips.shape[0] == total),
        "pose_rows_match": bool(fs.pose is None or fs.pose.shape[0] == total),
        "speech_rows_match": bool(fs.speech.shape[0] == fs.n_clips),
    }
    return pd.DataFrame([row])


# ------------------------------------------------------------------------------------ the suites
def _gx():
    import great_expectations as gx

    return gx


def raw_suites(lim: CheckLimits) -> dict[str, list]:
    """table name -> list of GX expectations, for the raw clip table and its derived tables."""
    E = _gx().expectations
    clips = [
        # frame_start is derived when features are packed (FeatureSet), not part of a raw table
        *[E.ExpectColumnToExist(column=c) for c in CLIP_COLUMNS if c != "frame_start"],
        E.ExpectTableRowCountToBeBetween(min_value=1),
        E.ExpectColumnValuesToBeUnique(column="clip_id"),
        E.ExpectColumnValuesToNotBeNull(column="identity"),
        E.ExpectColumnValuesToNotBeNull(column="emotion"),
        E.ExpectColumnValuesToBeInSet(column="emotion", value_set=list(lim.emotions)),
        E.ExpectColumnValuesToBeInSet(column="level", value_set=list(lim.levels)),
        E.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        E.ExpectColumnValuesToBeBetween(column="n_frames", min_value=lim.frames[0], max_value=lim.frames[1]),
        E.ExpectColumnValuesToBeBetween(
            column="duration_s", min_value=lim.duration_s[0], max_value=lim.duration_s[1]
        ),
        E.ExpectColumnValuesToBeBetween(column="fps", min_value=lim.fps[0], max_value=lim.fps[1]),
        E.ExpectColumnValuesToBeBetween(column="frame_error", min_value=0, max_value=lim.frame_tolerance),
        E.ExpectColumnValuesToBeInSet(column="files_ok", value_set=[True]),
    ]
    identities = [
        E.ExpectColumnValuesToBeInSet(column="n_splits", value_set=[1]),  # train/val/test identities disjoint
    ]
    cells = [
        E.ExpectColumnValuesToBeBetween(column="n_clips", min_value=lim.min_clips_per_cell),
    ]
    return {"clips": clips, "identities": identities, "cells": cells}


def feature_suites(lim: CheckLimits, columns: list[str]) -> dict[str, list]:
    """table name -> expectations for the per-clip feature table and the one-row dims table."""
    E = _gx().expectations
    per_clip = [
        E.ExpectColumnValuesToBeInSet(column=c, value_set=[True]) for c in columns if c.endswith("_finite")
    ]
    per_clip += [
        E.ExpectColumnValuesToBeBetween(
            column="speech_norm", min_value=lim.speech_norm[0], max_value=lim.speech_norm[1]
        ),
    ]
    if "expr_norm_mean" in columns:
        per_clip.append(
            E.ExpectColumnValuesToBeBetween(
                column="expr_norm_mean", min_value=lim.expr_norm[0], max_value=lim.expr_norm[1]
            )
        )
    dims = [
        E.ExpectColumnValuesToBeBetween(
            column="d_speech", min_value=lim.d_speech[0], max_value=lim.d_speech[1]
        ),
        E.ExpectColumnValuesToBeBetween(column="d_expr", min_value=lim.d_expr[0], max_value=lim.d_expr[1]),
        *[
            E.ExpectColumnValuesToBeInSet(column=c, value_set=[True])
            for c in ("speech_rows_match", "expr_rows_match", "lips_rows_match", "pose_rows_match")
        ],
    ]
    return {"feature_clips": per_clip, "dims": dims}


#: for each derived table, the column that names a failing row in the report
ROW_KEYS = {
    "clips": "clip_id",
    "identities": "identity",
    "cells": "cell",
    "feature_clips": "clip_id",
    "dims": None,
}
