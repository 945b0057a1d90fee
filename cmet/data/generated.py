"""The embedded default dataset: a MEAD-shaped set generated offline, deterministically, in minutes.

What is synthetic (all of it; no recording of a person is used):

* **Speech** is made by the project's own source-filter synthesiser (:mod:`cmet.data.synth_speech`):
  a glottal pulse train through formant filters, syllables of consonant + vowel, no real words.
  Each identity has its own voice (F0, vocal-tract length, rate, breathiness). Emotions change
  the prosody the way published acoustic profiles describe (Scherer 2003; Juslin & Laukka 2003:
  pitch level and range, speaking rate, loudness, spectral tilt / voice quality, final contour),
  scaled by the intensity level. It sounds robotic; it carries emotion in prosody only.
* **Faces** are not images but per-frame codes, as a disentangled face encoder would output:
  action-unit intensities from each emotion's EMFACS prototype (:mod:`cmet.face.facs`) x the
  identity's own per-AU gains x the level, with onset/apex dynamics and noise; lips follow the
  synthetic speech's envelope and vowel shape; head pose is smooth random motion with nods;
  blinks are Poisson events (:mod:`cmet.face.tracks`). The faces room's renderer draws them.
* **Extended emotions** (sarcastic, charismatic, anxious by default) are blends of basic ones in
  both speech prosody and face, flagged ``extended=True`` and kept out of training.
* The emotion in speech and in the face of a clip therefore share only their label (and the
  intensity level): the speech->face mapping C-MET learns is a real cross-modal one, but far
  simpler than in MEAD.

Layout (MEAD-like): ``<out_dir>/<ID>/audio/<emotion>/level_<n>/<nnn>.wav`` (16 kHz mono) and
``<out_dir>/<ID>/tracks/<emotion>/level_<n>/<nnn>.npz`` (expr, lips, pose, blink), plus
``clips.parquet`` (the raw clip table). Sizes in ``configs/data/generated.yaml``; the default is
12 identities (train 8 / val 2 / test 2) x (7 emotions x 3 levels x 4 clips + 10 neutral + 3
extended x 4) = 1272 clips, 49.6 min of audio, 74k frames at 25 fps: about 40 s of CPU to
synthesise and 75 s to encode (prosody), i.e. about a minute on 2 free cores (2 processes).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cmet.data.features import NEUTRAL, FeatureSet
from cmet.errors import ConfigError, DataError

GEN_VERSION = "g2"  # bump when generation changes (invalidates cached clips)


def _dc(cfg) -> dict:
    from omegaconf import DictConfig, OmegaConf

    d = cfg.data if hasattr(cfg, "data") else cfg["data"]
    return OmegaConf.to_container(d, resolve=True) if isinstance(d, DictConfig) else dict(d)


def default_out_dir(cfg) -> Path:
    dc = _dc(cfg)
    if dc["out_dir"]:
        return Path(dc["out_dir"])
    return Path(cfg.paths.data_dir) / f"generated-{config_hash(cfg)}"


def config_hash(cfg) -> str:
    """Hash of what decides the generated clips (not the encoder)."""
    dc = _dc(cfg)
    keys = (
        "emotions",
        "extended",
        "extended_levels",
        "extended_clips",
        "identities",
        "levels",
        "sentences",
        "clips_per_cell",
        "neutral_clips",
        "fps",
        "gain_spread",
        "expr_noise",
        "seed",
    )
    blob = json.dumps({k: dc.get(k) for k in keys} | {"v": GEN_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def identity_plan(dc: dict) -> list[tuple[str, str, bool]]:
    """[(identity, split, female)]: identities G001.. with disjoint train/val/test, both voices in each."""
    ids = dc["identities"]
    out = []
    i = 0
    for split in ("train", "val", "test"):
        for j in range(int(ids.get(split, 0))):
            i += 1
            out.append((f"G{i:03d}", split, j % 2 == 1))
    if not any(s == "train" for _, s, _ in out):
        raise ConfigError("data.identities.train must be >= 1")
    return out


def clip_plan(dc: dict) -> pd.DataFrame:
    """Every clip to make: identity, split, emotion, level, index, sentence, extended (deterministic)."""
    emotions = list(dc["emotions"])
    if NEUTRAL not in emotions:
        raise ConfigError("data.emotions must include neutral (the reference of every difference)")
    rows = []
    for ident_i, (ident, split, female) in enumerate(identity_plan(dc)):
        rng = np.random.default_rng([int(dc["seed"]), 17, ident_i])
        cells: list[tuple[str, int, int, bool]] = []
        for e in emotions:
            if e == NEUTRAL:
                cells.append((e, 1, int(dc["neutral_clips"]), False))
            else:
                cells += [(e, int(lv), int(dc["clips_per_cell"]), False) for lv in dc["levels"]]
        for e in dc["extended"] or {}:
            cells += [(e, int(lv), int(dc["extended_clips"]), True) for lv in dc["extended_levels"]]
        for e, lv, n, ext in cells:
            for k in range(n):
                rows.append(
                    dict(
                        identity=ident,
                        split=split,
                        female=female,
                        emotion=e,
                        level=lv,
                        index=k,
                        sentence=f"S{int(rng.integers(int(dc['sentences']))):03d}",
                        extended=ext,
                        ident_i=ident_i,
                    )
                )
    return pd.DataFrame(rows)


def _mix(dc: dict, emotion: str) -> dict[str, float] | str:
    ext = dc["extended"] or {}
    return dict(ext[emotion]) if emotion in ext else emotion


def _make_clip(dc: dict, row: dict, wav_path: Path, trk_path: Path) -> tuple[float, int]:
    """Synthesize one clip's speech and face tracks; returns (duration_s, n_frames)."""
    from cmet.audio.io import save_wav
    from cmet.data.synth_speech import SR, Speaker, sentence_syllables, synthesize, vowel_shapes_at_fps
    from cmet.face.tracks import envelope_at_fps, identity_gains, make_clip_tracks

    seed = int(dc["seed"])
    id_rng = np.random.default_rng([seed, 1, row["ident_i"]])
    speaker = Speaker.random(row["identity"], row["female"], id_rng)
    gains = identity_gains(id_rng, float(dc["gain_spread"]))
    e_i = (list(dc["emotions"]) + list(dc["extended"] or {})).index(row["emotion"])
    rng = np.random.default_rng([seed, 2, row["ident_i"], e_i, row["level"], row["index"]])
    syl = sentence_syllables(int(row["sentence"][1:]), seed)
    mix = _mix(dc, row["emotion"])
    wave, _info = synthesize(syl, speaker, mix, row["level"], rng)
    fps = float(dc["fps"])
    n = max(1, int(round(wave.size / SR * fps)))
    env = envelope_at_fps(wave, SR, n, fps)
    vow = vowel_shapes_at_fps(wave, n, fps)
    tr = make_clip_tracks(
        mix,
        row["level"],
        n,
        fps,
        gains,
        rng,
        env,
        vow,
        emotion_name=row["emotion"],
        expr_noise=float(dc["expr_noise"]),
    )
    save_wav(wav_path, wave, SR)
    trk_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = trk_path.with_suffix(".tmp.npz")
    np.savez(tmp, **tr)
    tmp.replace(trk_path)
    return wave.size / SR, n


