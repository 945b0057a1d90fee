"""Data source ``release_au``: real speech features + FACS-prototype face tracks.

* **Speech**: the paper's own emotion2vec+large utterance features of real MEAD speech from the
  authors' release in ``../shared`` (speakers M003, M030, W009, W015; 7 emotions at level 3,
  neutral as level 1), plus the expressive-TTS clips of four *extended* emotions (charismatic,
  desirous, empathetic, romantic; ``extended=True``; identity = the MEAD speaker of test.csv's
  ``ID`` column).
* **Face**: per-frame AU tracks from each emotion's EMFACS prototype with per-speaker gains
  (:mod:`cmet.face.tracks`); extended emotions use the blends in ``data.extended`` (our
  assumption: there is no FACS prototype for them). Lips follow the *real* speech's envelope;
  pose is synthetic motion. Clip length = the audio's duration at ``fps``.
* **Split** by speaker: ``data.test_identity`` (default W009) is the test set,
  ``data.val_identity`` the validation set, the rest train.

A missing release folder raises :class:`~cmet.errors.DataError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cmet.data.features import FeatureSet
from cmet.errors import ConfigError, DataError

EXTENDED_RELEASE = ("charismatic", "desirous", "empathetic", "romantic")


def _dc(cfg) -> dict:
    from omegaconf import DictConfig, OmegaConf

    d = cfg.data
    return OmegaConf.to_container(d, resolve=True) if isinstance(d, DictConfig) else dict(d)


def release_root(cfg) -> Path:
    dc = _dc(cfg)
    root = Path(dc["release_dir"] or cfg.paths.release_dir)
    if not (root / "audios" / "MEAD").is_dir():
        raise DataError(
            f"the authors' release data is not at {root} (expected audios/MEAD/ inside); set "
            "paths.shared_dir / data.release_dir, or use data=generated"
        )
    return root


def read_release_clips(
    root: str | Path, subdir: str = "emotion2vec+large_features", include_extended: bool = True
) -> pd.DataFrame:
    """Clip table of the release: audio_path, feature_path, identity, emotion, level, sentence, extended,
    ser (the TTS clips' ``e2v+L_ser`` label of test.csv, NaN for MEAD)."""
    import soundfile as sf

    root = Path(root).resolve()
    rows = []
    mead = root / "audios" / "MEAD"
    for edir in sorted(p for p in mead.iterdir() if p.is_dir()):
        for wav in sorted(edir.glob("*.wav")):
            parts = wav.stem.split("_")
            level = int(parts[2]) if len(parts) >= 4 and parts[1] == "level" else 1
            rows.append(
                dict(
                    audio_path=str(wav),
                    identity=parts[0],
                    emotion=edir.name,
                    level=level,
                    sentence=parts[-1],
                    extended=False,
                    clip_id=f"{parts[0]}_{edir.name}_L{level}_{parts[-1]}",
                )
            )
    gem = root / "audios" / "gemini"
    if include_extended and (gem / "test.csv").is_file():
        meta = pd.read_csv(gem / "test.csv")
        for r in meta.to_dict(orient="records"):
            wav = (gem / str(r["audio_path"])).resolve()
            if not wav.is_file():
                continue
            rows.append(
                dict(
                    audio_path=str(wav),
                    identity=str(r["ID"]),
                    emotion=str(r["emotion"]),
                    level=3,
                    sentence=wav.stem,
                    extended=True,
                    clip_id=f"{r['ID']}_{r['emotion']}_{wav.stem}",
                    ser=str(r["e2v+L_ser"]),
                )
            )
    if not rows:
        raise DataError(f"no wav clips in {mead}")
    df = pd.DataFrame(rows)
    df["feature_path"] = [str(Path(p).parent / subdir / f"{Path(p).stem}.npy") for p in df["audio_path"]]
    df["duration_s"] = [sf.info(p).duration for p in df["audio_path"]]
    return df


def assign_splits(
    identities: pd.Series, test_identity: str | list, val_identity: str | list | None
) -> pd.Series:
    """Speaker-disjoint split: test / val identities as configured, the rest train."""

    def as_list(x):
        return [] if x is None else ([x] if isinstance(x, str) else list(x))

    test, val = as_list(test_identity), as_list(val_identity)
    known = set(identities)
    for name in test + val:
        if name not in known:
            raise ConfigError(
                f"identity {name!r} (data.test_identity / val_identity) not in the data: {sorted(known)}"
            )
    if set(test) & set(val):
        raise ConfigError(f"an identity is both test and val: {sorted(set(test) & set(val))}")
    split = pd.Series("train", index=identities.index)
    split[identities.isin(val)] = "val"
    split[identities.isin(test)] = "test"
    if not (split == "train").any():
        raise ConfigError("no training identity left after data.test_identity / val_identity")
    return split


def _vectors_mode(dc: dict, cfg) -> tuple[str, Path]:
    """``data.vectors``: release (../shared), vendored (the package's copy) or auto (release if present)."""
    mode = str(dc["vectors"])
    if mode not in ("auto", "release", "vendored"):
        raise ConfigError(f"data.vectors must be auto, release or vendored; got {mode!r}")
    root = Path(dc["release_dir"] or cfg.paths.release_dir)
    if mode == "release" or (mode == "auto" and (root / "audios" / "MEAD").is_dir()):
        return "release", release_root(cfg)
    return "vendored", root


def input_files(cfg) -> list[tuple[str, Path]]:
    """The files :func:`build` reads for ``cfg``: in release mode every clip's audio and feature file and
    the TTS table (``release/<path in the release folder>``), in vendored mode the two vendored files
    (``vendored/<file>``). The mode is in the names, so the two never share a key: their envelopes are
    computed on different machines and agree only to float precision."""
    from cmet.data import vendor

    dc = _dc(cfg)
    mode, root = _vectors_mode(dc, cfg)
    if mode == "vendored":
        return [(f"vendored/{f}", vendor.VENDOR_DIR / f) for f in (vendor.VECTORS_FILE, vendor.CLIPS_FILE)]
    root = root.resolve()
    table = read_release_clips(root, dc["feature_subdir"], bool(dc["include_extended"]))
    paths = [Path(p) for p in (*table["audio_path"], *table["feature_path"])]
    tts = root / "audios" / "gemini" / "test.csv"
    paths += [tts] if bool(dc["include_extended"]) and tts.is_file() else []
    return [(f"release/{p.relative_to(root).as_posix()}", p) for p in sorted(set(paths)) if p.is_file()]


def _from_release(root: Path, dc: dict, fps: float) -> tuple[pd.DataFrame, np.ndarray, list]:
    """Clip table, speech [N, 1024] and per-clip envelopes [n_i] (None without lips_from_audio)."""
    from cmet.audio.io import load_audio
    from cmet.data.synth_speech import SR
    from cmet.face.tracks import envelope_at_fps

    subdir = dc["feature_subdir"]
    table = read_release_clips(root, subdir, bool(dc["include_extended"]))
    table["n_frames"] = np.maximum(1, np.round(table["duration_s"] * fps)).astype(int)
    feats = []
    for f in table["feature_path"]:
        if not Path(f).is_file():
            raise DataError(f"precomputed speech feature missing: {f}")
        feats.append(np.load(f).reshape(-1).astype(np.float32))
    envs: list = [None] * len(table)
    if bool(dc["lips_from_audio"]):
        envs = [
            envelope_at_fps(load_audio(p, SR)[0], SR, int(n), fps)
            for p, n in zip(table["audio_path"], table["n_frames"], strict=True)
        ]
    return table.drop(columns=["feature_path"]), np.stack(feats), envs


def _if_present(path: Path) -> str | None:
    """The audio file's path where it exists, else None (a feature-only clip)."""
    return str(path) if path.is_file() else None


def _from_vendored(root: Path, dc: dict, fps: float) -> tuple[pd.DataFrame, np.ndarray, list]:
    """The same three from the package's vendored copy (:mod:`cmet.data.vendor`): no audio needed."""
    from cmet.data import vendor

    subdir = dc["feature_subdir"]
    if subdir != "emotion2vec+large_features":
        raise ConfigError(
            f"the vendored vectors are emotion2vec+large; data.feature_subdir={subdir!r} needs "
            f"the release folder (not found at {root})"
        )
    v = vendor.load_vendored()
    keep = np.ones(len(v.clips), bool) if dc["include_extended"] else ~v.clips["extended"].to_numpy()
    c = v.clips
    table = pd.DataFrame(
        dict(
            audio_path=[_if_present(root.resolve() / p) for p in c["audio_relpath"]],
            identity=c["identity"],
            emotion=c["emotion"],
            level=c["level"].astype(int),
            sentence=c["sentence"],
            extended=c["extended"],
            clip_id=c["clip_id"],
            duration_s=c["n_samples"] / c["sample_rate"],
            ser=c["e2v+L_ser"],
        )
    )
    table["n_frames"] = np.maximum(1, np.round(table["duration_s"] * fps)).astype(int)
    envs: list = [None] * len(table)
    if bool(dc["lips_from_audio"]):
        if fps != vendor.FPS:
            raise ConfigError(
                f"the vendored speech envelopes are at {vendor.FPS:g} fps; data.fps={fps:g} needs the "
                f"release audio (not found at {root}) or data.lips_from_audio=false"
            )
        envs = [v.clip_envelope(i) for i in range(len(table))]
    idx = np.flatnonzero(keep)
    return table.iloc[idx].reset_index(drop=True), v.speech[idx], [envs[i] for i in idx]


def build(cfg) -> FeatureSet:
    """The release_au FeatureSet: speech [N, 1024] (emotion2vec+large), expr [F, 19] AU tracks, lips, pose.

    The speech vectors come from the release folder when it is there, else from the package's vendored
    copy (``data.vectors``: auto | release | vendored); both give the same speech vectors and clip table,
    and lip tracks equal to float precision (the release path computes the envelopes from the audio).
    """
    from cmet.data.vendor import ENCODER
    from cmet.face.tracks import identity_gains, make_clip_tracks

    dc = _dc(cfg)
    fps = float(dc["fps"])
    mode, root = _vectors_mode(dc, cfg)
    table, speech, envs = (_from_release if mode == "release" else _from_vendored)(root, dc, fps)
    ext_mix = dc["extended"] or {}
    missing_mix = sorted(set(table.loc[table["extended"], "emotion"]) - set(ext_mix))
    if missing_mix:
        raise ConfigError(f"data.extended lacks a FACS blend for extended emotion(s) {missing_mix}")
    table["split"] = assign_splits(table["identity"], dc["test_identity"], dc["val_identity"])
    table["fps"] = fps
    seed = int(dc["seed"])
    gains = {
        ident: identity_gains(np.random.default_rng([seed, i]), float(dc["gain_spread"]))
        for i, ident in enumerate(sorted(set(table["identity"])))
    }
    expr, lips, pose = [], [], []
    for i, r in enumerate(table.itertuples(index=False)):
        tr = make_clip_tracks(
            dict(ext_mix[r.emotion]) if r.extended else r.emotion,
            int(r.level),
            int(r.n_frames),
            fps,
            gains[r.identity],
            np.random.default_rng([seed, 99, i]),
            envs[i],
            None,
            emotion_name=r.emotion,
            expr_noise=float(dc["expr_noise"]),
        )
        expr.append(tr["expr"])
        lips.append(tr["lips"])
        pose.append(tr["pose"])
    table["video_path"] = None
    subdir = dc["feature_subdir"]
    fs = FeatureSet(
        table,
        speech,
        np.concatenate(expr),
        np.concatenate(lips),
        np.concatenate(pose),
        {
            "source": "release_au",
            "encoder": f"precomputed-{subdir}",
            "speech_encoder": dict(ENCODER, config=dict(ENCODER["config"], feature_subdir=subdir)),
            "vectors": mode,
            # the classes of emotion2vec+large's own 9-class classifier in MEAD's names (fearful -> fear;
            # other / unknown dropped): it has no contempt
            "ser_classes": ["angry", "disgusted", "fear", "happy", "neutral", "sad", "surprised"],
            # the basic emotion emotion2vec+large's own classifier hears in each TTS clip (test.csv)
            "ser_labels": {
                str(k): str(v)
                for k, v in zip(table["clip_id"], table["ser"], strict=True)
                if isinstance(v, str) and v
            },
            "release_dir": str(root),
            "synthetic": "face tracks from EMFACS prototypes; speech features real",
        },
    )
    return fs.validate()
