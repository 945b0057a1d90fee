"""Write the vendored release files (:mod:`cmet.data.vendor`) from the release folder.

Kept apart from the reader so that :mod:`cmet.data.release_au` (which reads the vendored copy) and
this writer (which reads the release through :func:`cmet.data.release_au.read_release_clips`) import
each other in one direction only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cmet.data.vendor import CLIPS_FILE, FPS, VECTORS_FILE, VENDOR_DIR


def write_vendored(release_dir: str | Path, folder: str | Path = VENDOR_DIR) -> tuple[Path, Path]:
    """Vendor the release at ``release_dir``: its vectors, clip table and 25-fps envelopes -> the two files."""
    import soundfile as sf

    from cmet.audio.io import load_audio
    from cmet.data.release_au import read_release_clips
    from cmet.data.synth_speech import SR
    from cmet.face.tracks import envelope_at_fps

    root = Path(release_dir).resolve()
    table = read_release_clips(root)
    speech, envs, rows = [], [], []
    ser = _gemini_meta(root)
    start = 0
    for r in table.itertuples(index=False):
        speech.append(np.load(r.feature_path).reshape(-1).astype(np.float32))
        info = sf.info(r.audio_path)
        n = max(1, int(np.round(r.duration_s * FPS)))
        wave, _ = load_audio(r.audio_path, SR)
        envs.append(envelope_at_fps(wave, SR, n, FPS))
        rel = Path(r.audio_path).resolve().relative_to(root)
        row = dict(
            clip_id=r.clip_id,
            set=rel.parts[1],
            identity=r.identity,
            emotion=r.emotion,
            level=int(r.level),
            sentence=r.sentence,
            extended=bool(r.extended),
            audio_relpath=rel.as_posix(),
            n_samples=int(info.frames),
            sample_rate=int(info.samplerate),
            env_start=start,
            n_env=n,
        )
        row.update(ser.get(rel.as_posix(), {"e2v+L_ser": "", "ID": "", "intensity": "", "voice_name": ""}))
        rows.append(row)
        start += n
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vec, csv = folder / VECTORS_FILE, folder / CLIPS_FILE
    np.savez_compressed(vec, speech=np.stack(speech), envelope=np.concatenate(envs).astype(np.float32))
    pd.DataFrame(rows).to_csv(csv, index=False)
    return vec, csv


def _gemini_meta(root: Path) -> dict[str, dict]:
    """audio_relpath -> the e2v+L_ser / ID / intensity / voice_name of test.csv."""
    csv = root / "audios" / "gemini" / "test.csv"
    if not csv.is_file():
        return {}
    out = {}
    for r in pd.read_csv(csv).to_dict(orient="records"):
        out[(Path("audios/gemini") / str(r["audio_path"])).as_posix()] = {
            k: str(r[k]) for k in ("e2v+L_ser", "ID", "intensity", "voice_name")
        }
    return out