def _make_clip_job(job: tuple) -> tuple[float, int]:
    return _make_clip(*job)


def _reuse(out: Path, chash: str) -> pd.DataFrame | None:
    """The clip table of a complete set already in ``out`` (every file present), else None;
    DataError when ``out`` holds a set of another configuration."""
    manifest = out / "manifest.json"
    if not manifest.is_file():
        return None
    old = json.loads(manifest.read_text())
    if old.get("config_hash") != chash:
        raise DataError(
            f"{out} holds a generated set of another configuration ({old.get('config_hash')} != "
            f"{chash}); choose another data.out_dir or delete it"
        )
    table_path = out / "clips.parquet"
    if old.get("complete") and table_path.is_file():
        table = pd.read_parquet(table_path)
        if all(Path(p).is_file() for p in table["audio_path"]) and all(
            Path(p).is_file() for p in table["track_path"]
        ):
            return table
    return None


def _clip_paths(out: Path, records: list[dict]) -> list[tuple[Path, Path]]:
    """(wav, npz) of each planned clip: ``<ID>/{audio,tracks}/<emotion>/level_<n>/<nnn>``."""
    paths = []
    for row in records:
        rel = Path(row["identity"]) / "{}" / row["emotion"] / f"level_{row['level']}" / f"{row['index']:03d}"
        paths.append(
            (out / Path(str(rel).format("audio") + ".wav"), out / Path(str(rel).format("tracks") + ".npz"))
        )
    return paths


def _make_missing(dc: dict, records: list[dict], paths: list[tuple[Path, Path]]) -> int:
    """Synthesise the clips whose wav or npz is absent (``dc["workers"]`` processes for 40 or more);
    returns how many were made."""
    from tqdm import tqdm

    todo = [i for i, (w, k) in enumerate(paths) if not (w.is_file() and k.is_file())]
    workers = int(dc["workers"])
    jobs = [(dc, records[i], *paths[i]) for i in todo]
    if workers > 1 and len(jobs) >= 40:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as ex:
            list(
                tqdm(
                    ex.map(_make_clip_job, jobs, chunksize=8),
                    total=len(jobs),
                    desc="generate clips",
                    unit="clip",
                    leave=False,
                )
            )
    else:
        for job in tqdm(jobs, desc="generate clips", unit="clip", leave=False):
            _make_clip_job(job)
    return len(todo)


def _clip_table(records: list[dict], paths: list[tuple[Path, Path]], fps: float) -> pd.DataFrame:
    """The raw clip table of the made clips (frame count from the npz, duration from the wav)."""
    import soundfile as sf

    rows = []
    for row, (wav, trk) in zip(records, paths, strict=True):
        with np.load(trk) as z:
            n = int(z["expr"].shape[0])
        dur = sf.info(str(wav)).duration
        rows.append(
            dict(
                clip_id=f"{row['identity']}_{row['emotion']}_L{row['level']}_{row['index']:03d}",
                identity=row["identity"],
                emotion=row["emotion"],
                level=row["level"],
                sentence=row["sentence"],
                split=row["split"],
                n_frames=n,
                fps=fps,
                duration_s=dur,
                audio_path=str(wav),
                video_path=None,
                extended=bool(row["extended"]),
                track_path=str(trk),
                female=bool(row["female"]),
            )
        )
    return pd.DataFrame(rows)


def generate(cfg, out_dir: str | Path | None = None) -> pd.DataFrame:
    """Make (or reuse) the generated clips: raw clip table with ``audio_path`` and ``track_path``.

    Deterministic: each clip's random stream depends only on (seed, identity, emotion, level, index),
    so a clip already on disk is skipped and the rest is identical to a full run.
    Columns: the FeatureSet clip columns (no ``frame_start``) + ``track_path``, ``female``.
    """
    dc = _dc(cfg)
    out = Path(out_dir) if out_dir is not None else default_out_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    chash = config_hash(cfg)
    table = _reuse(out, chash)
    if table is not None:
        return table
    manifest = out / "manifest.json"
    manifest.write_text(
        json.dumps({"config_hash": chash, "complete": False, "data": dc}, indent=2, default=str)
    )
    t0 = time.time()
    records = clip_plan(dc).to_dict("records")
    paths = _clip_paths(out, records)
    made = _make_missing(dc, records, paths)
    table = _clip_table(records, paths, float(dc["fps"]))
    table.to_parquet(out / "clips.parquet", index=False)
    manifest.write_text(
        json.dumps(
            {
                "config_hash": chash,
                "complete": True,
                "n_clips": len(table),
                "made_now": made,
                "seconds": round(time.time() - t0, 1),
                "data": dc,
            },
            indent=2,
            default=str,
        )
    )
    return table


def build(cfg) -> FeatureSet:
    """generate -> extract_features: the generated set as a FeatureSet (validated)."""
    from cmet.audio import extract_features

    table = generate(cfg)
    fs = extract_features(cfg, table)
    fs.meta.update(
        source="generated",
        generated_config_hash=config_hash(cfg),
        synthetic="speech: own source-filter synthesiser; faces: FACS-prototype AU tracks",
    )
    return fs.validate()
